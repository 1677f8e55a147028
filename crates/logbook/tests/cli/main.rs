//! The `logbook` binary as a person or a script uses it: every test runs the built binary in a
//! temporary directory, and the tests that need a server start `logbook serve` on port 0 and
//! learn its address from the `listening on http://ADDR` line. Servers are killed by a guard when
//! a test ends, however it ends.
#![cfg(unix)]

mod geoip;
#[path = "../../../logbook-server/tests/ip_database_writer/writer.rs"]
mod ip_database_writer;
mod limits;
mod single_sign_on;
mod verify;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// Variables a developer's shell may hold that would change what the binary does.
const LOGBOOK_VARIABLES: &[&str] = &[
    "LOGBOOK_CONFIG",
    "LOGBOOK_DATA_DIR",
    "LOGBOOK_DATABASE",
    "LOGBOOK_LISTEN",
    "LOGBOOK_LOG_FORMAT",
    "LOGBOOK_LOG",
    "LOGBOOK_SERVER",
    "LOGBOOK_KEY",
    "LOGBOOK_MAX_BODY_BYTES",
    "LOGBOOK_MAX_EVENTS_PER_REQUEST",
];

/// A temporary working directory with a data directory inside it.
struct Workspace {
    directory: TempDir,
}

impl Workspace {
    fn new() -> Self {
        Self {
            directory: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn path(&self) -> &Path {
        self.directory.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// `logbook` with a clean environment, run in the workspace.
    fn logbook(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
        command.current_dir(self.path()).stdin(Stdio::null());
        for variable in LOGBOOK_VARIABLES {
            command.env_remove(variable);
        }
        command
    }

    /// `logbook` with `--data-dir` given after the subcommand's arguments.
    fn on_data(&self, arguments: &[&str]) -> Command {
        let mut command = self.logbook();
        command
            .args(arguments)
            .arg("--data-dir")
            .arg(self.data_dir());
        command
    }

    fn create_account(&self, account: &str) {
        succeed(&mut self.on_data(&["account", "create", account]));
    }

    fn create_key(&self, account: &str, scopes: &str) -> String {
        let output =
            succeed(&mut self.on_data(&["key", "create", "--account", account, "--scope", scopes]));
        stdout_of(&output)
            .lines()
            .next()
            .expect("the key is printed")
            .to_owned()
    }

    fn start_server(&self) -> ServerGuard {
        ServerGuard::start(
            self.logbook()
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(self.data_dir()),
        )
    }

    /// An ingest key of acme made through the management API of `server`.
    fn create_key_over_http(&self, server: &ServerGuard, admin_key: &str) -> String {
        let output = succeed(&mut self.client(
            server,
            admin_key,
            &["key", "create", "--account", "acme", "--scope", "ingest"],
        ));
        stdout_of(&output).trim().to_owned()
    }

    /// A client command pointed at `server` with `key`.
    fn client(&self, server: &ServerGuard, key: &str, arguments: &[&str]) -> Command {
        let mut command = self.logbook();
        command
            .args(arguments)
            .args(["--server", &server.base_url])
            .env("LOGBOOK_KEY", key);
        command
    }
}

/// A running `logbook serve`, killed and reaped when dropped.
struct ServerGuard {
    child: Option<Child>,
    base_url: String,
    /// The lines `serve` printed after the listening line, as they come.
    later_lines: mpsc::Receiver<String>,
}

impl ServerGuard {
    fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("logbook serve starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            // Every line goes to the test (which may ignore them); reading on keeps the server
            // from ever blocking on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let (_, no_lines) = mpsc::channel();
        let mut guard = Self {
            child: Some(child),
            base_url: String::new(),
            later_lines: no_lines,
        };
        let line = match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let output = guard.child.take().map(|mut child| {
                    let _ = child.kill();
                    child.wait_with_output().expect("server output")
                });
                panic!(
                    "serve printed no listening line; stderr: {}",
                    output.map(|output| stderr_of(&output)).unwrap_or_default()
                );
            }
        };
        let address = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        guard.base_url = address.to_owned();
        guard.later_lines = receiver;
        guard
    }

    /// The next line `serve` prints, waiting at most `timeout`.
    fn next_line(&self, timeout: Duration) -> Option<String> {
        self.later_lines.recv_timeout(timeout).ok()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Sends SIGTERM and waits for the server to exit; returns its exit status and stderr.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let child = self.child.take().expect("server is running");
        let output = wait_with_timeout(child, Duration::from_secs(30));
        (output.status, stderr_of(&output))
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "process did not exit in time; stderr: {}",
                stderr_of(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeed(command: &mut Command) -> Output {
    let output = command.output().expect("logbook runs");
    assert!(
        output.status.success(),
        "{command:?} failed with {}: stdout {} stderr {}",
        output.status,
        stdout_of(&output),
        stderr_of(&output)
    );
    output
}

fn fail(command: &mut Command) -> Output {
    let output = command.output().expect("logbook runs");
    assert_eq!(
        output.status.code(),
        Some(1),
        "{command:?} should fail with 1: stdout {} stderr {}",
        stdout_of(&output),
        stderr_of(&output)
    );
    output
}

fn with_stdin(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("logbook runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("stdin written");
    child.wait_with_output().expect("output")
}

fn ndjson(output: &Output) -> Vec<Value> {
    stdout_of(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

#[test]
fn data_dir_is_accepted_before_and_after_the_subcommand() {
    let workspace = Workspace::new();
    succeed(
        workspace
            .logbook()
            .arg("--data-dir")
            .arg(workspace.data_dir())
            .args(["account", "create", "acme"]),
    );
    let output = succeed(
        workspace
            .logbook()
            .args(["account", "list", "--json", "--data-dir"])
            .arg(workspace.data_dir()),
    );
    let accounts: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(accounts[0]["account"], "acme");
    assert_eq!(accounts[0]["event_count"], 0);
}

#[test]
fn creating_an_account_twice_is_an_error() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let output = fail(&mut workspace.on_data(&["account", "create", "acme"]));
    assert!(
        stderr_of(&output).contains("error: account acme already exists"),
        "{}",
        stderr_of(&output)
    );
    let output = fail(&mut workspace.on_data(&["account", "create", "Not Valid"]));
    assert!(stderr_of(&output).contains("invalid account name"));
}

#[test]
fn a_created_key_is_printed_once_and_listed_without_its_secret() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let key = workspace.create_key("acme", "ingest,read");
    assert!(key.starts_with("lbk_") && key.len() == 32, "{key:?}");

    let output = succeed(&mut workspace.on_data(&["key", "list", "--json"]));
    let listing = stdout_of(&output);
    assert!(
        !listing.contains(&key),
        "key list shows the secret: {listing}"
    );
    let keys: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["account"], "acme");
    assert_eq!(keys[0]["scopes"], serde_json::json!(["ingest", "read"]));
    assert!(key.starts_with(keys[0]["prefix"].as_str().unwrap()));
    assert!(keys[0]["revoked_at"].is_null());

    let key_id = keys[0]["key_id"].as_str().unwrap().to_owned();
    succeed(&mut workspace.on_data(&["key", "revoke", &key_id]));
    let output = succeed(&mut workspace.on_data(&["key", "list", "--account", "acme", "--json"]));
    let keys: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert!(keys[0]["revoked_at"].is_string(), "{keys}");
    assert_eq!(keys[0]["active"], false);

    let output = fail(&mut workspace.on_data(&["key", "revoke", "key_doesnotexist"]));
    assert!(stderr_of(&output).contains("no key with id"));
}

#[test]
fn key_create_json_holds_the_key_and_platform_keys_need_no_account() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let output = succeed(&mut workspace.on_data(&[
        "key",
        "create",
        "--platform",
        "--scope",
        "ingest",
        "--json",
        "--description",
        "edge",
    ]));
    let created: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert!(created["key"].as_str().unwrap().starts_with("lbk_"));
    assert_eq!(created["owner"], "platform");
    assert_eq!(created["description"], "edge");
}

#[test]
fn a_key_for_an_unknown_account_is_refused_clearly() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let output =
        fail(&mut workspace.on_data(&["key", "create", "--account", "ghost", "--scope", "read"]));
    assert!(
        stderr_of(&output).contains("account ghost does not exist"),
        "{}",
        stderr_of(&output)
    );
    assert!(stdout_of(&output).is_empty());
}

#[test]
fn the_default_config_file_round_trips_to_the_defaults() {
    let workspace = Workspace::new();
    let output = succeed(workspace.logbook().args(["config", "default"]));
    let file = workspace.path().join("logbook.toml");
    std::fs::write(&file, stdout_of(&output)).unwrap();
    let with_file = succeed(
        workspace
            .logbook()
            .args(["config", "show", "--config"])
            .arg(&file),
    );
    let without_file = succeed(workspace.logbook().args(["config", "show"]));
    assert_eq!(stdout_of(&with_file), stdout_of(&without_file));
    assert!(stdout_of(&with_file).contains("listen = \"127.0.0.1:8080\""));
}

#[test]
fn the_environment_overrides_the_file_and_a_flag_overrides_the_environment() {
    let workspace = Workspace::new();
    let file = workspace.path().join("logbook.toml");
    std::fs::write(
        &file,
        "data_dir = \"/from/file\"\nlisten = \"127.0.0.1:1111\"\n[ingest]\nmax_body_bytes = 1000\n",
    )
    .unwrap();
    let show = |extra: &[&str], environment: &[(&str, &str)]| {
        let mut command = workspace.logbook();
        command
            .args(["config", "show"])
            .args(extra)
            .env("LOGBOOK_CONFIG", &file);
        for (name, value) in environment {
            command.env(name, value);
        }
        let config: toml::Table = toml::from_str(&stdout_of(&succeed(&mut command))).unwrap();
        config
    };
    let from_file = show(&[], &[]);
    assert_eq!(from_file["data_dir"].as_str(), Some("/from/file"));
    assert_eq!(
        from_file["ingest"]["max_body_bytes"].as_integer(),
        Some(1000)
    );

    let environment = [
        ("LOGBOOK_DATA_DIR", "/from/env"),
        ("LOGBOOK_LISTEN", "127.0.0.1:2222"),
        ("LOGBOOK_MAX_BODY_BYTES", "2000"),
    ];
    let from_environment = show(&[], &environment);
    assert_eq!(from_environment["data_dir"].as_str(), Some("/from/env"));
    assert_eq!(from_environment["listen"].as_str(), Some("127.0.0.1:2222"));
    assert_eq!(
        from_environment["ingest"]["max_body_bytes"].as_integer(),
        Some(2000)
    );

    let from_flag = show(&["--data-dir", "/from/flag"], &environment);
    assert_eq!(from_flag["data_dir"].as_str(), Some("/from/flag"));
    assert_eq!(from_flag["listen"].as_str(), Some("127.0.0.1:2222"));
}

#[test]
fn an_unreachable_postgres_database_is_reported_without_its_password() {
    let workspace = Workspace::new();
    // Port 1 on this machine refuses connections at once.
    let output = fail(workspace.logbook().args([
        "account",
        "list",
        "--database",
        "postgres://logbook:secret@127.0.0.1:1/logbook",
    ]));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("could not open the PostgreSQL database"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[test]
fn usage_errors_exit_with_2_and_client_commands_need_logbook_key() {
    let workspace = Workspace::new();
    let output = workspace
        .logbook()
        .args(["account", "frobnicate"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = fail(workspace.logbook().args([
        "query",
        "action:user.login",
        "--server",
        "http://127.0.0.1:9",
    ]));
    assert!(
        stderr_of(&output).contains("LOGBOOK_KEY is not set"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn a_second_serve_on_the_same_data_dir_refuses_while_the_first_runs() {
    let workspace = Workspace::new();
    let _first = workspace.start_server();
    let output = fail(
        workspace
            .logbook()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(workspace.data_dir()),
    );
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("another logbook is already serving data directory"),
        "{stderr}"
    );
    assert!(
        stdout_of(&output).is_empty(),
        "the second serve must not claim to listen"
    );
}

#[test]
fn sigterm_makes_serve_exit_zero_and_releases_the_data_dir() {
    let workspace = Workspace::new();
    let server = workspace.start_server();
    let (status, stderr) = server.terminate();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    // The lock went with the process: a new server starts on the same directory.
    let again = workspace.start_server();
    assert!(again.base_url.starts_with("http://127.0.0.1:"));
}

#[test]
fn key_list_shows_when_a_key_was_last_used_once_the_server_wrote_it() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let key = workspace.create_key("acme", "ingest");
    let output = succeed(&mut workspace.on_data(&["key", "list"]));
    let listing = stdout_of(&output);
    assert!(listing.contains("LAST USED"), "{listing}");
    assert!(listing.contains("never"), "{listing}");

    let server = workspace.start_server();
    succeed(&mut workspace.client(
        &server,
        &key,
        &["send", "--action", "server.reboot", "--message", "Rebooted"],
    ));
    let (status, stderr) = server.terminate();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");

    let output = succeed(&mut workspace.on_data(&["key", "list", "--json"]));
    let keys: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    let last_used_at = keys[0]["last_used_at"]
        .as_str()
        .unwrap_or_else(|| panic!("a stopping server writes the last use: {keys}"));
    assert!(
        time::OffsetDateTime::parse(last_used_at, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{last_used_at}"
    );
    let output = succeed(&mut workspace.on_data(&["key", "list"]));
    assert!(
        stdout_of(&output).contains(last_used_at),
        "the table shows the same time"
    );
}

#[test]
fn events_sent_through_the_cli_come_back_from_query_and_export() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let key = workspace.create_key("acme", "ingest,read");
    let server = workspace.start_server();

    let output = succeed(&mut workspace.client(
        &server,
        &key,
        &[
            "send",
            "--action",
            "server.reboot",
            "--message",
            "Rebooted server web-1",
            "--actor",
            "alice@acme.com",
            "--ip",
            "203.0.113.9",
            "--key",
            "reboot-1",
        ],
    ));
    let event_id = stdout_of(&output).trim().to_owned();
    // The same idempotency key again stores nothing new.
    let output = succeed(&mut workspace.client(
        &server,
        &key,
        &[
            "send",
            "--action",
            "server.reboot",
            "--message",
            "Rebooted server web-1",
            "--actor",
            "alice@acme.com",
            "--ip",
            "203.0.113.9",
            "--key",
            "reboot-1",
            "--json",
        ],
    ));
    let answer: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(answer["duplicate"], true);
    assert_eq!(answer["id"], event_id.as_str());

    let input = "{\"action\":\"user.login\",\"message\":\"Alice logged in\",\"actor\":{\"id\":\"alice@acme.com\"},\"outcome\":\"success\"}\n\
                 {\"action\":\"dns.record.update\",\"message\":\"=HYPERLINK(\\\"x\\\")\",\"key\":\"dns-1\"}\n";
    let output = with_stdin(
        &mut workspace.client(&server, &key, &["send", "-", "--json"]),
        input,
    );
    assert!(output.status.success(), "{}", stderr_of(&output));
    let tally: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(
        (tally["accepted"].as_u64(), tally["rejected"].as_u64()),
        (Some(2), Some(0))
    );

    let output = succeed(&mut workspace.client(&server, &key, &["query", "--json"]));
    let events = ndjson(&output);
    assert_eq!(events.len(), 3);
    assert_eq!(
        events
            .iter()
            .filter(|event| event["id"] == event_id.as_str())
            .count(),
        1
    );
    let logins = ndjson(&succeed(&mut workspace.client(
        &server,
        &key,
        &["query", "action:user.login", "--json"],
    )));
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["actor"]["id"], "alice@acme.com");
    assert!(
        logins[0]["key"].as_str().is_some_and(|key| key.len() == 36),
        "the CLI gave the event a UUID key: {}",
        logins[0]
    );

    let paged = ndjson(&succeed(&mut workspace.client(
        &server,
        &key,
        &["query", "--limit", "1", "--all", "--json"],
    )));
    assert_eq!(paged.len(), 3);

    let csv_path = workspace.path().join("export.csv");
    succeed(&mut workspace.client(
        &server,
        &key,
        &[
            "export",
            "--format",
            "csv",
            "--output",
            csv_path.to_str().unwrap(),
        ],
    ));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.lines().next().unwrap().starts_with("seq,id,"), "{csv}");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.contains("'=HYPERLINK"),
        "formula cells are defused: {csv}"
    );

    let output = succeed(&mut workspace.client(&server, &key, &["export", "action:server.reboot"]));
    let exported = ndjson(&output);
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["id"], event_id.as_str());
}

#[test]
fn send_file_reports_the_invalid_lines_stores_the_valid_ones_and_exits_non_zero() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let key = workspace.create_key("acme", "ingest,read");
    let server = workspace.start_server();
    let file = workspace.path().join("events.ndjson");
    std::fs::write(
        &file,
        "{\"action\":\"server.create\",\"message\":\"Created server web-1\"}\n\
         {\"action\":\"server.create\",\"message\":\"Created server web-2\",\"ip\":\"not-an-ip\"}\n\
         \n\
         {this is not json\n\
         {\"action\":\"server.create\",\"message\":\"Created server web-3\"}\n",
    )
    .unwrap();
    let output = fail(&mut workspace.client(
        &server,
        &key,
        &[
            "send",
            "--file",
            file.to_str().unwrap(),
            "--batch-size",
            "2",
        ],
    ));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("line 2: ") && stderr.contains("(field /ip)"),
        "{stderr}"
    );
    assert!(stderr.contains("line 4: invalid_json"), "{stderr}");
    assert!(
        stderr.contains("2 accepted") && stderr.contains("2 rejected"),
        "{stderr}"
    );
    assert!(
        stderr.find("line 2: ") < stderr.find("line 4: "),
        "rejections are reported in line order: {stderr}"
    );

    let stored = ndjson(&succeed(&mut workspace.client(
        &server,
        &key,
        &["query", "--json"],
    )));
    let mut messages: Vec<&str> = stored
        .iter()
        .map(|event| event["message"].as_str().unwrap())
        .collect();
    messages.sort_unstable();
    assert_eq!(messages, ["Created server web-1", "Created server web-3"]);
}

#[test]
fn server_errors_are_shown_with_code_message_and_field() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let key = workspace.create_key("acme", "ingest,read");
    let server = workspace.start_server();
    let output = fail(&mut workspace.client(&server, &key, &["query", "colour:blue"]));
    let stderr = stderr_of(&output);
    assert!(stderr.starts_with("error: invalid_query: "), "{stderr}");
    assert!(stderr.contains("(field q)"), "{stderr}");
    let output =
        fail(&mut workspace.client(&server, "lbk_aaaaaaaaaaaaaaaaaaaaaaaaaaaa", &["query"]));
    assert!(
        stderr_of(&output).starts_with("error: "),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn hostile_message_text_is_shown_escaped_in_the_query_table() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let key = workspace.create_key("acme", "ingest,read");
    let server = workspace.start_server();
    let hostile = "Rebooted \u{1b}[2J\u{1b}[31mweb-1\r\u{202e}gnp.exe";
    succeed(&mut workspace.client(
        &server,
        &key,
        &["send", "--action", "server.reboot", "--message", hostile],
    ));
    let output = succeed(&mut workspace.client(&server, &key, &["query"]));
    let table = stdout_of(&output);
    assert!(
        !table.contains('\u{1b}') && !table.contains('\r') && !table.contains('\u{202e}'),
        "{table:?}"
    );
    assert!(
        table.contains("Rebooted \\e[2J\\e[31mweb-1\\r\\u{202E}gnp.exe"),
        "{table}"
    );
    // The stored text itself is untouched.
    let events = ndjson(&succeed(&mut workspace.client(
        &server,
        &key,
        &["query", "--json"],
    )));
    assert_eq!(events[0]["message"], hostile);
}

#[test]
fn demo_history_can_be_queried_through_the_server() {
    let workspace = Workspace::new();
    let output = succeed(&mut workspace.on_data(&["demo", "--account", "demo", "--events", "400"]));
    assert_eq!(stdout_of(&output).trim(), "400");
    assert!(
        stderr_of(&output).contains("logbook key create --account demo"),
        "{}",
        stderr_of(&output)
    );
    // A demo owner is made once, with a password printed once, so the page opens at once.
    let stderr = stderr_of(&output);
    let password = stderr
        .split("sign in at ")
        .nth(1)
        .and_then(|rest| rest.split(" with the password ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no demo owner in {stderr}"));
    assert!(stderr.contains("as owner@demo.example"), "{stderr}");
    assert_eq!(password.len(), 24, "{stderr}");
    let again = succeed(&mut workspace.on_data(&["demo", "--account", "demo", "--events", "400"]));
    assert!(
        !stderr_of(&again).contains("with the password"),
        "only once"
    );
    let key = workspace.create_key("demo", "read");
    let server = workspace.start_server();

    let table = stdout_of(&succeed(&mut workspace.client(
        &server,
        &key,
        &["query", "ip:192.0.2.66"],
    )));
    assert!(
        table.contains("ssh_key.add") && table.contains("user.login (failed)"),
        "{table}"
    );
    let events = ndjson(&succeed(&mut workspace.client(
        &server,
        &key,
        &["query", "--all", "--limit", "1000", "--json"],
    )));
    assert_eq!(events.len(), 400);
    for action in [
        "firewall.rule.update",
        "dns.record.update",
        "server.create",
        "server.delete",
        "api_key.use",
    ] {
        assert!(
            events.iter().any(|event| event["action"] == action),
            "no {action}"
        );
    }
    assert!(
        events
            .iter()
            .any(|event| event["action"] == "dns.record.update"
                && event["changes"][0]["old"].is_string())
    );
}

#[test]
fn backup_while_serving_writes_a_database_that_account_list_can_read() {
    let workspace = Workspace::new();
    succeed(&mut workspace.on_data(&["demo", "--account", "demo", "--events", "50"]));
    let _server = workspace.start_server();
    let backup = workspace.path().join("backup.db");
    succeed(&mut workspace.on_data(&["backup", backup.to_str().unwrap()]));
    let output = succeed(
        workspace
            .logbook()
            .args(["account", "list", "--json", "--database"])
            .arg(format!("sqlite://{}", backup.display())),
    );
    let accounts: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(accounts[0]["account"], "demo");
    assert_eq!(accounts[0]["event_count"], 50);
    let output = fail(&mut workspace.on_data(&["backup", backup.to_str().unwrap()]));
    assert!(stderr_of(&output).contains("already exists"));
}

#[test]
fn tail_prints_events_as_they_arrive() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let key = workspace.create_key("acme", "ingest,read");
    let server = workspace.start_server();
    let mut tail = workspace
        .client(&server, &key, &["tail", "--json", "action:server.*"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tail starts");
    let stdout = tail.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    // The tail may connect after the first send; keep sending until it shows one, within bounds.
    let mut received = None;
    for attempt in 0..40 {
        let message = format!("Rebooted server web-{attempt}");
        succeed(&mut workspace.client(
            &server,
            &key,
            &[
                "send",
                "--action",
                "user.login",
                "--message",
                "ignored by the filter",
            ],
        ));
        succeed(&mut workspace.client(
            &server,
            &key,
            &["send", "--action", "server.reboot", "--message", &message],
        ));
        if let Ok(line) = receiver.recv_timeout(Duration::from_millis(500)) {
            received = Some(line);
            break;
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    let line = received.expect("tail printed an event");
    let event: Value = serde_json::from_str(&line).expect("tail --json prints JSON");
    assert_eq!(event["action"], "server.reboot");
}

#[test]
fn send_retries_until_the_server_can_be_reached() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let key = workspace.create_key("acme", "ingest,read");
    // Learn a free port, then start the server on it only after `send` has begun failing.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut send = workspace
        .logbook()
        .args([
            "send",
            "--action",
            "server.reboot",
            "--message",
            "Rebooted web-1",
            "--server",
            &format!("http://{address}"),
        ])
        .env("LOGBOOK_KEY", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("send starts");
    std::thread::sleep(Duration::from_millis(700));
    let server = ServerGuard::start(
        workspace
            .logbook()
            .args(["serve", "--listen", &address, "--data-dir"])
            .arg(workspace.data_dir()),
    );
    let output = {
        drop(send.stdin.take());
        wait_with_timeout(send, Duration::from_secs(60))
    };
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("retrying in"),
        "{}",
        stderr_of(&output)
    );
    let events = ndjson(&succeed(&mut workspace.client(
        &server,
        &key,
        &["query", "--json"],
    )));
    assert_eq!(events.len(), 1);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let workspace = Workspace::new();
    let server = ServerGuard::start(
        workspace
            .logbook()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(workspace.data_dir()),
    );
    let (status, stderr) = server.terminate();
    assert_eq!(status.code(), Some(0));
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let log: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(log["level"].is_string(), "{log}");
    }
}

#[test]
fn retention_periods_and_legal_holds_are_set_shown_and_refused_clearly_from_the_cli() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let output = succeed(&mut workspace.on_data(&[
        "retention",
        "set",
        "--account",
        "acme",
        "--days",
        "90",
        "--by",
        "ops@platform.example",
    ]));
    assert!(stdout_of(&output).contains("acme keeps its events 90 days"));
    succeed(&mut workspace.on_data(&[
        "retention",
        "hold",
        "--account",
        "acme",
        "--reason",
        "litigation 2026-17",
        "--by",
        "counsel@acme.example",
    ]));
    let shown =
        succeed(&mut workspace.on_data(&["retention", "show", "--account", "acme", "--json"]));
    let shown: Value = serde_json::from_str(&stdout_of(&shown)).unwrap();
    assert_eq!(shown["retention_days"], 90);
    assert_eq!(shown["legal_hold"]["reason"], "litigation 2026-17");
    assert_eq!(shown["legal_hold"]["set_by"], "counsel@acme.example");
    assert_eq!(shown["pruned_below_seq"], 0);
    // A period out of bounds, an empty reason and a missing `--by` change nothing.
    for arguments in [
        &[
            "retention",
            "set",
            "--account",
            "acme",
            "--days",
            "0",
            "--by",
            "ops",
        ][..],
        &[
            "retention",
            "set",
            "--account",
            "acme",
            "--days",
            "99999",
            "--by",
            "ops",
        ][..],
        &[
            "retention",
            "release",
            "--account",
            "acme",
            "--reason",
            " ",
            "--by",
            "ops",
        ][..],
        &[
            "retention",
            "set",
            "--account",
            "nobody",
            "--days",
            "5",
            "--by",
            "ops",
        ][..],
    ] {
        fail(&mut workspace.on_data(arguments));
    }
    let shown =
        succeed(&mut workspace.on_data(&["retention", "show", "--account", "acme", "--json"]));
    let shown: Value = serde_json::from_str(&stdout_of(&shown)).unwrap();
    assert_eq!(shown["retention_days"], 90);
    assert_eq!(shown["legal_hold"]["reason"], "litigation 2026-17");
    succeed(&mut workspace.on_data(&[
        "retention",
        "release",
        "--account",
        "acme",
        "--reason",
        "case closed",
        "--by",
        "counsel@acme.example",
    ]));
    let shown = stdout_of(&succeed(&mut workspace.on_data(&[
        "retention",
        "show",
        "--account",
        "acme",
    ])));
    assert!(
        shown.contains("retention: 90 days (the account's own)"),
        "{shown}"
    );
    assert!(shown.contains("legal hold: none"), "{shown}");
}

#[test]
fn a_persons_personal_data_is_erased_from_the_cli_and_the_log_still_verifies() {
    let workspace = Workspace::new();
    succeed(&mut workspace.on_data(&["demo", "--account", "demo", "--events", "200"]));
    let declared = succeed(&mut workspace.on_data(&[
        "retention",
        "personal-fields",
        "--account",
        "demo",
        "--field",
        "email",
        "--by",
        "dpo@platform.example",
    ]));
    assert!(
        stdout_of(&declared).contains("demo declares 1 personal metadata fields: email"),
        "{}",
        stdout_of(&declared)
    );
    let erased = stdout_of(&succeed(&mut workspace.on_data(&[
        "retention",
        "erase",
        "--account",
        "demo",
        "--actor",
        "bob@example.com",
        "--reason",
        "erasure request 113",
        "--by",
        "dpo@demo.example",
    ])));
    assert!(
        erased.starts_with("erased the personal data of bob@example.com from "),
        "{erased}"
    );
    // An unknown person, a missing reason and an unknown account change nothing.
    for arguments in [
        &[
            "retention",
            "erase",
            "--account",
            "demo",
            "--actor",
            "mallory@example.com",
            "--reason",
            "a request",
            "--by",
            "dpo",
        ][..],
        &[
            "retention",
            "erase",
            "--account",
            "demo",
            "--actor",
            "bob@example.com",
            "--reason",
            " ",
            "--by",
            "dpo",
        ][..],
        &[
            "retention",
            "erase",
            "--account",
            "nobody",
            "--actor",
            "bob@example.com",
            "--reason",
            "a request",
            "--by",
            "dpo",
        ][..],
    ] {
        let output = fail(&mut workspace.on_data(arguments));
        assert!(!stderr_of(&output).is_empty());
    }
    let unknown = fail(&mut workspace.on_data(&[
        "retention",
        "erase",
        "--account",
        "demo",
        "--actor",
        "mallory@example.com",
        "--reason",
        "a request",
        "--by",
        "dpo",
    ]));
    assert!(
        stderr_of(&unknown).contains("no event of demo has actor.id mallory@example.com"),
        "{}",
        stderr_of(&unknown)
    );
    // The local signing key (made by `checkpoint-key`) checks the database's checkpoints.
    succeed(&mut workspace.on_data(&["checkpoint-key"]));
    let verified = stdout_of(&succeed(&mut workspace.on_data(&["verify"])));
    // 200 demo events, the declaration and the erasure.
    assert!(
        verified.starts_with("ok: 1 accounts, 202 events"),
        "{verified}"
    );
    assert!(
        verified.contains("events had personal fields removed (aging or erasure)"),
        "{verified}"
    );
    let shown = stdout_of(&succeed(&mut workspace.on_data(&[
        "retention",
        "show",
        "--account",
        "demo",
    ])));
    assert!(shown.contains("personal metadata fields: email"), "{shown}");
    assert!(
        shown.contains("personal data: kept as long as the event"),
        "{shown}"
    );
}

#[test]
fn serve_prints_a_one_time_setup_link_until_somebody_can_sign_in() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let server = workspace.start_server();
    let line = server
        .next_line(Duration::from_secs(10))
        .expect("serve says how to sign in");
    let prefix = format!("nobody can sign in yet: open {}/setup/", server.base_url);
    let token = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    assert_eq!(token.len(), 64, "{line}");
    let page = http_get(&server.base_url, &format!("/setup/{token}"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("value=\"acme\""),
        "the only account is proposed: {page}"
    );
    drop(server);

    // Once a person exists, serve prints no link.
    let added = with_stdin(
        &mut workspace.on_data(&[
            "user",
            "add",
            "--account",
            "acme",
            "--email",
            "owner@acme.com",
            "--role",
            "owner",
            "--password-stdin",
        ]),
        "correct horse battery staple\n",
    );
    assert!(added.status.success(), "{}", stderr_of(&added));
    let server = workspace.start_server();
    assert_eq!(server.next_line(Duration::from_secs(2)), None);
}

/// A plain HTTP/1.1 GET of `path` on `base_url` (`http://host:port`): the whole answer as text.
fn http_get(base_url: &str, path: &str) -> String {
    use std::io::Read;
    let address = base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("the server accepts");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("the answer is read");
    answer
}

#[test]
fn account_and_key_commands_print_the_same_on_the_database_and_over_the_management_api() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    workspace.create_key("acme", "ingest");
    let admin_key = {
        let output =
            succeed(&mut workspace.on_data(&["key", "create", "--platform", "--scope", "admin"]));
        stdout_of(&output).trim().to_owned()
    };
    let on_database = |arguments: &[&str]| stdout_of(&succeed(&mut workspace.on_data(arguments)));
    let accounts_on_database = on_database(&["account", "list", "--json"]);
    let accounts_table_on_database = on_database(&["account", "list"]);
    let keys_on_database = on_database(&["key", "list", "--account", "acme", "--json"]);
    let keys_table_on_database = on_database(&["key", "list", "--account", "acme"]);

    let server = workspace.start_server();
    let over_http = |arguments: &[&str]| {
        stdout_of(&succeed(
            &mut workspace.client(&server, &admin_key, arguments),
        ))
    };
    assert_eq!(
        over_http(&["account", "list", "--json"]),
        accounts_on_database
    );
    assert_eq!(over_http(&["account", "list"]), accounts_table_on_database);
    assert_eq!(
        over_http(&["key", "list", "--account", "acme", "--json"]),
        keys_on_database
    );
    assert_eq!(
        over_http(&["key", "list", "--account", "acme"]),
        keys_table_on_database
    );

    assert_eq!(over_http(&["account", "create", "globex"]).trim(), "globex");
    let again = fail(&mut workspace.client(&server, &admin_key, &["account", "create", "globex"]));
    assert!(
        stderr_of(&again).contains("already exists"),
        "{}",
        stderr_of(&again)
    );

    let created: Value = serde_json::from_str(&over_http(&[
        "key",
        "create",
        "--account",
        "globex",
        "--scope",
        "ingest,read",
        "--json",
    ]))
    .unwrap();
    let secret = created["key"].as_str().unwrap();
    assert!(secret.starts_with("lbk_"));
    assert_eq!(created["scopes"], serde_json::json!(["ingest", "read"]));
    let listed = over_http(&["key", "list", "--account", "globex", "--json"]);
    assert!(!listed.contains(secret), "a list never shows the secret");
    let key_id = created["key_id"].as_str().unwrap();
    assert_eq!(
        over_http(&["key", "revoke", key_id, "--account", "globex"]).trim(),
        key_id
    );

    // Without --account the management API cannot tell which account's keys are meant.
    let unnamed = fail(&mut workspace.client(&server, &admin_key, &["key", "list"]));
    assert!(
        stderr_of(&unnamed).contains("--account"),
        "{}",
        stderr_of(&unnamed)
    );
    // A key without the admin scope is refused with the server's own error.
    let ingest_only = workspace.create_key_over_http(&server, &admin_key);
    let refused = fail(&mut workspace.client(&server, &ingest_only, &["account", "list"]));
    assert!(
        stderr_of(&refused).contains("forbidden"),
        "{}",
        stderr_of(&refused)
    );
}

#[test]
fn user_and_limits_commands_print_the_same_on_the_database_and_over_the_management_api() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let added = with_stdin(
        &mut workspace.on_data(&[
            "user",
            "add",
            "--account",
            "acme",
            "--email",
            "alice@acme.com",
            "--role",
            "viewer",
            "--password-stdin",
        ]),
        "correct horse battery staple\n",
    );
    assert!(added.status.success(), "{}", stderr_of(&added));
    let admin_key = {
        let output =
            succeed(&mut workspace.on_data(&["key", "create", "--platform", "--scope", "admin"]));
        stdout_of(&output).trim().to_owned()
    };
    let on_database = |arguments: &[&str]| stdout_of(&succeed(&mut workspace.on_data(arguments)));
    let users_json = on_database(&["user", "list", "--account", "acme", "--json"]);
    let users_table = on_database(&["user", "list", "--account", "acme"]);
    let limits_json = on_database(&["limits", "show", "--account", "acme", "--json"]);
    let limits_table = on_database(&["limits", "show", "--account", "acme"]);

    let server = workspace.start_server();
    let over_http = |arguments: &[&str]| {
        stdout_of(&succeed(
            &mut workspace.client(&server, &admin_key, arguments),
        ))
    };
    assert_eq!(
        over_http(&["user", "list", "--account", "acme", "--json"]),
        users_json
    );
    assert_eq!(
        over_http(&["user", "list", "--account", "acme"]),
        users_table
    );
    assert_eq!(
        over_http(&["limits", "show", "--account", "acme", "--json"]),
        limits_json
    );
    assert_eq!(
        over_http(&["limits", "show", "--account", "acme"]),
        limits_table
    );

    let added = with_stdin(
        &mut workspace.client(
            &server,
            &admin_key,
            &[
                "user",
                "add",
                "--account",
                "acme",
                "--email",
                "bob@acme.com",
                "--role",
                "admin",
                "--password-stdin",
            ],
        ),
        "another long password\n",
    );
    assert!(added.status.success(), "{}", stderr_of(&added));
    assert!(stdout_of(&added).starts_with("added bob@acme.com to acme as admin"));
    let reset = with_stdin(
        &mut workspace.client(
            &server,
            &admin_key,
            &[
                "user",
                "reset-password",
                "--account",
                "acme",
                "--email",
                "bob@acme.com",
                "--password-stdin",
            ],
        ),
        "a third long password\n",
    );
    assert!(reset.status.success(), "{}", stderr_of(&reset));
    assert!(
        over_http(&[
            "user",
            "remove",
            "--account",
            "acme",
            "--email",
            "bob@acme.com"
        ])
        .starts_with("removed bob@acme.com from acme")
    );

    over_http(&[
        "limits",
        "set",
        "--account",
        "acme",
        "--reads-per-second",
        "77",
    ]);
    let shown: Value = serde_json::from_str(&over_http(&[
        "limits",
        "show",
        "--account",
        "acme",
        "--json",
    ]))
    .unwrap();
    assert_eq!(shown["limits"]["reads_per_second"]["value"], 77);
    assert_eq!(
        shown["limits"]["reads_per_second"]["source"],
        "database (logbook limits set)"
    );
    over_http(&["limits", "clear", "--account", "acme"]);
    assert_eq!(
        over_http(&["limits", "show", "--account", "acme", "--json"]),
        limits_json,
        "cleared limits are the configuration's again"
    );
}
