//! `AttentionStore`: the findings of the attention workers, their dismissals, and each account's
//! detector progress (tables of migration 0007), in one SQL text for both stores.
//!
//! Every node runs a worker, so saving progress is a compare-and-set on `next_seq`: the `UPDATE`
//! (or, for the first save, the primary key the `INSERT ... ON CONFLICT DO NOTHING` meets) changes
//! no row when another worker saved first, and then nothing of this save is stored. SQLite's write
//! transaction takes the write lock before it reads (`BEGIN IMMEDIATE`); on PostgreSQL the second
//! `UPDATE` waits for the first one's row lock and rereads `next_seq` once it commits. Findings
//! are unique by their place in the log (account, kind, subject, first seq), so reading a log
//! twice never stores an episode twice.

use async_trait::async_trait;
use logbook_core::attention::{
    AttentionProgress, Dismissal, Finding, FindingFilter, FindingKind, FindingRecord,
    FindingSubject,
};
use logbook_core::store::AttentionStore;
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::encoding::unix_micros_of;
use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, existing_account_row};
use crate::value::{SqlRow, SqlValue};

const FINDING_COLUMNS: &str = "f.finding_id, f.kind, f.subject_kind, f.subject, f.first_seq, \
     f.last_seq, f.first_at, f.last_at, f.title, f.evidence_query, f.detected_at, \
     f.dismissed_by, f.dismissed_at";

/// A seq as stored (both stores keep it as a signed 64-bit integer).
fn seq_value(seq: u64) -> SqlValue {
    SqlValue::Integer(seq as i64)
}

fn finding_from_row(row: &SqlRow, account: &AccountId) -> Result<FindingRecord, StoreError> {
    let finding_id = row.integer(0)?;
    let unreadable = |what: &str| StoreError::Database {
        context: "reading attention findings",
        message: format!("finding {finding_id} has an unknown {what}"),
    };
    let kind = FindingKind::parse(&row.text(1)?).ok_or_else(|| unreadable("kind"))?;
    let subject = FindingSubject::from_parts(&row.text(2)?, &row.text(3)?)
        .ok_or_else(|| unreadable("subject"))?;
    let dismissal = match (row.optional_text(11)?, row.optional_time(12)?) {
        (Some(dismissed_by), Some(dismissed_at)) => Some(Dismissal {
            dismissed_by,
            dismissed_at,
        }),
        _ => None,
    };
    Ok(FindingRecord {
        finding_id,
        account: account.clone(),
        finding: Finding {
            kind,
            subject,
            first_seq: row.integer(4)? as u64,
            last_seq: row.integer(5)? as u64,
            first_at: row.time(6)?,
            last_at: row.time(7)?,
            title: row.text(8)?,
            evidence_query: row.text(9)?,
        },
        detected_at: row.time(10)?,
        dismissal,
    })
}

async fn one_finding(
    sql: &dyn SqlExecutor,
    account: &AccountId,
    finding_id: i64,
) -> Result<Option<FindingRecord>, StoreError> {
    sql.query_optional(
        "reading an attention finding",
        &format!(
            "SELECT {FINDING_COLUMNS} FROM attention_findings f \
             JOIN accounts a ON a.account_row = f.account_row \
             WHERE a.name = $1 AND f.finding_id = $2"
        ),
        &[account.as_str().into(), finding_id.into()],
    )
    .await?
    .map(|row| finding_from_row(&row, account))
    .transpose()
}

#[async_trait]
impl<Database: SqlDatabase> AttentionStore for SharedStore<Database> {
    async fn attention_progress(
        &self,
        account: &AccountId,
    ) -> Result<Option<AttentionProgress>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    sql.query_optional(
                        "reading attention progress",
                        "SELECT p.next_seq, p.state FROM attention_progress p \
                         JOIN accounts a ON a.account_row = p.account_row WHERE a.name = $1",
                        &[account.as_str().into()],
                    )
                    .await?
                    .map(|row| {
                        Ok(AttentionProgress {
                            next_seq: row.integer(0)? as u64,
                            state: row.bytes(1)?,
                        })
                    })
                    .transpose()
                })
            }))
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
        const SAVING: &str = "saving attention progress";
        let account = account.clone();
        let progress = progress.clone();
        let findings = findings.to_vec();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, SAVING, &account).await?;
                    let saved = match expected_next_seq {
                        None => {
                            sql.execute(
                                SAVING,
                                "INSERT INTO attention_progress (account_row, next_seq, state) \
                                 VALUES ($1, $2, $3) ON CONFLICT (account_row) DO NOTHING",
                                &[
                                    account_row.into(),
                                    seq_value(progress.next_seq),
                                    progress.state.into(),
                                ],
                            )
                            .await?
                        }
                        Some(expected) => {
                            sql.execute(
                                SAVING,
                                "UPDATE attention_progress SET next_seq = $2, state = $3 \
                                 WHERE account_row = $1 AND next_seq = $4",
                                &[
                                    account_row.into(),
                                    seq_value(progress.next_seq),
                                    progress.state.into(),
                                    seq_value(expected),
                                ],
                            )
                            .await?
                        }
                    };
                    if saved == 0 {
                        // Another worker saved first; its findings are the ones that stand.
                        return Ok(false);
                    }
                    let detected_at = unix_micros_of(detected_at);
                    for finding in findings {
                        sql.execute(
                            SAVING,
                            "INSERT INTO attention_findings (account_row, kind, subject_kind, \
                             subject, first_seq, last_seq, first_at, last_at, title, \
                             evidence_query, detected_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                             ON CONFLICT (account_row, kind, subject_kind, subject, first_seq) \
                             DO NOTHING",
                            &[
                                account_row.into(),
                                finding.kind.as_str().into(),
                                finding.subject.kind_name().into(),
                                finding.subject.value().into(),
                                seq_value(finding.first_seq),
                                seq_value(finding.last_seq),
                                unix_micros_of(finding.first_at).into(),
                                unix_micros_of(finding.last_at).into(),
                                finding.title.into(),
                                finding.evidence_query.into(),
                                detected_at.into(),
                            ],
                        )
                        .await?;
                    }
                    Ok(true)
                })
            }))
            .await
    }

    async fn list_findings(
        &self,
        account: &AccountId,
        filter: &FindingFilter,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        let account = account.clone();
        let filter = filter.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    // The cast gives PostgreSQL the parameter's type where `IS NULL` alone cannot.
                    let rows = sql
                        .query(
                            "listing attention findings",
                            &format!(
                                "SELECT {FINDING_COLUMNS} FROM attention_findings f \
                                 JOIN accounts a ON a.account_row = f.account_row \
                                 WHERE a.name = $1 \
                                 AND (CAST($2 AS TEXT) IS NULL \
                                      OR (f.subject_kind = 'actor' AND f.subject = $2)) \
                                 AND ($3 OR f.dismissed_at IS NULL) \
                                 ORDER BY f.detected_at DESC, f.finding_id DESC LIMIT $4"
                            ),
                            &[
                                account.as_str().into(),
                                filter.about_actor.into(),
                                filter.include_dismissed.into(),
                                i64::from(filter.limit).into(),
                            ],
                        )
                        .await?;
                    rows.iter()
                        .map(|row| finding_from_row(row, &account))
                        .collect()
                })
            }))
            .await
    }

    async fn get_finding(
        &self,
        account: &AccountId,
        finding_id: i64,
    ) -> Result<Option<FindingRecord>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move { one_finding(sql, &account, finding_id).await })
            }))
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
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    // The first dismissal stands: a second click records nothing new.
                    sql.execute(
                        "dismissing an attention finding",
                        "UPDATE attention_findings SET dismissed_by = $3, dismissed_at = $4 \
                         WHERE finding_id = $2 AND dismissed_at IS NULL \
                         AND account_row = (SELECT account_row FROM accounts WHERE name = $1)",
                        &[
                            account.as_str().into(),
                            finding_id.into(),
                            dismissal.dismissed_by.into(),
                            unix_micros_of(dismissal.dismissed_at).into(),
                        ],
                    )
                    .await?;
                    one_finding(sql, &account, finding_id).await
                })
            }))
            .await
    }
}
