//! Alert delivery end to end: a real server over a SQLite file, a real webhook receiver (axum on
//! 127.0.0.1), a real TCP syslog listener and Debian's rsyslog (`rsyslog.rs`). Events go in through
//! the ingest API; deliveries come out of the server's own delivery worker, with short backoff
//! settings except where the documented schedule itself is measured.

mod rsyslog;
mod streaming;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use logbook_core::alerting::{
    DestinationKind, NewAlertRule, NewDestination, RetrySchedule, SigningSecret, Threshold,
};
use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::delivery_format::verify_webhook_signature;
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::workers::delivery::DeliverySettings;
use logbook_server::workers::delivery::sender::{self, SendError};
use logbook_server::{AppState, ServerSettings};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECRET: &str = "whsec_integration_test_secret";

/// Makes keys created in the same millisecond differ.
static KEY_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn fast_delivery(allow_private_destinations: bool) -> DeliverySettings {
    DeliverySettings {
        allow_private_destinations,
        poll_interval: Duration::from_millis(20),
        retry: RetrySchedule {
            initial_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_millis(200),
            max_attempts: 8,
        },
        claim_lease: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        send_timeout: Duration::from_secs(5),
        ..DeliverySettings::default()
    }
}

struct RunningServer {
    base_url: String,
    store: Arc<dyn Store>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start_server(database: &std::path::Path, delivery: DeliverySettings) -> RunningServer {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(database, SqliteOptions::default()).expect("open the store"));
    let settings = ServerSettings {
        delivery,
        ..ServerSettings::default()
    };
    let state = AppState::new(store.clone(), Arc::new(SystemClock), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (shutdown, receiver) = oneshot::channel::<()>();
    let task = tokio::spawn(logbook_server::serve(listener, state, async move {
        let _ = receiver.await;
    }));
    RunningServer {
        base_url: format!("http://{address}"),
        store,
        shutdown,
        task,
    }
}

impl RunningServer {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns within 10 s")
            .expect("no panic")
            .expect("serve succeeds");
    }

    async fn ingest_key(&self, account: &AccountId) -> String {
        let mut random = [0u8; 17];
        random[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
        random[16] = KEY_COUNTER.fetch_add(1, Ordering::Relaxed) as u8;
        let key = PlaintextApiKey::from_random_bytes(random);
        self.store
            .create_api_key(NewApiKey {
                key_id: format!("key_{}", uuid::Uuid::now_v7().simple()).into(),
                key_hash: key.hash(),
                owner: KeyOwner::Account(account.clone()),
                scopes: Scopes::parse("ingest").unwrap(),
                display_prefix: key.display_prefix(),
                description: None,
                created_at: SystemClock.now(),
            })
            .await
            .unwrap();
        key.expose().to_owned()
    }

    async fn send_events(&self, key: &str, events: Vec<Value>) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/events", self.base_url))
            .bearer_auth(key)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "ingest answered {}",
            response.status()
        );
    }
}

async fn new_account(store: &Arc<dyn Store>, name: &str) -> AccountId {
    let account = AccountId::parse(name).unwrap();
    store
        .create_account(&account, SystemClock.now())
        .await
        .unwrap();
    account
}

async fn add_destination(
    store: &Arc<dyn Store>,
    account: &AccountId,
    destination_id: &str,
    kind: DestinationKind,
    streams_whole_log: bool,
) {
    store
        .alerting()
        .create_destination(NewDestination {
            destination_id: destination_id.to_owned().into(),
            account: account.clone(),
            name: destination_id.to_owned(),
            kind,
            secret: SigningSecret(SECRET.to_owned()),
            streams_whole_log,
            start_seq: store.next_seq(account).await.unwrap(),
            created_at: SystemClock.now(),
        })
        .await
        .unwrap();
}

async fn add_rule(
    store: &Arc<dyn Store>,
    account: &AccountId,
    query_text: &str,
    threshold: Option<Threshold>,
    destination_id: &str,
) {
    store
        .alerting()
        .create_rule(NewAlertRule {
            rule_id: format!("rul_{}", uuid::Uuid::now_v7().simple()).into(),
            account: account.clone(),
            name: format!("rule {query_text}"),
            query_text: query_text.to_owned(),
            threshold,
            destination_ids: vec![destination_id.to_owned().into()],
            created_at: SystemClock.now(),
        })
        .await
        .unwrap();
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
    answered: StatusCode,
    at: std::time::Instant,
}

/// A webhook receiver on 127.0.0.1 that answers 503 to its first `failures` requests.
struct WebhookReceiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    remaining_failures: Arc<AtomicUsize>,
}

async fn start_receiver(failures: usize) -> WebhookReceiver {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let remaining_failures = Arc::new(AtomicUsize::new(failures));
    let log = received.clone();
    let failures_left = remaining_failures.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            let failures_left = failures_left.clone();
            async move {
                let fail = failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                        left.checked_sub(1)
                    })
                    .is_ok();
                let answered = if fail {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                log.lock().unwrap().push(Received {
                    headers,
                    body,
                    answered,
                    at: std::time::Instant::now(),
                });
                (answered, "<b>busy</b>")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    WebhookReceiver {
        url: format!("http://{address}/hook"),
        received,
        remaining_failures,
    }
}

impl WebhookReceiver {
    /// From now on every request is answered 200.
    fn recover(&self) {
        self.remaining_failures.store(0, Ordering::SeqCst);
    }

    fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `predicate` holds for the requests received so far (at most 15 s).
    async fn wait_for(&self, what: &str, predicate: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let requests = self.requests();
            if predicate(&requests) {
                return requests;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; received {} requests",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn header<'a>(request: &'a Received, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

fn body_json(request: &Received) -> Value {
    serde_json::from_str(&request.body).expect("the webhook body is JSON")
}

fn login(actor: &str, ip: &str, message: &str) -> Value {
    json!({
        "action": "user.login",
        "message": message,
        "actor": {"id": actor, "type": "user"},
        "ip": ip,
        "outcome": "success",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfamiliar_ip_login_triggers_exactly_one_signed_delivery() {
    let directory = tempfile::tempdir().unwrap();
    let server = start_server(&directory.path().join("logbook.db"), fast_delivery(true)).await;
    let receiver = start_receiver(0).await;
    let account = new_account(&server.store, "acme").await;
    add_destination(
        &server.store,
        &account,
        "dst_hook",
        DestinationKind::webhook(&receiver.url).unwrap(),
        false,
    )
    .await;
    add_rule(
        &server.store,
        &account,
        "is:new-ip action:user.login",
        None,
        "dst_hook",
    )
    .await;
    let key = server.ingest_key(&account).await;
    // Alice's history: two logins from her usual address (the first event of an actor is never
    // new), then one from an address she has never used, then the usual one again.
    server
        .send_events(
            &key,
            vec![
                login("alice@acme.com", "198.51.100.7", "first login"),
                login("alice@acme.com", "198.51.100.7", "usual login"),
            ],
        )
        .await;
    server
        .send_events(
            &key,
            vec![login(
                "alice@acme.com",
                "203.0.113.66",
                "login from far away",
            )],
        )
        .await;
    server
        .send_events(
            &key,
            vec![login("alice@acme.com", "198.51.100.7", "usual login again")],
        )
        .await;

    let requests = receiver
        .wait_for("the new-IP delivery", |requests| !requests.is_empty())
        .await;
    // Give the worker many more rounds to send anything it should not.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let requests = {
        let later = receiver.requests();
        assert!(later.len() >= requests.len());
        later
    };
    assert_eq!(requests.len(), 1, "exactly one delivery: {requests:?}");
    let request = &requests[0];
    let timestamp: i64 = header(request, "logbook-timestamp").parse().unwrap();
    assert!(verify_webhook_signature(
        SECRET,
        timestamp,
        &request.body,
        header(request, "logbook-signature")
    ));
    assert!(!verify_webhook_signature(
        "whsec_wrong",
        timestamp,
        &request.body,
        header(request, "logbook-signature")
    ));
    let body = body_json(request);
    assert_eq!(body["event"]["message"], "login from far away");
    assert_eq!(body["event"]["new_ip"], true);
    assert_eq!(body["event"]["seq"], 2);
    assert_eq!(body["account"], "acme");
    assert_eq!(body["test"], false);
    assert_eq!(body["rule"]["query"], "is:new-ip action:user.login");
    assert_eq!(body["delivery_id"], header(request, "logbook-delivery-id"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_three_times_then_recovering_gets_the_event_again_with_the_same_delivery_id()
 {
    let directory = tempfile::tempdir().unwrap();
    let server = start_server(&directory.path().join("logbook.db"), fast_delivery(true)).await;
    let receiver = start_receiver(3).await;
    let account = new_account(&server.store, "acme").await;
    add_destination(
        &server.store,
        &account,
        "dst_hook",
        DestinationKind::webhook(&receiver.url).unwrap(),
        false,
    )
    .await;
    add_rule(
        &server.store,
        &account,
        "action:firewall.*",
        None,
        "dst_hook",
    )
    .await;
    let key = server.ingest_key(&account).await;
    server
        .send_events(
            &key,
            vec![json!({"action": "firewall.rule.update", "message": "Opened port 22"})],
        )
        .await;
    receiver
        .wait_for("a successful attempt", |requests| {
            requests
                .iter()
                .any(|request| request.answered == StatusCode::OK)
        })
        .await;
    // Many more rounds, in which nothing more may be sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = receiver.requests();
    let answered: Vec<StatusCode> = requests.iter().map(|request| request.answered).collect();
    assert_eq!(
        answered,
        vec![
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ],
        "three failures, then exactly one more attempt that succeeds"
    );
    let delivery_ids: Vec<&str> = requests
        .iter()
        .map(|request| header(request, "logbook-delivery-id"))
        .collect();
    assert!(delivery_ids.iter().all(|id| *id == delivery_ids[0]));
    let bodies: Vec<Value> = requests.iter().map(body_json).collect();
    assert!(bodies.iter().all(|body| body["event"]["seq"] == 0));

    let destination = &server
        .store
        .alerting()
        .list_destinations(&account)
        .await
        .unwrap()[0];
    assert_eq!(destination.pending_count, 0);
    assert_eq!(destination.dead_letter_count, 0);
    assert!(destination.last_success_at.is_some());
    assert!(
        destination
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("503") && error.contains("<b>busy</b>")),
        "the receiver's answer is kept as text: {:?}",
        destination.last_error
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_keep_the_documented_schedule_of_one_second_doubling_minus_up_to_half() {
    let directory = tempfile::tempdir().unwrap();
    let settings = DeliverySettings {
        retry: RetrySchedule::default(),
        ..fast_delivery(true)
    };
    let server = start_server(&directory.path().join("logbook.db"), settings).await;
    let receiver = start_receiver(3).await;
    let account = new_account(&server.store, "acme").await;
    add_destination(
        &server.store,
        &account,
        "dst_hook",
        DestinationKind::webhook(&receiver.url).unwrap(),
        true,
    )
    .await;
    let key = server.ingest_key(&account).await;
    server
        .send_events(
            &key,
            vec![json!({"action": "server.reboot", "message": "once"})],
        )
        .await;
    let requests = receiver
        .wait_for("three refusals and a success", |requests| {
            requests.len() >= 4
        })
        .await;
    let waits: Vec<f64> = requests
        .windows(2)
        .map(|pair| (pair[1].at - pair[0].at).as_secs_f64())
        .collect();
    // After the n-th failure the wait is 2^(n-1) s minus up to half of it: [0.5, 1], [1, 2],
    // [2, 4]. The upper bounds allow for the claim's store round trip on a busy machine.
    for (index, wait) in waits.iter().enumerate() {
        let full = f64::from(1u32 << index);
        assert!(
            *wait >= full / 2.0 - 0.02 && *wait <= full + 0.5,
            "wait {} was {wait:.3} s, documented {:.1} to {full:.1} s (all: {waits:?})",
            index + 1,
            full / 2.0
        );
    }
    eprintln!("measured waits after each failure: {waits:.3?} s");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_backlog_loses_no_delivery() {
    let directory = tempfile::tempdir().unwrap();
    let database = directory.path().join("logbook.db");
    // The receiver is down (every answer 503) while the backlog builds.
    let receiver = start_receiver(usize::MAX).await;
    let first = start_server(&database, fast_delivery(true)).await;
    let account = new_account(&first.store, "acme").await;
    add_destination(
        &first.store,
        &account,
        "dst_stream",
        DestinationKind::webhook(&receiver.url).unwrap(),
        true,
    )
    .await;
    let key = first.ingest_key(&account).await;
    let event_count = 120;
    for batch in 0..4 {
        let events = (0..event_count / 4)
            .map(|index| {
                json!({"action": "server.reboot", "message": format!("reboot {}", batch * 30 + index)})
            })
            .collect();
        first.send_events(&key, events).await;
    }
    receiver
        .wait_for("attempts against the failing receiver", |requests| {
            requests.len() >= 5
        })
        .await;
    first.stop().await;

    // A new server on the same database, and a receiver that now accepts everything.
    receiver.recover();
    let second = start_server(&database, fast_delivery(true)).await;
    let requests = receiver
        .wait_for("every event of the backlog", |requests| {
            distinct_delivered_seqs(requests).len() == event_count
        })
        .await;
    let delivered = distinct_delivered_seqs(&requests);
    assert_eq!(
        delivered,
        (0..event_count as u64).collect::<Vec<_>>(),
        "every event delivered after the restart"
    );
    // At-least-once: every attempt for one event, before and after the restart, carries the
    // same delivery id.
    let mut delivery_id_of_seq = std::collections::HashMap::new();
    for request in &requests {
        let seq = body_json(request)["event"]["seq"].as_u64().unwrap();
        let delivery_id = header(request, "logbook-delivery-id").to_owned();
        let first = delivery_id_of_seq
            .entry(seq)
            .or_insert_with(|| delivery_id.clone());
        assert_eq!(*first, delivery_id, "seq {seq}");
    }
    second.stop().await;
}

fn distinct_delivered_seqs(requests: &[Received]) -> Vec<u64> {
    let mut seqs: Vec<u64> = requests
        .iter()
        .filter(|request| request.answered == StatusCode::OK)
        .filter_map(|request| body_json(request)["event"]["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_rule_fires_once_per_window_crossing() {
    let directory = tempfile::tempdir().unwrap();
    let server = start_server(&directory.path().join("logbook.db"), fast_delivery(true)).await;
    let receiver = start_receiver(0).await;
    let account = new_account(&server.store, "acme").await;
    add_destination(
        &server.store,
        &account,
        "dst_hook",
        DestinationKind::webhook(&receiver.url).unwrap(),
        false,
    )
    .await;
    add_rule(
        &server.store,
        &account,
        "outcome:failure action:user.login",
        Some(Threshold::new(5, Duration::from_secs(600)).unwrap()),
        "dst_hook",
    )
    .await;
    let key = server.ingest_key(&account).await;
    let failed_login = |index: usize| {
        json!({"action": "user.login", "outcome": "failure", "message": format!("bad password {index}"),
               "actor": {"id": "mallory@acme.com"}})
    };
    // Five failures: not more than five yet.
    server
        .send_events(&key, (0..5).map(failed_login).collect())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.requests().is_empty(), "five is not more than five");
    // The sixth crosses the threshold; the next twenty are the same burst, in the same window.
    server.send_events(&key, vec![failed_login(5)]).await;
    server
        .send_events(&key, (6..26).map(failed_login).collect())
        .await;
    receiver
        .wait_for("the threshold alert", |requests| !requests.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "one alert per window crossing");
    let body = body_json(&requests[0]);
    assert_eq!(body["event"]["seq"], 5);
    assert_eq!(body["rule"]["matched_count"], 6);
    assert_eq!(body["rule"]["threshold_count"], 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_refuses_private_addresses_and_plain_http_unless_allowed() {
    let receiver = start_receiver(0).await;
    let destination = logbook_core::alerting::DestinationRecord {
        destination_id: "dst_private".into(),
        account: AccountId::parse("acme").unwrap(),
        name: "private".into(),
        kind: DestinationKind::webhook(&receiver.url).unwrap(),
        secret: SigningSecret(SECRET.into()),
        streams_whole_log: true,
        created_at: SystemClock.now(),
        last_success_at: None,
        last_error: None,
        last_error_at: None,
        pending_count: 0,
        dead_letter_count: 0,
        oldest_pending_at: None,
    };
    let outgoing = sender::Outgoing {
        delivery_id: "test_1",
        account: &destination.account,
        event_seq: 0,
        event_json: "{}",
        reason: &logbook_core::alerting::DeliveryReason::WholeLog,
        test: true,
        now: SystemClock.now(),
    };
    let refused = sender::send(&destination, &outgoing, &fast_delivery(false)).await;
    assert!(matches!(refused, Err(SendError::Refused(_))), "{refused:?}");
    let https_loopback = logbook_core::alerting::DestinationRecord {
        kind: DestinationKind::webhook("https://127.0.0.1:1/hook").unwrap(),
        ..destination.clone()
    };
    let refused = sender::send(&https_loopback, &outgoing, &fast_delivery(false)).await;
    assert!(
        matches!(&refused, Err(SendError::Refused(reason)) if reason.contains("127.0.0.1")),
        "{refused:?}"
    );
    let metadata = logbook_core::alerting::DestinationRecord {
        kind: DestinationKind::syslog("169.254.169.254:514").unwrap(),
        ..destination.clone()
    };
    let refused = sender::send(&metadata, &outgoing, &fast_delivery(false)).await;
    assert!(matches!(refused, Err(SendError::Refused(_))), "{refused:?}");
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the receiver"
    );

    // Allowed by the setting, the same destination is reached, with a clearly marked test.
    sender::send(&destination, &outgoing, &fast_delivery(true))
        .await
        .expect("allowed");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let body = body_json(&requests[0]);
    assert_eq!(body["test"], true);
    assert_eq!(body["event"]["action"], "logbook.destination.test");
}

/// Frames of RFC 6587 octet counting: `LEN SP MSG`.
fn octet_counted_messages(mut bytes: &[u8]) -> Vec<String> {
    let mut messages = Vec::new();
    while !bytes.is_empty() {
        let space = bytes
            .iter()
            .position(|&byte| byte == b' ')
            .expect("a length");
        let length: usize = std::str::from_utf8(&bytes[..space])
            .unwrap()
            .parse()
            .unwrap();
        let message = &bytes[space + 1..space + 1 + length];
        messages.push(String::from_utf8(message.to_vec()).unwrap());
        bytes = &bytes[space + 1 + length..];
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syslog_destination_receives_rfc_5424_messages_over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = received.clone();
    tokio::spawn(async move {
        loop {
            let (mut connection, _) = listener.accept().await.unwrap();
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let _ = connection.read_to_end(&mut bytes).await;
                sink.lock().unwrap().extend_from_slice(&bytes);
            });
        }
    });
    let directory = tempfile::tempdir().unwrap();
    let server = start_server(&directory.path().join("logbook.db"), fast_delivery(true)).await;
    let account = new_account(&server.store, "acme").await;
    add_destination(
        &server.store,
        &account,
        "dst_siem",
        DestinationKind::syslog(&address.to_string()).unwrap(),
        true,
    )
    .await;
    let key = server.ingest_key(&account).await;
    server
        .send_events(
            &key,
            vec![
                json!({"action": "server.reboot", "message": "Rebooted \"web-1\" ] \\ now"}),
                json!({"action": "user.login", "message": "hello"}),
            ],
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let messages = loop {
        let messages = octet_counted_messages(&received.lock().unwrap().clone());
        if messages.len() >= 2 {
            break messages;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "syslog messages did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut messages = messages;
    messages.sort_by_key(|message| message.contains("user.login"));
    for (seq, message) in messages.iter().enumerate() {
        // <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
        let parts: Vec<&str> = message.splitn(7, ' ').collect();
        assert_eq!(parts[0], "<110>1", "{message}");
        assert!(
            time::OffsetDateTime::parse(parts[1], &time::format_description::well_known::Rfc3339)
                .is_ok()
        );
        assert_eq!(parts[3], "logbook");
        assert_eq!(parts[4], "-");
        let structured_and_message = parts[6];
        assert!(structured_and_message.starts_with(&format!(
            "[logbook@32473 account=\"acme\" seq=\"{seq}\" action=\"{}\" delivery_id=\"dlv_",
            parts[5]
        )));
        let json_start = structured_and_message
            .find("] \u{feff}")
            .expect("SD then BOM and MSG");
        let event: Value = serde_json::from_str(&structured_and_message[json_start + 5..]).unwrap();
        assert_eq!(event["seq"], seq as u64);
    }
    assert_eq!(
        serde_json::from_str::<Value>(&messages[0][messages[0].find('\u{feff}').unwrap() + 3..])
            .unwrap()["message"],
        "Rebooted \"web-1\" ] \\ now"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_receiver_never_delays_another_destination() {
    // A receiver that takes every request and answers none for 20 s.
    let stalled_requests = Arc::new(AtomicUsize::new(0));
    let counter = stalled_requests.clone();
    let stalled = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(20)).await;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, stalled).await });
    let healthy = start_receiver(0).await;

    let directory = tempfile::tempdir().unwrap();
    let settings = DeliverySettings {
        send_timeout: Duration::from_secs(15),
        ..fast_delivery(true)
    };
    let server = start_server(&directory.path().join("logbook.db"), settings).await;
    let account = new_account(&server.store, "acme").await;
    add_destination(
        &server.store,
        &account,
        "dst_stalled",
        DestinationKind::webhook(&stalled_url).unwrap(),
        true,
    )
    .await;
    add_destination(
        &server.store,
        &account,
        "dst_healthy",
        DestinationKind::webhook(&healthy.url).unwrap(),
        true,
    )
    .await;
    let key = server.ingest_key(&account).await;
    let started = std::time::Instant::now();
    server
        .send_events(
            &key,
            (0..40)
                .map(|index| json!({"action": "server.reboot", "message": format!("reboot {index}")}))
                .collect(),
        )
        .await;
    let requests = healthy
        .wait_for("every event at the healthy receiver", |requests| {
            distinct_delivered_seqs(requests).len() == 40
        })
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "the healthy destination waited {elapsed:?} behind the stalled one"
    );
    assert_eq!(requests.len(), 40, "each event once");
    assert!(
        stalled_requests.load(Ordering::SeqCst) >= 1,
        "the stalled receiver was being sent to meanwhile"
    );
    eprintln!(
        "healthy destination got 40 events in {:.2} s beside a stalled one",
        elapsed.as_secs_f64()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_checks_the_address_a_name_resolves_to_when_it_connects() {
    let directory = tempfile::tempdir().unwrap();
    let server = start_server(&directory.path().join("logbook.db"), fast_delivery(false)).await;
    let account = new_account(&server.store, "acme").await;
    // `localhost` passes the form's checks; when the lane connects it resolves to loopback,
    // which the guard refuses before any connection is made.
    add_destination(
        &server.store,
        &account,
        "dst_loopback",
        DestinationKind::webhook("https://localhost:9/hook").unwrap(),
        true,
    )
    .await;
    let key = server.ingest_key(&account).await;
    server
        .send_events(
            &key,
            vec![json!({"action": "server.reboot", "message": "reboot"})],
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let destination = loop {
        let destination = server
            .store
            .alerting()
            .list_destinations(&account)
            .await
            .unwrap()
            .remove(0);
        if destination.last_error.is_some() {
            break destination;
        }
        assert!(tokio::time::Instant::now() < deadline, "no error recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let error = destination.last_error.unwrap();
    assert!(
        error.contains("refused by the destination guard"),
        "{error}"
    );
    assert!(
        error.contains("127.0.0.1") || error.contains("::1"),
        "{error}"
    );
    assert_eq!(
        (destination.pending_count, destination.dead_letter_count),
        (1, 0),
        "an unreachable destination keeps its delivery pending"
    );
    server.stop().await;
}
