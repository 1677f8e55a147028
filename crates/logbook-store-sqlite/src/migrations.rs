//! The schema: every migration in `migrations/`, embedded in the binary, applied in order inside a
//! transaction and tracked with `PRAGMA user_version`. Migrations are append-only.

use logbook_core::StoreError;
use rusqlite::Connection;

use crate::errors::database_error;

/// Every migration in order; `user_version` counts how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_people.sql"),
    include_str!("../migrations/0003_tree.sql"),
    include_str!("../migrations/0004_key_last_used.sql"),
    include_str!("../migrations/0005_actor_history.sql"),
    include_str!("../migrations/0006_alerting.sql"),
    include_str!("../migrations/0007_attention.sql"),
    include_str!("../migrations/0008_account_limits.sql"),
    include_str!("../migrations/0009_leaf_hash_in_event_row.sql"),
    include_str!("../migrations/0010_volume_quotas.sql"),
    include_str!("../migrations/0011_delivery_lanes.sql"),
    include_str!("../migrations/0012_retention.sql"),
    include_str!("../migrations/0013_personal_data.sql"),
    include_str!("../migrations/0014_account_management.sql"),
    include_str!("../migrations/0015_viewer_sessions.sql"),
    include_str!("../migrations/0016_single_sign_on.sql"),
    include_str!("../migrations/0017_event_location.sql"),
    include_str!("../migrations/0018_new_country.sql"),
    include_str!("../migrations/0019_place_terms.sql"),
    include_str!("../migrations/0020_interned_locations.sql"),
    include_str!("../migrations/0021_location_tokens.sql"),
    include_str!("../migrations/0022_event_hour_counts.sql"),
    include_str!("../migrations/0023_arrival_bounds.sql"),
    include_str!("../migrations/0024_event_day_counts.sql"),
    include_str!("../migrations/0025_target_tokens.sql"),
    include_str!("../migrations/0026_action_tokens.sql"),
    include_str!("../migrations/0027_key_index_key_first.sql"),
    include_str!("../migrations/0028_actor_tokens.sql"),
    include_str!("../migrations/0029_ip_tokens.sql"),
];

/// Every migration concatenated, so the benchmark's naive baselines build the very same tables and
/// indexes as the store.
pub fn schema_sql() -> String {
    MIGRATIONS.join("\n")
}

pub(crate) fn apply_migrations(connection: &mut Connection) -> Result<(), StoreError> {
    let applied: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(database_error("reading the schema version"))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Database {
            context: "checking the schema version",
            message: format!(
                "the database has schema version {applied}, newer than this logbook knows ({}); upgrade logbook",
                MIGRATIONS.len()
            ),
        });
    }
    for (index, migration_sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection
            .transaction()
            .map_err(database_error("starting a migration"))?;
        transaction
            .execute_batch(migration_sql)
            .map_err(database_error("applying a migration"))?;
        // PRAGMA does not take bound parameters; the value is our own integer.
        transaction
            .execute_batch(&format!("PRAGMA user_version = {}", index + 1))
            .map_err(database_error("recording the schema version"))?;
        transaction
            .commit()
            .map_err(database_error("committing a migration"))?;
        tracing::info!(schema_version = index + 1, "applied SQLite migration");
    }
    Ok(())
}
