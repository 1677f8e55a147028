//! Several `logbook serve` nodes on one PostgreSQL database, as an operator runs them behind a
//! load balancer: each test starts two nodes on a fresh database and checks that they behave as
//! one service (dense `seq` under concurrent ingest, key revocation, live tails, sessions).
//! Without a reachable PostgreSQL a local run prints `SKIPPED (...)`; under CI it fails.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use logbook_store_postgres::scratch_database::ScratchDatabase;
use serde_json::{Value, json};
use tempfile::TempDir;

const LOGBOOK_VARIABLES: &[&str] = &[
    "LOGBOOK_CONFIG",
    "LOGBOOK_DATA_DIR",
    "LOGBOOK_DATABASE",
    "LOGBOOK_LISTEN",
    "LOGBOOK_LOG_FORMAT",
    "LOGBOOK_LOG",
    "LOGBOOK_SERVER",
    "LOGBOOK_KEY",
];

/// One fresh database and a scratch directory for the nodes (which keep nothing there).
struct Cluster {
    database: ScratchDatabase,
    directory: TempDir,
}

impl Cluster {
    async fn new() -> Option<Cluster> {
        let database = ScratchDatabase::create().await?;
        Some(Cluster {
            database,
            directory: tempfile::tempdir().expect("a temporary directory"),
        })
    }

    /// `logbook ARGUMENTS --database URL` with a clean environment.
    fn logbook(&self, arguments: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
        command
            .current_dir(self.directory.path())
            .args(arguments)
            .arg("--database")
            .arg(&self.database.url)
            .stdin(Stdio::null());
        for variable in LOGBOOK_VARIABLES {
            command.env_remove(variable);
        }
        command
    }

    fn run(&self, arguments: &[&str]) -> Output {
        let output = self.logbook(arguments).output().expect("logbook runs");
        assert!(
            output.status.success(),
            "logbook {arguments:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Creates a key and returns `(key_id, key)`.
    fn create_key(&self, account: &str, scopes: &str) -> (String, String) {
        let output = self.run(&[
            "key",
            "create",
            "--account",
            account,
            "--scope",
            scopes,
            "--json",
        ]);
        let created: Value =
            serde_json::from_slice(&output.stdout).expect("key create prints JSON");
        (
            created["key_id"].as_str().unwrap().to_owned(),
            created["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Starts `logbook serve` on this cluster's database, on port 0.
    fn start_node(&self) -> Node {
        self.start_node_on(&self.database.url)
    }

    /// Starts `logbook serve` on `database_url`, on port 0, and waits for its `listening on` line.
    fn start_node_on(&self, database_url: &str) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
        command
            .current_dir(self.directory.path())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                database_url,
            ])
            .stdin(Stdio::null());
        for variable in LOGBOOK_VARIABLES {
            command.env_remove(variable);
        }
        command
            .arg("--data-dir")
            .arg(self.directory.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("logbook serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("listening on ") {
                    let _ = sender.send(address.to_owned());
                }
            }
        });
        let mut node = Node {
            child,
            base_url: String::new(),
        };
        node.base_url = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the node announces its address");
        node
    }
}

/// A running `logbook serve`, killed when the test ends however it ends.
struct Node {
    child: Child,
    base_url: String,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn ingest(
    client: &reqwest::Client,
    node: &Node,
    key: &str,
    events: Value,
) -> reqwest::Response {
    client
        .post(node.url("/api/v1/events"))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap()
}

/// The JSON page that `path_and_query` (`/api/v1/events?...`) answers on `node` for `key`.
async fn events_page(
    client: &reqwest::Client,
    node: &Node,
    key: &str,
    path_and_query: &str,
) -> Value {
    client
        .get(node.url(path_and_query))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_ingesting_one_account_at_once_keep_seq_dense_without_forks() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    cluster.run(&["account", "create", "acme"]);
    let (_, key) = cluster.create_key("acme", "ingest,read");
    let nodes = [cluster.start_node(), cluster.start_node()];
    let client = client();
    let mut producers = Vec::new();
    for producer in 0..8_usize {
        let client = client.clone();
        let key = key.clone();
        let url = nodes[producer % 2].url("/api/v1/events");
        producers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for round in 0..10 {
                let events: Vec<Value> = (0..10)
                    .map(|number| {
                        json!({
                            "action": "user.login",
                            "message": format!("producer {producer} round {round} event {number}"),
                            "key": format!("p{producer}-r{round}-e{number}"),
                        })
                    })
                    .collect();
                let answer: Value = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({ "events": events }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                for result in answer["results"].as_array().unwrap() {
                    assert_eq!(result["duplicate"], false, "{result}");
                    seqs.push(result["seq"].as_u64().unwrap());
                }
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for producer in producers {
        seqs.extend(producer.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..800).collect::<Vec<u64>>(),
        "no gap and no seq given twice"
    );

    // Both nodes read the same 800 events.
    for node in &nodes {
        let page = events_page(&client, node, &key, "/api/v1/events?limit=1000").await;
        assert_eq!(page["events"].as_array().unwrap().len(), 800);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_from_the_cli_stops_working_on_every_node() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    cluster.run(&["account", "create", "acme"]);
    let (key_id, key) = cluster.create_key("acme", "ingest");
    let nodes = [cluster.start_node(), cluster.start_node()];
    let client = client();
    let event = json!([{ "action": "user.login", "message": "Logged in" }]);
    for node in &nodes {
        assert_eq!(
            ingest(&client, node, &key, event.clone()).await.status(),
            200
        );
    }
    cluster.run(&["key", "revoke", &key_id]);
    // Each node remembers an active key for at most a second.
    let deadline = Instant::now() + Duration::from_secs(3);
    for node in &nodes {
        loop {
            let status = ingest(&client, node, &key, event.clone()).await.status();
            if status == 401 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} still accepts the revoked key ({status})",
                node.base_url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_on_one_node_sees_an_event_ingested_on_the_other_within_a_second() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    cluster.run(&["account", "create", "acme"]);
    let (_, key) = cluster.create_key("acme", "ingest,read");
    let nodes = [cluster.start_node(), cluster.start_node()];
    let client = client();
    let tail = client
        .get(nodes[1].url("/api/v1/events/tail"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 200);
    let mut frames = tail.bytes_stream();
    // The tail starts from the account's next seq when it connects; give it a moment to start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = ingest(
        &client,
        &nodes[0],
        &key,
        json!([{ "action": "server.reboot", "message": "Rebooted web-1 from node one" }]),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let acknowledged_at = Instant::now();
    let mut received = String::new();
    let seen = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(chunk) = frames.next().await {
            received.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if received.contains("Rebooted web-1 from node one") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        seen,
        Ok(true),
        "node two's tail did not show the event within a second: {received:?}"
    );
    assert!(acknowledged_at.elapsed() <= Duration::from_secs(1));
}

fn session_cookie_of(answer: &reqwest::Response) -> Option<String> {
    answer
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("logbook_session=") && !value.contains("Max-Age=0"))
        .map(|value| value.split(';').next().unwrap().to_owned())
}

fn csrf_token_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    html.get(start..start + 64).map(str::to_owned)
}

async fn page_status(client: &reqwest::Client, node: &Node, cookie: &str) -> (u16, String) {
    let answer = client
        .get(node.url("/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_one_node_works_on_the_other_until_logout_on_the_first() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    cluster.run(&["account", "create", "acme"]);
    let password = "correct horse battery staple 42";
    let mut add_user = cluster.logbook(&[
        "user",
        "add",
        "--account",
        "acme",
        "--email",
        "alice@acme.com",
        "--role",
        "owner",
        "--password-stdin",
    ]);
    let mut child = add_user
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let added = child.wait_with_output().unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let nodes = [cluster.start_node(), cluster.start_node()];
    let client = client();
    let login = client
        .post(nodes[0].url("/login"))
        .form(&[("email", "alice@acme.com"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303, "sign-in on node one redirects");
    let cookie = session_cookie_of(&login).expect("a session cookie");

    let (status, _) = page_status(&client, &nodes[1], &cookie).await;
    assert_eq!(status, 200, "node two accepts node one's session");

    let (_, page) = page_status(&client, &nodes[0], &cookie).await;
    let csrf_token = csrf_token_in(&page).expect("the page holds a CSRF token");
    let logout = client
        .post(nodes[0].url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf_token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_redirection(), "{}", logout.status());

    let (status, _) = page_status(&client, &nodes[1], &cookie).await;
    assert_ne!(status, 200, "node two no longer accepts the ended session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_an_embedded_database_and_continues_where_it_stopped() {
    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let sqlite_url = format!(
        "sqlite://{}",
        cluster
            .directory
            .path()
            .join("embedded/logbook.db")
            .display()
    );
    let on_sqlite = |arguments: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
        command
            .current_dir(cluster.directory.path())
            .args(arguments)
            .arg("--database")
            .arg(&sqlite_url)
            .stdin(Stdio::null());
        for variable in LOGBOOK_VARIABLES {
            command.env_remove(variable);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    on_sqlite(&["demo", "--account", "demo"]);
    on_sqlite(&["account", "create", "acme"]);
    let created: Value = serde_json::from_slice(
        &on_sqlite(&[
            "key",
            "create",
            "--account",
            "demo",
            "--scope",
            "ingest,read",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let revoked: Value = serde_json::from_slice(
        &on_sqlite(&[
            "key",
            "create",
            "--account",
            "acme",
            "--scope",
            "ingest",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    on_sqlite(&["key", "revoke", revoked["key_id"].as_str().unwrap()]);

    let migrate = |cluster: &Cluster| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
        command
            .current_dir(cluster.directory.path())
            .args([
                "migrate-store",
                "--from",
                &sqlite_url,
                "--to",
                &cluster.database.url,
            ])
            .stdin(Stdio::null());
        for variable in LOGBOOK_VARIABLES {
            command.env_remove(variable);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "migrate-store failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let counts_of = |table: &str| -> Vec<(String, u64, u64)> {
        table
            .lines()
            .skip(1)
            .map(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                (
                    columns[0].to_owned(),
                    columns[1].parse().unwrap(),
                    columns[2].parse().unwrap(),
                )
            })
            .collect()
    };
    let first = counts_of(&migrate(&cluster));
    let demo_events = first
        .iter()
        .find(|(account, _, _)| account == "demo")
        .unwrap()
        .1;
    assert!(demo_events > 100, "the demo history was copied: {first:?}");
    assert!(
        first.iter().all(|(_, source, copied)| source == copied),
        "{first:?}"
    );

    // More history arrives in the embedded database; running again copies only what is new.
    {
        let embedded = cluster.start_node_on(&sqlite_url);
        let mut events: Vec<Value> = (0..50)
            .map(|number| json!({ "action": "user.login", "message": format!("late event {number}") }))
            .collect();
        // An actor with a history of two addresses, for the unfamiliar-IP check after the move.
        for ip in ["198.51.100.7", "198.51.100.8"] {
            events.push(json!({
                "action": "user.login",
                "message": format!("carol from {ip}"),
                "actor": {"id": "carol@demo.example", "type": "user"},
                "ip": ip,
            }));
        }
        let answer = ingest(&client(), &embedded, &key, Value::Array(events)).await;
        assert_eq!(answer.status(), 200);
    }
    let second = counts_of(&migrate(&cluster));
    let demo_now = second
        .iter()
        .find(|(account, _, _)| account == "demo")
        .unwrap();
    assert!(demo_now.1 > demo_events, "{second:?}");
    assert_eq!(demo_now.1, demo_now.2, "{second:?}");
    // The timeline's day counts took every copied event, once, in its day (read as the
    // database's superuser, past row-level security).
    let (owner, connection) = tokio_postgres::connect(&cluster.database.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let differing_days: i64 = owner
        .query_one(
            "SELECT count(*) FROM (SELECT account_row, \
             created_at - (((created_at % 86400000000) + 86400000000) % 86400000000) AS day_start, \
             count(*) AS events FROM events GROUP BY 1, 2) AS stored \
             FULL JOIN event_day_counts AS counted USING (account_row, day_start) \
             WHERE stored.events IS DISTINCT FROM counted.events",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(differing_days, 0, "every day counts its copied events");

    // A node on PostgreSQL accepts the copied key, continues the copied log's seq, and still
    // refuses the key that was revoked before the move.
    let node = cluster.start_node();
    let client = client();
    let answer: Value = ingest(
        &client,
        &node,
        &key,
        json!([{ "action": "user.login", "message": "First event after the move" }]),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        answer["results"][0]["seq"].as_u64(),
        Some(demo_now.1),
        "{answer}"
    );
    let refused = ingest(
        &client,
        &node,
        revoked["key"].as_str().unwrap(),
        json!([{ "action": "user.login", "message": "x" }]),
    )
    .await;
    assert_eq!(refused.status(), 401);
    let page = events_page(
        &client,
        &node,
        &key,
        "/api/v1/events?q=ip:192.0.2.66&limit=5",
    )
    .await;
    assert!(
        !page["events"].as_array().unwrap().is_empty(),
        "the copied events are searchable"
    );

    // Where an actor was seen moved too: an address from before the move is familiar, a new one
    // is flagged.
    let carol_again = |ip: &'static str| {
        json!({
            "action": "user.login",
            "message": format!("carol again from {ip}"),
            "actor": {"id": "carol@demo.example", "type": "user"},
            "ip": ip,
        })
    };
    let answer = ingest(
        &client,
        &node,
        &key,
        // Without the moved history the first of these would count as carol's first address
        // and the second would look new.
        json!([
            carol_again("198.51.100.7"),
            carol_again("198.51.100.8"),
            carol_again("203.0.113.77")
        ]),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let page = events_page(
        &client,
        &node,
        &key,
        "/api/v1/events?q=actor:carol@demo.example&limit=10",
    )
    .await;
    let new_ip_by_message: std::collections::BTreeMap<String, bool> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["message"].as_str().unwrap().to_owned(),
                event["new_ip"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    for familiar in ["198.51.100.7", "198.51.100.8"] {
        assert_eq!(
            new_ip_by_message.get(&format!("carol again from {familiar}")),
            Some(&false),
            "{page}"
        );
    }
    assert_eq!(
        new_ip_by_message.get("carol again from 203.0.113.77"),
        Some(&true),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_unused_recovery_codes_and_pending_invitations_once() {
    use logbook_core::people::{InvitationRecord, NewUser, Role};
    use logbook_core::{AccountId, Clock, Store, SystemClock};

    let Some(cluster) = Cluster::new().await else {
        return;
    };
    let sqlite_path = cluster.directory.path().join("embedded.db");
    let account = AccountId::parse("acme").unwrap();
    let now = SystemClock.now();
    let code_hashes = [[1_u8; 32], [2; 32], [3; 32]];
    let invitation = |email: &str, expires_at: time::OffsetDateTime| InvitationRecord {
        account: account.clone(),
        email: email.to_owned(),
        role: Role::Member,
        invited_by: "owner@example.com".to_owned(),
        created_at: now,
        expires_at,
    };
    {
        let source = logbook_store_sqlite::SqliteStore::open(
            &sqlite_path,
            logbook_store_sqlite::SqliteOptions::default(),
        )
        .unwrap();
        source.create_account(&account, now).await.unwrap();
        source
            .accounts()
            .set_display_name(&account, Some("Copied Corp"))
            .await
            .unwrap();
        source
            .accounts()
            .set_ingest_enabled(&account, false)
            .await
            .unwrap();
        let people = source.people();
        people
            .create_user(NewUser {
                user_id: "usr_owner".to_owned().into(),
                account: account.clone(),
                email: "owner@example.com".to_owned(),
                role: Role::Owner,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
                created_at: now,
            })
            .await
            .unwrap();
        people
            .set_totp(
                &"usr_owner".into(),
                Some((b"secret".to_vec(), code_hashes.to_vec())),
            )
            .await
            .unwrap();
        assert!(
            people
                .use_recovery_code(&"usr_owner".into(), &code_hashes[1], now)
                .await
                .unwrap()
        );
        let hour = time::Duration::hours(1);
        people
            .create_invitation([10; 32], invitation("pending@example.com", now + hour))
            .await
            .unwrap();
        people
            .create_invitation([11; 32], invitation("expired@example.com", now - hour))
            .await
            .unwrap();
        people
            .create_invitation([12; 32], invitation("accepted@example.com", now + hour))
            .await
            .unwrap();
        assert!(
            people
                .take_invitation(&[12; 32], now)
                .await
                .unwrap()
                .is_some()
        );
        source.shutdown().await;
    }

    // Twice: the second run must find everything there and copy nothing twice.
    for _ in 0..2 {
        let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
        command
            .current_dir(cluster.directory.path())
            .args([
                "migrate-store",
                "--from",
                &format!("sqlite://{}", sqlite_path.display()),
                "--to",
                &cluster.database.url,
            ])
            .stdin(Stdio::null());
        for variable in LOGBOOK_VARIABLES {
            command.env_remove(variable);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "migrate-store failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let destination = logbook_store_postgres::PostgresStore::connect(
        &cluster.database.url,
        logbook_store_postgres::PostgresOptions::default(),
    )
    .await
    .unwrap();
    let settings = destination
        .accounts()
        .account_settings(&account)
        .await
        .unwrap()
        .expect("the account was copied");
    assert_eq!(settings.display_name.as_deref(), Some("Copied Corp"));
    assert!(!settings.ingest_enabled, "the ingest switch was copied");
    let people = destination.people();
    assert_eq!(
        people
            .list_unused_recovery_codes(&"usr_owner".into())
            .await
            .unwrap(),
        vec![code_hashes[0], code_hashes[2]],
        "the unused codes were copied and the used one was not"
    );
    assert!(
        people
            .use_recovery_code(&"usr_owner".into(), &code_hashes[2], now)
            .await
            .unwrap(),
        "a copied code signs in on PostgreSQL"
    );
    let pending = people
        .list_pending_invitations(&account, now)
        .await
        .unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|(token_hash, record)| (*token_hash, record.email.as_str()))
            .collect::<Vec<_>>(),
        vec![([10; 32], "pending@example.com")]
    );
    let accepted = people.take_invitation(&[10; 32], now).await.unwrap();
    assert_eq!(
        accepted.map(|record| record.email),
        Some("pending@example.com".to_owned())
    );
    destination.shutdown().await;
}
