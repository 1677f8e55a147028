//! The Activity Logs page in a real headless Chromium, driven over WebDriver (chromedriver): each
//! test starts the built `logbook serve` on a fresh data directory, sets up accounts, people and
//! keys with the CLI, ingests events over HTTP and then uses the page as a person would. The
//! screenshot test saves the main pages, light and dark, at desktop and phone widths, under
//! `<target>/screenshots/`.
//!
//! Chromium and chromedriver come from `LOGBOOK_TEST_CHROMIUM` and `LOGBOOK_TEST_CHROMEDRIVER`
//! (default `/usr/bin/chromium`, `/usr/bin/chromedriver`). Without them a local run prints a loud
//! `SKIPPED` line; under CI (`CI=true`) the tests fail instead.
#![cfg(unix)]

mod embedded_view;
mod event_view;
mod lighthouse;
mod page_density;
mod single_sign_on;
mod timeline;
mod verification_in_browser;
mod webdriver;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use logbook_core::terminal_text::escape_for_terminal;
use serde_json::{Value, json};
use tempfile::TempDir;
use webdriver::Browser;

const PASSWORD: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(20);

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

/// Where Chromium and chromedriver are, or `None` (after saying so loudly) when a local run
/// lacks them. Under CI a missing browser is a failure: the suite must not pass by running nothing.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = PathBuf::from(
        std::env::var("LOGBOOK_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    let chromedriver = PathBuf::from(
        std::env::var("LOGBOOK_TEST_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
    );
    for tool in [&chromium, &chromedriver] {
        if !tool.is_file() {
            if std::env::var("CI").is_ok_and(|value| value == "true") {
                panic!(
                    "Chromium not found at {}: CI must install chromium and chromium-driver",
                    tool.display()
                );
            }
            eprintln!(
                "\n!!!!!!!! SKIPPED (Chromium not found at {}): install chromium and chromium-driver, or set LOGBOOK_TEST_CHROMIUM and LOGBOOK_TEST_CHROMEDRIVER !!!!!!!!\n",
                tool.display()
            );
            return None;
        }
    }
    Some((chromium, chromedriver))
}

/// A data directory set up with the CLI, then served by `logbook serve` on a free port.
struct Site {
    directory: TempDir,
    server: Option<Child>,
    base_url: String,
    http: reqwest::Client,
}

impl Site {
    fn new() -> Self {
        Self {
            directory: tempfile::tempdir().expect("a temporary directory"),
            server: None,
            base_url: String::new(),
            http: reqwest::Client::new(),
        }
    }

    fn logbook(&self, arguments: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
        command
            .current_dir(self.directory.path())
            .args(arguments)
            .arg("--data-dir")
            .arg(self.directory.path().join("data"));
        for variable in LOGBOOK_VARIABLES {
            command.env_remove(variable);
        }
        command
    }

    fn run(&self, arguments: &[&str], input: &str) -> Output {
        let mut child = self
            .logbook(arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("logbook runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "logbook {arguments:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn account(&self, account: &str) {
        self.run(&["account", "create", account], "");
    }

    fn user(&self, account: &str, email: &str, role: &str) {
        self.run(
            &[
                "user",
                "add",
                "--account",
                account,
                "--email",
                email,
                "--role",
                role,
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        );
    }

    fn key(&self, account: &str) -> String {
        let output = self.run(
            &[
                "key",
                "create",
                "--account",
                account,
                "--scope",
                "ingest,read",
                "--json",
            ],
            "",
        );
        let created: Value = serde_json::from_slice(&output.stdout).unwrap();
        created["key"].as_str().unwrap().to_owned()
    }

    fn serve(&mut self) {
        let mut child = self
            .logbook(&["serve", "--listen", "127.0.0.1:0"])
            // Reaches the page footer through the binary's configuration.
            .env("LOGBOOK_SUPPORT_CONTACT", "support@acme.example")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("logbook serve starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("listening on ") {
                    let _ = sender.send(address.to_owned());
                }
            }
        });
        self.server = Some(child);
        self.base_url = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("logbook serve announces its address");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Ingests `events` with `key` and returns their ids.
    async fn send(&self, key: &str, events: Value) -> Vec<String> {
        let answer: Value = self
            .http
            .post(self.url("/api/v1/events"))
            .bearer_auth(key)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["results"]
            .as_array()
            .unwrap_or_else(|| panic!("ingest answered {answer}"))
            .iter()
            .map(|result| {
                result["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("event rejected: {result}"))
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// chromedriver on a free port with one Chromium session, stopped when dropped.
struct Chromium {
    driver: Child,
    browser: Option<Browser>,
    _profile: TempDir,
    downloads: TempDir,
}

impl Chromium {
    async fn start((chromium, chromedriver): &(PathBuf, PathBuf)) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver_url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let mut chromium_session = Chromium {
            driver,
            browser: None,
            _profile: profile,
            downloads,
        };
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{driver_url}/status"))
                .await
                .ok()
                .map(|answer| answer.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(started.elapsed() < WAIT, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", chromium_session._profile.path().display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let browser = Browser::open(&driver_url, capabilities)
            .await
            .expect("Chromium starts");
        // Collects every Content-Security-Policy violation from the first byte of each page; a
        // DevTools-injected script is not itself subject to the page's policy.
        browser
            .devtools(
                "Page.addScriptToEvaluateOnNewDocument",
                json!({ "source": "window.__cspViolations = []; document.addEventListener('securitypolicyviolation', (event) => window.__cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));" }),
            )
            .await;
        chromium_session.browser = Some(browser);
        chromium_session
    }

    fn browser(&self) -> &Browser {
        self.browser.as_ref().unwrap()
    }

    async fn stop(mut self) {
        if let Some(browser) = self.browser.take() {
            browser.quit().await;
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Signs in through the login form and waits for the Activity Logs page.
async fn sign_in(browser: &Browser, site: &Site, email: &str) {
    browser.goto(&site.url("/login")).await;
    browser.type_into("#email", email).await;
    browser.type_into("#password", PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    browser
        .wait_for(
            "the Activity Logs page after signing in",
            "const heading = document.querySelector('h1'); return heading && heading.textContent === 'Activity Logs';",
            WAIT,
        )
        .await;
}

/// The rows of the events table: message (the row's link), IP, the UTC timestamp, what is shown
/// as the time, its hover title, actor, the actor's hover (their id) and action.
async fn table_rows(browser: &Browser) -> Vec<Value> {
    browser
        .execute(
            "return [...document.querySelectorAll('#events tbody tr')].map((row) => ({
                message: row.querySelector('td.message a.row-link').textContent,
                ip: row.querySelector('td.ip').textContent.trim(),
                created_at: row.querySelector('td.time time').getAttribute('datetime'),
                shown_time: row.querySelector('td.time').textContent.trim(),
                time_title: row.querySelector('td.time time').title,
                actor: row.querySelector('td.actor').textContent,
                actor_title: row.querySelector('td.actor button')?.title ?? '',
                action: row.querySelector('td.action').textContent,
                failed: row.classList.contains('failed'),
            }));",
            json!([]),
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn messages_of(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|row| row["message"].as_str().unwrap().to_owned())
        .collect()
}

/// The HTTP status of the page the browser shows, from the Navigation Timing API.
async fn response_status(browser: &Browser) -> u64 {
    browser
        .execute(
            "return performance.getEntriesByType('navigation')[0].responseStatus;",
            json!([]),
        )
        .await
        .as_u64()
        .unwrap()
}

fn sample_events() -> Value {
    json!([
        {"action": "server.reboot", "message": "Rebooted server web-1", "ip": "203.0.113.9",
         "actor": {"id": "alice@acme.example", "name": "Alice", "type": "user"},
         "created_at": "2024-06-01T09:12:00Z", "outcome": "success"},
        {"action": "server.reboot", "message": "Rebooted server db-2", "ip": "203.0.113.10",
         "actor": {"id": "alice@acme.example", "name": "Alice", "type": "user"},
         "created_at": "2024-06-01T09:15:00Z"},
        {"action": "firewall.rule.update", "message": "Opened port 22 on firewall edge",
         "ip": "198.51.100.7", "actor": {"id": "bob@acme.example", "type": "user"},
         "created_at": "2024-06-02T10:00:00Z",
         "targets": [{"type": "firewall", "id": "fw_1", "name": "edge"}],
         "changes": [{"field": "ports", "old": [443], "new": [22, 443]}],
         "metadata": {"rule": {"port": 22, "protocol": "tcp"}, "ticket": "OPS-42"}},
        {"action": "user.login", "message": "Bob failed to sign in", "ip": "2001:db8::1",
         "actor": {"id": "bob@acme.example", "type": "user"}, "outcome": "failure",
         "created_at": "2024-06-03T08:00:00Z"},
    ])
}

/// An account `acme` with an owner and an ingest/read key, the sample events, and a server.
async fn acme_site() -> (Site, String, Vec<String>) {
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    let key = site.key("acme");
    site.serve();
    let ids = site.send(&key, sample_events()).await;
    (site, key, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_shows_the_ingested_events_with_message_ip_and_time() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();

    browser.goto(&site.url("/")).await;
    assert!(
        browser.current_url().await.contains("/login"),
        "an anonymous visit is sent to the login page"
    );
    sign_in(browser, &site, "owner@acme.example").await;

    let rows = table_rows(browser).await;
    let reboot = rows
        .iter()
        .find(|row| row["message"] == "Rebooted server web-1")
        .unwrap_or_else(|| panic!("the ingested event is in the table: {rows:?}"));
    assert_eq!(reboot["ip"], "203.0.113.9");
    assert_eq!(reboot["created_at"], "2024-06-01T09:12:00Z");
    assert_eq!(reboot["actor"], "Alice");
    assert_eq!(reboot["action"], "server.reboot");
    // The script shows local time and keeps the UTC timestamp on hover.
    assert_ne!(reboot["shown_time"], "2024-06-01T09:12:00Z");
    assert!(
        reboot["time_title"]
            .as_str()
            .unwrap()
            .contains("2024-06-01T09:12:00Z")
    );
    let failed = rows
        .iter()
        .find(|row| row["message"] == "Bob failed to sign in")
        .unwrap();
    assert_eq!(failed["failed"], true, "failed outcomes are marked");
    // Newest first: the sign-in just made tops the list, then the sample events by created_at.
    assert_eq!(rows[0]["action"], "logbook.login");
    assert_eq!(rows[0]["ip"], "127.0.0.1");
    let help = browser
        .execute("return document.querySelector('footer a').href;", json!([]))
        .await;
    assert_eq!(
        help, "mailto:support@acme.example",
        "the configured support contact"
    );
    let samples: Vec<String> = rows
        .iter()
        .filter(|row| !row["action"].as_str().unwrap().starts_with("logbook."))
        .map(|row| row["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        samples,
        [
            "Bob failed to sign in",
            "Opened port 22 on firewall edge",
            "Rebooted server db-2",
            "Rebooted server web-1"
        ],
        "{rows:?}"
    );
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_box_narrows_the_rows_and_the_query_is_in_the_address() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    let everything = table_rows(browser).await.len();

    browser.type_into("#q", "action:server.reboot").await;
    browser.click("#search-form button[type=submit]").await;
    browser
        .wait_for(
            "the search to reload the page",
            "return location.search.includes('q=action');",
            WAIT,
        )
        .await;
    let rows = table_rows(browser).await;
    assert_eq!(
        messages_of(&rows),
        ["Rebooted server db-2", "Rebooted server web-1"]
    );
    assert!(rows.len() < everything);

    browser.type_into("#q", "firewall -ip:203.0.113.0/24").await;
    browser.click("#search-form button[type=submit]").await;
    browser
        .wait_for(
            "the second search",
            "return location.search.includes('firewall');",
            WAIT,
        )
        .await;
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Opened port 22 on firewall edge"]
    );

    browser.type_into("#q", "no-such-word-anywhere").await;
    browser.click("#search-form button[type=submit]").await;
    browser
        .wait_for(
            "the empty state",
            "const empty = document.getElementById('empty-state'); return empty && empty.innerText.includes('No events match');",
            WAIT,
        )
        .await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_event_appears_in_the_table_without_a_reload() {
    let Some(tools) = browser_tools() else { return };
    let (site, key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    browser
        .wait_for(
            "the live connection",
            "return document.getElementById('live-status').textContent === 'Live';",
            WAIT,
        )
        .await;
    // A reload would drop this marker.
    browser
        .execute("window.__sameDocument = true;", json!([]))
        .await;

    site.send(
        &key,
        json!([{"action": "server.create", "message": "Created server web-3", "ip": "192.0.2.44",
                "actor": {"id": "alice@acme.example", "name": "Alice", "type": "user"}}]),
    )
    .await;
    browser
        .wait_for(
            "the new event in the table",
            "return [...document.querySelectorAll('#events tbody tr td.message a')].some((link) => link.textContent === 'Created server web-3');",
            WAIT,
        )
        .await;
    let rows = table_rows(browser).await;
    assert_eq!(rows[0]["message"], "Created server web-3");
    // Alice was seen from other addresses before, so the live row carries the new-address mark
    // exactly as a rendered page would.
    let ip_cell = rows[0]["ip"].as_str().unwrap();
    assert!(ip_cell.starts_with("192.0.2.44"), "{ip_cell}");
    assert!(ip_cell.contains("new"), "{ip_cell}");
    assert_eq!(
        browser
            .execute("return window.__sameDocument === true;", json!([]))
            .await,
        true,
        "the page was not reloaded"
    );

    // Paused, a new event waits behind the "new events" notice instead.
    browser.click("#live-toggle").await;
    site.send(
        &key,
        json!([{"action": "server.delete", "message": "Deleted server web-0"}]),
    )
    .await;
    let notice = browser
        .wait_for(
            "the new events notice",
            "const notice = document.getElementById('new-events'); return !notice.hidden && notice.textContent;",
            WAIT,
        )
        .await;
    assert!(notice.as_str().unwrap().contains("1 new event"), "{notice}");
    assert_ne!(
        table_rows(browser).await[0]["message"],
        "Deleted server web-0"
    );
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_downloads_a_file_that_parses() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    browser
        .devtools(
            "Browser.setDownloadBehavior",
            json!({ "behavior": "allow", "downloadPath": chromium.downloads.path() }),
        )
        .await;
    browser.goto(&site.url("/?q=action%3Aserver.*")).await;
    browser.click("#export-csv").await;

    let file = wait_for_download(chromium.downloads.path()).await;
    assert!(
        file.extension().is_some_and(|extension| extension == "csv"),
        "{}",
        file.display()
    );
    let mut reader = csv::Reader::from_path(&file).unwrap();
    let headers = reader.headers().unwrap().clone();
    let message_column = headers.iter().position(|name| name == "message").unwrap();
    let ip_column = headers.iter().position(|name| name == "ip").unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let exported: Vec<(&str, &str)> = records
        .iter()
        .map(|record| (&record[message_column], &record[ip_column]))
        .collect();
    assert_eq!(
        exported,
        [
            ("Rebooted server db-2", "203.0.113.10"),
            ("Rebooted server web-1", "203.0.113.9")
        ],
        "the export holds exactly the current filter"
    );
    chromium.stop().await;
}

/// Waits until Chromium has finished writing one file into `directory`.
async fn wait_for_download(directory: &Path) -> PathBuf {
    let started = Instant::now();
    loop {
        let finished: Vec<PathBuf> = std::fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.extension()
                    .is_none_or(|extension| extension != "crdownload")
            })
            .collect();
        if let [file] = finished.as_slice() {
            return file.clone();
        }
        assert!(
            started.elapsed() < WAIT,
            "no download finished: {finished:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages a hostile producer might send. Each script would set `document.title` or a global.
fn hostile_messages() -> Vec<&'static str> {
    vec![
        "<b>bold</b> & <i>italic</i> </td></tr></table>",
        "<script>document.title='pwned';window.__pwned='script'</script>",
        "<img src=x onerror=\"window.__pwned='img';document.title='pwned'\">",
        "<a href=\"javascript:window.__pwned='link'\">javascript:alert(document.cookie)</a>",
        "{{7*7}} ${7*7} {% if true %}49{% endif %} <%= 7*7 %>",
        "first line\r\nInjected: second line",
        "\u{1b}[31mred alert\u{1b}[0m and a bell\u{7}",
        "invoice\u{202E}fdp.exe",
        "zero\u{200B}width\u{200D}joiner\u{FEFF}",
        "\"'><svg onload=\"window.__pwned='svg'\">",
    ]
}

/// What the page must show for `message`: the text itself, controls made visible.
fn shown_as(message: &str) -> String {
    escape_for_terminal(message).into_owned()
}

async fn assert_nothing_ran(browser: &Browser, context: &str) {
    let verdict = browser
        .execute(
            "return {
                pwned: window.__pwned ?? null,
                title: document.title,
                violations: window.__cspViolations ?? null,
                injected: document.querySelectorAll('main script, main img, main svg:not(#timeline-chart), main iframe, #timeline-chart :not(a, title, rect, g), td.message b, td.message i').length,
            };",
            json!([]),
        )
        .await;
    assert_eq!(verdict["pwned"], Value::Null, "{context}: {verdict}");
    assert!(
        !verdict["title"].as_str().unwrap().contains("pwned"),
        "{context}: {verdict}"
    );
    assert_eq!(
        verdict["violations"],
        json!([]),
        "{context}: no CSP violation: {verdict}"
    );
    assert_eq!(verdict["injected"], 0, "{context}: {verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_render_as_literal_text_without_running_script_or_violating_the_csp() {
    let Some(tools) = browser_tools() else { return };
    let (site, key, _ids) = acme_site().await;
    let corpus = hostile_messages();
    let events: Vec<Value> = corpus
        .iter()
        .map(|message| {
            json!({"action": "user.update", "message": message, "ip": "203.0.113.66",
                   "actor": {"id": "eve@evil.example", "name": message, "type": "user"},
                   "metadata": {"note": message}, "created_at": "2024-06-05T10:00:00Z"})
        })
        .collect();
    let ids = site.send(&key, Value::Array(events.clone())).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    let _ = browser.browser_log().await;
    sign_in(browser, &site, "owner@acme.example").await;

    // Rendered by the server.
    let shown = messages_of(&table_rows(browser).await);
    for message in &corpus {
        assert!(
            shown.contains(&shown_as(message)),
            "{message:?} is shown literally as {:?}; the table shows {shown:?}",
            shown_as(message)
        );
    }
    assert_nothing_ran(browser, "the server-rendered table").await;

    // Rendered by the script, as live updates.
    browser
        .wait_for(
            "the live connection",
            "return document.getElementById('live-status').textContent === 'Live';",
            WAIT,
        )
        .await;
    let live_events: Vec<Value> = events
        .iter()
        .map(|event| {
            let mut event = event.clone();
            event.as_object_mut().unwrap().remove("created_at");
            event
        })
        .collect();
    site.send(&key, Value::Array(live_events)).await;
    browser
        .wait_for(
            "the hostile events to arrive live",
            &format!(
                "return document.querySelectorAll('#events tbody tr.fresh').length >= {};",
                corpus.len()
            ),
            WAIT,
        )
        .await;
    let shown = messages_of(&table_rows(browser).await);
    for message in &corpus {
        let count = shown
            .iter()
            .filter(|text| **text == shown_as(message))
            .count();
        assert_eq!(count, 2, "{message:?} shown literally live too: {shown:?}");
    }
    assert_nothing_ran(browser, "the live rows").await;

    // Each event's details page.
    for id in &ids {
        browser.goto(&site.url(&format!("/events/{id}"))).await;
        assert_eq!(response_status(browser).await, 200);
        assert_nothing_ran(browser, &format!("the details of {id}")).await;
    }
    browser
        .goto(&site.url(&format!("/events/{}", ids[4])))
        .await;
    let heading = browser
        .execute(
            "return document.querySelector('h1').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(
        heading,
        json!(corpus[4]),
        "template syntax is not evaluated"
    );

    let csp_reports: Vec<Value> = browser
        .browser_log()
        .await
        .into_iter()
        .filter(|entry| {
            let text = entry["message"].as_str().unwrap_or_default();
            text.contains("Content Security Policy") || text.contains("Refused to")
        })
        .collect();
    assert!(csp_reports.is_empty(), "{csp_reports:?}");
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sign_in_shows_up_in_the_log_with_its_ip() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();

    browser.goto(&site.url("/login")).await;
    browser.type_into("#email", "owner@acme.example").await;
    browser
        .type_into("#password", "not the password at all")
        .await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    let error = browser
        .wait_for(
            "the sign-in error",
            "const error = document.getElementById('login-error'); return error && error.textContent;",
            WAIT,
        )
        .await;
    assert!(!error.as_str().unwrap().is_empty());

    sign_in(browser, &site, "owner@acme.example").await;
    let rows = table_rows(browser).await;
    let failure = rows
        .iter()
        .find(|row| row["action"] == "logbook.login_failed")
        .unwrap_or_else(|| panic!("the failed sign-in is in the log: {rows:?}"));
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("owner@acme.example"),
        "{failure}"
    );
    assert_eq!(failure["ip"], "127.0.0.1");
    assert_eq!(failure["failed"], true);
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sees_only_their_own_events() {
    let Some(tools) = browser_tools() else { return };
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "bob@acme.example", "member");
    let key = site.key("acme");
    site.serve();
    let ids = site.send(&key, sample_events()).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "bob@acme.example").await;

    let rows = table_rows(browser).await;
    let messages = messages_of(&rows);
    assert!(messages.contains(&"Opened port 22 on firewall edge".to_owned()));
    assert!(messages.contains(&"Bob failed to sign in".to_owned()));
    assert!(
        !messages.iter().any(|message| message.contains("Rebooted")),
        "Alice's events stay hidden: {messages:?}"
    );
    // Bob's own sign-in is his too; everything else here is Alice's.
    assert_eq!(rows.len(), 3, "{messages:?}");

    // Alice's event is not found, by link or by search.
    browser
        .goto(&site.url(&format!("/events/{}", ids[0])))
        .await;
    assert_eq!(response_status(browser).await, 404);
    browser
        .goto(&site.url("/?q=actor%3Aalice%40acme.example"))
        .await;
    assert!(table_rows(browser).await.is_empty());
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_of_another_account_gets_404_for_this_accounts_pages() {
    let Some(tools) = browser_tools() else { return };
    let mut site = Site::new();
    site.account("acme");
    site.account("globex");
    site.user("acme", "owner@acme.example", "owner");
    site.user("globex", "owner@globex.example", "owner");
    let key = site.key("acme");
    site.serve();
    let ids = site.send(&key, sample_events()).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();

    sign_in(browser, &site, "owner@acme.example").await;
    browser
        .goto(&site.url(&format!("/events/{}", ids[2])))
        .await;
    assert_eq!(response_status(browser).await, 200, "acme's owner sees it");
    browser.delete_cookies().await;

    sign_in(browser, &site, "owner@globex.example").await;
    let messages = messages_of(&table_rows(browser).await);
    assert!(
        messages.iter().all(|message| !message.contains("Rebooted")
            && !message.contains("firewall")
            && !message.contains("acme")),
        "{messages:?}"
    );
    for id in &ids {
        browser.goto(&site.url(&format!("/events/{id}"))).await;
        assert_eq!(response_status(browser).await, 404, "event {id}");
        let text = browser
            .execute("return document.body.innerText;", json!([]))
            .await;
        assert!(!text.as_str().unwrap().contains("Rebooted"), "{text}");
    }
    browser.goto(&site.url("/?q=action%3Aserver.*")).await;
    assert!(table_rows(browser).await.is_empty());
    chromium.stop().await;
}

/// `<target>/screenshots`: `CARGO_TARGET_DIR` when set, else the directory holding the binary's
/// profile directory (`target/debug/logbook` -> `target`).
fn screenshot_directory() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_BIN_EXE_logbook"))
                .parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        });
    target.join("screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_the_main_pages_are_saved_light_and_dark_at_desktop_and_phone_width() {
    let Some(tools) = browser_tools() else { return };
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    site.user("acme", "bob@acme.example", "member");
    site.user("acme", "carol@acme.example", "viewer");
    let key = site.key("acme");
    site.serve();
    let ids = site.send(&key, sample_events()).await;
    let more: Vec<Value> = (0..12)
        .map(|number| {
            json!({"action": "dns.record.update",
                   "message": format!("Updated DNS record www{number}.acme.example to 203.0.113.{number}"),
                   "ip": format!("198.51.100.{}", 20 + number),
                   "actor": {"id": "carol@acme.example", "name": "Carol", "type": "user"},
                   "created_at": format!("2024-06-04T{:02}:30:00Z", 8 + number)})
        })
        .collect();
    site.send(&key, Value::Array(more)).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;

    let directory = screenshot_directory();
    std::fs::create_dir_all(&directory).unwrap();
    let pages = [
        ("activity-logs", "/".to_owned()),
        ("event-details", format!("/events/{}", ids[2])),
        ("team", "/team".to_owned()),
        ("keys", "/keys".to_owned()),
        ("security", "/security".to_owned()),
    ];
    let mut saved = Vec::new();
    for (scheme, widths) in [("light", [1280, 360]), ("dark", [1280, 360])] {
        browser
            .devtools(
                "Emulation.setEmulatedMedia",
                json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
            )
            .await;
        for width in widths {
            browser
                .devtools(
                    "Emulation.setDeviceMetricsOverride",
                    json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600 }),
                )
                .await;
            for (name, path) in &pages {
                browser.goto(&site.url(path)).await;
                assert_eq!(response_status(browser).await, 200, "{path}");
                let is_dark = browser
                    .execute(
                        "return matchMedia('(prefers-color-scheme: dark)').matches;",
                        json!([]),
                    )
                    .await;
                assert_eq!(is_dark, scheme == "dark");
                saved.push(save_screenshot(browser, &directory, name, scheme, width).await);
            }
        }
    }
    // The login page, signed out.
    browser.delete_cookies().await;
    for scheme in ["light", "dark"] {
        browser
            .devtools(
                "Emulation.setEmulatedMedia",
                json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
            )
            .await;
        for width in [1280, 360] {
            browser
                .devtools(
                    "Emulation.setDeviceMetricsOverride",
                    json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600 }),
                )
                .await;
            browser.goto(&site.url("/login")).await;
            saved.push(save_screenshot(browser, &directory, "login", scheme, width).await);
        }
    }
    assert_eq!(saved.len(), 24);
    for file in &saved {
        let bytes = std::fs::read(file).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{}", file.display());
    }
    eprintln!("screenshots saved under {}", directory.display());
    chromium.stop().await;
}

/// Saves the viewport as `<name>-<scheme>-<width>.png` and checks the page fits its width.
async fn save_screenshot(
    browser: &Browser,
    directory: &Path,
    name: &str,
    scheme: &str,
    width: u32,
) -> PathBuf {
    let file = directory.join(format!("{name}-{scheme}-{width}.png"));
    std::fs::write(&file, browser.screenshot_png().await).unwrap();
    // Nothing but a table's own scroller may be wider than the viewport.
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            json!([]),
        )
        .await;
    if overflow.as_i64().unwrap() > 0 {
        let culprits = browser
            .execute(
                "const limit = document.documentElement.clientWidth;
                 return [...document.querySelectorAll('body *')]
                    .filter((element) => element.getBoundingClientRect().right > limit + 1)
                    .slice(0, 5)
                    .map((element) => element.tagName + '.' + element.className + '#' + element.id + ' ' + Math.round(element.getBoundingClientRect().right));",
                json!([]),
            )
            .await;
        panic!("{name} at {width} px in {scheme} scrolls sideways by {overflow} px: {culprits}");
    }
    file
}

/// Loads `path` again every half second until `css` matches an element (background work such as
/// checkpoints and the attention worker runs on its own interval), for at most `WAIT`.
async fn reload_until(browser: &Browser, site: &Site, path: &str, what: &str, css: &str) {
    let started = Instant::now();
    loop {
        browser.goto(&site.url(path)).await;
        let found = browser
            .execute(
                "return document.querySelector(arguments[0]) !== null;",
                json!([css]),
            )
            .await;
        if found == json!(true) {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "timed out waiting for {what} ({css}) at {path}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_states_the_newest_checkpoint_and_an_events_details_show_its_inclusion_proof() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;

    // The checkpointer signs within its interval (1 s by default); the page then states it.
    let started = Instant::now();
    let verified = loop {
        browser.goto(&site.url("/")).await;
        let text = browser
            .execute(
                "const line = document.querySelector('#verified-through'); return line ? line.textContent : '';",
                json!([]),
            )
            .await;
        let text = text.as_str().unwrap_or_default().to_owned();
        if text.starts_with("Verified through event") {
            break text;
        }
        assert!(started.elapsed() < WAIT, "no checkpoint line: {text:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let through: u64 = verified
        .trim_start_matches("Verified through event ")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("a seq in {verified:?}"));
    assert!(
        through >= 3,
        "the four sample events are covered: {verified:?}"
    );
    let signed_at = browser
        .execute(
            "return document.querySelector('#verified-through time').getAttribute('datetime');",
            json!([]),
        )
        .await;
    let signed_at = signed_at.as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(signed_at, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "checkpoint time {signed_at:?}"
    );
    assert!(verified.contains(", checkpoint at "), "{verified:?}");
    let public_key = browser
        .execute(
            "return document.querySelector('#checkpoint-public-key').textContent;",
            json!([]),
        )
        .await;
    assert!(public_key.as_str().unwrap().contains('+'), "{public_key}");

    // The first sample event's details carry its inclusion proof against a signed checkpoint.
    let event_path = format!("/events/{}", ids[0]);
    reload_until(
        browser,
        &site,
        &event_path,
        "the inclusion proof",
        "#inclusion-proof",
    )
    .await;
    browser.click("#inclusion-proof summary").await;
    let proof = browser
        .execute(
            "const proof = document.querySelector('#inclusion-proof');
             return {
               open: proof.open,
               summary: proof.querySelector('summary').textContent,
               hashes: [...proof.querySelectorAll('dd code')].map((code) => code.textContent),
               checkpoint: proof.querySelector('pre.checkpoint').textContent,
             };",
            json!([]),
        )
        .await;
    assert_eq!(proof["open"], true);
    assert!(
        proof["summary"]
            .as_str()
            .unwrap()
            .starts_with("Inclusion proof (checkpoint at tree size "),
        "{proof}"
    );
    let hashes: Vec<&str> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hash| hash.as_str().unwrap())
        .collect();
    // Leaf hash, root hash, then at least one sibling: the tree has more than one event.
    assert!(hashes.len() >= 3, "{proof}");
    assert!(
        hashes
            .iter()
            .all(|hash| hash.len() == 64
                && hash.chars().all(|character| character.is_ascii_hexdigit())),
        "{proof}"
    );
    assert!(
        proof["checkpoint"].as_str().unwrap().contains("/acme\n"),
        "the signed checkpoint names the account: {proof}"
    );
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_attention_lists_a_burst_of_failed_logins_links_to_it_and_this_was_me_dismisses_it() {
    let Some(tools) = browser_tools() else { return };
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "alice@acme.example", "member");
    let key = site.key("acme");
    site.serve();
    let failures: Vec<Value> = (0..5)
        .map(|attempt| {
            json!({"action": "user.login", "message": format!("Wrong password, attempt {attempt}"),
                   "ip": "198.51.100.7", "outcome": "failure",
                   "actor": {"id": "alice@acme.example", "type": "user"}})
        })
        .collect();
    site.send(&key, Value::Array(failures)).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "alice@acme.example").await;

    // The worker reads new events every 2 s by default.
    reload_until(
        browser,
        &site,
        "/",
        "the Needs attention list",
        "#needs-attention",
    )
    .await;
    let item = browser
        .execute(
            "const item = document.querySelector('#needs-attention .attention-item');
             const list = document.querySelector('#needs-attention');
             const table = document.querySelector('#events');
             return {
               title: item.querySelector('.attention-evidence').textContent,
               href: item.querySelector('.attention-evidence').getAttribute('href'),
               above_the_table: !!(list.compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING),
             };",
            json!([]),
        )
        .await;
    assert_eq!(
        item["title"],
        "5 failed logins for alice@acme.example within 10 minutes"
    );
    assert_eq!(item["above_the_table"], true);
    let href = item["href"].as_str().unwrap();
    assert!(
        href.starts_with("/?q=actor%3Aalice%40acme.example"),
        "{href}"
    );

    // The link is the search that shows the evidence: the five failures and nothing else.
    browser.click("#needs-attention .attention-evidence").await;
    browser
        .wait_for(
            "the evidence search",
            "return document.querySelector('#q') && document.querySelector('#q').value.startsWith('actor:alice@acme.example');",
            WAIT,
        )
        .await;
    let rows = table_rows(browser).await;
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(
        rows.iter()
            .all(|row| row["action"] == "user.login" && row["failed"] == true)
    );

    // "This was me" dismisses it; the list is gone and the dismissal is in the log.
    browser.goto(&site.url("/")).await;
    browser.click("#needs-attention .attention-dismiss").await;
    browser
        .wait_for(
            "the page without the dismissed finding",
            "return document.querySelector('h1') && document.querySelector('h1').textContent === 'Activity Logs' && !document.querySelector('#needs-attention');",
            WAIT,
        )
        .await;
    let rows = table_rows(browser).await;
    assert_eq!(rows[0]["action"], "logbook.attention.dismiss", "{rows:?}");
    browser.goto(&site.url("/attention")).await;
    let dismissed = browser
        .execute(
            "const note = document.querySelector('.attention-dismissed'); return note ? note.textContent : '';",
            json!([]),
        )
        .await;
    assert!(
        dismissed
            .as_str()
            .unwrap()
            .starts_with("Dismissed by alice@acme.example at "),
        "{dismissed}"
    );
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_searches_in_a_row_load_without_a_stall_and_empty_filters_stay_out_of_the_address() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    // Each page opens a live-updates stream; pages left in the back/forward cache used to keep
    // theirs, until the browser's six connections per host were used up and the next load hung.
    for round in 0..10 {
        let word = format!("round{round}");
        browser.type_into("#q", &word).await;
        browser.click("#search-form button[type=submit]").await;
        browser
            .wait_for(
                &format!("search {round} to load"),
                &format!(
                    "return location.search.includes('{word}') && document.readyState === 'complete';"
                ),
                WAIT,
            )
            .await;
    }
    let address = browser.current_url().await;
    assert!(
        !address.contains("from=&") && !address.ends_with('=') && !address.contains("=&"),
        "empty filters are left out: {address}"
    );
    chromium.stop().await;
}
