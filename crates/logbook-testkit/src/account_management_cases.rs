//! Conformance cases for account management (issue 16): each account's display name and ingest
//! switch, pages of accounts by name, and keys with the `admin` scope, on every backend alike.

use std::sync::Arc;

use logbook_core::api_key::{KeyOwner, Scopes};
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Store, StoreError};

use crate::builders::RECEIVED_AT;

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account")
}

pub async fn account_settings_are_kept_changed_and_paged_by_name(store: Arc<dyn Store>) {
    for name in ["globex", "acme"] {
        store
            .create_account(&account(name), RECEIVED_AT)
            .await
            .unwrap();
    }
    let initech = store
        .accounts()
        .create_account_with_display_name(&account("initech"), Some("Initech"), RECEIVED_AT)
        .await
        .unwrap();
    assert_eq!(initech.display_name.as_deref(), Some("Initech"));
    assert!(initech.ingest_enabled);
    let again = store
        .accounts()
        .create_account_with_display_name(&account("initech"), Some("Other"), RECEIVED_AT)
        .await;
    assert!(
        matches!(again, Err(StoreError::AccountAlreadyExists(_))),
        "{again:?}"
    );
    assert!(
        store
            .list_accounts()
            .await
            .unwrap()
            .iter()
            .any(|record| record.account.as_str() == "initech"),
        "an account created with its display name is an account like any other"
    );
    let acme = store
        .accounts()
        .account_settings(&account("acme"))
        .await
        .unwrap()
        .expect("a created account has settings");
    assert_eq!(acme.display_name, None, "no display name until one is set");
    assert!(acme.ingest_enabled, "a new account takes events");
    assert_eq!(acme.created_at, RECEIVED_AT);
    assert_eq!(
        store
            .accounts()
            .account_settings(&account("nobody"))
            .await
            .unwrap(),
        None
    );

    let named = store
        .accounts()
        .set_display_name(&account("acme"), Some("Acme Corp — Ünïcødé"))
        .await
        .unwrap();
    assert_eq!(named.display_name.as_deref(), Some("Acme Corp — Ünïcødé"));
    let disabled = store
        .accounts()
        .set_ingest_enabled(&account("initech"), false)
        .await
        .unwrap();
    assert!(!disabled.ingest_enabled);
    assert_eq!(
        store.accounts().ingest_disabled_accounts().await.unwrap(),
        vec![account("initech")]
    );

    let first_page = store
        .accounts()
        .account_settings_page(None, 2)
        .await
        .unwrap();
    let names: Vec<&str> = first_page
        .iter()
        .map(|settings| settings.account.as_str())
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    assert_eq!(first_page[0], named, "a page shows what was set");
    let second_page = store
        .accounts()
        .account_settings_page(Some(&account("globex")), 2)
        .await
        .unwrap();
    assert_eq!(second_page, vec![disabled.clone()]);
    assert_eq!(disabled.display_name.as_deref(), Some("Initech"));
    assert!(
        store
            .accounts()
            .account_settings_page(Some(&account("initech")), 2)
            .await
            .unwrap()
            .is_empty()
    );

    let cleared = store
        .accounts()
        .set_display_name(&account("acme"), None)
        .await
        .unwrap();
    assert_eq!(cleared.display_name, None);
    let enabled = store
        .accounts()
        .set_ingest_enabled(&account("initech"), true)
        .await
        .unwrap();
    assert!(enabled.ingest_enabled);
    assert!(
        store
            .accounts()
            .ingest_disabled_accounts()
            .await
            .unwrap()
            .is_empty()
    );
    for refused in [
        store
            .accounts()
            .set_display_name(&account("nobody"), Some("x"))
            .await,
        store
            .accounts()
            .set_ingest_enabled(&account("nobody"), false)
            .await,
    ] {
        assert!(
            matches!(refused, Err(StoreError::AccountNotFound(ref name)) if name.as_str() == "nobody"),
            "{refused:?}"
        );
    }
}

pub async fn admin_keys_keep_their_scope_for_an_account_and_for_the_platform(
    store: Arc<dyn Store>,
) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let admin = Scopes::parse("admin").unwrap();
    for (key_id, hash_byte, owner) in [
        ("key_account_admin", 7, KeyOwner::Account(account("acme"))),
        ("key_platform_admin", 8, KeyOwner::Platform),
    ] {
        let created = store
            .create_api_key(NewApiKey {
                key_id: key_id.into(),
                key_hash: [hash_byte; 32],
                owner: owner.clone(),
                scopes: admin,
                display_prefix: "lbk_admin0".into(),
                description: None,
                created_at: RECEIVED_AT,
            })
            .await
            .unwrap();
        assert_eq!(created.scopes, admin);
        let found = store
            .find_api_key_by_hash(&[hash_byte; 32])
            .await
            .unwrap()
            .expect("found by its hash");
        assert_eq!(found.scopes, admin, "{key_id}");
        assert_eq!(found.owner, owner);
        assert!(!found.scopes.ingest && !found.scopes.read);
    }
}
