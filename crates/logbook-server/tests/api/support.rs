//! Typed helpers: a running server over a temp-dir store, accounts and keys created directly in
//! the store, and small request builders.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::{AppState, ServerSettings};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub base_url: String,
    pub address: std::net::SocketAddr,
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    /// The key that verifies this server's checkpoints (`start_with_checkpoints` only).
    pub checkpoint_verifier: Option<logbook_core::checkpoint::CheckpointVerifier>,
    shutdown: Option<oneshot::Sender<()>>,
    server_task: Option<JoinHandle<std::io::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

/// An account with one key of each scope.
pub struct TestAccount {
    pub account: AccountId,
    pub ingest_key: String,
    pub read_key: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(ServerSettings::default()).await
    }

    pub async fn start_with(settings: ServerSettings) -> Self {
        Self::start_signing(settings, None).await
    }

    /// A server whose store locates every event's address through `databases`, which it reloads
    /// as `serve` does.
    pub async fn start_locating(databases: Arc<logbook_server::ip_databases::IpDatabases>) -> Self {
        Self::start_full(ServerSettings::default(), None, Some(databases)).await
    }

    /// A server whose checkpointer signs every 20 ms under the instance name `logbook.test`.
    pub async fn start_with_checkpoints() -> Self {
        let signer = logbook_core::checkpoint::CheckpointSigner::generate([42; 32], "logbook.test")
            .expect("a test signer");
        Self::start_signing(
            ServerSettings::default(),
            Some(logbook_server::workers::checkpointer::CheckpointSigning {
                signer,
                instance_name: "logbook.test".to_owned(),
                interval: std::time::Duration::from_millis(20),
            }),
        )
        .await
    }

    async fn start_signing(
        settings: ServerSettings,
        signing: Option<logbook_server::workers::checkpointer::CheckpointSigning>,
    ) -> Self {
        Self::start_full(settings, signing, None).await
    }

    async fn start_full(
        settings: ServerSettings,
        signing: Option<logbook_server::workers::checkpointer::CheckpointSigning>,
        ip_databases: Option<Arc<logbook_server::ip_databases::IpDatabases>>,
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut options = SqliteOptions::default();
        if let Some(databases) = &ip_databases {
            options.ip_locator = databases.clone();
        }
        let store = SqliteStore::open(&data_dir.path().join("logbook.db"), options)
            .expect("open the SQLite store");
        let store: Arc<dyn Store> = Arc::new(store);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let checkpoint_verifier = signing.as_ref().map(|signing| signing.signer.verifier());
        let mut state = AppState::new(store.clone(), clock, settings);
        if let Some(signing) = signing {
            state = state.with_checkpoint_signing(signing);
        }
        if let Some(databases) = ip_databases {
            state = state.with_ip_databases(databases);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let address = listener.local_addr().expect("local address");
        let (shutdown_sender, shutdown_receiver) = oneshot::channel::<()>();
        let server_task = tokio::spawn(logbook_server::serve(listener, state, async move {
            let _ = shutdown_receiver.await;
        }));
        TestServer {
            base_url: format!("http://{address}"),
            address,
            store,
            client: reqwest::Client::new(),
            checkpoint_verifier,
            shutdown: Some(shutdown_sender),
            server_task: Some(server_task),
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// Asks the server to stop and waits for `serve` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        let task = self.server_task.take().expect("server task");
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("serve returns within 10 s of the shutdown signal")
            .expect("server task did not panic")
    }

    pub async fn create_account(&self, name: &str) -> AccountId {
        let account = AccountId::parse(name).expect("valid account name");
        self.store
            .create_account(&account, SystemClock.now())
            .await
            .expect("create account");
        account
    }

    /// Creates a key in the store and returns its plaintext.
    pub async fn create_key(&self, owner: KeyOwner, scopes: &str) -> String {
        static COUNTER: AtomicU8 = AtomicU8::new(0);
        let mut random = [0u8; 17];
        random[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
        random[16] = COUNTER.fetch_add(1, Ordering::Relaxed);
        let key = PlaintextApiKey::from_random_bytes(random);
        self.store
            .create_api_key(NewApiKey {
                key_id: format!("key_{}", uuid::Uuid::now_v7().simple()).into(),
                key_hash: key.hash(),
                owner,
                scopes: Scopes::parse(scopes).expect("valid scopes"),
                display_prefix: key.display_prefix(),
                description: None,
                created_at: SystemClock.now(),
            })
            .await
            .expect("create key");
        key.expose().to_owned()
    }

    pub async fn test_account(&self, name: &str) -> TestAccount {
        let account = self.create_account(name).await;
        let ingest_key = self
            .create_key(KeyOwner::Account(account.clone()), "ingest")
            .await;
        let read_key = self
            .create_key(KeyOwner::Account(account.clone()), "read")
            .await;
        TestAccount {
            account,
            ingest_key,
            read_key,
        }
    }

    pub async fn post_events(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/events"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("POST /api/v1/events")
    }

    pub async fn get(&self, key: &str, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(self.url(path_and_query))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET")
    }

    /// `GET /api/v1/events` with the given query parameters, expecting 200, as JSON.
    pub async fn list_events(&self, key: &str, parameters: &[(&str, &str)]) -> Value {
        let response = self
            .client
            .get(self.url("/api/v1/events"))
            .bearer_auth(key)
            .query(parameters)
            .send()
            .await
            .expect("GET /api/v1/events");
        assert_eq!(response.status(), 200, "listing events");
        response.json().await.expect("JSON page")
    }
}

/// A plausible event; `overrides` replaces or adds top-level fields.
pub fn event(message: &str, overrides: Value) -> Value {
    let mut event = serde_json::json!({
        "action": "server.reboot",
        "message": message,
        "actor": {"id": "alice@acme.com", "type": "user"},
        "ip": "203.0.113.9",
    });
    if let (Some(target), Value::Object(fields)) = (event.as_object_mut(), overrides) {
        for (name, value) in fields {
            target.insert(name, value);
        }
    }
    event
}

pub async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

/// The standard error body's code.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}
