//! Unfamiliar IPs on the page (issue 6): owners and admins name known networks with field errors
//! for bad input, each change is an audit event, viewers cannot change them, events from a known
//! network show its name instead of the new-IP highlight, and the event view lists where else
//! the actor has been seen.

use logbook_core::people::Role;
use reqwest::StatusCode;
use serde_json::json;

use super::Web;

#[tokio::test]
async fn owners_name_networks_with_field_errors_and_every_change_is_audited() {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    web.user(&acme, "viewer@acme.com", Role::Viewer).await;
    let owner = web.sign_in("owner@acme.com").await;

    let refused = web
        .post_form(
            &owner,
            "/networks",
            &[("name", "Office <b>"), ("blocks", "203.0.113.0/33")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("id=\"network-name-error\""), "{html}");
    assert!(html.contains("id=\"network-blocks-error\""), "{html}");
    // The name is shown back in the form, escaped, so the markup stays inert.
    assert!(html.contains("value=\"Office &"), "{html}");
    assert!(!html.contains("Office <b>"));

    let saved = web
        .post_form(
            &owner,
            "/networks",
            &[
                ("name", "office"),
                ("blocks", "203.0.113.0/24, 2001:db8:5::/48"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, html, _) = web.page(&owner.cookie, "/networks").await;
    assert!(html.contains("203.0.113.0/24, 2001:db8:5::/48"), "{html}");

    let viewer = web.sign_in("viewer@acme.com").await;
    let forbidden = web.post_form(&viewer, "/networks/office/delete", &[]).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let no_csrf = web
        .client
        .post(web.url("/networks/office/delete"))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert_ne!(no_csrf.status(), StatusCode::SEE_OTHER);

    let removed = web.post_form(&owner, "/networks/office/delete", &[]).await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    let audit = web.audit_events(&acme, "action:logbook.network.*").await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["logbook.network.delete", "logbook.network.save"]);
    assert_eq!(audit[1]["actor"]["id"], "owner@acme.com");
    assert_eq!(audit[1]["targets"][0]["id"], "office");
}

#[tokio::test]
async fn a_known_network_replaces_the_new_ip_highlight_and_the_event_lists_where_else_the_actor_was_seen()
 {
    let web = Web::start().await;
    let acme = web.account("acme").await;
    web.user(&acme, "owner@acme.com", Role::Owner).await;
    let key = web.ingest_key(&acme).await;
    let owner = web.sign_in("owner@acme.com").await;
    web.send(
        &key,
        json!([{"action": "user.login", "message": "home", "actor": {"id": "alice"}, "ip": "198.51.100.4"}]),
    )
    .await;
    let ids = web
        .send(
            &key,
            json!([
                {"action": "user.login", "message": "from the office", "actor": {"id": "alice"}, "ip": "203.0.113.9"},
                {"action": "user.login", "message": "from somewhere new", "actor": {"id": "alice"}, "ip": "192.0.2.77"}
            ]),
        )
        .await;
    web.post_form(
        &owner,
        "/networks",
        &[("name", "office"), ("blocks", "203.0.113.0/24")],
    )
    .await;
    let (_, html, _) = web.page(&owner.cookie, "/").await;
    assert!(html.contains("192.0.2.77 · new"), "{html}");
    assert!(!html.contains("203.0.113.9 · new"), "{html}");
    assert!(
        html.contains("<span class=\"badge known-network\">office</span>"),
        "{html}"
    );

    let (_, html, _) = web.page(&owner.cookie, "/?q=ip%3Aoffice").await;
    assert!(html.contains("from the office") && !html.contains("from somewhere new"));

    let (status, html, _) = web
        .page(&owner.cookie, &format!("/events/{}", ids[0]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<dd id=\"known-network\">office</dd>"),
        "{html}"
    );
    assert!(!html.contains("Does this look unfamiliar?"), "{html}");
    assert!(html.contains("Where else this actor has been seen"));
    for ip in ["198.51.100.4", "203.0.113.9 (this event)", "192.0.2.77"] {
        assert!(html.contains(ip), "{ip} in {html}");
    }
    let (_, html, _) = web
        .page(&owner.cookie, &format!("/events/{}", ids[1]))
        .await;
    assert!(html.contains("Does this look unfamiliar?"), "{html}");
}
