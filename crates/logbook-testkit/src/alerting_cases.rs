//! Conformance cases for `AlertingStore` (rules, destinations, cursors and the delivery outbox),
//! re-exported from `cases` so `store_conformance_tests!` runs them on every backend.

use std::sync::Arc;
use std::time::Duration;

use logbook_core::alerting::{
    DeliveryCursor, DeliveryReason, DestinationKind, NewAlertRule, NewDelivery, NewDestination,
    SigningSecret, Threshold, ThresholdWindow, delivery_id,
};
use logbook_core::ids::DestinationId;
use logbook_core::{AccountId, Store, StoreError};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-05-01 12:00 UTC);

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account name")
}

async fn account_with_destination(
    store: &Arc<dyn Store>,
    account_name: &str,
    destination_id: &str,
    start_seq: u64,
) {
    let _ = store.create_account(&account(account_name), NOW).await;
    store
        .alerting()
        .create_destination(NewDestination {
            destination_id: destination_id.to_owned().into(),
            account: account(account_name),
            name: format!("hook of {account_name}"),
            kind: DestinationKind::webhook("https://hooks.example.com/in").unwrap(),
            secret: SigningSecret(format!("whsec_{destination_id}")),
            streams_whole_log: false,
            start_seq,
            created_at: NOW,
        })
        .await
        .expect("destination is created");
}

fn delivery(account_name: &str, destination_id: &str, seq: u64) -> NewDelivery {
    NewDelivery {
        delivery_id: delivery_id(&destination_id.into(), Some(&"rul_1".into()), seq),
        destination_id: destination_id.to_owned().into(),
        account: account(account_name),
        event_seq: seq,
        event_json: format!(r#"{{"seq":{seq},"action":"user.login"}}"#),
        reason: DeliveryReason::Rule {
            rule_id: "rul_1".into(),
            rule_name: "logins".into(),
            query_text: "action:user.login".into(),
            threshold: Some(Threshold {
                count: 5,
                window: Duration::from_secs(600),
            }),
            matched_count: Some(6),
        },
        created_at: NOW,
    }
}

pub async fn destinations_and_rules_are_kept_per_account_and_never_cross_accounts(
    store: Arc<dyn Store>,
) {
    account_with_destination(&store, "acme", "dst_acme", 0).await;
    account_with_destination(&store, "other", "dst_other", 0).await;
    let alerting = store.alerting();

    let destinations = alerting.list_destinations(&account("acme")).await.unwrap();
    assert_eq!(destinations.len(), 1);
    assert_eq!(destinations[0].destination_id, "dst_acme");
    assert_eq!(destinations[0].secret.0, "whsec_dst_acme");
    assert_eq!(
        destinations[0].kind,
        DestinationKind::webhook("https://hooks.example.com/in").unwrap()
    );
    assert_eq!(
        (
            destinations[0].pending_count,
            destinations[0].dead_letter_count
        ),
        (0, 0)
    );
    assert_eq!(alerting.list_all_destinations().await.unwrap().len(), 2);

    let rule = alerting
        .create_rule(NewAlertRule {
            rule_id: "rul_acme".into(),
            account: account("acme"),
            name: "new-IP logins".into(),
            query_text: "is:new-ip action:user.login".into(),
            threshold: Some(Threshold::new(5, Duration::from_secs(600)).unwrap()),
            destination_ids: vec!["dst_acme".into()],
            created_at: NOW,
        })
        .await
        .unwrap();
    assert!(rule.enabled);
    assert_eq!(rule.destination_ids, vec![DestinationId::from("dst_acme")]);
    assert_eq!(
        alerting.list_rules(&account("acme")).await.unwrap(),
        vec![rule.clone()]
    );
    assert!(
        alerting
            .list_rules(&account("other"))
            .await
            .unwrap()
            .is_empty()
    );

    // A rule may not name another account's destination; nothing of it is stored.
    let refused = alerting
        .create_rule(NewAlertRule {
            rule_id: "rul_sneaky".into(),
            account: account("acme"),
            name: "sneaky".into(),
            query_text: "action:x".into(),
            threshold: None,
            destination_ids: vec!["dst_other".into()],
            created_at: NOW,
        })
        .await;
    assert!(matches!(refused, Err(StoreError::DestinationNotFound(id)) if id == "dst_other"));
    assert_eq!(
        alerting.list_rules(&account("acme")).await.unwrap().len(),
        1
    );

    // Another account can neither change nor delete them.
    assert!(
        !alerting
            .set_rule_enabled(&account("other"), &"rul_acme".into(), false)
            .await
            .unwrap()
    );
    assert!(
        !alerting
            .delete_rule(&account("other"), &"rul_acme".into())
            .await
            .unwrap()
    );
    assert!(
        !alerting
            .delete_destination(&account("other"), &"dst_acme".into())
            .await
            .unwrap()
    );

    assert!(
        alerting
            .set_rule_enabled(&account("acme"), &"rul_acme".into(), false)
            .await
            .unwrap()
    );
    assert!(!alerting.list_rules(&account("acme")).await.unwrap()[0].enabled);

    // Deleting the destination takes it out of the rule.
    assert!(
        alerting
            .delete_destination(&account("acme"), &"dst_acme".into())
            .await
            .unwrap()
    );
    assert!(
        alerting
            .list_destinations(&account("acme"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        alerting.list_rules(&account("acme")).await.unwrap()[0]
            .destination_ids
            .is_empty()
    );
    assert!(
        alerting
            .delete_rule(&account("acme"), &"rul_acme".into())
            .await
            .unwrap()
    );
    assert!(
        alerting
            .list_rules(&account("acme"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        alerting
            .list_destinations(&account("other"))
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn a_cursor_moves_with_its_deliveries_only_from_the_position_it_was_read_at(
    store: Arc<dyn Store>,
) {
    account_with_destination(&store, "acme", "dst_acme", 4).await;
    let alerting = store.alerting();
    let start = alerting
        .delivery_cursor(&"dst_acme".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(start, DeliveryCursor::starting_at(4));
    assert_eq!(
        alerting
            .delivery_cursor(&"dst_missing".into())
            .await
            .unwrap(),
        None
    );

    let mut advanced = DeliveryCursor::starting_at(6);
    advanced.threshold_windows.insert(
        "rul_1".into(),
        ThresholdWindow {
            recent_micros: [1, 2, 3].into_iter().collect(),
            quiet_until_micros: Some(9),
        },
    );
    let first = [
        delivery("acme", "dst_acme", 4),
        delivery("acme", "dst_acme", 5),
    ];
    assert!(
        alerting
            .advance_cursor(&"dst_acme".into(), 4, &advanced, &first)
            .await
            .unwrap()
    );
    assert_eq!(
        alerting
            .delivery_cursor(&"dst_acme".into())
            .await
            .unwrap()
            .unwrap(),
        advanced
    );

    // A second node that read the old position writes nothing, not even its deliveries.
    let stale = [delivery("acme", "dst_acme", 99)];
    assert!(
        !alerting
            .advance_cursor(
                &"dst_acme".into(),
                4,
                &DeliveryCursor::starting_at(100),
                &stale
            )
            .await
            .unwrap()
    );
    assert_eq!(
        alerting
            .delivery_cursor(&"dst_acme".into())
            .await
            .unwrap()
            .unwrap()
            .next_seq,
        6
    );
    let destination = &alerting.list_destinations(&account("acme")).await.unwrap()[0];
    assert_eq!(destination.pending_count, 2);

    // The same delivery id queued again is kept once.
    assert!(
        alerting
            .advance_cursor(
                &"dst_acme".into(),
                6,
                &DeliveryCursor::starting_at(7),
                &first[1..]
            )
            .await
            .unwrap()
    );
    let claimed = alerting
        .claim_due_deliveries(&"dst_acme".into(), NOW, Duration::from_secs(30), 10)
        .await
        .unwrap();
    let mut claimed_seqs: Vec<u64> = claimed
        .iter()
        .map(|record| record.delivery.event_seq)
        .collect();
    claimed_seqs.sort_unstable();
    assert_eq!(claimed_seqs, vec![4, 5]);
    let round_tripped = claimed
        .iter()
        .find(|record| record.delivery.event_seq == 4)
        .unwrap();
    assert_eq!(round_tripped.delivery, first[0]);
    assert_eq!(round_tripped.attempts, 0);
}

pub async fn a_due_delivery_is_claimed_by_one_caller_until_its_lease_ends(store: Arc<dyn Store>) {
    account_with_destination(&store, "acme", "dst_acme", 0).await;
    let alerting = store.alerting();
    let deliveries: Vec<_> = (0..20)
        .map(|seq| delivery("acme", "dst_acme", seq))
        .collect();
    alerting
        .advance_cursor(
            &"dst_acme".into(),
            0,
            &DeliveryCursor::starting_at(20),
            &deliveries,
        )
        .await
        .unwrap();

    let lease = Duration::from_secs(30);
    let claims = futures::future::join_all((0..4).map(|_| {
        let store = store.clone();
        async move {
            store
                .alerting()
                .claim_due_deliveries(&"dst_acme".into(), NOW, lease, 7)
                .await
                .unwrap()
        }
    }))
    .await;
    let mut claimed_ids: Vec<String> = claims
        .iter()
        .flatten()
        .map(|record| record.delivery.delivery_id.clone())
        .collect();
    let claimed_count = claimed_ids.len();
    claimed_ids.sort();
    claimed_ids.dedup();
    assert_eq!(
        claimed_ids.len(),
        claimed_count,
        "no delivery was claimed twice"
    );
    assert_eq!(claimed_count, 20);

    // Within the lease nobody else gets them; after it, they are due again.
    assert!(
        alerting
            .claim_due_deliveries(
                &"dst_acme".into(),
                NOW + Duration::from_secs(29),
                lease,
                100
            )
            .await
            .unwrap()
            .is_empty()
    );
    alerting
        .mark_delivered(
            std::slice::from_ref(&deliveries[0].delivery_id),
            NOW + Duration::from_secs(1),
        )
        .await
        .unwrap();
    let reclaimed = alerting
        .claim_due_deliveries(
            &"dst_acme".into(),
            NOW + Duration::from_secs(31),
            lease,
            100,
        )
        .await
        .unwrap();
    assert_eq!(
        reclaimed.len(),
        19,
        "a delivered one is never claimed again"
    );
    let destination = &alerting.list_destinations(&account("acme")).await.unwrap()[0];
    assert_eq!(
        destination.last_success_at,
        Some(NOW + Duration::from_secs(1))
    );
    assert_eq!(destination.pending_count, 19);
}

pub async fn failed_deliveries_wait_for_their_retry_then_go_dead_and_can_be_retried(
    store: Arc<dyn Store>,
) {
    account_with_destination(&store, "acme", "dst_acme", 0).await;
    account_with_destination(&store, "other", "dst_other", 0).await;
    let alerting = store.alerting();
    let queued = delivery("acme", "dst_acme", 0);
    alerting
        .advance_cursor(
            &"dst_acme".into(),
            0,
            &DeliveryCursor::starting_at(1),
            std::slice::from_ref(&queued),
        )
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    assert_eq!(
        alerting
            .claim_due_deliveries(&"dst_acme".into(), NOW, lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let retry_at = NOW + Duration::from_secs(5);
    alerting
        .mark_failed(
            &queued.delivery_id,
            NOW,
            "HTTP 503 <b>busy</b>",
            Some(retry_at),
        )
        .await
        .unwrap();
    assert!(
        alerting
            .claim_due_deliveries(&"dst_acme".into(), NOW + Duration::from_secs(4), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before its retry time, even though the lease was released"
    );
    let again = alerting
        .claim_due_deliveries(&"dst_acme".into(), retry_at, lease, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 503 <b>busy</b>"));

    alerting
        .mark_failed(&queued.delivery_id, retry_at, "connection refused", None)
        .await
        .unwrap();
    let destination = &alerting.list_destinations(&account("acme")).await.unwrap()[0];
    assert_eq!(
        destination.last_error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(destination.last_error_at, Some(retry_at));
    assert_eq!(
        (destination.pending_count, destination.dead_letter_count),
        (0, 1)
    );
    assert!(
        alerting
            .claim_due_deliveries(
                &"dst_acme".into(),
                retry_at + Duration::from_secs(3600),
                lease,
                10
            )
            .await
            .unwrap()
            .is_empty(),
        "a dead delivery is not retried on its own"
    );
    let dead = alerting
        .list_dead_letters(&account("acme"), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].dead_at, Some(retry_at));
    assert!(
        alerting
            .list_dead_letters(&account("other"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Only its own account may put it back.
    assert!(
        !alerting
            .retry_dead_letter(&account("other"), &queued.delivery_id, retry_at)
            .await
            .unwrap()
    );
    let later = retry_at + Duration::from_secs(60);
    assert!(
        alerting
            .retry_dead_letter(&account("acme"), &queued.delivery_id, later)
            .await
            .unwrap()
    );
    let revived = alerting
        .claim_due_deliveries(&"dst_acme".into(), later, lease, 10)
        .await
        .unwrap();
    assert_eq!(revived.len(), 1);
    assert_eq!(revived[0].attempts, 0);

    alerting
        .record_test_result(
            &account("other"),
            &"dst_other".into(),
            later,
            Some("timed out"),
        )
        .await
        .unwrap();
    let other = &alerting.list_destinations(&account("other")).await.unwrap()[0];
    assert_eq!(other.last_error.as_deref(), Some("timed out"));
    // A test result recorded through the wrong account changes nothing.
    alerting
        .record_test_result(&account("acme"), &"dst_other".into(), later, None)
        .await
        .unwrap();
    let other = &alerting.list_destinations(&account("other")).await.unwrap()[0];
    assert_eq!(other.last_success_at, None);
}

pub async fn a_destinations_lane_claims_its_own_deliveries_lowest_seq_first_and_gets_released_ones_back(
    store: Arc<dyn Store>,
) {
    account_with_destination(&store, "acme", "dst_acme", 0).await;
    account_with_destination(&store, "acme", "dst_second", 0).await;
    let alerting = store.alerting();
    // Queued out of seq order, as rules and retries can leave them.
    let queued: Vec<NewDelivery> = [7, 3, 9, 1, 5]
        .into_iter()
        .map(|seq| delivery("acme", "dst_acme", seq))
        .collect();
    alerting
        .advance_cursor(
            &"dst_acme".into(),
            0,
            &DeliveryCursor::starting_at(10),
            &queued,
        )
        .await
        .unwrap();
    let mut second = delivery("acme", "dst_second", 0);
    second.created_at = NOW + Duration::from_secs(5);
    alerting
        .advance_cursor(
            &"dst_second".into(),
            0,
            &DeliveryCursor::starting_at(1),
            std::slice::from_ref(&second),
        )
        .await
        .unwrap();
    let destinations = alerting.list_destinations(&account("acme")).await.unwrap();
    let oldest: Vec<_> = destinations
        .iter()
        .map(|destination| (destination.pending_count, destination.oldest_pending_at))
        .collect();
    assert_eq!(
        oldest,
        vec![(5, Some(NOW)), (1, Some(NOW + Duration::from_secs(5)))]
    );

    let lease = Duration::from_secs(30);
    let claimed = alerting
        .claim_due_deliveries(&"dst_acme".into(), NOW, lease, 3)
        .await
        .unwrap();
    let seqs: Vec<u64> = claimed
        .iter()
        .map(|record| record.delivery.event_seq)
        .collect();
    assert_eq!(seqs, vec![1, 3, 5], "lowest seq first, and only its own");
    let rest = alerting
        .claim_due_deliveries(&"dst_acme".into(), NOW, lease, 10)
        .await
        .unwrap();
    let seqs: Vec<u64> = rest
        .iter()
        .map(|record| record.delivery.event_seq)
        .collect();
    assert_eq!(seqs, vec![7, 9]);

    // The collector could not be reached: the claims go back with no attempt counted.
    let ids: Vec<String> = claimed
        .iter()
        .map(|record| record.delivery.delivery_id.clone())
        .collect();
    alerting
        .release_deliveries(
            &"dst_acme".into(),
            &ids,
            NOW + Duration::from_secs(1),
            Some("connection refused"),
        )
        .await
        .unwrap();
    let again = alerting
        .claim_due_deliveries(&"dst_acme".into(), NOW + Duration::from_secs(1), lease, 10)
        .await
        .unwrap();
    let seqs: Vec<(u64, u32)> = again
        .iter()
        .map(|record| (record.delivery.event_seq, record.attempts))
        .collect();
    assert_eq!(seqs, vec![(1, 0), (3, 0), (5, 0)]);
    // Releasing through another destination's id changes nothing.
    alerting
        .release_deliveries(
            &"dst_second".into(),
            &ids,
            NOW + Duration::from_secs(2),
            None,
        )
        .await
        .unwrap();
    assert!(
        alerting
            .claim_due_deliveries(&"dst_acme".into(), NOW + Duration::from_secs(2), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut all_ids = ids.clone();
    all_ids.extend(
        rest.iter()
            .map(|record| record.delivery.delivery_id.clone()),
    );
    alerting
        .mark_delivered(&all_ids, NOW + Duration::from_secs(3))
        .await
        .unwrap();
    let destination = &alerting.list_destinations(&account("acme")).await.unwrap()[0];
    assert_eq!(destination.pending_count, 0);
    assert_eq!(destination.oldest_pending_at, None);
    assert_eq!(
        destination.last_success_at,
        Some(NOW + Duration::from_secs(3))
    );
    assert_eq!(
        destination.last_error.as_deref(),
        Some("connection refused")
    );
    assert!(
        alerting
            .claim_due_deliveries(
                &"dst_acme".into(),
                NOW + Duration::from_secs(3600),
                lease,
                10
            )
            .await
            .unwrap()
            .is_empty(),
        "delivered ones are never claimed again"
    );
}

pub async fn tls_and_relp_destinations_keep_their_kind_address_and_trusted_ca(
    store: Arc<dyn Store>,
) {
    let _ = store.create_account(&account("acme"), NOW).await;
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----";
    let kinds = [
        DestinationKind::syslog_tls("siem.example.com:6514", pem).unwrap(),
        DestinationKind::syslog_tls("[2001:db8::7]:6514", "").unwrap(),
        DestinationKind::relp("siem.example.com:2514").unwrap(),
        DestinationKind::syslog("siem.example.com:514").unwrap(),
    ];
    for (index, kind) in kinds.iter().enumerate() {
        store
            .alerting()
            .create_destination(NewDestination {
                destination_id: format!("dst_{index}").into(),
                account: account("acme"),
                name: format!("collector {index}"),
                kind: kind.clone(),
                secret: SigningSecret(String::new()),
                streams_whole_log: true,
                start_seq: 0,
                created_at: NOW + Duration::from_secs(index as u64),
            })
            .await
            .unwrap();
    }
    let stored: Vec<DestinationKind> = store
        .alerting()
        .list_destinations(&account("acme"))
        .await
        .unwrap()
        .into_iter()
        .map(|destination| destination.kind)
        .collect();
    assert_eq!(stored, kinds);
}
