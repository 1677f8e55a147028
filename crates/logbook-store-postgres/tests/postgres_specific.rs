//! Behaviour only PostgreSQL has: several nodes (stores) on one database, migrations racing at
//! start-up, row-level security as a second isolation layer, and query plans on skewed data.
//! Each test uses its own fresh database; without PostgreSQL a local run prints SKIPPED.

use std::collections::BTreeSet;
use std::sync::Arc;

use logbook_core::query::{Condition, Query, TextSearch};
use logbook_core::store::{AppendOutcome, EventQuery, StoredAccountLimits};
use logbook_core::timeline::TimeBucket;
use logbook_core::{AccountId, Store, StoreError};
use logbook_store_postgres::scratch_database::ScratchDatabase;
use logbook_store_postgres::{PostgresOptions, PostgresStore};
use logbook_testkit::builders::RECEIVED_AT;
use logbook_testkit::{EventBuilder, clause, patterns, query};
use time::Duration;
use time::macros::datetime;

fn account(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

async fn connect(database: &ScratchDatabase) -> PostgresStore {
    PostgresStore::connect(
        &database.url,
        PostgresOptions {
            pool_size: 4,
            ..PostgresOptions::default()
        },
    )
    .await
    .expect("the store connects")
}

fn seq_of(outcome: &AppendOutcome) -> u64 {
    match outcome {
        AppendOutcome::Stored(receipt) | AppendOutcome::Duplicate(receipt) => receipt.seq,
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_starting_at_once_apply_each_migration_once() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let (first, second) = tokio::join!(connect(&database), connect(&database));
    first
        .append_events(vec![EventBuilder::new("acme").build()])
        .await
        .unwrap();
    assert_eq!(second.next_seq(&account("acme")).await.unwrap(), 1);
    let versions = first
        .run_read_as_account(
            &account("acme"),
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations",
        )
        .await
        .unwrap();
    // Every known migration is recorded exactly once, in order, however many there are.
    let expected_versions = (1..=logbook_store_postgres::schema_sql().count())
        .map(|version| version.to_string())
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(versions, vec![expected_versions]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_appending_to_one_account_keep_seq_dense_and_keys_unique() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let nodes = [
        Arc::new(connect(&database).await),
        Arc::new(connect(&database).await),
    ];
    let mut appenders = Vec::new();
    for appender in 0..8 {
        let node = nodes[appender % 2].clone();
        appenders.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for round in 0..20 {
                // Every appender also sends the same shared key each round: exactly one of them
                // may store it, whichever node it went through.
                let events = vec![
                    EventBuilder::new("acme")
                        .message(&format!("appender {appender} round {round}"))
                        .build(),
                    EventBuilder::new("acme")
                        .key(&format!("shared-{round}"))
                        .message(&format!("shared {round}"))
                        .build(),
                ];
                let outcomes = node.append_events(events).await.unwrap();
                seqs.push((
                    seq_of(&outcomes[0]),
                    matches!(outcomes[0], AppendOutcome::Stored(_)),
                ));
                seqs.push((
                    seq_of(&outcomes[1]),
                    matches!(outcomes[1], AppendOutcome::Stored(_)),
                ));
            }
            seqs
        }));
    }
    let mut stored = Vec::new();
    for appender in appenders {
        for (seq, was_stored) in appender.await.unwrap() {
            if was_stored {
                stored.push(seq);
            }
        }
    }
    stored.sort_unstable();
    // 8 x 20 unique events plus 20 shared keys stored once each.
    let expected: Vec<u64> = (0..180).collect();
    assert_eq!(stored, expected, "seqs are dense, with no gap and no fork");
    assert_eq!(nodes[1].next_seq(&account("acme")).await.unwrap(), 180);
    let since = nodes[0]
        .events_since(&account("acme"), 0, 1000)
        .await
        .unwrap();
    assert_eq!(since.len(), 180);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_hides_other_accounts_from_a_query_without_an_account_filter() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let store = connect(&database).await;
    store
        .append_events(vec![
            EventBuilder::new("acme")
                .message("acme secret")
                .target("server", "web-1")
                .build(),
            EventBuilder::new("globex")
                .message("globex secret")
                .target("server", "web-1")
                .build(),
        ])
        .await
        .unwrap();
    let bodies = store
        .run_read_as_account(&account("acme"), "SELECT body FROM events")
        .await
        .unwrap();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].contains("acme secret"));
    assert!(!bodies.iter().any(|body| body.contains("globex")));
    let targets = store
        .run_read_as_account(
            &account("globex"),
            "SELECT count(*)::text FROM event_targets",
        )
        .await
        .unwrap();
    assert_eq!(targets, vec!["1".to_owned()]);
    let unknown = store
        .run_read_as_account(&account("nobody"), "SELECT body FROM events")
        .await
        .unwrap();
    assert!(unknown.is_empty(), "an account with no row sees nothing");
    let writes = store
        .run_read_as_account(&account("acme"), "DELETE FROM events RETURNING body")
        .await;
    assert!(writes.is_err(), "reads run in read-only transactions");
}

/// The shared buffers the whole plan touched (hit or read), from its root's `Buffers:` line.
fn pages_touched(plan: &str) -> u64 {
    let line = plan
        .lines()
        .find(|line| line.trim_start().starts_with("Buffers:"))
        .unwrap_or_else(|| panic!("an executed plan reports its buffers:\n{plan}"));
    line.split_whitespace()
        .filter_map(|part| {
            part.strip_prefix("hit=")
                .or_else(|| part.strip_prefix("read="))
                .and_then(|number| number.parse::<u64>().ok())
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_skewed_data_use_the_intended_indexes() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let store = connect(&database).await;
    // One large account and many tiny ones, like a real multi-tenant log.
    let start = datetime!(2024-01-01 00:00 UTC);
    for batch in 0..20 {
        let events = (0..1000)
            .map(|number| {
                let index = batch * 1000 + number;
                let message = if index == 7777 {
                    "Rotated the zanzibar key".to_owned()
                } else {
                    format!("Rebooted server web-{}", index % 50)
                };
                EventBuilder::new("bigcorp")
                    .message(&message)
                    .actor(&format!("user-{}@bigcorp.com", index % 40))
                    .ip(&format!("10.0.{}.{}", index % 200, index % 250))
                    .action(if index % 3 == 0 {
                        "server.reboot"
                    } else {
                        "user.login"
                    })
                    .created_at(start + Duration::seconds(index as i64))
                    .build()
            })
            .collect();
        store.append_events(events).await.unwrap();
    }
    let tiny: Vec<_> = (0..300)
        .map(|number| {
            EventBuilder::new(&format!("tiny-{}", number % 100))
                .message("Rotated the zanzibar key")
                .build()
        })
        .collect();
    store.append_events(tiny).await.unwrap();

    // Checked on a fresh table (no statistics: what a new node sees) and again after ANALYZE.
    for statistics in ["none", "analyzed"] {
        if statistics == "analyzed" {
            store.analyze().await.unwrap();
        }
        let explain = |query: Query| {
            let store = &store;
            async move {
                let plan = store
                    .explain_query_plan(
                        &account("bigcorp"),
                        &EventQuery {
                            query,
                            limit: 50,
                            after: None,
                        },
                        true,
                    )
                    .await
                    .unwrap();
                plan.join("\n")
            }
        };
        let word = |word: &str| query(vec![clause(Condition::Text(TextSearch::Word(word.into())))]);
        let newest = explain(Query::default()).await;
        assert!(
            newest.contains("events_by_account_created"),
            "{statistics}: {newest}"
        );
        let actor = explain(query(vec![clause(Condition::Actor(patterns(
            "user-7@bigcorp.com",
        )))]))
        .await;
        assert!(
            actor.contains("events_by_account_actor"),
            "{statistics}: {actor}"
        );
        let ip = explain(query(vec![clause(Condition::Ip(vec![
            "10.0.3.0/24".parse().unwrap(),
        ]))]))
        .await;
        assert!(ip.contains("events_by_account_ip"), "{statistics}: {ip}");
        let rare = explain(word("zanzibar")).await;
        assert!(
            rare.contains("logbook_message_matches"),
            "{statistics}: {rare}"
        );
        assert!(rare.contains("events_pkey"), "{statistics}: {rare}");
        let common = explain(word("rebooted")).await;
        assert!(
            common.contains("events_by_account_created"),
            "{statistics}: {common}"
        );
        for plan in [&newest, &actor, &ip, &rare, &common] {
            assert!(!plan.contains("Seq Scan on events"), "{statistics}: {plan}");
            // The account has 20,000 events on about 1,400 pages; a page of answers must touch
            // a small fraction of them, whatever the plan's shape. The GIN index is not split by
            // account, so a word also costs one heap page per match in OTHER accounts (the 300
            // tiny-account events here), checked and dropped inside `logbook_message_matches`;
            // whether those share pages depends only on where free space put them (since rows
            // carry their leaf hash, each 430-byte tiny row fits the 480-byte tail of a bigcorp
            // page, so they land on about 300 different pages). That cost is counted apart.
            let matches_in_other_accounts = if std::ptr::eq(plan, &rare) { 300 } else { 0 };
            let pages = pages_touched(plan);
            assert!(
                pages < 150 + matches_in_other_accounts,
                "{statistics}: {pages} pages for\n{plan}"
            );
        }
    }

    // The timeline never scans the table, and an actor's reads that actor's index (issue 21). The
    // whole log's count reads the account through an index of its own; which one depends on
    // whether autovacuum has marked the pages all-visible yet (then it is an index-only scan of
    // `events_by_account_created`).
    let timeline_plan = |query: Query| {
        let store = &store;
        async move {
            store
                .explain_timeline_plan(&account("bigcorp"), &query, TimeBucket::Hour)
                .await
                .unwrap()
                .join("\n")
        }
    };
    let whole_log = timeline_plan(Query::default()).await;
    assert!(
        whole_log.contains("Index Cond: (account_row = "),
        "{whole_log}"
    );
    let actor = timeline_plan(query(vec![clause(Condition::Actor(patterns(
        "user-7@bigcorp.com",
    )))]))
    .await;
    assert!(actor.contains("events_by_account_actor"), "{actor}");
    for plan in [&whole_log, &actor] {
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }

    // And the answers are right.
    let found = store
        .query_events(
            &account("bigcorp"),
            &EventQuery {
                query: query(vec![clause(Condition::Text(TextSearch::Word(
                    "zanzibar".into(),
                )))]),
                limit: 50,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(found.events.len(), 1);
    let accounts: BTreeSet<String> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.event_count > 0)
        .map(|record| record.account.as_str().to_owned())
        .collect();
    assert_eq!(accounts.len(), 101);
}

/// Makes a plain role (neither superuser nor BYPASSRLS, as the README recommends) the owner of
/// `database`, and answers the URL to connect as it.
async fn hand_to_a_plain_owner(database: &ScratchDatabase) -> String {
    let server_url = logbook_store_postgres::scratch_database::test_server_url();
    let (client, connection) = tokio_postgres::connect(&server_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE logbook_test_owner LOGIN PASSWORD 'owner-password';
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
             ALTER DATABASE {} OWNER TO logbook_test_owner",
            database.name
        ))
        .await
        .unwrap();
    let server: tokio_postgres::Config = server_url.parse().unwrap();
    let host = match server.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = server.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://logbook_test_owner:owner-password@{host}:{port}/{}",
        database.name
    )
}

/// A store on `url` that locates addresses with the conformance suite's locator.
async fn connect_locating(url: &str) -> PostgresStore {
    PostgresStore::connect(
        url,
        PostgresOptions {
            ip_locator: logbook_testkit::location_cases::test_ip_locator(),
            ..PostgresOptions::default()
        },
    )
    .await
    .expect("the store connects")
}

/// Runs `sql` on `database` as the server's superuser, past row-level security: how a test takes
/// a database back to what an earlier version left.
async fn run_as_superuser(database: &ScratchDatabase, sql: &str) {
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_is_not_a_superuser_writes_and_reads_under_row_level_security() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    // A plain role owns the database, as a careful operator sets it up; FORCE makes the policies
    // apply to it, so its writer goes through the staging tables.
    let owner_url = hand_to_a_plain_owner(&database).await;
    let store = PostgresStore::connect(&owner_url, PostgresOptions::default())
        .await
        .expect("the owner connects");
    let outcomes = store
        .append_events(vec![
            EventBuilder::new("acme")
                .message("acme zanzibar")
                .target("server", "web-1")
                .build(),
            EventBuilder::new("globex")
                .message("globex zanzibar")
                .build(),
            EventBuilder::new("acme").key("k1").message("keyed").build(),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes.iter().map(seq_of).collect::<Vec<_>>(),
        vec![0, 0, 1]
    );
    let duplicate = store
        .append_events(vec![
            EventBuilder::new("acme").key("k1").message("keyed").build(),
        ])
        .await
        .unwrap();
    assert!(matches!(duplicate[0], AppendOutcome::Duplicate(_)));
    let found = store
        .query_events(
            &account("acme"),
            &EventQuery {
                query: query(vec![clause(Condition::Text(TextSearch::Word(
                    "zanzibar".into(),
                )))]),
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(found.events.len(), 1);
    assert!(found.events[0].body_without_seq.contains("acme zanzibar"));
    let bodies = store
        .run_read_as_account(&account("globex"), "SELECT body FROM events")
        .await
        .unwrap();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].contains("globex"));
    // "Where was this actor seen" counts the actor's events, read under the policies too: the
    // owner sees its account's events there, and no other account's.
    store
        .append_events(
            ["acme", "acme", "globex"]
                .into_iter()
                .map(|name| {
                    EventBuilder::new(name)
                        .actor("alice@example.com")
                        .ip("203.0.113.9")
                        .build()
                })
                .collect(),
        )
        .await
        .unwrap();
    let addresses = store
        .unfamiliar_ips()
        .actor_addresses(&account("acme"), "alice@example.com", 10)
        .await
        .unwrap();
    assert_eq!(addresses.len(), 1, "{addresses:?}");
    assert_eq!(addresses[0].ip.to_string(), "203.0.113.9");
    assert_eq!(addresses[0].recent_event_count, 2, "{addresses:?}");
    store.shutdown().await;
}

/// Two nodes ingesting into one account at once never take it past its daily quota: each node's
/// writer counts under the account's row lock, in the events' transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_at_once_never_store_more_than_the_daily_quota() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let nodes = [
        Arc::new(connect(&database).await),
        Arc::new(connect(&database).await),
    ];
    let acme = account("acme");
    nodes[0].create_account(&acme, RECEIVED_AT).await.unwrap();
    nodes[0]
        .account_limits()
        .set_stored_account_limits(
            &acme,
            &StoredAccountLimits {
                events_per_day: Some(100),
                ..StoredAccountLimits::default()
            },
            RECEIVED_AT,
        )
        .await
        .unwrap();
    let mut appenders = Vec::new();
    for appender in 0..8 {
        let node = nodes[appender % 2].clone();
        appenders.push(tokio::spawn(async move {
            let mut stored = 0_u64;
            for round in 0..10 {
                // Batches of 3 against a quota of 100: 33 batches fit, the 34th would overshoot.
                let events = (0..3)
                    .map(|number| {
                        EventBuilder::new("acme")
                            .message(&format!("appender {appender} round {round} event {number}"))
                            .build()
                    })
                    .collect();
                match node.append_events(events).await {
                    Ok(outcomes) => stored += outcomes.len() as u64,
                    Err(StoreError::VolumeQuotaExceeded { .. }) => {}
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
            stored
        }));
    }
    let mut acknowledged = 0;
    for appender in appenders {
        acknowledged += appender.await.unwrap();
    }
    assert_eq!(
        acknowledged, 99,
        "33 whole batches of 3, and no part of a 34th"
    );
    assert_eq!(nodes[1].next_seq(&acme).await.unwrap(), 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_removes_the_target_rows_of_the_pruned_events_and_no_others() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let store = connect(&database).await;
    logbook_testkit::cases::prune_forty_events_with_two_targets_each_below_25(&store).await;
    // Read as the database owner, past row-level security, so every account's rows are counted.
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT a.name, t.seq, count(*) FROM event_targets t JOIN accounts a USING (account_row) \
             GROUP BY 1, 2 ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let kept: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let mut expected: Vec<(String, i64, i64)> =
        (25..40).map(|seq| ("acme".to_owned(), seq, 2)).collect();
    expected.push(("globex".to_owned(), 0, 1));
    assert_eq!(
        kept, expected,
        "both targets of every kept event, and globex's own"
    );
}

/// Migration 0020 counts the events stored before it per day, so the timeline of a database
/// upgraded with events in it reads the day counts as exactly as one written since, and the
/// writer then adds to them. It migrates as the owner the README recommends (neither superuser
/// nor BYPASSRLS), whom the row-level policies would otherwise blind to every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_counts_migration_counts_the_events_stored_before_it() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let owner_url = hand_to_a_plain_owner(&database).await;
    let day = datetime!(2024-06-01 00:00 UTC);
    let at = |hours: i64| {
        EventBuilder::new("acme")
            .created_at(day + Duration::hours(hours) + Duration::minutes(7))
            .build()
    };
    {
        let store = connect_locating(&owner_url).await;
        store
            .append_events(vec![at(0), at(1), at(1), at(25), at(49)])
            .await
            .unwrap();
        store.shutdown().await;
    }
    // Back to the schema before the migration.
    run_as_superuser(
        &database,
        "DROP TABLE event_day_counts; \
         CREATE TABLE event_hour_counts (account_row bigint, hour_start bigint, events bigint); \
         ALTER TABLE event_hour_counts OWNER TO logbook_test_owner; \
         DELETE FROM schema_migrations WHERE version = 20",
    )
    .await;
    let store = connect_locating(&owner_url).await;
    let bucket = |days: i64, events: u64| logbook_core::timeline::BucketCount {
        start_micros: logbook_core::event::unix_micros(day + Duration::days(days)),
        events,
    };
    let days = || async {
        store
            .count_events_over_time(&account("acme"), &Query::default(), TimeBucket::Day)
            .await
            .unwrap()
    };
    assert_eq!(days().await, vec![bucket(0, 3), bucket(1, 1), bucket(2, 1)]);
    store.append_events(vec![at(2)]).await.unwrap();
    assert_eq!(days().await, vec![bucket(0, 4), bucket(1, 1), bucket(2, 1)]);
    store.shutdown().await;
}

/// Migration 0021 fills the countries history that migration 0018 left empty when it ran as the
/// owner the README recommends (the row-level policies hid every event from it): after it, an
/// actor's success from a country it never used is new again, as it was before the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_countries_history_an_owner_migrated_blind_is_filled_again() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let owner_url = hand_to_a_plain_owner(&database).await;
    let login = |ip: &str, message: &str| {
        EventBuilder::new("acme")
            .actor("dmitri")
            .ip(ip)
            .message(message)
            .build()
    };
    {
        let store = connect_locating(&owner_url).await;
        store
            .append_events(vec![
                login("203.0.113.9", "in India"),
                login("198.51.100.8", "in Singapore"),
            ])
            .await
            .unwrap();
        store.shutdown().await;
    }
    // What a database 0018 migrated blind holds: no history, and 0021 not yet run.
    run_as_superuser(
        &database,
        "DELETE FROM actor_countries; DELETE FROM schema_migrations WHERE version = 21",
    )
    .await;
    let store = connect_locating(&owner_url).await;
    store
        // Without the history the first would be the actor's first located event (never new)
        // and the second a country new after it.
        .append_events(vec![
            login("2001:db8:1::5", "in Germany"),
            login("198.51.100.9", "Singapore again"),
        ])
        .await
        .unwrap();
    let flags: Vec<(String, bool)> = store
        .query_events(
            &account("acme"),
            &EventQuery {
                query: Query::default(),
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap()
        .events
        .iter()
        .map(|row| (row.decode().unwrap().message, row.new_country))
        .collect();
    assert_eq!(
        flags,
        vec![
            ("Singapore again".to_owned(), false),
            ("in Germany".to_owned(), true),
            ("in Singapore".to_owned(), true),
            ("in India".to_owned(), false),
        ]
    );
    store.shutdown().await;
}
