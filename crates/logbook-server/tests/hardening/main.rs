//! Hardening over real HTTP: fair limits per account and key (429 with `Retry-After`), bounds on
//! open live tails, slow and trickling connections, gzip bodies and gzip bombs, the query time
//! budget, and the bounds on `q`, `limit` and `cursor`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::limits::LimitSettings;
use logbook_server::{AppState, ServerSettings};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

mod storage_faults;
mod volume_quotas;

struct Server {
    base_url: String,
    address: std::net::SocketAddr,
    store: Arc<dyn Store>,
    client: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
    _data_dir: tempfile::TempDir,
}

struct Keys {
    account: AccountId,
    ingest: String,
    read: String,
}

impl Server {
    async fn start(settings: ServerSettings) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(
            &data_dir.path().join("logbook.db"),
            SqliteOptions::default(),
        )
        .expect("open the SQLite store");
        Self::start_with_directory(Arc::new(store), settings, data_dir).await
    }

    /// A server on a store opened elsewhere (a small disk, say).
    async fn start_on(store: Arc<dyn Store>, settings: ServerSettings) -> Self {
        Self::start_with_directory(store, settings, tempfile::tempdir().expect("temp dir")).await
    }

    async fn start_with_directory(
        store: Arc<dyn Store>,
        settings: ServerSettings,
        data_dir: tempfile::TempDir,
    ) -> Self {
        let state = AppState::new(store.clone(), Arc::new(SystemClock), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (shutdown, shutdown_receiver) = oneshot::channel::<()>();
        tokio::spawn(logbook_server::serve(listener, state, async move {
            let _ = shutdown_receiver.await;
        }));
        Server {
            base_url: format!("http://{address}"),
            address,
            store,
            client: reqwest::Client::new(),
            _shutdown: shutdown,
            _data_dir: data_dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn key(&self, owner: KeyOwner, scopes: &str) -> String {
        let mut random = [0u8; 17];
        random[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let key = PlaintextApiKey::from_random_bytes(random);
        self.store
            .create_api_key(NewApiKey {
                key_id: format!("key_{}", uuid::Uuid::new_v4().simple()).into(),
                key_hash: key.hash(),
                owner,
                scopes: Scopes::parse(scopes).expect("scopes"),
                display_prefix: key.display_prefix(),
                description: None,
                created_at: SystemClock.now(),
            })
            .await
            .expect("create key");
        key.expose().to_owned()
    }

    async fn account(&self, name: &str) -> Keys {
        let account = AccountId::parse(name).expect("account name");
        self.store
            .create_account(&account, SystemClock.now())
            .await
            .expect("create account");
        Keys {
            ingest: self.key(KeyOwner::Account(account.clone()), "ingest").await,
            read: self.key(KeyOwner::Account(account.clone()), "read").await,
            account,
        }
    }

    async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET")
    }

    async fn post(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/events"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("POST")
    }
}

fn batch(count: usize) -> Value {
    let events: Vec<Value> = (0..count)
        .map(|index| json!({"action": "user.login", "message": format!("login {index}")}))
        .collect();
    json!({ "events": events })
}

fn settings_with(limits: LimitSettings) -> ServerSettings {
    ServerSettings {
        limits,
        ..ServerSettings::default()
    }
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON error body");
    body["error"]["code"]
        .as_str()
        .expect("error code")
        .to_owned()
}

#[tokio::test]
async fn reads_over_an_accounts_limit_get_429_with_retry_after_and_other_accounts_are_still_served()
{
    let mut limits = LimitSettings::default();
    limits.account_defaults.reads_per_second = 20;
    limits.account_defaults.read_burst = 20;
    let server = Server::start(settings_with(limits)).await;
    let noisy = server.account("noisy").await;
    let quiet = server.account("quiet").await;

    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(server.get(&noisy.read, "/api/v1/events").await);
    }
    let refused: Vec<&reqwest::Response> = statuses
        .iter()
        .filter(|response| response.status() == 429)
        .collect();
    assert!(
        !refused.is_empty(),
        "40 reads at once must pass a burst of 20"
    );
    let retry_after: u64 = refused[0].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(
        (1..=5).contains(&retry_after),
        "retry after {retry_after} s"
    );
    let first_refused = statuses
        .into_iter()
        .find(|response| response.status() == 429)
        .unwrap();
    assert_eq!(error_code(first_refused).await, "rate_limited");

    let quiet_answer = server.get(&quiet.read, "/api/v1/events").await;
    assert_eq!(
        quiet_answer.status(),
        200,
        "another account keeps its own bucket"
    );
}

#[tokio::test]
async fn ingest_is_counted_in_events_and_a_refused_batch_stores_nothing() {
    let mut limits = LimitSettings::default();
    limits.account_defaults.ingest_events_per_second = 100;
    limits.account_defaults.ingest_event_burst = 150;
    let server = Server::start(settings_with(limits)).await;
    let acme = server.account("acme").await;

    let first = server.post(&acme.ingest, &batch(100)).await;
    assert_eq!(first.status(), 200);
    // 100 more events do not fit in the 50 left: the whole request is refused.
    let second = server.post(&acme.ingest, &batch(100)).await;
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    assert_eq!(error_code(second).await, "rate_limited");

    let page: Value = server
        .get(&acme.read, "/api/v1/events?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["events"].as_array().unwrap().len(),
        100,
        "only the acknowledged batch is stored"
    );

    // A batch larger than the whole burst can never pass: it is told so instead of "retry".
    let too_large = server.post(&acme.ingest, &batch(200)).await;
    assert_eq!(too_large.status(), 413);
    assert_eq!(error_code(too_large).await, "batch_exceeds_rate_limit");
    let _ = &acme.account;
}

#[tokio::test]
async fn an_account_may_hold_only_its_maximum_of_live_tails_and_a_closed_one_frees_its_place() {
    let mut limits = LimitSettings::default();
    limits.account_defaults.max_live_tails = 2;
    let server = Server::start(settings_with(limits)).await;
    let acme = server.account("acme").await;
    let globex = server.account("globex").await;

    let first = server.get(&acme.read, "/api/v1/events/tail").await;
    let second = server.get(&acme.read, "/api/v1/events/tail").await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = server.get(&acme.read, "/api/v1/events/tail").await;
    assert_eq!(third.status(), 429);
    assert_eq!(error_code(third).await, "too_many_live_tails");
    assert_eq!(
        server
            .get(&globex.read, "/api/v1/events/tail")
            .await
            .status(),
        200
    );

    drop(first);
    // The server notices the closed connection at its next keep-alive or poll.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = server.get(&acme.read, "/api/v1/events/tail").await;
        if again.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "a closed tail frees its place");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_hundred_trickling_connections_do_not_delay_a_normal_request() {
    let server = Server::start(ServerSettings {
        header_read_timeout: Duration::from_secs(3),
        ..ServerSettings::default()
    })
    .await;
    let mut slow_connections = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(server.address)
            .await
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow_connections.push(stream);
    }
    // Each trickles one more header byte while the normal request is made.
    for stream in &mut slow_connections {
        stream.write_all(b"X").await.unwrap();
    }
    let started = Instant::now();
    let response = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(elapsed < Duration::from_secs(1), "answered in {elapsed:?}");
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed_after_the_header_timeout() {
    let server = Server::start(ServerSettings {
        header_read_timeout: Duration::from_millis(500),
        ..ServerSettings::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    // Trickle a byte every 100 ms; the server must hang up by itself.
    let closed = loop {
        if stream.write_all(b"X").await.is_err() {
            break true;
        }
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await {
            Ok(Ok(_)) | Ok(Err(_)) => break true,
            Err(_still_open) => {}
        }
        if started.elapsed() > Duration::from_secs(5) {
            break false;
        }
    };
    assert!(closed, "the trickling connection was still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn a_gzip_body_is_accepted_and_a_gzip_bomb_gets_413() {
    let server = Server::start(ServerSettings::default()).await;
    let acme = server.account("acme").await;
    let body = serde_json::to_vec(&batch(3)).unwrap();
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .bearer_auth(&acme.ingest)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(&body))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], 3);

    // About 10 KB of gzip that would inflate to 10 MB; the limit is 4 MiB.
    let mut inflated = b"{\"action\":\"a\",\"message\":\"".to_vec();
    inflated.resize(10 * 1024 * 1024, b'a');
    let bomb = gzip(&inflated);
    assert!(bomb.len() < 20 * 1024, "bomb is {} bytes", bomb.len());
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .bearer_auth(&acme.ingest)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "body_too_large");
}

#[tokio::test]
async fn a_query_past_its_time_budget_is_answered_query_timeout_with_a_hint() {
    let server = Server::start(ServerSettings {
        query_time_budget: Duration::ZERO,
        ..ServerSettings::default()
    })
    .await;
    let acme = server.account("acme").await;
    let response = server.get(&acme.read, "/api/v1/events?q=login").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "query_timeout");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("narrow")
    );
}

#[tokio::test]
async fn q_limit_and_cursor_are_bounded() {
    let server = Server::start(ServerSettings::default()).await;
    let acme = server.account("acme").await;
    let long_query = "a".repeat(logbook_core::query::MAX_QUERY_BYTES + 1);
    for (path, expected_code) in [
        (format!("/api/v1/events?q={long_query}"), "invalid_query"),
        ("/api/v1/events?limit=1001".to_owned(), "invalid_limit"),
        ("/api/v1/events?limit=0".to_owned(), "invalid_limit"),
        (
            format!("/api/v1/events?cursor={}", "A".repeat(300)),
            "invalid_cursor",
        ),
    ] {
        let response = server.get(&acme.read, &path).await;
        assert_eq!(response.status(), 400, "{expected_code}");
        assert_eq!(error_code(response).await, expected_code);
    }
}

/// Writes a whole request (headers and body) before reading anything, as Python's urllib does,
/// and returns what the server answered, or the error that ended the exchange.
fn write_everything_then_read(
    address: std::net::SocketAddr,
    head: String,
    body: Vec<u8>,
) -> Result<String, std::io::Error> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer)? {
            0 => break,
            read => answer.extend_from_slice(&buffer[..read]),
        }
        if answer.windows(4).any(|window| window == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_client_that_writes_a_whole_too_large_body_before_reading_still_gets_the_413() {
    let server = Server::start(ServerSettings::default()).await;
    let acme = server.account("acme").await;
    // 6 MiB against the 4 MiB default: more than the kernel's socket buffers hold, so a server
    // that closed without reading would reset the connection under the client's writes.
    let body = vec![b' '; 6 * 1024 * 1024];
    let address = server.address;
    let with_length = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        acme.ingest,
        body.len()
    );
    let answer = tokio::task::spawn_blocking({
        let body = body.clone();
        move || write_everything_then_read(address, with_length, body)
    })
    .await
    .unwrap()
    .expect("the client wrote its whole body and read an answer, without a reset");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");

    // Without a length the body is refused at the first chunk past the limit; the rest is read
    // and thrown away all the same.
    let mut chunked = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let without_length = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        acme.ingest
    );
    let answer = tokio::task::spawn_blocking(move || {
        write_everything_then_read(address, without_length, chunked)
    })
    .await
    .unwrap()
    .expect("the chunked client wrote its whole body and read an answer");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}
