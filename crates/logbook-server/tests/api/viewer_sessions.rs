//! Viewer sessions and the embedded view (`POST /api/v1/viewer-sessions`, `/view/...`): a URL
//! opens once and records the view, every route of a session reads only its account and its
//! scope, ended and tampered links are clear error pages, bad input is refused with its field,
//! framing is allowed only to configured origins, and making sessions is rate-limited.

use std::time::Duration;

use logbook_core::api_key::KeyOwner;
use logbook_server::ServerSettings;
use logbook_server::web::viewer::EmbedSettings;
use serde_json::{Value, json};

use crate::support::{TestAccount, TestServer, error_code, event, json_of};

struct Embedding {
    server: TestServer,
    acme: TestAccount,
    globex: TestAccount,
    acme_admin: String,
    /// The ids of acme's events: Alice's reboot, Bob's firewall change, Bob's failed login.
    acme_events: Vec<String>,
    globex_event: String,
    /// Does not follow redirects, so the answer of opening a URL can be read.
    browser: reqwest::Client,
}

impl Embedding {
    async fn start_with(embed: EmbedSettings) -> Self {
        let server = TestServer::start_with(ServerSettings {
            embed,
            ..ServerSettings::default()
        })
        .await;
        let acme = server.test_account("acme").await;
        let globex = server.test_account("globex").await;
        let acme_admin = server
            .create_key(KeyOwner::Account(acme.account.clone()), "admin")
            .await;
        let acme_events = ids_of(
            server
                .post_events(
                    &acme.ingest_key,
                    &json!({"events": [
                        event("Rebooted web-1", json!({"actor": {"id": "alice@acme.com", "type": "user"},
                            "targets": [{"type": "server", "id": "srv-123"}]})),
                        event("Opened port 22", json!({"action": "firewall.rule.update",
                            "actor": {"id": "bob@acme.com", "type": "user"},
                            "targets": [{"type": "firewall", "id": "fw-1"}]})),
                        event("Bob failed to sign in", json!({"action": "user.login", "outcome": "failure",
                            "actor": {"id": "bob@acme.com", "type": "user"},
                            "targets": [{"type": "server", "id": "srv-123"}]})),
                    ]}),
                )
                .await,
        )
        .await;
        let globex_event = ids_of(
            server
                .post_events(
                    &globex.ingest_key,
                    &json!({"events": [event("Globex secret change", json!({}))]}),
                )
                .await,
        )
        .await
        .remove(0);
        Embedding {
            server,
            acme,
            globex,
            acme_admin,
            acme_events,
            globex_event,
            browser: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn start() -> Self {
        Self::start_with(EmbedSettings::default()).await
    }

    async fn create(&self, key: &str, body: Value) -> reqwest::Response {
        self.server
            .client
            .post(self.server.url("/api/v1/viewer-sessions"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Makes a session of acme with `scope` fields and opens it; returns the view's base path.
    async fn open(&self, fields: Value) -> String {
        let mut body = json!({
            "account": "acme",
            "person": {"id": "bob@acme.com", "name": "Bob Builder", "email": "bob@acme.com"},
            "scope": "all",
        });
        for (name, value) in fields.as_object().unwrap() {
            body[name] = value.clone();
        }
        let answer = self.create(&self.acme_admin, body).await;
        assert_eq!(answer.status(), 201);
        let created = json_of(answer).await;
        let url = created["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&self.server.base_url), "{url}");
        let opened = self.browser.get(&url).send().await.unwrap();
        assert_eq!(opened.status(), 303, "opening the URL sends the person in");
        let location = opened.headers()["location"].to_str().unwrap().to_owned();
        location.trim_end_matches('/').to_owned()
    }

    async fn page(&self, path: &str) -> (u16, String) {
        let answer = self
            .browser
            .get(self.server.url(path))
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    async fn acme_events_with_action(&self, action: &str) -> Vec<Value> {
        self.server
            .list_events(&self.acme.read_key, &[("q", &format!("action:{action}"))])
            .await["events"]
            .as_array()
            .unwrap()
            .clone()
    }
}

async fn ids_of(response: reqwest::Response) -> Vec<String> {
    let body = json_of(response).await;
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("ingest answered {body}"))
        .iter()
        .map(|result| result["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_viewer_url_opens_once_records_the_view_and_reads_only_its_own_account() {
    let embedding = Embedding::start().await;
    let answer = embedding
        .create(
            &embedding.acme_admin,
            json!({"account": "acme", "person": {"id": "user_8831", "name": "Ana Lima", "email": "ana@acme.com"},
                   "scope": "all", "export": true, "lifetime_seconds": 600}),
        )
        .await;
    assert_eq!(answer.status(), 201);
    let created = json_of(answer).await;
    assert_eq!(created["scope"], "all");
    assert_eq!(created["export"], true);
    let url = created["url"].as_str().unwrap();

    let opened = embedding.browser.get(url).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    let view = opened.headers()["location"].to_str().unwrap().to_owned();
    assert!(view.starts_with("/view/") && view.ends_with('/'), "{view}");
    let view = view.trim_end_matches('/');

    let again = embedding.browser.get(url).send().await.unwrap();
    assert_eq!(again.status(), 404, "a used URL opens nothing");
    let text = again.text().await.unwrap();
    assert!(text.contains("This link does not open anything"), "{text}");

    let (status, page) = embedding.page(&format!("{view}/")).await;
    assert_eq!(status, 200);
    for message in ["Rebooted web-1", "Opened port 22", "Bob failed to sign in"] {
        assert!(page.contains(message), "the view shows {message}");
    }
    assert!(!page.contains("Globex secret change"));
    assert!(page.contains("Viewing as Ana Lima"));
    for logbook_page in [
        "href=\"/team\"",
        "href=\"/keys\"",
        "href=\"/alerts\"",
        "href=\"/security\"",
        "action=\"/logout\"",
    ] {
        assert!(
            !page.contains(logbook_page),
            "no {logbook_page} in the embedded view"
        );
    }
    assert!(
        page.contains(&format!(
            "href=\"{view}/events/{}\"",
            embedding.acme_events[0]
        )),
        "event links stay inside the session"
    );

    let (status, _) = embedding
        .page(&format!("{view}/events/{}", embedding.acme_events[1]))
        .await;
    assert_eq!(status, 200, "an event of the account opens");
    let (status, page) = embedding
        .page(&format!("{view}/events/{}", embedding.globex_event))
        .await;
    assert_eq!(status, 404, "another account's event does not exist here");
    assert!(!page.contains("Globex secret change"));

    let (status, export) = embedding
        .page(&format!(
            "{view}/events/export?format=ndjson&q=-action%3Alogbook.*"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(export.lines().count(), 3, "the producer's events: {export}");
    assert!(!export.contains("Globex"));

    let views = embedding.acme_events_with_action("logbook.log.view").await;
    assert_eq!(views.len(), 1, "opening is recorded once");
    assert_eq!(views[0]["actor"]["id"], "user_8831");
    assert_eq!(views[0]["actor"]["name"], "Ana Lima");
    assert_eq!(views[0]["metadata"]["scope"], "all");
    assert!(views[0]["ip"].is_string(), "{}", views[0]);
    let exports = embedding.acme_events_with_action("logbook.export").await;
    assert_eq!(exports.len(), 1, "the export is recorded");
    assert_eq!(exports[0]["actor"]["id"], "user_8831");
    assert!(
        embedding
            .server
            .list_events(&embedding.globex.read_key, &[("q", "action:logbook.*")])
            .await["events"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing of acme's viewing reaches globex's log"
    );

    // A token changed by hand, a token that never existed, and garbage are the same error page.
    let last = view.chars().last().unwrap();
    let tampered = format!(
        "{}{}",
        &view[..view.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    for path in [
        format!("{tampered}/"),
        format!("{tampered}/events/{}", embedding.acme_events[0]),
        format!("{tampered}/events/export?format=csv"),
        "/view/0123456789abcdef0123456789abcdef/".to_owned(),
        "/view/not-a-token/".to_owned(),
        "/view/open/0123456789abcdef0123456789abcdef".to_owned(),
    ] {
        let (status, page) = embedding.page(&path).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("This link does not open anything"), "{path}");
        assert!(!page.contains("Rebooted web-1"), "{path}");
    }
}

#[tokio::test]
async fn a_fixed_query_and_the_own_scope_hold_whatever_is_typed_or_edited_in_the_url() {
    let embedding = Embedding::start().await;
    let view = embedding
        .open(json!({"scope": {"query": "target:srv-123"}}))
        .await;
    let (_, page) = embedding.page(&format!("{view}/")).await;
    assert!(page.contains("Rebooted web-1") && page.contains("Bob failed to sign in"));
    assert!(!page.contains("Opened port 22"), "outside the fixed query");
    assert!(page.contains("You see the events matching target:srv-123"));
    for typed in [
        "-target:srv-123",
        "target:fw-1",
        "target:srv-123 OR target:fw-1",
        "target:srv-123,fw-1",
        "-target:srv-123 -target:srv-124",
        "action:firewall.*",
    ] {
        let (status, page) = embedding
            .page(&format!("{view}/?q={}", url_component(typed)))
            .await;
        assert!(status == 200 || status == 400, "{typed}: {status}");
        assert!(
            !page.contains("Opened port 22"),
            "{typed} escaped the fixed query"
        );
    }
    let (status, _) = embedding
        .page(&format!("{view}/events/{}", embedding.acme_events[1]))
        .await;
    assert_eq!(
        status, 404,
        "an event outside the fixed query is not found by id"
    );
    let (status, _) = embedding
        .page(&format!("{view}/events/export?format=ndjson&q="))
        .await;
    assert_eq!(status, 403, "this session may not export");

    let view = embedding
        .open(json!({"scope": "own", "export": true}))
        .await;
    let (_, page) = embedding
        .page(&format!("{view}/?q=actor:alice@acme.com"))
        .await;
    assert!(
        !page.contains("Rebooted web-1"),
        "Alice's event is not Bob's own"
    );
    let (_, page) = embedding.page(&format!("{view}/")).await;
    assert!(page.contains("Opened port 22") && page.contains("Bob failed to sign in"));
    assert!(!page.contains("Rebooted web-1"));
    let (status, _) = embedding
        .page(&format!("{view}/events/{}", embedding.acme_events[0]))
        .await;
    assert_eq!(status, 404);
    let (_, export) = embedding
        .page(&format!(
            "{view}/events/export?format=ndjson&q=-actor:bob@acme.com"
        ))
        .await;
    assert_eq!(export.lines().count(), 0, "{export}");
}

fn url_component(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn an_unopened_url_expires_and_an_open_session_ends_at_its_lifetime() {
    let embedding = Embedding::start_with(EmbedSettings {
        open_within: Duration::from_secs(1),
        ..EmbedSettings::default()
    })
    .await;
    let body =
        json!({"account": "acme", "person": {"id": "u1"}, "scope": "all", "lifetime_seconds": 2});
    let late = json_of(embedding.create(&embedding.acme_admin, body.clone()).await).await;
    let view = embedding.open(json!({"lifetime_seconds": 2})).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let opened = embedding
        .browser
        .get(late["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        opened.status(),
        404,
        "a URL not opened in time opens nothing"
    );
    let (status, _) = embedding.page(&format!("{view}/")).await;
    assert_eq!(status, 200, "the opened session lives on");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (status, page) = embedding.page(&format!("{view}/")).await;
    assert_eq!(status, 410, "the session ended");
    assert!(page.contains("This view has ended"));
    assert!(!page.contains("Rebooted web-1"));
}

#[tokio::test]
async fn bad_requests_for_a_viewer_session_are_refused_with_their_field() {
    let embedding = Embedding::start().await;
    let globex_admin = embedding
        .server
        .create_key(KeyOwner::Account(embedding.globex.account.clone()), "admin")
        .await;
    let person = json!({"id": "u1", "name": "Ana"});
    // An account the key may not manage is answered like one that does not exist: 404 with
    // the field `account`.
    for (key, account) in [
        (&globex_admin, "acme"),
        (&embedding.acme_admin, "nobody"),
        (&embedding.acme_admin, "ACME!"),
    ] {
        let answer = embedding
            .create(
                key,
                json!({"account": account, "person": person, "scope": "all"}),
            )
            .await;
        assert_eq!(answer.status(), 404, "{account}");
        let error = json_of(answer).await;
        assert_eq!(error["error"]["field"], "account", "{error}");
        assert_eq!(error_code(&error), "unknown_account");
    }
    let overlong = "x".repeat(257);
    for (body, field) in [
        (
            json!({"account": "acme", "person": person, "scope": {"query": "created:>=never"}}),
            "scope.query",
        ),
        (
            json!({"account": "acme", "person": person, "scope": {"query": "  "}}),
            "scope.query",
        ),
        (
            json!({"account": "acme", "person": person, "scope": "all", "query": "x"}),
            "/query",
        ),
        (
            json!({"account": "acme", "person": person, "scope": "everything"}),
            "/scope",
        ),
        (
            json!({"account": "acme", "person": {"id": overlong}, "scope": "all"}),
            "person.id",
        ),
        (
            json!({"account": "acme", "person": {"id": " u1"}, "scope": "all"}),
            "person.id",
        ),
        (
            json!({"account": "acme", "person": {"id": "u1", "name": "<script>alert(1)</script>"}, "scope": "all"}),
            "person.name",
        ),
        (
            json!({"account": "acme", "person": {"id": "u1", "name": "Ana\u{202e}moc.live"}, "scope": "all"}),
            "person.name",
        ),
        (
            json!({"account": "acme", "person": {"id": "u1", "email": "nope"}, "scope": "all"}),
            "person.email",
        ),
        (
            json!({"account": "acme", "person": person, "scope": "all", "lifetime_seconds": 43201}),
            "lifetime_seconds",
        ),
        (
            json!({"account": "acme", "person": person, "scope": "all", "lifetime_seconds": 0}),
            "lifetime_seconds",
        ),
        (
            json!({"account": "acme", "person": person, "scope": "all", "lifetime_seconds": 1.5}),
            "/lifetime_seconds",
        ),
    ] {
        let answer = embedding.create(&embedding.acme_admin, body.clone()).await;
        assert_eq!(answer.status(), 400, "{body}");
        let error = json_of(answer).await;
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    let answer = embedding
        .create(
            &embedding.acme.read_key,
            json!({"account": "acme", "person": person, "scope": "all"}),
        )
        .await;
    assert_eq!(answer.status(), 403, "a read key makes no sessions");
    assert_eq!(error_code(&json_of(answer).await), "forbidden");
}
#[tokio::test]
async fn the_view_may_be_framed_only_by_configured_origins_and_other_pages_never() {
    let embedding = Embedding::start_with(EmbedSettings {
        look: logbook_core::viewer::EmbedLook {
            frame_ancestors: vec!["https://console.example.com".into()],
            ..Default::default()
        },
        ..EmbedSettings::default()
    })
    .await;
    let set = embedding
        .server
        .client
        .put(embedding.server.url("/api/v1/accounts/acme/embed"))
        .bearer_auth(&embedding.acme_admin)
        .json(&json!({"frame_ancestors": ["http://localhost:4000"], "product_name": "Acme Cloud",
                      "accent_colour": "#0A7", "theme": "dark", "logo_url": "https://cdn.acme.com/logo.svg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let stored = json_of(set).await;
    assert_eq!(stored["own"]["accent_colour"], "#00aa77");
    assert_eq!(
        stored["effective"]["frame_ancestors"],
        json!(["https://console.example.com", "http://localhost:4000"])
    );
    assert_eq!(
        embedding
            .acme_events_with_action("logbook.embed.change")
            .await
            .len(),
        1
    );

    let view = embedding.open(json!({})).await;
    let answer = embedding
        .browser
        .get(embedding.server.url(&format!("{view}/")))
        .send()
        .await
        .unwrap();
    let policy = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("frame-ancestors https://console.example.com http://localhost:4000;"),
        "{policy}"
    );
    assert!(
        policy.contains("img-src 'self' data: https://cdn.acme.com;"),
        "{policy}"
    );
    assert!(answer.headers().get("x-frame-options").is_none());
    assert_eq!(answer.headers()["referrer-policy"], "no-referrer");
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let page = answer.text().await.unwrap();
    assert!(page.contains("Acme Cloud") && page.contains("data-theme=\"dark\""));
    let (status, stylesheet) = embedding.page(&format!("{view}/look.css")).await;
    assert_eq!(status, 200);
    assert!(stylesheet.contains("--accent: #00aa77;"), "{stylesheet}");

    // A link that opens nothing shows its error inside the instance's allowed frames.
    let answer = embedding
        .browser
        .get(
            embedding
                .server
                .url("/view/0123456789abcdef0123456789abcdef/"),
        )
        .send()
        .await
        .unwrap();
    let policy = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("frame-ancestors https://console.example.com;"),
        "{policy}"
    );

    for page in ["/login", "/"] {
        let answer = embedding
            .browser
            .get(embedding.server.url(page))
            .send()
            .await
            .unwrap();
        if let Some(policy) = answer.headers().get("content-security-policy") {
            assert!(
                policy.to_str().unwrap().contains("frame-ancestors 'none'"),
                "{page} is never framed"
            );
        }
    }

    for (body, field) in [
        (json!({"accent_colour": "red"}), "accent_colour"),
        (json!({"accent_colour": "#fff;}body{x:y"}), "accent_colour"),
        (json!({"frame_ancestors": ["*"]}), "frame_ancestors"),
        (
            json!({"frame_ancestors": ["https://a.example; script-src *"]}),
            "frame_ancestors",
        ),
        (
            json!({"frame_ancestors": ["http://console.example.com"]}),
            "frame_ancestors",
        ),
        (json!({"logo_url": "javascript:alert(1)"}), "logo_url"),
        (
            json!({"logo_url": "https://x.example/a\" onerror=\"alert(1)"}),
            "logo_url",
        ),
        (
            json!({"product_name": "<img src=x onerror=alert(1)>"}),
            "product_name",
        ),
        (json!({"theme": "neon"}), "/theme"),
    ] {
        let answer = embedding
            .server
            .client
            .put(embedding.server.url("/api/v1/accounts/acme/embed"))
            .bearer_auth(&embedding.acme_admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{body}");
        assert_eq!(json_of(answer).await["error"]["field"], field, "{body}");
    }
    let kept = json_of(
        embedding
            .server
            .get(&embedding.acme_admin, "/api/v1/accounts/acme/embed")
            .await,
    )
    .await;
    assert_eq!(
        kept["own"]["product_name"], "Acme Cloud",
        "refused changes changed nothing"
    );
}

#[tokio::test]
async fn making_sessions_is_rate_limited_per_account() {
    let embedding = Embedding::start_with(EmbedSettings {
        sessions_per_minute_per_account: 2,
        ..EmbedSettings::default()
    })
    .await;
    let body = json!({"account": "acme", "person": {"id": "u1"}, "scope": "all"});
    for _ in 0..2 {
        assert_eq!(
            embedding
                .create(&embedding.acme_admin, body.clone())
                .await
                .status(),
            201
        );
    }
    let refused = embedding.create(&embedding.acme_admin, body).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(&json_of(refused).await), "rate_limited");
}

#[tokio::test]
async fn every_route_of_the_view_reads_only_its_sessions_account_and_refuses_changed_tokens() {
    let embedding = Embedding::start().await;
    let globex_admin = embedding
        .server
        .create_key(KeyOwner::Account(embedding.globex.account.clone()), "admin")
        .await;
    let created = json_of(
        embedding
            .create(
                &globex_admin,
                json!({"account": "globex", "person": {"id": "g1"}, "scope": "all", "export": true}),
            )
            .await,
    )
    .await;
    let opened = embedding
        .browser
        .get(created["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let globex_view = opened.headers()["location"]
        .to_str()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let acme_event = &embedding.acme_events[0];
    for path in [
        format!("{globex_view}/"),
        format!("{globex_view}/?q=actor:alice@acme.com"),
        format!("{globex_view}/events/{acme_event}"),
        format!("{globex_view}/events/export?format=ndjson"),
        format!("{globex_view}/events/export?format=csv&q=Rebooted"),
        format!("{globex_view}/attention"),
    ] {
        let (status, body) = embedding.page(&path).await;
        assert!(status == 200 || status == 404, "{path}: {status}");
        for acme_text in [
            "Rebooted web-1",
            "Opened port 22",
            "Bob failed",
            acme_event.as_str(),
        ] {
            assert!(
                !body.contains(acme_text) || path.contains(acme_text),
                "{path} shows acme's {acme_text}"
            );
        }
    }
    // The live stream from the start of the log sends globex's events only.
    let live = embedding
        .browser
        .get(
            embedding
                .server
                .url(&format!("{globex_view}/events/live?from_seq=0")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let mut stream = live.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !seen.contains("Globex secret change") && tokio::time::Instant::now() < deadline {
        use futures::StreamExt;
        if let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(Duration::from_millis(500), stream.next()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("Globex secret change"), "{seen}");
    assert!(!seen.contains("Rebooted web-1"), "{seen}");

    // Every route with a token changed by hand, or an ended one, is the same refusal.
    let token = globex_view.trim_start_matches("/view/");
    let changed = format!(
        "{}{}",
        &token[..31],
        if token.ends_with('a') { 'b' } else { 'a' }
    );
    for route in [
        "/",
        "/events/x",
        "/events/export?format=csv",
        "/events/live",
        "/attention",
        "/look.css",
    ] {
        let (status, body) = embedding.page(&format!("/view/{changed}{route}")).await;
        assert_eq!(status, 404, "{route}");
        assert!(!body.contains("Globex secret change"), "{route}");
    }
}
