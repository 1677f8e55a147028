//! The client against a real Logbook server (SQLite in a temporary directory, on 127.0.0.1:0).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use logbook_client::{
    Actor, BatcherSettings, Client, Error, ErrorKind, Event, EventResult, ExportFormat,
    ExportRequest, RetryPolicy, TailItem,
};
use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::{AppState, ServerSettings};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};

struct Server {
    base_url: String,
    key: String,
    _data_dir: tempfile::TempDir,
}

async fn start_server() -> Server {
    start_server_with(ServerSettings::default()).await
}

async fn start_server_with(settings: ServerSettings) -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &data_dir.path().join("logbook.db"),
            SqliteOptions::default(),
        )
        .unwrap(),
    );
    let account = AccountId::parse("acme").unwrap();
    store
        .create_account(&account, SystemClock.now())
        .await
        .unwrap();
    let mut random = [0u8; 17];
    random[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
    let key = PlaintextApiKey::from_random_bytes(random);
    store
        .create_api_key(NewApiKey {
            key_id: format!("key_{}", uuid::Uuid::now_v7().simple()).into(),
            key_hash: key.hash(),
            owner: KeyOwner::Account(account),
            scopes: Scopes::parse("ingest,read").unwrap(),
            display_prefix: key.display_prefix(),
            description: None,
            created_at: SystemClock.now(),
        })
        .await
        .unwrap();
    let state = AppState::new(store, Arc::new(SystemClock), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(logbook_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Server {
        base_url,
        key: key.expose().to_owned(),
        _data_dir: data_dir,
    }
}

/// A proxy that forwards everything to `upstream` but loses Logbook's answer to the first
/// request (it answers 503 instead), the way a timeout looks to a producer.
async fn answer_losing_proxy(upstream: String) -> String {
    let lost_one = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (lost_one, http, upstream) = (lost_one.clone(), http.clone(), upstream.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let mut forwarded = http.request(
                parts.method.clone(),
                format!("{upstream}{}", parts.uri.path_and_query().unwrap()),
            );
            for (name, value) in &parts.headers {
                if name != "host" && name != "content-length" {
                    forwarded = forwarded.header(name, value);
                }
            }
            let answer = forwarded.body(body).send().await.unwrap();
            let status = answer.status();
            let answer_body = answer.bytes().await.unwrap();
            if !lost_one.swap(true, Ordering::SeqCst) {
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Vec::new());
            }
            (status, answer_body.to_vec())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        first_backoff: Duration::from_millis(10),
        longest_backoff: Duration::from_millis(50),
        longest_retry_after: Duration::from_millis(50),
    }
}

async fn stored_events(client: &Client, query: &str) -> Vec<serde_json::Value> {
    client
        .query(query, 1000)
        .map(|event| event.unwrap().decode::<serde_json::Value>().unwrap())
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_answer_reuses_the_key_and_stores_one_event() {
    let server = start_server().await;
    let proxy = answer_losing_proxy(server.base_url.clone()).await;
    let retries = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = retries.clone();
    let client = Client::builder(&proxy, &server.key)
        .retry_policy(quick_retries())
        .on_retry(move |notice| seen.lock().unwrap().push(notice.error.kind()))
        .build()
        .unwrap();
    let results = client
        .send(&[Event::new("server.reboot", "Rebooted web-1").actor(Actor::user("alice"))])
        .await
        .unwrap();
    let EventResult::Accepted(receipt) = &results[0] else {
        panic!("accepted: {results:?}");
    };
    assert!(
        receipt.duplicate,
        "the retry found the first attempt stored"
    );
    assert_eq!(*retries.lock().unwrap(), vec![ErrorKind::Retry]);
    let stored = stored_events(&client, "").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], receipt.id.as_str());
    assert_eq!(
        stored[0]["key"].as_str().unwrap().len(),
        36,
        "a generated key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_tell_a_bad_event_from_a_bad_request_from_a_server_to_retry() {
    let server = start_server().await;
    let client = Client::builder(&server.base_url, &server.key)
        .build()
        .unwrap();
    let results = client
        .send(&[
            Event::new("server.reboot", "fine"),
            Event::new("server.reboot", "bad address").ip("not-an-ip"),
        ])
        .await
        .unwrap();
    assert!(matches!(&results[0], EventResult::Accepted(_)));
    let EventResult::Rejected { error } = &results[1] else {
        panic!("rejected: {results:?}");
    };
    assert_eq!(error.field.as_deref(), Some("/events/1/ip"));

    let wrong_key = Client::builder(&server.base_url, "lbk_aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .build()
        .unwrap();
    let refused = wrong_key.send(&[Event::new("a.b", "m")]).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::FixRequest);
    assert_eq!(refused.status().map(|status| status.as_u16()), Some(401));

    let nowhere = Client::builder("http://127.0.0.1:9", &server.key)
        .retry_policy(quick_retries())
        .build()
        .unwrap();
    let unreachable = nowhere.send(&[Event::new("a.b", "m")]).await.unwrap_err();
    assert!(matches!(unreachable, Error::Transport { .. }));
    assert_eq!(unreachable.kind(), ErrorKind::Retry);

    let bad_query: Vec<_> = client.query("colour:blue", 10).collect().await;
    let error = bad_query[0].as_ref().unwrap_err();
    assert_eq!(error.detail().unwrap().code, "invalid_query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batcher_sends_in_bounded_batches_and_every_event_arrives_once() {
    let server = start_server().await;
    let client = Client::builder(&server.base_url, &server.key)
        .build()
        .unwrap();
    let batcher = client.batcher(BatcherSettings {
        max_batch_events: 100,
        max_batch_bytes: 16 * 1024,
        max_delay: Duration::from_millis(20),
        queue_capacity: 50,
    });
    let mut submitted = Vec::new();
    for index in 0..450 {
        submitted.push(
            batcher
                .submit(Event::new("user.login", format!("Login {index}")))
                .await
                .unwrap(),
        );
    }
    let rejected = batcher
        .submit(Event::new("Not An Action", "refused"))
        .await
        .unwrap();
    batcher.close().await.unwrap();
    let mut ids = std::collections::HashSet::new();
    for event in submitted {
        ids.insert(event.receipt().await.unwrap().id);
    }
    assert_eq!(ids.len(), 450);
    let error = rejected.receipt().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::FixEvent);

    let pages: Vec<_> = client.query_pages("action:user.login", 200).collect().await;
    assert_eq!(pages.len(), 3);
    assert_eq!(stored_events(&client, "action:user.login").await.len(), 450);

    let mut export = Box::pin(
        client
            .export(&ExportRequest {
                query: "action:user.login".to_owned(),
                format: ExportFormat::Ndjson,
                verifiable: false,
            })
            .await
            .unwrap(),
    );
    let mut exported = Vec::new();
    while let Some(chunk) = export.next().await {
        exported.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(exported.iter().filter(|byte| **byte == b'\n').count(), 450);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_pushes_back_instead_of_growing() {
    let client = Client::builder("http://127.0.0.1:9", "lbk_aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .retry_policy(RetryPolicy {
            max_attempts: 2,
            first_backoff: Duration::from_secs(30),
            longest_backoff: Duration::from_secs(30),
            longest_retry_after: Duration::from_secs(30),
        })
        .build()
        .unwrap();
    let settings = BatcherSettings {
        max_batch_events: 1,
        max_batch_bytes: 1024,
        max_delay: Duration::from_millis(1),
        queue_capacity: 2,
    };
    let batcher = client.batcher(settings);
    let mut accepted = 0;
    let mut refused = false;
    for index in 0..10 {
        match batcher.try_submit(Event::new("a.b", format!("event {index}"))) {
            Ok(_) => accepted += 1,
            Err(error) => {
                assert!(error.to_string().contains("full"), "{error}");
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "the queue filled up");
    assert!(
        accepted <= settings.queue_capacity + settings.max_batch_events,
        "at most the queue and one batch are held: {accepted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_yields_events_as_they_are_stored() {
    let server = start_server().await;
    let client = Client::builder(&server.base_url, &server.key)
        .build()
        .unwrap();
    let mut tail = Box::pin(client.tail("action:server.*"));
    let sender = client.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender
            .send(&[
                Event::new("user.login", "not followed"),
                Event::new("server.reboot", "followed"),
            ])
            .await
            .unwrap();
    });
    let item = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tail.next().await.unwrap().unwrap() {
                TailItem::Event(event) => return event,
                TailItem::Reconnecting { .. } => {}
            }
        }
    })
    .await
    .expect("an event within 10 s");
    assert_eq!(
        item.decode::<serde_json::Value>().unwrap()["message"],
        "followed"
    );
}
