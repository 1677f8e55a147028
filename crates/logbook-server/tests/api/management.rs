//! The management API (`/api/v1/accounts/...`): every route against every kind of key (allowed,
//! refused 403, another account 404 exactly like a missing one), idempotent creates, 409s, and the
//! event each change writes into the affected account's own log.

use logbook_core::api_key::KeyOwner;
use logbook_core::people::{NewUser, Role, SessionRecord, hash_token};
use logbook_core::store::EventQuery;
use logbook_core::{AccountId, Clock, SystemClock};
use logbook_server::ServerSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, error_code, event, json_of};

/// A server with two accounts and an admin key of each kind.
struct Management {
    server: TestServer,
    acme: AccountId,
    platform_admin: String,
    acme_admin: String,
    globex_admin: String,
    acme_read: String,
}

impl Management {
    async fn start() -> Self {
        // Keys are looked up on every request, so a revoked key stops at once.
        let server = TestServer::start_with(ServerSettings {
            api_key_cache_ttl: std::time::Duration::ZERO,
            ..ServerSettings::default()
        })
        .await;
        let acme = server.create_account("acme").await;
        let globex = server.create_account("globex").await;
        Management {
            platform_admin: server.create_key(KeyOwner::Platform, "admin").await,
            acme_admin: server
                .create_key(KeyOwner::Account(acme.clone()), "admin")
                .await,
            globex_admin: server.create_key(KeyOwner::Account(globex), "admin").await,
            acme_read: server
                .create_key(KeyOwner::Account(acme.clone()), "read,ingest")
                .await,
            acme,
            server,
        }
    }

    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let request = self
            .server
            .client
            .request(method, self.server.url(path))
            .bearer_auth(key);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        request.send().await.expect("request")
    }

    /// The account's events of `action`, newest first.
    async fn changes(&self, account: &str, action: &str) -> Vec<Value> {
        let page = self
            .server
            .store
            .query_events(
                &AccountId::parse(account).unwrap(),
                &EventQuery {
                    query: logbook_core::query::parse(&format!("action:{action}")).unwrap(),
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

/// Every management route, on account `{account}`, with a body that is valid for it.
fn every_route(account: &str) -> Vec<(Method, String, Option<Value>, bool)> {
    let base = format!("/api/v1/accounts/{account}");
    // (method, path, body, only a platform admin key may)
    vec![
        (Method::GET, base.clone(), None, false),
        (
            Method::PATCH,
            base.clone(),
            Some(json!({"display_name": "Acme"})),
            false,
        ),
        (
            Method::PATCH,
            base.clone(),
            Some(json!({"ingest_enabled": true})),
            true,
        ),
        (Method::GET, format!("{base}/keys"), None, false),
        (
            Method::POST,
            format!("{base}/keys"),
            Some(json!({"scopes": ["read"]})),
            false,
        ),
        (
            Method::POST,
            format!("{base}/keys/key_unknown/revoke"),
            None,
            false,
        ),
        (Method::GET, format!("{base}/people"), None, false),
        (
            Method::POST,
            format!("{base}/people"),
            Some(json!({"email": "new@example.com", "role": "viewer"})),
            false,
        ),
        (
            Method::PATCH,
            format!("{base}/people/usr_unknown"),
            Some(json!({"role": "viewer"})),
            false,
        ),
        (
            Method::DELETE,
            format!("{base}/people/usr_unknown"),
            None,
            false,
        ),
        (
            Method::POST,
            format!("{base}/people/usr_unknown/password-reset"),
            None,
            false,
        ),
        (Method::GET, format!("{base}/limits"), None, false),
        (
            Method::PUT,
            format!("{base}/limits"),
            Some(json!({"reads_per_second": 70})),
            true,
        ),
        (Method::POST, format!("{base}/limits/clear"), None, true),
        (Method::GET, format!("{base}/sso"), None, false),
        (
            Method::PUT,
            format!("{base}/sso"),
            Some(json!({
                "display_name": "Okta",
                "issuer": "https://acme.okta.com",
                "client_id": "0oa1",
                "client_secret": "secret"
            })),
            false,
        ),
        (Method::POST, format!("{base}/sso/clear"), None, false),
        (Method::GET, format!("{base}/retention"), None, false),
        (
            Method::PUT,
            format!("{base}/retention"),
            Some(json!({"retention_days": 400, "personal_data_days": 30})),
            false,
        ),
        (
            Method::POST,
            format!("{base}/erasures"),
            Some(json!({"actor_id": "nobody@acme.com", "reason": "request 7"})),
            false,
        ),
        (
            Method::POST,
            format!("{base}/legal-hold"),
            Some(json!({"reason": "case 17"})),
            false,
        ),
        (
            Method::POST,
            format!("{base}/legal-hold/release"),
            Some(json!({"reason": "case closed"})),
            false,
        ),
    ]
}

#[tokio::test]
async fn every_route_answers_each_kind_of_key_as_its_scope_allows() {
    let management = Management::start().await;
    for (method, path, body, platform_only) in every_route("acme") {
        let what = format!("{method} {path}");
        // No key: 401; a key without the admin scope: 403.
        let anonymous = management
            .server
            .client
            .request(method.clone(), management.server.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{what} without a key");
        let reader = management
            .call(&management.acme_read, method.clone(), &path, body.clone())
            .await;
        assert_eq!(reader.status(), 403, "{what} with a read key");
        assert_eq!(error_code(&json_of(reader).await), "forbidden");

        // Another account's admin key: 404, the very answer an account that does not exist gets.
        let other = management
            .call(
                &management.globex_admin,
                method.clone(),
                &path,
                body.clone(),
            )
            .await;
        assert_eq!(other.status(), 404, "{what} with another account's key");
        let other_body = json_of(other).await;
        let missing_path = path.replacen("/acme", "/nosuch", 1);
        let missing = management
            .call(
                &management.acme_admin,
                method.clone(),
                &missing_path,
                body.clone(),
            )
            .await;
        assert_eq!(
            missing.status(),
            404,
            "{what} on an account that does not exist"
        );
        assert_eq!(
            json_of(missing).await,
            other_body,
            "{what}: a foreign account and a missing one look alike"
        );

        // The account's own admin key: allowed, or 403 where only the platform may.
        let own = management
            .call(&management.acme_admin, method.clone(), &path, body.clone())
            .await;
        let own_status = own.status().as_u16();
        if platform_only {
            assert_eq!(own_status, 403, "{what} with the account's admin key");
        } else {
            assert!(
                ![401, 403].contains(&own_status) && own_status < 500,
                "{what} with the account's admin key answered {own_status}"
            );
        }
        let platform = management
            .call(
                &management.platform_admin,
                method.clone(),
                &path,
                body.clone(),
            )
            .await;
        let platform_status = platform.status().as_u16();
        assert!(
            ![401, 403].contains(&platform_status) && platform_status < 500,
            "{what} with the platform admin key answered {platform_status}"
        );
    }
}

#[tokio::test]
async fn creating_an_account_is_idempotent_by_name_and_a_different_create_gets_409() {
    let management = Management::start().await;
    let created = management
        .call(
            &management.platform_admin,
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"name": "initech", "display_name": "Initech"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created = json_of(created).await;
    assert_eq!(created["account"], "initech");
    assert_eq!(created["display_name"], "Initech");
    assert_eq!(created["ingest_enabled"], true);
    assert_eq!(
        created["event_count"], 1,
        "the creation is the account's first event"
    );

    for repeat in [
        json!({"name": "initech", "display_name": "Initech"}),
        json!({"name": "initech"}),
    ] {
        let again = management
            .call(
                &management.platform_admin,
                Method::POST,
                "/api/v1/accounts",
                Some(repeat),
            )
            .await;
        assert_eq!(again.status(), 200, "a repeated create answers the account");
        assert_eq!(json_of(again).await["display_name"], "Initech");
    }
    let different = management
        .call(
            &management.platform_admin,
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"name": "initech", "display_name": "Initrode"})),
        )
        .await;
    assert_eq!(different.status(), 409);
    let body = json_of(different).await;
    assert_eq!(error_code(&body), "account_exists");
    assert_eq!(body["error"]["field"], "/name");

    let changes = management
        .changes("initech", "logbook.account.create")
        .await;
    assert_eq!(changes.len(), 1, "only the first create is a change");
    assert_eq!(changes[0]["actor"]["type"], "api_key");
    assert!(
        changes[0]["actor"]["id"]
            .as_str()
            .unwrap()
            .starts_with("key_")
    );

    // Two different creates of one new name at once: one wins, the other learns it lost.
    let (first, second) = tokio::join!(
        management.call(
            &management.platform_admin,
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"name": "hooli", "display_name": "Hooli"})),
        ),
        management.call(
            &management.platform_admin,
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"name": "hooli", "display_name": "Hooli XYZ"})),
        ),
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);

    let refused = management
        .call(
            &management.acme_admin,
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"name": "sneaky"})),
        )
        .await;
    assert_eq!(
        refused.status(),
        403,
        "an account admin key creates no accounts"
    );
}

#[tokio::test]
async fn bad_input_gets_the_standard_error_with_its_field_and_changes_nothing() {
    let management = Management::start().await;
    for (path, method, body, code, field) in [
        (
            "/api/v1/accounts",
            Method::POST,
            json!({"name": "Not Valid"}),
            "invalid_account",
            json!("/name"),
        ),
        (
            "/api/v1/accounts",
            Method::POST,
            json!({"name": "ok", "display_name": "a\u{7}b"}),
            "invalid_display_name",
            json!("/display_name"),
        ),
        (
            "/api/v1/accounts",
            Method::POST,
            json!({"name": "ok", "colour": "red"}),
            "invalid_body",
            Value::Null,
        ),
        (
            "/api/v1/accounts/acme/keys",
            Method::POST,
            json!({"scopes": ["root"]}),
            "invalid_scope",
            json!("/scopes"),
        ),
        (
            "/api/v1/accounts/acme/people",
            Method::POST,
            json!({"email": "nobody", "role": "viewer"}),
            "invalid_email",
            json!("/email"),
        ),
        (
            "/api/v1/accounts/acme/people",
            Method::POST,
            json!({"email": "a@example.com", "role": "king"}),
            "invalid_role",
            json!("/role"),
        ),
        (
            "/api/v1/accounts/acme/limits",
            Method::PUT,
            json!({"reads_per_second": -1}),
            "invalid_body",
            json!("/reads_per_second"),
        ),
    ] {
        let answer = management
            .call(&management.platform_admin, method, path, Some(body.clone()))
            .await;
        assert_eq!(answer.status(), 400, "{path} {body}");
        let answer = json_of(answer).await;
        assert_eq!(error_code(&answer), code, "{path} {body}");
        if !field.is_null() {
            assert_eq!(answer["error"]["field"], field, "{path} {body}");
        }
    }
    let accounts = management.server.store.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 2, "nothing was created");
    assert_eq!(
        management
            .server
            .store
            .list_api_keys(Some(&management.acme))
            .await
            .unwrap()
            .len(),
        2,
        "no key was created"
    );
    let not_json = management
        .server
        .client
        .post(management.server.url("/api/v1/accounts"))
        .bearer_auth(&management.platform_admin)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);
}

#[tokio::test]
async fn accounts_list_in_pages_with_event_counts_and_the_last_event_time() {
    let management = Management::start().await;
    let ingest = management
        .server
        .create_key(KeyOwner::Account(management.acme.clone()), "ingest")
        .await;
    for message in ["one", "two", "three"] {
        let answer = management
            .server
            .post_events(&ingest, &event(message, json!({})))
            .await;
        assert_eq!(answer.status(), 200);
    }
    let first = management
        .call(
            &management.platform_admin,
            Method::GET,
            "/api/v1/accounts?limit=1",
            None,
        )
        .await;
    assert_eq!(first.status(), 200);
    let first = json_of(first).await;
    assert_eq!(first["accounts"][0]["account"], "acme");
    assert_eq!(first["accounts"][0]["event_count"], 3);
    assert!(first["accounts"][0]["last_event_at"].is_string());
    let cursor = first["next_cursor"]
        .as_str()
        .expect("another page")
        .to_owned();
    let second = json_of(
        management
            .call(
                &management.platform_admin,
                Method::GET,
                &format!("/api/v1/accounts?limit=1&cursor={cursor}"),
                None,
            )
            .await,
    )
    .await;
    assert_eq!(second["accounts"][0]["account"], "globex");
    assert_eq!(second["accounts"][0]["event_count"], 0);
    assert_eq!(second["accounts"][0]["last_event_at"], Value::Null);

    let own = json_of(
        management
            .call(
                &management.acme_admin,
                Method::GET,
                "/api/v1/accounts",
                None,
            )
            .await,
    )
    .await;
    let names: Vec<&str> = own["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|account| account["account"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["acme"],
        "an account admin key sees its own account only"
    );
    let too_many = management
        .call(
            &management.platform_admin,
            Method::GET,
            "/api/v1/accounts?limit=5000",
            None,
        )
        .await;
    assert_eq!(too_many.status(), 400);
}

#[tokio::test]
async fn a_disabled_accounts_ingest_is_refused_with_a_clear_403_and_its_reads_keep_working() {
    let management = Management::start().await;
    let acme_ingest = management
        .server
        .create_key(KeyOwner::Account(management.acme.clone()), "ingest")
        .await;
    let disabled = management
        .call(
            &management.platform_admin,
            Method::PATCH,
            "/api/v1/accounts/acme",
            Some(json!({"ingest_enabled": false})),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(json_of(disabled).await["ingest_enabled"], false);

    let refused = management
        .server
        .post_events(&acme_ingest, &event("Refused", json!({})))
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        error_code(&json_of(refused).await),
        "account_ingest_disabled"
    );
    let platform_ingest = management
        .server
        .create_key(KeyOwner::Platform, "ingest")
        .await;
    let through_platform = management
        .server
        .post_events(
            &platform_ingest,
            &event("Refused too", json!({"account": "acme"})),
        )
        .await;
    assert_eq!(through_platform.status(), 403);

    let reads = management
        .server
        .list_events(&management.acme_read, &[("q", "action:logbook.*")])
        .await;
    assert!(
        !reads["events"].as_array().unwrap().is_empty(),
        "reads keep working and show the change"
    );
    assert_eq!(
        management
            .changes("acme", "logbook.account.ingest_disable")
            .await
            .len(),
        1
    );

    let enabled = management
        .call(
            &management.platform_admin,
            Method::PATCH,
            "/api/v1/accounts/acme",
            Some(json!({"ingest_enabled": true})),
        )
        .await;
    assert_eq!(enabled.status(), 200);
    let accepted = management
        .server
        .post_events(&acme_ingest, &event("Back", json!({})))
        .await;
    assert_eq!(accepted.status(), 200);
    assert_eq!(
        management
            .changes("acme", "logbook.account.ingest_enable")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_key_is_shown_once_listed_without_its_secret_works_and_stops_when_revoked() {
    let management = Management::start().await;
    let created = management
        .call(
            &management.acme_admin,
            Method::POST,
            "/api/v1/accounts/acme/keys",
            Some(json!({"scopes": ["ingest"], "description": "deploy bot"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created = json_of(created).await;
    let secret = created["key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("lbk_"));
    assert_eq!(created["scopes"], json!(["ingest"]));

    let listed = management
        .call(
            &management.acme_admin,
            Method::GET,
            "/api/v1/accounts/acme/keys",
            None,
        )
        .await;
    let listed_text = listed.text().await.unwrap();
    assert!(
        !listed_text.contains(&secret),
        "a list never holds a secret"
    );
    assert!(listed_text.contains(&key_id));

    let accepted = management
        .server
        .post_events(&secret, &event("With the new key", json!({})))
        .await;
    assert_eq!(accepted.status(), 200);

    let foreign = management
        .call(
            &management.globex_admin,
            Method::POST,
            &format!("/api/v1/accounts/acme/keys/{key_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(foreign.status(), 404);
    let revoked = management
        .call(
            &management.acme_admin,
            Method::POST,
            &format!("/api/v1/accounts/acme/keys/{key_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(json_of(revoked).await["active"], false);
    let refused = management
        .server
        .post_events(&secret, &event("After revocation", json!({})))
        .await;
    assert_eq!(refused.status(), 401);
    let again = management
        .call(
            &management.acme_admin,
            Method::POST,
            &format!("/api/v1/accounts/acme/keys/{key_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(again.status(), 200, "revoking twice is harmless");

    let creations = management.changes("acme", "logbook.api_key.create").await;
    assert_eq!(creations.len(), 1);
    assert_eq!(creations[0]["targets"][0]["id"], key_id.as_str());
    assert_eq!(
        management
            .changes("acme", "logbook.api_key.revoke")
            .await
            .len(),
        1,
        "the second revocation changed nothing"
    );
}

#[tokio::test]
async fn people_are_added_invited_listed_changed_reset_and_removed_and_a_removed_person_gets_409() {
    let management = Management::start().await;
    let admin = &management.acme_admin;
    let added = management
        .call(
            admin,
            Method::POST,
            "/api/v1/accounts/acme/people",
            Some(json!({"email": "Alice@Acme.com", "role": "viewer", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added = json_of(added).await;
    assert_eq!(added["email"], "alice@acme.com");
    let user_id = added["user_id"].as_str().unwrap().to_owned();

    let duplicate = management
        .call(
            admin,
            Method::POST,
            "/api/v1/accounts/acme/people",
            Some(json!({"email": "alice@acme.com", "role": "member"})),
        )
        .await;
    assert_eq!(duplicate.status(), 409);
    assert_eq!(error_code(&json_of(duplicate).await), "user_exists");

    let invited = management
        .call(
            admin,
            Method::POST,
            "/api/v1/accounts/acme/people",
            Some(json!({"email": "bob@acme.com", "role": "admin"})),
        )
        .await;
    assert_eq!(invited.status(), 201);
    let invited = json_of(invited).await;
    assert!(
        invited["invitation_url"]
            .as_str()
            .unwrap()
            .contains("/invitations/")
    );

    let changed = management
        .call(
            admin,
            Method::PATCH,
            &format!("/api/v1/accounts/acme/people/{user_id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(json_of(changed).await["role"], "admin");
    let listed = json_of(
        management
            .call(admin, Method::GET, "/api/v1/accounts/acme/people", None)
            .await,
    )
    .await;
    assert_eq!(listed["people"][0]["role"], "admin");

    // A password reset ends every session of the person.
    let user_id_typed: logbook_core::ids::UserId = user_id.as_str().into();
    let now = SystemClock.now();
    management
        .server
        .store
        .people()
        .create_session(SessionRecord {
            session_hash: hash_token("a session"),
            user_id: user_id_typed.clone(),
            created_at: now,
            last_seen_at: now,
            ip: None,
            user_agent: None,
            awaiting_second_factor: false,
            revoked_at: None,
        })
        .await
        .unwrap();
    let reset = management
        .call(
            admin,
            Method::POST,
            &format!("/api/v1/accounts/acme/people/{user_id}/password-reset"),
            None,
        )
        .await;
    assert_eq!(reset.status(), 200);
    assert!(
        management
            .server
            .store
            .people()
            .list_active_sessions(&user_id_typed)
            .await
            .unwrap()
            .is_empty(),
        "the reset ended the session"
    );

    let removed = management
        .call(
            admin,
            Method::DELETE,
            &format!("/api/v1/accounts/acme/people/{user_id}"),
            None,
        )
        .await;
    assert_eq!(removed.status(), 200);
    for (method, body) in [
        (Method::PATCH, Some(json!({"role": "viewer"}))),
        (Method::DELETE, None),
    ] {
        let late = management
            .call(
                admin,
                method,
                &format!("/api/v1/accounts/acme/people/{user_id}"),
                body,
            )
            .await;
        assert_eq!(
            late.status(),
            409,
            "a removed person is a conflict, not a mystery"
        );
        assert_eq!(error_code(&json_of(late).await), "user_removed");
    }

    // Someone of another account is 404 here, never touched.
    let globex = AccountId::parse("globex").unwrap();
    let stranger = management
        .server
        .store
        .people()
        .create_user(NewUser {
            user_id: "usr_stranger".into(),
            account: globex,
            email: "eve@globex.com".into(),
            role: Role::Owner,
            password_hash: "not a real hash".into(),
            created_at: now,
        })
        .await
        .unwrap();
    let foreign = management
        .call(
            admin,
            Method::PATCH,
            &format!("/api/v1/accounts/acme/people/{}", stranger.user_id),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(foreign.status(), 404);

    for action in [
        "logbook.member.add",
        "logbook.member.invite",
        "logbook.member.role_change",
        "logbook.password.reset",
        "logbook.member.remove",
    ] {
        let changes = management.changes("acme", action).await;
        assert_eq!(changes.len(), 1, "{action}");
        assert_eq!(changes[0]["actor"]["type"], "api_key", "{action}");
    }
}

#[tokio::test]
async fn limits_are_shown_to_the_account_and_set_and_cleared_by_the_platform_only() {
    let management = Management::start().await;
    let shown = json_of(
        management
            .call(
                &management.acme_admin,
                Method::GET,
                "/api/v1/accounts/acme/limits",
                None,
            )
            .await,
    )
    .await;
    assert_eq!(shown["account"], "acme");
    assert_eq!(
        shown["limits"]["reads_per_second"]["source"],
        "default [limits]"
    );
    assert_eq!(shown["limits"]["events_per_day"]["value"], Value::Null);

    let refused = management
        .call(
            &management.acme_admin,
            Method::PUT,
            "/api/v1/accounts/acme/limits",
            Some(json!({"reads_per_second": 1000})),
        )
        .await;
    assert_eq!(refused.status(), 403);

    let set = management
        .call(
            &management.platform_admin,
            Method::PUT,
            "/api/v1/accounts/acme/limits",
            Some(json!({"reads_per_second": 2, "read_burst": 2, "events_per_day": 500})),
        )
        .await;
    assert_eq!(set.status(), 200);
    let set = json_of(set).await;
    assert_eq!(set["limits"]["reads_per_second"]["value"], 2);
    assert_eq!(
        set["limits"]["reads_per_second"]["source"],
        "database (logbook limits set)"
    );
    assert_eq!(set["limits"]["events_per_day"]["value"], 500);
    // Applied on this node at once: the third read in a burst of two is refused.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            management
                .server
                .get(&management.acme_read, "/api/v1/events")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    let cleared = management
        .call(
            &management.platform_admin,
            Method::POST,
            "/api/v1/accounts/acme/limits/clear",
            None,
        )
        .await;
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        json_of(cleared).await["limits"]["reads_per_second"]["source"],
        "default [limits]"
    );
    assert_eq!(
        management.changes("acme", "logbook.limits.set").await.len(),
        1
    );
    assert_eq!(
        management
            .changes("acme", "logbook.limits.clear")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn readyz_tells_why_to_an_admin_key_only() {
    let management = Management::start().await;
    management.server.store.shutdown().await;
    let with_admin = management
        .call(&management.platform_admin, Method::GET, "/readyz", None)
        .await;
    assert_eq!(with_admin.status(), 503);
    let message = json_of(with_admin).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("shutting down"), "{message}");
    let with_reader = management
        .call(&management.acme_read, Method::GET, "/readyz", None)
        .await;
    assert_eq!(
        json_of(with_reader).await["error"]["message"],
        "sqlite is not ready"
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused_and_an_accounts_quota_never_blocks_its_change() {
    let management = Management::start().await;
    let array = management
        .call(
            &management.platform_admin,
            Method::PATCH,
            "/api/v1/accounts/acme",
            Some(json!([null, null])),
        )
        .await;
    assert_eq!(
        array.status(),
        400,
        "serde would read a struct from an array"
    );
    assert_eq!(error_code(&json_of(array).await), "invalid_body");

    // A daily quota of zero refuses every event of the account, the change events included;
    // the operator can still change (and raise) it.
    for events_per_day in [0, 1_000_000] {
        let set = management
            .call(
                &management.platform_admin,
                Method::PUT,
                "/api/v1/accounts/acme/limits",
                Some(json!({ "events_per_day": events_per_day })),
            )
            .await;
        assert_eq!(set.status(), 200, "events_per_day {events_per_day}");
        assert_eq!(
            json_of(set).await["limits"]["events_per_day"]["value"],
            events_per_day
        );
    }
    // A whole number written with a zero fraction is that number; nothing named changes nothing.
    let float = management
        .call(
            &management.platform_admin,
            Method::PUT,
            "/api/v1/accounts/acme/limits",
            Some(json!({ "reads_per_second": 40.0 })),
        )
        .await;
    assert_eq!(
        json_of(float).await["limits"]["reads_per_second"]["value"],
        40
    );
    let nothing = management
        .call(
            &management.platform_admin,
            Method::PUT,
            "/api/v1/accounts/acme/limits",
            Some(json!({})),
        )
        .await;
    assert_eq!(nothing.status(), 200);
    assert_eq!(
        management.changes("acme", "logbook.limits.set").await.len(),
        2
    );
}

#[tokio::test]
async fn retention_legal_hold_and_erasure_are_managed_over_http_and_each_change_is_in_the_log() {
    let management = Management::start().await;
    let ingest = management
        .server
        .create_key(KeyOwner::Account(management.acme.clone()), "ingest")
        .await;
    let sent = management
        .server
        .post_events(
            &ingest,
            &json!({"events": [
                event("Deleted server web-9", json!({
                    "actor": {"id": "carol@acme.com", "name": "Carol", "type": "user"},
                    "user_agent": "Mozilla/5.0",
                    "metadata": {"email": "carol@acme.com"},
                })),
                event("Rebooted server web-1", json!({})),
            ]}),
        )
        .await;
    assert_eq!(sent.status(), 200);
    let admin = &management.acme_admin;
    let set = management
        .call(
            admin,
            Method::PUT,
            "/api/v1/accounts/acme/retention",
            Some(json!({
                "retention_days": 365,
                "personal_data_days": 30,
                "keep_network": true,
                "personal_metadata_fields": ["email"],
            })),
        )
        .await;
    assert_eq!(set.status(), 200);
    let settings = json_of(set).await;
    assert_eq!(settings["retention_days"], 365);
    assert_eq!(settings["personal_data_days"], 30);
    assert_eq!(settings["keep_network"], true);
    assert_eq!(settings["personal_metadata_fields"], json!(["email"]));
    // Bad input names its field and changes nothing.
    for (body, field) in [
        (json!({"retention_days": 0}), "retention_days"),
        (json!({"personal_data_days": 99999}), "personal_data_days"),
        (
            json!({"personal_metadata_fields": [""]}),
            "personal_metadata_fields",
        ),
    ] {
        let refused = management
            .call(
                admin,
                Method::PUT,
                "/api/v1/accounts/acme/retention",
                Some(body),
            )
            .await;
        assert_eq!(refused.status(), 400);
        assert_eq!(json_of(refused).await["error"]["field"], field);
    }
    let shown = json_of(
        management
            .call(admin, Method::GET, "/api/v1/accounts/acme/retention", None)
            .await,
    )
    .await;
    assert_eq!(shown["retention_days"], 365);

    // Under legal hold an erasure is refused with 409 and changes nothing.
    let held = management
        .call(
            admin,
            Method::POST,
            "/api/v1/accounts/acme/legal-hold",
            Some(json!({"reason": "case 17"})),
        )
        .await;
    assert_eq!(json_of(held).await["legal_hold"]["reason"], "case 17");
    let refused = management
        .call(
            admin,
            Method::POST,
            "/api/v1/accounts/acme/erasures",
            Some(json!({"actor_id": "carol@acme.com", "reason": "request 7"})),
        )
        .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(error_code(&json_of(refused).await), "legal_hold");
    management
        .call(
            admin,
            Method::POST,
            "/api/v1/accounts/acme/legal-hold/release",
            Some(json!({"reason": "case closed"})),
        )
        .await;
    let unknown = management
        .call(
            admin,
            Method::POST,
            "/api/v1/accounts/acme/erasures",
            Some(json!({"actor_id": "nobody@acme.com", "reason": "request 8"})),
        )
        .await;
    assert_eq!(unknown.status(), 409);
    let unknown = json_of(unknown).await;
    assert_eq!(error_code(&unknown), "unknown_actor");
    assert_eq!(unknown["error"]["field"], "actor_id");
    let erased = management
        .call(
            admin,
            Method::POST,
            "/api/v1/accounts/acme/erasures",
            Some(json!({"actor_id": "carol@acme.com", "reason": "request 7"})),
        )
        .await;
    assert_eq!(erased.status(), 200);
    assert_eq!(json_of(erased).await["events_changed"], 1);
    let events = management.changes("acme", "server.reboot").await;
    let carol = events
        .iter()
        .find(|event| event["actor"]["id"] == "carol@acme.com")
        .unwrap();
    assert_eq!(carol["ip"], Value::Null);
    assert_eq!(carol["metadata"]["email"], Value::Null);
    assert_eq!(
        carol["removed"],
        json!([
            "actor.name",
            "ip",
            "ip_network",
            "metadata.email",
            "user_agent"
        ])
    );
    let other = events
        .iter()
        .find(|event| event["actor"]["id"] != "carol@acme.com")
        .unwrap();
    assert_eq!(
        other["ip"], "203.0.113.9",
        "the other person's event keeps everything"
    );
    let erasures = management
        .changes("acme", "logbook.personal_data.erase")
        .await;
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0]["actor"]["type"], "api_key");
    assert_eq!(erasures[0]["metadata"]["reason"], "request 7");
    assert_eq!(
        management
            .changes("acme", "logbook.legal_hold.set")
            .await
            .len(),
        1
    );
    assert_eq!(
        management
            .changes("acme", "logbook.retention.set")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn single_sign_on_is_set_by_the_accounts_admin_and_its_secret_is_never_returned() {
    let management = Management::start().await;
    let path = "/api/v1/accounts/acme/sso";
    let call = |method: Method, body: Option<Value>| {
        management.call(&management.acme_admin, method, path, body)
    };
    let shown = json_of(call(Method::GET, None).await).await;
    assert_eq!(shown["source"], "none");
    assert_eq!(shown["settings"], Value::Null);
    assert_eq!(shown["redirect_uri"], "/login/sso/acme/callback");

    let good = json!({
        "display_name": "Okta",
        "issuer": "https://acme.okta.com",
        "client_id": "0oa1client",
        "client_secret": "the client secret",
        "default_role": "member",
        "invited_only": true,
        "password_sign_in_allowed": false
    });
    for (change, field, status) in [
        (json!({"issuer": "http://idp.example.com"}), "/issuer", 400),
        (json!({"display_name": ""}), "/display_name", 400),
        (json!({"display_name": " Okta"}), "/display_name", 400),
        (json!({"default_role": "root"}), "/default_role", 400),
        // Well formed, but there is no stored secret to keep: a conflict with what is stored.
        (json!({"client_secret": null}), "/client_secret", 409),
    ] {
        let mut body = good.clone();
        for (name, value) in change.as_object().unwrap() {
            body[name] = value.clone();
        }
        let refused = call(Method::PUT, Some(body.clone())).await;
        assert_eq!(refused.status(), status, "{body}");
        let refused = json_of(refused).await;
        assert_eq!(refused["error"]["field"], field, "{refused}");
        assert_eq!(
            json_of(call(Method::GET, None).await).await["source"],
            "none",
            "a refused change stores nothing"
        );
    }

    let stored = call(Method::PUT, Some(good.clone())).await;
    assert_eq!(stored.status(), 200);
    let stored_text = stored.text().await.unwrap();
    assert!(!stored_text.contains("the client secret"), "{stored_text}");
    let stored: Value = serde_json::from_str(&stored_text).unwrap();
    assert_eq!(stored["source"], "database");
    assert_eq!(stored["settings"]["client_secret_set"], true);
    assert_eq!(stored["settings"]["default_role"], "member");
    assert_eq!(stored["settings"]["invited_only"], true);
    assert_eq!(stored["settings"]["password_sign_in_allowed"], false);

    // A change without the secret keeps the stored one.
    let mut renamed = good.clone();
    renamed.as_object_mut().unwrap().remove("client_secret");
    renamed["display_name"] = json!("Okta Workforce");
    assert_eq!(call(Method::PUT, Some(renamed)).await.status(), 200);
    let kept = management
        .server
        .store
        .single_sign_on()
        .single_sign_on_settings(&management.acme)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.client_secret.expose(), "the client secret");
    assert_eq!(kept.display_name, "Okta Workforce");

    let changes = management.changes("acme", "logbook.sso.set").await;
    assert_eq!(changes.len(), 2);
    assert!(
        !changes
            .iter()
            .any(|event| event.to_string().contains("the client secret"))
    );

    let other = management
        .call(&management.globex_admin, Method::GET, path, None)
        .await;
    assert_eq!(other.status(), 404, "another account's key sees nothing");

    let cleared = json_of(
        management
            .call(
                &management.acme_admin,
                Method::POST,
                "/api/v1/accounts/acme/sso/clear",
                None,
            )
            .await,
    )
    .await;
    assert_eq!(cleared["source"], "none");
    assert_eq!(
        management.changes("acme", "logbook.sso.clear").await.len(),
        1
    );
}
