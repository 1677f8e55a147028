//! Conformance cases for viewer sessions and each account's look of the embedded view (issue
//! 15): a ticket opens once and only before its deadline, a session is found by its token's hash
//! only, ended sessions are forgotten, and an account's look is kept, replaced and removed.

use std::net::IpAddr;
use std::sync::Arc;

use logbook_core::viewer::{EmbedLook, NewViewerSession, Theme, ViewerPerson, ViewerScope};
use logbook_core::{AccountId, Store, StoreError};
use time::Duration;

use crate::builders::RECEIVED_AT;

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account")
}

fn new_session(id: &str, account_name: &str, ticket: u8, scope: ViewerScope) -> NewViewerSession {
    NewViewerSession {
        viewer_session_id: id.to_owned(),
        account: account(account_name),
        person: ViewerPerson {
            id: "platform-user-7".into(),
            name: Some("Ana Lima".into()),
            email: Some("ana@acme.com".into()),
        },
        scope,
        may_export: true,
        created_by: "key_admin".into(),
        created_at: RECEIVED_AT,
        open_by: RECEIVED_AT + Duration::seconds(60),
        expires_at: RECEIVED_AT + Duration::hours(1),
        ticket_hash: [ticket; 32],
    }
}

const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

pub async fn a_viewer_ticket_opens_once_before_its_deadline_and_the_session_is_found_by_its_token(
    store: Arc<dyn Store>,
) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let sessions = store.viewer_sessions();
    sessions
        .create_viewer_session(
            new_session(
                "vs_1",
                "acme",
                1,
                ViewerScope::FixedQuery("target:srv-123".into()),
            ),
            RECEIVED_AT,
        )
        .await
        .unwrap();
    assert!(
        sessions
            .find_viewer_session(&[1; 32])
            .await
            .unwrap()
            .is_none(),
        "the ticket's hash is not a session token"
    );
    assert!(
        sessions
            .find_viewer_session(&[9; 32])
            .await
            .unwrap()
            .is_none(),
        "a session that was never opened is not found by any token"
    );
    let opened = sessions
        .open_viewer_session(
            &[1; 32],
            &[9; 32],
            RECEIVED_AT + Duration::seconds(5),
            IP,
            Some("Chromium"),
        )
        .await
        .unwrap()
        .expect("a fresh ticket opens");
    assert_eq!(opened.viewer_session_id, "vs_1");
    assert_eq!(opened.account, account("acme"));
    assert_eq!(opened.person.id, "platform-user-7");
    assert_eq!(opened.person.name.as_deref(), Some("Ana Lima"));
    assert_eq!(opened.person.email.as_deref(), Some("ana@acme.com"));
    assert_eq!(
        opened.scope,
        ViewerScope::FixedQuery("target:srv-123".into())
    );
    assert!(opened.may_export);
    assert_eq!(opened.opened_at, Some(RECEIVED_AT + Duration::seconds(5)));
    assert_eq!(opened.expires_at, RECEIVED_AT + Duration::hours(1));
    assert!(
        sessions
            .open_viewer_session(
                &[1; 32],
                &[8; 32],
                RECEIVED_AT + Duration::seconds(6),
                IP,
                None
            )
            .await
            .unwrap()
            .is_none(),
        "a used ticket opens nothing"
    );
    let found = sessions
        .find_viewer_session(&[9; 32])
        .await
        .unwrap()
        .expect("the opened session is found by its token's hash");
    assert_eq!(found.viewer_session_id, "vs_1");
    assert!(
        sessions
            .find_viewer_session(&[8; 32])
            .await
            .unwrap()
            .is_none()
    );

    sessions
        .create_viewer_session(
            new_session("vs_2", "acme", 2, ViewerScope::OwnEvents),
            RECEIVED_AT,
        )
        .await
        .unwrap();
    assert!(
        sessions
            .open_viewer_session(
                &[2; 32],
                &[7; 32],
                RECEIVED_AT + Duration::seconds(60),
                IP,
                None
            )
            .await
            .unwrap()
            .is_none(),
        "a ticket is refused from its deadline on"
    );

    let unknown = sessions
        .create_viewer_session(
            new_session("vs_3", "nobody", 3, ViewerScope::WholeLog),
            RECEIVED_AT,
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::AccountNotFound(_))),
        "{unknown:?}"
    );

    // Making a session forgets the ones that ended before the given time.
    sessions
        .create_viewer_session(
            new_session("vs_4", "acme", 4, ViewerScope::WholeLog),
            RECEIVED_AT + Duration::hours(2),
        )
        .await
        .unwrap();
    assert!(
        sessions
            .find_viewer_session(&[9; 32])
            .await
            .unwrap()
            .is_none(),
        "an ended session is forgotten"
    );
}

pub async fn an_ended_viewer_session_neither_opens_nor_reads_after_its_end(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let sessions = store.viewer_sessions();
    for (id, ticket) in [("vs_open", 1), ("vs_unopened", 2)] {
        sessions
            .create_viewer_session(
                new_session(id, "acme", ticket, ViewerScope::WholeLog),
                RECEIVED_AT,
            )
            .await
            .unwrap();
    }
    sessions
        .open_viewer_session(&[1; 32], &[9; 32], RECEIVED_AT, IP, None)
        .await
        .unwrap()
        .expect("opens");
    let ended_at = RECEIVED_AT + Duration::seconds(10);
    assert!(
        sessions
            .end_viewer_session("vs_open", ended_at)
            .await
            .unwrap()
    );
    assert!(
        sessions
            .end_viewer_session("vs_unopened", ended_at)
            .await
            .unwrap()
    );
    assert!(
        !sessions
            .end_viewer_session("vs_nothing", ended_at)
            .await
            .unwrap()
    );
    let ended = sessions
        .find_viewer_session(&[9; 32])
        .await
        .unwrap()
        .expect("an ended session is still found, to say it ended");
    assert_eq!(ended.expires_at, ended_at);
    let by_id = sessions
        .viewer_session_by_id("vs_unopened")
        .await
        .unwrap()
        .expect("found by id");
    assert_eq!(by_id.account, account("acme"));
    assert_eq!(by_id.open_by, ended_at, "its URL stopped working");
    assert!(
        sessions
            .open_viewer_session(
                &[2; 32],
                &[8; 32],
                ended_at + Duration::seconds(1),
                IP,
                None
            )
            .await
            .unwrap()
            .is_none(),
        "an ended session's URL opens nothing"
    );
    // Ending again keeps the earlier end.
    sessions
        .end_viewer_session("vs_open", ended_at + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        sessions
            .viewer_session_by_id("vs_open")
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        ended_at
    );
}

pub async fn a_viewer_ticket_opened_by_two_callers_at_once_opens_one_session(
    store: Arc<dyn Store>,
) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    store
        .viewer_sessions()
        .create_viewer_session(
            new_session("vs_1", "acme", 1, ViewerScope::WholeLog),
            RECEIVED_AT,
        )
        .await
        .unwrap();
    let openings = (0..8u8).map(|caller| {
        let store = store.clone();
        async move {
            store
                .viewer_sessions()
                .open_viewer_session(&[1; 32], &[100 + caller; 32], RECEIVED_AT, IP, None)
                .await
                .unwrap()
        }
    });
    let opened = futures::future::join_all(openings)
        .await
        .into_iter()
        .filter(Option::is_some)
        .count();
    assert_eq!(opened, 1, "exactly one caller opens the ticket");
}

pub async fn an_accounts_embed_look_is_kept_replaced_and_removed(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    store
        .create_account(&account("globex"), RECEIVED_AT)
        .await
        .unwrap();
    let sessions = store.viewer_sessions();
    assert_eq!(sessions.embed_look(&account("acme")).await.unwrap(), None);
    let look = EmbedLook {
        frame_ancestors: vec![
            "https://console.acme.com".into(),
            "http://127.0.0.1:8080".into(),
        ],
        product_name: Some("Acme Cloud".into()),
        accent_colour: Some("#1f6feb".into()),
        theme: Some(Theme::Dark),
        logo_url: Some("https://cdn.acme.com/logo.svg".into()),
    };
    sessions
        .set_embed_look(&account("acme"), Some(look.clone()))
        .await
        .unwrap();
    assert_eq!(
        sessions.embed_look(&account("acme")).await.unwrap(),
        Some(look)
    );
    assert_eq!(
        sessions.embed_look(&account("globex")).await.unwrap(),
        None,
        "one account's look is not another's"
    );
    let plain = EmbedLook::default();
    sessions
        .set_embed_look(&account("acme"), Some(plain.clone()))
        .await
        .unwrap();
    assert_eq!(
        sessions.embed_look(&account("acme")).await.unwrap(),
        Some(plain)
    );
    sessions
        .set_embed_look(&account("acme"), None)
        .await
        .unwrap();
    assert_eq!(sessions.embed_look(&account("acme")).await.unwrap(), None);
    assert_eq!(sessions.embed_look(&account("nobody")).await.unwrap(), None);
    let unknown = sessions
        .set_embed_look(&account("nobody"), Some(EmbedLook::default()))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::AccountNotFound(_))),
        "{unknown:?}"
    );
}
