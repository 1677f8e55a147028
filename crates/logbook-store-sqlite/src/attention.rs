//! `AttentionStore` on SQLite: the findings of the attention worker, their dismissals, and each
//! account's detector progress (tables of migration 0007). Writes go through the admin
//! connection, like people and keys, so they never queue behind a group commit of events.

use async_trait::async_trait;
use logbook_core::attention::{
    AttentionProgress, AttentionStore, Dismissal, Finding, FindingFilter, FindingKind,
    FindingRecord, FindingSubject,
};
use logbook_core::{AccountId, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::database_error;
use crate::{SqliteStore, account_row};

const FINDING_COLUMNS: &str = "f.finding_id, f.kind, f.subject_kind, f.subject, f.first_seq, f.last_seq, \
     f.first_at, f.last_at, f.title, f.evidence_query, f.detected_at, f.dismissed_by, f.dismissed_at";

struct FindingRow {
    finding_id: i64,
    kind: String,
    subject_kind: String,
    subject: String,
    first_seq: i64,
    last_seq: i64,
    first_at: i64,
    last_at: i64,
    title: String,
    evidence_query: String,
    detected_at: i64,
    dismissed_by: Option<String>,
    dismissed_at: Option<i64>,
}

fn finding_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FindingRow> {
    Ok(FindingRow {
        finding_id: row.get(0)?,
        kind: row.get(1)?,
        subject_kind: row.get(2)?,
        subject: row.get(3)?,
        first_seq: row.get(4)?,
        last_seq: row.get(5)?,
        first_at: row.get(6)?,
        last_at: row.get(7)?,
        title: row.get(8)?,
        evidence_query: row.get(9)?,
        detected_at: row.get(10)?,
        dismissed_by: row.get(11)?,
        dismissed_at: row.get(12)?,
    })
}

impl FindingRow {
    fn into_record(self, account: &AccountId) -> Result<FindingRecord, StoreError> {
        let unreadable = |what: &str| StoreError::Database {
            context: "reading attention findings",
            message: format!("finding {} has an unknown {what}", self.finding_id),
        };
        let kind = FindingKind::parse(&self.kind).ok_or_else(|| unreadable("kind"))?;
        let subject = FindingSubject::from_parts(&self.subject_kind, &self.subject)
            .ok_or_else(|| unreadable("subject"))?;
        let dismissal = match (self.dismissed_by, self.dismissed_at) {
            (Some(dismissed_by), Some(dismissed_at)) => Some(Dismissal {
                dismissed_by,
                dismissed_at: micros_to_time(dismissed_at),
            }),
            _ => None,
        };
        Ok(FindingRecord {
            finding_id: self.finding_id,
            account: account.clone(),
            finding: Finding {
                kind,
                subject,
                first_seq: self.first_seq as u64,
                last_seq: self.last_seq as u64,
                first_at: micros_to_time(self.first_at),
                last_at: micros_to_time(self.last_at),
                title: self.title,
                evidence_query: self.evidence_query,
            },
            detected_at: micros_to_time(self.detected_at),
            dismissal,
        })
    }
}

fn one_finding(
    connection: &Connection,
    account: &AccountId,
    finding_id: i64,
) -> Result<Option<FindingRecord>, StoreError> {
    let sql = format!(
        "SELECT {FINDING_COLUMNS} FROM attention_findings f JOIN accounts a ON a.account_row = f.account_row \
         WHERE a.name = ?1 AND f.finding_id = ?2"
    );
    connection
        .prepare_cached(&sql)
        .map_err(database_error("reading an attention finding"))?
        .query_row(params![account.as_str(), finding_id], finding_row)
        .optional()
        .map_err(database_error("reading an attention finding"))?
        .map(|row| row.into_record(account))
        .transpose()
}

#[async_trait]
impl AttentionStore for SqliteStore {
    async fn attention_progress(
        &self,
        account: &AccountId,
    ) -> Result<Option<AttentionProgress>, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| {
                connection
                    .prepare_cached(
                        "SELECT p.next_seq, p.state FROM attention_progress p \
                         JOIN accounts a ON a.account_row = p.account_row WHERE a.name = ?1",
                    )
                    .map_err(database_error("reading attention progress"))?
                    .query_row([account.as_str()], |row| {
                        Ok(AttentionProgress {
                            next_seq: row.get::<_, i64>(0)? as u64,
                            state: row.get(1)?,
                        })
                    })
                    .optional()
                    .map_err(database_error("reading attention progress"))
            })
            .await
    }

    async fn save_attention_progress(
        &self,
        account: &AccountId,
        expected_next_seq: Option<u64>,
        progress: &AttentionProgress,
        findings: &[Finding],
        detected_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let account = account.clone();
        let progress = progress.clone();
        let findings = findings.to_vec();
        self.inner
            .administer(move |connection| {
                let context = "saving attention progress";
                // IMMEDIATE: take the write lock before reading, so the compare-and-set cannot
                // race another process on the same file.
                let transaction = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(database_error(context))?;
                let account_row = account_row(&transaction, &account)?
                    .ok_or_else(|| StoreError::AccountNotFound(account.clone()))?;
                let next_seq = progress.next_seq as i64;
                let saved = match expected_next_seq {
                    None => transaction.execute(
                        "INSERT INTO attention_progress (account_row, next_seq, state) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (account_row) DO NOTHING",
                        params![account_row, next_seq, progress.state],
                    ),
                    Some(expected) => transaction.execute(
                        "UPDATE attention_progress SET next_seq = ?2, state = ?3 \
                         WHERE account_row = ?1 AND next_seq = ?4",
                        params![account_row, next_seq, progress.state, expected as i64],
                    ),
                }
                .map_err(database_error(context))?;
                if saved == 0 {
                    return Ok(false);
                }
                {
                    let mut insert = transaction
                        .prepare_cached(
                            "INSERT INTO attention_findings (account_row, kind, subject_kind, subject, first_seq, last_seq, \
                             first_at, last_at, title, evidence_query, detected_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                             ON CONFLICT (account_row, kind, subject_kind, subject, first_seq) DO NOTHING",
                        )
                        .map_err(database_error(context))?;
                    for finding in &findings {
                        insert
                            .execute(params![
                                account_row,
                                finding.kind.as_str(),
                                finding.subject.kind_name(),
                                finding.subject.value(),
                                finding.first_seq as i64,
                                finding.last_seq as i64,
                                unix_micros_of(finding.first_at),
                                unix_micros_of(finding.last_at),
                                finding.title,
                                finding.evidence_query,
                                unix_micros_of(detected_at),
                            ])
                            .map_err(database_error(context))?;
                    }
                }
                transaction.commit().map_err(database_error(context))?;
                Ok(true)
            })
            .await
    }

    async fn list_findings(
        &self,
        account: &AccountId,
        filter: &FindingFilter,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        let account = account.clone();
        let filter = filter.clone();
        self.inner
            .read(move |connection| {
                let sql = format!(
                    "SELECT {FINDING_COLUMNS} FROM attention_findings f JOIN accounts a ON a.account_row = f.account_row \
                     WHERE a.name = ?1 \
                       AND (?2 IS NULL OR (f.subject_kind = 'actor' AND f.subject = ?2)) \
                       AND (?3 OR f.dismissed_at IS NULL) \
                     ORDER BY f.detected_at DESC, f.finding_id DESC LIMIT ?4"
                );
                let mut statement = connection
                    .prepare_cached(&sql)
                    .map_err(database_error("listing attention findings"))?;
                let rows = statement
                    .query_map(
                        params![
                            account.as_str(),
                            filter.about_actor,
                            filter.include_dismissed,
                            i64::from(filter.limit)
                        ],
                        finding_row,
                    )
                    .map_err(database_error("listing attention findings"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(database_error("listing attention findings"))?;
                rows.into_iter()
                    .map(|row| row.into_record(&account))
                    .collect()
            })
            .await
    }

    async fn get_finding(
        &self,
        account: &AccountId,
        finding_id: i64,
    ) -> Result<Option<FindingRecord>, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| one_finding(connection, &account, finding_id))
            .await
    }

    async fn dismiss_finding(
        &self,
        account: &AccountId,
        finding_id: i64,
        dismissal: &Dismissal,
    ) -> Result<Option<FindingRecord>, StoreError> {
        let account = account.clone();
        let dismissal = dismissal.clone();
        self.inner
            .administer(move |connection| {
                // The first dismissal stands: a second click records nothing new.
                connection
                    .execute(
                        "UPDATE attention_findings SET dismissed_by = ?3, dismissed_at = ?4 \
                         WHERE finding_id = ?2 AND dismissed_at IS NULL \
                           AND account_row = (SELECT account_row FROM accounts WHERE name = ?1)",
                        params![
                            account.as_str(),
                            finding_id,
                            dismissal.dismissed_by,
                            unix_micros_of(dismissal.dismissed_at)
                        ],
                    )
                    .map_err(database_error("dismissing an attention finding"))?;
                one_finding(connection, &account, finding_id)
            })
            .await
    }
}
