//! Copying another store's history in, for `logbook migrate-store`: keys with their stored hash
//! and revocation, and events with the `seq`, `id` and body they already have. Events of an
//! account are appended strictly after the destination's `next_seq`, so a copy that was
//! interrupted continues where it stopped and can never fork an account's log.

use std::collections::BTreeMap;
use std::pin::pin;

use logbook_core::api_key::{ApiKeyRecord, KeyOwner};
use logbook_core::event::{EventRow, NewEvent};
use logbook_core::{AccountId, StoreError};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::PostgresStore;
use crate::encoding::{MessageTokens, ip_bytes, unix_micros_of};
use crate::errors::{database_error, pool_error};
use logbook_store_sql::encoding::outcome_code;

const IMPORT_COPY_COLUMNS: &str = "account_row, seq, created_at, id, action, actor_id, ip, outcome, new_ip, new_network, idempotency_key, fingerprint, message_tokens, body, leaf_hash, country_code, asn, city, location, new_country";
const IMPORT_COPY_TYPES: [Type; 20] = [
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::INT2,
    Type::BOOL,
    Type::BOOL,
    Type::TEXT,
    Type::BYTEA,
    Type::TS_VECTOR,
    Type::TEXT,
    Type::BYTEA,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
];

fn import_error(message: String) -> StoreError {
    StoreError::Database {
        context: "importing events",
        message,
    }
}

impl PostgresStore {
    /// Stores a key exactly as another store holds it (hash, scopes, times, revocation). Returns
    /// false when a key with this id is already here.
    pub async fn import_api_key(
        &self,
        record: &ApiKeyRecord,
        key_hash: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let client = self.inner.connection().await?;
        let account_row = match &record.owner {
            KeyOwner::Account(account) => Some(
                self.inner
                    .account_rows
                    .find(&client, account)
                    .await?
                    .ok_or_else(|| StoreError::AccountNotFound(account.clone()))?,
            ),
            KeyOwner::Platform => None,
        };
        let inserted = client
            .execute(
                "INSERT INTO api_keys (key_id, key_hash, account_row, scope_ingest, scope_read, display_prefix, description, created_at, revoked_at, scope_admin) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (key_id) DO NOTHING",
                &[
                    &record.key_id.as_str(),
                    &key_hash.as_slice(),
                    &account_row,
                    &record.scopes.ingest,
                    &record.scopes.read,
                    &record.display_prefix,
                    &record.description,
                    &unix_micros_of(record.created_at),
                    &record.revoked_at.map(unix_micros_of),
                    &record.scopes.admin,
                ],
            )
            .await
            .map_err(database_error("importing an API key"))?;
        Ok(inserted == 1)
    }

    /// Appends `rows` (events of `account`, consecutive `seq`s starting at the account's current
    /// `next_seq` here) with their ids and bodies unchanged, in one transaction. An event erased
    /// before leaf version 2 cannot prove its leaf from its content: its leaf hash, as the
    /// source's tree keeps it, comes in `erased_leaf_hashes` by `seq`.
    pub async fn import_events(
        &self,
        account: &AccountId,
        rows: &[EventRow],
        erased_leaf_hashes: &std::collections::HashMap<u64, logbook_core::merkle::Hash>,
    ) -> Result<(), StoreError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        for (offset, row) in rows.iter().enumerate() {
            if row.seq != first.seq + offset as u64 {
                return Err(import_error(format!(
                    "events of {account} are not consecutive at seq {}",
                    row.seq
                )));
            }
        }
        // Decoded once, off the transaction: the indexed columns come from each stored body.
        let mut prepared = Vec::with_capacity(rows.len());
        for row in rows {
            let stored = row.decode().map_err(|error| {
                import_error(format!(
                    "event seq {} of {account} does not decode: {error}",
                    row.seq
                ))
            })?;
            if &stored.account != account {
                return Err(import_error(format!(
                    "event seq {} names account {}, not {account}",
                    row.seq, stored.account
                )));
            }
            // The fingerprint covers `created_at` only when the producer sent it; a stored body
            // does not say, and a defaulted `created_at` equals `received_at` exactly.
            let created_at_was_sent = stored.created_at != stored.received_at;
            let event = NewEvent {
                id: stored.id,
                account: stored.account,
                received_at: stored.received_at,
                created_at: stored.created_at,
                created_at_was_sent,
                action: stored.action,
                message: stored.message,
                actor: stored.actor,
                ip: stored.ip,
                user_agent: stored.user_agent,
                outcome: stored.outcome,
                targets: stored.targets,
                changes: stored.changes,
                metadata: stored.metadata,
                key: stored.key,
                salt: logbook_core::personal_data::EventSalt::random(),
            };
            let fingerprint = event.key.as_ref().map(|_| event.content_fingerprint());
            let tokens = MessageTokens::of_message(&event.message);
            // The leaf hash of the body as stored (the destination's event row keeps it, and the
            // account's tree grows from it below).
            let leaf = row.leaf().map_err(|error| {
                import_error(format!("event seq {} of {account}: {error}", row.seq))
            })?;
            let leaf_hash = match leaf.verifiable_hash() {
                Some(leaf_hash) => leaf_hash,
                None => *erased_leaf_hashes.get(&row.seq).ok_or_else(|| {
                    import_error(format!(
                        "event seq {} of {account} was erased before leaf version 2 and its stored leaf hash was not given",
                        row.seq
                    ))
                })?,
            };
            // The location moves as it was stored: an import never looks an address up again.
            let location = match &row.location {
                Some(json) => logbook_core::location::LocationColumns::of_stored_json(json)
                    .map_err(|error| {
                        import_error(format!(
                            "the location of event seq {} of {account} does not decode: {error}",
                            row.seq
                        ))
                    })?,
                None => None,
            }
            .map(std::sync::Arc::new);
            prepared.push((row, event, fingerprint, tokens, leaf_hash, location));
        }

        let mut client = self
            .inner
            .writer_pool
            .get()
            .await
            .map_err(pool_error("connecting the importer"))?;
        let account_row = *self
            .inner
            .account_rows
            .resolve_or_create(
                &client,
                BTreeMap::from([(account, prepared[0].1.received_at)]),
            )
            .await?
            .get(account)
            .ok_or_else(|| StoreError::AccountNotFound(account.clone()))?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("starting an import"))?;
        transaction
            .batch_execute("SET LOCAL logbook.all_accounts = 'on'")
            .await
            .map_err(database_error("starting an import"))?;
        let next_seq: i64 = transaction
            .query_one(
                "SELECT next_seq FROM accounts WHERE account_row = $1 FOR UPDATE",
                &[&account_row],
            )
            .await
            .map_err(database_error("locking an account"))?
            .get(0);
        if next_seq as u64 != first.seq {
            return Err(import_error(format!(
                "{account} continues at seq {next_seq} here, not at {}",
                first.seq
            )));
        }
        let mut targets: Vec<(i64, &str, i64)> = Vec::new();
        {
            let sink = transaction
                .copy_in(&format!(
                    "COPY events_staging ({IMPORT_COPY_COLUMNS}) FROM STDIN (FORMAT binary)"
                ))
                .await
                .map_err(database_error("copying events"))?;
            let mut copy = pin!(BinaryCopyInWriter::new(sink, &IMPORT_COPY_TYPES));
            for (row, event, fingerprint, tokens, leaf_hash, location) in &prepared {
                let location = location.as_ref();
                let seq = row.seq as i64;
                copy.as_mut()
                    .write(&[
                        &account_row,
                        &seq,
                        &row.created_at_micros,
                        &event.id.as_str(),
                        &event.action,
                        &event.actor.as_ref().map(|actor| actor.id.as_str()),
                        &event.ip.map(ip_bytes).as_ref().map(|ip| ip.as_slice()),
                        &event.outcome.map(|outcome| outcome_code(outcome) as i16),
                        &row.new_ip,
                        &row.new_network,
                        &event.key,
                        &fingerprint
                            .as_ref()
                            .map(|fingerprint| fingerprint.as_slice()),
                        tokens,
                        &row.body_without_seq,
                        &leaf_hash.as_slice(),
                        &location.and_then(|location| location.country_code.as_deref()),
                        &location.and_then(|location| location.asn),
                        &location.and_then(|location| location.city.as_deref()),
                        &location.map(|location| location.json.as_str()),
                        &row.new_country,
                    ])
                    .await
                    .map_err(database_error("copying events"))?;
                for target in &event.targets {
                    targets.push((account_row, target.id.as_str(), seq));
                }
            }
            copy.as_mut()
                .finish()
                .await
                .map_err(database_error("copying events"))?;
        }
        targets.sort_unstable();
        targets.dedup();
        if !targets.is_empty() {
            let sink = transaction
                .copy_in("COPY event_targets_staging (account_row, target_id, seq) FROM STDIN (FORMAT binary)")
                .await
                .map_err(database_error("copying event targets"))?;
            let mut copy = pin!(BinaryCopyInWriter::new(
                sink,
                &[Type::INT8, Type::TEXT, Type::INT8]
            ));
            for (account_row, target_id, seq) in &targets {
                copy.as_mut()
                    .write(&[account_row, target_id, seq])
                    .await
                    .map_err(database_error("copying event targets"))?;
            }
            copy.as_mut()
                .finish()
                .await
                .map_err(database_error("copying event targets"))?;
            transaction
                .execute(
                    "INSERT INTO event_targets SELECT * FROM event_targets_staging",
                    &[],
                )
                .await
                .map_err(database_error("importing event targets"))?;
        }
        transaction
            .execute("INSERT INTO events SELECT * FROM events_staging", &[])
            .await
            .map_err(database_error("importing events"))?;
        // Where each actor was seen before the move is history too: without it, the first event
        // after the move from a familiar address would be flagged new (the 0005 backfill, for
        // this chunk; an earlier chunk's first sighting stands).
        transaction
            .batch_execute(
                "INSERT INTO actor_addresses (account_row, actor_id, ip, first_seen_at) \
                 SELECT account_row, actor_id, ip, min(created_at) FROM events_staging \
                 WHERE actor_id IS NOT NULL AND ip IS NOT NULL \
                 GROUP BY account_row, actor_id, ip \
                 ON CONFLICT DO NOTHING; \
                 INSERT INTO actor_networks (account_row, actor_id, network) \
                 SELECT DISTINCT account_row, actor_id, \
                     CASE WHEN substring(ip from 1 for 12) = '\\x00000000000000000000ffff'::bytea \
                          THEN substring(ip from 1 for 15) ELSE substring(ip from 1 for 6) END \
                 FROM events_staging WHERE actor_id IS NOT NULL AND ip IS NOT NULL \
                 ON CONFLICT DO NOTHING; \
                 INSERT INTO actor_countries (account_row, actor_id, country_code, first_seen_at) \
                 SELECT account_row, actor_id, country_code, min(created_at) FROM events_staging \
                 WHERE actor_id IS NOT NULL AND country_code IS NOT NULL \
                     AND outcome IS DISTINCT FROM 1 \
                 GROUP BY account_row, actor_id, country_code \
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(database_error("importing where actors were seen"))?;
        // The timeline's day counts take the chunk's events as the writer's groups would.
        transaction
            .execute(
                "INSERT INTO event_day_counts (account_row, day_start, events) \
                 SELECT account_row, created_at - (((created_at % 86400000000) + 86400000000) % 86400000000), count(*) \
                 FROM events_staging GROUP BY 1, 2 ORDER BY 1, 2 \
                 ON CONFLICT (account_row, day_start) \
                 DO UPDATE SET events = event_day_counts.events + excluded.events",
                &[],
            )
            .await
            .map_err(database_error("counting imported events per day"))?;
        // Imported bytes count toward the account's stored_bytes quota like ingested ones (they
        // are history, so not toward a day's events).
        transaction
            .execute(
                "INSERT INTO account_volume_usage (account_row, usage_day, events_on_usage_day, stored_bytes) \
                 SELECT $1, 0, 0, coalesce(sum(octet_length(body)), 0) FROM events_staging \
                 ON CONFLICT (account_row) DO UPDATE \
                 SET stored_bytes = account_volume_usage.stored_bytes + excluded.stored_bytes",
                &[&account_row],
            )
            .await
            .map_err(database_error("counting imported bytes"))?;
        // The account's tree grows in the same transaction, from the stored bodies, so the
        // imported log verifies against the checkpoints signed before the move.
        let mut trees = crate::tree::load_trees(&*transaction, &[account_row]).await?;
        let tree = trees
            .get_mut(&account_row)
            .expect("load_trees answers every account asked");
        if tree.size() != first.seq {
            return Err(import_error(format!(
                "the tree of {account} covers {} events here, not {}",
                tree.size(),
                first.seq
            )));
        }
        let mut tree_appends = crate::tree::TreeAppends::default();
        for (_, _, _, _, leaf_hash, _) in &prepared {
            tree_appends.append_leaf(account_row, tree, *leaf_hash);
        }
        tree_appends.write(&*transaction, &trees).await?;
        let last_seq = rows.last().map_or(first.seq, |row| row.seq) as i64;
        transaction
            .execute(
                "UPDATE accounts SET next_seq = $2 WHERE account_row = $1",
                &[&account_row, &(last_seq + 1)],
            )
            .await
            .map_err(database_error("importing events"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("committing imported events"))
    }
}
