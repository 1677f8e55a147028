//! Conformance cases of unfamiliar-IP detection and known networks (issue 6): the `new_ip` and
//! `new_network` flags set at ingest, `is:new-network`, `ip:NAME`, and `UnfamiliarIpStore`; and
//! the `new_country` flag with `is:new-country` (issue 19), from the locations the conformance
//! stores' `location_cases::TestIpLocator` gives (203.0.113.0/24 in IN, 198.51.100.0/24 in SG,
//! 2001:db8:1::/48 in DE, 10.0.0.0/8 without a country).

use std::sync::Arc;

use logbook_core::event::{EventRow, NewEvent, Outcome};
use logbook_core::query::{Condition, EventFlag, Query};
use logbook_core::store::AppendOutcome;
use logbook_core::unfamiliar_ip::{KnownNetwork, NetworkName, parse_network_blocks};
use logbook_core::{AccountId, Store};
use time::Duration;

use crate::builders::{EventBuilder, RECEIVED_AT, clause, negated, query};

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account name")
}

fn login(actor: &str, ip: &str, message: &str) -> NewEvent {
    EventBuilder::new("acme")
        .actor(actor)
        .ip(ip)
        .message(message)
        .build()
}

/// The event of `message` as stored (flags included).
async fn stored_event(store: &Arc<dyn Store>, account_name: &str, message: &str) -> EventRow {
    let page = store
        .query_events(
            &account(account_name),
            &logbook_core::store::EventQuery {
                query: Query::default(),
                limit: 1000,
                after: None,
            },
        )
        .await
        .expect("query succeeds");
    page.events
        .into_iter()
        .find(|row| row.decode().expect("decodes").message == message)
        .unwrap_or_else(|| panic!("no event {message:?}"))
}

async fn flags(store: &Arc<dyn Store>, message: &str) -> (bool, bool) {
    let row = stored_event(store, "acme", message).await;
    (row.new_ip, row.new_network)
}

async fn messages_matching(store: &Arc<dyn Store>, query: Query) -> Vec<String> {
    let page = store
        .query_events(
            &account("acme"),
            &logbook_core::store::EventQuery {
                query,
                limit: 1000,
                after: None,
            },
        )
        .await
        .expect("query succeeds");
    let mut messages: Vec<String> = page
        .events
        .iter()
        .map(|row| row.decode().expect("decodes").message)
        .collect();
    messages.sort();
    messages
}

pub async fn an_actors_first_address_is_never_new_and_later_new_addresses_are(
    store: Arc<dyn Store>,
) {
    store
        .append_events(vec![
            EventBuilder::new("acme")
                .actor("alice")
                .message("no ip")
                .build(),
            login("alice", "203.0.113.9", "first"),
            login("alice", "203.0.113.9", "same again"),
        ])
        .await
        .unwrap();
    store
        .append_events(vec![login("alice", "203.0.113.77", "same /24")])
        .await
        .unwrap();
    store
        .append_events(vec![
            login("alice", "198.51.100.4", "new network"),
            login("alice", "2001:db8:1::1", "first ipv6"),
            login("alice", "2001:db8:1:ffff::2", "same /48"),
            login(
                "alice",
                "::ffff:198.51.100.4",
                "mapped form of a known address",
            ),
            EventBuilder::new("acme")
                .ip("192.0.2.1")
                .message("no actor")
                .build(),
            login("bob", "203.0.113.9", "bob's first"),
        ])
        .await
        .unwrap();
    assert_eq!(flags(&store, "no ip").await, (false, false));
    assert_eq!(flags(&store, "first").await, (false, false));
    assert_eq!(flags(&store, "same again").await, (false, false));
    assert_eq!(flags(&store, "same /24").await, (true, false));
    assert_eq!(flags(&store, "new network").await, (true, true));
    assert_eq!(flags(&store, "first ipv6").await, (true, true));
    assert_eq!(flags(&store, "same /48").await, (true, false));
    assert_eq!(
        flags(&store, "mapped form of a known address").await,
        (false, false)
    );
    assert_eq!(flags(&store, "no actor").await, (false, false));
    assert_eq!(flags(&store, "bob's first").await, (false, false));

    // The flags are in the JSON body the API serves, and the query language finds them.
    let json = stored_event(&store, "acme", "new network").await.to_json();
    assert!(
        json.contains(",\"new_ip\":true,\"new_network\":true"),
        "{json}"
    );
    let new_network = query(vec![clause(Condition::Is(vec![EventFlag::NewNetwork]))]);
    assert_eq!(
        messages_matching(&store, new_network).await,
        ["first ipv6", "new network"]
    );
    let new_ip = query(vec![clause(Condition::Is(vec![EventFlag::NewIp]))]);
    assert_eq!(
        messages_matching(&store, new_ip).await,
        ["first ipv6", "new network", "same /24", "same /48"]
    );
    let familiar = query(vec![negated(Condition::Is(vec![EventFlag::NewIp]))]);
    assert_eq!(messages_matching(&store, familiar).await.len(), 6);
}

pub async fn history_is_per_account_and_per_actor(store: Arc<dyn Store>) {
    store
        .append_events(vec![
            login("alice", "203.0.113.9", "acme alice"),
            EventBuilder::new("other")
                .actor("alice")
                .ip("198.51.100.1")
                .message("other alice")
                .build(),
        ])
        .await
        .unwrap();
    store
        .append_events(vec![
            // Known in "other", new in "acme": accounts never share history.
            login("alice", "198.51.100.1", "acme alice from other's address"),
            EventBuilder::new("other")
                .actor("alice")
                .ip("198.51.100.1")
                .message("other alice again")
                .build(),
        ])
        .await
        .unwrap();
    assert_eq!(
        flags(&store, "acme alice from other's address").await,
        (true, true)
    );
    let other = stored_event(&store, "other", "other alice again").await;
    assert!(!other.new_ip);
}

pub async fn a_replay_returns_the_original_and_keeps_its_flags(store: Arc<dyn Store>) {
    store
        .append_events(vec![login("alice", "203.0.113.9", "first")])
        .await
        .unwrap();
    let keyed = EventBuilder::new("acme")
        .actor("alice")
        .ip("198.51.100.4")
        .message("from a new place")
        .key("login-42")
        .build();
    let original = store.append_events(vec![keyed.clone()]).await.unwrap();
    // The replay comes after the address became familiar: it must neither store a second event
    // nor change the original's flags, and an event with the same address later is familiar.
    let mut replay = keyed.clone();
    replay.id = "01900000-0000-7000-8000-ffffffffff01".into();
    let replayed = store
        .append_events(vec![replay, login("alice", "198.51.100.4", "back again")])
        .await
        .unwrap();
    let (AppendOutcome::Stored(original), AppendOutcome::Duplicate(duplicate)) =
        (&original[0], &replayed[0])
    else {
        panic!("expected stored then duplicate, got {original:?} and {replayed:?}");
    };
    assert_eq!(original.seq, duplicate.seq);
    assert_eq!(flags(&store, "from a new place").await, (true, true));
    assert_eq!(flags(&store, "back again").await, (false, false));
}

pub async fn the_same_new_address_twice_in_one_group_is_new_once(store: Arc<dyn Store>) {
    store
        .append_events(vec![login("alice", "203.0.113.9", "first")])
        .await
        .unwrap();
    // Many concurrent appenders share group commits: exactly one event is the new one.
    let mut tasks = Vec::new();
    for number in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append_events(vec![
                    login("alice", "198.51.100.4", &format!("concurrent {number}")),
                    login(
                        "alice",
                        "198.51.100.4",
                        &format!("concurrent {number} again"),
                    ),
                ])
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let new_ip = query(vec![clause(Condition::Is(vec![EventFlag::NewIp]))]);
    assert_eq!(messages_matching(&store, new_ip).await.len(), 1);
    let new_network = query(vec![clause(Condition::Is(vec![EventFlag::NewNetwork]))]);
    assert_eq!(messages_matching(&store, new_network).await.len(), 1);
}

fn failed_login(actor: &str, ip: &str, message: &str) -> NewEvent {
    EventBuilder::new("acme")
        .actor(actor)
        .ip(ip)
        .outcome(Outcome::Failure)
        .message(message)
        .build()
}

pub async fn only_successful_activity_makes_an_address_familiar(store: Arc<dyn Store>) {
    store
        .append_events(vec![
            failed_login("dmitri", "192.0.2.66", "failure before any history"),
            login("dmitri", "203.0.113.9", "first success"),
        ])
        .await
        .unwrap();
    // In one group and in separate groups alike, failures from a new address are flagged each
    // time and never make it familiar, so the success that follows is flagged too.
    store
        .append_events(vec![
            failed_login("dmitri", "192.0.2.66", "first failure"),
            failed_login("dmitri", "192.0.2.66", "second failure"),
        ])
        .await
        .unwrap();
    store
        .append_events(vec![login("dmitri", "192.0.2.66", "intruder's success")])
        .await
        .unwrap();
    store
        .append_events(vec![
            login("dmitri", "192.0.2.66", "success again"),
            failed_login("dmitri", "192.0.2.66", "failure from a familiar address"),
            failed_login("dmitri", "192.0.2.70", "failure from a familiar network"),
        ])
        .await
        .unwrap();
    assert_eq!(
        flags(&store, "failure before any history").await,
        (false, false)
    );
    assert_eq!(flags(&store, "first success").await, (false, false));
    assert_eq!(flags(&store, "first failure").await, (true, true));
    assert_eq!(flags(&store, "second failure").await, (true, true));
    assert_eq!(flags(&store, "intruder's success").await, (true, true));
    assert_eq!(flags(&store, "success again").await, (false, false));
    assert_eq!(
        flags(&store, "failure from a familiar address").await,
        (false, false)
    );
    assert_eq!(
        flags(&store, "failure from a familiar network").await,
        (true, false)
    );
}

async fn is_new_country(store: &Arc<dyn Store>, message: &str) -> bool {
    stored_event(store, "acme", message).await.new_country
}

pub async fn a_country_is_new_only_after_a_located_success_elsewhere(store: Arc<dyn Store>) {
    store
        .append_events(vec![
            login("dmitri", "10.0.0.1", "unlocated first"),
            login("dmitri", "203.0.113.9", "first located, in India"),
            // An event earlier in the same group is history for a later one.
            login("eve", "203.0.113.20", "eve in India"),
            login("eve", "2001:db8:1::5", "eve in Germany, same group"),
            // A failure is never history, so an actor whose first located event failed has
            // none yet and the success after it is its first located history.
            failed_login("bob", "203.0.113.30", "bob fails in India"),
            login("bob", "198.51.100.30", "bob succeeds in Singapore"),
        ])
        .await
        .unwrap();
    store
        .append_events(vec![
            failed_login("dmitri", "198.51.100.7", "failure from Singapore"),
            failed_login("dmitri", "198.51.100.7", "second failure from Singapore"),
        ])
        .await
        .unwrap();
    store
        .append_events(vec![
            login("dmitri", "198.51.100.8", "success from Singapore"),
            login("dmitri", "198.51.100.9", "another success from Singapore"),
            login("dmitri", "203.0.113.200", "back in India, another city"),
            login("alice", "198.51.100.7", "alice's first located event"),
            login("dmitri", "10.0.0.2", "unlocated later"),
        ])
        .await
        .unwrap();
    for (message, expected) in [
        ("unlocated first", false),
        ("first located, in India", false),
        ("eve in India", false),
        ("eve in Germany, same group", true),
        ("bob fails in India", false),
        ("bob succeeds in Singapore", false),
        ("failure from Singapore", true),
        ("second failure from Singapore", true),
        ("success from Singapore", true),
        ("another success from Singapore", false),
        ("back in India, another city", false),
        ("alice's first located event", false),
        ("unlocated later", false),
    ] {
        assert_eq!(is_new_country(&store, message).await, expected, "{message}");
    }
    let flagged = stored_event(&store, "acme", "success from Singapore").await;
    assert!(
        flagged.to_json().contains("\"new_country\":true"),
        "{}",
        flagged.to_json()
    );
    assert_eq!(
        messages_matching(
            &store,
            query(vec![clause(Condition::Is(vec![EventFlag::NewCountry]))])
        )
        .await,
        [
            "eve in Germany, same group",
            "failure from Singapore",
            "second failure from Singapore",
            "success from Singapore",
        ]
    );
    assert_eq!(
        messages_matching(
            &store,
            query(vec![negated(Condition::Is(vec![EventFlag::NewCountry]))])
        )
        .await
        .len(),
        9
    );
}

fn network(name: &str, blocks: &str) -> KnownNetwork {
    KnownNetwork {
        name: NetworkName::parse(name).unwrap(),
        blocks: parse_network_blocks(blocks).unwrap(),
        updated_at: RECEIVED_AT,
    }
}

pub async fn known_networks_are_saved_replaced_deleted_and_matched_by_name(store: Arc<dyn Store>) {
    let networks = store.unfamiliar_ips();
    store
        .append_events(vec![
            login("alice", "203.0.113.9", "office desk"),
            login("alice", "10.8.0.7", "vpn"),
            login("alice", "2001:db8:5::1", "office v6"),
            login("alice", "198.51.100.1", "cafe"),
            EventBuilder::new("acme").message("no ip").build(),
            EventBuilder::new("other")
                .ip("203.0.113.9")
                .message("other account")
                .build(),
        ])
        .await
        .unwrap();
    assert!(
        networks
            .known_networks(&account("acme"))
            .await
            .unwrap()
            .is_empty()
    );
    let office = network("office", "203.0.113.0/24, 2001:db8:5::/48");
    assert_eq!(
        networks
            .save_known_network(&account("acme"), &office)
            .await
            .unwrap(),
        None
    );
    networks
        .save_known_network(&account("acme"), &network("vpn", "10.9.0.0/16"))
        .await
        .unwrap();
    let listed = networks.known_networks(&account("acme")).await.unwrap();
    assert_eq!(listed, vec![office.clone(), network("vpn", "10.9.0.0/16")]);
    assert!(
        networks
            .known_networks(&account("other"))
            .await
            .unwrap()
            .is_empty()
    );

    let named = |names: &[&str]| {
        query(vec![clause(Condition::KnownNetwork(
            names
                .iter()
                .map(|name| NetworkName::parse(name).unwrap())
                .collect(),
        ))])
    };
    assert_eq!(
        messages_matching(&store, named(&["office"])).await,
        ["office desk", "office v6"]
    );
    assert!(messages_matching(&store, named(&["vpn"])).await.is_empty());

    // Replacing a network returns the previous one and changes what the name matches at once.
    let replaced = networks
        .save_known_network(&account("acme"), &network("vpn", "10.8.0.0/16"))
        .await
        .unwrap();
    assert_eq!(replaced, Some(network("vpn", "10.9.0.0/16")));
    assert_eq!(messages_matching(&store, named(&["vpn"])).await, ["vpn"]);
    assert_eq!(
        messages_matching(&store, named(&["vpn", "office"])).await,
        ["office desk", "office v6", "vpn"]
    );
    let outside = query(vec![negated(Condition::KnownNetwork(vec![
        NetworkName::parse("office").unwrap(),
    ]))]);
    assert_eq!(
        messages_matching(&store, outside).await,
        ["cafe", "no ip", "vpn"]
    );
    assert!(messages_matching(&store, named(&["lab"])).await.is_empty());

    let deleted = networks
        .delete_known_network(&account("acme"), &NetworkName::parse("office").unwrap())
        .await
        .unwrap();
    assert_eq!(deleted, Some(office));
    assert!(
        messages_matching(&store, named(&["office"]))
            .await
            .is_empty()
    );
    assert_eq!(
        networks
            .delete_known_network(&account("acme"), &NetworkName::parse("office").unwrap())
            .await
            .unwrap(),
        None
    );
}

pub async fn one_network_saved_by_several_callers_at_once_is_replaced_in_turn(
    store: Arc<dyn Store>,
) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    // Eight admins (on PostgreSQL, eight pooled connections, as on several nodes) save "office"
    // at once: none fails, and the saves happen one after another, each replacing the one before.
    let saves: Vec<_> = (0..8)
        .map(|caller| {
            let store = store.clone();
            tokio::spawn(async move {
                let saved = network("office", &format!("10.{caller}.0.0/16"));
                let previous = store
                    .unfamiliar_ips()
                    .save_known_network(&account("acme"), &saved)
                    .await
                    .expect("saving answers");
                (saved, previous)
            })
        })
        .collect();
    let mut saved = Vec::new();
    let mut replaced = Vec::new();
    for save in saves {
        let (network, previous) = save.await.expect("the task finishes");
        saved.push(network);
        replaced.extend(previous);
    }
    let listed = store
        .unfamiliar_ips()
        .known_networks(&account("acme"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(replaced.len(), 7, "exactly one save found no network");
    // Every save but the last was replaced exactly once.
    let mut replaced_then_kept: Vec<String> = replaced
        .iter()
        .chain(&listed)
        .map(|network| format!("{:?}", network.blocks))
        .collect();
    let mut every_save: Vec<String> = saved
        .iter()
        .map(|network| format!("{:?}", network.blocks))
        .collect();
    replaced_then_kept.sort();
    every_save.sort();
    assert_eq!(replaced_then_kept, every_save);
}

pub async fn actor_addresses_list_first_and_last_seen_newest_first(store: Arc<dyn Store>) {
    let at = |minutes: i64| RECEIVED_AT + Duration::minutes(minutes);
    let event = |ip: &str, minutes: i64| {
        EventBuilder::new("acme")
            .actor("alice")
            .ip(ip)
            .created_at(at(minutes))
            .build()
    };
    store
        .append_events(vec![
            event("203.0.113.9", 0),
            event("198.51.100.4", 10),
            event("203.0.113.9", 20),
            event("203.0.113.9", 30),
            EventBuilder::new("acme")
                .actor("bob")
                .ip("192.0.2.1")
                .created_at(at(40))
                .build(),
        ])
        .await
        .unwrap();
    let addresses = store
        .unfamiliar_ips()
        .actor_addresses(&account("acme"), "alice", 50)
        .await
        .unwrap();
    let summary: Vec<(String, i64, Option<i64>, u64)> = addresses
        .iter()
        .map(|address| {
            (
                address.ip.to_string(),
                (address.first_seen_at - RECEIVED_AT).whole_minutes(),
                address
                    .last_seen_at
                    .map(|last| (last - RECEIVED_AT).whole_minutes()),
                address.recent_event_count,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("203.0.113.9".to_owned(), 0, Some(30), 3),
            ("198.51.100.4".to_owned(), 10, Some(10), 1),
        ]
    );
    let limited = store
        .unfamiliar_ips()
        .actor_addresses(&account("acme"), "alice", 1)
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert!(
        store
            .unfamiliar_ips()
            .actor_addresses(&account("other"), "alice", 50)
            .await
            .unwrap()
            .is_empty()
    );
}
