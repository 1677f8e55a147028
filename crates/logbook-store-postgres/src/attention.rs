//! `AttentionStore` on PostgreSQL: the findings of the attention workers, their dismissals, and
//! each account's detector progress (tables of migration 0007). Every node runs a worker; the
//! progress row is a compare-and-set on `next_seq` and findings are unique by their place in the
//! log, so two nodes reading one account never store an episode twice.

use async_trait::async_trait;
use logbook_core::attention::{
    AttentionProgress, AttentionStore, Dismissal, Finding, FindingFilter, FindingKind,
    FindingRecord, FindingSubject,
};
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::PostgresStore;
use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::database_error;

const FINDING_COLUMNS: &str = "f.finding_id, f.kind, f.subject_kind, f.subject, f.first_seq, f.last_seq, \
     f.first_at, f.last_at, f.title, f.evidence_query, f.detected_at, f.dismissed_by, f.dismissed_at";

fn finding_from_row(row: &Row, account: &AccountId) -> Result<FindingRecord, StoreError> {
    let finding_id: i64 = row.get(0);
    let unreadable = |what: &str| StoreError::Database {
        context: "reading attention findings",
        message: format!("finding {finding_id} has an unknown {what}"),
    };
    let kind = FindingKind::parse(row.get(1)).ok_or_else(|| unreadable("kind"))?;
    let subject =
        FindingSubject::from_parts(row.get(2), row.get(3)).ok_or_else(|| unreadable("subject"))?;
    let dismissed_by: Option<String> = row.get(11);
    let dismissed_at: Option<i64> = row.get(12);
    let dismissal = match (dismissed_by, dismissed_at) {
        (Some(dismissed_by), Some(dismissed_at)) => Some(Dismissal {
            dismissed_by,
            dismissed_at: micros_to_time(dismissed_at),
        }),
        _ => None,
    };
    Ok(FindingRecord {
        finding_id,
        account: account.clone(),
        finding: Finding {
            kind,
            subject,
            first_seq: row.get::<_, i64>(4) as u64,
            last_seq: row.get::<_, i64>(5) as u64,
            first_at: micros_to_time(row.get(6)),
            last_at: micros_to_time(row.get(7)),
            title: row.get(8),
            evidence_query: row.get(9),
        },
        detected_at: micros_to_time(row.get(10)),
        dismissal,
    })
}

async fn one_finding(
    client: &tokio_postgres::Client,
    account: &AccountId,
    finding_id: i64,
) -> Result<Option<FindingRecord>, StoreError> {
    client
        .query_opt(
            &format!(
                "SELECT {FINDING_COLUMNS} FROM attention_findings f JOIN accounts a ON a.account_row = f.account_row \
                 WHERE a.name = $1 AND f.finding_id = $2"
            ),
            &[&account.as_str(), &finding_id],
        )
        .await
        .map_err(database_error("reading an attention finding"))?
        .map(|row| finding_from_row(&row, account))
        .transpose()
}

#[async_trait]
impl AttentionStore for PostgresStore {
    async fn attention_progress(
        &self,
        account: &AccountId,
    ) -> Result<Option<AttentionProgress>, StoreError> {
        let client = self.inner.connection().await?;
        let row = client
            .query_opt(
                "SELECT p.next_seq, p.state FROM attention_progress p \
                 JOIN accounts a ON a.account_row = p.account_row WHERE a.name = $1",
                &[&account.as_str()],
            )
            .await
            .map_err(database_error("reading attention progress"))?;
        Ok(row.map(|row| AttentionProgress {
            next_seq: row.get::<_, i64>(0) as u64,
            state: row.get(1),
        }))
    }

    async fn save_attention_progress(
        &self,
        account: &AccountId,
        expected_next_seq: Option<u64>,
        progress: &AttentionProgress,
        findings: &[Finding],
        detected_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let context = "saving attention progress";
        let account_row = self
            .inner
            .account_row(account)
            .await?
            .ok_or_else(|| StoreError::AccountNotFound(account.clone()))?;
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error(context))?;
        let next_seq = progress.next_seq as i64;
        // The row lock the UPDATE (or the unique key the INSERT) takes makes this a
        // compare-and-set across nodes: the second of two workers finds `next_seq` moved.
        let saved = match expected_next_seq {
            None => {
                transaction
                    .execute(
                        "INSERT INTO attention_progress (account_row, next_seq, state) VALUES ($1, $2, $3) \
                         ON CONFLICT (account_row) DO NOTHING",
                        &[&account_row, &next_seq, &progress.state],
                    )
                    .await
            }
            Some(expected) => {
                transaction
                    .execute(
                        "UPDATE attention_progress SET next_seq = $2, state = $3 \
                         WHERE account_row = $1 AND next_seq = $4",
                        &[&account_row, &next_seq, &progress.state, &(expected as i64)],
                    )
                    .await
            }
        }
        .map_err(database_error(context))?;
        if saved == 0 {
            return Ok(false);
        }
        let insert = transaction
            .prepare(
                "INSERT INTO attention_findings (account_row, kind, subject_kind, subject, first_seq, last_seq, \
                 first_at, last_at, title, evidence_query, detected_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (account_row, kind, subject_kind, subject, first_seq) DO NOTHING",
            )
            .await
            .map_err(database_error(context))?;
        let detected_at_micros = unix_micros_of(detected_at);
        for finding in findings {
            transaction
                .execute(
                    &insert,
                    &[
                        &account_row,
                        &finding.kind.as_str(),
                        &finding.subject.kind_name(),
                        &finding.subject.value(),
                        &(finding.first_seq as i64),
                        &(finding.last_seq as i64),
                        &unix_micros_of(finding.first_at),
                        &unix_micros_of(finding.last_at),
                        &finding.title,
                        &finding.evidence_query,
                        &detected_at_micros,
                    ],
                )
                .await
                .map_err(database_error(context))?;
        }
        transaction
            .commit()
            .await
            .map_err(database_error(context))?;
        Ok(true)
    }

    async fn list_findings(
        &self,
        account: &AccountId,
        filter: &FindingFilter,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        let client = self.inner.connection().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {FINDING_COLUMNS} FROM attention_findings f JOIN accounts a ON a.account_row = f.account_row \
                     WHERE a.name = $1 \
                       AND ($2::text IS NULL OR (f.subject_kind = 'actor' AND f.subject = $2)) \
                       AND ($3 OR f.dismissed_at IS NULL) \
                     ORDER BY f.detected_at DESC, f.finding_id DESC LIMIT $4"
                ),
                &[
                    &account.as_str(),
                    &filter.about_actor,
                    &filter.include_dismissed,
                    &i64::from(filter.limit),
                ],
            )
            .await
            .map_err(database_error("listing attention findings"))?;
        rows.iter()
            .map(|row| finding_from_row(row, account))
            .collect()
    }

    async fn get_finding(
        &self,
        account: &AccountId,
        finding_id: i64,
    ) -> Result<Option<FindingRecord>, StoreError> {
        let client = self.inner.connection().await?;
        one_finding(&client, account, finding_id).await
    }

    async fn dismiss_finding(
        &self,
        account: &AccountId,
        finding_id: i64,
        dismissal: &Dismissal,
    ) -> Result<Option<FindingRecord>, StoreError> {
        let client = self.inner.connection().await?;
        // The first dismissal stands: a second click records nothing new.
        client
            .execute(
                "UPDATE attention_findings SET dismissed_by = $3, dismissed_at = $4 \
                 WHERE finding_id = $2 AND dismissed_at IS NULL \
                   AND account_row = (SELECT account_row FROM accounts WHERE name = $1)",
                &[
                    &account.as_str(),
                    &finding_id,
                    &dismissal.dismissed_by,
                    &unix_micros_of(dismissal.dismissed_at),
                ],
            )
            .await
            .map_err(database_error("dismissing an attention finding"))?;
        one_finding(&client, account, finding_id).await
    }
}
