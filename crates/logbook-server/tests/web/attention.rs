//! "Needs attention" end to end: events sent through the API are read by the attention worker
//! that `serve` starts, its findings are listed above the table with a link to their evidence,
//! and "This was me" records the dismissal and an audit event, within the account only.

use std::time::Duration;

use logbook_core::attention::FindingFilter;
use logbook_core::people::Role;
use logbook_core::{AccountId, Clock};
use logbook_server::ServerSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Web, location};

async fn start() -> Web {
    let mut settings = ServerSettings::default();
    settings.attention.interval = Duration::from_millis(20);
    Web::start_with(settings).await
}

fn failed_logins(actor: &str, count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|attempt| {
                json!({
                    "action": "user.login",
                    "message": format!("Wrong password, attempt {attempt}"),
                    "actor": {"id": actor},
                    "ip": "198.51.100.7",
                    "outcome": "failure",
                })
            })
            .collect(),
    )
}

/// Waits (up to 10 s) until the worker has stored `count` findings for the account.
async fn wait_for_findings(web: &Web, account: &AccountId, count: usize) {
    let filter = FindingFilter {
        about_actor: None,
        include_dismissed: true,
        limit: 100,
    };
    for _ in 0..500 {
        let found = web
            .store
            .attention()
            .list_findings(account, &filter)
            .await
            .unwrap();
        if found.len() >= count {
            assert_eq!(found.len(), count, "{found:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the attention worker did not store {count} findings within 10 s");
}

fn dismiss_path_in(html: &str) -> String {
    let start = html
        .find("action=\"/attention/")
        .expect("a dismiss form on the page")
        + "action=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

#[tokio::test]
async fn failed_logins_sent_through_the_api_appear_under_needs_attention_with_their_evidence_link()
{
    let web = start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    // Four failures are a near miss: nothing to report.
    web.send(&key, failed_logins("alice@acme.com", 4)).await;
    let owner = web.sign_in("owner@acme.com").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, page, _) = web.page(&owner.cookie, "/").await;
    assert!(!page.contains("id=\"needs-attention\""));
    web.send(&key, failed_logins("alice@acme.com", 1)).await;
    wait_for_findings(&web, &acme, 1).await;

    let (status, page, _) = web.page(&owner.cookie, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"needs-attention\""));
    assert!(page.contains("5 failed logins for alice@acme.com within 10 minutes"));
    // The heading sits above the table.
    assert!(page.find("needs-attention").unwrap() < page.find("id=\"events\"").unwrap());
    let href_start = page.find("class=\"attention-evidence\" href=\"").unwrap()
        + "class=\"attention-evidence\" href=\"".len();
    let href = &page[href_start..href_start + page[href_start..].find('"').unwrap()];
    assert!(
        href.starts_with("/?q=actor%3Aalice%40acme.com%20action%3Auser.login"),
        "{href}"
    );
    // The link shows exactly the five failures.
    let (status, evidence, _) = web.page(&owner.cookie, href).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(evidence.matches("Wrong password, attempt").count(), 5);
}

#[tokio::test]
async fn this_was_me_dismisses_a_finding_records_who_and_writes_an_audit_event() {
    let web = start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "alice@acme.com", Role::Member).await;
    web.user(&acme, "vera@acme.com", Role::Viewer).await;
    let key = web.ingest_key(&acme).await;
    web.send(&key, failed_logins("alice@acme.com", 5)).await;
    wait_for_findings(&web, &acme, 1).await;

    // A viewer sees the finding but may not dismiss one about someone else.
    let vera = web.sign_in("vera@acme.com").await;
    let (_, page, _) = web.page(&vera.cookie, "/").await;
    assert!(page.contains("5 failed logins for alice@acme.com"));
    assert!(!page.contains("action=\"/attention/"));
    let finding_id = web
        .store
        .attention()
        .list_findings(
            &acme,
            &FindingFilter {
                about_actor: None,
                include_dismissed: true,
                limit: 1,
            },
        )
        .await
        .unwrap()[0]
        .finding_id;
    let path = format!("/attention/{finding_id}/dismiss");
    let refused = web.post_form(&vera, &path, &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Alice, a member, sees it because it is about her, and says it was her.
    let alice = web.sign_in("alice@acme.com").await;
    let (_, page, _) = web.page(&alice.cookie, "/").await;
    assert_eq!(dismiss_path_in(&page), path);
    // Without the CSRF token nothing happens.
    let forged = web
        .client
        .post(web.url(&path))
        .header("cookie", &alice.cookie)
        .form(&[("csrf_token", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let dismissed = web.post_form(&alice, &path, &[]).await;
    assert_eq!(dismissed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&dismissed), "/");
    let (_, page, _) = web.page(&alice.cookie, "/").await;
    assert!(!page.contains("id=\"needs-attention\""));

    let record = web
        .store
        .attention()
        .get_finding(&acme, finding_id)
        .await
        .unwrap()
        .unwrap();
    let dismissal = record.dismissal.expect("the dismissal is recorded");
    assert_eq!(dismissal.dismissed_by, "alice@acme.com");
    assert_eq!(dismissal.dismissed_at, web.clock.now());
    let audit = web
        .audit_events(&acme, "action:logbook.attention.dismiss")
        .await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"]["id"], "alice@acme.com");
    assert_eq!(audit[0]["targets"][0]["id"], finding_id.to_string());
    assert_eq!(audit[0]["metadata"]["kind"], "failed_login_burst");
    // A second click records nothing more; the full list still shows who dismissed it.
    web.post_form(&alice, &path, &[]).await;
    assert_eq!(
        web.audit_events(&acme, "action:logbook.attention.dismiss")
            .await
            .len(),
        1
    );
    let (_, all, _) = web.page(&vera.cookie, "/attention").await;
    assert!(all.contains("Dismissed by alice@acme.com at"));
}

#[tokio::test]
async fn findings_stay_in_their_account_and_members_see_only_their_own() {
    let web = start().await;
    let acme = web.account("acme").await;
    let globex = web.account("globex").await;
    web.user(&acme, "bob@acme.com", Role::Member).await;
    web.user(&globex, "gina@globex.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    // Not alice: the search box's placeholder names her.
    web.send(&key, failed_logins("zed@acme.com", 5)).await;
    wait_for_findings(&web, &acme, 1).await;
    let finding_id = web
        .store
        .attention()
        .list_findings(
            &acme,
            &FindingFilter {
                about_actor: None,
                include_dismissed: true,
                limit: 1,
            },
        )
        .await
        .unwrap()[0]
        .finding_id;
    let path = format!("/attention/{finding_id}/dismiss");

    // Another account's owner neither sees nor dismisses it: it does not exist there.
    let gina = web.sign_in("gina@globex.com").await;
    for page_path in ["/", "/attention"] {
        let (_, page, _) = web.page(&gina.cookie, page_path).await;
        assert!(!page.contains("zed@acme.com"), "{page_path}");
    }
    assert_eq!(
        web.post_form(&gina, &path, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    // A member of the same account sees only findings about themselves.
    let bob = web.sign_in("bob@acme.com").await;
    let (_, page, _) = web.page(&bob.cookie, "/attention").await;
    assert!(!page.contains("zed@acme.com"));
    assert_eq!(
        web.post_form(&bob, &path, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        web.post_form(&bob, "/attention/not-a-number/dismiss", &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        web.store
            .attention()
            .get_finding(&acme, finding_id)
            .await
            .unwrap()
            .unwrap()
            .dismissal
            .is_none()
    );
}

#[tokio::test]
async fn a_hostile_actor_id_in_a_finding_is_shown_as_inert_text() {
    let web = start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    web.send(&key, failed_logins("<script>alert(1)</script>\"", 5))
        .await;
    wait_for_findings(&web, &acme, 1).await;
    let owner = web.sign_in("owner@acme.com").await;
    for page_path in ["/", "/attention"] {
        let (_, page, _) = web.page(&owner.cookie, page_path).await;
        assert!(page.contains("id=\"needs-attention\""), "{page_path}");
        assert!(!page.contains("<script>alert"), "{page_path}");
        assert!(
            page.contains("failed logins for &#60;script&#62;alert(1)&#60;/script&#62;&#34;"),
            "{page_path}"
        );
    }
}

#[tokio::test]
async fn reading_in_small_batches_with_two_workers_at_once_stores_each_episode_exactly_once() {
    use logbook_server::workers::attention::{AttentionWorkerSettings, catch_up_account};
    // The server's own worker waits an hour after its first (empty) round: this test drives it.
    let mut settings = ServerSettings::default();
    settings.attention.interval = Duration::from_secs(3600);
    let web = Web::start_with(settings).await;
    let mut events = failed_logins("alice@acme.com", 7);
    let events_list = events.as_array_mut().unwrap();
    for index in 0..20 {
        events_list.push(json!({
            "action": "file.delete",
            "message": format!("Deleted file {index}"),
            "actor": {"id": "bob@acme.com"},
        }));
    }
    events_list.extend(
        failed_logins("carol@acme.com", 5)
            .as_array()
            .unwrap()
            .clone(),
    );
    let mut accounts = Vec::new();
    for name in ["acme", "globex"] {
        let account = web.account(name).await;
        let key = web.ingest_key(&account).await;
        web.send(&key, events.clone()).await;
        accounts.push(account);
    }
    let in_one_go = AttentionWorkerSettings::default();
    let (_, found) = catch_up_account(web.store.as_ref(), &accounts[1], &in_one_go, &*web.clock)
        .await
        .unwrap();
    assert_eq!(found, 3, "alice's and carol's bursts and bob's deletions");

    // Batches of three: every batch starts from what the previous one saved, as after a restart,
    // and two workers race over the same account.
    let small_batches = AttentionWorkerSettings {
        batch_size: 3,
        ..AttentionWorkerSettings::default()
    };
    let (first, second) = tokio::join!(
        catch_up_account(
            web.store.as_ref(),
            &accounts[0],
            &small_batches,
            &*web.clock
        ),
        catch_up_account(
            web.store.as_ref(),
            &accounts[0],
            &small_batches,
            &*web.clock
        ),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.0, 32);
    assert_eq!(second.0, 32);
    // Once more from the saved cursor: nothing new.
    let (_, again) = catch_up_account(
        web.store.as_ref(),
        &accounts[0],
        &small_batches,
        &*web.clock,
    )
    .await
    .unwrap();
    assert_eq!(again, 0);

    let episodes = |records: Vec<logbook_core::attention::FindingRecord>| {
        let mut episodes: Vec<(String, String, u64, String)> = records
            .into_iter()
            .map(|record| {
                (
                    record.finding.kind.as_str().to_owned(),
                    record.finding.subject.value(),
                    record.finding.first_seq,
                    record.finding.evidence_query,
                )
            })
            .collect();
        episodes.sort();
        episodes
    };
    let every = FindingFilter {
        about_actor: None,
        include_dismissed: true,
        limit: 100,
    };
    let attention = web.store.attention();
    assert_eq!(
        episodes(attention.list_findings(&accounts[0], &every).await.unwrap()),
        episodes(attention.list_findings(&accounts[1], &every).await.unwrap()),
    );
    assert_eq!(
        attention
            .attention_progress(&accounts[0])
            .await
            .unwrap()
            .unwrap()
            .next_seq,
        32
    );
}

#[tokio::test]
async fn a_key_created_right_after_a_login_from_a_new_address_is_flagged_using_the_ingest_flag() {
    let web = start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    web.user(&acme, "dave@acme.com", Role::Member).await;
    let key = web.ingest_key(&acme).await;
    // The first address of an actor is never new; the second one is (flagged at ingest).
    web.send(
        &key,
        json!([
            {"action": "user.login", "message": "Signed in", "actor": {"id": "dave@acme.com"},
             "ip": "203.0.113.5", "outcome": "success"},
            {"action": "acme.api_key.create", "message": "Created a key from home",
             "actor": {"id": "dave@acme.com"}, "ip": "203.0.113.5"},
            {"action": "user.login", "message": "Signed in again", "actor": {"id": "dave@acme.com"},
             "ip": "192.0.2.44", "outcome": "success"},
            {"action": "acme.api_key.create", "message": "Created a key from elsewhere",
             "actor": {"id": "dave@acme.com"}, "ip": "192.0.2.44"},
        ]),
    )
    .await;
    wait_for_findings(&web, &acme, 1).await;
    let owner = web.sign_in("owner@acme.com").await;
    let (_, page, _) = web.page(&owner.cookie, "/").await;
    assert!(
        page.contains(
            "dave@acme.com signed in from new address 192.0.2.44 and then did acme.api_key.create"
        ),
        "{page}"
    );

    // Dave may be the intruder this is about: he sees it but cannot clear it; an owner can.
    let path = dismiss_path_in(&page);
    let dave = web.sign_in("dave@acme.com").await;
    let (_, daves_page, _) = web.page(&dave.cookie, "/attention").await;
    assert!(daves_page.contains("192.0.2.44"), "{daves_page}");
    assert!(!daves_page.contains(&path), "{daves_page}");
    assert_eq!(
        web.post_form(&dave, &path, &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        web.post_form(&owner, &path, &[]).await.status(),
        StatusCode::SEE_OTHER
    );
}

/// A city database written by the real MaxMind DB writer, with coordinates and accuracy radii:
/// Mumbai and Singapore (about 3,900 km apart) precisely, India as a whole only within 1,000 km,
/// and Germany without coordinates. Singapore's city name is hostile text.
fn write_travel_databases(
    python: &std::path::Path,
    directory: &std::path::Path,
) -> std::sync::Arc<logbook_server::ip_databases::IpDatabases> {
    let place = |city: &str, country: &str, latitude: f64, longitude: f64, radius: u32| {
        json!({
            "city": {"names": {"en": city}},
            "country": {"iso_code": country, "names": {"en": country}},
            "location": {"latitude": latitude, "longitude": longitude, "accuracy_radius": radius},
        })
    };
    let city = directory.join("GeoLite2-City.mmdb");
    crate::ip_database_writer::write_database(
        python,
        &city,
        "GeoLite2-City",
        &[
            (
                "203.0.113.0/24",
                place("Mumbai", "IN", 19.0748, 72.8856, 20),
            ),
            (
                "198.51.100.0/24",
                place("<b>Singapore</b>", "SG", 1.2897, 103.8501, 5),
            ),
            ("192.0.2.0/24", place("India", "IN", 20.5937, 78.9629, 1000)),
            (
                "2001:db8:1::/48",
                json!({"country": {"iso_code": "DE", "names": {"en": "Germany"}}}),
            ),
        ],
    );
    let databases = logbook_server::ip_databases::IpDatabases::open(
        &logbook_server::ip_databases::IpDatabaseSettings {
            city_database: Some(city),
            asn_database: None,
            snapshot_directory: directory.join("snapshots"),
            reload_interval: Duration::from_secs(60),
        },
    )
    .unwrap()
    .expect("a city database");
    std::sync::Arc::new(databases)
}

fn login_at(actor: &str, ip: &str, created_at: &str) -> Value {
    json!({"action": "user.login", "message": format!("{actor} signed in from {ip} at {created_at}"),
           "actor": {"id": actor}, "ip": ip, "outcome": "success", "created_at": created_at})
}

#[tokio::test]
async fn impossible_travel_and_a_change_after_a_new_country_are_found_from_real_ip_databases() {
    let Some(python) = crate::ip_database_writer::writer_python(
        "impossible_travel_and_a_change_after_a_new_country_are_found_from_real_ip_databases",
    ) else {
        return;
    };
    let directory = tempfile::tempdir().unwrap();
    let databases = write_travel_databases(&python, directory.path());
    let mut settings = ServerSettings::default();
    settings.attention.interval = Duration::from_millis(20);
    let options = logbook_store_sqlite::SqliteOptions {
        ip_locator: databases,
        ..logbook_store_sqlite::SqliteOptions::default()
    };
    let web = Web::start_with_options(settings, options).await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    web.send(
        &key,
        json!([
            // Mumbai, then Singapore an hour later: about 3,900 km/h.
            login_at("dmitri", "203.0.113.9", "2024-06-01T00:00:00Z"),
            login_at("dmitri", "198.51.100.7", "2024-06-01T01:00:00Z"),
            // The same trip in six hours is about 650 km/h: possible, not reported.
            login_at("priya", "203.0.113.10", "2024-06-01T00:00:00Z"),
            login_at("priya", "198.51.100.8", "2024-06-01T06:00:00Z"),
            // About 690 km in ten minutes, but India is only known within 1,000 km: the
            // distance that is certain is none.
            login_at("farah", "203.0.113.11", "2024-06-01T00:00:00Z"),
            login_at("farah", "192.0.2.1", "2024-06-01T00:10:00Z"),
            // Germany has no coordinates: nothing to compare.
            login_at("gert", "203.0.113.12", "2024-06-01T00:00:00Z"),
            login_at("gert", "2001:db8:1::7", "2024-06-01T00:05:00Z"),
            // A slow trip to a new country, then a key within the hour.
            login_at("sam", "203.0.113.13", "2024-06-01T00:00:00Z"),
            login_at("sam", "198.51.100.9", "2024-06-01T07:00:00Z"),
            {"action": "acme.api_key.create", "message": "Created a key",
             "actor": {"id": "sam"}, "ip": "198.51.100.9", "created_at": "2024-06-01T07:10:00Z"},
        ]),
    )
    .await;
    // Dmitri's travel, and Sam's key after both a new address and a new country.
    wait_for_findings(&web, &acme, 3).await;
    let findings = web
        .store
        .attention()
        .list_findings(
            &acme,
            &FindingFilter {
                about_actor: None,
                include_dismissed: true,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let kinds: Vec<(&str, String)> = findings
        .iter()
        .map(|record| (record.finding.kind.as_str(), record.finding.subject.value()))
        .collect();
    assert!(
        kinds.contains(&("impossible_travel", "dmitri".into()))
            && kinds.contains(&("sensitive_change_after_new_country_login", "sam".into()))
            && kinds.contains(&("sensitive_change_after_new_ip_login", "sam".into())),
        "{kinds:?}"
    );

    let owner = web.sign_in("owner@acme.com").await;
    let (_, page, _) = web.page(&owner.cookie, "/").await;
    assert!(page.contains("Impossible travel"), "{page}");
    assert!(
        page.contains(
            "dmitri signed in from Mumbai, IN and &#60;b&#62;Singapore&#60;/b&#62;, SG 1 hour apart, about 3910 km away"
        ),
        "{page}"
    );
    assert!(!page.contains("<b>Singapore</b>"));
    assert!(page.contains("New country, then a change"));
    assert!(page.contains("sam signed in from new country SG and then did acme.api_key.create"));
    // The evidence of the travel is the two logins.
    let travel = findings
        .iter()
        .find(|record| record.finding.kind.as_str() == "impossible_travel")
        .unwrap();
    let url = reqwest::Url::parse_with_params(
        "http://logbook.invalid/",
        &[("q", &travel.finding.evidence_query)],
    )
    .unwrap();
    let href = format!("/?{}", url.query().unwrap());
    let (_, evidence, _) = web.page(&owner.cookie, &href).await;
    assert_eq!(
        evidence.matches("class=\"row-link\"").count(),
        2,
        "{evidence}"
    );
    assert!(
        evidence.contains("dmitri signed in from 203.0.113.9 at")
            && evidence.contains("dmitri signed in from 198.51.100.7 at"),
        "{evidence}"
    );
}
