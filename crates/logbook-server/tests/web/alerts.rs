//! The Alerts page without a browser: owners and admins only, CSRF-checked forms, rule queries
//! checked by the search box's parser, the webhook secret shown once, hostile names inert, the
//! SSRF guard on "send test", and every change an audit event.

use logbook_core::people::Role;
use reqwest::StatusCode;

use super::Web;

#[tokio::test]
async fn owners_manage_rules_and_destinations_on_the_alerts_page_and_each_change_is_audited() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    web.user(&acme, "viewer@acme.com", Role::Viewer).await;
    let owner = web.sign_in("owner@acme.com").await;
    let viewer = web.sign_in("viewer@acme.com").await;

    let (status, _, _) = web.page(&viewer.cookie, "/alerts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let refused = web
        .post_form(
            &viewer,
            "/alerts/destinations",
            &[
                ("name", "x"),
                ("kind", "syslog"),
                ("address", "siem.example.com:514"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let created = web
        .post_form(
            &owner,
            "/alerts/destinations",
            &[
                ("name", "<script>alert(1)</script>"),
                ("kind", "webhook"),
                ("url", "https://hooks.example.com/logbook"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    let html = created.text().await.unwrap();
    assert!(
        html.contains("id=\"new-secret\">whsec_"),
        "the secret is shown once"
    );
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;"),
        "the name is shown as escaped text"
    );
    let (_, listing, _) = web.page(&owner.cookie, "/alerts").await;
    assert!(
        !listing.contains("whsec_"),
        "the secret is never shown again"
    );
    let destinations = web.store.alerting().list_destinations(&acme).await.unwrap();
    assert_eq!(destinations.len(), 1);
    let destination_id = destinations[0].destination_id.clone();

    let bad_query = web
        .post_form(
            &owner,
            "/alerts/rules",
            &[
                ("name", "typo"),
                ("query", "acton:user.login"),
                ("destination_id", destination_id.as_str()),
            ],
        )
        .await;
    assert_eq!(bad_query.status(), StatusCode::BAD_REQUEST);
    let parser_message = logbook_core::query::parse("acton:user.login")
        .unwrap_err()
        .message;
    let bad_query_html = bad_query.text().await.unwrap();
    assert!(
        bad_query_html.contains(&parser_message.replace('"', "&#34;"))
            || bad_query_html.contains(&parser_message),
        "the search box's message: {parser_message}"
    );
    assert!(
        web.store
            .alerting()
            .list_rules(&acme)
            .await
            .unwrap()
            .is_empty()
    );

    let rule = web
        .post_form(
            &owner,
            "/alerts/rules",
            &[
                ("name", "Bursts of failed logins"),
                ("query", "outcome:failure action:user.login"),
                ("threshold_count", "5"),
                ("threshold_window_minutes", "10"),
                ("destination_id", destination_id.as_str()),
            ],
        )
        .await;
    assert_eq!(rule.status(), StatusCode::SEE_OTHER);
    let rules = web.store.alerting().list_rules(&acme).await.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].threshold.unwrap().count, 5);
    assert_eq!(rules[0].destination_ids, vec![destination_id.clone()]);
    let (_, listing, _) = web.page(&owner.cookie, "/alerts").await;
    assert!(listing.contains("more than 5 in 10 min"));

    let disabled = web
        .post_form(
            &owner,
            &format!("/alerts/rules/{}/disable", rules[0].rule_id),
            &[],
        )
        .await;
    assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
    assert!(!web.store.alerting().list_rules(&acme).await.unwrap()[0].enabled);
    let deleted = web
        .post_form(
            &owner,
            &format!("/alerts/rules/{}/delete", rules[0].rule_id),
            &[],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let deleted_destination = web
        .post_form(
            &owner,
            &format!("/alerts/destinations/{destination_id}/delete"),
            &[],
        )
        .await;
    assert_eq!(deleted_destination.status(), StatusCode::SEE_OTHER);

    for action in [
        "logbook.destination.create",
        "logbook.alert_rule.create",
        "logbook.alert_rule.disable",
        "logbook.alert_rule.delete",
        "logbook.destination.delete",
    ] {
        let events = web.audit_events(&acme, &format!("action:{action}")).await;
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0]["actor"]["id"], "owner@acme.com");
    }
}

#[tokio::test]
async fn send_test_to_a_private_address_is_refused_by_default_and_shown_as_the_last_error() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "admin@acme.com", Role::Admin).await;
    let admin = web.sign_in("admin@acme.com").await;
    web.post_form(
        &admin,
        "/alerts/destinations",
        &[
            ("name", "metadata"),
            ("kind", "syslog"),
            ("address", "169.254.169.254:514"),
        ],
    )
    .await;
    let destination_id = web.store.alerting().list_destinations(&acme).await.unwrap()[0]
        .destination_id
        .clone();
    let tested = web
        .post_form(
            &admin,
            &format!("/alerts/destinations/{destination_id}/test"),
            &[],
        )
        .await;
    assert_eq!(tested.status(), StatusCode::OK);
    let html = tested.text().await.unwrap();
    assert!(html.contains("id=\"alerts-problem\""), "{html}");
    assert!(html.contains("refused by the destination guard"));
    let destination = &web.store.alerting().list_destinations(&acme).await.unwrap()[0];
    assert!(
        destination
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("169.254.169.254"))
    );
    assert_eq!(destination.last_success_at, None);
    let events = web
        .audit_events(&acme, "action:logbook.destination.test outcome:failure")
        .await;
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn tls_and_relp_collectors_are_added_on_the_page_and_a_ca_that_is_not_a_certificate_is_refused()
 {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    let owner = web.sign_in("owner@acme.com").await;
    let not_a_certificate = web
        .post_form(
            &owner,
            "/alerts/destinations",
            &[
                ("name", "siem"),
                ("kind", "syslog_tls"),
                ("address", "siem.example.com:6514"),
                (
                    "trusted_ca_pem",
                    "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----",
                ),
            ],
        )
        .await;
    assert_eq!(not_a_certificate.status(), StatusCode::BAD_REQUEST);
    assert!(
        not_a_certificate
            .text()
            .await
            .unwrap()
            .contains("trusted_ca_pem: ")
    );
    assert!(
        web.store
            .alerting()
            .list_destinations(&acme)
            .await
            .unwrap()
            .is_empty()
    );

    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    for (name, kind, address, ca) in [
        (
            "siem over tls",
            "syslog_tls",
            "siem.example.com:6514",
            ca_pem.as_str(),
        ),
        ("siem over relp", "relp", "siem.example.com:2514", ""),
    ] {
        let created = web
            .post_form(
                &owner,
                "/alerts/destinations",
                &[
                    ("name", name),
                    ("kind", kind),
                    ("address", address),
                    ("trusted_ca_pem", ca),
                ],
            )
            .await;
        assert_eq!(created.status(), StatusCode::OK, "{kind}");
    }
    let (_, html, _) = web.page(&owner.cookie, "/alerts").await;
    assert!(html.contains("syslog over TLS, private CA"), "{html}");
    assert!(html.contains("RELP"));
    let mut kinds: Vec<&'static str> = web
        .store
        .alerting()
        .list_destinations(&acme)
        .await
        .unwrap()
        .iter()
        .map(|destination| destination.kind.kind_name())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, vec!["relp", "syslog_tls"]);
}

#[tokio::test]
async fn send_test_is_limited_per_account_with_a_429_and_retry_after() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    let globex = web.account("globex").await;
    web.user(&acme, "admin@acme.com", Role::Admin).await;
    web.user(&globex, "admin@globex.com", Role::Admin).await;
    let acme_admin = web.sign_in("admin@acme.com").await;
    let globex_admin = web.sign_in("admin@globex.com").await;
    let mut destinations = Vec::new();
    for (browser, account) in [(&acme_admin, &acme), (&globex_admin, &globex)] {
        web.post_form(
            browser,
            "/alerts/destinations",
            &[
                ("name", "metadata"),
                ("kind", "syslog"),
                ("address", "169.254.169.254:514"),
            ],
        )
        .await;
        destinations.push(
            web.store
                .alerting()
                .list_destinations(account)
                .await
                .unwrap()[0]
                .destination_id
                .clone(),
        );
    }
    let acme_test = format!("/alerts/destinations/{}/test", destinations[0]);
    let burst = logbook_server::web::throttle::TEST_SENDS_BURST as usize;
    for _ in 0..burst {
        let tested = web.post_form(&acme_admin, &acme_test, &[]).await;
        assert_eq!(tested.status(), StatusCode::OK);
    }
    let refused = web.post_form(&acme_admin, &acme_test, &[]).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("test deliveries recently")
    );
    let sent = web
        .audit_events(&acme, "action:logbook.destination.test")
        .await;
    assert_eq!(
        sent.len(),
        burst,
        "the refused test was not sent, so not audited"
    );

    let other = web
        .post_form(
            &globex_admin,
            &format!("/alerts/destinations/{}/test", destinations[1]),
            &[],
        )
        .await;
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "another account is not held back"
    );
}
