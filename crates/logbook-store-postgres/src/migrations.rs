//! Schema migrations: the numbered files in `migrations/`, applied in order at start-up and
//! recorded in `schema_migrations`. Every node runs them under one PostgreSQL advisory lock, so two
//! nodes starting at once apply each migration exactly once (the second waits, then finds nothing
//! to do). Migrations are append-only: a landed file is never edited.

use logbook_core::StoreError;
use tokio_postgres::Client;

use crate::errors::database_error;

/// `(version, name, sql)` in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_initial",
        include_str!("../migrations/0001_initial.sql"),
    ),
    (
        2,
        "0002_people",
        include_str!("../migrations/0002_people.sql"),
    ),
    (3, "0003_tree", include_str!("../migrations/0003_tree.sql")),
    (
        4,
        "0004_key_last_used",
        include_str!("../migrations/0004_key_last_used.sql"),
    ),
    (
        5,
        "0005_actor_history",
        include_str!("../migrations/0005_actor_history.sql"),
    ),
    (
        6,
        "0006_alerting",
        include_str!("../migrations/0006_alerting.sql"),
    ),
    (
        7,
        "0007_attention",
        include_str!("../migrations/0007_attention.sql"),
    ),
    (
        8,
        "0008_account_limits",
        include_str!("../migrations/0008_account_limits.sql"),
    ),
    (
        9,
        "0009_leaf_hash_in_event_row",
        include_str!("../migrations/0009_leaf_hash_in_event_row.sql"),
    ),
    (
        10,
        "0010_volume_quotas",
        include_str!("../migrations/0010_volume_quotas.sql"),
    ),
    (
        11,
        "0011_delivery_lanes",
        include_str!("../migrations/0011_delivery_lanes.sql"),
    ),
    (
        12,
        "0012_retention",
        include_str!("../migrations/0012_retention.sql"),
    ),
    (
        13,
        "0013_personal_data",
        include_str!("../migrations/0013_personal_data.sql"),
    ),
    (
        14,
        "0014_account_management",
        include_str!("../migrations/0014_account_management.sql"),
    ),
    (
        15,
        "0015_viewer_sessions",
        include_str!("../migrations/0015_viewer_sessions.sql"),
    ),
    (
        16,
        "0016_single_sign_on",
        include_str!("../migrations/0016_single_sign_on.sql"),
    ),
    (
        17,
        "0017_event_location",
        include_str!("../migrations/0017_event_location.sql"),
    ),
    (
        18,
        "0018_new_country",
        include_str!("../migrations/0018_new_country.sql"),
    ),
    (
        19,
        "0019_event_hour_counts",
        include_str!("../migrations/0019_event_hour_counts.sql"),
    ),
    (
        20,
        "0020_event_day_counts",
        include_str!("../migrations/0020_event_day_counts.sql"),
    ),
    (
        21,
        "0021_actor_countries_history",
        include_str!("../migrations/0021_actor_countries_history.sql"),
    ),
    (
        22,
        "0022_key_and_id_indexes_value_first",
        include_str!("../migrations/0022_key_and_id_indexes_value_first.sql"),
    ),
];

/// The advisory lock every node takes while migrating ("logbook" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x006c_6f67_626f_6f6b;

/// The unprivileged role that sessions of a superuser (or any role that bypasses row-level
/// security) switch to, so the row-level security policies apply to them too.
pub(crate) const ROW_SECURITY_ROLE: &str = "logbook_rls";

/// What start-up learned about the connecting role.
pub(crate) struct SchemaReady {
    /// The connecting role is a superuser, which always bypasses row-level security, so reading
    /// sessions must `SET ROLE logbook_rls`.
    pub switch_to_row_security_role: bool,
    /// The connecting role bypasses row-level security (a superuser or `BYPASSRLS`), so the
    /// writer may COPY straight into the event tables.
    pub writer_bypasses_row_security: bool,
}

/// Applies every migration not yet recorded, under the migration lock, and prepares the
/// row-security role when the connecting role would bypass the policies.
pub(crate) async fn apply_migrations(client: &mut Client) -> Result<SchemaReady, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(database_error("taking the migration lock"))?;
    let result = apply_under_lock(client).await;
    // Unlocking also happens when the session ends, so a failure here loses nothing.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    result
}

async fn apply_under_lock(client: &mut Client) -> Result<SchemaReady, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version bigint PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(database_error("creating schema_migrations"))?;
    let applied: Vec<i64> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(database_error("reading schema_migrations"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let newest_known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if let Some(newest_applied) = applied.last()
        && *newest_applied > newest_known
    {
        return Err(StoreError::Database {
            context: "checking the schema version",
            message: format!(
                "the database has schema version {newest_applied}, newer than this logbook knows ({newest_known}); upgrade logbook"
            ),
        });
    }
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("starting a migration"))?;
        transaction
            .batch_execute(sql)
            .await
            .map_err(database_error("applying a migration"))?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(database_error("recording a migration"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("committing a migration"))?;
        tracing::info!(version, name, "applied PostgreSQL migration");
    }

    let role = client
        .query_one(
            "SELECT rolsuper, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(database_error("reading the connecting role"))?;
    let bypasses_row_security: bool = role.get(0);
    let writer_bypasses_row_security: bool = role.get(1);
    if bypasses_row_security {
        // The role may change what accounts, keys and people need, and delete only what a person
        // may lose (users, sessions, used-up recovery codes) and what removing personal data
        // forgets (new-IP history, findings about aged addresses), ended viewer sessions and an
        // account's embedded-view settings: never an event.
        // Roles are shared by every database of the cluster, so another database's start-up may
        // create it at the same moment: either error means it exists.
        client
            .batch_execute(&format!(
                "DO $$ BEGIN CREATE ROLE {ROW_SECURITY_ROLE} NOLOGIN;
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
                 GRANT USAGE ON SCHEMA public TO {ROW_SECURITY_ROLE};
                 GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {ROW_SECURITY_ROLE};
                 GRANT DELETE ON users, sessions, recovery_codes TO {ROW_SECURITY_ROLE};
                 GRANT DELETE ON known_networks, known_network_blocks TO {ROW_SECURITY_ROLE};
                 GRANT DELETE ON alert_rules, alert_rule_destinations, alert_destinations, deliveries TO {ROW_SECURITY_ROLE};
                 GRANT DELETE ON actor_addresses, actor_networks, actor_countries, attention_findings TO {ROW_SECURITY_ROLE};
                 GRANT DELETE ON viewer_sessions, embed_looks TO {ROW_SECURITY_ROLE};
                 GRANT DELETE ON single_sign_on_settings, single_sign_on_attempts TO {ROW_SECURITY_ROLE};
                 GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {ROW_SECURITY_ROLE};
                 GRANT EXECUTE ON FUNCTION logbook_message_matches(tsquery, bigint) TO {ROW_SECURITY_ROLE};"
            ))
            .await
            .map_err(database_error("preparing the row-security role"))?;
    }
    Ok(SchemaReady {
        switch_to_row_security_role: bypasses_row_security,
        writer_bypasses_row_security,
    })
}

/// The SQL of every migration, in order (for tests and operators).
pub fn schema_sql() -> impl Iterator<Item = &'static str> {
    MIGRATIONS.iter().map(|(_, _, sql)| *sql)
}
