//! Personal data by age and on request (`logbook_core::personal_data`) in the SQL both stores
//! run: the account's personal-data settings, and removal passes that rewrite event bodies in
//! bounded batches. The bodies themselves are rewritten by core (`bodies_after_removal`); here are
//! the reads and writes around it, the legal-hold check inside the same transaction, and the
//! new-IP history that goes with the events.

use std::collections::HashMap;

use logbook_core::personal_data::{
    AddressRemoval, PersonalDataBatch, PersonalDataRemoved, PersonalDataSelection,
    bodies_after_removal,
};
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::action_terms::{push_full_text_action_token_of_body, written_with_action_rows_sql};
use crate::actor_terms::{
    one_actor_match_expression, push_full_text_actor_token_of_body, written_with_actor_rows_sql,
};
use crate::encoding::unix_micros_of;
use crate::executor::{Backend, SqlDatabase, SqlExecutor};
use crate::full_text::full_text_document;
use crate::ip_terms::{actor_and_ip_match_sql, push_full_text_ip_token, written_with_ip_rows_sql};
use crate::place_terms::{
    place_document, push_full_text_place_of_stored_event, written_with_three_place_tokens_sql,
};
use crate::retention::retention_of_account_row;
use crate::shared_store::{SharedStore, existing_account_row};
use crate::target_terms::{push_full_text_target_tokens_of_body, written_with_target_rows_sql};
use crate::value::SqlValue;

/// How a store names an event inside its account: the key column and the key of the account's
/// seq 0 (`event_row` from `account_row << 40` on SQLite, `seq` from 0 on PostgreSQL).
#[derive(Debug, Clone, Copy)]
pub struct EventKeys {
    pub column: &'static str,
    pub key_of_first_event: fn(account_row: i64) -> i64,
}

const REMOVING: &str = "removing personal data";

fn seq_parameter(seq: u64) -> SqlValue {
    SqlValue::Integer(i64::try_from(seq).unwrap_or(i64::MAX))
}

/// Binds the transaction to the account, so PostgreSQL's row-level security admits its events
/// (and only its), and locks the account row against a concurrent hold or prune.
async fn enter_account(sql: &dyn SqlExecutor, account_row: i64) -> Result<(), StoreError> {
    if sql.backend() == Backend::Postgres {
        sql.query(
            REMOVING,
            "SELECT set_config('logbook.account_row', $1, true)",
            &[account_row.to_string().into()],
        )
        .await?;
        sql.query(
            REMOVING,
            "SELECT 1 FROM accounts WHERE account_row = $1 FOR UPDATE",
            &[account_row.into()],
        )
        .await?;
    }
    Ok(())
}

impl<Database: SqlDatabase> SharedStore<Database> {
    /// `RetentionStore::set_personal_data_policy`.
    pub async fn set_personal_data_policy(
        &self,
        account: &AccountId,
        personal_data_days: Option<u32>,
        keep_network: Option<bool>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const SETTING: &str = "setting a personal-data period";
        let account = account.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, SETTING, &account).await?;
                    sql.execute(
                        SETTING,
                        "INSERT INTO account_retention (account_row, personal_data_days, \
                         personal_keep_network, updated_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (account_row) DO UPDATE SET \
                         personal_data_days = excluded.personal_data_days, \
                         personal_keep_network = excluded.personal_keep_network, \
                         updated_at = excluded.updated_at",
                        &[
                            account_row.into(),
                            personal_data_days.map(i64::from).into(),
                            keep_network.map(i64::from).into(),
                            unix_micros_of(now).into(),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    /// `RetentionStore::set_personal_metadata_fields`.
    pub async fn set_personal_metadata_fields(
        &self,
        account: &AccountId,
        fields: Vec<String>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const SETTING: &str = "declaring personal metadata fields";
        let account = account.clone();
        let stored = (!fields.is_empty())
            .then(|| serde_json::to_string(&fields).expect("a list of names serializes"));
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, SETTING, &account).await?;
                    sql.execute(
                        SETTING,
                        "INSERT INTO account_retention (account_row, personal_metadata_fields, \
                         updated_at) VALUES ($1, $2, $3) ON CONFLICT (account_row) DO UPDATE SET \
                         personal_metadata_fields = excluded.personal_metadata_fields, \
                         updated_at = excluded.updated_at",
                        &[
                            account_row.into(),
                            stored.into(),
                            unix_micros_of(now).into(),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    /// `RetentionStore::remove_personal_data`: one batch in one transaction, refused with
    /// `LegalHold` while the account is held.
    pub async fn remove_personal_data(
        &self,
        account: &AccountId,
        batch: PersonalDataBatch,
        keys: EventKeys,
    ) -> Result<PersonalDataRemoved, StoreError> {
        let account = account.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, REMOVING, &account).await?;
                    enter_account(sql, account_row).await?;
                    let settings = retention_of_account_row(sql, account_row).await?;
                    if settings.legal_hold.is_some() {
                        return Err(StoreError::LegalHold(account));
                    }
                    let first_key = (keys.key_of_first_event)(account_row);
                    let key = keys.column;
                    let from_key =
                        first_key.saturating_add(i64::try_from(batch.from_seq).unwrap_or(i64::MAX));
                    // On SQLite, an event located at ingest since migration 0020 keeps its place
                    // columns in `locations`, and its place tokens in its `events_fts` document:
                    // three of them up to migration 0021, its location's one since; since
                    // migration 0029 its address is a token of that document too.
                    let place_columns = if sql.backend() == Backend::Sqlite {
                        format!(
                            "coalesce(country_code, (SELECT country_code FROM locations \
                             WHERE locations.location_row = events.location_row)), \
                             coalesce(asn, (SELECT asn FROM locations \
                             WHERE locations.location_row = events.location_row)), \
                             coalesce(city, (SELECT city FROM locations \
                             WHERE locations.location_row = events.location_row)), \
                             location_row, {}, {}, {}, {}, {}, ip, created_at",
                            written_with_three_place_tokens_sql("$1"),
                            written_with_target_rows_sql("$1"),
                            written_with_action_rows_sql("$1"),
                            written_with_actor_rows_sql("$1"),
                            written_with_ip_rows_sql("$1")
                        )
                    } else {
                        "country_code, asn, city".to_owned()
                    };
                    let rows = match &batch.selection {
                        PersonalDataSelection::AgedBelow { below_seq } => {
                            let below_key = first_key
                                .saturating_add(i64::try_from(*below_seq).unwrap_or(i64::MAX));
                            sql.query(
                                REMOVING,
                                &format!(
                                    "SELECT {key} - $4, body, {place_columns} FROM events \
                                     WHERE account_row = $1 AND {key} >= $2 AND {key} < $3 \
                                     ORDER BY {key} LIMIT $5"
                                ),
                                &[
                                    account_row.into(),
                                    from_key.into(),
                                    below_key.into(),
                                    first_key.into(),
                                    i64::from(batch.max_events).into(),
                                ],
                            )
                            .await?
                        }
                        PersonalDataSelection::Actor { actor_id } => {
                            let mut parameters: Vec<SqlValue> = vec![
                                account_row.into(),
                                from_key.into(),
                                first_key.into(),
                                actor_id.as_str().into(),
                                i64::from(batch.max_events).into(),
                            ];
                            // PostgreSQL reads the actor's events through its index on (account,
                            // actor). On SQLite no index of `events` holds actors since migration
                            // 0028: the batch's candidates are the actor's next events among its
                            // tokens (FTS5 reads a doclist from a rowid on, in rowid order) and
                            // among its rows of the events stored before, each list cut at the
                            // batch's size, so a batch reads about its own events.
                            let actor_events = if sql.backend() == Backend::Sqlite {
                                parameters.push(
                                    one_actor_match_expression(account_row, actor_id)
                                    .into(),
                                );
                                " AND event_row IN (\
                                 SELECT event_row FROM (SELECT event_row FROM event_actor_rows \
                                 WHERE account_row = $1 AND actor_id = $4 AND event_row >= $2 \
                                 ORDER BY event_row LIMIT $5) \
                                 UNION ALL SELECT rowid FROM (SELECT rowid FROM events_fts \
                                 WHERE events_fts MATCH $6 AND rowid >= $2 ORDER BY rowid LIMIT $5))"
                            } else {
                                ""
                            };
                            sql.query(
                                REMOVING,
                                &format!(
                                    "SELECT {key} - $3, body, {place_columns} FROM events \
                                     WHERE account_row = $1 AND actor_id = $4 AND {key} >= $2\
                                     {actor_events} ORDER BY {key} LIMIT $5"
                                ),
                                &parameters,
                            )
                            .await?
                        }
                    };
                    // On SQLite, what of each event the removal takes out of the indexes: its
                    // place terms, its address token, its row of addresses.
                    let mut indexed: HashMap<u64, IndexedPersonalData> = HashMap::new();
                    if sql.backend() == Backend::Sqlite {
                        for row in &rows {
                            let entry = indexed_personal_data(account_row, row)?;
                            if !entry.is_empty() {
                                indexed.insert(row.count(0)?, entry);
                            }
                        }
                    }
                    let rows: Vec<(u64, String)> = rows
                        .iter()
                        .map(|row| Ok((row.count(0)?, row.text(1)?)))
                        .collect::<Result<_, StoreError>>()?;
                    let changed =
                        bodies_after_removal(&rows, &batch.removal).map_err(|(seq, error)| {
                            StoreError::Database {
                                context: REMOVING,
                                message: format!("event seq {seq} of {account}: {error}"),
                            }
                        })?;
                    // The address goes from the columns and the indexes, and with it where it
                    // was (`IndexedPersonalData`), whatever of the address the body keeps.
                    for (seq, body) in &changed {
                        let key_value =
                            first_key.saturating_add(i64::try_from(*seq).unwrap_or(i64::MAX));
                        if let Some(entry) = indexed.get(seq) {
                            remove_indexed_personal_data(sql, account_row, key_value, entry)
                                .await?;
                        }
                        let interned_location = if sql.backend() == Backend::Sqlite {
                            ", location_row = NULL"
                        } else {
                            ""
                        };
                        sql.execute(
                            REMOVING,
                            &format!(
                                "UPDATE events SET body = $1, ip = NULL, location = NULL, \
                                 country_code = NULL, asn = NULL, city = NULL{interned_location} \
                                 WHERE account_row = $2 AND {key} = $3"
                            ),
                            &[body.as_str().into(), account_row.into(), key_value.into()],
                        )
                        .await?;
                    }
                    let done = rows.len() < batch.max_events as usize;
                    let next_seq = if done {
                        finish_selection(sql, account_row, &batch).await?;
                        None
                    } else {
                        Some(rows.last().map_or(batch.from_seq, |(seq, _)| seq + 1))
                    };
                    Ok(PersonalDataRemoved {
                        events_examined: rows.len() as u64,
                        events_changed: changed.len() as u64,
                        next_seq,
                    })
                })
            }))
            .await
    }
}

/// What goes when a selection is done: for aging, the high-water mark moves, and the new-IP
/// history forgets every address no remaining event holds (and, unless aging keeps networks,
/// every network none of the remembered addresses is in), and findings about addresses older
/// than the period go; for an erasure, the person's whole history goes (addresses, networks and countries).
async fn finish_selection(
    sql: &dyn SqlExecutor,
    account_row: i64,
    batch: &PersonalDataBatch,
) -> Result<(), StoreError> {
    match &batch.selection {
        PersonalDataSelection::AgedBelow { below_seq } => {
            sql.execute(
                REMOVING,
                "INSERT INTO account_retention (account_row, personal_aged_below_seq, updated_at) \
                 VALUES ($1, $2, 0) ON CONFLICT (account_row) DO UPDATE SET \
                 personal_aged_below_seq = CASE WHEN account_retention.personal_aged_below_seq \
                 < excluded.personal_aged_below_seq THEN excluded.personal_aged_below_seq \
                 ELSE account_retention.personal_aged_below_seq END",
                &[account_row.into(), seq_parameter(*below_seq)],
            )
            .await?;
            // PostgreSQL finds an event with the pair through its index on (account, ip). SQLite
            // has no index of `events` on either since migrations 0028 and 0029: an event stored
            // since holds both as tokens of its document, and FTS5 answers the two tokens at
            // once; one stored before has its address as a row of `event_ip_rows`, which leads to
            // the events to test for the actor.
            let pair_still_held = if sql.backend() == Backend::Sqlite {
                format!(
                    "EXISTS (SELECT 1 FROM events_fts WHERE events_fts MATCH {}) \
                     OR EXISTS (SELECT 1 FROM event_ip_rows r JOIN events e ON e.event_row = r.event_row \
                     WHERE r.account_row = actor_addresses.account_row AND r.ip = actor_addresses.ip \
                     AND e.actor_id = actor_addresses.actor_id)",
                    actor_and_ip_match_sql(
                        "actor_addresses.account_row",
                        "actor_addresses.actor_id",
                        "actor_addresses.ip"
                    )
                )
            } else {
                "EXISTS (SELECT 1 FROM events e WHERE e.account_row = actor_addresses.account_row \
                 AND e.ip = actor_addresses.ip AND e.actor_id = actor_addresses.actor_id)"
                    .to_owned()
            };
            sql.execute(
                REMOVING,
                &format!(
                    "DELETE FROM actor_addresses WHERE account_row = $1 AND NOT ({pair_still_held})"
                ),
                &[account_row.into()],
            )
            .await?;
            if batch.removal.address == AddressRemoval::Remove {
                sql.execute(
                    REMOVING,
                    "DELETE FROM actor_networks WHERE account_row = $1 AND NOT EXISTS (\
                     SELECT 1 FROM actor_addresses a WHERE a.account_row = actor_networks.account_row \
                     AND a.actor_id = actor_networks.actor_id \
                     AND substr(a.ip, 1, length(actor_networks.network)) = actor_networks.network)",
                    &[account_row.into()],
                )
                .await?;
            }
            sql.execute(
                REMOVING,
                "DELETE FROM attention_findings WHERE account_row = $1 AND subject_kind = 'ip' \
                 AND last_seq < $2",
                &[account_row.into(), seq_parameter(*below_seq)],
            )
            .await?;
        }
        PersonalDataSelection::Actor { actor_id } => {
            for table in ["actor_addresses", "actor_networks", "actor_countries"] {
                sql.execute(
                    REMOVING,
                    &format!("DELETE FROM {table} WHERE account_row = $1 AND actor_id = $2"),
                    &[account_row.into(), actor_id.as_str().into()],
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// What removing an event's address takes out of SQLite's indexes (nothing on PostgreSQL, whose
/// indexes are on the columns): where the address is (issue 19's location: a city and
/// coordinates within a few kilometres, the network's owner) is read off the address, so it goes
/// with it, and so do the address's token or row and its day count.
#[derive(Default)]
struct IndexedPersonalData {
    /// The event's document of `events_place_terms` (located before migration 0020, or by the
    /// backfill), to delete.
    place_terms: Option<String>,
    /// The event's `events_fts` document as the writer made it, with its place tokens (three, or
    /// its location's one since migration 0021) and its address token (since migration 0029),
    /// and the document without them that replaces it.
    full_text: Option<(String, String)>,
    /// The event's address, which leaves the day counts per address (migration 0029) and, for
    /// an event stored before that migration, `event_ip_rows`.
    address: Option<StoredAddress>,
}

/// An event's address as SQLite keeps it outside the event's row.
struct StoredAddress {
    /// The 16 stored bytes (`encoding::ip_bytes`).
    ip: Vec<u8>,
    created_at_micros: i64,
    /// Stored before migration 0029: a row of `event_ip_rows`, not a token of its document.
    written_as_row: bool,
}

impl IndexedPersonalData {
    fn is_empty(&self) -> bool {
        self.place_terms.is_none() && self.full_text.is_none() && self.address.is_none()
    }
}

/// What of the SQLite event `row` (selected with the place and spelling columns of
/// `remove_personal_data`) its address's removal takes out of the indexes.
fn indexed_personal_data(
    account_row: i64,
    row: &crate::value::SqlRow,
) -> Result<IndexedPersonalData, StoreError> {
    let country_code = row.optional_text(2)?;
    let asn = row.optional_integer(3)?;
    let city = row.optional_text(4)?;
    let location_row = row.optional_integer(5)?;
    let written_with_ip_rows = row.boolean(10)?;
    let ip = row.optional_bytes(11)?;
    let mut entry = IndexedPersonalData::default();
    if location_row.is_none() {
        entry.place_terms =
            place_document(account_row, country_code.as_deref(), asn, city.as_deref());
    }
    if let Some(ip) = &ip {
        entry.address = Some(StoredAddress {
            ip: ip.clone(),
            created_at_micros: row.integer(12)?,
            written_as_row: written_with_ip_rows,
        });
    }
    let ip_token = ip.filter(|_| !written_with_ip_rows);
    if location_row.is_none() && ip_token.is_none() {
        return Ok(entry);
    }
    // The document as the writer made it (the message's tokens, the location's, since migration
    // 0025 the targets', since 0026 the action's, since 0028 the actor's, since 0029 the
    // address's), and the same without the place and the address (none of the rest is personal
    // data that is removed: the actor's id stays, its name goes). A contentless FTS5 document is
    // replaced whole.
    let body = stored_body(&row.text(1)?);
    let message = body
        .get("message")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let mut written = full_text_document(account_row, message);
    let mut kept = written.clone();
    if let Some(location_row) = location_row {
        push_full_text_place_of_stored_event(
            &mut written,
            account_row,
            location_row,
            row.boolean(6)?,
            (country_code.as_deref(), asn, city.as_deref()),
        );
    }
    for document in [&mut written, &mut kept] {
        if !row.boolean(7)? {
            push_full_text_target_tokens_of_body(document, account_row, &body);
        }
        if !row.boolean(8)? {
            push_full_text_action_token_of_body(document, account_row, &body);
        }
        if !row.boolean(9)? {
            push_full_text_actor_token_of_body(document, account_row, &body);
        }
    }
    if let Some(ip) = &ip_token {
        push_full_text_ip_token(&mut written, account_row, ip);
    }
    if written != kept {
        entry.full_text = Some((written, kept));
    }
    Ok(entry)
}

/// Takes what `entry` names of the event `key_value` out of SQLite's indexes.
async fn remove_indexed_personal_data(
    sql: &dyn SqlExecutor,
    account_row: i64,
    key_value: i64,
    entry: &IndexedPersonalData,
) -> Result<(), StoreError> {
    if let Some(place) = &entry.place_terms {
        sql.execute(
            REMOVING,
            "INSERT INTO events_place_terms (events_place_terms, rowid, terms) \
             VALUES ('delete', $1, $2)",
            &[key_value.into(), place.as_str().into()],
        )
        .await?;
    }
    if let Some((written, kept)) = &entry.full_text {
        sql.execute(
            REMOVING,
            "INSERT INTO events_fts (events_fts, rowid, message) VALUES ('delete', $1, $2)",
            &[key_value.into(), written.as_str().into()],
        )
        .await?;
        if !kept.is_empty() {
            sql.execute(
                REMOVING,
                "INSERT INTO events_fts (rowid, message) VALUES ($1, $2)",
                &[key_value.into(), kept.as_str().into()],
            )
            .await?;
        }
    }
    let Some(address) = &entry.address else {
        return Ok(());
    };
    if address.written_as_row {
        sql.execute(
            REMOVING,
            "DELETE FROM event_ip_rows WHERE account_row = $1 AND ip = $2 \
             AND created_at = $3 AND event_row = $4",
            &[
                account_row.into(),
                SqlValue::Bytes(address.ip.clone()),
                address.created_at_micros.into(),
                key_value.into(),
            ],
        )
        .await?;
    }
    // The address's day count loses the event, in the same transaction as the event loses the
    // address; a day left with none has no row, as after pruning.
    let day_start = crate::day_counts::day_start_of(address.created_at_micros);
    for statement in [
        "UPDATE event_day_ip_counts SET events = events - 1 \
         WHERE day_start = $1 AND account_row = $2 AND ip = $3",
        "DELETE FROM event_day_ip_counts \
         WHERE day_start = $1 AND account_row = $2 AND ip = $3 AND events <= 0",
    ] {
        sql.execute(
            REMOVING,
            statement,
            &[
                day_start.into(),
                account_row.into(),
                SqlValue::Bytes(address.ip.clone()),
            ],
        )
        .await?;
    }
    Ok(())
}

/// A stored body as JSON (`null` when it is not JSON), whose message and targets are its
/// full-text document.
fn stored_body(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_default()
}
