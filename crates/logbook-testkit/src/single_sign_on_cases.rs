//! Conformance cases for single sign-on (issue 15, item 7): each account's provider settings
//! and the one-time sign-in attempts, on every backend alike.

use std::sync::Arc;

use logbook_core::people::{Role, hash_token};
use logbook_core::single_sign_on::{
    ClientSecret, SIGN_IN_ATTEMPT_LIFETIME, SignInAttempt, SingleSignOnSettings,
};
use logbook_core::{AccountId, Store, StoreError};

use crate::builders::RECEIVED_AT;

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account")
}

fn okta() -> SingleSignOnSettings {
    SingleSignOnSettings {
        display_name: "Okta".into(),
        issuer: "https://acme.okta.com".into(),
        client_id: "0oa1client".into(),
        client_secret: ClientSecret::new("client secret"),
        default_role: Role::Viewer,
        invited_only: false,
        password_sign_in_allowed: true,
    }
}

fn attempt(account_name: &str, state: &str) -> SignInAttempt {
    SignInAttempt {
        state_hash: hash_token(state),
        browser_hash: hash_token("browser"),
        account: account(account_name),
        nonce: format!("nonce of {state}"),
        pkce_verifier: format!("verifier of {state}"),
        created_at: RECEIVED_AT,
        expires_at: RECEIVED_AT + SIGN_IN_ATTEMPT_LIFETIME,
    }
}

pub async fn single_sign_on_settings_are_kept_replaced_and_removed_per_account(
    store: Arc<dyn Store>,
) {
    for name in ["acme", "globex"] {
        store
            .create_account(&account(name), RECEIVED_AT)
            .await
            .unwrap();
    }
    let sso = store.single_sign_on();
    assert_eq!(
        sso.single_sign_on_settings(&account("acme")).await.unwrap(),
        None
    );
    sso.set_single_sign_on_settings(&account("acme"), Some(&okta()), RECEIVED_AT)
        .await
        .unwrap();
    assert_eq!(
        sso.single_sign_on_settings(&account("acme")).await.unwrap(),
        Some(okta())
    );
    assert_eq!(
        sso.single_sign_on_settings(&account("globex"))
            .await
            .unwrap(),
        None,
        "one account's settings are not another's"
    );
    let entra = SingleSignOnSettings {
        display_name: "Microsoft".into(),
        issuer: "https://login.microsoftonline.com/tenant/v2.0".into(),
        default_role: Role::Member,
        invited_only: true,
        password_sign_in_allowed: false,
        ..okta()
    };
    sso.set_single_sign_on_settings(&account("globex"), Some(&entra), RECEIVED_AT)
        .await
        .unwrap();
    sso.set_single_sign_on_settings(&account("acme"), Some(&entra), RECEIVED_AT)
        .await
        .unwrap();
    assert_eq!(
        sso.list_single_sign_on_settings().await.unwrap(),
        vec![
            (account("acme"), entra.clone()),
            (account("globex"), entra.clone())
        ]
    );
    sso.set_single_sign_on_settings(&account("acme"), None, RECEIVED_AT)
        .await
        .unwrap();
    assert_eq!(
        sso.single_sign_on_settings(&account("acme")).await.unwrap(),
        None
    );
    let unknown = sso
        .set_single_sign_on_settings(&account("nobody"), Some(&okta()), RECEIVED_AT)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::AccountNotFound(_))),
        "{unknown:?}"
    );
}

pub async fn a_sign_in_attempt_is_taken_once_and_never_after_it_expires(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let sso = store.single_sign_on();
    sso.create_sign_in_attempt(attempt("acme", "state one"))
        .await
        .unwrap();
    sso.create_sign_in_attempt(attempt("acme", "state two"))
        .await
        .unwrap();
    let now = RECEIVED_AT + time::Duration::seconds(30);
    assert_eq!(
        sso.take_sign_in_attempt(&hash_token("state one"), now)
            .await
            .unwrap(),
        Some(attempt("acme", "state one"))
    );
    assert_eq!(
        sso.take_sign_in_attempt(&hash_token("state one"), now)
            .await
            .unwrap(),
        None,
        "a state works once"
    );
    assert_eq!(
        sso.take_sign_in_attempt(&hash_token("never sent"), now)
            .await
            .unwrap(),
        None
    );
    let late = RECEIVED_AT + SIGN_IN_ATTEMPT_LIFETIME;
    assert_eq!(
        sso.take_sign_in_attempt(&hash_token("state two"), late)
            .await
            .unwrap(),
        None,
        "an attempt is refused once its lifetime is over"
    );
    let unknown = sso
        .create_sign_in_attempt(attempt("nobody", "state three"))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::AccountNotFound(_))),
        "{unknown:?}"
    );
}

pub async fn of_two_answers_naming_one_state_only_one_takes_it(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    store
        .single_sign_on()
        .create_sign_in_attempt(attempt("acme", "raced"))
        .await
        .unwrap();
    let now = RECEIVED_AT + time::Duration::seconds(1);
    let takers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .single_sign_on()
                .take_sign_in_attempt(&hash_token("raced"), now)
                .await
                .unwrap()
        })
    });
    let mut taken = 0;
    for taker in takers {
        if taker.await.unwrap().is_some() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
}
