//! The web page without a browser: sign-in, throttling, sessions, CSRF, roles, tenant isolation,
//! hostile text and audit events, against a real server on `127.0.0.1:0` over a fresh SQLite
//! store per test, with a `ManualClock` so timeouts can be crossed without waiting.

use std::sync::Arc;

use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::people::{NewUser, Role};
use logbook_core::store::{EventQuery, NewApiKey};
use logbook_core::{AccountId, Clock, ManualClock, Store};
use logbook_server::web::password::hash_password_blocking;
use logbook_server::{AppState, ServerSettings};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

mod alerts;
mod attention;
#[path = "../ip_database_writer/writer.rs"]
mod ip_database_writer;
mod networks;

const PASSWORD: &str = "correct horse battery staple";

struct Web {
    base_url: String,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    state: AppState,
    client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _data_dir: tempfile::TempDir,
}

/// A signed-in browser: its session cookie and the CSRF token of its forms.
struct Browser {
    cookie: String,
    csrf_token: String,
}

fn start_time() -> time::OffsetDateTime {
    time::macros::datetime!(2024-06-01 09:00 UTC)
}

impl Web {
    async fn start() -> Self {
        Self::start_with(ServerSettings::default()).await
    }

    async fn start_with(settings: ServerSettings) -> Self {
        Self::start_with_options(settings, SqliteOptions::default()).await
    }

    /// A server whose store locates addresses with the conformance stores' fixed locator.
    async fn start_locating() -> Self {
        let options = SqliteOptions {
            ip_locator: logbook_testkit::location_cases::test_ip_locator(),
            ..SqliteOptions::default()
        };
        Self::start_with_options(ServerSettings::default(), options).await
    }

    async fn start_with_options(settings: ServerSettings, options: SqliteOptions) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&data_dir.path().join("logbook.db"), options).unwrap());
        let clock = Arc::new(ManualClock::new(start_time()));
        let state = AppState::new(store.clone(), clock.clone(), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(logbook_server::serve(listener, state.clone(), async move {
            let _ = stop.await;
        }));
        Web {
            base_url: format!("http://{address}"),
            store,
            clock,
            state,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            _shutdown: shutdown,
            _data_dir: data_dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn account(&self, name: &str) -> AccountId {
        let account = AccountId::parse(name).unwrap();
        self.store
            .create_account(&account, self.clock.now())
            .await
            .unwrap();
        account
    }

    async fn user(&self, account: &AccountId, email: &str, role: Role) {
        self.store
            .people()
            .create_user(NewUser {
                user_id: format!("usr_{}", uuid::Uuid::now_v7().simple()).into(),
                account: account.clone(),
                email: email.to_owned(),
                role,
                password_hash: hash_password_blocking(PASSWORD).unwrap(),
                created_at: self.clock.now(),
            })
            .await
            .unwrap();
    }

    async fn ingest_key(&self, account: &AccountId) -> String {
        let random: [u8; 17] =
            std::array::from_fn(|index| uuid::Uuid::now_v7().as_bytes()[index % 16] ^ index as u8);
        let key = PlaintextApiKey::from_random_bytes(random);
        self.store
            .create_api_key(NewApiKey {
                key_id: format!("key_{}", uuid::Uuid::now_v7().simple()).into(),
                key_hash: key.hash(),
                owner: KeyOwner::Account(account.clone()),
                scopes: Scopes {
                    ingest: true,
                    read: false,
                    admin: false,
                },
                display_prefix: key.display_prefix(),
                description: None,
                created_at: self.clock.now(),
            })
            .await
            .unwrap();
        key.expose().to_owned()
    }

    async fn send(&self, key: &str, events: Value) -> Vec<String> {
        let answer: Value = self
            .client
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
            .unwrap()
            .iter()
            .map(|result| result["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn post_login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    async fn sign_in(&self, email: &str) -> Browser {
        self.sign_in_with(email, PASSWORD).await
    }

    async fn sign_in_with(&self, email: &str, password: &str) -> Browser {
        let answer = self.post_login(email, password).await;
        assert_eq!(
            answer.status(),
            StatusCode::SEE_OTHER,
            "sign-in of {email} redirects"
        );
        let cookie = session_cookie_of(answer.headers()).expect("a session cookie is set");
        let page = self.page(&cookie, "/").await;
        let csrf_token = csrf_token_in(&page.1).expect("the page holds a CSRF token");
        Browser { cookie, csrf_token }
    }

    async fn page(&self, cookie: &str, path: &str) -> (StatusCode, String, HeaderMap) {
        let answer = self
            .client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let headers = answer.headers().clone();
        (status, answer.text().await.unwrap(), headers)
    }

    async fn post_form(
        &self,
        browser: &Browser,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", &browser.csrf_token)];
        form.extend_from_slice(fields);
        self.client
            .post(self.url(path))
            .header("cookie", &browser.cookie)
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    async fn audit_events(&self, account: &AccountId, query_text: &str) -> Vec<Value> {
        let page = self
            .store
            .query_events(
                account,
                &EventQuery {
                    query: logbook_core::query::parse(query_text).unwrap(),
                    limit: 100,
                    after: None,
                },
            )
            .await
            .unwrap();
        page.events
            .iter()
            .map(|row| serde_json::from_str(&row.to_json()).unwrap())
            .collect()
    }
}

fn session_cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("logbook_session=") && !value.contains("Max-Age=0"))
        .map(|value| value.split(';').next().unwrap().to_owned())
}

fn csrf_token_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    Some(html[start..start + 64].to_owned())
}

fn location(answer: &reqwest::Response) -> &str {
    answer
        .headers()
        .get(LOCATION)
        .map(|value| value.to_str().unwrap())
        .unwrap_or_default()
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_records_the_login_with_its_ip() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let answer = web.post_login("Alice@Acme.com", PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), "/");
    let cookie = answer
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http is not Secure: {cookie}"
    );
    let logins = web.audit_events(&acme, "action:logbook.login").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["actor"]["id"], "alice@acme.com");
    assert_eq!(logins[0]["ip"], "127.0.0.1");
    assert_eq!(logins[0]["outcome"], "success");
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let web = Web::start_with(ServerSettings {
        public_url: Some("https://logbook.example.com".into()),
        ..ServerSettings::default()
    })
    .await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let answer = web.post_login("alice@acme.com", PASSWORD).await;
    assert!(
        answer
            .headers()
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer_and_the_failure_is_logged() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let wrong_password = web.post_login("alice@acme.com", "not the password").await;
    let unknown_email = web.post_login("nobody@acme.com", PASSWORD).await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie_of(wrong_password.headers()).is_none());
    let first = wrong_password
        .text()
        .await
        .unwrap()
        .replace("alice@acme.com", "EMAIL");
    let second = unknown_email
        .text()
        .await
        .unwrap()
        .replace("nobody@acme.com", "EMAIL");
    assert_eq!(first, second);
    let failures = web.audit_events(&acme, "action:logbook.login_failed").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["outcome"], "failure");
    assert_eq!(failures[0]["ip"], "127.0.0.1");
    assert!(
        failures[0]["message"]
            .as_str()
            .unwrap()
            .contains("alice@acme.com")
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled_and_the_real_user_gets_in_after_the_window() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    for _ in 0..5 {
        assert_eq!(
            web.post_login("alice@acme.com", "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let throttled = web.post_login("alice@acme.com", PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(session_cookie_of(throttled.headers()).is_none());
    web.clock.advance(time::Duration::minutes(16));
    assert_eq!(
        web.post_login("alice@acme.com", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_email_in_several_accounts_is_asked_for_its_account_after_a_correct_password() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    let globex = web.account("globex").await;
    web.user(&acme, "alice@example.com", Role::Owner).await;
    web.user(&globex, "alice@example.com", Role::Viewer).await;
    let answer = web.post_login("alice@example.com", PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert!(page.contains("<option value=\"acme\">") && page.contains("<option value=\"globex\">"));
    let chosen = web
        .client
        .post(web.url("/login"))
        .form(&[
            ("email", "alice@example.com"),
            ("password", PASSWORD),
            ("account", "globex"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        web.audit_events(&globex, "action:logbook.login")
            .await
            .len(),
        1
    );
    assert_eq!(
        web.audit_events(&acme, "action:logbook.login").await.len(),
        0
    );
}

#[tokio::test]
async fn pages_need_a_session_and_carry_a_strict_content_security_policy() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let anonymous = web.client.get(web.url("/")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login");
    let browser = web.sign_in("alice@acme.com").await;
    let (status, _, headers) = web.page(&browser.cookie, "/").await;
    assert_eq!(status, StatusCode::OK);
    let policy = headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        policy.contains("script-src 'self'")
            && policy.contains("frame-ancestors 'none'")
            && !policy.contains("unsafe-inline")
    );
    assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
    // Every page goes through the one rendering path and so gets the page policy, which lets it
    // load its own stylesheet and script (the fallback `default-src 'none'` would not).
    for path in [
        "/",
        "/team",
        "/keys",
        "/alerts",
        "/networks",
        "/security",
        "/attention",
    ] {
        let (status, _, headers) = web.page(&browser.cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers
                .get("content-security-policy")
                .unwrap()
                .to_str()
                .unwrap(),
            logbook_server::web::render::PAGE_CONTENT_SECURITY_POLICY,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_form_without_the_session_csrf_token_or_from_another_site_is_refused() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let browser = web.sign_in("alice@acme.com").await;
    let forged = Browser {
        cookie: browser.cookie.clone(),
        csrf_token: "0".repeat(64),
    };
    assert_eq!(
        web.post_form(&forged, "/logout", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let cross_site = web
        .client
        .post(web.url("/logout"))
        .header("cookie", &browser.cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf_token", browser.csrf_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let fetch_site = web
        .client
        .post(web.url("/team/invite"))
        .header("cookie", &browser.cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf_token", browser.csrf_token.as_str()),
            ("email", "eve@evil.example"),
            ("role", "owner"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(fetch_site.status(), StatusCode::FORBIDDEN);
    // Still signed in: nothing above changed anything.
    assert_eq!(web.page(&browser.cookie, "/").await.0, StatusCode::OK);
    assert!(
        web.audit_events(&acme, "action:logbook.member.invite")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn logout_revokes_the_session_in_the_store() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let browser = web.sign_in("alice@acme.com").await;
    let answer = web.post_form(&browser, "/logout", &[]).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert!(
        answer
            .headers()
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie, replayed, is refused.
    assert_eq!(
        web.page(&browser.cookie, "/").await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        web.audit_events(&acme, "action:logbook.logout").await.len(),
        1
    );
}

#[tokio::test]
async fn sessions_end_after_the_idle_timeout_and_after_the_absolute_timeout() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let idle = web.sign_in("alice@acme.com").await;
    web.clock.advance(time::Duration::minutes(29));
    assert_eq!(web.page(&idle.cookie, "/").await.0, StatusCode::OK);
    web.clock.advance(time::Duration::minutes(31));
    assert_eq!(web.page(&idle.cookie, "/").await.0, StatusCode::SEE_OTHER);

    let busy = web.sign_in("alice@acme.com").await;
    for _ in 0..30 {
        web.clock.advance(time::Duration::minutes(25));
        if web.page(&busy.cookie, "/").await.0 != StatusCode::OK {
            break;
        }
    }
    let (status, _, _) = web.page(&busy.cookie, "/").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a session used every 25 minutes still ends after 12 h"
    );
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let laptop = web.sign_in("alice@acme.com").await;
    let phone = web.sign_in("alice@acme.com").await;
    let answer = web
        .post_form(
            &laptop,
            "/security/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
                ("new_password_again", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let fresh_cookie =
        session_cookie_of(answer.headers()).expect("this browser gets a fresh session");
    assert_eq!(web.page(&phone.cookie, "/").await.0, StatusCode::SEE_OTHER);
    assert_eq!(web.page(&laptop.cookie, "/").await.0, StatusCode::SEE_OTHER);
    assert_eq!(web.page(&fresh_cookie, "/").await.0, StatusCode::OK);
    assert_eq!(
        web.audit_events(&acme, "action:logbook.password.change")
            .await
            .len(),
        1
    );
    assert_eq!(
        web.post_login("alice@acme.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_member_sees_only_their_own_events_in_the_table_the_details_and_the_export() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "bob@acme.com", Role::Member).await;
    let key = web.ingest_key(&acme).await;
    let ids = web
        .send(&key, json!([
            {"action": "server.reboot", "message": "Alice rebooted web-1", "actor": {"id": "alice@acme.com"}},
            {"action": "server.reboot", "message": "Bob rebooted web-2", "actor": {"id": "bob@acme.com"}}
        ]))
        .await;
    let bob = web.sign_in("bob@acme.com").await;
    let (_, table, _) = web.page(&bob.cookie, "/").await;
    assert!(table.contains("Bob rebooted web-2"));
    assert!(!table.contains("Alice rebooted web-1"));
    // Asking for Alice's events by query changes nothing: the server adds Bob's own filter.
    let (_, searched, _) = web.page(&bob.cookie, "/?q=actor%3Aalice%40acme.com").await;
    assert!(!searched.contains("Alice rebooted"));
    assert_eq!(
        web.page(&bob.cookie, &format!("/events/{}", ids[0]))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        web.page(&bob.cookie, &format!("/events/{}", ids[1]))
            .await
            .0,
        StatusCode::OK
    );
    let (status, export, _) = web.page(&bob.cookie, "/events/export?format=ndjson").await;
    assert_eq!(status, StatusCode::OK);
    assert!(export.contains("Bob rebooted") && !export.contains("Alice rebooted"));
    assert_eq!(
        web.audit_events(&acme, "action:logbook.export").await.len(),
        1
    );
    // Members do not manage the team.
    let invite = web
        .post_form(
            &bob,
            "/team/invite",
            &[("email", "eve@acme.com"), ("role", "owner")],
        )
        .await;
    assert_eq!(invite.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn nothing_of_another_account_is_reachable_and_it_all_answers_404() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    let globex = web.account("globex").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    web.user(&globex, "gina@globex.com", Role::Owner).await;
    let globex_key = web.ingest_key(&globex).await;
    let ids = web
        .send(
            &globex_key,
            json!([{"action": "server.delete", "message": "Globex secret"}]),
        )
        .await;
    let alice = web.sign_in("alice@acme.com").await;
    assert_eq!(
        web.page(&alice.cookie, &format!("/events/{}", ids[0]))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, table, _) = web.page(&alice.cookie, "/").await;
    assert!(!table.contains("Globex secret"));
    let gina = web
        .store
        .people()
        .list_users(&globex)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let role = web
        .post_form(
            &alice,
            &format!("/team/{}/role", gina.user_id),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(role.status(), StatusCode::NOT_FOUND);
    let remove = web
        .post_form(&alice, &format!("/team/{}/remove", gina.user_id), &[])
        .await;
    assert_eq!(remove.status(), StatusCode::NOT_FOUND);
    let globex_keys = web.store.list_api_keys(Some(&globex)).await.unwrap();
    let revoke = web
        .post_form(
            &alice,
            &format!("/keys/{}/revoke", globex_keys[0].key_id),
            &[],
        )
        .await;
    assert_eq!(revoke.status(), StatusCode::NOT_FOUND);
    assert!(
        web.store.list_api_keys(Some(&globex)).await.unwrap()[0]
            .revoked_at
            .is_none()
    );
}

#[tokio::test]
async fn hostile_event_text_is_shown_as_inert_text_with_controls_made_visible() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    let ids = web
        .send(&key, json!([{
            "action": "user.login",
            "message": "<script>alert(1)</script> {{7*7}} javascript:alert(1) \u{202e}evil\u{200b} \u{1b}[31mred\r\nnext",
            "actor": {"id": "<img src=x onerror=alert(1)>"},
            "metadata": {"note": "</pre><script>alert(2)</script>"}
        }]))
        .await;
    let alice = web.sign_in("alice@acme.com").await;
    for path in ["/".to_owned(), format!("/events/{}", ids[0])] {
        let (_, html, _) = web.page(&alice.cookie, &path).await;
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;"), "{path}");
        assert!(html.contains("{{7*7}}") && !html.contains(" 49 "), "{path}");
        assert!(html.contains("\\u{202E}evil\\u{200B}"), "{path}");
        assert!(html.contains("\\e[31mred\\r\\nnext"), "{path}");
        assert!(
            !html.contains('\u{202e}') && !html.contains('\u{1b}'),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_ip_column_and_the_event_view_show_where_the_address_was_with_hostile_names_inert() {
    let web = Web::start_locating().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    let ids = web
        .send(&key, json!([
            {"action": "user.login", "message": "from mumbai", "actor": {"id": "alice"}, "ip": "203.0.113.9"},
            {"action": "user.login", "message": "from a hostile network", "actor": {"id": "alice"}, "ip": "198.51.100.4"}
        ]))
        .await;
    let alice = web.sign_in("alice@acme.com").await;
    let (_, list, _) = web.page(&alice.cookie, "/").await;
    assert!(list.contains("· Mumbai, IN · AS9829 BSNL</span>"), "{list}");
    assert!(
        list.contains(
            "title=\"Mumbai, Maharashtra, India (IN) · 19.07, 72.89 ±20 km · AS9829 BSNL\""
        ),
        "{list}"
    );
    let (_, view, _) = web
        .page(&alice.cookie, &format!("/events/{}", ids[0]))
        .await;
    assert!(
        view.contains("<dd id=\"ip-location\">Mumbai, Maharashtra, India (IN) · 19.07, 72.89 ±20 km · AS9829 BSNL</dd>"),
        "{view}"
    );
    for path in ["/".to_owned(), format!("/events/{}", ids[1])] {
        let (_, html, _) = web.page(&alice.cookie, &path).await;
        assert!(html.contains("AS13335 Cloudflare"), "{path}");
        assert!(!html.contains("<script>alert(1)"), "{path}");
    }
}

#[tokio::test]
async fn owners_invite_with_a_one_time_link_change_roles_and_remove_people_and_each_is_audited() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let alice = web.sign_in("alice@acme.com").await;
    let invited = web
        .post_form(
            &alice,
            "/team/invite",
            &[("email", "carol@acme.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(invited.status(), StatusCode::OK);
    let page = invited.text().await.unwrap();
    let start = page.find("/invitations/").unwrap();
    let path: String = page[start..]
        .chars()
        .take_while(|character| *character != '<')
        .collect();
    let accept = |web: &Web, path: String| {
        let request = web.client.post(web.url(&path)).form(&[
            ("password", "carol's long password"),
            ("password_again", "carol's long password"),
        ]);
        async move { request.send().await.unwrap() }
    };
    let joined = accept(&web, path.clone()).await;
    assert_eq!(joined.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        accept(&web, path).await.status(),
        StatusCode::NOT_FOUND,
        "the link works once"
    );
    let carol = web
        .store
        .people()
        .list_users(&acme)
        .await
        .unwrap()
        .into_iter()
        .find(|user| user.email == "carol@acme.com")
        .unwrap();
    assert_eq!(carol.role, Role::Viewer);
    let carol_browser = web
        .sign_in_with("carol@acme.com", "carol's long password")
        .await;

    let promoted = web
        .post_form(
            &alice,
            &format!("/team/{}/role", carol.user_id),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(promoted.status(), StatusCode::SEE_OTHER);
    let removed = web
        .post_form(&alice, &format!("/team/{}/remove", carol.user_id), &[])
        .await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        web.page(&carol_browser.cookie, "/").await.0,
        StatusCode::SEE_OTHER,
        "removal ends her sessions"
    );
    for action in [
        "logbook.member.invite",
        "logbook.member.role_change",
        "logbook.member.remove",
    ] {
        let events = web.audit_events(&acme, &format!("action:{action}")).await;
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0]["actor"]["id"], "alice@acme.com");
    }
}

#[tokio::test]
async fn keys_created_on_the_page_are_shown_once_and_revocable_and_both_are_audited() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Admin).await;
    let alice = web.sign_in("alice@acme.com").await;
    let created = web
        .post_form(
            &alice,
            "/keys",
            &[("ingest", "1"), ("description", "billing")],
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    assert!(
        created
            .text()
            .await
            .unwrap()
            .contains("id=\"new-key\">lbk_")
    );
    let keys = web.store.list_api_keys(Some(&acme)).await.unwrap();
    assert_eq!(keys.len(), 1);
    let (_, listing, _) = web.page(&alice.cookie, "/keys").await;
    assert!(
        !listing.contains("id=\"new-key\""),
        "the key is never shown again"
    );
    let revoked = web
        .post_form(&alice, &format!("/keys/{}/revoke", keys[0].key_id), &[])
        .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert!(
        web.store.list_api_keys(Some(&acme)).await.unwrap()[0]
            .revoked_at
            .is_some()
    );
    assert_eq!(
        web.audit_events(&acme, "action:logbook.api_key.create")
            .await
            .len(),
        1
    );
    assert_eq!(
        web.audit_events(&acme, "action:logbook.api_key.revoke")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_key_used_once_shows_when_it_was_last_used_on_the_keys_page() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Admin).await;
    let key = web.ingest_key(&acme).await;
    let alice = web.sign_in("alice@acme.com").await;
    let (_, unused, _) = web.page(&alice.cookie, "/keys").await;
    assert!(
        unused.contains("<td data-label=\"Last used\">never</td>"),
        "{unused}"
    );

    web.clock.advance(time::Duration::minutes(3));
    let used_at = web.clock.now();
    web.send(
        &key,
        json!([{"action": "server.reboot", "message": "Alice rebooted web-1"}]),
    )
    .await;
    let (status, listing, _) = web.page(&alice.cookie, "/keys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listing.contains(&format!(
            "<td data-label=\"Last used\"><time datetime=\"{}\"",
            logbook_server::web::render::utc_text(used_at)
        )),
        "the use shows at once, before it is written to the store: {listing}"
    );
    assert!(!listing.contains("<td data-label=\"Last used\">never</td>"));
}

#[tokio::test]
async fn a_graceful_stop_writes_each_keys_last_use_to_the_store() {
    let data_dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &data_dir.path().join("logbook.db"),
            SqliteOptions::default(),
        )
        .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(start_time()));
    let acme = AccountId::parse("acme").unwrap();
    store.create_account(&acme, clock.now()).await.unwrap();
    let key = PlaintextApiKey::from_random_bytes([7; 17]);
    store
        .create_api_key(NewApiKey {
            key_id: "key_stopping".into(),
            key_hash: key.hash(),
            owner: KeyOwner::Account(acme.clone()),
            scopes: Scopes {
                ingest: true,
                read: false,
                admin: false,
            },
            display_prefix: key.display_prefix(),
            description: None,
            created_at: clock.now(),
        })
        .await
        .unwrap();
    let state = AppState::new(store.clone(), clock.clone(), ServerSettings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(logbook_server::serve(listener, state, async move {
        let _ = stop.await;
    }));

    clock.advance(time::Duration::minutes(10));
    let used_at = clock.now();
    let answer = reqwest::Client::new()
        .post(format!("http://{address}/api/v1/events"))
        .bearer_auth(key.expose())
        .json(&json!({"events": [{"action": "server.reboot", "message": "rebooted"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    shutdown.send(()).unwrap();
    server.await.unwrap().unwrap();

    let keys = store.list_api_keys(Some(&acme)).await.unwrap();
    assert_eq!(
        keys[0].last_used_at,
        Some(used_at),
        "the last use reaches the store when the server stops"
    );
}

#[tokio::test]
async fn two_factor_sign_in_needs_a_current_code_or_a_one_time_recovery_code() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let alice = web.sign_in("alice@acme.com").await;
    let started = web
        .post_form(&alice, "/security/second-factor/start", &[])
        .await
        .text()
        .await
        .unwrap();
    let marker = "id=\"totp-secret\">";
    let start = started.find(marker).unwrap() + marker.len();
    let secret_text: String = started[start..]
        .chars()
        .take_while(|character| *character != '<')
        .collect();
    let secret = logbook_core::totp::base32_decode(&secret_text).unwrap();
    let code = logbook_core::totp::code_at(&secret, web.clock.now());
    let confirmed = web
        .post_form(
            &alice,
            "/security/second-factor/confirm",
            &[("secret", &secret_text), ("code", &code)],
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let page = confirmed.text().await.unwrap();
    let codes_at = page.find("id=\"recovery-codes\"").unwrap();
    let recovery_code: String = page[codes_at..]
        .split("<code>")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|character| *character != '<')
        .collect();

    // The password alone now only opens the second step.
    let first_step = web.post_login("alice@acme.com", PASSWORD).await;
    assert_eq!(first_step.status(), StatusCode::OK);
    let pending_cookie = session_cookie_of(first_step.headers()).unwrap();
    let pending_csrf = csrf_token_in(&first_step.text().await.unwrap()).unwrap();
    assert_eq!(
        web.page(&pending_cookie, "/").await.0,
        StatusCode::SEE_OTHER,
        "half signed in reads nothing"
    );
    let pending = Browser {
        cookie: pending_cookie,
        csrf_token: pending_csrf,
    };
    assert_eq!(
        web.post_form(&pending, "/login/second-factor", &[("code", "000000")])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let done = web
        .post_form(
            &pending,
            "/login/second-factor",
            &[("code", &recovery_code)],
        )
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let signed_in = session_cookie_of(done.headers()).unwrap();
    assert_eq!(web.page(&signed_in, "/").await.0, StatusCode::OK);

    // The recovery code worked once.
    let again = web.post_login("alice@acme.com", PASSWORD).await;
    let again_cookie = session_cookie_of(again.headers()).unwrap();
    let again_csrf = csrf_token_in(&again.text().await.unwrap()).unwrap();
    let retry = Browser {
        cookie: again_cookie,
        csrf_token: again_csrf,
    };
    assert_eq!(
        web.post_form(&retry, "/login/second-factor", &[("code", &recovery_code)])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let fresh_code = logbook_core::totp::code_at(&secret, web.clock.now());
    assert_eq!(
        web.post_form(&retry, "/login/second-factor", &[("code", &fresh_code)])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_person_lists_their_sessions_and_ends_one_they_do_not_recognize() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Viewer).await;
    let laptop = web.sign_in("alice@acme.com").await;
    let stolen = web.sign_in("alice@acme.com").await;
    let (_, page, _) = web.page(&laptop.cookie, "/security").await;
    let handles: Vec<String> = page
        .match_indices("/security/sessions/")
        .map(|(at, _)| page[at + 19..at + 19 + 64].to_owned())
        .collect();
    assert_eq!(handles.len(), 2);
    let other = page
        .match_indices("/security/sessions/")
        .zip(handles.iter())
        .find(|((at, _), _)| {
            !page[*at..]
                .split("</form>")
                .next()
                .unwrap()
                .contains("this browser")
        })
        .unwrap()
        .1
        .clone();
    let ended = web
        .post_form(&laptop, &format!("/security/sessions/{other}/end"), &[])
        .await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert_eq!(web.page(&stolen.cookie, "/").await.0, StatusCode::SEE_OTHER);
    assert_eq!(web.page(&laptop.cookie, "/").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_page_refused_by_a_volume_quota_answers_like_the_api_does_not_with_a_500() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let alice = web.sign_in("alice@acme.com").await;
    // The sign-in itself wrote `logbook.login`; the quota now allows nothing more today.
    web.store
        .account_limits()
        .set_stored_account_limits(
            &acme,
            &logbook_core::store::StoredAccountLimits {
                events_per_day: Some(1),
                ..Default::default()
            },
            web.clock.now(),
        )
        .await
        .unwrap();
    // Creating a key on the page records `logbook.api_key.create`, which the quota refuses.
    let answer = web
        .post_form(&alice, "/keys", &[("ingest", "1"), ("description", "ci")])
        .await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        answer
            .headers()
            .get("content-type")
            .is_some_and(|value| value.to_str().unwrap().starts_with("text/html")),
        "a page, not JSON"
    );
    let body = answer.text().await.unwrap();
    assert!(body.contains("events_per_day"), "{body}");
}

#[tokio::test]
async fn an_owner_places_and_clears_a_legal_hold_with_a_reason_and_both_are_audited() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    web.user(&acme, "viewer@acme.com", Role::Viewer).await;
    web.user(&acme, "admin@acme.com", Role::Admin).await;
    let owner = web.sign_in("owner@acme.com").await;
    let placed = web
        .post_form(
            &owner,
            "/team/legal-hold",
            &[("change", "place"), ("reason", "litigation <b>2026-17</b>")],
        )
        .await;
    assert_eq!(placed.status(), StatusCode::SEE_OTHER);
    let held = web
        .store
        .retention()
        .account_retention(&acme)
        .await
        .unwrap()
        .legal_hold
        .expect("held");
    assert_eq!(held.set_by, "owner@acme.com");
    let (_, team, _) = web.page(&owner.cookie, "/team").await;
    assert!(team.contains("Legal hold"), "the page says so");
    assert!(
        team.contains("litigation &#60;b&#62;2026-17&#60;/b&#62;") && !team.contains("<b>2026"),
        "the reason is inert text"
    );
    // Admins see it but may not change it; an empty reason changes nothing.
    let admin = web.sign_in("admin@acme.com").await;
    let refused = web
        .post_form(
            &admin,
            "/team/legal-hold",
            &[("change", "clear"), ("reason", "x")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = web
        .post_form(
            &owner,
            "/team/legal-hold",
            &[("change", "clear"), ("reason", "  ")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        web.store
            .retention()
            .account_retention(&acme)
            .await
            .unwrap()
            .legal_hold
            .is_some()
    );
    let cleared = web
        .post_form(
            &owner,
            "/team/legal-hold",
            &[("change", "clear"), ("reason", "case closed")],
        )
        .await;
    assert_eq!(cleared.status(), StatusCode::SEE_OTHER);
    let set_events = web
        .audit_events(&acme, "action:logbook.legal_hold.set")
        .await;
    assert_eq!(set_events.len(), 1);
    assert_eq!(set_events[0]["actor"]["id"], "owner@acme.com");
    assert_eq!(
        set_events[0]["metadata"]["reason"],
        "litigation <b>2026-17</b>"
    );
    let clear_events = web
        .audit_events(&acme, "action:logbook.legal_hold.clear")
        .await;
    assert_eq!(clear_events.len(), 1);
    assert_eq!(clear_events[0]["metadata"]["reason"], "case closed");
    let _ = web.sign_in("viewer@acme.com").await;
}

#[tokio::test]
async fn an_owner_erases_a_persons_personal_data_on_the_team_page_and_the_event_view_marks_it() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    web.user(&acme, "admin@acme.com", Role::Admin).await;
    let key = web.ingest_key(&acme).await;
    let ids = web
        .send(
            &key,
            json!([{
                "action": "server.delete",
                "message": "Deleted server web-9",
                "actor": {"id": "carol@acme.com", "name": "Carol <script>", "type": "user"},
                "ip": "198.51.100.7",
                "user_agent": "Mozilla/5.0",
            }]),
        )
        .await;
    let event_id = ids[0].clone();
    let owner = web.sign_in("owner@acme.com").await;
    let (_, team, _) = web.page(&owner.cookie, "/team").await;
    assert!(team.contains("Erase personal data"), "{team}");
    // Admins may not erase; an unknown person and an empty reason change nothing.
    let admin = web.sign_in("admin@acme.com").await;
    let refused = web
        .post_form(
            &admin,
            "/team/erase",
            &[("actor_id", "carol@acme.com"), ("reason", "request 7")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    for form in [
        [("actor_id", "nobody@acme.com"), ("reason", "request 7")],
        [("actor_id", "carol@acme.com"), ("reason", " ")],
    ] {
        let refused = web.post_form(&owner, "/team/erase", &form).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    }
    assert!(
        web.audit_events(&acme, "action:logbook.personal_data.erase")
            .await
            .is_empty()
    );
    let erased = web
        .post_form(
            &owner,
            "/team/erase",
            &[
                ("actor_id", "carol@acme.com"),
                ("reason", "erasure request 7"),
            ],
        )
        .await;
    assert_eq!(erased.status(), StatusCode::OK);
    let body = erased.text().await.unwrap();
    assert!(body.contains("removed from 1 events"), "{body}");
    let recorded = web
        .audit_events(&acme, "action:logbook.personal_data.erase")
        .await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["actor"]["id"], "owner@acme.com");
    assert_eq!(recorded[0]["targets"][0]["id"], "carol@acme.com");
    let (_, view, _) = web
        .page(&owner.cookie, &format!("/events/{event_id}"))
        .await;
    assert!(view.contains("removed (personal data)"), "{view}");
    assert!(
        !view.contains("198.51.100.7") && !view.contains("Carol"),
        "{view}"
    );
}

/// Posts the setup form the way a browser does from the setup page.
async fn post_setup(web: &Web, token: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    web.client
        .post(web.url(&format!("/setup/{token}")))
        .header("sec-fetch-site", "same-origin")
        .form(fields)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_first_run_setup_link_creates_the_first_owner_once_and_only_while_nobody_can_sign_in() {
    let web = Web::start().await;
    let (_, login, _) = web.page("", "/login").await;
    assert!(login.contains("Nobody can sign in yet"), "{login}");
    let token = web
        .state
        .first_run_setup_token()
        .await
        .unwrap()
        .expect("nobody can sign in, so there is a link");
    let (status, setup, _) = web.page("", &format!("/setup/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(setup.contains("Create the owner and sign in"), "{setup}");
    // A guessed link, a bad account name, a short password and hostile text change nothing, and
    // a typo does not use the link up.
    let (status, _, _) = web.page("", &format!("/setup/{}", "0".repeat(64))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for fields in [
        [
            ("account", "Acme Corp"),
            ("email", "owner@acme.com"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ],
        [
            ("account", "acme"),
            ("email", "<script>"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ],
        [
            ("account", "acme"),
            ("email", "owner@acme.com"),
            ("password", "short"),
            ("password_again", "short"),
        ],
        [
            ("account", "acme"),
            ("email", "owner@acme.com"),
            ("password", PASSWORD),
            ("password_again", "something else entirely"),
        ],
    ] {
        let answer = post_setup(&web, &token, &fields).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        let body = answer.text().await.unwrap();
        assert!(!body.contains("<script>"), "hostile text is inert");
    }
    assert!(!web.store.people().any_user_exists().await.unwrap());
    // Another site cannot post it.
    let cross_site = web
        .client
        .post(web.url(&format!("/setup/{token}")))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("account", "acme"),
            ("email", "owner@acme.com"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(cross_site.status(), StatusCode::SEE_OTHER);
    let created = post_setup(
        &web,
        &token,
        &[
            ("account", "acme"),
            ("email", "Owner@Acme.com"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        created.status(),
        StatusCode::SEE_OTHER,
        "signed in and sent to the page"
    );
    assert!(session_cookie_of(created.headers()).is_some());
    let acme = AccountId::parse("acme").unwrap();
    let owners = web.store.people().list_users(&acme).await.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].email, "owner@acme.com");
    assert_eq!(owners[0].role, Role::Owner);
    assert_eq!(
        web.audit_events(&acme, "action:logbook.member.join")
            .await
            .len(),
        1
    );
    // The link works once, and no new link is made once somebody can sign in.
    let again = post_setup(
        &web,
        &token,
        &[
            ("account", "acme"),
            ("email", "second@acme.com"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ],
    )
    .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(web.state.first_run_setup_token().await.unwrap(), None);
    let (_, login, _) = web.page("", "/login").await;
    assert!(!login.contains("Nobody can sign in yet"));
    let _ = web.sign_in("owner@acme.com").await;
}

#[tokio::test]
async fn a_setup_link_expires_after_thirty_minutes() {
    let web = Web::start().await;
    let token = web.state.first_run_setup_token().await.unwrap().unwrap();
    web.clock.advance(time::Duration::minutes(31));
    let (status, body, _) = web.page("", &format!("/setup/{token}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("used, expired or unknown"), "{body}");
    let answer = post_setup(
        &web,
        &token,
        &[
            ("account", "acme"),
            ("email", "owner@acme.com"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(!web.store.people().any_user_exists().await.unwrap());
}

#[tokio::test]
async fn pages_and_assets_are_gzipped_for_browsers_that_ask_and_api_answers_are_not() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let browser = web.sign_in("alice@acme.com").await;
    let page = web
        .client
        .get(web.url("/"))
        .header("cookie", &browser.cookie)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers().get("content-encoding").unwrap(), "gzip");
    let compressed = page.bytes().await.unwrap();
    let mut html = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut html,
    )
    .unwrap();
    assert!(html.contains("Activity Logs"), "the page inflates: {html}");
    let (_, plain, _) = web.page(&browser.cookie, "/").await;
    assert!(
        compressed.len() < plain.len() / 2,
        "{} of {}",
        compressed.len(),
        plain.len()
    );
    let key = web.ingest_key(&acme).await;
    let api = web
        .client
        .post(web.url("/api/v1/events"))
        .bearer_auth(&key)
        .header("accept-encoding", "gzip")
        .json(&json!({"events": [{"action": "a.b", "message": "m"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    assert!(api.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn readyz_tells_why_only_to_a_signed_in_owner_or_admin() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    web.user(&acme, "viewer@acme.com", Role::Viewer).await;
    let owner = web.sign_in("owner@acme.com").await;
    let viewer = web.sign_in("viewer@acme.com").await;
    web.store.shutdown().await;

    let readyz_message = |cookie: Option<String>| {
        let request = web.client.get(web.url("/readyz"));
        let request = match cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["error"]["code"], "not_ready");
            body["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    let for_the_owner = readyz_message(Some(owner.cookie.clone())).await;
    assert!(
        for_the_owner.contains("shutting down"),
        "the owner is told why: {for_the_owner}"
    );
    for (who, cookie) in [
        ("anyone", None),
        ("a viewer", Some(viewer.cookie.clone())),
        (
            "a made-up session",
            Some(format!("logbook_session={}", "ab".repeat(16))),
        ),
    ] {
        let message = readyz_message(cookie).await;
        assert_eq!(
            message, "sqlite is not ready",
            "{who} learns only that it is not ready"
        );
    }
}

#[tokio::test]
async fn a_clicked_term_is_folded_into_the_query_and_the_address_holds_only_the_query() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let alice = web.sign_in("alice@acme.com").await;
    let location = |headers: &HeaderMap| {
        headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, _, headers) = web
        .page(&alice.cookie, "/?q=reboot&add=actor%3A%22Alice+Smith%22")
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&headers),
        "/?q=reboot%20actor%3A%22Alice%20Smith%22"
    );
    let (_, _, headers) = web
        .page(
            &alice.cookie,
            "/?q=reboot+actor%3A%22Alice+Smith%22&exclude=actor%3A%22Alice+Smith%22",
        )
        .await;
    assert_eq!(
        location(&headers),
        "/?q=reboot%20-actor%3A%22Alice%20Smith%22",
        "excluding a value already included flips it"
    );
    // More than one term, or text that is not a term, changes nothing.
    let (_, _, headers) = web
        .page(&alice.cookie, "/?q=reboot&add=actor%3Aa+outcome%3Afailure")
        .await;
    assert_eq!(location(&headers), "/?q=reboot");
    // The page writes each clickable value as one term the query language quotes.
    let key = web.ingest_key(&acme).await;
    web.send(
        &key,
        json!([{"action": "user.update", "message": "m", "actor": {"id": "eve\" outcome:failure"}}]),
    )
    .await;
    let (_, html, _) = web.page(&alice.cookie, "/").await;
    assert!(
        html.contains("value=\"actor:&#34;eve\\&#34; outcome:failure&#34;\""),
        "{html}"
    );
}

#[tokio::test]
async fn a_new_address_and_a_new_network_are_marked_in_words_in_the_table() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    for ip in ["203.0.113.9", "203.0.113.10", "198.51.100.7"] {
        web.send(
            &key,
            json!([{"action": "user.login", "message": format!("from {ip}"), "actor": {"id": "carol"}, "ip": ip}]),
        )
        .await;
    }
    let alice = web.sign_in("alice@acme.com").await;
    let (_, html, _) = web.page(&alice.cookie, "/").await;
    let row_of = |ip: &str| {
        let at = html.find(&format!("from {ip}")).unwrap();
        let end = html[at..].find("</tr>").unwrap();
        html[at..at + end].to_owned()
    };
    assert!(row_of("203.0.113.10").contains("203.0.113.10 · new"));
    assert!(!row_of("203.0.113.10").contains("new network"));
    assert!(
        row_of("198.51.100.7").contains("198.51.100.7 · new network</button>"),
        "{}",
        row_of("198.51.100.7")
    );
}

#[tokio::test]
async fn a_new_country_is_marked_in_words_beside_the_place() {
    let web = Web::start_locating().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    // The test locator puts 203.0.113.0/24 in India and 198.51.100.0/24 in Singapore.
    for ip in ["203.0.113.9", "203.0.113.200", "198.51.100.7"] {
        web.send(
            &key,
            json!([{"action": "user.login", "message": format!("from {ip}"), "actor": {"id": "carol"}, "ip": ip}]),
        )
        .await;
    }
    let alice = web.sign_in("alice@acme.com").await;
    let (_, html, _) = web.page(&alice.cookie, "/").await;
    let row_of = |ip: &str| {
        let at = html.find(&format!("from {ip}")).unwrap();
        let end = html[at..].find("</tr>").unwrap();
        html[at..at + end].to_owned()
    };
    let singapore = row_of("198.51.100.7");
    assert!(
        singapore.contains("Singapore, SG · AS13335")
            && singapore.contains(
                r#"<span class="badge new-country" title="A country this actor was not located in before">new country</span>"#
            ),
        "{singapore}"
    );
    assert!(!row_of("203.0.113.200").contains("new country"));
    assert!(!row_of("203.0.113.9").contains("new country"));
    let (_, found, _) = web.page(&alice.cookie, "/?q=is%3Anew-country").await;
    assert!(found.contains("from 198.51.100.7") && !found.contains("from 203.0.113.200"));
}
