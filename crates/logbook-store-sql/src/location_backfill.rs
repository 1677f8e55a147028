//! `LocationStore` in the SQL both stores run: one bounded batch of `logbook geoip backfill`,
//! which gives events stored before an IP database was configured the location they lack.
//!
//! Each account's position (the next `seq` to read) is kept in `location_backfill_progress`
//! (migration 0018) and saved in the batch's own transaction with the locations it wrote, so an
//! interrupted backfill continues where its last committed batch stopped. Only the location
//! columns of events whose `location` is still NULL are written: never the body, the leaf hash or
//! the flags, and never an event that already has a place.

use std::net::{IpAddr, Ipv6Addr};

use logbook_core::location::{LocationBackfillBatch, LocationColumns, SharedIpLocator};
use logbook_core::{AccountId, StoreError};

use crate::executor::{Backend, SqlDatabase};
use crate::personal_data::EventKeys;
use crate::place_terms::place_document;
use crate::shared_store::{SharedStore, existing_account_row};

const LOCATING: &str = "locating stored events";

impl<Database: SqlDatabase> SharedStore<Database> {
    /// `LocationStore::locate_stored_events`, with the store's way of naming an event.
    pub async fn locate_stored_events(
        &self,
        account: &AccountId,
        max_events: u32,
        locator: SharedIpLocator,
        from_start: bool,
        keys: EventKeys,
    ) -> Result<LocationBackfillBatch, StoreError> {
        let account = account.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, LOCATING, &account).await?;
                    if sql.backend() == Backend::Postgres {
                        // Row-level security admits this account's events only.
                        sql.query(
                            LOCATING,
                            "SELECT set_config('logbook.account_row', $1, true)",
                            &[account_row.to_string().into()],
                        )
                        .await?;
                    }
                    let from_seq = if from_start {
                        0
                    } else {
                        sql.query_optional(
                            LOCATING,
                            "SELECT next_seq FROM location_backfill_progress WHERE account_row = $1",
                            &[account_row.into()],
                        )
                        .await?
                        .map(|row| row.integer(0))
                        .transpose()?
                        .unwrap_or(0)
                    };
                    let key = keys.column;
                    let first_key = (keys.key_of_first_event)(account_row);
                    // An event without a place: on SQLite, one located at ingest since migration
                    // 0020 keeps its object in `locations` (`location_row`), not in the row.
                    let unlocated = if sql.backend() == Backend::Sqlite {
                        "location IS NULL AND location_row IS NULL"
                    } else {
                        "location IS NULL"
                    };
                    let rows = sql
                        .query(
                            LOCATING,
                            &format!(
                                "SELECT {key} - $3, ip, {unlocated} FROM events \
                                 WHERE account_row = $1 AND {key} >= $2 ORDER BY {key} LIMIT $4"
                            ),
                            &[
                                account_row.into(),
                                first_key.saturating_add(from_seq).into(),
                                first_key.into(),
                                i64::from(max_events).into(),
                            ],
                        )
                        .await?;
                    let mut batch = LocationBackfillBatch {
                        events_examined: rows.len() as u64,
                        events_located: 0,
                        done: rows.len() < max_events as usize,
                    };
                    let mut next_seq = from_seq;
                    for row in &rows {
                        let seq = row.integer(0)?;
                        next_seq = seq + 1;
                        let (Some(ip), true) = (row.optional_bytes(1)?, row.boolean(2)?) else {
                            continue;
                        };
                        let Ok(ip) = <[u8; 16]>::try_from(ip) else {
                            continue;
                        };
                        let ip = IpAddr::V6(Ipv6Addr::from(ip)).to_canonical();
                        let Some(columns) = LocationColumns::of(locator.as_ref(), Some(ip)) else {
                            continue;
                        };
                        let key_value = first_key.saturating_add(seq);
                        let located = sql
                            .execute(
                                LOCATING,
                                &format!(
                                    "UPDATE events SET country_code = $1, asn = $2, city = $3, \
                                     location = $4 WHERE account_row = $5 AND {key} = $6 \
                                     AND {unlocated}"
                                ),
                                &[
                                    columns.country_code.as_deref().into(),
                                    columns.asn.into(),
                                    columns.city.as_deref().into(),
                                    columns.json.as_str().into(),
                                    account_row.into(),
                                    key_value.into(),
                                ],
                            )
                            .await?;
                        // On SQLite the place is indexed as terms (`place_terms`), by whoever
                        // writes the columns; an event located before had no place to index.
                        if located == 1
                            && sql.backend() == Backend::Sqlite
                            && let Some(place) = place_document(
                                account_row,
                                columns.country_code.as_deref(),
                                columns.asn,
                                columns.city.as_deref(),
                            )
                        {
                            sql.execute(
                                LOCATING,
                                "INSERT INTO events_place_terms (rowid, terms) VALUES ($1, $2)",
                                &[key_value.into(), place.as_str().into()],
                            )
                            .await?;
                        }
                        batch.events_located += located;
                    }
                    sql.execute(
                        LOCATING,
                        "INSERT INTO location_backfill_progress (account_row, next_seq) \
                         VALUES ($1, $2) ON CONFLICT (account_row) DO UPDATE \
                         SET next_seq = excluded.next_seq",
                        &[account_row.into(), next_seq.into()],
                    )
                    .await?;
                    Ok(batch)
                })
            }))
            .await
    }
}
