//! The event view (issue 21, item 4) in real Chromium: times to the millisecond with their zone,
//! local and UTC; what changed inside a value marked; the actor's other events within an hour; and
//! copy buttons whose JSON is the event as the API returns it (hostile text included) and whose
//! link is the event's permalink. Every page is checked for CSP violations.

use serde_json::{Value, json};

use super::webdriver::Browser;
use super::{Chromium, Site, WAIT, browser_tools, sign_in, table_rows};

async fn assert_no_csp_violation(browser: &Browser, context: &str) {
    let violations = browser
        .execute("return window.__cspViolations ?? null;", json!([]))
        .await;
    assert_eq!(violations, json!([]), "{context}: CSP violations");
}

const HOSTILE: &str =
    "Resized <script>window.pwned=1</script> invoice\u{202E}fdp.exe zero\u{200B}width \"quoted\"";

/// An account `acme` with an owner, a key, a server and: the resize (Alice, 10:00:00.123456 UTC,
/// its instance type changed), Alice's events at 09:30, 10:45 and 11:30, and Bob's at 10:10.
/// Returns the site, the key and the resize's id.
async fn event_site() -> (Site, String, String) {
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    let key = site.key("acme");
    site.serve();
    let alice = json!({"id": "alice@acme.example", "name": "Alice", "type": "user"});
    let ids = site
        .send(
            &key,
            json!([
                {"action": "server.resize", "message": HOSTILE, "actor": alice,
                 "created_at": "2024-06-01T10:00:00.123456Z",
                 "changes": [{"field": "instance_type", "old": "t2.micro", "new": "t2.large"}]},
                {"action": "user.login", "message": "Alice signed in", "actor": alice,
                 "created_at": "2024-06-01T09:30:00Z"},
                {"action": "server.reboot", "message": "Alice rebooted web-1", "actor": alice,
                 "created_at": "2024-06-01T10:45:00Z"},
                {"action": "user.logout", "message": "Alice signed out", "actor": alice,
                 "created_at": "2024-06-01T11:30:00Z"},
                {"action": "user.login", "message": "Bob signed in",
                 "actor": {"id": "bob@acme.example", "type": "user"},
                 "created_at": "2024-06-01T10:10:00Z"},
            ]),
        )
        .await;
    (site, key, ids[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_view_shows_times_to_the_millisecond_with_their_zone_and_marks_what_changed() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, id) = event_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    browser
        .devtools(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": "Asia/Kolkata" }),
        )
        .await;
    sign_in(browser, &site, "owner@acme.example").await;
    browser.goto(&site.url(&format!("/events/{id}"))).await;
    let shown = browser
        .execute(
            "return {
               utc: document.getElementById('event-utc-time').textContent,
               local: document.getElementById('event-local-time').textContent,
               created: [...document.querySelectorAll('dl.fields dt')].find((dt) => dt.textContent === 'Created at').nextElementSibling.textContent,
               removed: [...document.querySelectorAll('table.diff del')].map((mark) => mark.textContent),
               added: [...document.querySelectorAll('table.diff ins')].map((mark) => mark.textContent),
               before: document.querySelector('table.diff td.old').textContent,
               after: document.querySelector('table.diff td.new').textContent,
               pwned: window.pwned ?? null,
             };",
            json!([]),
        )
        .await;
    assert_eq!(shown["utc"], "2024-06-01 10:00:00.123 UTC", "{shown}");
    assert_eq!(shown["created"], "2024-06-01 10:00:00.123 UTC", "{shown}");
    // 10:00 UTC is 15:30 in Kolkata (UTC+5:30), to the millisecond and with the zone named.
    let local = shown["local"].as_str().unwrap();
    assert!(local.contains("15:30:00.123"), "{shown}");
    assert!(
        local.contains("GMT+5:30") || local.contains("IST"),
        "{shown}"
    );
    assert_eq!(shown["removed"], json!(["micro"]), "{shown}");
    assert_eq!(shown["added"], json!(["large"]), "{shown}");
    assert_eq!(shown["before"], "\"t2.micro\"");
    assert_eq!(shown["after"], "\"t2.large\"");
    assert_eq!(shown["pwned"], Value::Null);
    assert_no_csp_violation(browser, "the event view").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_view_lists_the_actors_other_events_within_an_hour_and_links_to_all_of_them() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, id) = event_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    browser.goto(&site.url(&format!("/events/{id}"))).await;
    let related = browser
        .execute(
            "return [...document.querySelectorAll('#related-events li a')].map((link) => link.textContent);",
            json!([]),
        )
        .await;
    let related: Vec<&str> = related
        .as_array()
        .unwrap()
        .iter()
        .map(|text| text.as_str().unwrap())
        .collect();
    // Alice's 10:45 and 09:30 events, newest first; not her 11:30 one (over an hour later), not
    // Bob's, not this one.
    assert_eq!(related.len(), 2, "{related:?}");
    assert!(related[0].ends_with("Alice rebooted web-1"), "{related:?}");
    assert!(related[1].ends_with("Alice signed in"), "{related:?}");

    browser.click("#related-list").await;
    browser
        .wait_for(
            "the list of the related events",
            "return location.pathname === '/' && document.readyState === 'complete';",
            WAIT,
        )
        .await;
    let q = browser
        .execute(
            "return new URLSearchParams(location.search).get('q');",
            json!([]),
        )
        .await;
    assert_eq!(
        q,
        "actor:alice@acme.example created:2024-06-01T09:00:00.123456Z..2024-06-01T11:00:00.123455Z"
    );
    assert_eq!(table_rows(browser).await.len(), 3);

    // A related event opens, and its own view lists the resize among its neighbours.
    browser.goto(&site.url(&format!("/events/{id}"))).await;
    browser.click("#related-events li a").await;
    browser
        .wait_for(
            "the related event",
            "return document.querySelector('h1.event-title')?.textContent === 'Alice rebooted web-1';",
            WAIT,
        )
        .await;
    assert_no_csp_violation(browser, "the related events").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_buttons_copy_the_event_json_the_api_returns_and_the_permalink() {
    let Some(tools) = browser_tools() else { return };
    let (site, key, id) = event_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    browser
        .devtools(
            "Browser.grantPermissions",
            json!({ "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"], "origin": site.url("") }),
        )
        .await;
    browser.goto(&site.url(&format!("/events/{id}"))).await;
    let clipboard = |button: &'static str, done: &'static str| async move {
        browser
            .execute("window.__copied = undefined;", json!([]))
            .await;
        browser.click(button).await;
        browser
            .wait_for(
                "the copy to finish",
                &format!(
                    "return document.getElementById('copy-status').textContent === {};",
                    json!(done)
                ),
                WAIT,
            )
            .await;
        browser
            .execute(
                "navigator.clipboard.readText().then((text) => { window.__copied = text; });",
                json!([]),
            )
            .await;
        browser
            .wait_for("the clipboard to be read", "return window.__copied;", WAIT)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    };

    let copied = clipboard("#copy-event-json", "Event JSON copied").await;
    let from_api: Value = site
        .http
        .get(site.url(&format!("/api/v1/events/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let copied_value: Value = serde_json::from_str(&copied).unwrap();
    assert_eq!(copied_value, from_api, "the copied JSON is the API's event");
    assert_eq!(copied_value["message"], HOSTILE);

    let link = clipboard("#copy-permalink", "Link copied").await;
    assert_eq!(link, site.url(&format!("/events/{id}")));
    let pwned = browser
        .execute("return window.pwned ?? null;", json!([]))
        .await;
    assert_eq!(pwned, Value::Null);
    assert_no_csp_violation(browser, "the copy buttons").await;
    chromium.stop().await;
}
