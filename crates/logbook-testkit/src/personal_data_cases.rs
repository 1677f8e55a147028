//! Conformance cases for personal data by age and on request (issue 18): settings, aging below a
//! seq, erasure of one person, the legal hold that stops both, and a log that still verifies
//! field by field afterwards, on every backend alike.

use std::sync::Arc;

use logbook_core::checkpoint::CheckpointSigner;
use logbook_core::event::{Actor, ActorType};
use logbook_core::log_verification::verify_store;
use logbook_core::personal_data::{
    AddressRemoval, PersonalDataBatch, PersonalDataSelection, PersonalFieldRemoval,
};
use logbook_core::retention::{ChangedBy, ErasureOutcome, LegalHold, erase_person};
use logbook_core::{AccountId, Store, StoreError, StoredEvent};
use time::macros::datetime;

use crate::builders::EventBuilder;

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account")
}

/// Who the cases say asked for an erasure.
fn data_protection_officer() -> ChangedBy {
    ChangedBy {
        actor: Actor {
            id: "dpo@acme.example".into(),
            name: Some("Data protection".into()),
            actor_type: Some(ActorType::User),
        },
        ip: None,
        user_agent: None,
    }
}

/// Eight events of `acme`, alternating alice (from 198.51.100.7 and, from seq 4, 203.0.113.9)
/// and bob (from 2001:db8:1::5), each with a user agent and metadata `{email, plan}`; and one
/// event of `globex` by alice.
async fn append_people_events(store: &Arc<dyn Store>) {
    let mut events = Vec::new();
    for number in 0..8_u32 {
        let (actor, name, ip) = match (number % 2, number >= 4) {
            (0, false) => ("alice", "Alice Liddell", "198.51.100.7"),
            (0, true) => ("alice", "Alice Liddell", "203.0.113.9"),
            _ => ("bob", "Bob Builder", "2001:db8:1::5"),
        };
        events.push(
            EventBuilder::new("acme")
                .message(&format!("Rebooted server web-{number}"))
                .actor(actor)
                .actor_name(name)
                .ip(ip)
                .user_agent("Mozilla/5.0 (X11; Linux x86_64)")
                .metadata(
                    serde_json::json!({"email": format!("{actor}@acme.example"), "plan": "pro"}),
                )
                .build(),
        );
    }
    store.append_events(events).await.expect("stored");
    store
        .append_events(vec![
            EventBuilder::new("globex")
                .actor("alice")
                .actor_name("Alice Liddell")
                .ip("198.51.100.7")
                .build(),
        ])
        .await
        .expect("stored");
}

async fn stored_events(store: &Arc<dyn Store>, name: &str) -> Vec<StoredEvent> {
    store
        .events_since(&account(name), 0, 1000)
        .await
        .expect("events")
        .iter()
        .map(|row| row.decode().expect("a stored event decodes"))
        .collect()
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::generate([5; 32], "logbook.test").expect("a key")
}

/// Removes by `selection` in batches of 3 until done; returns the events changed.
async fn remove_all(
    store: &Arc<dyn Store>,
    selection: PersonalDataSelection,
    removal: PersonalFieldRemoval,
) -> Result<u64, StoreError> {
    let (mut from_seq, mut changed) = (0, 0);
    loop {
        let step = store
            .retention()
            .remove_personal_data(
                &account("acme"),
                PersonalDataBatch {
                    selection: selection.clone(),
                    removal: removal.clone(),
                    from_seq,
                    max_events: 3,
                },
            )
            .await?;
        changed += step.events_changed;
        match step.next_seq {
            Some(next) => from_seq = next,
            None => return Ok(changed),
        }
    }
}

pub async fn personal_data_settings_are_kept_per_account(store: Arc<dyn Store>) {
    let now = datetime!(2026-12-06 10:00 UTC);
    for name in ["acme", "globex"] {
        store.create_account(&account(name), now).await.unwrap();
    }
    let retention = store.retention();
    retention
        .set_personal_data_policy(&account("acme"), Some(30), Some(true), now)
        .await
        .unwrap();
    retention
        .set_personal_metadata_fields(&account("acme"), vec!["email".into(), "phone".into()], now)
        .await
        .unwrap();
    let acme = retention.account_retention(&account("acme")).await.unwrap();
    assert_eq!(acme.personal_data_days, Some(30));
    assert_eq!(acme.keep_network, Some(true));
    assert_eq!(acme.personal_metadata_fields, vec!["email", "phone"]);
    assert_eq!(acme.personal_aged_below_seq, 0);
    assert_eq!(
        acme.retention_days, None,
        "the event period is its own setting"
    );
    assert_eq!(
        retention
            .account_retention(&account("globex"))
            .await
            .unwrap(),
        Default::default(),
        "settings never cross accounts"
    );
    retention
        .set_personal_data_policy(&account("acme"), None, None, now)
        .await
        .unwrap();
    retention
        .set_personal_metadata_fields(&account("acme"), Vec::new(), now)
        .await
        .unwrap();
    assert_eq!(
        retention.account_retention(&account("acme")).await.unwrap(),
        Default::default()
    );
    assert!(matches!(
        retention
            .set_personal_data_policy(&account("missing"), Some(1), None, now)
            .await,
        Err(StoreError::AccountNotFound(_))
    ));
}

pub async fn aging_removes_personal_fields_below_a_seq_and_every_event_still_verifies(
    store: Arc<dyn Store>,
) {
    append_people_events(&store).await;
    let before = stored_events(&store, "acme").await;
    let changed = remove_all(
        &store,
        PersonalDataSelection::AgedBelow { below_seq: 6 },
        PersonalFieldRemoval {
            address: AddressRemoval::KeepNetwork,
            metadata_keys: vec!["email".into()],
        },
    )
    .await
    .unwrap();
    assert_eq!(changed, 6);
    let after = stored_events(&store, "acme").await;
    for (old, new) in before.iter().zip(&after) {
        if new.seq < 6 {
            assert_eq!(new.ip, None, "seq {}", new.seq);
            assert_eq!(
                new.location, None,
                "where the address was goes with it, seq {}",
                new.seq
            );
            assert_eq!(new.user_agent, None);
            assert_eq!(new.actor.as_ref().unwrap().name, None);
            assert_eq!(
                new.actor.as_ref().unwrap().id,
                old.actor.as_ref().unwrap().id
            );
            assert_eq!(new.message, old.message, "the event itself stays");
            assert_eq!(
                new.metadata.as_ref().unwrap()["email"],
                serde_json::Value::Null
            );
            assert_eq!(new.metadata.as_ref().unwrap()["plan"], "pro");
            assert_eq!(
                new.removed,
                vec!["actor.name", "ip", "metadata.email", "user_agent"]
            );
            let network = new.ip_network.as_deref().expect("the network is kept");
            assert!(
                network == "198.51.100.0/24"
                    || network == "203.0.113.0/24"
                    || network == "2001:db8:1::/48",
                "{network}"
            );
        } else {
            assert_eq!(new, old, "events from seq 6 keep everything");
        }
    }
    // The address is gone from the index as well as from the body.
    let by_ip = crate::cases::search(
        &store,
        "acme",
        crate::query(vec![crate::clause(crate::cases::ip_networks(
            "198.51.100.7",
        ))]),
    )
    .await;
    assert!(by_ip.is_empty(), "{by_ip:?}");
    let aged_by_place = crate::cases::search(
        &store,
        "acme",
        crate::query(vec![crate::clause(
            logbook_core::query::Condition::Country(vec![
                logbook_core::location::CountryCode::parse("SG").expect("a country code"),
            ]),
        )]),
    )
    .await;
    assert!(
        aged_by_place.iter().all(|row| row.seq >= 6),
        "an aged event is no longer found by its address's country: {aged_by_place:?}"
    );
    let retention = store
        .retention()
        .account_retention(&account("acme"))
        .await
        .unwrap();
    assert_eq!(retention.personal_aged_below_seq, 6);
    // alice's first address only appears in aged events: her history forgets it; bob's address
    // is still held by seq 7.
    let alice = store
        .unfamiliar_ips()
        .actor_addresses(&account("acme"), "alice", 10)
        .await
        .unwrap();
    assert_eq!(
        alice
            .iter()
            .map(|address| address.ip.to_string())
            .collect::<Vec<_>>(),
        vec!["203.0.113.9"]
    );
    let bob = store
        .unfamiliar_ips()
        .actor_addresses(&account("acme"), "bob", 10)
        .await
        .unwrap();
    assert_eq!(bob.len(), 1);
    let globex = stored_events(&store, "globex").await;
    assert!(
        globex[0].ip.is_some() && globex[0].removed.is_empty(),
        "other accounts keep theirs"
    );

    let verified = verify_store(store.as_ref(), &signer().verifier())
        .await
        .unwrap();
    assert_eq!(verified.events, 9);
    assert_eq!(verified.events_with_removed_personal_data, 6);
    assert_eq!(verified.erased_events_not_verifiable, 0);
    // Aging again changes nothing.
    let again = remove_all(
        &store,
        PersonalDataSelection::AgedBelow { below_seq: 6 },
        PersonalFieldRemoval {
            address: AddressRemoval::KeepNetwork,
            metadata_keys: vec!["email".into()],
        },
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
}

pub async fn erasure_removes_one_persons_personal_data_and_is_recorded(store: Arc<dyn Store>) {
    append_people_events(&store).await;
    store
        .retention()
        .set_personal_metadata_fields(
            &account("acme"),
            vec!["email".into()],
            datetime!(2026-12-06 10:00 UTC),
        )
        .await
        .unwrap();
    let before = stored_events(&store, "acme").await;
    let outcome = erase_person(
        store.as_ref(),
        &account("acme"),
        "alice",
        "erasure request 113",
        &data_protection_officer(),
        datetime!(2026-12-06 11:00 UTC),
        "0190a5b2-0000-7000-8000-0000000000e1".to_owned().into(),
        3,
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        ErasureOutcome::Erased {
            events_changed: 4,
            recorded: true
        }
    );
    let after = stored_events(&store, "acme").await;
    for (old, new) in before.iter().zip(&after) {
        if old.actor.as_ref().unwrap().id == "alice" {
            assert_eq!((new.ip, new.user_agent.as_deref()), (None, None));
            assert_eq!(new.ip_network, None, "erasure takes the network too");
            assert_eq!(new.actor.as_ref().unwrap().name, None);
            assert_eq!(
                new.metadata.as_ref().unwrap()["email"],
                serde_json::Value::Null
            );
            assert_eq!(new.metadata.as_ref().unwrap()["plan"], "pro");
        } else {
            assert_eq!(new, old, "bob's events keep everything");
        }
    }
    let erasure = after.last().expect("the erasure event");
    assert_eq!(erasure.action, "logbook.personal_data.erase");
    assert_eq!(erasure.targets[0].id, "alice");
    assert_eq!(erasure.actor.as_ref().unwrap().id, "dpo@acme.example");
    assert_eq!(erasure.metadata.as_ref().unwrap()["events_changed"], 4);
    assert_eq!(
        erasure.metadata.as_ref().unwrap()["reason"],
        "erasure request 113"
    );
    assert!(
        store
            .unfamiliar_ips()
            .actor_addresses(&account("acme"), "alice", 10)
            .await
            .unwrap()
            .is_empty(),
        "her new-IP history is forgotten"
    );
    assert_eq!(
        stored_events(&store, "globex").await[0]
            .ip
            .map(|ip| ip.to_string())
            .as_deref(),
        Some("198.51.100.7"),
        "an erasure in one account leaves the same person in another alone"
    );
    let verified = verify_store(store.as_ref(), &signer().verifier())
        .await
        .unwrap();
    assert_eq!(verified.events_with_removed_personal_data, 4);

    // An unknown person changes nothing and writes nothing.
    let next_seq = store.next_seq(&account("acme")).await.unwrap();
    let unknown = erase_person(
        store.as_ref(),
        &account("acme"),
        "mallory",
        "a request",
        &data_protection_officer(),
        datetime!(2026-12-06 11:00 UTC),
        "0190a5b2-0000-7000-8000-0000000000e2".to_owned().into(),
        3,
    )
    .await
    .unwrap();
    assert_eq!(unknown, ErasureOutcome::UnknownActor);
    assert_eq!(store.next_seq(&account("acme")).await.unwrap(), next_seq);
}

pub async fn a_held_account_is_never_aged_or_erased(store: Arc<dyn Store>) {
    append_people_events(&store).await;
    let now = datetime!(2026-12-06 10:00 UTC);
    store
        .retention()
        .set_legal_hold(
            &account("acme"),
            Some(LegalHold {
                since: now,
                set_by: "counsel@acme.example".into(),
                reason: "case 42".into(),
            }),
            now,
        )
        .await
        .unwrap();
    let before = stored_events(&store, "acme").await;
    let aged = remove_all(
        &store,
        PersonalDataSelection::AgedBelow { below_seq: 8 },
        PersonalFieldRemoval {
            address: AddressRemoval::Remove,
            metadata_keys: Vec::new(),
        },
    )
    .await;
    assert!(matches!(aged, Err(StoreError::LegalHold(_))), "{aged:?}");
    let erased = erase_person(
        store.as_ref(),
        &account("acme"),
        "alice",
        "a request",
        &data_protection_officer(),
        now,
        "0190a5b2-0000-7000-8000-0000000000e3".to_owned().into(),
        3,
    )
    .await;
    assert!(
        matches!(erased, Err(StoreError::LegalHold(_))),
        "{erased:?}"
    );
    assert_eq!(stored_events(&store, "acme").await, before);
}
