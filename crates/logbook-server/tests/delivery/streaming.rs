//! 5,000 streamed events through each transport against real receivers started here, with a
//! connection reset mid-stream (syslog and RELP, through a proxy) and the receiver stopped and
//! restarted mid-stream: every event arrives (at least once, each with one delivery id), and at
//! the moment the receiver is down nothing the outbox calls delivered is missing from what the
//! receiver had.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use logbook_core::alerting::{DestinationKind, RetrySchedule};
use logbook_server::workers::delivery::DeliverySettings;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::rsyslog::{self, Rsyslog};
use super::{add_destination, new_account, start_server};

const EVENT_COUNT: u64 = 5000;
const EVENTS_PER_REQUEST: u64 = 500;

fn streaming_delivery() -> DeliverySettings {
    DeliverySettings {
        allow_private_destinations: true,
        poll_interval: Duration::from_millis(50),
        retry: RetrySchedule {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_attempts: 20,
        },
        claim_lease: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(2),
        send_timeout: Duration::from_secs(2),
        // Batches of 100, so deliveries are under way at any moment of the stream.
        syslog_batch_size: 100,
        syslog_hostname: "logbook-test-host".to_owned(),
        syslog_app_name: "logbook-audit".to_owned(),
        ..DeliverySettings::default()
    }
}

fn events(batch: u64) -> Vec<Value> {
    (0..EVENTS_PER_REQUEST)
        .map(|index| {
            json!({"action": "server.reboot", "message": format!("reboot {}", batch * EVENTS_PER_REQUEST + index)})
        })
        .collect()
}

/// Ingests the 5,000 events in requests of 500, 20 ms apart, while the test stops and starts
/// the receiver, so deliveries are under way when it goes down.
fn ingest_in_background(base_url: String, key: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for batch in 0..EVENT_COUNT / EVENTS_PER_REQUEST {
            let response = client
                .post(format!("{base_url}/api/v1/events"))
                .bearer_auth(&key)
                .json(&json!({ "events": events(batch) }))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// A TCP proxy in front of rsyslog that resets one connection in the middle of the stream: the
/// one during which the bytes forwarded (over all connections) pass `cut_after_bytes`. Resets
/// and clean closes pass through as they are (a reset upstream resets the client, a close closes
/// it), as a network between Logbook and its collector would.
async fn start_cutting_proxy(upstream_port: u16, cut_after_bytes: usize) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let forwarded = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let forwarded = forwarded.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(upstream) =
                    tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                else {
                    // rsyslog is down: reset the client, as a refused connection would.
                    use std::os::fd::AsFd;
                    let socket =
                        socket2::Socket::from(client.as_fd().try_clone_to_owned().unwrap());
                    let _ = socket.set_linger(Some(Duration::ZERO));
                    return;
                };
                let duplicate = |stream: &tokio::net::TcpStream| {
                    use std::os::fd::AsFd;
                    socket2::Socket::from(stream.as_fd().try_clone_to_owned().unwrap())
                };
                let sockets = Arc::new([duplicate(&client), duplicate(&upstream)]);
                let (mut client_read, client_write) = client.into_split();
                let (mut upstream_read, upstream_write) = upstream.into_split();
                // The write halves sit where a reset can take them: dropping a write half shuts
                // its side down (a FIN), which would tell Logbook the collector closed cleanly
                // just before the reset, so a reset forgets them instead and the sockets close
                // with SO_LINGER 0 (an RST only), as a collector's own reset does.
                let client_write = Arc::new(tokio::sync::Mutex::new(Some(client_write)));
                let upstream_write = Arc::new(tokio::sync::Mutex::new(Some(upstream_write)));
                let reset = {
                    let sockets = sockets.clone();
                    let client_write = client_write.clone();
                    let upstream_write = upstream_write.clone();
                    move || {
                        let sockets = sockets.clone();
                        let client_write = client_write.clone();
                        let upstream_write = upstream_write.clone();
                        async move {
                            for socket in sockets.iter() {
                                let _ = socket.set_linger(Some(Duration::ZERO));
                            }
                            if let Some(half) = client_write.lock().await.take() {
                                half.forget();
                            }
                            if let Some(half) = upstream_write.lock().await.take() {
                                half.forget();
                            }
                        }
                    }
                };
                let towards_rsyslog = {
                    let reset = reset.clone();
                    let upstream_write = upstream_write.clone();
                    async move {
                        let mut buffer = vec![0u8; 8192];
                        loop {
                            let read = match client_read.read(&mut buffer).await {
                                Ok(0) => {
                                    if let Some(half) = upstream_write.lock().await.as_mut() {
                                        let _ = half.shutdown().await;
                                    }
                                    return Ok(());
                                }
                                Ok(read) => read,
                                Err(error) => {
                                    reset().await;
                                    return Err(error);
                                }
                            };
                            let written = match upstream_write.lock().await.as_mut() {
                                Some(half) => half.write_all(&buffer[..read]).await,
                                None => Err(std::io::ErrorKind::ConnectionReset.into()),
                            };
                            if let Err(error) = written {
                                reset().await;
                                return Err(error);
                            }
                            let total = forwarded.fetch_add(read, Ordering::SeqCst) + read;
                            if total >= cut_after_bytes && !cut.swap(true, Ordering::SeqCst) {
                                reset().await;
                                return Err(std::io::ErrorKind::ConnectionReset.into());
                            }
                        }
                    }
                };
                let towards_logbook = {
                    let client_write = client_write.clone();
                    async move {
                        let mut buffer = vec![0u8; 8192];
                        loop {
                            match upstream_read.read(&mut buffer).await {
                                Ok(0) => {
                                    if let Some(half) = client_write.lock().await.as_mut() {
                                        let _ = half.shutdown().await;
                                    }
                                    return Ok(());
                                }
                                Ok(read) => {
                                    let written = match client_write.lock().await.as_mut() {
                                        Some(half) => half.write_all(&buffer[..read]).await,
                                        None => Err(std::io::ErrorKind::ConnectionReset.into()),
                                    };
                                    if let Err(error) = written {
                                        reset().await;
                                        return Err(error);
                                    }
                                }
                                Err(error) => {
                                    reset().await;
                                    return Err(error);
                                }
                            }
                        }
                    }
                };
                let _ = tokio::try_join!(towards_rsyslog, towards_logbook);
            });
        }
    });
    port
}

/// The seqs the outbox of `destination_id` marks delivered, read straight from the database.
fn delivered_seqs(database: &std::path::Path, destination_id: &str) -> BTreeSet<u64> {
    let connection =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut statement = connection
        .prepare("SELECT event_seq FROM deliveries WHERE destination_id = ?1 AND delivered_at IS NOT NULL")
        .unwrap();
    statement
        .query_map([destination_id], |row| row.get::<_, i64>(0))
        .unwrap()
        .map(|seq| seq.unwrap() as u64)
        .collect()
}

fn received_seqs(collector: &Rsyslog) -> (BTreeSet<u64>, usize, HashMap<u64, String>) {
    let lines = collector.received_lines();
    let mut seqs = BTreeSet::new();
    let mut delivery_ids = HashMap::new();
    for line in &lines {
        let seq: u64 = rsyslog::parameter(line, "seq")
            .and_then(|seq| seq.parse().ok())
            .unwrap_or_else(|| panic!("a line without seq: {line}"));
        let delivery_id = rsyslog::parameter(line, "delivery_id").unwrap().to_owned();
        assert_eq!(
            delivery_ids
                .entry(seq)
                .or_insert_with(|| delivery_id.clone()),
            &delivery_id,
            "every copy of seq {seq} carries one delivery id"
        );
        seqs.insert(seq);
    }
    (seqs, lines.len(), delivery_ids)
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Streams 5,000 events to an rsyslog destination made by `kind`, through a proxy that resets one
/// connection mid-stream, stopping rsyslog after a quarter of them arrived, while the rest are
/// still being ingested and sent, and starting it again half a second later.
async fn every_streamed_event_reaches_rsyslog_across_a_reset_and_a_restart(
    test: &str,
    rsyslog_port: impl Fn(&Rsyslog) -> u16,
    kind: impl Fn(u16, &Rsyslog) -> DestinationKind,
) {
    if !rsyslog::available(test) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let collector_directory = directory.path().join("rsyslog");
    std::fs::create_dir(&collector_directory).unwrap();
    let mut collector = Rsyslog::start_in(&collector_directory);
    let database = directory.path().join("logbook.db");
    let server = start_server(&database, streaming_delivery()).await;
    let account = new_account(&server.store, "acme").await;
    // Through a proxy that resets one connection after about 300 KB (some 650 messages).
    let proxy_port = start_cutting_proxy(rsyslog_port(&collector), 300_000).await;
    add_destination(
        &server.store,
        &account,
        "dst_siem",
        kind(proxy_port, &collector),
        true,
    )
    .await;
    let key = server.ingest_key(&account).await;
    let started = std::time::Instant::now();
    let ingesting = ingest_in_background(server.base_url.clone(), key);
    wait_until(
        "a quarter of the events at rsyslog",
        Duration::from_secs(60),
        || received_seqs(&collector).0.len() as u64 >= EVENT_COUNT / 4,
    )
    .await;
    tokio::task::block_in_place(|| collector.stop());
    // rsyslog is down and wrote out everything it accepted: whatever the outbox calls delivered
    // must be in its file.
    let delivered = delivered_seqs(&database, "dst_siem");
    let (received, _, _) = received_seqs(&collector);
    let early: Vec<_> = delivered.difference(&received).take(10).collect();
    assert!(
        early.is_empty(),
        "marked delivered but never received: {early:?}"
    );
    assert!(!delivered.is_empty());

    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| collector.start());
    ingesting.await.unwrap();
    wait_until("every event at rsyslog", Duration::from_secs(90), || {
        received_seqs(&collector).0.len() as u64 == EVENT_COUNT
    })
    .await;
    wait_until("the outbox to empty", Duration::from_secs(30), || {
        delivered_seqs(&database, "dst_siem").len() as u64 == EVENT_COUNT
    })
    .await;
    let (received, lines, _) = received_seqs(&collector);
    assert_eq!(received, (0..EVENT_COUNT).collect::<BTreeSet<_>>());
    for line in collector.received_lines().iter().take(5) {
        assert!(
            line.starts_with("logbook-test-host logbook-audit server.reboot [logbook@32473 account=\"acme\" seq=\""),
            "HOSTNAME, APP-NAME, MSGID and structured data as configured: {line}"
        );
    }
    eprintln!(
        "{test}: {EVENT_COUNT} events, {lines} messages received ({} sent again after the reset or the restart), {:.1} s",
        lines as u64 - EVENT_COUNT,
        started.elapsed().as_secs_f64()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_delivers_every_one_of_5000_streamed_events_to_rsyslog_across_a_reset_connection_and_a_restart()
 {
    every_streamed_event_reaches_rsyslog_across_a_reset_and_a_restart(
        "relp",
        |collector| collector.relp_port,
        |port, _| DestinationKind::relp(&format!("127.0.0.1:{port}")).unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls_with_a_private_ca_delivers_every_one_of_5000_streamed_events_across_a_reset_and_a_restart()
 {
    every_streamed_event_reaches_rsyslog_across_a_reset_and_a_restart(
        "syslog over TLS",
        |collector| collector.tls_port,
        |port, collector| {
            DestinationKind::syslog_tls(&format!("localhost:{port}"), &collector.ca_pem).unwrap()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_syslog_resends_what_a_reset_connection_or_a_restarted_rsyslog_did_not_confirm() {
    every_streamed_event_reaches_rsyslog_across_a_reset_and_a_restart(
        "syslog over TCP",
        |collector| collector.tcp_port,
        |port, _| DestinationKind::syslog(&format!("127.0.0.1:{port}")).unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_collector_whose_certificate_is_not_trusted_gets_nothing_and_the_page_says_why() {
    if !rsyslog::available("untrusted TLS collector") {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let collector_directory = directory.path().join("rsyslog");
    std::fs::create_dir(&collector_directory).unwrap();
    let collector = Rsyslog::start_in(&collector_directory);
    let server = start_server(&directory.path().join("logbook.db"), streaming_delivery()).await;
    let account = new_account(&server.store, "acme").await;
    // No private CA given: rsyslog's certificate chains to nothing Logbook trusts.
    add_destination(
        &server.store,
        &account,
        "dst_siem",
        DestinationKind::syslog_tls(&format!("localhost:{}", collector.tls_port), "").unwrap(),
        true,
    )
    .await;
    let key = server.ingest_key(&account).await;
    server.send_events(&key, events(0)[..3].to_vec()).await;
    let store = server.store.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let destination = loop {
        let destination = store.alerting().list_destinations(&account).await.unwrap()[0].clone();
        if destination.last_error.is_some() {
            break destination;
        }
        assert!(tokio::time::Instant::now() < deadline, "no error recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        destination.last_error.as_deref().unwrap().contains("TLS"),
        "{:?}",
        destination.last_error
    );
    assert_eq!(
        destination.pending_count, 3,
        "nothing delivered, nothing dead"
    );
    assert_eq!(destination.dead_letter_count, 0);
    assert!(collector.received_lines().is_empty());
    server.stop().await;
}

/// A webhook receiver with a listen backlog of 5 that answers 500 to every 9th request and
/// stalls every 101st past Logbook's send timeout before answering 200. It remembers the delivery
/// ids it answered 200 to (it has those), and can be stopped and started on the same port.
struct FlakyReceiver {
    address: std::net::SocketAddr,
    accepted: Arc<Mutex<HashMap<String, u64>>>,
    requests: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FlakyReceiver {
    async fn start() -> Self {
        let mut receiver = Self {
            address: "127.0.0.1:0".parse().unwrap(),
            accepted: Arc::default(),
            requests: Arc::default(),
            stop: None,
            task: None,
        };
        receiver.listen().await;
        receiver
    }

    async fn listen(&mut self) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.address).unwrap();
        let listener = socket.listen(5).unwrap();
        self.address = listener.local_addr().unwrap();
        let accepted = self.accepted.clone();
        let requests = self.requests.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let accepted = accepted.clone();
                let requests = requests.clone();
                async move {
                    let number = requests.fetch_add(1, Ordering::SeqCst) + 1;
                    if number.is_multiple_of(9) {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    if number.is_multiple_of(101) {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    let delivery_id = headers["logbook-delivery-id"].to_str().unwrap().to_owned();
                    let seq = serde_json::from_str::<Value>(&body).unwrap()["event"]["seq"]
                        .as_u64()
                        .unwrap();
                    accepted.lock().unwrap().insert(delivery_id, seq);
                    StatusCode::OK
                }
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        }));
    }

    /// Stops accepting, finishes the requests under way, and closes every connection.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn accepted(&self) -> HashMap<String, u64> {
        self.accepted.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_backlog_webhook_that_fails_and_stalls_requests_gets_every_one_of_5000_events() {
    let directory = tempfile::tempdir().unwrap();
    let database = directory.path().join("logbook.db");
    let mut receiver = FlakyReceiver::start().await;
    let settings = DeliverySettings {
        send_timeout: Duration::from_millis(500),
        ..streaming_delivery()
    };
    let server = start_server(&database, settings).await;
    let account = new_account(&server.store, "acme").await;
    add_destination(
        &server.store,
        &account,
        "dst_hook",
        DestinationKind::webhook(&format!("http://{}/hook", receiver.address)).unwrap(),
        true,
    )
    .await;
    let key = server.ingest_key(&account).await;
    let started = std::time::Instant::now();
    let ingesting = ingest_in_background(server.base_url.clone(), key);
    let accepted = receiver.accepted.clone();
    wait_until(
        "a quarter of the events at the receiver",
        Duration::from_secs(60),
        || accepted.lock().unwrap().len() as u64 >= EVENT_COUNT / 4,
    )
    .await;
    receiver.stop().await;
    let delivered = delivered_seqs(&database, "dst_hook");
    let had: HashSet<u64> = receiver.accepted().into_values().collect();
    let early: Vec<_> = delivered
        .iter()
        .filter(|seq| !had.contains(seq))
        .take(10)
        .collect();
    assert!(
        early.is_empty(),
        "marked delivered but never answered 200: {early:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.listen().await;
    ingesting.await.unwrap();
    wait_until(
        "every event at the receiver",
        Duration::from_secs(120),
        || accepted.lock().unwrap().len() as u64 == EVENT_COUNT,
    )
    .await;
    wait_until("the outbox to empty", Duration::from_secs(30), || {
        delivered_seqs(&database, "dst_hook").len() as u64 == EVENT_COUNT
    })
    .await;
    let by_id = receiver.accepted();
    let seqs: BTreeSet<u64> = by_id.values().copied().collect();
    assert_eq!(
        seqs,
        (0..EVENT_COUNT).collect::<BTreeSet<_>>(),
        "one delivery id per event"
    );
    let destination = &server
        .store
        .alerting()
        .list_destinations(&account)
        .await
        .unwrap()[0];
    assert_eq!(destination.dead_letter_count, 0);
    eprintln!(
        "webhook: {EVENT_COUNT} events, {} requests, {:.1} s",
        receiver.requests.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
    receiver.stop().await;
    server.stop().await;
}
