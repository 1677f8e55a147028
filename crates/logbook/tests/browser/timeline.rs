//! The timeline above the Activity Logs table (issue 21, item 3) in real Chromium: it shows how
//! many of the search's events fall in each hour, a bar clicked (or reached by keyboard) narrows
//! `created:` to its hour and the address holds it, dragging across bars narrows to their range,
//! it fits a 360 px screen and stays visible in dark mode, the embedded view's fixed query limits
//! what it counts, and hostile search text stays inert in its links. Every page is checked for CSP
//! violations.

use serde_json::{Value, json};

use super::embedded_view::{admin_key, viewer_url, wait_for_activity_logs};
use super::webdriver::Browser;
use super::{Chromium, Site, WAIT, browser_tools, sign_in, table_rows};

const ENTER: &str = "\u{E007}";

/// An account `acme` with an owner, nine events on 2024-06-01 (three at 10:xx, one at 11:xx, none
/// at 12:xx, five at 13:xx, two of those `server.reboot`), and a server.
async fn timeline_site() -> Site {
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    let key = site.key("acme");
    site.serve();
    let at = |time: &str, action: &str, message: &str| {
        json!({"action": action, "message": message, "created_at": format!("2024-06-01T{time}Z"),
               "actor": {"id": "alice@acme.example", "name": "Alice", "type": "user"}})
    };
    site.send(
        &key,
        json!([
            at("10:00:00", "deploy.start", "Deploy started"),
            at("10:20:00", "deploy.step", "Deploy step"),
            at("10:59:59.999", "deploy.finish", "Deploy finished"),
            at("11:30:00", "user.login", "Signed in"),
            at("13:00:00", "server.reboot", "Rebooted web-1"),
            at("13:10:00", "server.reboot", "Rebooted web-2"),
            at("13:20:00", "dns.record.update", "Updated www"),
            at("13:30:00", "dns.record.update", "Updated api"),
            at("13:59:00", "dns.record.update", "Updated mail"),
        ]),
    )
    .await;
    site
}

async fn assert_no_csp_violation(browser: &Browser, context: &str) {
    let violations = browser
        .execute("return window.__cspViolations ?? null;", json!([]))
        .await;
    assert_eq!(violations, json!([]), "{context}: CSP violations");
}

/// Each bar's start and count, left to right.
async fn bars(browser: &Browser) -> Vec<(String, u64)> {
    let bars = browser
        .execute(
            "return [...document.querySelectorAll('#timeline-chart .timeline-bar')].map((bar) => [bar.dataset.start, Number(bar.dataset.events)]);",
            json!([]),
        )
        .await;
    bars.as_array()
        .unwrap_or_else(|| panic!("no timeline: {bars}"))
        .iter()
        .map(|bar| {
            (
                bar[0].as_str().unwrap().to_owned(),
                bar[1].as_u64().unwrap(),
            )
        })
        .collect()
}

fn hours(counts: &[(&str, u64)]) -> Vec<(String, u64)> {
    counts
        .iter()
        .map(|(hour, count)| (format!("2024-06-01T{hour}:00:00Z"), *count))
        .collect()
}

async fn wait_for_query(browser: &Browser, expected: &str) {
    browser
        .wait_for(
            &format!("the list searched for {expected}"),
            &format!(
                "return new URLSearchParams(location.search).get('q') === {} && document.readyState === 'complete';",
                json!(expected)
            ),
            WAIT,
        )
        .await;
}

/// The viewport centre of the bar starting at `hour` (`HH`), for a pointer.
async fn bar_centre(browser: &Browser, hour: &str) -> (i64, i64) {
    let centre = browser
        .execute(
            "const box = document.querySelector(`#timeline-chart .timeline-bar[data-start='2024-06-01T${arguments[0]}:00:00Z'] .slot`).getBoundingClientRect();
             return [Math.round(box.left + box.width / 2), Math.round(box.top + box.height / 2)];",
            json!([hour]),
        )
        .await;
    (centre[0].as_i64().unwrap(), centre[1].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_counts_the_searchs_events_per_hour_and_a_bar_narrows_created_to_its_hour() {
    let Some(tools) = browser_tools() else { return };
    let site = timeline_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;

    // Signing in records an event now (`logbook.*`); leave it out to see the day of the sample.
    browser.goto(&site.url("/?q=-action%3Alogbook.*")).await;
    assert_eq!(
        bars(browser).await,
        hours(&[("10", 3), ("11", 1), ("12", 0), ("13", 5)])
    );
    let total = browser
        .execute(
            "return document.getElementById('timeline-total').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(total, "9");

    // The timeline counts the search, not the whole log.
    browser
        .goto(&site.url("/?q=-action%3Alogbook.*+-action%3Aserver.reboot"))
        .await;
    assert_eq!(
        bars(browser).await,
        hours(&[("10", 3), ("11", 1), ("12", 0), ("13", 3)])
    );

    // Clicking a bar narrows `created:` to its hour; the address holds the query.
    browser
        .click("#timeline-chart a.timeline-bar[data-start='2024-06-01T10:00:00Z']")
        .await;
    let narrowed = "-action:logbook.* -action:server.reboot created:2024-06-01T10:00:00Z..2024-06-01T10:59:59.999999Z";
    wait_for_query(browser, narrowed).await;
    assert_eq!(table_rows(browser).await.len(), 3);
    assert_eq!(
        browser
            .execute("return document.getElementById('q').value;", json!([]))
            .await,
        json!(narrowed)
    );
    assert_no_csp_violation(browser, "a bar clicked").await;

    // A bar is a link: the keyboard reaches and opens it too, and a new bar replaces the
    // search's `created:` range instead of adding a second one.
    browser
        .goto(&site.url("/?q=-action%3Alogbook.*+-action%3Aserver.reboot"))
        .await;
    browser
        .execute(
            "document.querySelector(`#timeline-chart a.timeline-bar[data-start='2024-06-01T13:00:00Z']`).focus();",
            json!([]),
        )
        .await;
    let focused = browser
        .execute(
            "return document.activeElement.matches('a.timeline-bar') && document.activeElement.querySelector('title').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(
        focused,
        "3 events, 2024-06-01 13:00 UTC to 2024-06-01 14:00 UTC"
    );
    browser.press_keys(ENTER).await;
    wait_for_query(
        browser,
        "-action:logbook.* -action:server.reboot created:2024-06-01T13:00:00Z..2024-06-01T13:59:59.999999Z",
    )
    .await;
    assert_eq!(table_rows(browser).await.len(), 3);
    assert_no_csp_violation(browser, "a bar opened by keyboard").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dragging_across_the_timeline_narrows_created_to_the_bars_it_covers() {
    let Some(tools) = browser_tools() else { return };
    let site = timeline_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    browser
        .goto(&site.url("/?q=actor%3Aalice%40acme.example"))
        .await;
    let from = bar_centre(browser, "10").await;
    let to = bar_centre(browser, "11").await;
    browser.drag(from, to).await;
    wait_for_query(
        browser,
        "actor:alice@acme.example created:2024-06-01T10:00:00Z..2024-06-01T11:59:59.999999Z",
    )
    .await;
    assert_eq!(table_rows(browser).await.len(), 4);
    // The narrowed search draws its own timeline: the two hours it covers.
    assert_eq!(bars(browser).await, hours(&[("10", 3), ("11", 1)]));
    // Dragging right to left selects the same way.
    let from = bar_centre(browser, "11").await;
    let to = bar_centre(browser, "10").await;
    browser.drag(from, to).await;
    wait_for_query(
        browser,
        "actor:alice@acme.example created:2024-06-01T10:00:00Z..2024-06-01T11:59:59.999999Z",
    )
    .await;
    assert_no_csp_violation(browser, "a range dragged").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_fits_360_px_shows_in_dark_mode_and_keeps_hostile_search_text_inert() {
    let Some(tools) = browser_tools() else { return };
    let site = timeline_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    browser
        .devtools(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 360, "height": 800, "deviceScaleFactor": 1, "mobile": true }),
        )
        .await;
    browser
        .devtools(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }),
        )
        .await;
    let hostile = "-action:logbook.* -\"</svg><img src=x id=injected>\" -\"'><script>window.pwned=1</script>\"";
    browser.goto(&site.url("/")).await;
    browser.type_into("#q", hostile).await;
    browser.click("#search-form button[type=submit]").await;
    wait_for_query(browser, hostile).await;
    let layout = browser
        .execute(
            "const chart = document.getElementById('timeline-chart').getBoundingClientRect();
             const bar = document.querySelector('#timeline-chart .bar');
             return {
               overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
               chartRight: chart.right, chartWidth: chart.width, chartHeight: chart.height,
               barFill: getComputedStyle(bar).fill,
               background: getComputedStyle(document.body).backgroundColor,
               injected: document.getElementById('injected') !== null || window.pwned === 1,
               hrefs: [...document.querySelectorAll('#timeline-chart a')].every((link) => link.getAttribute('href').startsWith('/?q=')),
             };",
            json!([]),
        )
        .await;
    assert_eq!(
        layout["overflow"], 0,
        "no sideways scroll at 360 px: {layout}"
    );
    assert!(layout["chartRight"].as_f64().unwrap() <= 360.0, "{layout}");
    assert!(layout["chartWidth"].as_f64().unwrap() >= 300.0, "{layout}");
    assert!(layout["chartHeight"].as_f64().unwrap() >= 40.0, "{layout}");
    assert_eq!(
        layout["background"], "rgb(15, 18, 22)",
        "dark mode: {layout}"
    );
    assert_eq!(
        layout["barFill"], "rgb(138, 180, 248)",
        "light bars on the dark page: {layout}"
    );
    assert_eq!(layout["injected"], false, "{layout}");
    assert_eq!(layout["hrefs"], true, "{layout}");
    assert_eq!(
        bars(browser).await,
        hours(&[("10", 3), ("11", 1), ("12", 0), ("13", 5)])
    );
    // The hostile search survives a bar click as text.
    browser
        .click("#timeline-chart a.timeline-bar[data-start='2024-06-01T11:00:00Z']")
        .await;
    browser
        .wait_for(
            "the hour narrowed",
            "return (new URLSearchParams(location.search).get('q') ?? '').includes('created:2024-06-01T11:00:00Z');",
            WAIT,
        )
        .await;
    let still_inert = browser
        .execute(
            "return document.getElementById('injected') === null && window.pwned === undefined && document.getElementById('q').value.includes('<script>');",
            json!([]),
        )
        .await;
    assert_eq!(still_inert, true);
    assert_eq!(table_rows(browser).await.len(), 1);
    assert_no_csp_violation(browser, "the timeline at 360 px in dark mode").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_embedded_view_the_timeline_and_related_events_keep_to_the_fixed_query() {
    let Some(tools) = browser_tools() else { return };
    let site = timeline_site().await;
    let admin_key = admin_key(&site);
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    let url = viewer_url(
        &site,
        &admin_key,
        json!({"scope": {"query": "action:deploy.*,dns.*"}}),
    )
    .await;
    browser.goto(&url).await;
    wait_for_activity_logs(browser).await;
    // Three deploys at 10:xx and three DNS updates at 13:xx; the sign-in and reboots are outside.
    assert_eq!(
        bars(browser).await,
        hours(&[("10", 3), ("11", 0), ("12", 0), ("13", 3)])
    );
    browser
        .click("#timeline-chart a.timeline-bar[data-start='2024-06-01T13:00:00Z']")
        .await;
    wait_for_query(
        browser,
        "created:2024-06-01T13:00:00Z..2024-06-01T13:59:59.999999Z",
    )
    .await;
    let path: Value = browser
        .execute("return location.pathname;", json!([]))
        .await;
    assert!(
        path.as_str().unwrap().starts_with("/view/"),
        "the bar kept the view: {path}"
    );
    assert_eq!(table_rows(browser).await.len(), 3);
    assert_no_csp_violation(browser, "the embedded view's timeline").await;

    // The event view's related events keep to the fixed query too: Alice's sign-in at 11:30 is
    // within an hour of the 10:59 deploy but outside the view (issue 21, item 4).
    browser
        .execute(
            "location.assign(location.pathname + '?q=' + encodeURIComponent('action:deploy.finish'));",
            json!([]),
        )
        .await;
    wait_for_query(browser, "action:deploy.finish").await;
    browser.click("#events a.row-link").await;
    let related = browser
        .wait_for(
            "the deploy's event view",
            "const items = document.querySelectorAll('#related-events li a'); return items.length > 0 && [...items].map((link) => link.textContent);",
            WAIT,
        )
        .await;
    let related: Vec<&str> = related
        .as_array()
        .unwrap()
        .iter()
        .map(|text| text.as_str().unwrap())
        .collect();
    assert_eq!(related.len(), 2, "{related:?}");
    assert!(related[0].ends_with("Deploy step"), "{related:?}");
    assert!(related[1].ends_with("Deploy started"), "{related:?}");
    let path: Value = browser
        .execute("return location.pathname;", json!([]))
        .await;
    assert!(path.as_str().unwrap().starts_with("/view/"), "{path}");
    assert_no_csp_violation(browser, "the embedded view's event").await;
    chromium.stop().await;
}

/// The README's pictures of the Activity Logs page (issue 21, item 8): two days of a small team's
/// events, with the timeline per hour, failures and new-IP marks, desktop light and dark and a
/// 360 px phone. Saved under `<target>/screenshots/readme-*.png`; `docs/` holds copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_screenshots_show_the_timeline_light_and_dark_and_at_360_px() {
    let Some(tools) = browser_tools() else { return };
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    let key = site.key("acme");
    site.serve();
    // Relative to the real time, so the page's "3 min ago" and the hourly bars read naturally.
    let now = logbook_core::clock::Clock::now(&logbook_core::clock::SystemClock);
    let people = [
        ("priya@acme.example", "Priya Tanaka"),
        ("sam@acme.example", "Sam Okafor"),
        ("deploy-bot", "Deploy bot"),
        ("lena@acme.example", "Lena Fischer"),
    ];
    let actions = [
        ("server.reboot", "Rebooted server web-{n}"),
        (
            "dns.record.update",
            "Updated DNS record www{n}.acme.example",
        ),
        (
            "firewall.rule.update",
            "Opened port 443 on firewall edge-{n}",
        ),
        (
            "deploy.finish",
            "Deployed release 2026.12.{n} to production",
        ),
        ("user.login", "Signed in"),
        ("api_key.create", "Created API key ci-{n}"),
    ];
    // Busier in working hours, quiet at night: a shape worth a timeline.
    let events: Vec<Value> = (0..90_i64)
        .map(|n| {
            let minutes_ago = (n * n * 7 + n * 13) % (22 * 60);
            let created = now - time::Duration::minutes(minutes_ago);
            let (actor, name) = people[(n % 4) as usize];
            let (action, message) = actions[(n * 5 % 6) as usize];
            let mut event = json!({
                "action": action,
                "message": message.replace("{n}", &(n % 9).to_string()),
                "actor": {"id": actor, "name": name, "type": "user"},
                "ip": format!("203.0.113.{}", 10 + n % 4 + if n % 23 == 0 { 100 } else { 0 }),
                "created_at": created.format(&time::format_description::well_known::Rfc3339).unwrap(),
            });
            if n % 11 == 0 {
                event["outcome"] = json!("failure");
            }
            event
        })
        .collect();
    site.send(&key, Value::Array(events)).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    let directory = super::screenshot_directory();
    std::fs::create_dir_all(&directory).unwrap();
    for (scheme, width, height, name) in [
        ("light", 1280, 900, "readme-activity-logs-light.png"),
        ("dark", 1280, 900, "readme-activity-logs-dark.png"),
        ("light", 360, 900, "readme-activity-logs-360.png"),
    ] {
        browser
            .devtools(
                "Emulation.setEmulatedMedia",
                json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
            )
            .await;
        browser
            .devtools(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
            )
            .await;
        browser.goto(&site.url("/")).await;
        let shown = browser
            .execute(
                "return { bars: document.querySelectorAll('#timeline-chart a.timeline-bar').length, overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth };",
                json!([]),
            )
            .await;
        assert!(shown["bars"].as_u64().unwrap() >= 10, "{name}: {shown}");
        // With a full timeline the page's HTML, CSS and script stay under 100 KB (issue 21, item 7).
        let bytes = browser
            .execute(
                "return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].map((entry) => entry.decodedBodySize).reduce((a, b) => a + b, 0);",
                json!([]),
            )
            .await;
        eprintln!("{name}: page, stylesheet and script {bytes} bytes");
        assert!(bytes.as_u64().unwrap() < 100_000, "{name}: {bytes} bytes");
        assert_eq!(shown["overflow"], 0, "{name}: {shown}");
        std::fs::write(directory.join(name), browser.screenshot_png().await).unwrap();
    }
    assert_no_csp_violation(browser, "the README's pages").await;
    chromium.stop().await;
}
