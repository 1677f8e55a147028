//! The Activity Logs table as people scan it (issue 21, items 1, 2, 5 and 9) in real Chromium:
//! enough events above the fold at 1280x800, one line each; clicking a value narrows the list
//! (Shift excludes it) and the address holds the query; the keyboard alone searches, moves
//! through rows, opens an event and comes back; the longest values the API accepts never make a
//! 360 px page scroll sideways; hostile values stay inert in hovers and in the terms they become;
//! a search that cannot run marks the spot and disables export. Every page is checked for CSP
//! violations.

use serde_json::{Value, json};

use super::embedded_view::{admin_key, viewer_url, wait_for_activity_logs};
use super::webdriver::Browser;
use super::{
    Chromium, WAIT, acme_site, browser_tools, messages_of, response_status, sign_in, table_rows,
};

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";
const TAB: &str = "\u{E004}";

async fn assert_no_csp_violation(browser: &Browser, context: &str) {
    let violations = browser
        .execute("return window.__cspViolations ?? null;", json!([]))
        .await;
    assert_eq!(violations, json!([]), "{context}: CSP violations");
}

async fn search_text(browser: &Browser) -> String {
    browser
        .execute(
            "return new URLSearchParams(location.search).get('q');",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits for a page load whose `q` is `expected`, then checks the search box shows it too.
async fn wait_for_query(browser: &Browser, expected: &str) {
    browser
        .wait_for(
            &format!("the list searched for {expected}"),
            &format!(
                "return new URLSearchParams(location.search).get('q') === {} && document.readyState === 'complete' && document.getElementById('q') !== null;",
                json!(expected)
            ),
            WAIT,
        )
        .await;
    assert_eq!(search_text(browser).await, expected);
    let in_the_box = browser
        .execute("return document.getElementById('q').value;", json!([]))
        .await;
    assert_eq!(
        in_the_box,
        json!(expected),
        "the search box shows the query"
    );
}

async fn viewport(browser: &Browser, width: u32, height: u32) {
    browser
        .devtools(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await;
}

/// How far the page scrolls sideways, and the widest elements when it does.
async fn sideways_scroll(browser: &Browser) -> Value {
    browser
        .execute(
            "const limit = document.documentElement.clientWidth;
             const overflow = document.documentElement.scrollWidth - limit;
             if (overflow <= 0) return 0;
             return [overflow, ...[...document.querySelectorAll('body *')]
                .filter((element) => element.getBoundingClientRect().right > limit + 1)
                .slice(0, 6)
                .map((element) => element.tagName + '.' + element.className + '#' + element.id + ' ' + Math.round(element.getBoundingClientRect().right)),
                ...[...document.querySelectorAll('body *')]
                .filter((element) => element.scrollWidth > limit && getComputedStyle(element).overflowX === 'visible')
                .slice(-4)
                .map((element) => 'wide content: ' + element.tagName + '.' + element.className + ' ' + element.scrollWidth)];",
            json!([]),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_1280_by_800_at_least_fifteen_events_show_above_the_fold_one_line_each() {
    let Some(tools) = browser_tools() else { return };
    let (site, key, _ids) = acme_site().await;
    let events: Vec<Value> = (0..30)
        .map(|number| {
            json!({"action": "dns.record.update",
                   "message": format!("Updated DNS record www{number}.acme.example to 203.0.113.{number} after the scheduled maintenance window of the edge network"),
                   "ip": format!("198.51.100.{}", 20 + number),
                   "actor": {"id": format!("carol.longname{number}@acme.example"), "name": "Carol Example-Longname", "type": "user"},
                   "outcome": if number % 7 == 0 { "failure" } else { "success" }})
        })
        .collect();
    site.send(&key, Value::Array(events)).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    viewport(browser, 1280, 800).await;
    sign_in(browser, &site, "owner@acme.example").await;

    let fold = browser
        .execute(
            "const rows = [...document.querySelectorAll('#events tbody tr')];
             const line = parseFloat(getComputedStyle(rows[0].querySelector('td.message')).lineHeight);
             return {
               height: innerHeight,
               width: document.documentElement.clientWidth,
               above: rows.filter((row) => row.getBoundingClientRect().bottom <= innerHeight).length,
               tallest: Math.max(...rows.map((row) => row.getBoundingClientRect().height)),
               line,
             };",
            json!([]),
        )
        .await;
    assert_eq!(fold["height"], 800, "{fold}");

    assert!(
        fold["above"].as_u64().unwrap() >= 15,
        "at least 15 events above the fold at 1280x800: {fold}"
    );
    assert!(
        fold["tallest"].as_f64().unwrap() < 2.0 * fold["line"].as_f64().unwrap(),
        "every event is one line: {fold}"
    );

    let rows = table_rows(browser).await;
    let carol = rows
        .iter()
        .find(|row| row["actor"] == "Carol Example-Longname")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert!(
        carol["actor_title"]
            .as_str()
            .unwrap()
            .contains("@acme.example"),
        "the actor's id on hover: {carol}"
    );
    // Sent just now: relative words, with the absolute local time and UTC on hover.
    assert!(
        ["just now", "min ago"]
            .iter()
            .any(|words| carol["shown_time"].as_str().unwrap().contains(words)),
        "{carol}"
    );
    let title = carol["time_title"].as_str().unwrap();
    assert!(
        title.contains(carol["created_at"].as_str().unwrap()) && title.contains("(UTC)"),
        "{carol}"
    );
    assert!(title.lines().count() >= 2, "local time and UTC: {title:?}");
    let sample = rows
        .iter()
        .find(|row| row["message"] == "Rebooted server web-1")
        .unwrap();
    assert_eq!(sample["shown_time"], "Jun 1, 2024");

    // A failed outcome says so in words, not only in colour.
    let failed_words = browser
        .execute(
            "return [...document.querySelectorAll('#events tbody tr.failed')].map((row) => row.querySelector('td.message').innerText);",
            json!([]),
        )
        .await;
    let failed_words = failed_words.as_array().unwrap();
    assert!(!failed_words.is_empty());
    for text in failed_words {
        assert!(text.as_str().unwrap().contains("failed"), "{text}");
    }
    // Clicking anywhere in a row (here its time) opens the event.
    browser.click("#events tbody tr:nth-child(3) td.time").await;
    browser
        .wait_for(
            "the event view after clicking its row",
            "return location.pathname.startsWith('/events/') && document.querySelector('h1.event-title') !== null;",
            WAIT,
        )
        .await;
    assert_no_csp_violation(browser, "the event view").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_a_value_narrows_the_list_and_shift_click_excludes_it() {
    let Some(tools) = browser_tools() else { return };
    let (site, key, _ids) = acme_site().await;
    // A hostile actor id: quotes, a space, a would-be extra term and a `*`.
    let hostile_actor = "eve\" -actor:x outcome:failure *";
    site.send(
        &key,
        json!([{"action": "user.update", "message": "Eve changed something", "ip": "192.0.2.200",
                "actor": {"id": hostile_actor, "name": "Eve"}}]),
    )
    .await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;

    // Click Bob's actor in the row of his failed sign-in.
    browser
        .execute(
            "[...document.querySelectorAll('#events tbody tr')].find((row) => row.querySelector('a.row-link').textContent === 'Bob failed to sign in').querySelector('td.actor button').click();",
            json!([]),
        )
        .await;
    wait_for_query(browser, "actor:bob@acme.example").await;
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Bob failed to sign in", "Opened port 22 on firewall edge"]
    );

    // Shift-click an action excludes it; the query keeps the actor.
    browser
        .shift_click("#events tbody tr:first-child td.action button")
        .await;
    wait_for_query(browser, "actor:bob@acme.example -action:user.login").await;
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Opened port 22 on firewall edge"]
    );
    assert_no_csp_violation(browser, "the narrowed list").await;

    // In the event view, a target narrows the list it came from.
    browser
        .click("#events tbody tr:first-child a.row-link")
        .await;
    browser
        .wait_for(
            "the event view",
            "return document.querySelector('ul.targets button.narrow');",
            WAIT,
        )
        .await;
    browser.click("ul.targets button.narrow").await;
    wait_for_query(
        browser,
        "actor:bob@acme.example -action:user.login target:fw_1",
    )
    .await;
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Opened port 22 on firewall edge"]
    );

    // An IP clicked on a fresh list, then the hostile actor: each stays one exact term.
    browser.goto(&site.url("/")).await;
    browser
        .execute(
            "[...document.querySelectorAll('#events td.ip button')].find((button) => button.textContent.startsWith('192.0.2.200')).click();",
            json!([]),
        )
        .await;
    wait_for_query(browser, "ip:192.0.2.200").await;
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Eve changed something"]
    );
    browser
        .click("#events tbody tr:first-child td.actor button")
        .await;
    let expected = "ip:192.0.2.200 actor:\"eve\\\" -actor:x outcome:failure *\"";
    wait_for_query(browser, expected).await;
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Eve changed something"],
        "the hostile id matched exactly, its text did not become terms"
    );
    let pwned = browser.execute("return document.title;", json!([])).await;
    assert!(!pwned.as_str().unwrap().contains("pwned"));
    assert_no_csp_violation(browser, "after the hostile term").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_alone_searches_moves_through_rows_opens_an_event_and_comes_back() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    browser.goto(&site.url("/?q=action%3Aserver.reboot")).await;

    let focused = "const active = document.activeElement;
         return {
           id: active.id,
           tag: active.tagName,
           className: active.className,
           text: active.textContent,
           row: active.closest('tr') ? [...active.closest('tbody').rows].indexOf(active.closest('tr')) : null,
           rowOutline: active.closest('tr') ? getComputedStyle(active.closest('tr')).outlineStyle : null,
         };";

    // The skip link is the first stop and lands on the results; the next stop is the first row,
    // then the second: one stop per row.
    browser.press_keys(TAB).await;
    let first = browser.execute(focused, json!([])).await;
    assert_eq!(first["className"], "skip", "{first}");
    assert_eq!(first["text"], "Skip to results");
    browser.press_keys(ENTER).await;
    browser.press_keys(TAB).await;
    let row = browser.execute(focused, json!([])).await;
    assert_eq!(
        (&row["className"], &row["row"]),
        (&json!("row-link"), &json!(0)),
        "{row}"
    );
    browser.press_keys(TAB).await;
    let row = browser.execute(focused, json!([])).await;
    assert_eq!(row["row"], 1, "the next Tab is the next row: {row}");

    // `/` focuses the search box; Escape leaves it.
    browser.press_keys("/").await;
    let search = browser.execute(focused, json!([])).await;
    assert_eq!(search["id"], "q", "{search}");
    browser.press_keys(ESCAPE).await;
    browser.press_keys("j").await;
    let row = browser.execute(focused, json!([])).await;
    assert_eq!(row["row"], 0, "j moves to the first row: {row}");
    assert_eq!(
        row["rowOutline"], "solid",
        "the focused row is outlined: {row}"
    );
    browser.press_keys("jjk").await;
    let row = browser.execute(focused, json!([])).await;
    assert_eq!(
        row["row"], 0,
        "j j past the last row stays there, k goes up: {row}"
    );
    let message = row["text"].as_str().unwrap().to_owned();

    browser.press_keys(ENTER).await;
    browser
        .wait_for(
            "the event opened with Enter",
            "const title = document.querySelector('h1.event-title'); return title && title.textContent;",
            WAIT,
        )
        .await;
    let title = browser
        .execute(
            "return document.querySelector('h1.event-title').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(title, json!(message));
    assert_no_csp_violation(browser, "the event view").await;

    browser.press_keys(ESCAPE).await;
    wait_for_query(browser, "action:server.reboot").await;
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Rebooted server db-2", "Rebooted server web-1"],
        "Escape goes back to the list the event was opened from"
    );
    assert_no_csp_violation(browser, "the list").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_values_the_api_accepts_never_make_the_page_scroll_sideways() {
    let Some(tools) = browser_tools() else { return };
    let (site, key, _ids) = acme_site().await;
    let message = "M".repeat(4096);
    let long_id = format!("{}@acme.example", "p".repeat(512 - "@acme.example".len()));
    let action = format!("{}.{}", "a".repeat(255), "b".repeat(256));
    let change_value = "v".repeat(20_000);
    let ids = site
        .send(
            &key,
            json!([{"action": action, "message": message, "ip": "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe",
                    "actor": {"id": long_id, "name": "N".repeat(512), "type": "user"},
                    "user_agent": "U".repeat(512),
                    "targets": [{"type": "t".repeat(512), "id": "i".repeat(512), "name": "n".repeat(512)}],
                    "changes": [{"field": "f".repeat(512), "old": change_value, "new": format!("{change_value}w")}],
                    "metadata": {"note": "m".repeat(15_000)}}]),
        )
        .await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;

    for width in [360, 1280] {
        viewport(browser, width, 800).await;
        for path in ["/".to_owned(), format!("/events/{}", ids[0])] {
            browser.goto(&site.url(&path)).await;
            assert_eq!(response_status(browser).await, 200);
            assert_eq!(
                sideways_scroll(browser).await,
                json!(0),
                "{path} at {width} px scrolls sideways"
            );
            let scrolling_tables = browser
                .execute(
                    "return [...document.querySelectorAll('.table-wrap')].filter((wrap) => wrap.scrollWidth > wrap.clientWidth + 1).map((wrap) => wrap.firstElementChild.id || wrap.firstElementChild.className);",
                    json!([]),
                )
                .await;
            assert_eq!(
                scrolling_tables,
                json!([]),
                "{path} at {width} px: no table scrolls sideways either"
            );
            assert_no_csp_violation(browser, &path).await;
        }
        // The long event's row stays short, and the event heading is a few lines, not screens.
        browser.goto(&site.url("/")).await;
        let row_height = browser
            .execute(
                "return document.querySelector('#events tbody tr').getBoundingClientRect().height;",
                json!([]),
            )
            .await;
        assert!(
            row_height.as_f64().unwrap() < 160.0,
            "{width} px: the first row is {row_height} px tall"
        );
        browser
            .goto(&site.url(&format!("/events/{}", ids[0])))
            .await;
        let heading = browser
            .execute(
                "return document.querySelector('h1.event-title').getBoundingClientRect().height;",
                json!([]),
            )
            .await;
        assert!(
            heading.as_f64().unwrap() < 200.0,
            "{width} px: the heading is {heading} px tall"
        );
        // The whole message is still there, in the Message field.
        let whole = browser
            .execute(
                "return [...document.querySelectorAll('dl.fields dd')].some((field) => field.textContent === arguments[0]);",
                json!([message]),
            )
            .await;
        assert_eq!(whole, true);
    }
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_stay_inert_in_hovers_and_in_the_terms_they_become() {
    let Some(tools) = browser_tools() else { return };
    let (site, key, _ids) = acme_site().await;
    let hostile =
        "invoice\u{202E}fdp.exe\"><img src=x onerror=\"window.__pwned=1;document.title='pwned'\">";
    site.send(
        &key,
        json!([{"action": "user.update", "message": "hostile hover", "ip": "192.0.2.201",
                "actor": {"id": hostile, "name": hostile},
                "targets": [{"type": "file", "id": hostile}]}]),
    )
    .await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;

    let hover = browser
        .execute(
            "const row = [...document.querySelectorAll('#events tbody tr')].find((row) => row.querySelector('a.row-link').textContent === 'hostile hover');
             const button = row.querySelector('td.actor button');
             return { title: button.title, text: button.textContent, images: document.querySelectorAll('main img').length, pwned: window.__pwned ?? null };",
            json!([]),
        )
        .await;
    assert_eq!(hover["images"], 0, "{hover}");
    assert_eq!(hover["pwned"], Value::Null, "{hover}");
    let title = hover["title"].as_str().unwrap();
    assert!(
        title.contains("invoice\\u{202E}fdp.exe\"><img"),
        "the hover shows the text literally, the override made visible: {title:?}"
    );
    assert!(!title.contains('\u{202E}'), "{title:?}");
    assert!(!hover["text"].as_str().unwrap().contains('\u{202E}'));

    browser
        .execute(
            "[...document.querySelectorAll('#events a.row-link')].find((link) => link.textContent === 'hostile hover').click();",
            json!([]),
        )
        .await;
    browser
        .wait_for(
            "the event view",
            "return document.querySelector('ul.targets button.narrow');",
            WAIT,
        )
        .await;
    let target_title = browser
        .execute(
            "return document.querySelector('ul.targets button.narrow').title;",
            json!([]),
        )
        .await;
    assert!(
        !target_title.as_str().unwrap().contains('\u{202E}'),
        "{target_title}"
    );
    browser.click("ul.targets button.narrow").await;
    browser
        .wait_for(
            "the list narrowed to the hostile target",
            "return new URLSearchParams(location.search).get('q')?.startsWith('target:') && document.getElementById('events');",
            WAIT,
        )
        .await;
    assert_eq!(messages_of(&table_rows(browser).await), ["hostile hover"]);
    let verdict = browser
        .execute(
            "return { pwned: window.__pwned ?? null, title: document.title, images: document.querySelectorAll('main img').length };",
            json!([]),
        )
        .await;
    assert_eq!(verdict["pwned"], Value::Null, "{verdict}");
    assert_eq!(verdict["images"], 0, "{verdict}");
    assert!(!verdict["title"].as_str().unwrap().contains("pwned"));
    assert_no_csp_violation(browser, "the narrowed list").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_cannot_run_marks_the_spot_in_the_box_and_disables_export() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    browser.type_into("#q", "résumé created:yesterdayish").await;
    browser.click("#search-form button[type=submit]").await;
    browser
        .wait_for(
            "the query error",
            "return document.getElementById('query-error');",
            WAIT,
        )
        .await;
    let state = browser
        .execute(
            "const box = document.getElementById('q');
             return {
               focused: document.activeElement === box,
               selected: box.value.slice(box.selectionStart, box.selectionEnd),
               invalid: box.getAttribute('aria-invalid'),
               marked: document.querySelector('#query-error-spot mark').textContent,
               csv: document.getElementById('export-csv').disabled,
               ndjson: document.getElementById('export-ndjson').disabled,
               errorText: document.getElementById('query-error').innerText,
             };",
            json!([]),
        )
        .await;
    assert_eq!(state["focused"], true, "{state}");
    // The value is what is wrong; it sits after a multi-byte word, so byte and UTF-16 offsets
    // differ and only a correct conversion selects it.
    assert_eq!(state["selected"], "yesterdayish", "{state}");
    assert_eq!(state["marked"], "yesterdayish", "{state}");
    assert_eq!(state["invalid"], "true", "{state}");
    assert_eq!(
        (&state["csv"], &state["ndjson"]),
        (&json!(true), &json!(true)),
        "{state}"
    );
    assert!(
        !state["errorText"].as_str().unwrap().contains("position"),
        "no byte positions: {state}"
    );
    assert_no_csp_violation(browser, "the error page").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_is_a_few_tab_stops_away_with_its_focus_visible_and_a_pager_at_the_top() {
    let Some(tools) = browser_tools() else { return };
    let (site, key, _ids) = acme_site().await;
    let events: Vec<Value> = (0..60)
        .map(|number| json!({"action": "server.ping", "message": format!("Ping {number}")}))
        .collect();
    site.send(&key, Value::Array(events)).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    viewport(browser, 1280, 800).await;
    sign_in(browser, &site, "owner@acme.example").await;
    browser.goto(&site.url("/")).await;
    let above = browser
        .execute(
            "return document.getElementById('next-page-top').getBoundingClientRect().bottom <= document.getElementById('events').getBoundingClientRect().top;",
            json!([]),
        )
        .await;
    assert_eq!(above, true, "a pager above the table");

    // Tab from the top of the page: each stop is named and shows its focus (the row's outline for
    // a row).
    let mut stops = Vec::new();
    for _ in 0..24 {
        browser.press_keys(TAB).await;
        let stop = browser
            .execute(
                "const active = document.activeElement;
                 const row = active.closest('tbody tr');
                 const shown = getComputedStyle(active).outlineStyle !== 'none' || (row && getComputedStyle(row).outlineStyle !== 'none');
                 return { name: active.id || active.className || active.tagName, text: active.textContent.trim().slice(0, 40), row: row ? [...row.parentNode.rows].indexOf(row) : null, shown };",
                json!([]),
            )
            .await;
        assert_eq!(stop["shown"], true, "focus is visible on {stop}");
        stops.push(stop);
    }
    let position = |name: &str| {
        stops
            .iter()
            .position(|stop| stop["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not among the first Tab stops: {stops:?}"))
    };
    assert_eq!(position("skip"), 0, "{stops:?}");
    assert!(position("q") < 12, "the search box: {stops:?}");
    for control in [
        "export-csv",
        "export-ndjson",
        "live-toggle",
        "next-page-top",
    ] {
        assert!(position(control) < 20, "{control}: {stops:?}");
    }
    let rows: Vec<&Value> = stops.iter().filter(|stop| !stop["row"].is_null()).collect();
    assert!(rows.len() >= 3, "{stops:?}");
    for (index, stop) in rows.iter().enumerate() {
        assert_eq!(stop["row"], index, "one stop per row, in order: {stops:?}");
    }

    browser.click("#next-page-top").await;
    browser
        .wait_for(
            "the second page",
            "return location.search.includes('cursor=') && document.querySelector('.pager-top a[rel=prev]');",
            WAIT,
        )
        .await;
    assert!(!table_rows(browser).await.is_empty());
    assert_no_csp_violation(browser, "the second page").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_embedded_view_clicking_and_the_keyboard_stay_inside_the_view() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let admin_key = admin_key(&site);
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    browser
        .goto(&viewer_url(&site, &admin_key, json!({"scope": "all"})).await)
        .await;
    wait_for_activity_logs(browser).await;
    let view_path = browser
        .execute("return location.pathname;", json!([]))
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(view_path.starts_with("/view/"), "{view_path}");

    browser
        .execute(
            "[...document.querySelectorAll('#events tbody tr')].find((row) => row.querySelector('a.row-link').textContent === 'Rebooted server web-1').querySelector('td.actor button').click();",
            json!([]),
        )
        .await;
    wait_for_query(browser, "actor:alice@acme.example").await;
    let path = browser
        .execute("return location.pathname;", json!([]))
        .await;
    assert_eq!(path, json!(view_path), "narrowing stays in the view");
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Rebooted server db-2", "Rebooted server web-1"]
    );
    browser
        .shift_click("#events tbody tr:first-child td.ip button")
        .await;
    wait_for_query(browser, "actor:alice@acme.example -ip:203.0.113.10").await;
    assert_eq!(
        messages_of(&table_rows(browser).await),
        ["Rebooted server web-1"]
    );

    browser.press_keys("j").await;
    browser.press_keys(ENTER).await;
    browser
        .wait_for(
            "the event in the view",
            "return location.pathname.includes('/events/') && document.getElementById('event-when');",
            WAIT,
        )
        .await;
    let shown = browser
        .execute(
            "return { path: location.pathname, when: document.getElementById('event-when').innerText, logbookOnly: document.querySelectorAll('main a[href=\"/security\"], main a[href=\"/networks\"]').length };",
            json!([]),
        )
        .await;
    assert!(
        shown["path"]
            .as_str()
            .unwrap()
            .starts_with(&view_path[..view_path.len() - 1]),
        "{shown}"
    );
    let when = shown["when"].as_str().unwrap();
    assert!(
        when.contains("(your time)") && when.contains("2024-06-01 09:12:00.000 UTC"),
        "the event view states local and UTC time: {shown}"
    );
    assert_eq!(shown["logbookOnly"], 0, "{shown}");
    browser.press_keys(ESCAPE).await;
    wait_for_query(browser, "actor:alice@acme.example -ip:203.0.113.10").await;
    let path = browser
        .execute("return location.pathname;", json!([]))
        .await;
    assert_eq!(path, json!(view_path), "Escape goes back inside the view");
    assert_no_csp_violation(browser, "the embedded view").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_times_are_read_in_the_readers_own_time_zone() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    browser
        .devtools(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": "Europe/Berlin" }),
        )
        .await;
    sign_in(browser, &site, "owner@acme.example").await;
    // The page's own module, asked for the words of fixed instants (10:30 UTC is 11:30 in Berlin).
    let words = browser
        .execute(
            "const module = await import(document.querySelector('script[type=module]').src);
             const now = new Date('2026-12-06T10:30:00Z');
             return ['2026-12-06T10:27:00Z', '2026-12-05T23:30:00Z', '2026-12-04T23:30:00Z', '2026-12-01T08:00:00Z', '2026-06-01T09:12:00Z', '2024-06-01T09:12:00Z']
               .map((at) => module.relativeTime(new Date(at), now));",
            json!([]),
        )
        .await;
    assert_eq!(
        words,
        json!([
            "3 min ago",
            "today 00:30",
            "yesterday 00:30",
            "Tue 09:00",
            "Jun 1, 11:12",
            "Jun 1, 2024"
        ]),
        "local days and clock times, not UTC ones"
    );
    assert_no_csp_violation(browser, "the list").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_arrives_live_narrows_with_the_same_terms_as_a_served_row() {
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
    let awkward = [
        "a \"b\",c*",
        "tab\there",
        "back\\slash",
        "plain@acme.example",
        "émile ☃",
    ];
    let events: Vec<Value> = awkward
        .iter()
        .map(|actor| {
            json!({"action": "user.update", "message": format!("live {actor}"), "ip": "2001:db8::7",
                   "actor": {"id": actor}})
        })
        .collect();
    site.send(&key, Value::Array(events)).await;
    let terms_of_rows = "return Object.fromEntries([...document.querySelectorAll('#events tbody tr')]
        .filter((row) => row.querySelector('a.row-link').textContent.startsWith('live '))
        .map((row) => [row.querySelector('a.row-link').textContent, [...row.querySelectorAll('button.narrow')].map((button) => button.value)]));";
    browser
        .wait_for(
            "the live rows",
            &format!(
                "return document.querySelectorAll('#events tbody tr.fresh').length >= {};",
                awkward.len()
            ),
            WAIT,
        )
        .await;
    let live = browser.execute(terms_of_rows, json!([])).await;
    browser.goto(&site.url("/")).await;
    let served = browser.execute(terms_of_rows, json!([])).await;
    assert_eq!(live.as_object().unwrap().len(), awkward.len(), "{live}");
    assert_eq!(live, served, "the script quotes values as the server does");
    assert_no_csp_violation(browser, "the list").await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_embedded_view_a_long_person_and_fixed_query_leave_the_list_near_the_top_at_360_px()
{
    let Some(tools) = browser_tools() else { return };
    let (site, _key, _ids) = acme_site().await;
    let admin_key = admin_key(&site);
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    viewport(browser, 360, 800).await;
    let fixed_query = format!("-target:{}", "x".repeat(2048 - "-target:".len()));
    let person = "p".repeat(256);
    browser
        .goto(
            &viewer_url(
                &site,
                &admin_key,
                json!({"scope": {"query": fixed_query}, "person": {"id": person, "name": "N".repeat(256)}}),
            )
            .await,
        )
        .await;
    wait_for_activity_logs(browser).await;
    assert_eq!(sideways_scroll(browser).await, json!(0));
    let layout = browser
        .execute(
            "return { tableTop: document.getElementById('events').getBoundingClientRect().top + scrollY, note: document.getElementById('scope-note').innerText };",
            json!([]),
        )
        .await;
    assert!(
        layout["tableTop"].as_f64().unwrap() < 800.0,
        "the list starts on the first screen: {layout}"
    );
    // The whole fixed query is one click away.
    browser.click("#scope-note summary").await;
    let whole = browser
        .execute(
            "return document.getElementById('scope-note').innerText.includes(arguments[0]);",
            json!([fixed_query]),
        )
        .await;
    assert_eq!(whole, true);
    assert_eq!(sideways_scroll(browser).await, json!(0));
    assert_no_csp_violation(browser, "the embedded view at 360 px").await;
    chromium.stop().await;
}
