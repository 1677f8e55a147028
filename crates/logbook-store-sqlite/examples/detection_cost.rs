//! What unfamiliar-IP detection (issue 6) costs at ingest on SQLite: the same realistic events
//! appended through the store (group commit, `synchronous=FULL`, tree on) with detection
//! (`detect_unfamiliar_ips: true`, the product) and without it (`false`, benchmark only), in
//! alternating rounds on fresh databases so disk noise hits both alike. Prints events/s of each
//! and their ratio. Each actor mostly comes from its usual address; one event in fifty comes from
//! an address it has never used, so detection both reads and writes history along the way.
//!
//! `cargo run --release -p logbook-store-sqlite --example detection_cost [EVENTS] [ROUNDS]`

use std::sync::Arc;
use std::time::Instant;

use logbook_core::event::{Actor, ActorType, NewEvent, Outcome, Target};
use logbook_core::{AccountId, Store};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use time::macros::datetime;

const ACCOUNTS: usize = 100;
const PRODUCERS: usize = 16;
const BATCH: usize = 100;

fn realistic_event(number: usize) -> NewEvent {
    let account = AccountId::parse(&format!("account-{}", (number * 7919) % ACCOUNTS)).unwrap();
    let at = datetime!(2024-06-01 00:00 UTC) + time::Duration::milliseconds(number as i64 * 37);
    NewEvent {
        id: format!("01900000-0000-7000-8000-{number:012x}").into(),
        account,
        received_at: at,
        created_at: at,
        created_at_was_sent: false,
        action: ["user.login", "server.reboot", "firewall.rule.update"][number % 3].into(),
        message: format!(
            "Rebooted server web-{} after a kernel update requested by ops",
            number % 300
        ),
        actor: Some(Actor {
            id: format!("user{}@example.com", number % 40),
            name: Some(format!("User {}", number % 40)),
            actor_type: Some(ActorType::User),
        }),
        ip: Some(if number.is_multiple_of(50) {
            format!("203.0.{}.{}", (number / 50) % 250, number % 200)
                .parse()
                .unwrap()
        } else {
            format!("198.51.100.{}", number % 40).parse().unwrap()
        }),
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
        key: Some(format!("key-{number}")),
        salt: logbook_core::personal_data::EventSalt::random(),
    }
}

/// Events per second of one load of `events` into a fresh store.
async fn load(events: &[NewEvent], detect_unfamiliar_ips: bool) -> f64 {
    let directory = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(
            &directory.path().join("logbook.db"),
            SqliteOptions {
                detect_unfamiliar_ips,
                ..SqliteOptions::default()
            },
        )
        .unwrap(),
    );
    let batches: Vec<Vec<NewEvent>> = events.chunks(BATCH).map(<[NewEvent]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let started = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let store = store.clone();
            let queue = queue.clone();
            tokio::spawn(async move {
                loop {
                    let Some(batch) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    store.append_events(batch).await.unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    store.shutdown().await;
    events.len() as f64 / seconds
}

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let count: usize = arguments
        .next()
        .map_or(200_000, |text| text.parse().unwrap());
    let rounds: usize = arguments.next().map_or(3, |text| text.parse().unwrap());
    let events: Vec<NewEvent> = (0..count).map(realistic_event).collect();
    let (mut with_detection, mut without_detection) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        without_detection.push(load(&events, false).await);
        with_detection.push(load(&events, true).await);
    }
    let median = |figures: &mut Vec<f64>| {
        figures.sort_by(f64::total_cmp);
        figures[figures.len() / 2]
    };
    let (with_detection, without_detection) =
        (median(&mut with_detection), median(&mut without_detection));
    println!(
        "SQLite store ingest of {count} events ({PRODUCERS} producers, batches of {BATCH}), median of {rounds}: \
         with unfamiliar-IP detection {with_detection:.0} events/s, without {without_detection:.0} events/s, ratio {:.3}",
        with_detection / without_detection
    );
}
