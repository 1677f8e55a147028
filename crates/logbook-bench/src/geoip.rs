//! `--geoip`: what locating every event's address at ingest (issue 19) costs batched ingest. It
//! writes a city and an ASN database in the MaxMind DB format covering every address of the
//! workload's IP pools (one /24 or /48 record per address, with GeoLite2-shaped records), then
//! loads the same events over HTTP into fresh servers with lookups off and on, alternating
//! (off, on, then on, off, each cycle the reverse of the one before; `--geoip-rounds` cycles), and prints each round's throughput, the median of
//! each mode and their ratio (target: enrichment costs at most 5 %). To tell what the cost is made of, it also times the
//! lookups alone on one thread, and runs a third mode, "stored only", whose locator answers from
//! a table of the same answers made before the clock: the locations and the new-country
//! detection are stored as with lookups on, but no database is read; and a fourth, "coordinates
//! only", whose answers keep only the coordinates: the location's object is stored (on SQLite
//! once per distinct location, the event only its row since migration 0020, and its location's
//! full-text token since migration 0021), but none of the place columns (`country_code`, `asn`,
//! `city`) nor the new-country detection has anything to do, which tells the cost of those from
//! the cost of storing the object.
//!
//! No Rust crate in the workspace writes MaxMind DB files, so the databases are written once,
//! before any clock starts, by the same `mmdb-writer` script the server's tests use
//! (`crates/logbook-server/tests/ip_database_writer`, installed by `.ci/run`).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use logbook_core::api_key::{KeyOwner, Scopes};
use logbook_core::location::{IpLocator, Location, LocationColumns, NoIpLocator, SharedIpLocator};
use logbook_core::store::EventQuery;
use logbook_core::{Clock, Store, SystemClock};
use logbook_server::AppState;
use logbook_server::ip_databases::{IpDatabaseSettings, IpDatabases};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};

use crate::http_load::{self, RequestBodies};
use crate::server::{create_key, throughput_run_settings};
use crate::workload::{Workload, WorkloadShape};

const BATCH_SIZE: usize = 500;

const CITIES: &[(&str, &str, &str, f64, f64, u32)] = &[
    ("Mumbai", "IN", "India", 19.0748, 72.8856, 20),
    ("Frankfurt am Main", "DE", "Germany", 50.1109, 8.6821, 10),
    ("Singapore", "SG", "Singapore", 1.2897, 103.8501, 5),
    ("São Paulo", "BR", "Brazil", -23.5475, -46.6361, 50),
    ("Ashburn", "US", "United States", 39.0437, -77.4875, 100),
    ("Tokyo", "JP", "Japan", 35.6895, 139.6917, 20),
];

/// The answers of the real databases for every address of the workload, looked up before the
/// clock: storing locations without reading a database. Like the IP databases, it hands out one
/// shared answer per address (`located_columns`), so the writer finds its location's row the
/// same way as with lookups on.
#[derive(Debug)]
struct AnswersMadeBefore(HashMap<IpAddr, (Location, Option<Arc<LocationColumns>>)>);

impl AnswersMadeBefore {
    fn new(answers: HashMap<IpAddr, Location>) -> Self {
        Self(
            answers
                .into_iter()
                .map(|(ip, location)| {
                    let columns = LocationColumns::of_location(&location).map(Arc::new);
                    (ip, (location, columns))
                })
                .collect(),
        )
    }
}

impl IpLocator for AnswersMadeBefore {
    fn locate(&self, ip: IpAddr) -> Option<Location> {
        self.0.get(&ip).map(|(location, _)| location.clone())
    }

    fn located_columns(&self, ip: IpAddr) -> Option<Arc<LocationColumns>> {
        self.0.get(&ip).and_then(|(_, columns)| columns.clone())
    }
}

fn writer_directory() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../logbook-server/tests/ip_database_writer"
    ))
}

/// The network of one address a record covers: its /24 or /48, as real databases hold ranges.
fn covering_network(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", segments[0], segments[1], segments[2])
        }
    }
}

/// A GeoLite2-City-shaped record: names in several languages, as the real files carry.
fn city_record(index: usize) -> Value {
    let (city, code, country, latitude, longitude, radius) = CITIES[index % CITIES.len()];
    let names = |name: &str| json!({"en": name, "de": name, "fr": name, "ja": name, "pt-BR": name, "ru": name, "zh-CN": name});
    json!({
        "city": {"geoname_id": 1_000_000 + index, "names": names(city)},
        "continent": {"code": "AS", "geoname_id": 6255147, "names": names("Asia")},
        "country": {"geoname_id": 1269750, "iso_code": code, "names": names(country)},
        "registered_country": {"geoname_id": 1269750, "iso_code": code, "names": names(country)},
        "location": {"accuracy_radius": radius, "latitude": latitude, "longitude": longitude,
                     "time_zone": "Asia/Kolkata"},
        "postal": {"code": "400001"},
        "subdivisions": [{"geoname_id": 1264418, "iso_code": "MH", "names": names("Region")}],
    })
}

fn asn_record(index: usize) -> Value {
    json!({
        "autonomous_system_number": 64_512 + (index % 1000) as u32,
        "autonomous_system_organization": format!("Example Network {}", index % 1000),
    })
}

fn write_database(
    path: &Path,
    database_type: &str,
    networks: &[String],
    record: fn(usize) -> Value,
) -> anyhow::Result<()> {
    let directory = writer_directory();
    let python = directory.join("venv/bin/python");
    if !python.exists() {
        bail!(
            "--geoip writes its databases with {}; install it first (see .ci/run: python3 -m venv, then pip install -r requirements.txt)",
            python.display()
        );
    }
    let spec = json!({
        "path": path,
        "database_type": database_type,
        "records": networks
            .iter()
            .enumerate()
            .map(|(index, network)| json!({"network": network, "data": record(index)}))
            .collect::<Vec<_>>(),
    });
    let mut child = std::process::Command::new(&python)
        .arg(directory.join("write_database.py"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("starting the MaxMind DB writer")?;
    child
        .stdin
        .take()
        .context("the writer's input")?
        .write_all(spec.to_string().as_bytes())?;
    if !child.wait()?.success() {
        bail!("the MaxMind DB writer failed on {}", path.display());
    }
    Ok(())
}

/// One round: a fresh store (locating through `locator`), every account and a platform ingest
/// key, a server on a loopback port, the batched bodies sent, and the server stopped. Returns
/// events per second and whether the largest account's first event got a location.
async fn ingest_round(
    workload: &Workload,
    bodies: Arc<RequestBodies>,
    locator: SharedIpLocator,
    connections: usize,
) -> anyhow::Result<RoundFigures> {
    let clock = Arc::new(SystemClock);
    let data_directory = tempfile::tempdir().context("a data directory")?;
    let store = SqliteStore::open(
        &data_directory.path().join("logbook.db"),
        SqliteOptions {
            ip_locator: locator,
            ..SqliteOptions::default()
        },
    )
    .context("opening the store")?;
    let store: Arc<dyn Store> = Arc::new(store);
    for account in workload.accounts() {
        store.create_account(account, clock.now()).await?;
    }
    let ingest_key = create_key(
        &*store,
        KeyOwner::Platform,
        Scopes {
            ingest: true,
            read: false,
            admin: false,
        },
        &*clock,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(store.clone(), clock, throughput_run_settings());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(logbook_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let client = http_load::http_client()?;
    let before = http_load::CommitCounters::scrape(&client, &base_url).await?;
    let figures = http_load::ingest(&client, &base_url, &ingest_key, bodies, connections).await?;
    let after = http_load::CommitCounters::scrape(&client, &base_url).await?;
    // Where the writer's time went in this round, to tell which part of storing a place costs.
    let writer_micros_per_event = crate::print_writer_phases(&after, &before);
    let (largest, _) = workload.largest_account();
    let first_location = store
        .events_since(&largest, 0, 1)
        .await?
        .into_iter()
        .next()
        .and_then(|row| row.location);
    let located = first_location.is_some();
    let first_place = first_location
        .as_deref()
        .map(logbook_core::location::LocationColumns::of_stored_json)
        .transpose()
        .context("reading a stored location")?
        .flatten();
    if let Some(place) = first_place {
        time_place_queries(&*store, &largest, &place).await?;
    }
    let _ = stop.send(());
    serving.await.context("the server task panicked")??;
    store.shutdown().await;
    Ok(RoundFigures {
        events_per_second: figures.events_per_second(),
        writer_micros_per_event,
        located,
    })
}

/// What one round measured.
struct RoundFigures {
    events_per_second: f64,
    /// The writer's time per event, all phases and the commit (`print_writer_phases`).
    writer_micros_per_event: Option<f64>,
    /// Whether the largest account's first event has a location.
    located: bool,
}

/// Times a page of 50 of `country:`, `city:` and `asn:` on the largest account through the store,
/// for the place of its first event: a country or city holds about a sixth of the account's
/// events (the walk newest first), a network a few dozen (looked up in the full-text indexes
/// first).
async fn time_place_queries(
    store: &dyn Store,
    account: &logbook_core::AccountId,
    place: &logbook_core::location::LocationColumns,
) -> anyhow::Result<()> {
    const RUNS: usize = 30;
    let quoted = |text: &str| format!("\"{}\"", text.replace('"', "\\\""));
    let mut query_texts = Vec::new();
    if let Some(code) = &place.country_code {
        query_texts.push(format!("country:{code}"));
    }
    if let Some(city) = &place.city {
        query_texts.push(format!("city:{}", quoted(city)));
    }
    if let Some(asn) = place.asn {
        query_texts.push(format!("asn:{asn}"));
    }
    if query_texts.is_empty() {
        return Ok(());
    }
    let mut figures = Vec::new();
    for query_text in query_texts {
        let query = EventQuery {
            query: logbook_core::query::parse(&query_text).context("parsing a place query")?,
            limit: 50,
            after: None,
        };
        let matched = store.query_events(account, &query).await?.events.len();
        let mut micros = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            store.query_events(account, &query).await?;
            micros.push(started.elapsed().as_micros() as u64);
        }
        micros.sort_unstable();
        figures.push(format!(
            "{query_text} p50 {} µs, p99 {} µs ({matched} events)",
            micros[RUNS / 2],
            micros[RUNS - 1]
        ));
    }
    println!("  place queries on {account}: {}", figures.join("; "));
    Ok(())
}

pub async fn run(
    event_count: usize,
    account_count: usize,
    seed: u64,
    connections: usize,
    rounds_per_mode: usize,
    off_and_on_only: bool,
) -> anyhow::Result<()> {
    let machine = crate::report::describe_machine();
    println!("logbook-bench --geoip on {machine}");
    let workload = Workload::generate(
        WorkloadShape {
            event_count,
            account_count,
            seed,
            zipf_exponent: 1.1,
        },
        SystemClock.now(),
    );
    let mut bodies: RequestBodies = Vec::new();
    let mut addresses = BTreeSet::new();
    let mut start = 0;
    while start < event_count {
        let end = (start + BATCH_SIZE).min(event_count);
        let mut body = Vec::with_capacity((end - start) * 480 + 16);
        body.extend_from_slice(b"{\"events\":[");
        for index in start..end {
            if index > start {
                body.push(b',');
            }
            let event = workload.event(index);
            addresses.insert(covering_network(event.ip));
            event.write_json(&mut body);
        }
        body.extend_from_slice(b"]}");
        bodies.push((Bytes::from(body), end - start));
        start = end;
    }
    let bodies = Arc::new(bodies);
    let networks: Vec<String> = addresses.into_iter().collect();

    let databases_directory = tempfile::tempdir().context("a directory for the databases")?;
    let writing = Instant::now();
    let city = databases_directory.path().join("GeoLite2-City.mmdb");
    let asn = databases_directory.path().join("GeoLite2-ASN.mmdb");
    write_database(&city, "GeoLite2-City", &networks, city_record)?;
    write_database(&asn, "GeoLite2-ASN", &networks, asn_record)?;
    println!(
        "wrote city ({:.1} MB) and ASN ({:.1} MB) databases of {} networks each in {:.1}s (before any clock)",
        std::fs::metadata(&city)?.len() as f64 / 1e6,
        std::fs::metadata(&asn)?.len() as f64 / 1e6,
        networks.len(),
        writing.elapsed().as_secs_f64()
    );
    let databases: SharedIpLocator = Arc::new(
        IpDatabases::open(&IpDatabaseSettings {
            city_database: Some(city),
            asn_database: Some(asn),
            snapshot_directory: databases_directory.path().join("snapshots"),
            reload_interval: std::time::Duration::from_secs(3600),
        })?
        .context("two databases")?,
    );
    println!(
        "plan: {event_count} events over {account_count} accounts (seed {seed}) in batches of {BATCH_SIZE} over {connections} connections, into a fresh server per round, the modes alternating {rounds_per_mode} times: lookups {}",
        if off_and_on_only {
            "off, on"
        } else {
            "off, on, stored only, coordinates only"
        }
    );

    // The lookups alone, one thread, every event's address through both databases.
    let timing = Instant::now();
    let mut answers = HashMap::new();
    let mut located_count = 0usize;
    for index in 0..event_count {
        let ip = workload.event(index).ip;
        if let Some(location) = databases.locate(ip) {
            located_count += 1;
            answers.insert(ip, location);
        }
    }
    let lookup_seconds = timing.elapsed().as_secs_f64();
    println!(
        "lookups alone: {event_count} addresses ({located_count} located) in {lookup_seconds:.2}s on one thread = {:.2} µs each (event generation included)",
        lookup_seconds * 1e6 / event_count as f64
    );
    let coordinates_only: HashMap<IpAddr, Location> = answers
        .iter()
        .map(|(ip, location)| {
            (
                *ip,
                Location {
                    latitude: location.latitude,
                    longitude: location.longitude,
                    accuracy_radius_km: location.accuracy_radius_km,
                    ..Location::default()
                },
            )
        })
        .collect();
    let stored_only: SharedIpLocator = Arc::new(AnswersMadeBefore::new(answers));
    let coordinates_only: SharedIpLocator = Arc::new(AnswersMadeBefore::new(coordinates_only));

    let mut modes: Vec<(&str, SharedIpLocator)> = vec![
        ("off", Arc::new(NoIpLocator)),
        ("on", databases.clone()),
        ("stored only", stored_only),
        ("coordinates only", coordinates_only),
    ];
    if off_and_on_only {
        modes.truncate(2);
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut writer_micros: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    // Rounds of each mode alternate, so drift on a shared machine hits every mode alike, and
    // every other cycle runs the modes in reverse order (off, on, on, off, ...), so no mode always
    // runs first in its cycle, right after another mode's round: whatever one round leaves behind
    // for the next (the previous server's files being deleted, its memory being returned) falls
    // on each mode alike.
    for round in 0..rounds_per_mode * modes.len() {
        let position = round % modes.len();
        let mode = if (round / modes.len()).is_multiple_of(2) {
            position
        } else {
            modes.len() - 1 - position
        };
        let (name, locator) = &modes[mode];
        let round_figures =
            ingest_round(&workload, bodies.clone(), locator.clone(), connections).await?;
        if round_figures.located != (mode != 0) {
            bail!(
                "round {round}: lookups {name} but events located: {}",
                round_figures.located
            );
        }
        println!(
            "round {}: lookups {name}: {:.0} events/s",
            round + 1,
            round_figures.events_per_second
        );
        figures[mode].push(round_figures.events_per_second);
        writer_micros[mode].extend(round_figures.writer_micros_per_event);
    }
    let (off_median, on_median) = (median(&figures[0]), median(&figures[1]));
    let ratio = crate::ratio(on_median, off_median);
    let cost = (1.0 - ratio) * 100.0;
    println!(
        "batched ingest: lookups off {off_median:.0} events/s, on {on_median:.0} events/s, on/off {ratio:.3}x: enrichment costs {cost:.1} % (target <= 5 %: {})",
        if cost <= 5.0 { "met" } else { "MISSED" }
    );
    // The same from each cycle's own pair of rounds, which drift between cycles does not move.
    let cycle_ratios: Vec<f64> = figures[0]
        .iter()
        .zip(&figures[1])
        .map(|(off, on)| crate::ratio(*on, *off))
        .collect();
    let cycle_ratio = median(&cycle_ratios);
    println!(
        "per cycle: on/off {} (median {cycle_ratio:.3}x: {:.1} %)",
        cycle_ratios
            .iter()
            .map(|ratio| format!("{ratio:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        (1.0 - cycle_ratio) * 100.0
    );
    if !writer_micros[0].is_empty() && !writer_micros[1].is_empty() {
        let (off_writer, on_writer) = (median(&writer_micros[0]), median(&writer_micros[1]));
        println!(
            "writer µs per event, median: off {off_writer:.1}, on {on_writer:.1} ({:+.1} µs, {:+.1} %)",
            on_writer - off_writer,
            (on_writer / off_writer - 1.0) * 100.0
        );
    }
    if off_and_on_only {
        return Ok(());
    }
    let (stored_median, coordinates_median) = (median(&figures[2]), median(&figures[3]));
    println!(
        "stored only (no database read) {stored_median:.0} events/s: storing costs {:.1} %, reading the databases {:.1} %",
        (1.0 - crate::ratio(stored_median, off_median)) * 100.0,
        (crate::ratio(stored_median, off_median) - ratio) * 100.0
    );
    println!(
        "coordinates only (the object stored, no place column) {coordinates_median:.0} events/s: storing the object costs {:.1} %, the place columns with their full-text terms and new-country detection {:.1} %",
        (1.0 - crate::ratio(coordinates_median, off_median)) * 100.0,
        (crate::ratio(coordinates_median, off_median) - crate::ratio(stored_median, off_median))
            * 100.0
    );
    Ok(())
}

/// The median of a mode's rounds (the mean of the middle two for an even count).
fn median(figures: &[f64]) -> f64 {
    let mut sorted = figures.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}
