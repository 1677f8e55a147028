//! Export throughput of the PostgreSQL store itself (no HTTP, no serialisation): loads EVENTS
//! events into one account of a fresh database, then times `export_events` of the whole account
//! and of a selective query three times each and prints the median events/s. The benchmark
//! harness's export line adds the server and NDJSON on top of this.
//!
//! `cargo run --release -p logbook-store-postgres --example export_rate [EVENTS]` with
//! `LOGBOOK_TEST_POSTGRES_URL` pointing at a server (default: local, user postgres).

use std::time::Instant;

use futures::StreamExt;
use logbook_core::event::{Actor, ActorType, NewEvent, Outcome};
use logbook_core::{AccountId, Store};
use logbook_store_postgres::scratch_database::ScratchDatabase;
use logbook_store_postgres::{PostgresOptions, PostgresStore};
use time::macros::datetime;

fn event_of_one_account(number: usize) -> NewEvent {
    let at = datetime!(2024-06-01 00:00 UTC) + time::Duration::milliseconds(number as i64 * 37);
    NewEvent {
        id: format!("01900000-0000-7000-8000-{number:012x}").into(),
        account: AccountId::parse("exporter").unwrap(),
        received_at: at,
        created_at: at,
        created_at_was_sent: false,
        action: ["user.login", "server.reboot"][number % 2].into(),
        message: format!("Rebooted server web-{} after a kernel update", number % 300),
        actor: Some(Actor {
            id: format!("user{}@example.com", number % 40),
            name: None,
            actor_type: Some(ActorType::User),
        }),
        ip: Some(format!("198.51.100.{}", number % 250).parse().unwrap()),
        user_agent: None,
        outcome: Some(Outcome::Success),
        targets: Vec::new(),
        changes: Vec::new(),
        metadata: None,
        key: None,
        salt: logbook_core::personal_data::EventSalt::random(),
    }
}

async fn median_export_rate(store: &PostgresStore, text: &str) -> (usize, f64) {
    let account = AccountId::parse("exporter").unwrap();
    let query = logbook_core::query::parse(text).unwrap();
    let mut rates = Vec::new();
    let mut count = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let mut stream = store.export_events(&account, query.clone());
        count = 0;
        while let Some(event) = stream.next().await {
            event.unwrap();
            count += 1;
        }
        rates.push(count as f64 / started.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    (count, rates[1])
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .map(|text| text.parse().expect("EVENTS is a number"))
        .unwrap_or(200_000);
    let database = ScratchDatabase::create()
        .await
        .expect("PostgreSQL is reachable");
    let store = PostgresStore::connect(&database.url, PostgresOptions::default())
        .await
        .unwrap();
    for start in (0..total).step_by(1000) {
        let batch = (start..(start + 1000).min(total))
            .map(event_of_one_account)
            .collect();
        store.append_events(batch).await.unwrap();
    }
    store.analyze().await.unwrap();
    for (name, text) in [("everything", ""), ("one actor", "actor:user7@example.com")] {
        let (count, rate) = median_export_rate(&store, text).await;
        println!("export {name:<10} {count} events, median {rate:.0} events/s");
    }
    store.shutdown().await;
}
