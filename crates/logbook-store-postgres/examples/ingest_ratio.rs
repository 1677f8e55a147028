//! A quick ingest measurement of the PostgreSQL store against a raw COPY baseline, until the
//! benchmark harness (`logbook-bench`) has a PostgreSQL mode: both load the same realistic events
//! into a fresh database with the same schema and indexes. The store takes batches of 500 from 16
//! concurrent producers through its group-commit writer; the baseline COPYs 1000 events per
//! transaction from one connection, nothing else (no idempotency, no seq bookkeeping, and, as
//! issue 4 defines it, no full text: empty token lists and no index over them).
//!
//! `cargo run --release -p logbook-store-postgres --example ingest_ratio [EVENTS]` with
//! `LOGBOOK_TEST_POSTGRES_URL` pointing at a server (default: local, user postgres).

use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use logbook_core::event::{Actor, ActorType, NewEvent, Outcome, Target};
use logbook_core::{AccountId, Store};
use logbook_store_postgres::scratch_database::ScratchDatabase;
use logbook_store_postgres::{MessageTokens, PostgresOptions, PostgresStore};
use time::macros::datetime;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

const ACCOUNTS: usize = 100;

fn realistic_event(number: usize) -> NewEvent {
    let account = AccountId::parse(&format!("account-{}", (number * 7919) % ACCOUNTS)).unwrap();
    let at = datetime!(2024-06-01 00:00 UTC) + time::Duration::milliseconds(number as i64 * 37);
    NewEvent {
        id: format!("01900000-0000-7000-8000-{number:012x}").into(),
        account,
        received_at: at,
        created_at: at,
        created_at_was_sent: false,
        action: [
            "user.login",
            "server.reboot",
            "firewall.rule.update",
            "dns.record.create",
        ][number % 4]
            .into(),
        message: format!(
            "Rebooted server web-{} after a kernel update requested by ops",
            number % 300
        ),
        actor: Some(Actor {
            id: format!("user{}@example.com", number % 40),
            name: Some(format!("User {}", number % 40)),
            actor_type: Some(ActorType::User),
        }),
        ip: Some(format!("198.51.100.{}", number % 250).parse().unwrap()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0".into()),
        outcome: Some(if number.is_multiple_of(10) {
            Outcome::Failure
        } else {
            Outcome::Success
        }),
        targets: vec![Target {
            target_type: "server".into(),
            id: format!("srv-{}", number % 300),
            name: Some(format!("web-{}", number % 300)),
        }],
        changes: Vec::new(),
        metadata: None,
        key: Some(format!("evt-{number}")),
        salt: logbook_core::personal_data::EventSalt::random(),
    }
}

async fn store_figure(events: Vec<NewEvent>) -> f64 {
    let database = ScratchDatabase::create()
        .await
        .expect("PostgreSQL is reachable");
    let store = Arc::new(
        PostgresStore::connect(&database.url, PostgresOptions::default())
            .await
            .unwrap(),
    );
    let count = events.len();
    let batches: Vec<Vec<NewEvent>> = events.chunks(500).map(<[NewEvent]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let started = Instant::now();
    let mut producers = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let queue = queue.clone();
        producers.push(tokio::spawn(async move {
            loop {
                let Some(batch) = queue.lock().unwrap().pop() else {
                    return;
                };
                store.append_events(batch).await.unwrap();
            }
        }));
    }
    for producer in producers {
        producer.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    query_figures(&store).await;
    store.shutdown().await;
    count as f64 / seconds
}

/// p50 and p99 of a few page reads on one account, through the store (no HTTP).
async fn query_figures(store: &PostgresStore) {
    let account = AccountId::parse("account-0").unwrap();
    let shapes = [
        ("newest 50", ""),
        ("actor", "actor:user7@example.com"),
        ("ip", "ip:198.51.100.7"),
        ("rare word", "zanzibar"),
        ("common word", "rebooted"),
    ];
    for (name, text) in shapes {
        let query = logbook_core::query::parse(text).unwrap();
        let mut timings = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            store
                .query_events(
                    &account,
                    &logbook_core::store::EventQuery {
                        query: query.clone(),
                        limit: 50,
                        after: None,
                    },
                )
                .await
                .unwrap();
            timings.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        timings.sort_by(f64::total_cmp);
        println!(
            "query {name:<12} p50 {:.2} ms  p99 {:.2} ms",
            timings[timings.len() / 2],
            timings[timings.len() * 99 / 100]
        );
    }
}

async fn baseline_figure(events: &[NewEvent]) -> f64 {
    let database = ScratchDatabase::create()
        .await
        .expect("PostgreSQL is reachable");
    // The store creates the schema (same tables and indexes), then steps aside.
    let store = PostgresStore::connect(&database.url, PostgresOptions::default())
        .await
        .unwrap();
    for account in 0..ACCOUNTS {
        store
            .create_account(
                &AccountId::parse(&format!("account-{account}")).unwrap(),
                events[0].received_at,
            )
            .await
            .unwrap();
    }
    store.shutdown().await;
    let (mut client, connection) = tokio_postgres::connect(&database.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows: std::collections::HashMap<String, i64> = client
        .query("SELECT name, account_row FROM accounts", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let prepared: Vec<_> = events
        .iter()
        .map(|event| {
            let ip = match event.ip.unwrap() {
                std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                std::net::IpAddr::V6(v6) => v6.octets(),
            };
            (
                rows[event.account.as_str()],
                event.body_without_seq(),
                event.content_fingerprint(),
                // "Raw COPY without full-text" (issue 4): no tokens, and no index over them.
                MessageTokens::of_message(""),
                ip,
            )
        })
        .collect();
    client
        .batch_execute("DROP INDEX events_message_tokens")
        .await
        .unwrap();
    let mut next_seq = std::collections::HashMap::new();
    let started = Instant::now();
    for chunk in events
        .iter()
        .zip(&prepared)
        .collect::<Vec<_>>()
        .chunks(1000)
    {
        let transaction = client.transaction().await.unwrap();
        let sink = transaction
            .copy_in("COPY events (account_row, seq, created_at, id, action, actor_id, ip, outcome, idempotency_key, fingerprint, message_tokens, body) FROM STDIN (FORMAT binary)")
            .await
            .unwrap();
        let types = [
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::BYTEA,
            Type::INT2,
            Type::TEXT,
            Type::BYTEA,
            Type::TS_VECTOR,
            Type::TEXT,
        ];
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        let mut targets = Vec::new();
        for (event, (account_row, body, fingerprint, tokens, ip)) in chunk {
            let seq = next_seq.entry(*account_row).or_insert(0_i64);
            let outcome: i16 = if event.outcome == Some(Outcome::Failure) {
                1
            } else {
                0
            };
            writer
                .as_mut()
                .write(&[
                    account_row,
                    &*seq,
                    &event.created_at_micros(),
                    &event.id.as_str(),
                    &event.action,
                    &event.actor.as_ref().map(|actor| actor.id.as_str()),
                    &ip.as_slice(),
                    &outcome,
                    &event.key,
                    &fingerprint.as_slice(),
                    tokens,
                    body,
                ])
                .await
                .unwrap();
            targets.push((*account_row, event.targets[0].id.clone(), *seq));
            *seq += 1;
        }
        writer.as_mut().finish().await.unwrap();
        let sink = transaction
            .copy_in("COPY event_targets (account_row, target_id, seq) FROM STDIN (FORMAT binary)")
            .await
            .unwrap();
        let mut writer = pin!(BinaryCopyInWriter::new(
            sink,
            &[Type::INT8, Type::TEXT, Type::INT8]
        ));
        for (account_row, target_id, seq) in &targets {
            writer
                .as_mut()
                .write(&[account_row, target_id, seq])
                .await
                .unwrap();
        }
        writer.as_mut().finish().await.unwrap();
        transaction.commit().await.unwrap();
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(200_000);
    let events: Vec<NewEvent> = (0..count).map(realistic_event).collect();
    println!("events: {count}");
    let baseline = baseline_figure(&events).await;
    let store = store_figure(events).await;
    println!("raw COPY baseline, 1000 events per transaction: {baseline:.0} events/s");
    println!("store, batches of 500 from 16 producers:        {store:.0} events/s");
    println!("ratio: {:.2}x", store / baseline);
}
