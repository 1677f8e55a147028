//! The embedded view in real Chromium: the example console of `examples/console-embed/host.py`
//! (a platform's page on another site: `localhost` against Logbook's `127.0.0.1`) mints a viewer
//! session and frames it; the person searches, opens an event and exports inside the frame. A
//! console whose origin is not allowed gets a refused frame, and a fixed query or the `own`
//! scope cannot be escaped by anything typed or edited in the URL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Chromium, Site, WAIT, acme_site, browser_tools, messages_of, screenshot_directory, table_rows,
};

/// The example console, started with Python's standard library on a free port.
struct Console {
    process: Child,
    origin: String,
}

impl Console {
    fn start(site: &Site, admin_key: &str) -> Self {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/console-embed/host.py");
        let mut process = Command::new("python3")
            .arg(script)
            .env("LOGBOOK_URL", &site.base_url)
            .env("LOGBOOK_ADMIN_KEY", admin_key)
            .env("ACCOUNT", "acme")
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the example console");
        let stdout = process.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("console on ") {
                    let _ = sender.send(url.trim_end_matches('/').to_owned());
                }
            }
        });
        let origin = receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("the example console announces its address");
        Console { process, origin }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub(super) fn admin_key(site: &Site) -> String {
    let output = site.run(
        &[
            "key",
            "create",
            "--account",
            "acme",
            "--scope",
            "admin",
            "--json",
        ],
        "",
    );
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    created["key"].as_str().unwrap().to_owned()
}

/// Lets `origins` frame acme's view, with the platform's name and colour.
async fn allow_framing(site: &Site, admin_key: &str, origins: &[&str]) {
    let answer = site
        .http
        .put(site.url("/api/v1/accounts/acme/embed"))
        .bearer_auth(admin_key)
        .json(&json!({"frame_ancestors": origins, "product_name": "Acme Cloud", "accent_colour": "#0f7b6c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}

async fn events_with_action(site: &Site, read_key: &str, action: &str) -> Vec<Value> {
    let page: Value = site
        .http
        .get(site.url("/api/v1/events"))
        .bearer_auth(read_key)
        .query(&[("q", format!("action:{action}"))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["events"].as_array().cloned().unwrap_or_default()
}

pub(super) async fn wait_for_activity_logs(browser: &super::webdriver::Browser) {
    browser
        .wait_for(
            "the embedded Activity Logs",
            "const heading = document.querySelector('h1'); return heading && heading.textContent === 'Activity Logs';",
            WAIT,
        )
        .await;
}

async fn search(browser: &super::webdriver::Browser, text: &str) {
    browser.type_into("#q", text).await;
    browser.click("#search-form button[type=submit]").await;
    browser
        .wait_for(
            "the search to apply",
            &format!(
                "return new URLSearchParams(location.search).get('q') === {};",
                serde_json::to_string(text).unwrap()
            ),
            WAIT,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_on_another_site_embeds_the_view_where_the_person_searches_opens_an_event_and_exports()
 {
    let Some(tools) = browser_tools() else { return };
    let (site, key, _ids) = acme_site().await;
    let admin_key = admin_key(&site);
    let console = Console::start(&site, &admin_key);
    assert!(
        console.origin.starts_with("http://localhost:"),
        "{}",
        console.origin
    );
    allow_framing(&site, &admin_key, &[&console.origin]).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();

    browser.goto(&format!("{}/", console.origin)).await;
    browser
        .wait_for(
            "the console's frame",
            "return document.querySelector('#activity-logs');",
            WAIT,
        )
        .await;
    browser.switch_to_frame(0).await;
    wait_for_activity_logs(browser).await;
    let messages = messages_of(&table_rows(browser).await);
    for message in [
        "Rebooted server web-1",
        "Opened port 22 on firewall edge",
        "Bob failed to sign in",
    ] {
        assert!(
            messages.iter().any(|shown| shown == message),
            "{messages:?}"
        );
    }
    let chrome = browser
        .execute(
            "return {
                navigation: document.querySelectorAll('nav[aria-label=Main]').length,
                signOut: document.querySelectorAll('form[action=\"/logout\"]').length,
                brand: document.querySelector('.brand').textContent.trim(),
                viewer: document.querySelector('#viewing-as').textContent,
                accent: getComputedStyle(document.documentElement).getPropertyValue('--accent').trim(),
            };",
            json!([]),
        )
        .await;
    assert_eq!(
        chrome["navigation"], 0,
        "no Logbook navigation in the frame"
    );
    assert_eq!(chrome["signOut"], 0);
    assert_eq!(chrome["brand"], "Acme Cloud");
    assert_eq!(chrome["viewer"], "Viewing as Ana Lima");
    assert_eq!(chrome["accent"], "#0f7b6c", "the platform's colour applies");

    std::fs::create_dir_all(screenshot_directory()).unwrap();
    browser.switch_to_top().await;
    std::fs::write(
        screenshot_directory().join("embedded-view-in-a-console.png"),
        browser.screenshot_png().await,
    )
    .unwrap();
    browser.switch_to_frame(0).await;

    search(browser, "actor:bob@acme.example").await;
    let messages = messages_of(&table_rows(browser).await);
    assert_eq!(
        messages,
        vec!["Bob failed to sign in", "Opened port 22 on firewall edge"]
    );
    browser
        .execute(
            "[...document.querySelectorAll('#events a')].find((link) => link.textContent === 'Opened port 22 on firewall edge').click();",
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the event's details in the frame",
            "return document.querySelector('table.diff') && document.querySelector('h1.event-title').textContent;",
            WAIT,
        )
        .await;
    // The event view checks the event's proof in the browser inside the frame too, once a
    // checkpoint covers it (reloaded until one does).
    let started = std::time::Instant::now();
    while browser
        .execute(
            "return document.getElementById('browser-verification') === null;",
            json!([]),
        )
        .await
        .as_bool()
        .unwrap_or(true)
    {
        assert!(started.elapsed() < WAIT, "no checkpoint covered the event");
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.execute("location.reload();", json!([])).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let verdict = browser
        .wait_for(
            "the in-browser check inside the frame",
            "const section = document.getElementById('browser-verification');
             return section && section.dataset.outcome && {outcome: section.dataset.outcome, status: document.getElementById('browser-verification-status').textContent};",
            WAIT,
        )
        .await;
    assert_eq!(verdict["outcome"], "verified", "{verdict}");
    // WebDriver's current URL is the top page's; the frame's own is its `location`.
    let location = browser.execute("return location.href;", json!([])).await;
    assert!(
        location.as_str().unwrap_or_default().contains("/view/"),
        "the details stay in the session: {location}"
    );
    browser
        .execute(
            "document.querySelector('a[href$=\"/\"]').click();",
            json!([]),
        )
        .await;
    wait_for_activity_logs(browser).await;
    search(browser, "actor:bob@acme.example").await;
    let export = browser
        .execute(
            "const link = document.querySelector('#export-csv');
             return fetch(link.href).then(async (answer) => ({status: answer.status, body: await answer.text()}));",
            json!([]),
        )
        .await;
    assert_eq!(export["status"], 200, "{export}");
    let body = export["body"].as_str().unwrap();
    assert!(body.contains("Opened port 22 on firewall edge"), "{body}");
    assert!(
        !body.contains("Rebooted server web-1"),
        "the export is of the current filter"
    );
    browser.switch_to_top().await;

    let views = events_with_action(&site, &key, "logbook.log.view").await;
    assert_eq!(views.len(), 1, "one opened session, one view event");
    assert_eq!(views[0]["actor"]["id"], "user_8831");
    assert!(
        views[0]["user_agent"]
            .as_str()
            .unwrap_or_default()
            .contains("Chrome"),
        "{}",
        views[0]
    );
    let exports = events_with_action(&site, &key, "logbook.export").await;
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0]["actor"]["name"], "Ana Lima");
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_whose_origin_is_not_allowed_gets_a_refused_frame() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let admin_key = admin_key(&site);
    let allowed = Console::start(&site, &admin_key);
    let other = Console::start(&site, &admin_key);
    allow_framing(&site, &admin_key, &[&allowed.origin]).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();

    browser.goto(&format!("{}/", other.origin)).await;
    browser
        .wait_for(
            "the frame to finish loading",
            "const frame = document.querySelector('#activity-logs'); return frame && new Promise((done) => { if (frame.dataset.loaded) done(true); frame.addEventListener('load', () => done(true)); setTimeout(() => done(true), 3000); });",
            WAIT,
        )
        .await;
    browser.switch_to_frame(0).await;
    let inside = browser
        .execute(
            "return {href: location.href, heading: document.querySelector('h1') ? document.querySelector('h1').textContent : null, rows: document.querySelectorAll('#events tbody tr').length};",
            json!([]),
        )
        .await;
    assert!(
        !inside["href"]
            .as_str()
            .unwrap_or_default()
            .contains("/view/"),
        "Chromium refused the frame: {inside}"
    );
    assert_eq!(inside["rows"], 0, "nothing of the log is shown: {inside}");
    browser.switch_to_top().await;

    // The allowed console, in the same browser, shows the view: the refusal is the origin's.
    browser.goto(&format!("{}/", allowed.origin)).await;
    browser
        .wait_for(
            "the console's frame",
            "return document.querySelector('#activity-logs');",
            WAIT,
        )
        .await;
    browser.switch_to_frame(0).await;
    wait_for_activity_logs(browser).await;
    browser.switch_to_top().await;
    chromium.stop().await;
}

/// Makes a viewer session of acme with `fields` and returns the URL that opens it.
pub(super) async fn viewer_url(site: &Site, admin_key: &str, fields: Value) -> String {
    let mut body = json!({"account": "acme", "person": {"id": "bob@acme.example", "name": "Bob"}});
    for (name, value) in fields.as_object().unwrap() {
        body[name] = value.clone();
    }
    let answer: Value = site
        .http
        .post(site.url("/api/v1/viewer-sessions"))
        .bearer_auth(admin_key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {answer}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_typed_or_edited_in_the_url_escapes_a_fixed_query_or_the_own_scope() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let admin_key = admin_key(&site);
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();

    browser
        .goto(
            &viewer_url(
                &site,
                &admin_key,
                json!({"scope": {"query": "target:fw_1"}}),
            )
            .await,
        )
        .await;
    wait_for_activity_logs(browser).await;
    let only = vec!["Opened port 22 on firewall edge".to_owned()];
    assert_eq!(messages_of(&table_rows(browser).await), only);
    let view = browser.current_url().await;
    for typed in [
        "-target:fw_1",
        "target:fw_1 OR action:server.reboot",
        "action:server.reboot",
        "-target:fw_1 -target:fw_2",
        "\" OR 1=1 --",
    ] {
        search(browser, typed).await;
        let shown = messages_of(&table_rows(browser).await);
        assert!(
            shown.iter().all(|message| message == &only[0]),
            "{typed:?} escaped the fixed query: {shown:?}"
        );
    }
    let base = view
        .split('?')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    browser
        .goto(&format!("{base}/?q=-target%3Afw_1&scope=all"))
        .await;
    wait_for_activity_logs(browser).await;
    assert!(
        table_rows(browser).await.is_empty(),
        "a URL edit widens nothing"
    );

    browser
        .goto(&viewer_url(&site, &admin_key, json!({"scope": "own"})).await)
        .await;
    wait_for_activity_logs(browser).await;
    let mut shown = messages_of(&table_rows(browser).await);
    shown.retain(|message| !message.starts_with("Bob opened the Activity Logs"));
    assert_eq!(
        shown,
        vec!["Bob failed to sign in", "Opened port 22 on firewall edge"],
        "the own scope shows Bob's events only"
    );
    search(browser, "actor:alice@acme.example").await;
    assert!(table_rows(browser).await.is_empty());
    chromium.stop().await;
}
