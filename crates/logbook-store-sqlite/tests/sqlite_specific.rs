//! Behaviour only the SQLite store has: the query plans it picks on a multi-tenant database, a
//! second connection to the same file (as the CLI opens it while `serve` runs), backups that open
//! as a database, and a write-ahead log that starts over under steady ingest.

use std::sync::Arc;

use ipnet::IpNet;
use logbook_core::cursor::CursorPosition;
use logbook_core::event::NewEvent;
use logbook_core::query::{Condition, Query, TextSearch};
use logbook_core::store::EventQuery;
use logbook_core::timeline::TimeBucket;
use logbook_core::{AccountId, Store};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use logbook_testkit::{EventBuilder, clause, first_page_seqs, negated, patterns, query};
use time::Duration;
use time::macros::datetime;

fn account(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

fn open(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).unwrap()
}

/// A few thousand events over several accounts; "common" is in every message of `big`.
async fn fill_multi_tenant(store: &SqliteStore) {
    let start = datetime!(2024-05-01 00:00 UTC);
    for account_number in 0..5 {
        let account_name = if account_number == 0 {
            "big".to_owned()
        } else {
            format!("small-{account_number}")
        };
        let count = if account_number == 0 { 3_000 } else { 300 };
        let events: Vec<NewEvent> = (0..count)
            .map(|number| {
                EventBuilder::new(&account_name)
                    .created_at(start + Duration::seconds(number))
                    .actor(&format!("user-{}@example.com", number % 50))
                    .action(
                        ["user.login", "server.reboot", "dns.record.update"][number as usize % 3],
                    )
                    .ip(&format!("10.0.{}.{}", number % 7, number % 200))
                    .target("server", &format!("web-{}", number % 40))
                    .message(&format!("common event {number} rare{number}"))
                    .build()
            })
            .collect();
        store.append_events(events).await.unwrap();
    }
}

async fn plan(store: &SqliteStore, query: Query, after: Option<CursorPosition>) -> String {
    store
        .explain_query_plan(
            &account("big"),
            &EventQuery {
                query,
                limit: 50,
                after,
            },
        )
        .await
        .unwrap()
        .join(" | ")
}

fn ip(text: &str) -> Condition {
    Condition::Ip(vec![text.parse::<IpNet>().unwrap()])
}

fn word(text: &str) -> Condition {
    Condition::Text(TextSearch::Word(text.into()))
}

async fn filled_store() -> (SqliteStore, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory.path().join("logbook.db"));
    fill_multi_tenant(&store).await;
    (store, directory)
}

fn assert_plan(plan: &str, index: &str, sorts: bool) {
    assert!(plan.contains(index), "expected {index} in the plan: {plan}");
    assert!(
        !plan.contains("SCAN events "),
        "a query never scans the events table: {plan}"
    );
    assert_eq!(
        plan.contains("TEMP B-TREE"),
        sorts,
        "sorting in this plan: {plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_counts_from_the_accounts_indexes_without_reading_the_events() {
    let (store, _directory) = filled_store().await;
    let timeline_plan = |query: Query| {
        let store = &store;
        async move {
            store
                .explain_timeline_plan(&account("big"), &query, TimeBucket::Hour)
                .await
                .unwrap()
                .join(" | ")
        }
    };
    // Every column the count needs is in the index: SQLite never reads a row of `events`, and
    // each bucket's count reads only that bucket's range of it, so nothing is sorted.
    let whole_log = timeline_plan(Query::default()).await;
    assert!(
        whole_log.contains(
            "COVERING INDEX events_by_account_created (account_row=? AND created_at>? AND created_at<?)"
        ),
        "the whole log's timeline plan: {whole_log}"
    );
    let failures = timeline_plan(query(vec![clause(Condition::Outcome(vec![
        logbook_core::event::Outcome::Failure,
    ]))]))
    .await;
    assert!(
        failures.contains(
            "events_by_account_created (account_row=? AND created_at>? AND created_at<?)"
        ),
        "the failures' timeline plan: {failures}"
    );
    // An actor per day reads its day counts (migration 0028), one row per day and actor.
    let actor = store
        .explain_timeline_plan(
            &account("big"),
            &query(vec![clause(Condition::Actor(patterns(
                "user-7@example.com",
            )))]),
            TimeBucket::Day,
        )
        .await
        .unwrap()
        .join(" | ");
    assert!(
        actor.contains(
            "SEARCH counts USING PRIMARY KEY (day_start=? AND account_row=? AND actor_id=?)"
        ) && !actor.contains("events"),
        "an actor's timeline plan: {actor}"
    );
    for plan in [whole_log, actor] {
        assert!(!plan.contains("SCAN events "), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfiltered_and_paged_queries_walk_the_accounts_newest_first_index_without_sorting() {
    let (store, _directory) = filled_store().await;
    assert_plan(
        &plan(&store, Query::default(), None).await,
        "events_by_account_created (account_row=?)",
        false,
    );
    let cursor = Some(CursorPosition {
        created_at_micros: 1_714_521_600_000_000,
        seq: 10,
    });
    assert_plan(
        &plan(&store, Query::default(), cursor).await,
        "events_by_account_created (account_row=? AND created_at<?)",
        false,
    );
}

/// Since migrations 0028 and 0029 an actor and an address are looked up in their tokens, their
/// matches gathered and sorted (from a window of the newest arrivals when that holds the page,
/// `arrival_windows.rs`); a common address beside a clause that leads is tested on its column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_and_an_actor_are_looked_up_in_their_tokens() {
    let (store, _directory) = filled_store().await;
    let actor = query(vec![clause(Condition::Actor(patterns(
        "user-7@example.com",
    )))]);
    let actor_plan = plan(&store, actor, None).await;
    assert_plan(&actor_plan, "SCAN events_fts VIRTUAL TABLE INDEX", true);
    assert!(
        !actor_plan.contains("event_actor_rows"),
        "no earlier rows: {actor_plan}"
    );
    let address = query(vec![clause(ip("10.0.1.1/32"))]);
    let address_plan = plan(&store, address, None).await;
    assert_plan(&address_plan, "SCAN events_fts VIRTUAL TABLE INDEX", true);
    assert!(
        !address_plan.contains("event_ip_rows"),
        "no earlier rows: {address_plan}"
    );
    // Every event of `big` is in 10.0.0.0/8: a common block. Beside a `created:` range it is
    // tested on each event of the range, read newest first; alone it is looked up.
    let since = clause(Condition::Created(logbook_core::query::TimeRange {
        start_inclusive: Some(datetime!(2024-05-01 00:30 UTC)),
        end_exclusive: None,
    }));
    let with_range = plan(&store, query(vec![clause(ip("10.0.0.0/8")), since]), None).await;
    assert_plan(
        &with_range,
        "events_by_account_created (account_row=? AND created_at>?)",
        false,
    );
    assert!(!with_range.contains("events_fts"), "{with_range}");
    assert_plan(
        &plan(&store, query(vec![clause(ip("10.0.0.0/8"))]), None).await,
        "SCAN events_fts VIRTUAL TABLE INDEX",
        true,
    );
    // An address's (or block's) timeline per day reads the day counts per address, a block as a
    // range of each day's rows, not its matches.
    let address_days = store
        .explain_timeline_plan(
            &account("big"),
            &query(vec![clause(ip("10.0.1.0/24"))]),
            logbook_core::timeline::TimeBucket::Day,
        )
        .await
        .unwrap()
        .join(" | ");
    assert!(
        address_days.contains(
            "SEARCH counts USING PRIMARY KEY (day_start=? AND account_row=? AND ip>? AND ip<?)"
        ) && !address_days.contains("events_fts"),
        "{address_days}"
    );
}

/// A common address beside a `created:` range alone is tested on the range's rows when the
/// range's newest days hold a page of it, and looked up when they do not: the day counts per
/// address say which, so the page of an address gone quiet does not read the whole range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_common_address_beside_a_range_is_looked_up_when_the_ranges_newest_days_lack_it() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory.path().join("logbook.db"));
    let start = datetime!(2024-05-01 00:00 UTC);
    // 6,000 events of `big`, one every two minutes (720 a day, over eight and a third days): the
    // first 2,500 from 10.9.0.1, the rest from 10.9.0.2.
    for first in (0..6_000).step_by(1_000) {
        let events: Vec<NewEvent> = (first..first + 1_000)
            .map(|number: i64| {
                EventBuilder::new("big")
                    .created_at(start + Duration::minutes(2 * number))
                    .ip(if number < 2_500 {
                        "10.9.0.1"
                    } else {
                        "10.9.0.2"
                    })
                    .message(&format!("step {number}"))
                    .build()
            })
            .collect();
        store.append_events(events).await.unwrap();
    }
    let since = || {
        clause(Condition::Created(logbook_core::query::TimeRange {
            start_inclusive: Some(start),
            end_exclusive: None,
        }))
    };
    let quiet = plan(
        &store,
        query(vec![clause(ip("10.9.0.1/32")), since()]),
        None,
    )
    .await;
    assert_plan(&quiet, "SCAN events_fts VIRTUAL TABLE INDEX", true);
    let busy = plan(
        &store,
        query(vec![clause(ip("10.9.0.2/32")), since()]),
        None,
    )
    .await;
    assert_plan(
        &busy,
        "events_by_account_created (account_row=? AND created_at>?)",
        false,
    );
    assert!(!busy.contains("events_fts"), "{busy}");
    assert_eq!(
        seqs_matching(&store, "ip:10.9.0.1 created:>=2024-05-01", 50).await,
        (2_450..2_500).rev().collect::<Vec<u64>>()
    );
    assert_eq!(
        seqs_matching(&store, "ip:10.9.0.2 created:>=2024-05-01", 3).await,
        vec![5_999, 5_998, 5_997]
    );
    store.shutdown().await;
}

/// Since migration 0026 no index of `events` holds actions. A common action beside a clause that
/// leads (a rare actor, a `created:` range) is tested on each row that clause reads; alone, or
/// rare, it is looked up in its tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_common_action_is_tested_on_the_rows_another_clause_walks_and_looked_up_alone() {
    let (store, _directory) = filled_store().await;
    // Two of the three actions of `big`'s 3,000 events: 2,000 documents, a common term.
    let common_action = || clause(Condition::Action(patterns("user.login,server.reboot")));
    let actor = || clause(Condition::Actor(patterns("user-7@example.com")));
    let with_actor = plan(&store, query(vec![actor(), common_action()]), None).await;
    assert_plan(
        &with_actor,
        "SEARCH events USING INTEGER PRIMARY KEY (rowid=?)",
        true,
    );
    assert_eq!(
        with_actor.matches("SCAN events_fts").count(),
        1,
        "one lookup, the actor's: {with_actor}"
    );
    let since = clause(Condition::Created(logbook_core::query::TimeRange {
        start_inclusive: Some(datetime!(2024-05-01 00:30 UTC)),
        end_exclusive: None,
    }));
    let with_range = plan(&store, query(vec![common_action(), since.clone()]), None).await;
    assert_plan(
        &with_range,
        "events_by_account_created (account_row=? AND created_at>?)",
        false,
    );
    assert!(!with_range.contains("events_fts"), "{with_range}");
    let timeline = store
        .explain_timeline_plan(
            &account("big"),
            &query(vec![common_action(), since]),
            logbook_core::timeline::TimeBucket::Day,
        )
        .await
        .unwrap()
        .join(" | ");
    // Per day, the range's whole days come from the day counts per action and the part of a day
    // at its start from the events of that part, through the account's `created_at` index.
    assert!(
        timeline.contains("SEARCH counts USING PRIMARY KEY (day_start=? AND account_row=?")
            && timeline.contains(
                "events_by_account_created (account_row=? AND created_at>? AND created_at<?)"
            )
            && !timeline.contains("events_fts"),
        "{timeline}"
    );
    let alone = plan(&store, query(vec![common_action()]), None).await;
    assert_plan(&alone, "SCAN events_fts VIRTUAL TABLE INDEX", true);
    // Its timeline per day reads the day counts per action, one row per day and action.
    let action_days = store
        .explain_timeline_plan(
            &account("big"),
            &query(vec![common_action()]),
            logbook_core::timeline::TimeBucket::Day,
        )
        .await
        .unwrap()
        .join(" | ");
    assert!(
        action_days.contains("SEARCH days USING PRIMARY KEY (account_row=?")
            && action_days
                .contains("SEARCH counts USING PRIMARY KEY (day_start=? AND account_row=?")
            && !action_days.contains("events"),
        "{action_days}"
    );
    let rare_with_actor = plan(
        &store,
        query(vec![
            actor(),
            clause(Condition::Action(patterns("user.login"))),
        ]),
        None,
    )
    .await;
    assert!(
        rare_with_actor.contains("SCAN events_fts VIRTUAL TABLE INDEX"),
        "{rare_with_actor}"
    );
    // Whichever way each is read, the pages hold exactly the matching events (`big`'s event `n`
    // has seq `n`, actor `user-{n % 50}`, action `n % 3` of login, reboot, DNS update, and is
    // dated `n` seconds after midnight).
    type Matching = fn(u64) -> bool;
    let cases: [(&str, Matching); 3] = [
        (
            "actor:user-7@example.com action:user.login,server.reboot",
            |n| n % 50 == 7 && n % 3 != 2,
        ),
        (
            "action:user.login,server.reboot created:>=2024-05-01T00:30:00Z",
            |n| n >= 1_800 && n % 3 != 2,
        ),
        ("actor:user-7@example.com action:user.login", |n| {
            n % 50 == 7 && n % 3 == 0
        }),
    ];
    for (text, matching) in cases {
        let expected: Vec<u64> = (0..3_000).rev().filter(|n| matching(*n)).collect();
        assert_eq!(seqs_matching(&store, text, 1_000).await, expected, "{text}");
    }
}

/// A store that locates addresses with the conformance suite's locator, holding `common` events
/// of `big` from India (203.0.113.0/24: Mumbai and Pune) and `rare` from Singapore
/// (198.51.100.0/24), in that order.
async fn located_store(common: u32, rare: u32) -> (SqliteStore, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &directory.path().join("logbook.db"),
        SqliteOptions {
            ip_locator: logbook_testkit::location_cases::test_ip_locator(),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let start = datetime!(2024-05-01 00:00 UTC);
    let events: Vec<NewEvent> = (0..common + rare)
        .map(|number| {
            let ip = if number < common {
                format!("203.0.113.{}", number % 256)
            } else {
                format!("198.51.100.{}", number % 256)
            };
            EventBuilder::new("big")
                .created_at(start + Duration::seconds(i64::from(number)))
                .actor(&format!("user-{}@example.com", number % 50))
                .ip(&ip)
                .message(&format!("located event {number}"))
                .target("host", &format!("host-{}", number % 3))
                .build()
        })
        .collect();
    for chunk in events.chunks(500) {
        store.append_events(chunk.to_vec()).await.unwrap();
    }
    (store, directory)
}

async fn seqs_matching(store: &SqliteStore, text: &str, limit: u32) -> Vec<u64> {
    first_page_seqs(store, "big", text, limit).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_place_is_looked_up_in_the_place_terms_and_a_common_one_walks_newest_first() {
    let (store, _directory) = located_store(2_100, 30).await;
    for rare in [
        "country:SG",
        "city:Singapore",
        "asn:13335",
        "country:SG,FR",
        "asn:1",
    ] {
        let rare_plan = plan(&store, logbook_core::query::parse(rare).unwrap(), None).await;
        assert_plan(
            &rare_plan,
            "SEARCH events USING INTEGER PRIMARY KEY (rowid=?)",
            true,
        );
        assert!(
            rare_plan.contains("events_fts")
                && rare_plan.contains("events_place_terms")
                && rare_plan.contains("LIST SUBQUERY"),
            "{rare}: both place indexes: {rare_plan}"
        );
    }
    let common_plan = plan(
        &store,
        logbook_core::query::parse("country:IN").unwrap(),
        None,
    )
    .await;
    assert_plan(
        &common_plan,
        "events_by_account_created (account_row=?)",
        false,
    );
    assert!(
        !common_plan.contains("events_place_terms") && !common_plan.contains("events_fts"),
        "a common country is tested on each row of the newest-first walk: {common_plan}"
    );

    // Both plans return exactly the located events, newest first.
    assert_eq!(
        seqs_matching(&store, "country:SG", 100).await,
        (2_100..2_130).rev().collect::<Vec<u64>>()
    );
    assert_eq!(
        seqs_matching(&store, "country:IN", 50).await,
        (2_050..2_100).rev().collect::<Vec<u64>>()
    );
    // Mumbai is the lower half of 203.0.113.0/24 (addresses .0 to .127).
    let mumbai = seqs_matching(&store, "city:Mumbai", 50).await;
    assert_eq!(mumbai.len(), 50);
    assert!(mumbai.iter().all(|seq| seq % 256 < 128), "{mumbai:?}");
    assert_eq!(
        seqs_matching(&store, "country:SG -city:Singapore", 100).await,
        Vec::<u64>::new()
    );
}

/// Places every address of 10.0.0.0/8 in New Zealand, each /32 in a town of its own: one location
/// per address.
#[derive(Debug)]
struct TownPerAddressLocator;

impl logbook_core::location::IpLocator for TownPerAddressLocator {
    fn locate(&self, ip: std::net::IpAddr) -> Option<logbook_core::location::Location> {
        let std::net::IpAddr::V4(address) = ip.to_canonical() else {
            return None;
        };
        let [network, _, high, low] = address.octets();
        (network == 10).then(|| logbook_core::location::Location {
            country_code: Some("NZ".into()),
            city: Some(format!("Town {high}-{low}")),
            ..Default::default()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_held_by_more_locations_than_one_lookup_names_is_tested_on_each_row() {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &directory.path().join("logbook.db"),
        SqliteOptions {
            ip_locator: Arc::new(TownPerAddressLocator),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    // 600 events from 600 towns of one country: a rare country in documents, but more locations
    // than one full-text lookup names; then 20 from addresses no database knows.
    let start = datetime!(2024-05-01 00:00 UTC);
    let events: Vec<NewEvent> = (0..620_u32)
        .map(|number| {
            let ip = if number < 600 {
                format!("10.0.{}.{}", number / 256, number % 256)
            } else {
                format!("192.0.2.{}", number - 600)
            };
            EventBuilder::new("big")
                .created_at(start + Duration::seconds(i64::from(number)))
                .ip(&ip)
                .build()
        })
        .collect();
    store.append_events(events).await.unwrap();

    let country_plan = plan(
        &store,
        logbook_core::query::parse("country:NZ").unwrap(),
        None,
    )
    .await;
    assert!(
        !country_plan.contains("events_fts"),
        "600 locations are tested on each row: {country_plan}"
    );
    let town_plan = plan(
        &store,
        logbook_core::query::parse("city:\"Town 1-7\"").unwrap(),
        None,
    )
    .await;
    assert!(
        town_plan.contains("events_fts"),
        "one location is looked up: {town_plan}"
    );
    assert_eq!(
        seqs_matching(&store, "country:NZ", 1_000).await,
        (0..600).rev().collect::<Vec<u64>>()
    );
    assert_eq!(
        seqs_matching(&store, "city:\"Town 1-7\"", 10).await,
        vec![263]
    );
    assert_eq!(
        seqs_matching(&store, "-country:NZ", 100).await,
        (600..620).rev().collect::<Vec<u64>>()
    );
}

/// Takes every `events_fts` document without its tokens for which `drop_token` holds: each
/// document is read back token by token from the index itself (`fts5vocab`, in position order),
/// taken out whole and put back without them, as a writer that never wrote those tokens would have
/// indexed it.
fn drop_document_tokens(connection: &rusqlite::Connection, drop_token: impl Fn(&str) -> bool) {
    connection
        .execute_batch(
            "CREATE VIRTUAL TABLE temp.events_fts_instances USING fts5vocab(main, events_fts, instance)",
        )
        .unwrap();
    let instances: Vec<(i64, String)> = connection
        .prepare("SELECT doc, term FROM temp.events_fts_instances ORDER BY doc, offset")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    connection
        .execute_batch("DROP TABLE temp.events_fts_instances")
        .unwrap();
    let mut documents: Vec<(i64, Vec<String>)> = Vec::new();
    for (event_row, term) in instances {
        match documents.last_mut() {
            Some((last, terms)) if *last == event_row => terms.push(term),
            _ => documents.push((event_row, vec![term])),
        }
    }
    for (event_row, terms) in documents {
        if !terms.iter().any(|term| drop_token(term)) {
            continue;
        }
        connection
            .execute(
                "INSERT INTO events_fts (events_fts, rowid, message) VALUES ('delete', ?1, ?2)",
                rusqlite::params![event_row, terms.join(" ")],
            )
            .unwrap();
        let kept: Vec<&str> = terms
            .iter()
            .filter(|term| !drop_token(term))
            .map(String::as_str)
            .collect();
        if !kept.is_empty() {
            connection
                .execute(
                    "INSERT INTO events_fts (rowid, message) VALUES (?1, ?2)",
                    rusqlite::params![event_row, kept.join(" ")],
                )
                .unwrap();
        }
    }
}

/// Whether a token of `events_fts` is a value token of `kind` (`.<account_row><kind><hex>`: `v`
/// an action, migration 0026; `p` an actor, migration 0028).
fn is_token_of_kind(term: &str, kind: char) -> bool {
    term.strip_prefix('.')
        .map(|rest| rest.trim_start_matches(|c: char| c.is_ascii_digit()))
        .is_some_and(|rest| rest.starts_with(kind))
}

/// Takes a database back to the schema and the documents before migration 0029: every address in
/// the index `events_by_account_ip` again, no address token (`i` IPv4, `j` IPv6) in any document.
fn undo_migration_0029(connection: &rusqlite::Connection) {
    drop_document_tokens(connection, |term| {
        is_token_of_kind(term, 'i') || is_token_of_kind(term, 'j')
    });
    connection
        .execute_batch(
            "CREATE INDEX events_by_account_ip ON events (account_row, ip, created_at)
                 WHERE ip IS NOT NULL;
             DROP TABLE event_ip_rows;
             DROP TABLE events_with_ip_rows;
             DROP TABLE event_day_ip_counts;
             INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
                 ('events', 'events_by_account_ip', '1000000 1000 20 2');
             PRAGMA user_version = 28;",
        )
        .unwrap();
}

/// Takes a database back to the schema and the documents before migration 0028 (and 0029, which
/// follows it): every actor in the index `events_by_account_actor` again, no actor token in any
/// document.
fn undo_migration_0028(connection: &rusqlite::Connection) {
    undo_migration_0029(connection);
    drop_document_tokens(connection, |term| is_token_of_kind(term, 'p'));
    connection
        .execute_batch(
            "CREATE INDEX events_by_account_actor ON events (account_row, actor_id, created_at);
             DROP TABLE event_actor_rows;
             DROP TABLE events_with_actor_rows;
             DROP TABLE event_day_actor_counts;
             INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
                 ('events', 'events_by_account_actor', '1000000 1000 20 2');
             PRAGMA user_version = 27;",
        )
        .unwrap();
}

/// Takes a database back to the schema before migration 0027: the unique index of keys keyed by
/// the account first.
const UNDO_MIGRATION_0027: &str = "
    CREATE UNIQUE INDEX events_by_account_key ON events (account_row, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    DROP INDEX events_by_key_account;
    DELETE FROM sqlite_stat1 WHERE idx = 'events_by_key_account';
    INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('events', 'events_by_account_key', '500000 500 1');
    PRAGMA user_version = 26;
";

/// Takes a database back to the schema and the documents before migration 0026 (and 0027 and
/// 0028, which follow it): every action in the index `events_by_account_action` again, no action
/// token in any document.
fn undo_migration_0026(connection: &rusqlite::Connection) {
    undo_migration_0028(connection);
    connection.execute_batch(UNDO_MIGRATION_0027).unwrap();
    drop_document_tokens(connection, |term| is_token_of_kind(term, 'v'));
    connection
        .execute_batch(
            "CREATE INDEX events_by_account_action ON events (account_row, action, created_at);
             DROP TABLE event_action_rows;
             DROP TABLE events_with_action_rows;
             DROP TABLE event_day_action_counts;
             PRAGMA user_version = 25;",
        )
        .unwrap();
}

/// Takes a database whose events have no targets back to the schema before migration 0025 (for
/// one whose events have targets, see `spell_targets_as_before_migration_0025`).
const UNDO_MIGRATION_0025: &str = "
    DROP TABLE events_with_target_rows;
    PRAGMA user_version = 24;
";

/// Takes a database of version 24 back to the schema before migration 0024: hour counts (empty)
/// instead of day counts.
const UNDO_MIGRATION_0024: &str = "
    DROP TABLE event_day_counts;
    CREATE TABLE event_hour_counts (
        account_row INTEGER NOT NULL,
        hour_start INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (account_row, hour_start)
    ) WITHOUT ROWID;
    PRAGMA user_version = 23;
";

/// Takes a database of version 23 back to the schema before migration 0023: no arrival bounds.
const UNDO_MIGRATION_0023: &str = "
    DROP TABLE arrival_bounds;
    PRAGMA user_version = 22;
";

/// Takes a database of version 22 back to the schema before migration 0022: no hour counts of the
/// events.
const UNDO_MIGRATION_0022: &str = "
    DROP TABLE event_hour_counts;
    PRAGMA user_version = 21;
";

/// Takes a database of version 21 back to the schema before migration 0021: no record of the locations each
/// account uses, nor of which events hold three place tokens.
const UNDO_MIGRATION_0021: &str = "
    DROP TABLE account_locations;
    DROP TABLE events_with_three_place_tokens;
    PRAGMA user_version = 20;
";

/// Takes a database of version 20 back to the schema before migration 0020: no interned locations.
const UNDO_MIGRATION_0020: &str = "
    ALTER TABLE events DROP COLUMN location_row;
    DROP TABLE locations;
    PRAGMA user_version = 19;
";

/// Takes a database of version 19 back to the schema before migration 0019: migration 0017's
/// indexes of the location columns instead of the place terms.
const UNDO_MIGRATION_0019: &str = "
    DROP TABLE events_place_terms;
    CREATE INDEX events_by_account_country ON events (account_row, country_code, created_at)
        WHERE country_code IS NOT NULL;
    CREATE INDEX events_by_account_asn ON events (account_row, asn, created_at)
        WHERE asn IS NOT NULL;
    CREATE INDEX events_by_account_city ON events (account_row, city, created_at)
        WHERE city IS NOT NULL;
    PRAGMA user_version = 18;
";

/// Stores four unlocated events of `big` (seq 0 to 3: Mumbai, Singapore, Pune, an address no
/// database knows) and takes the database back to version 19, then locates them the way the
/// writers before migration 0020 did: the object and the place columns in the row and, when
/// `with_place_terms`, a document of `events_place_terms` (version 19's writer; version 18's had
/// no such table and used indexes on the columns).
async fn database_located_before_migration_0020(path: &std::path::Path, with_place_terms: bool) {
    let store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
    append_from_four_addresses(&store, datetime!(2024-05-01 00:00 UTC), "located before").await;
    store.shutdown().await;
    locate_as_before_migration_0020(path, with_place_terms);
}

/// Four events of `big` a second apart from `start`, from Mumbai, Singapore, Pune and an address
/// no database knows, their messages `<message> <number>`.
async fn append_from_four_addresses(
    store: &SqliteStore,
    start: time::OffsetDateTime,
    message: &str,
) {
    store
        .append_events(
            ["203.0.113.9", "198.51.100.7", "203.0.113.200", "192.0.2.1"]
                .iter()
                .enumerate()
                .map(|(number, ip)| {
                    EventBuilder::new("big")
                        .created_at(start + Duration::seconds(number as i64))
                        .ip(ip)
                        .message(&format!("{message} {number}"))
                        .build()
                })
                .collect(),
        )
        .await
        .unwrap();
}

/// Takes a database whose events were stored unlocated back to version 19 and locates them the
/// way the writers before migration 0020 did (see `database_located_before_migration_0020`).
fn locate_as_before_migration_0020(path: &std::path::Path, with_place_terms: bool) {
    let connection = rusqlite::Connection::open(path).unwrap();
    undo_migration_0026(&connection);
    connection.execute_batch(UNDO_MIGRATION_0025).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0024).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0023).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0022).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0021).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0020).unwrap();
    let locator = logbook_testkit::location_cases::test_ip_locator();
    let rows: Vec<(i64, i64, Vec<u8>)> = connection
        .prepare("SELECT event_row, account_row, ip FROM events")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (event_row, account_row, ip) in rows {
        let ip = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(ip).unwrap()).to_canonical();
        let Some(columns) = logbook_core::location::LocationColumns::of(locator.as_ref(), Some(ip))
        else {
            continue;
        };
        connection
            .execute(
                "UPDATE events SET country_code = ?1, asn = ?2, city = ?3, location = ?4 WHERE event_row = ?5",
                rusqlite::params![
                    columns.country_code,
                    columns.asn,
                    columns.city,
                    columns.json,
                    event_row
                ],
            )
            .unwrap();
        if with_place_terms
            && let Some(document) = logbook_store_sql::place_terms::place_document(
                account_row,
                columns.country_code.as_deref(),
                columns.asn,
                columns.city.as_deref(),
            )
        {
            connection
                .execute(
                    "INSERT INTO events_place_terms (rowid, terms) VALUES (?1, ?2)",
                    rusqlite::params![event_row, document],
                )
                .unwrap();
        }
    }
}

fn located() -> SqliteOptions {
    SqliteOptions {
        ip_locator: logbook_testkit::location_cases::test_ip_locator(),
        ..SqliteOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_place_terms_migration_indexes_the_events_located_before_it() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    // A database of version 18: its events located, their places in B-tree indexes.
    database_located_before_migration_0020(&path, false).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(UNDO_MIGRATION_0019)
        .unwrap();
    let store = SqliteStore::open(&path, located()).unwrap();
    assert_eq!(seqs_matching(&store, "country:IN", 10).await, vec![2, 0]);
    assert_eq!(seqs_matching(&store, "city:Singapore", 10).await, vec![1]);
    assert_eq!(seqs_matching(&store, "asn:55836", 10).await, vec![2]);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let indexes: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'events_by_account_%' \
             AND (name LIKE '%country' OR name LIKE '%asn' OR name LIKE '%city')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0, "the location columns' B-tree indexes are gone");
    for (term, indexed, stored) in place_index_and_columns(&connection) {
        assert_eq!(indexed, stored, "term {term}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_located_before_interned_locations_are_found_shown_and_pruned_beside_new_ones() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    database_located_before_migration_0020(&path, true).await;
    let store = SqliteStore::open(&path, located()).unwrap();
    // Seq 4 to 7 located at ingest, after the migration: the same addresses again.
    append_from_four_addresses(&store, datetime!(2024-05-02 00:00 UTC), "located after").await;
    assert_eq!(
        seqs_matching(&store, "country:IN", 10).await,
        vec![6, 4, 2, 0]
    );
    assert_eq!(
        seqs_matching(&store, "city:Singapore", 10).await,
        vec![5, 1]
    );
    assert_eq!(seqs_matching(&store, "asn:55836", 10).await, vec![6, 2]);
    // A word never finds a place term, whatever it spells.
    let account_row: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT account_row FROM accounts WHERE name = 'big'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    for word in [
        format!("{account_row}c494e"),
        format!(".{account_row}c494e"),
    ] {
        assert_eq!(
            seqs_matching(&store, &word, 10).await,
            Vec::<u64>::new(),
            "{word}"
        );
    }
    assert_eq!(seqs_matching(&store, "located", 10).await.len(), 8);
    // Both kinds show the same object for the same address, once per distinct location.
    let page = store
        .query_events(
            &account("big"),
            &EventQuery {
                query: logbook_core::query::parse("").unwrap(),
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    let location_of = |seq: u64| {
        page.events
            .iter()
            .find(|row| row.seq == seq)
            .unwrap()
            .location
            .clone()
    };
    for (before, after) in [(0, 4), (1, 5), (2, 6), (3, 7)] {
        assert_eq!(
            location_of(before),
            location_of(after),
            "seq {before} and {after}"
        );
    }
    assert!(location_of(5).unwrap().contains("Singapore"));
    assert_eq!(location_of(7), None);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let (interned, in_rows): (i64, i64) = connection
        .query_row(
            "SELECT (SELECT count(*) FROM locations), \
             (SELECT count(*) FROM events WHERE location IS NOT NULL)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((interned, in_rows), (3, 3));
    for (term, indexed, stored) in place_index_and_columns(&connection) {
        assert_eq!(indexed, stored, "term {term}");
    }

    // Retention deletes every event of both kinds; both indexes lose exactly their terms.
    let pruned = logbook_testkit::cases::prune_below(&store, &account("big"), 6, 7)
        .await
        .unwrap();
    assert_eq!(pruned.deleted_events, 6);
    assert_eq!(seqs_matching(&store, "country:IN", 10).await, vec![6]);
    assert_eq!(seqs_matching(&store, "located", 10).await, vec![7, 6]);
    for (term, indexed, stored) in place_index_and_columns(&connection) {
        assert_eq!(indexed, stored, "term {term}");
    }
    for table in ["events_fts", "events_place_terms"] {
        connection
            .execute(
                &format!("INSERT INTO {table} ({table}) VALUES ('integrity-check')"),
                [],
            )
            .unwrap();
    }
}

/// Takes a database whose events of `big` were located at ingest (one place token each, migration
/// 0021) back to version 20, their documents rewritten with the three place tokens the writer
/// between migrations 0020 and 0021 wrote.
fn spell_places_as_between_migrations_0020_and_0021(path: &std::path::Path) {
    use logbook_store_sql::full_text::full_text_document;
    use logbook_store_sql::place_terms::push_full_text_place_of_stored_event;
    let connection = rusqlite::Connection::open(path).unwrap();
    undo_migration_0026(&connection);
    type LocatedRow = (
        i64,
        i64,
        String,
        i64,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<LocatedRow> = connection
        .prepare(
            "SELECT event_row, events.account_row, body, events.location_row, \
             locations.country_code, locations.asn, locations.city \
             FROM events JOIN locations ON locations.location_row = events.location_row",
        )
        .unwrap()
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!rows.is_empty());
    for (event_row, account_row, body, location_row, country_code, asn, city) in rows {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message = body["message"].as_str().unwrap_or_default();
        let place = (country_code.as_deref(), asn, city.as_deref());
        let mut written = full_text_document(account_row, message);
        push_full_text_place_of_stored_event(&mut written, account_row, location_row, false, place);
        let mut as_before = full_text_document(account_row, message);
        push_full_text_place_of_stored_event(
            &mut as_before,
            account_row,
            location_row,
            true,
            place,
        );
        connection
            .execute(
                "INSERT INTO events_fts (events_fts, rowid, message) VALUES ('delete', ?1, ?2)",
                rusqlite::params![event_row, written],
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO events_fts (rowid, message) VALUES (?1, ?2)",
                rusqlite::params![event_row, as_before],
            )
            .unwrap();
    }
    connection.execute_batch(UNDO_MIGRATION_0025).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0024).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0023).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0022).unwrap();
    connection.execute_batch(UNDO_MIGRATION_0021).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_three_place_tokens_are_found_aged_and_pruned_beside_events_with_one() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    // Seq 0 to 4 located at ingest by version 20's writer: three place tokens each. Seq 4, from
    // Mumbai, is the last event before the migration, the one its marker names.
    let store = SqliteStore::open(&path, located()).unwrap();
    append_from_four_addresses(&store, datetime!(2024-05-01 00:00 UTC), "three tokens").await;
    store
        .append_events(vec![
            EventBuilder::new("big")
                .created_at(datetime!(2024-05-01 00:00:10 UTC))
                .ip("203.0.113.9")
                .message("three tokens 4")
                .build(),
        ])
        .await
        .unwrap();
    store.shutdown().await;
    spell_places_as_between_migrations_0020_and_0021(&path);
    // Seq 5 to 8 from Mumbai, Singapore, Pune and nowhere after migration 0021: one token each.
    let store = SqliteStore::open(&path, located()).unwrap();
    append_from_four_addresses(&store, datetime!(2024-05-02 00:00 UTC), "one token").await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    let account_row: i64 = connection
        .query_row(
            "SELECT account_row FROM accounts WHERE name = 'big'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let documents_holding = |token: String| -> i64 {
        connection
            .query_row(
                "SELECT count(*) FROM events_fts WHERE events_fts MATCH ?1",
                [format!("\"{token}\"")],
                |row| row.get(0),
            )
            .unwrap()
    };
    // Mumbai (seq 0 and 4) and Pune (seq 2) hold the country's token; their successors do not.
    assert_eq!(documents_holding(format!(".{account_row}c494e")), 3);
    let (accounts_locations, with_three): (i64, i64) = connection
        .query_row(
            "SELECT (SELECT count(*) FROM account_locations WHERE account_row = ?1), \
             (SELECT count(*) FROM events_with_three_place_tokens WHERE account_row = ?1)",
            [account_row],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((accounts_locations, with_three), (3, 1));
    // Seq 0 to 4 keep their actions as rows (stored before migration 0026), seq 5 to 8 have
    // action tokens, which aging writes again with the rest of the document.
    let check_indexes = || {
        for (term, indexed, stored) in place_index_and_columns(&connection) {
            assert_eq!(indexed, stored, "term {term}");
        }
        assert_action_index_is_exact(&connection);
    };
    check_indexes();
    assert_eq!(
        seqs_matching(&store, "country:IN", 10).await,
        vec![7, 5, 4, 2, 0]
    );
    assert_eq!(
        seqs_matching(&store, "city:Singapore", 10).await,
        vec![6, 1]
    );
    assert_eq!(seqs_matching(&store, "asn:55836", 10).await, vec![7, 2]);
    assert_eq!(
        seqs_matching(&store, "three", 10).await,
        vec![4, 3, 2, 1, 0]
    );
    check_indexes();

    // Each step takes out exactly the tokens each event was written with: aging three-token
    // documents, pruning three-token documents up to the marker's event, aging a one-token
    // document, pruning one-token documents.
    remove_addresses_aged_below(&store, 2).await;
    check_indexes();
    assert_eq!(
        seqs_matching(&store, "country:IN", 10).await,
        vec![7, 5, 4, 2]
    );
    assert_eq!(seqs_matching(&store, "city:Singapore", 10).await, vec![6]);
    let pruned = logbook_testkit::cases::prune_below(&store, &account("big"), 5, 7)
        .await
        .unwrap();
    assert_eq!(pruned.deleted_events, 5);
    check_indexes();
    assert_eq!(seqs_matching(&store, "country:IN", 10).await, vec![7, 5]);
    remove_addresses_aged_below(&store, 6).await;
    check_indexes();
    assert_eq!(seqs_matching(&store, "country:IN", 10).await, vec![7]);
    let pruned = logbook_testkit::cases::prune_below(&store, &account("big"), 7, 7)
        .await
        .unwrap();
    assert_eq!(pruned.deleted_events, 2);
    check_indexes();
    assert_eq!(
        seqs_matching(&store, "city:Singapore", 10).await,
        Vec::<u64>::new()
    );
    assert_eq!(seqs_matching(&store, "token", 10).await, vec![8, 7]);
    connection
        .execute(
            "INSERT INTO events_fts (events_fts) VALUES ('integrity-check')",
            [],
        )
        .unwrap();
}

/// Removes the address (and with it the place) of every event of `big` below `below_seq`, as aging
/// does, in one batch.
async fn remove_addresses_aged_below(
    store: &SqliteStore,
    below_seq: u64,
) -> logbook_core::personal_data::PersonalDataRemoved {
    use logbook_core::personal_data::{
        AddressRemoval, PersonalDataBatch, PersonalDataSelection, PersonalFieldRemoval,
    };
    store
        .retention()
        .remove_personal_data(
            &account("big"),
            PersonalDataBatch {
                selection: PersonalDataSelection::AgedBelow { below_seq },
                removal: PersonalFieldRemoval {
                    address: AddressRemoval::Remove,
                    metadata_keys: Vec::new(),
                },
                from_seq: 0,
                max_events: 1_000,
            },
        )
        .await
        .unwrap()
}

/// For every place term of `big`, the documents of both place indexes holding it in any spelling
/// (the term itself, or the token of a location the account uses holding its value), and the
/// events whose columns, or whose interned location's, hold its value: the indexes are exact when
/// the two agree.
fn place_index_and_columns(connection: &rusqlite::Connection) -> Vec<(String, i64, i64)> {
    let account_row: i64 = connection
        .query_row(
            "SELECT account_row FROM accounts WHERE name = 'big'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let mut checks = Vec::new();
    for (term, column_condition) in [
        (
            format!("{account_row}c{}", lower_hex("IN")),
            "country_code = 'IN'",
        ),
        (
            format!("{account_row}c{}", lower_hex("SG")),
            "country_code = 'SG'",
        ),
        (format!("{account_row}a55836"), "asn = 55836"),
        (format!("{account_row}a13335"), "asn = 13335"),
        (
            format!("{account_row}y{}", lower_hex("Pune")),
            "city = 'Pune'",
        ),
        (
            format!("{account_row}y{}", lower_hex("Singapore")),
            "city = 'Singapore'",
        ),
    ] {
        // Events located at ingest between migrations 0020 and 0021 hold the term as a token of
        // their `events_fts` document behind `.`, those since then their location's token; the
        // others hold it in a document of `events_place_terms`.
        let location_tokens: Vec<String> = connection
            .prepare(&format!(
                "SELECT location_row FROM account_locations WHERE account_row = ?1 \
                 AND location_row IN (SELECT location_row FROM locations WHERE {column_condition})"
            ))
            .unwrap()
            .query_map([account_row], |row| row.get::<_, i64>(0))
            .unwrap()
            .map(|location_row| format!(" OR \".{account_row}l{}\"", location_row.unwrap()))
            .collect();
        let indexed: i64 = connection
            .query_row(
                "SELECT (SELECT count(*) FROM events_place_terms WHERE events_place_terms MATCH ?1) \
                 + (SELECT count(*) FROM events_fts WHERE events_fts MATCH ?2)",
                [
                    format!("\"{term}\""),
                    format!("\".{term}\"{}", location_tokens.concat()),
                ],
                |row| row.get(0),
            )
            .unwrap();
        let stored: i64 = connection
            .query_row(
                &format!(
                    "SELECT count(*) FROM events WHERE account_row = ?1 AND ({column_condition} \
                     OR location_row IN (SELECT location_row FROM locations WHERE {column_condition}))"
                ),
                [account_row],
                |row| row.get(0),
            )
            .unwrap();
        checks.push((term, indexed, stored));
    }
    checks
}

/// Places 192.0.2.0/24, which the conformance locator does not know, in Singapore: what
/// `logbook geoip backfill` is given once an IP database covers those addresses.
#[derive(Debug)]
struct SingaporeLocator;

impl logbook_core::location::IpLocator for SingaporeLocator {
    fn locate(&self, ip: std::net::IpAddr) -> Option<logbook_core::location::Location> {
        let block: IpNet = "192.0.2.0/24".parse().unwrap();
        block
            .contains(&ip.to_canonical())
            .then(|| logbook_core::location::Location {
                country_code: Some("SG".into()),
                city: Some("Singapore".into()),
                asn: Some(13335),
                ..Default::default()
            })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_place_terms_follow_the_backfill_the_removal_of_personal_data_and_pruning() {
    // Seq 0..200 from India, 200..220 from Singapore, then 10 from addresses no database knew
    // at ingest.
    let (store, directory) = located_store(200, 20).await;
    let unlocated: Vec<NewEvent> = (0..10)
        .map(|number| {
            EventBuilder::new("big")
                .created_at(datetime!(2024-06-01 00:00 UTC) + Duration::seconds(number))
                .ip(&format!("192.0.2.{number}"))
                .build()
        })
        .collect();
    store.append_events(unlocated).await.unwrap();

    // The backfill places them (an UPDATE of the columns).
    let located = store
        .locations()
        .locate_stored_events(&account("big"), 1_000, Arc::new(SingaporeLocator), true)
        .await
        .unwrap();
    assert_eq!(located.events_located, 10);
    // Aging removes the place with the address (another UPDATE).
    let removed = remove_addresses_aged_below(&store, 150).await;
    assert_eq!(removed.events_changed, 150);
    // Retention deletes a prefix that reaches into the located events left after aging.
    let pruned = logbook_testkit::cases::prune_below(&store, &account("big"), 160, 7)
        .await
        .unwrap();
    assert_eq!(pruned.deleted_events, 160);

    let connection = rusqlite::Connection::open(directory.path().join("logbook.db")).unwrap();
    let checks = place_index_and_columns(&connection);
    for (term, indexed, stored) in &checks {
        assert_eq!(indexed, stored, "term {term}: {checks:?}");
    }
    let singapore = checks
        .iter()
        .find(|(term, _, _)| term.ends_with("53696e6761706f7265"))
        .unwrap();
    assert_eq!(
        singapore.2, 30,
        "20 located at ingest, 10 by the backfill: {checks:?}"
    );
    assert_eq!(
        seqs_matching(&store, "country:IN", 1_000).await,
        (160..200).rev().collect::<Vec<u64>>(),
        "aged and pruned events are no longer found by their country"
    );
    assert_eq!(
        seqs_matching(&store, "city:Singapore", 1_000).await.len(),
        30
    );
    // The documents aging rewrote without their place kept their target, action and actor
    // tokens, and pruning took out exactly the tokens each document held.
    assert_target_index_is_exact(&connection);
    assert_action_index_is_exact(&connection);
    assert_actor_index_is_exact(&connection);
    assert_eq!(
        seqs_matching(&store, "target:host-1", 1_000).await,
        (160..220)
            .rev()
            .filter(|seq| seq % 3 == 1)
            .collect::<Vec<u64>>()
    );
    assert_eq!(
        seqs_matching(&store, "actor:user-7@example.com", 1_000).await,
        (160..220)
            .rev()
            .filter(|seq| seq % 50 == 7)
            .collect::<Vec<u64>>(),
        "events aging rewrote keep their actor tokens"
    );
}

/// Takes a database whose events were stored unlocated by this version back to version 24: each
/// event's targets become rows of `event_targets` and leave its `events_fts` document, as the
/// writers before migration 0025 stored them.
fn spell_targets_as_before_migration_0025(path: &std::path::Path) {
    use logbook_store_sql::full_text::full_text_document;
    use logbook_store_sql::target_terms::push_full_text_target_tokens_of_body;
    let connection = rusqlite::Connection::open(path).unwrap();
    undo_migration_0026(&connection);
    let rows: Vec<(i64, i64, String)> = connection
        .prepare("SELECT event_row, account_row, body FROM events WHERE location_row IS NULL")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (event_row, account_row, body) in rows {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message_only = full_text_document(account_row, body["message"].as_str().unwrap_or(""));
        let mut written = message_only.clone();
        push_full_text_target_tokens_of_body(&mut written, account_row, &body);
        if written == message_only {
            continue;
        }
        connection
            .execute(
                "INSERT INTO events_fts (events_fts, rowid, message) VALUES ('delete', ?1, ?2)",
                rusqlite::params![event_row, written],
            )
            .unwrap();
        if !message_only.is_empty() {
            connection
                .execute(
                    "INSERT INTO events_fts (rowid, message) VALUES (?1, ?2)",
                    rusqlite::params![event_row, message_only],
                )
                .unwrap();
        }
        for target in body["targets"].as_array().unwrap() {
            connection
                .execute(
                    "INSERT OR IGNORE INTO event_targets (account_row, target_id, event_row) VALUES (?1, ?2, ?3)",
                    rusqlite::params![account_row, target["id"].as_str().unwrap(), event_row],
                )
                .unwrap();
        }
    }
    connection.execute_batch(UNDO_MIGRATION_0025).unwrap();
}

/// Stores six events of `big` and two of `other` (`events(account, first, count)`), takes the
/// database back to before a migration (`undo`, given its path), opens it again, which applies
/// the migration, and stores six more events of `big`: the store open after the migration.
async fn store_across_a_migration(
    path: &std::path::Path,
    events: &impl Fn(&str, i64, i64) -> Vec<NewEvent>,
    undo: impl FnOnce(&std::path::Path),
) -> SqliteStore {
    {
        let store = open(path);
        store.append_events(events("big", 0, 6)).await.unwrap();
        store.append_events(events("other", 0, 2)).await.unwrap();
        store.shutdown().await;
    }
    undo(path);
    let store = open(path);
    store.append_events(events("big", 6, 6)).await.unwrap();
    store
}

/// The rows of `rows_table` (a field of events stored before its migration) and the accounts
/// `marker_table` marks.
fn rows_and_marked_accounts(
    connection: &rusqlite::Connection,
    rows_table: &str,
    marker_table: &str,
) -> (i64, i64) {
    connection
        .query_row(
            &format!(
                "SELECT (SELECT count(*) FROM {rows_table}), (SELECT count(*) FROM {marker_table})"
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

/// Events stored before migration 0025 keep their target rows, events stored since have target
/// tokens: `target:` finds both kinds in one page, in order, and pruning takes each out of the
/// index it is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_target_rows_are_found_and_pruned_beside_events_with_target_tokens() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let start = datetime!(2024-05-01 00:00 UTC);
    let events = |account_name: &str, first: i64, count: i64| -> Vec<NewEvent> {
        (first..first + count)
            .map(|number| {
                EventBuilder::new(account_name)
                    .created_at(start + Duration::seconds(number))
                    .message(&format!("deploy {number}"))
                    .target("host", &format!("web-{}", number % 2))
                    .target("release", &format!("r{number}"))
                    .build()
            })
            .collect()
    };
    let store =
        store_across_a_migration(&path, &events, spell_targets_as_before_migration_0025).await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    let (target_rows, marked_accounts) =
        rows_and_marked_accounts(&connection, "event_targets", "events_with_target_rows");
    assert_eq!(
        (target_rows, marked_accounts),
        (16, 2),
        "two rows of each event stored before"
    );
    assert_target_index_is_exact(&connection);
    assert_eq!(
        seqs_matching(&store, "target:web-1", 10).await,
        vec![11, 9, 7, 5, 3, 1]
    );
    assert_eq!(
        seqs_matching(&store, "target:r*", 4).await,
        vec![11, 10, 9, 8]
    );
    assert_eq!(
        seqs_matching(&store, "target:r4,r7 -target:web-0", 10).await,
        vec![7]
    );
    assert_eq!(
        seqs_matching(&store, "target:r1*", 10).await,
        vec![11, 10, 1]
    );

    // Pruning reaches across the migration's marker: each event leaves the index it was in.
    let pruned = logbook_testkit::cases::prune_below(&store, &account("big"), 8, 3)
        .await
        .unwrap();
    assert_eq!(pruned.deleted_events, 8);
    assert_target_index_is_exact(&connection);
    assert_eq!(seqs_matching(&store, "target:web-1", 10).await, vec![11, 9]);
    let target_rows: i64 = connection
        .query_row("SELECT count(*) FROM event_targets", [], |row| row.get(0))
        .unwrap();
    assert_eq!(target_rows, 4, "only the other account's");
    store.shutdown().await;
}

/// Events stored before migration 0026 keep their actions as rows (the old index, moved into
/// `event_action_rows`), events stored since have action tokens: `action:` finds both kinds in one
/// page, in order, a negated action is tested on the rows, and pruning takes each event out of
/// the index it is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_action_rows_are_found_and_pruned_beside_events_with_action_tokens() {
    const ACTIONS: [&str; 3] = ["user.login", "server.reboot", "server.create"];
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let start = datetime!(2024-05-01 00:00 UTC);
    let events = |account_name: &str, first: i64, count: i64| -> Vec<NewEvent> {
        (first..first + count)
            .map(|number| {
                EventBuilder::new(account_name)
                    .created_at(start + Duration::hours(5 * number))
                    .action(ACTIONS[number as usize % 3])
                    .message(&format!("step {number}"))
                    .build()
            })
            .collect()
    };
    let store = store_across_a_migration(&path, &events, |path: &std::path::Path| {
        let connection = rusqlite::Connection::open(path).unwrap();
        undo_migration_0026(&connection);
        assert_action_tokens_are_absent(&connection);
    })
    .await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    let (action_rows, marked_accounts) =
        rows_and_marked_accounts(&connection, "event_action_rows", "events_with_action_rows");
    assert_eq!(
        (action_rows, marked_accounts),
        (8, 2),
        "a row of each event stored before"
    );
    assert_action_index_is_exact(&connection);
    // The timeline of an action per day, from the counts the migration made and the writer
    // kept: event `n` is dated `5n` hours after the first midnight.
    assert_eq!(
        day_timeline(&store, "action:user.login").await,
        vec![(0, 2), (1, 2)],
        "events 0, 3; 6, 9"
    );
    assert_eq!(
        day_timeline(&store, "action:server.*").await,
        vec![(0, 3), (1, 3), (2, 2)],
        "events 1, 2, 4; 5, 7, 8; 10, 11"
    );
    assert_eq!(
        seqs_matching(&store, "action:user.login", 10).await,
        vec![9, 6, 3, 0]
    );
    assert_eq!(
        seqs_matching(&store, "action:server.*", 5).await,
        vec![11, 10, 8, 7, 5]
    );
    assert_eq!(
        seqs_matching(
            &store,
            "action:user.login,server.create -action:user.login",
            10
        )
        .await,
        vec![11, 8, 5, 2]
    );
    assert_eq!(
        seqs_matching(&store, "-action:server.*", 10).await,
        vec![9, 6, 3, 0]
    );
    assert_eq!(
        seqs_matching(&store, "action:server.re*", 10).await,
        vec![10, 7, 4, 1]
    );
    let legacy_plan = plan(
        &store,
        query(vec![clause(Condition::Action(patterns("user.login")))]),
        None,
    )
    .await;
    assert!(
        legacy_plan.contains("event_action_rows USING PRIMARY KEY (account_row=? AND action=?)"),
        "{legacy_plan}"
    );

    // Pruning reaches across the migration's marker: each event leaves the index it was in.
    let pruned = logbook_testkit::cases::prune_below(&store, &account("big"), 8, 3)
        .await
        .unwrap();
    assert_eq!(pruned.deleted_events, 8);
    assert_action_index_is_exact(&connection);
    assert_eq!(
        seqs_matching(&store, "action:user.login", 10).await,
        vec![9]
    );
    assert_eq!(
        day_timeline(&store, "action:server.*").await,
        vec![(1, 1), (2, 2)],
        "events 8; 10, 11"
    );
    let counted: i64 = connection
        .query_row(
            "SELECT sum(events) FROM event_day_action_counts",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(counted, 4 + 2, "big's kept events and the other account's");
    let action_rows: i64 = connection
        .query_row("SELECT count(*) FROM event_action_rows", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(action_rows, 2, "only the other account's");
    store.shutdown().await;
}

/// Events stored before migration 0028 keep their actors as rows (the old index, moved into
/// `event_actor_rows`), events stored since have actor tokens: `actor:` finds both kinds in one
/// page, in order, with prefixes and beside other clauses, a negated actor is tested on the rows,
/// an actor's timeline per day and where an actor was seen read both, and pruning takes each event
/// out of the index it is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_actor_rows_are_found_and_pruned_beside_events_with_actor_tokens() {
    const ACTORS: [&str; 3] = ["alice@acme.test", "albert@acme.test", "bob@acme.test"];
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let start = datetime!(2024-05-01 00:00 UTC);
    // Event `n` is by `ACTORS[n % 3]`, from `10.0.0.<n % 2>`, dated `5n` hours after the first
    // midnight; every fourth has no actor at all.
    let events = |account_name: &str, first: i64, count: i64| -> Vec<NewEvent> {
        (first..first + count)
            .map(|number| {
                let event = EventBuilder::new(account_name)
                    .created_at(start + Duration::hours(5 * number))
                    .ip(&format!("10.0.0.{}", number % 2))
                    .message(&format!("step {number}"));
                if number % 4 == 3 {
                    event.build()
                } else {
                    event.actor(ACTORS[number as usize % 3]).build()
                }
            })
            .collect()
    };
    let store = store_across_a_migration(&path, &events, |path: &std::path::Path| {
        let connection = rusqlite::Connection::open(path).unwrap();
        undo_migration_0028(&connection);
        assert_eq!(
            indexed_tokens_of_kind(&connection, 'p'),
            std::collections::BTreeSet::new()
        );
    })
    .await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    let (actor_rows, marked_accounts) =
        rows_and_marked_accounts(&connection, "event_actor_rows", "events_with_actor_rows");
    assert_eq!(
        (actor_rows, marked_accounts),
        (5 + 2, 2),
        "a row of each event stored before with an actor (big's 3 has none)"
    );
    assert_actor_index_is_exact(&connection);
    // Actors: 0 alice, 1 albert, 2 bob, 3 none, 4 albert, 5 bob, 6 alice, 7 none, 8 bob,
    // 9 alice, 10 albert, 11 none.
    assert_eq!(
        seqs_matching(&store, "actor:alice@acme.test", 10).await,
        vec![9, 6, 0]
    );
    assert_eq!(
        seqs_matching(&store, "actor:al*", 10).await,
        vec![10, 9, 6, 4, 1, 0]
    );
    assert_eq!(
        seqs_matching(&store, "actor:al* -actor:albert@acme.test", 10).await,
        vec![9, 6, 0]
    );
    assert_eq!(
        seqs_matching(&store, "-actor:al*", 10).await,
        vec![11, 8, 7, 5, 3, 2]
    );
    assert_eq!(
        seqs_matching(&store, "actor:bob@acme.test ip:10.0.0.0", 10).await,
        vec![8, 2]
    );
    assert_eq!(
        day_timeline(&store, "actor:al*").await,
        vec![(0, 3), (1, 2), (2, 1)],
        "events 0, 1, 4; 6, 9; 10"
    );
    // With a range: its whole days from the day counts, the part of a day at either end counted
    // over that part's events.
    assert_eq!(
        day_timeline(
            &store,
            "actor:al* created:>=2024-05-01T10:00:00Z created:<2024-05-02T20:00:00Z"
        )
        .await,
        vec![(0, 1), (1, 1)],
        "event 4 (20:00 on the first day), 6 (06:00 on the second); not 9 (21:00)"
    );
    assert_eq!(
        day_timeline(&store, "actor:al* created:>=2024-05-01T04:00:00Z").await,
        vec![(0, 2), (1, 2), (2, 1)],
        "events 1, 4; 6, 9; 10"
    );
    assert_eq!(
        day_timeline(&store, "actor:al* created:2024-05-02").await,
        vec![(1, 2)],
        "one whole day: events 6, 9"
    );
    let seen = store
        .unfamiliar_ips()
        .actor_addresses(&account("big"), "alice@acme.test", 10)
        .await
        .unwrap();
    let seen_counts: Vec<(String, u64)> = seen
        .iter()
        .map(|address| (address.ip.to_string(), address.recent_event_count))
        .collect();
    assert_eq!(
        seen_counts,
        vec![("10.0.0.1".to_owned(), 1), ("10.0.0.0".to_owned(), 2)],
        "alice's events 9 (from .1), 6 and 0 (from .0)"
    );
    let legacy_plan = plan(
        &store,
        query(vec![clause(Condition::Actor(patterns("alice@acme.test")))]),
        None,
    )
    .await;
    assert!(
        legacy_plan.contains("event_actor_rows USING PRIMARY KEY (account_row=? AND actor_id=?)"),
        "{legacy_plan}"
    );

    // Pruning reaches across the migration's marker: each event leaves the index it was in.
    let pruned = logbook_testkit::cases::prune_below(&store, &account("big"), 8, 3)
        .await
        .unwrap();
    assert_eq!(pruned.deleted_events, 8);
    assert_actor_index_is_exact(&connection);
    assert_eq!(seqs_matching(&store, "actor:al*", 10).await, vec![10, 9]);
    assert_eq!(
        day_timeline(&store, "actor:bob@acme.test").await,
        vec![(1, 1)],
        "event 8"
    );
    let counted: i64 = connection
        .query_row(
            "SELECT sum(events) FROM event_day_actor_counts",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        counted,
        3 + 2,
        "big's kept events with an actor and the other account's"
    );
    let actor_rows: i64 = connection
        .query_row("SELECT count(*) FROM event_actor_rows", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(actor_rows, 2, "only the other account's");
    store.shutdown().await;
}

/// Events stored before migration 0029 keep their addresses as rows (the old index, moved into
/// `event_ip_rows`), events stored since have address tokens: `ip:` finds both kinds in one page,
/// in order, for addresses, blocks of any length and IPv6, beside an actor and negated; aging
/// takes each aged address out of the index it is in and the new-IP history forgets exactly the
/// pairs no event holds any more; pruning takes each event out of the index it is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_ip_rows_are_found_aged_and_pruned_beside_events_with_ip_tokens() {
    const ACTORS: [&str; 3] = ["alice", "albert", "bob"];
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let start = datetime!(2024-05-01 00:00 UTC);
    // Event `n` is by `ACTORS[n % 3]`, from `ADDRESSES[n % 4]` (the fourth has none).
    const ADDRESSES: [Option<&str>; 4] = [
        Some("10.0.0.1"),
        Some("10.0.0.130"),
        Some("2001:db8::5"),
        None,
    ];
    let events = |account_name: &str, first: i64, count: i64| -> Vec<NewEvent> {
        (first..first + count)
            .map(|number| {
                let event = EventBuilder::new(account_name)
                    .created_at(start + Duration::hours(5 * number))
                    .actor(ACTORS[number as usize % 3])
                    .message(&format!("step {number}"));
                match ADDRESSES[number as usize % 4] {
                    Some(address) => event.ip(address).build(),
                    None => event.build(),
                }
            })
            .collect()
    };
    let store = store_across_a_migration(&path, &events, |path: &std::path::Path| {
        let connection = rusqlite::Connection::open(path).unwrap();
        undo_migration_0029(&connection);
        assert_eq!(
            indexed_tokens_of_kind(&connection, 'i'),
            std::collections::BTreeSet::new()
        );
    })
    .await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    let (ip_rows, marked_accounts) =
        rows_and_marked_accounts(&connection, "event_ip_rows", "events_with_ip_rows");
    assert_eq!(
        (ip_rows, marked_accounts),
        (5 + 2, 2),
        "a row of each event stored before with an address (big's 3 has none)"
    );
    assert_ip_index_is_exact(&connection);
    // Addresses: 0 .1, 1 .130, 2 v6, 3 none, 4 .1, 5 .130, 6 v6, 7 none, 8 .1, 9 .130, 10 v6,
    // 11 none. Actors: alice 0, 3, 6, 9; albert 1, 4, 7, 10; bob 2, 5, 8, 11.
    let cases: [(&str, Vec<u64>); 9] = [
        ("ip:10.0.0.1", vec![8, 4, 0]),
        ("ip:10.0.0.0/25", vec![8, 4, 0]),
        ("ip:10.0.0.128/25", vec![9, 5, 1]),
        ("ip:10.0.0.0/24", vec![9, 8, 5, 4, 1, 0]),
        ("ip:2001:db8::/32", vec![10, 6, 2]),
        ("ip:::/0", vec![10, 6, 2]),
        (
            "ip:0.0.0.0/0,2001:db8::5",
            (0..12).rev().filter(|n| n % 4 != 3).collect(),
        ),
        ("-ip:10.0.0.0/24", vec![11, 10, 7, 6, 3, 2]),
        ("ip:10.0.0.0/24 actor:alice", vec![9, 0]),
    ];
    for (text, expected) in &cases {
        assert_eq!(&seqs_matching(&store, text, 20).await, expected, "{text}");
    }
    let legacy_plan = plan(&store, query(vec![clause(ip("10.0.0.1/32"))]), None).await;
    assert!(
        legacy_plan.contains("event_ip_rows USING PRIMARY KEY (account_row=? AND ip=?)"),
        "{legacy_plan}"
    );
    // Per day (event `n` at `5n` hours): the day counts per address, whole days and the part of a
    // day at a range's start.
    assert_eq!(
        day_timeline(&store, "ip:10.0.0.0/24").await,
        vec![(0, 3), (1, 3)],
        "events 0, 1, 4; 5, 8, 9"
    );
    assert_eq!(
        day_timeline(&store, "ip:2001:db8::/32").await,
        vec![(0, 1), (1, 1), (2, 1)]
    );
    assert_eq!(
        day_timeline(&store, "ip:10.0.0.0/24 created:>=2024-05-01T06:00:00Z").await,
        vec![(0, 1), (1, 3)],
        "not events 0 and 1, before 06:00"
    );
    assert_ip_day_counts_are_those_of_stored_events(&connection);

    // Aging reaches across the migration's marker: events 0 to 7 lose their addresses, from the
    // rows (0, 1, 2, 4, 5) and from the tokens (6).
    remove_addresses_aged_below(&store, 8).await;
    assert_ip_index_is_exact(&connection);
    assert_ip_day_counts_are_those_of_stored_events(&connection);
    assert_eq!(
        day_timeline(&store, "ip:10.0.0.0/24").await,
        vec![(1, 2)],
        "events 8, 9"
    );
    assert_eq!(
        seqs_matching(&store, "ip:10.0.0.0/24", 20).await,
        vec![9, 8]
    );
    assert_eq!(seqs_matching(&store, "ip:::/0", 20).await, vec![10]);
    // Each person's history keeps the one pair a kept event holds: alice 10.0.0.130 (event 9),
    // albert 2001:db8::5 (event 10), bob 10.0.0.1 (event 8).
    for (actor, kept) in [
        ("alice", "10.0.0.130"),
        ("albert", "2001:db8::5"),
        ("bob", "10.0.0.1"),
    ] {
        let remembered: Vec<String> = connection
            .prepare(
                "SELECT ip FROM actor_addresses WHERE actor_id = ?1 \
                 AND account_row = (SELECT account_row FROM accounts WHERE name = 'big')",
            )
            .unwrap()
            .query_map([actor], |row| row.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|ip| {
                let bytes: [u8; 16] = ip.unwrap().try_into().unwrap();
                std::net::Ipv6Addr::from(bytes).to_canonical().to_string()
            })
            .collect();
        assert_eq!(remembered, vec![kept.to_owned()], "{actor}");
    }

    // Pruning reaches across it too.
    let pruned = logbook_testkit::cases::prune_below(&store, &account("big"), 9, 4)
        .await
        .unwrap();
    assert_eq!(pruned.deleted_events, 9);
    assert_ip_index_is_exact(&connection);
    assert_ip_day_counts_are_those_of_stored_events(&connection);
    assert_eq!(
        day_timeline(&store, "ip:::/0").await,
        vec![(2, 1)],
        "event 10"
    );
    assert_eq!(seqs_matching(&store, "ip:10.0.0.0/24", 20).await, vec![9]);
    let ip_rows: i64 = connection
        .query_row("SELECT count(*) FROM event_ip_rows", [], |row| row.get(0))
        .unwrap();
    assert_eq!(ip_rows, 2, "only the other account's");
    store.shutdown().await;
}

/// Asserts that `event_day_ip_counts` holds, for each account, day and address, the number of
/// stored events created that day from that address, and no other row.
fn assert_ip_day_counts_are_those_of_stored_events(connection: &rusqlite::Connection) {
    let read = |sql: &str| -> Vec<(i64, i64, Vec<u8>, i64)> {
        connection
            .prepare(sql)
            .unwrap()
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        read(
            "SELECT account_row, day_start, ip, events FROM event_day_ip_counts \
             ORDER BY account_row, day_start, ip"
        ),
        read(
            "SELECT account_row, created_at - (created_at % 86400000000) AS day, ip, count(*) \
             FROM events WHERE ip IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
    );
}

/// Asserts that `ip:` finds each stored address in exactly the events holding it: for every
/// account and address of a stored event, the documents of `events_fts` holding its token plus
/// its rows of `event_ip_rows` are the events with that address, no event is in both, and the
/// index holds no address token or row of an event no longer stored (or no longer holding it).
fn assert_ip_index_is_exact(connection: &rusqlite::Connection) {
    let stored: Vec<(i64, Vec<u8>, i64)> = connection
        .prepare("SELECT account_row, ip, count(*) FROM events WHERE ip IS NOT NULL GROUP BY 1, 2")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected_tokens = std::collections::BTreeSet::new();
    for (account_row, ip, events) in &stored {
        let mut token = String::new();
        logbook_store_sql::ip_terms::push_full_text_ip_token(&mut token, *account_row, ip);
        let (in_tokens, in_rows, in_both): (i64, i64, i64) = connection
            .query_row(
                "SELECT (SELECT count(*) FROM events_fts WHERE events_fts MATCH ?1), \
                 (SELECT count(*) FROM event_ip_rows r JOIN events e \
                  ON e.event_row = r.event_row AND e.ip = r.ip AND e.created_at = r.created_at \
                  WHERE r.account_row = ?2 AND r.ip = ?3), \
                 (SELECT count(*) FROM event_ip_rows WHERE account_row = ?2 AND ip = ?3 \
                  AND event_row IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?1))",
                rusqlite::params![format!("\"{token}\""), account_row, ip],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (in_tokens + in_rows, in_both),
            (*events, 0),
            "address {token} of account {account_row}: {in_tokens} documents, {in_rows} rows"
        );
        if in_tokens > 0 {
            expected_tokens.insert(token);
        }
    }
    let mut indexed = indexed_tokens_of_kind(connection, 'i');
    indexed.extend(indexed_tokens_of_kind(connection, 'j'));
    assert_eq!(indexed, expected_tokens);
    let stale_rows: i64 = connection
        .query_row(
            "SELECT count(*) FROM event_ip_rows r WHERE NOT EXISTS \
             (SELECT 1 FROM events e WHERE e.event_row = r.event_row AND e.ip = r.ip)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        stale_rows, 0,
        "rows of pruned or aged events in event_ip_rows"
    );
    connection
        .execute(
            "INSERT INTO events_fts (events_fts) VALUES ('integrity-check')",
            [],
        )
        .unwrap();
}

/// A database upgraded with a long history holds its actions as rows: they count toward the
/// action's plan (common beside a rare actor, so tested on the actor's events; rare looked up) and
/// are read from windows of the newest arrivals, and every page is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_accounts_action_rows_count_toward_its_plan() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let start = datetime!(2024-05-01 00:00 UTC);
    // Event `n`: a login unless `n % 20 == 0` (a reboot), by `user-{n % 50}`.
    let action_of = |n: u64| {
        if n.is_multiple_of(20) {
            "server.reboot"
        } else {
            "user.login"
        }
    };
    {
        let store = open(&path);
        let events: Vec<NewEvent> = (0..2_200_u64)
            .map(|n| {
                EventBuilder::new("big")
                    .created_at(start + Duration::seconds(n as i64))
                    .action(action_of(n))
                    .actor(&format!("user-{}@example.com", n % 50))
                    .message(&format!("step {n}"))
                    .build()
            })
            .collect();
        store.append_events(events).await.unwrap();
        store.shutdown().await;
    }
    undo_migration_0026(&rusqlite::Connection::open(&path).unwrap());
    let store = open(&path);
    let actor = || clause(Condition::Actor(patterns("user-7@example.com")));
    let common = plan(
        &store,
        query(vec![
            actor(),
            clause(Condition::Action(patterns("user.login"))),
        ]),
        None,
    )
    .await;
    // The actor (44 events, all stored before migration 0028) is looked up in its rows and
    // tokens; the common action is tested on each of its events.
    assert_plan(
        &common,
        "event_actor_rows USING PRIMARY KEY (account_row=? AND actor_id=?)",
        true,
    );
    assert!(!common.contains("event_action_rows"), "{common}");
    let rare = plan(
        &store,
        query(vec![
            actor(),
            clause(Condition::Action(patterns("server.reboot"))),
        ]),
        None,
    )
    .await;
    assert!(rare.contains("event_action_rows"), "{rare}");
    let cases: [(&str, u32); 4] = [
        ("action:user.login", 50),
        ("action:server.reboot", 1_000),
        ("actor:user-7@example.com action:user.login", 1_000),
        ("action:user.* -actor:user-7@example.com", 50),
    ];
    for (text, limit) in cases {
        let query = logbook_core::query::parse(text).unwrap();
        let expected: Vec<u64> = store
            .events_since(&account("big"), 0, 10_000)
            .await
            .unwrap()
            .iter()
            .rev()
            .filter(|row| query.matches(&row.decode().unwrap()))
            .map(|row| row.seq)
            .take(limit as usize)
            .collect();
        assert!(!expected.is_empty(), "{text}");
        assert_eq!(seqs_matching(&store, text, limit).await, expected, "{text}");
    }
    store.shutdown().await;
}

/// The timeline per day of `text` on `big`: (days after 2024-05-01, events).
async fn day_timeline(store: &SqliteStore, text: &str) -> Vec<(i64, u64)> {
    let first_day = logbook_core::event::unix_micros(datetime!(2024-05-01 00:00 UTC));
    store
        .count_events_over_time(
            &account("big"),
            &logbook_core::query::parse(text).unwrap(),
            TimeBucket::Day,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|bucket| {
            (
                (bucket.start_micros - first_day) / TimeBucket::Day.width_micros(),
                bucket.events,
            )
        })
        .collect()
}

/// Asserts that no document of `events_fts` holds an action token.
fn assert_action_tokens_are_absent(connection: &rusqlite::Connection) {
    assert_eq!(
        indexed_tokens_of_kind(connection, 'v'),
        std::collections::BTreeSet::new()
    );
}

/// Asserts that `action:` finds each stored action in exactly the events holding it (see
/// `assert_field_index_is_exact`).
fn assert_action_index_is_exact(connection: &rusqlite::Connection) {
    assert_field_index_is_exact(connection, "action", 'v', "event_action_rows");
}

/// Asserts that `actor:` finds each stored actor in exactly the events holding it (see
/// `assert_field_index_is_exact`).
fn assert_actor_index_is_exact(connection: &rusqlite::Connection) {
    assert_field_index_is_exact(connection, "actor_id", 'p', "event_actor_rows");
}

/// Asserts that a field kept as tokens of `kind` (an action, an actor) is found in exactly the
/// events holding it: for every account and value of `column` of a stored event, the documents of
/// `events_fts` holding its token plus its rows of `rows_table` are the events with that value, no
/// event is in both, and the index holds no such token or row of an event no longer stored.
/// Checks FTS5's own structure too.
fn assert_field_index_is_exact(
    connection: &rusqlite::Connection,
    column: &str,
    kind: char,
    rows_table: &str,
) {
    let stored: Vec<(i64, String, i64)> = connection
        .prepare(&format!(
            "SELECT account_row, {column}, count(*) FROM events WHERE {column} IS NOT NULL GROUP BY 1, 2"
        ))
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected_tokens = std::collections::BTreeSet::new();
    for (account_row, value, events) in &stored {
        let token = format!(".{account_row}{kind}{}", lower_hex(value));
        let (in_tokens, in_rows, in_both): (i64, i64, i64) = connection
            .query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM events_fts WHERE events_fts MATCH ?1), \
                     (SELECT count(*) FROM {rows_table} r JOIN events e \
                      ON e.event_row = r.event_row AND e.{column} = r.{column} AND e.created_at = r.created_at \
                      WHERE r.account_row = ?2 AND r.{column} = ?3), \
                     (SELECT count(*) FROM {rows_table} WHERE account_row = ?2 AND {column} = ?3 \
                      AND event_row IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?1))"
                ),
                rusqlite::params![format!("\"{token}\""), account_row, value],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (in_tokens + in_rows, in_both),
            (*events, 0),
            "{column} {value} of account {account_row}: {in_tokens} documents, {in_rows} rows"
        );
        if in_tokens > 0 {
            expected_tokens.insert(token);
        }
    }
    assert_tokens_and_rows_are_those_of_stored_events(
        connection,
        kind,
        &expected_tokens,
        rows_table,
    );
}

/// The lower-case hex of a text's UTF-8, as value and place tokens spell it.
fn lower_hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

/// The tokens of one kind (`kind`, the letter after the account's digits) that `events_fts`
/// holds for any document, read from the index itself (`fts5vocab`).
fn indexed_tokens_of_kind(
    connection: &rusqlite::Connection,
    kind: char,
) -> std::collections::BTreeSet<String> {
    connection
        .execute_batch(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.full_text_terms USING fts5vocab(main, events_fts, 'row')",
        )
        .unwrap();
    connection
        .prepare("SELECT term FROM temp.full_text_terms WHERE term GLOB ?1 AND doc > 0")
        .unwrap()
        .query_map([format!(".*{kind}*")], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Asserts that the tokens of one kind (`kind`, the letter after the account's digits) that
/// `events_fts` holds for any document are exactly `expected_tokens`, that `rows_table` (where the
/// kind's values of events stored before its migration are) holds no row of an event no longer
/// stored, and that FTS5's own structure checks out.
fn assert_tokens_and_rows_are_those_of_stored_events(
    connection: &rusqlite::Connection,
    kind: char,
    expected_tokens: &std::collections::BTreeSet<String>,
    rows_table: &str,
) {
    assert_eq!(&indexed_tokens_of_kind(connection, kind), expected_tokens);
    let orphan_rows: i64 = connection
        .query_row(
            &format!(
                "SELECT count(*) FROM {rows_table} WHERE event_row NOT IN (SELECT event_row FROM events)"
            ),
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(orphan_rows, 0, "rows of pruned events in {rows_table}");
    connection
        .execute(
            "INSERT INTO events_fts (events_fts) VALUES ('integrity-check')",
            [],
        )
        .unwrap();
}

/// Asserts that `target:` finds each stored target in exactly the events holding it: for every
/// account and target id of a stored event, the documents of `events_fts` holding its token plus
/// its rows of `event_targets` are the events whose body names it, and the index holds no target
/// token of an event no longer stored. Checks FTS5's own structure too.
fn assert_target_index_is_exact(connection: &rusqlite::Connection) {
    let stored: Vec<(i64, String, i64)> = connection
        .prepare(
            "SELECT account_row, target.value ->> 'id', count(DISTINCT event_row) \
             FROM events, json_each(events.body, '$.targets') AS target GROUP BY 1, 2",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected_tokens = std::collections::BTreeSet::new();
    for (account_row, target_id, events) in &stored {
        let token = format!(".{account_row}t{}", lower_hex(target_id));
        let (in_tokens, in_rows): (i64, i64) = connection
            .query_row(
                "SELECT (SELECT count(*) FROM events_fts WHERE events_fts MATCH ?1), \
                 (SELECT count(*) FROM event_targets WHERE account_row = ?2 AND target_id = ?3)",
                rusqlite::params![format!("\"{token}\""), account_row, target_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            in_tokens + in_rows,
            *events,
            "target {target_id} of account {account_row}: {in_tokens} documents, {in_rows} rows"
        );
        if in_tokens > 0 {
            expected_tokens.insert(token);
        }
    }
    assert_tokens_and_rows_are_those_of_stored_events(
        connection,
        't',
        &expected_tokens,
        "event_targets",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_blocks_and_targets_read_only_their_matches() {
    let (store, _directory) = filled_store().await;
    // An actor's prefix is an FTS5 prefix query of its tokens (migration 0028).
    let actor_prefix = query(vec![clause(Condition::Actor(patterns("user-7*")))]);
    assert_plan(
        &plan(&store, actor_prefix, None).await,
        "SCAN events_fts VIRTUAL TABLE INDEX",
        true,
    );
    // A block is FTS5 prefix queries of its addresses' tokens (migration 0029).
    let block = query(vec![clause(ip("10.0.1.0/24"))]);
    assert_plan(
        &plan(&store, block, None).await,
        "SCAN events_fts VIRTUAL TABLE INDEX",
        true,
    );
    // Actions stored since migration 0026 are tokens of the full-text index; an account with no
    // event stored before has no action rows to read.
    let action_prefix = query(vec![clause(Condition::Action(patterns("server.*")))]);
    let action_plan = plan(&store, action_prefix, None).await;
    assert_plan(&action_plan, "SCAN events_fts VIRTUAL TABLE INDEX", true);
    assert!(
        action_plan.contains("INTEGER PRIMARY KEY (rowid=?)"),
        "{action_plan}"
    );
    assert!(!action_plan.contains("event_action_rows"), "{action_plan}");
    let target = query(vec![clause(Condition::Target(patterns("web-3")))]);
    let target_plan = plan(&store, target, None).await;
    assert_plan(
        &target_plan,
        "SEARCH event_targets USING PRIMARY KEY (account_row=? AND target_id=?)",
        true,
    );
    assert!(
        target_plan.contains("INTEGER PRIMARY KEY (rowid=?)"),
        "{target_plan}"
    );
    // Targets stored since migration 0025 are tokens of the full-text index.
    assert!(
        target_plan.contains("SCAN events_fts VIRTUAL TABLE INDEX"),
        "{target_plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_word_looks_up_the_full_text_index_first_and_a_common_word_walks_newest_first() {
    let (store, _directory) = filled_store().await;
    let rare_plan = plan(&store, query(vec![clause(word("rare17"))]), None).await;
    assert_plan(
        &rare_plan,
        "SEARCH events USING INTEGER PRIMARY KEY (rowid=?)",
        true,
    );
    assert!(rare_plan.contains("LIST SUBQUERY"), "{rare_plan}");
    let common_plan = plan(&store, query(vec![clause(word("common"))]), None).await;
    assert_plan(
        &common_plan,
        "events_by_account_created (account_row=?)",
        false,
    );
    assert!(
        !common_plan.contains("LIST SUBQUERY") && !common_plan.contains("events_fts"),
        "a common word is checked in Rust on each row, not probed in the FTS index: {common_plan}"
    );
    // A rare actor (60 of the 3,000 events) is looked up in its tokens, and the common word is
    // checked on each of its events.
    let with_actor = query(vec![
        clause(word("common")),
        clause(Condition::Actor(patterns("user-7@example.com"))),
    ]);
    let with_actor_plan = plan(&store, with_actor, None).await;
    assert_plan(
        &with_actor_plan,
        "SEARCH events USING INTEGER PRIMARY KEY (rowid=?)",
        true,
    );
    assert_eq!(
        with_actor_plan.matches("SCAN events_fts").count(),
        1,
        "one lookup, the actor's: {with_actor_plan}"
    );

    // Both plans return the right events.
    let common_page = store
        .query_events(
            &account("big"),
            &EventQuery {
                query: query(vec![clause(word("common"))]),
                limit: 50,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(common_page.events.len(), 50);
    assert_eq!(common_page.events[0].seq, 2_999, "newest first");
    assert!(common_page.next.is_some());
    let rare_page = store
        .query_events(
            &account("big"),
            &EventQuery {
                query: query(vec![clause(word("rare17"))]),
                limit: 50,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rare_page
            .events
            .iter()
            .map(|row| row.seq)
            .collect::<Vec<_>>(),
        vec![17]
    );
    let common_but_not_rare17 = store
        .query_events(
            &account("small-1"),
            &EventQuery {
                query: query(vec![clause(word("common")), negated(word("rare17"))]),
                limit: 1000,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(common_but_not_rare17.events.len(), 299);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_file_works_while_the_first_is_open() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let serving = open(&path);
    serving
        .append_events(vec![
            EventBuilder::new("acme").message("from the server").build(),
        ])
        .await
        .unwrap();
    // The CLI opens the same database to manage accounts while `serve` keeps running.
    let command_line = open(&path);
    command_line
        .create_account(&account("globex"), datetime!(2024-06-01 00:00 UTC))
        .await
        .unwrap();
    let page = command_line
        .query_events(
            &account("acme"),
            &EventQuery {
                query: Query::default(),
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    command_line.shutdown().await;
    let accounts: Vec<String> = serving
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.account.to_string())
        .collect();
    assert_eq!(accounts, vec!["acme", "globex"]);
    let outcome = serving
        .append_events(vec![EventBuilder::new("acme").build()])
        .await
        .unwrap();
    assert!(
        matches!(&outcome[0], logbook_core::store::AppendOutcome::Stored(receipt) if receipt.seq == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_live_database_opens_with_the_same_events() {
    let directory = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&directory.path().join("logbook.db")));
    let events: Vec<NewEvent> = (0..500)
        .map(|number| {
            EventBuilder::new("acme")
                .message(&format!("event {number} backup"))
                .build()
        })
        .collect();
    store.append_events(events).await.unwrap();
    let backup_path = directory.path().join("backup.db");
    store.backup(&backup_path).await.unwrap();
    let restored = open(&backup_path);
    let everything = EventQuery {
        query: Query::default(),
        limit: 1000,
        after: None,
    };
    let original = store
        .query_events(&account("acme"), &everything)
        .await
        .unwrap()
        .events;
    let copied = restored
        .query_events(&account("acme"), &everything)
        .await
        .unwrap()
        .events;
    assert_eq!(original.len(), 500);
    assert_eq!(copied, original);
    let by_text = EventQuery {
        query: query(vec![clause(word("backup"))]),
        limit: 1000,
        after: None,
    };
    assert_eq!(
        restored
            .query_events(&account("acme"), &by_text)
            .await
            .unwrap()
            .events
            .len(),
        500
    );
    assert_eq!(restored.next_seq(&account("acme")).await.unwrap(), 500);
}

#[test]
fn the_schema_sql_builds_the_same_tables_in_a_plain_connection() {
    let directory = tempfile::tempdir().unwrap();
    let connection = rusqlite::Connection::open(directory.path().join("baseline.db")).unwrap();
    connection
        .execute_batch(&logbook_store_sqlite::schema_sql())
        .unwrap();
    let index_count: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        index_count, 3,
        "created, id and key: actions, actors and addresses are tokens since migrations 0026, \
         0028 and 0029"
    );
    let place_terms: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'events_place_terms'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(place_terms, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_appending_alternately_to_one_file_keep_seq_dense() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    // `serve` and `logbook demo` may both append to the same file.
    let serving = open(&path);
    let demo = open(&path);
    let mut seqs = Vec::new();
    for round in 0..6 {
        let store = if round % 2 == 0 { &serving } else { &demo };
        let outcomes = store
            .append_events(vec![
                EventBuilder::new("acme")
                    .message(&format!("round {round} first"))
                    .build(),
                EventBuilder::new("acme")
                    .message(&format!("round {round} second"))
                    .build(),
            ])
            .await
            .unwrap();
        for outcome in outcomes {
            match outcome {
                logbook_core::store::AppendOutcome::Stored(receipt) => seqs.push(receipt.seq),
                other => panic!("expected a stored event, got {other:?}"),
            }
        }
    }
    assert_eq!(seqs, (0..12).collect::<Vec<u64>>());
    assert_eq!(serving.next_seq(&account("acme")).await.unwrap(), 12);
    let every_event = serving
        .events_since(&account("acme"), 0, 100)
        .await
        .unwrap();
    assert_eq!(
        every_event.iter().map(|row| row.seq).collect::<Vec<_>>(),
        (0..12).collect::<Vec<u64>>()
    );
    demo.shutdown().await;
    serving.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_common_in_one_account_is_rare_in_another() {
    let (store, _directory) = filled_store().await;
    // "common" is in every message of every account, but "rare17" only in a few per account:
    // term frequencies, and so plans, are per account.
    let rare_plan = plan(&store, query(vec![clause(word("rare17"))]), None).await;
    assert!(rare_plan.contains("LIST SUBQUERY"), "{rare_plan}");
    let page = store
        .query_events(
            &account("small-2"),
            &EventQuery {
                query: query(vec![clause(word("rare17")), clause(word("common"))]),
                limit: 50,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.events.iter().map(|row| row.seq).collect::<Vec<_>>(),
        vec![17]
    );
}

/// Migration 0011 rebuilds `alert_destinations` (SQLite cannot change its CHECK on `kind`) while
/// `alert_rule_destinations` references it: a database made by the schema before it keeps its
/// destinations, their cursors and rules, and takes the new kinds afterwards.
#[tokio::test]
async fn destinations_and_their_rules_survive_the_migration_that_adds_relp_and_tls() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch("PRAGMA foreign_keys = ON;")
            .unwrap();
        for migration in [
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
        ] {
            connection.execute_batch(migration).unwrap();
        }
        connection
            .execute_batch(
                "PRAGMA user_version = 10;
                 INSERT INTO accounts (account_row, name, created_at) VALUES (1, 'acme', 0);
                 INSERT INTO alert_destinations (destination_id, account_row, name, kind, address, secret,
                     streams_whole_log, created_at, cursor_next_seq, cursor_windows)
                 VALUES ('dst_old', 1, 'siem', 'syslog', 'siem.example.com:514', '', 1, 5, 42, '{}');
                 INSERT INTO alert_rules (rule_id, account_row, name, query_text, created_at)
                 VALUES ('rul_old', 1, 'logins', 'action:user.login', 6);
                 INSERT INTO alert_rule_destinations (rule_id, destination_id) VALUES ('rul_old', 'dst_old');",
            )
            .unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(open(&path));
    let alerting = store.alerting();
    let destinations = alerting.list_destinations(&account("acme")).await.unwrap();
    assert_eq!(destinations.len(), 1);
    assert_eq!(
        destinations[0].kind,
        logbook_core::alerting::DestinationKind::syslog("siem.example.com:514").unwrap()
    );
    assert_eq!(
        alerting
            .delivery_cursor(&"dst_old".into())
            .await
            .unwrap()
            .unwrap()
            .next_seq,
        42
    );
    assert_eq!(
        alerting.list_rules(&account("acme")).await.unwrap()[0].destination_ids,
        vec![logbook_core::ids::DestinationId::from("dst_old")]
    );
    alerting
        .create_destination(logbook_core::alerting::NewDestination {
            destination_id: "dst_new".into(),
            account: account("acme"),
            name: "relp".into(),
            kind: logbook_core::alerting::DestinationKind::relp("siem.example.com:2514").unwrap(),
            secret: logbook_core::alerting::SigningSecret(String::new()),
            streams_whole_log: true,
            start_seq: 0,
            created_at: datetime!(2026-01-01 0:00 UTC),
        })
        .await
        .unwrap();
    // The rebuilt table is still the one rules refer to: deleting keeps them consistent.
    assert!(
        alerting
            .delete_destination(&account("acme"), &"dst_old".into())
            .await
            .unwrap()
    );
    assert!(
        alerting.list_rules(&account("acme")).await.unwrap()[0]
            .destination_ids
            .is_empty()
    );
    store.shutdown().await;
}

/// An actor's located event, as the conformance locator places it.
fn located_login(ip: &str, message: &str, outcome: logbook_core::event::Outcome) -> NewEvent {
    EventBuilder::new("acme")
        .actor("alice")
        .ip(ip)
        .outcome(outcome)
        .message(message)
        .build()
}

#[tokio::test]
async fn the_new_country_migration_keeps_every_event_and_makes_earlier_successful_countries_history()
 {
    use logbook_core::event::Outcome;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let locating = || SqliteOptions {
        ip_locator: logbook_testkit::location_cases::test_ip_locator(),
        ..SqliteOptions::default()
    };
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        store
            .append_events(vec![
                located_login("203.0.113.9", "in India", Outcome::Success),
                located_login("198.51.100.7", "failed in Singapore", Outcome::Failure),
            ])
            .await
            .unwrap();
        store.shutdown().await;
    }
    // Back to the schema before migration 0018: what a database of the previous version holds,
    // its events located by that version's writer.
    locate_as_before_migration_0020(&path, false);
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(&format!(
                "{UNDO_MIGRATION_0019}
                 DROP TABLE actor_countries; DROP TABLE location_backfill_progress;
                 ALTER TABLE events DROP COLUMN new_country; PRAGMA user_version = 17;"
            ))
            .unwrap();
    }
    let store = SqliteStore::open(&path, locating()).unwrap();
    let before = store.events_since(&account("acme"), 0, 10).await.unwrap();
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|row| !row.new_country));
    store
        .append_events(vec![
            located_login("198.51.100.8", "Singapore at last", Outcome::Success),
            located_login("203.0.113.200", "India again", Outcome::Success),
        ])
        .await
        .unwrap();
    let after = store.events_since(&account("acme"), 0, 10).await.unwrap();
    // The migration rewrote no event, and only the successful India was history: Singapore,
    // where alice only failed, is new, and India is not (without the history it would be the
    // other way round, Singapore being her first located event).
    assert_eq!(after[..2], before[..]);
    assert!(after[2].new_country, "{}", after[2].to_json());
    assert!(!after[3].new_country, "{}", after[3].to_json());
    store.shutdown().await;
}

#[tokio::test]
async fn pruning_takes_the_target_tokens_of_the_pruned_events_and_no_others_out_of_the_index() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let store: Arc<dyn Store> = Arc::new(open(&path));
    logbook_testkit::cases::prune_forty_events_with_two_targets_each_below_25(store.as_ref()).await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    assert_target_index_is_exact(&connection);
    assert_action_index_is_exact(&connection);
    let target_rows: i64 = connection
        .query_row("SELECT count(*) FROM event_targets", [], |row| row.get(0))
        .unwrap();
    assert_eq!(target_rows, 0, "targets are tokens since migration 0025");
    let seqs = |text: &'static str| first_page_seqs(store.as_ref(), "acme", text, 100);
    assert_eq!(seqs("target:user-3").await, Vec::<u64>::new());
    assert_eq!(seqs("target:user-33").await, vec![33]);
    assert_eq!(
        seqs("target:srv-0").await,
        (25..40)
            .rev()
            .filter(|seq| seq % 3 == 0)
            .collect::<Vec<u64>>()
    );
    assert_eq!(seqs("target:user-2*").await, vec![29, 28, 27, 26, 25]);
    store.shutdown().await;
}

/// `count` events for `account_name` in one append (one request, so one group or part of one).
async fn append_numbered(store: &SqliteStore, account_name: &str, first: u32, count: u32) {
    let start = datetime!(2024-05-01 00:00 UTC);
    let events: Vec<NewEvent> = (first..first + count)
        .map(|number| {
            EventBuilder::new(account_name)
                .created_at(start + Duration::seconds(i64::from(number)))
                .actor(&format!("user-{}@example.com", number % 50))
                .ip(&format!("10.0.{}.{}", number % 7, number % 200))
                .message(&format!("event {number} of a steady stream"))
                .build()
        })
        .collect();
    store.append_events(events).await.unwrap();
}

fn file_bytes(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .map(|metadata| metadata.len())
        .unwrap_or(0)
}

fn wal_path(database_path: &std::path::Path) -> std::path::PathBuf {
    let mut wal = database_path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_the_admin_connection_leaves_the_writers_wal_to_its_checkpoints() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let store = open(&path);
    // Well past SQLite's automatic checkpoint (1000 WAL pages), short of the writer's own
    // checkpoints (a wake of the background one every 4,096 frames, a restart past 32,768).
    for batch in 0..6 {
        append_numbered(&store, "acme", batch * 1_000, 1_000).await;
    }
    let wal_bytes = file_bytes(&wal_path(&path));
    assert!(
        wal_bytes > 1_000 * 4_096,
        "the events must fill more than 1000 WAL pages: {wal_bytes} bytes"
    );
    assert!(
        wal_bytes < 4_096 * (4_096 + 24),
        "the events must stay under 4,096 WAL frames, or the writer's own checkpointer copies \
         them while this test watches the database file: {wal_bytes} bytes"
    );
    let database_bytes_before = file_bytes(&path);
    // Accounts are written on the admin connection, not the writer's.
    store
        .create_account(&account("globex"), datetime!(2024-06-01 00:00 UTC))
        .await
        .unwrap();
    assert_eq!(
        file_bytes(&path),
        database_bytes_before,
        "the admin connection's commit copied the WAL into the database: an automatic checkpoint \
         there holds SQLite's one checkpoint lock, and no checkpoint of the writer's can complete"
    );
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_steady_ingest_while_pages_are_read() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let restart_frames = 500;
    let store = Arc::new(
        SqliteStore::open(
            &path,
            SqliteOptions {
                wal_restart_frames: restart_frames,
                ..SqliteOptions::default()
            },
        )
        .unwrap(),
    );
    let stop_reading = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = Arc::clone(&store);
        let stop_reading = Arc::clone(&stop_reading);
        tokio::spawn(async move {
            let mut pages_read = 0u32;
            while !stop_reading.load(std::sync::atomic::Ordering::Relaxed) {
                store
                    .query_events(
                        &account("acme"),
                        &EventQuery {
                            query: Query::default(),
                            limit: 50,
                            after: None,
                        },
                    )
                    .await
                    .unwrap();
                pages_read += 1;
            }
            pages_read
        })
    };
    let batches = 80;
    let mut largest_wal_bytes = 0;
    for batch in 0..batches {
        append_numbered(&store, "acme", batch * 100, 100).await;
        largest_wal_bytes = largest_wal_bytes.max(file_bytes(&wal_path(&path)));
    }
    stop_reading.store(true, std::sync::atomic::Ordering::Relaxed);
    let pages_read = reader.await.unwrap();
    assert!(pages_read > 0, "no page was read beside the ingest");
    // The WAL passes the restart size by at most one group (100 events) before the writer starts
    // it over; without restarts it holds all 8,000 events, several times this bound.
    let bound = 3 * restart_frames as u64 * 4_096;
    assert!(
        largest_wal_bytes < bound,
        "the WAL reached {largest_wal_bytes} bytes, over {bound}: it did not start over"
    );
    let newest = store
        .query_events(
            &account("acme"),
            &EventQuery {
                query: Query::default(),
                limit: 1,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(newest.events[0].seq, u64::from(batches * 100 - 1));
}

/// Migration 0024 counts the events stored before it per day, so the timeline of a database
/// upgraded with events in it reads the day counts as exactly as one written since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_counts_migration_counts_the_events_stored_before_it() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let day = datetime!(2024-06-01 00:00 UTC);
    let events: Vec<NewEvent> = [0, 1, 1, 25, 49]
        .into_iter()
        .map(|hours| {
            EventBuilder::new("acme")
                .created_at(day + Duration::hours(hours) + Duration::minutes(7))
                .build()
        })
        .chain(std::iter::once(
            EventBuilder::new("globex").created_at(day).build(),
        ))
        .collect();
    {
        let store = open(&path);
        store.append_events(events).await.unwrap();
        store.shutdown().await;
    }
    let connection = rusqlite::Connection::open(&path).unwrap();
    undo_migration_0026(&connection);
    connection
        .execute_batch(&format!("{UNDO_MIGRATION_0025}{UNDO_MIGRATION_0024}"))
        .unwrap();
    drop(connection);
    let store = open(&path);
    let bucket = |days: i64, events: u64| logbook_core::timeline::BucketCount {
        start_micros: logbook_core::event::unix_micros(day + Duration::days(days)),
        events,
    };
    let days_of = |name: &'static str| {
        let store = &store;
        async move {
            store
                .count_events_over_time(&account(name), &Query::default(), TimeBucket::Day)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        days_of("acme").await,
        vec![bucket(0, 3), bucket(1, 1), bucket(2, 1)]
    );
    assert_eq!(days_of("globex").await, vec![bucket(0, 1)]);
    // And the writer adds to the migrated counts.
    store
        .append_events(vec![
            EventBuilder::new("acme")
                .created_at(day + Duration::minutes(59))
                .build(),
        ])
        .await
        .unwrap();
    assert_eq!(
        days_of("acme").await,
        vec![bucket(0, 4), bucket(1, 1), bucket(2, 1)]
    );
}

/// Every page of `text` for `account_name`, `limit` at a time, followed by its cursors: the seqs
/// in the order the store gave them.
async fn every_page_of(
    store: &SqliteStore,
    account_name: &str,
    text: &str,
    limit: u32,
) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .query_events(
                &account(account_name),
                &EventQuery {
                    query: logbook_core::query::parse(text).unwrap(),
                    limit,
                    after,
                },
            )
            .await
            .unwrap();
        seqs.extend(page.events.iter().map(|row| row.seq));
        match page.next {
            Some(next) => after = Some(next),
            None => return seqs,
        }
    }
}

/// A rare word's page is read from a window of the account's newest arrivals (migration 0023)
/// and is exactly the page of the whole account however the events arrived: in time order, with
/// late and early arrivals among them, or after one event dated years ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_a_rare_word_are_exact_whatever_order_events_arrive_in() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory.path().join("logbook.db"));
    let start = datetime!(2024-05-01 00:00 UTC);
    // Each account gets 6,000 events, seq i created i * 10 s after the start except where the
    // account's arrival order says otherwise.
    // When each event (by its number) was created, in seconds after the start.
    type SecondsOfEvent = fn(i64) -> i64;
    let arrivals: [(&str, SecondsOfEvent); 3] = [
        ("in-order", |number| number * 10),
        ("late-and-early", |number| match number {
            // Two matching events that arrived long before their time's neighbours.
            400 | 1_200 => (number + 4_500) * 10 + 5,
            _ if number % 97 == 0 => (number - 3_000) * 10,
            _ if number % 389 == 0 => number * 10 + 3_600,
            _ => number * 10,
        }),
        // A matching event dated ten years ahead, early in the log.
        ("one-from-the-future", |number| match number {
            120 => 10 * 365 * 86_400,
            _ => number * 10,
        }),
    ];
    let mut created_by_account = Vec::new();
    for (account_name, seconds_of) in arrivals {
        let created: Vec<i64> = (0..6_000).map(seconds_of).collect();
        let events: Vec<NewEvent> = created
            .iter()
            .enumerate()
            .map(|(number, &seconds)| {
                let mut message = format!("event {number}");
                if number % 40 == 0 {
                    message.push_str(" quarantined");
                }
                if number % 700 == 0 {
                    message.push_str(" rarer");
                }
                EventBuilder::new(account_name)
                    .created_at(start + Duration::seconds(seconds))
                    .message(&message)
                    .build()
            })
            .collect();
        for chunk in events.chunks(500) {
            store.append_events(chunk.to_vec()).await.unwrap();
        }
        created_by_account.push((account_name, created));
    }
    for (account_name, created) in &created_by_account {
        for (text, matches) in [
            (
                "quarantined",
                (|number| number % 40 == 0) as fn(usize) -> bool,
            ),
            ("rarer", |number| number % 700 == 0),
            ("quarantined -rarer", |number| {
                number % 40 == 0 && number % 700 != 0
            }),
        ] {
            // Newest first, ties by seq (here the event's number).
            let mut expected: Vec<u64> = (0..created.len())
                .filter(|&number| matches(number))
                .map(|number| number as u64)
                .collect();
            expected.sort_by_key(|&seq| std::cmp::Reverse((created[seq as usize], seq)));
            for limit in [5, 50] {
                assert_eq!(
                    every_page_of(&store, account_name, text, limit).await,
                    expected,
                    "{account_name}: {text:?}, {limit} at a time"
                );
            }
        }
    }
}

/// Migration 0023 computes, for the events stored before it, the very bounds the writer keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arrival_bounds_migration_computes_what_the_writer_keeps() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let start = datetime!(2024-05-01 00:00 UTC);
    {
        let store = open(&path);
        for account_name in ["acme", "globex"] {
            let events: Vec<NewEvent> = (0..3_000_i64)
                .map(|number| {
                    // Mostly in time order, one in 50 a day late, one far ahead.
                    let seconds = match number {
                        1_500 => 86_400 * 400,
                        _ if number % 50 == 0 => number * 10 - 86_400,
                        _ => number * 10,
                    };
                    EventBuilder::new(account_name)
                        .created_at(start + Duration::seconds(seconds))
                        .build()
                })
                .collect();
            for chunk in events.chunks(700) {
                store.append_events(chunk.to_vec()).await.unwrap();
            }
        }
        store.shutdown().await;
    }
    let bounds = |path: &std::path::Path| -> Vec<(i64, i64, i64)> {
        let connection = rusqlite::Connection::open(path).unwrap();
        let mut statement = connection
            .prepare("SELECT account_row, arrival_block, newest_created_at FROM arrival_bounds ORDER BY 1, 2")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let kept_by_the_writer = bounds(&path);
    assert_eq!(kept_by_the_writer.len(), 6, "three blocks of each account");
    let connection = rusqlite::Connection::open(&path).unwrap();
    undo_migration_0026(&connection);
    connection
        .execute_batch(&format!(
            "{UNDO_MIGRATION_0025}{UNDO_MIGRATION_0024}{UNDO_MIGRATION_0023}"
        ))
        .unwrap();
    drop(connection);
    open(&path).shutdown().await;
    assert_eq!(bounds(&path), kept_by_the_writer);
}

/// Migration 0027 builds the unique index of idempotency keys again, keyed by the key first: a
/// database upgraded across it still answers a retry with the original event, refuses the key
/// with other content, stores the same key in another account, and finds a key by one seek of the
/// new index (the key first, then the account), never by a scan of the account's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_stored_before_the_key_first_index_still_answer_their_retries() {
    use logbook_core::store::AppendOutcome;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let keyed = |account_name: &str, key: &str, message: &str| {
        EventBuilder::new(account_name)
            .key(key)
            .message(message)
            .build()
    };
    let originals = {
        let store = open(&path);
        let outcomes = store
            .append_events(vec![
                keyed("acme", "order-1", "paid"),
                keyed("acme", "order-2", "shipped"),
            ])
            .await
            .unwrap();
        store.shutdown().await;
        outcomes
    };
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        undo_migration_0028(&connection);
        connection.execute_batch(UNDO_MIGRATION_0027).unwrap();
    }
    let store = open(&path);
    let outcomes = store
        .append_events(vec![
            keyed("acme", "order-1", "paid"),
            keyed("acme", "order-2", "refunded"),
            keyed("globex", "order-1", "paid"),
            keyed("acme", "order-3", "new"),
        ])
        .await
        .unwrap();
    let AppendOutcome::Stored(first) = &originals[0] else {
        panic!("{originals:?}")
    };
    let AppendOutcome::Stored(second) = &originals[1] else {
        panic!("{originals:?}")
    };
    assert_eq!(outcomes[0], AppendOutcome::Duplicate(first.clone()));
    assert_eq!(
        outcomes[1],
        AppendOutcome::KeyReusedWithDifferentContent {
            original: second.clone()
        }
    );
    assert!(
        matches!(&outcomes[2], AppendOutcome::Stored(receipt) if receipt.seq == 0),
        "the same key in another account is another event: {:?}",
        outcomes[2]
    );
    assert!(
        matches!(&outcomes[3], AppendOutcome::Stored(receipt) if receipt.seq == 2),
        "{:?}",
        outcomes[3]
    );
    store.shutdown().await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = connection
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' \
             AND sql LIKE '%idempotency_key%'",
        )
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, vec!["events_by_key_account".to_owned()]);
    // The writer's lookup of a stored key's original (`writer::stored_original`).
    let lookup_plan: Vec<String> = connection
        .prepare(
            "EXPLAIN QUERY PLAN SELECT event_row & 1099511627775, body, fingerprint, leaf_hash \
             FROM events WHERE account_row = ?1 AND idempotency_key = ?2",
        )
        .unwrap()
        .query_map(["1", "order-1"], |row| row.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        lookup_plan,
        vec![
            "SEARCH events USING INDEX events_by_key_account (idempotency_key=? AND account_row=?)"
                .to_owned()
        ]
    );
}

/// The background checkpointer is woken by the WAL's growth, not by a count of events: commits of
/// one event each (each writing its own pages of every index) reach thousands of WAL frames long
/// before 10,000 events, and the checkpointer copies them into the database while the WAL is still
/// far below its restart size, so a restart later has little left to copy with every commit
/// waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_event_commits_are_copied_into_the_database_long_before_the_wal_restarts() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let store = SqliteStore::open(
        &path,
        SqliteOptions {
            wal_restart_frames: 1_000_000,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    append_numbered(&store, "acme-0", 0, 1).await;
    let database_bytes_before = file_bytes(&path);
    // Well past one wake's worth of frames (4,096 of 4 KiB pages and their 24-byte headers).
    let frame_bytes = 4_096 + 24;
    let enough_wal_bytes = 5_000 * frame_bytes;
    let mut events = 1;
    while file_bytes(&wal_path(&path)) < enough_wal_bytes {
        append_numbered(&store, &format!("acme-{}", events % 40), events, 1).await;
        events += 1;
        assert!(events < 5_000, "5,000 commits wrote under 5,000 WAL frames");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file_bytes(&path) <= database_bytes_before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        file_bytes(&path) > database_bytes_before,
        "after {events} single-event commits ({} WAL bytes) nothing was copied into the database",
        file_bytes(&wal_path(&path))
    );
    store.shutdown().await;
}
