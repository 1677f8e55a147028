//! `UnfamiliarIpStore`: each account's known networks (`known_networks` and their
//! `known_network_blocks`, migration 0005) and where an actor was seen, in one SQL text for both
//! stores. The actor history itself is written by each store's writer in the events' transaction
//! (`actor_history.rs` of each store), where the detection differs on purpose.

use std::net::IpAddr;

use async_trait::async_trait;
use logbook_core::store::UnfamiliarIpStore;
use logbook_core::unfamiliar_ip::{
    ACTOR_EVENTS_SCANNED, ActorAddress, KnownNetwork, NetworkName, RecentAddressActivity,
    block_bounds, merge_actor_addresses,
};
use logbook_core::{AccountId, StoreError};

use crate::actor_terms::one_actor_match_expression;
use crate::encoding::unix_micros_of;
use crate::executor::{Backend, SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, account_row, existing_account_row};
use crate::value::SqlValue;

async fn read_known_networks(
    sql: &dyn SqlExecutor,
    account_row: i64,
) -> Result<Vec<KnownNetwork>, StoreError> {
    const READING: &str = "reading known networks";
    let names = sql
        .query(
            READING,
            "SELECT name, updated_at FROM known_networks WHERE account_row = $1 ORDER BY name",
            &[account_row.into()],
        )
        .await?;
    let blocks = sql
        .query(
            READING,
            "SELECT name, cidr FROM known_network_blocks WHERE account_row = $1 \
             ORDER BY name, position",
            &[account_row.into()],
        )
        .await?
        .iter()
        .map(|row| Ok((row.text(0)?, row.text(1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    names
        .iter()
        .map(|row| {
            let name = row.text(0)?;
            let corrupt = |message: String| StoreError::Database {
                context: READING,
                message,
            };
            Ok(KnownNetwork {
                name: NetworkName::parse(&name)
                    .map_err(|error| corrupt(format!("stored network name {name:?}: {error}")))?,
                blocks: blocks
                    .iter()
                    .filter(|(block_name, _)| *block_name == name)
                    .map(|(_, cidr)| {
                        cidr.parse()
                            .map_err(|_| corrupt(format!("stored block {cidr:?} of {name:?}")))
                    })
                    .collect::<Result<_, _>>()?,
                updated_at: row.time(1)?,
            })
        })
        .collect()
}

/// Reads the network named `name` and deletes its rows, in the caller's write transaction, after
/// serializing it with every other change of the account's networks: PostgreSQL locks the
/// account's row (two nodes saving one name at once would otherwise both find it absent and the
/// second insert would fail), SQLite's write transactions are serialized whole already, and it
/// has no `FOR UPDATE`.
async fn take_known_network(
    sql: &dyn SqlExecutor,
    context: &'static str,
    account_row: i64,
    name: &NetworkName,
) -> Result<Option<KnownNetwork>, StoreError> {
    sql.query(
        context,
        &format!(
            "SELECT 1 FROM accounts WHERE account_row = $1{}",
            sql.backend().for_update()
        ),
        &[account_row.into()],
    )
    .await?;
    let previous = read_known_networks(sql, account_row)
        .await?
        .into_iter()
        .find(|known| known.name == *name);
    for table in ["known_network_blocks", "known_networks"] {
        sql.execute(
            context,
            &format!("DELETE FROM {table} WHERE account_row = $1 AND name = $2"),
            &[account_row.into(), name.as_str().into()],
        )
        .await?;
    }
    Ok(previous)
}

/// A stored 16-byte address as the address it was written from (IPv4 for the mapped form);
/// anything else is no address.
fn ip_of_stored_bytes(bytes: &[u8]) -> Option<IpAddr> {
    let octets: [u8; 16] = bytes.try_into().ok()?;
    Some(IpAddr::V6(octets.into()).to_canonical())
}

#[async_trait]
impl<Database: SqlDatabase> UnfamiliarIpStore for SharedStore<Database> {
    async fn known_networks(&self, account: &AccountId) -> Result<Vec<KnownNetwork>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    match account_row(sql, "reading known networks", &account).await? {
                        Some(account_row) => read_known_networks(sql, account_row).await,
                        None => Ok(Vec::new()),
                    }
                })
            }))
            .await
    }

    async fn save_known_network(
        &self,
        account: &AccountId,
        network: &KnownNetwork,
    ) -> Result<Option<KnownNetwork>, StoreError> {
        const SAVING: &str = "saving a known network";
        let account = account.clone();
        let network = network.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, SAVING, &account).await?;
                    let previous =
                        take_known_network(sql, SAVING, account_row, &network.name).await?;
                    sql.execute(
                        SAVING,
                        "INSERT INTO known_networks (account_row, name, updated_at) \
                         VALUES ($1, $2, $3)",
                        &[
                            account_row.into(),
                            network.name.as_str().into(),
                            unix_micros_of(network.updated_at).into(),
                        ],
                    )
                    .await?;
                    for (position, block) in network.blocks.iter().enumerate() {
                        let (first, last) = block_bounds(block);
                        sql.execute(
                            SAVING,
                            "INSERT INTO known_network_blocks \
                             (account_row, name, position, cidr, first_ip, last_ip) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                            &[
                                account_row.into(),
                                network.name.as_str().into(),
                                (position as i64).into(),
                                block.to_string().into(),
                                first.to_vec().into(),
                                last.to_vec().into(),
                            ],
                        )
                        .await?;
                    }
                    Ok(previous)
                })
            }))
            .await
    }

    async fn delete_known_network(
        &self,
        account: &AccountId,
        name: &NetworkName,
    ) -> Result<Option<KnownNetwork>, StoreError> {
        const DELETING: &str = "deleting a known network";
        let account = account.clone();
        let name = name.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    match account_row(sql, DELETING, &account).await? {
                        Some(account_row) => {
                            take_known_network(sql, DELETING, account_row, &name).await
                        }
                        None => Ok(None),
                    }
                })
            }))
            .await
    }

    async fn actor_addresses(
        &self,
        account: &AccountId,
        actor_id: &str,
        limit: u32,
    ) -> Result<Vec<ActorAddress>, StoreError> {
        const READING: &str = "reading where an actor was seen";
        let account = account.clone();
        let found = self
            .database
            .read(Box::new(move |sql| {
                Box::pin(async move { account_row(sql, READING, &account).await })
            }))
            .await?;
        let Some(account_row) = found else {
            return Ok(Vec::new());
        };
        let actor_id = actor_id.to_owned();
        let scanned = i64::from(ACTOR_EVENTS_SCANNED);
        // The actor's events are read bound to the account (row-level security on PostgreSQL).
        let (recent, history) = self
            .database
            .read_account(
                account_row,
                Box::new(move |sql| {
                    Box::pin(async move {
                        // The actor's newest events, bounded: on PostgreSQL through its index
                        // on (account, actor, created_at). On SQLite, where no index holds actors
                        // since migration 0028, the candidates are the actor's newest arrivals
                        // among its tokens (FTS5 reads the doclist backwards) and its newest rows
                        // of the events stored before (keyed by `created_at`), each cut at the
                        // bound, so the read stays bounded whatever the actor's history; "newest"
                        // among the tokens is by arrival, which differs from `created_at` order
                        // only for an actor with more events than the bound, some of them sent
                        // out of order.
                        let mut parameters: Vec<SqlValue> =
                            vec![account_row.into(), actor_id.as_str().into(), scanned.into()];
                        let actor_events = if sql.backend() == Backend::Sqlite {
                            parameters
                                .push(one_actor_match_expression(account_row, &actor_id).into());
                            "SELECT ip, created_at FROM events \
                             WHERE account_row = $1 AND actor_id = $2 AND event_row IN \
                             (SELECT event_row FROM (SELECT event_row FROM event_actor_rows \
                              WHERE account_row = $1 AND actor_id = $2 \
                              ORDER BY created_at DESC LIMIT $3) \
                              UNION ALL SELECT rowid FROM (SELECT rowid FROM events_fts \
                              WHERE events_fts MATCH $4 ORDER BY rowid DESC LIMIT $3)) \
                             ORDER BY created_at DESC LIMIT $3"
                        } else {
                            "SELECT ip, created_at FROM events \
                             WHERE account_row = $1 AND actor_id = $2 \
                             ORDER BY created_at DESC LIMIT $3"
                        };
                        let recent = sql
                            .query(
                                READING,
                                &format!(
                                    "SELECT ip, min(created_at), max(created_at), count(*) FROM \
                                     ({actor_events}) AS newest \
                                     WHERE ip IS NOT NULL GROUP BY ip"
                                ),
                                &parameters,
                            )
                            .await?;
                        let history = sql
                            .query(
                                READING,
                                "SELECT ip, first_seen_at FROM actor_addresses \
                                 WHERE account_row = $1 AND actor_id = $2 \
                                 ORDER BY first_seen_at DESC LIMIT $3",
                                &[account_row.into(), actor_id.into(), scanned.into()],
                            )
                            .await?;
                        Ok((recent, history))
                    })
                }),
            )
            .await?;
        let mut recent_activity = Vec::with_capacity(recent.len());
        for row in &recent {
            if let Some(ip) = ip_of_stored_bytes(&row.bytes(0)?) {
                recent_activity.push(RecentAddressActivity {
                    ip,
                    earliest_at: row.time(1)?,
                    latest_at: row.time(2)?,
                    event_count: row.count(3)?,
                });
            }
        }
        let mut first_seen = Vec::with_capacity(history.len());
        for row in &history {
            if let Some(ip) = ip_of_stored_bytes(&row.bytes(0)?) {
                first_seen.push((ip, row.time(1)?));
            }
        }
        Ok(merge_actor_addresses(
            recent_activity,
            first_seen,
            limit as usize,
        ))
    }
}
