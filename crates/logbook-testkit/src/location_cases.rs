//! Where each address is (issue 19): the fixed `TestIpLocator` every conformance store is opened
//! with (and the parity test's events are located by), and the conformance case of the location
//! kept with each event and its query terms `country:`, `asn:` and `city:`, and of the backfill
//! that locates events stored before a database was configured.
//!
//! The locator is a table of this crate's own, not a stand-in for a third-party program: the
//! stores only call `IpLocator`, and the server's reader of real MaxMind DB files is tested
//! against files a real writer built (`logbook-server`'s `geoip` tests).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use logbook_core::location::{IpLocator, Location, SharedIpLocator};
use logbook_core::query::parse;
use logbook_core::store::AppendOutcome;
use logbook_core::store::EventQuery;
use logbook_core::{AccountId, Store};

use crate::builders::EventBuilder;

/// The blocks the test locator knows, with hostile text in an organization and a city with
/// spaces, so every reader of a location meets both.
#[derive(Debug)]
pub struct TestIpLocator {
    blocks: Vec<(IpNet, Location)>,
}

fn place(
    country: (&str, &str),
    region: Option<&str>,
    city: Option<&str>,
    coordinates: Option<(f64, f64, u32)>,
    network: Option<(u32, &str)>,
) -> Location {
    Location {
        country_code: Some(country.0.to_owned()).filter(|code| !code.is_empty()),
        country_name: Some(country.1.to_owned()).filter(|name| !name.is_empty()),
        region: region.map(str::to_owned),
        city: city.map(str::to_owned),
        latitude: coordinates.map(|(latitude, _, _)| latitude),
        longitude: coordinates.map(|(_, longitude, _)| longitude),
        accuracy_radius_km: coordinates.map(|(_, _, radius)| radius),
        asn: network.map(|(asn, _)| asn),
        organization: network.map(|(_, organization)| organization.to_owned()),
    }
}

impl Default for TestIpLocator {
    fn default() -> Self {
        let block = |text: &str| text.parse::<IpNet>().expect("a valid test block");
        Self {
            blocks: vec![
                (
                    block("203.0.113.0/25"),
                    place(
                        ("IN", "India"),
                        Some("Maharashtra"),
                        Some("Mumbai"),
                        Some((19.0748, 72.8856, 20)),
                        Some((9829, "BSNL")),
                    ),
                ),
                (
                    block("203.0.113.128/25"),
                    place(
                        ("IN", "India"),
                        Some("Maharashtra"),
                        Some("Pune"),
                        Some((18.5196, 73.8553, 50)),
                        Some((55836, "Reliance Jio")),
                    ),
                ),
                (
                    block("198.51.100.0/24"),
                    place(
                        ("SG", "Singapore"),
                        None,
                        Some("Singapore"),
                        Some((1.2897, 103.8501, 5)),
                        Some((13335, "Cloudflare <script>alert(1)</script> \"Inc\"")),
                    ),
                ),
                (
                    block("2001:db8:1::/48"),
                    place(
                        ("DE", "Germany"),
                        Some("Hesse"),
                        Some("Frankfurt am Main"),
                        Some((50.1109, 8.6821, 100)),
                        Some((3320, "Deutsche Telekom AG")),
                    ),
                ),
                (
                    block("100.64.0.0/24"),
                    place(
                        ("BR", "Brazil"),
                        Some("São Paulo"),
                        Some("São Paulo"),
                        Some((-23.5475, -46.6361, 50)),
                        Some((28573, "Claro NXT")),
                    ),
                ),
                (
                    block("10.0.0.0/8"),
                    place(("", ""), None, None, None, Some((64512, "Private"))),
                ),
                (
                    block("2001:db8:2::/48"),
                    place(("ZZ", ""), None, None, None, None),
                ),
            ],
        }
    }
}

impl IpLocator for TestIpLocator {
    fn locate(&self, ip: IpAddr) -> Option<Location> {
        let ip = ip.to_canonical();
        self.blocks
            .iter()
            .find(|(block, _)| block.contains(&ip))
            .map(|(_, location)| location.clone())
    }
}

/// The locator conformance stores are opened with.
pub fn test_ip_locator() -> SharedIpLocator {
    Arc::new(TestIpLocator::default())
}

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account name")
}

async fn messages_matching(store: &Arc<dyn Store>, text: &str) -> Vec<String> {
    let page = store
        .query_events(
            &account("acme"),
            &EventQuery {
                query: parse(text).expect("a valid query"),
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

pub async fn an_events_location_is_kept_outside_its_leaf_and_found_by_country_asn_and_city(
    store: Arc<dyn Store>,
) {
    let located = |ip: &str, message: &str| {
        EventBuilder::new("acme")
            .actor("alice")
            .ip(ip)
            .message(message)
            .build()
    };
    let outcomes = store
        .append_events(vec![
            located("203.0.113.9", "mumbai"),
            located("::ffff:203.0.113.200", "pune"),
            located("198.51.100.4", "singapore"),
            located("2001:db8:1::7", "frankfurt"),
            located("100.64.0.9", "são paulo"),
            located("10.1.2.3", "network only"),
            located("192.0.2.1", "unknown address"),
            EventBuilder::new("acme").message("no address").build(),
            EventBuilder::new("other")
                .ip("203.0.113.9")
                .message("another account")
                .build(),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 9);

    let rows = store.events_since(&account("acme"), 0, 100).await.unwrap();
    let mumbai = rows
        .iter()
        .find(|row| row.decode().unwrap().message == "mumbai")
        .unwrap();
    let location = mumbai.decode().unwrap().location.expect("a location");
    assert_eq!(location.country_code.as_deref(), Some("IN"));
    assert_eq!(location.country_name.as_deref(), Some("India"));
    assert_eq!(location.region.as_deref(), Some("Maharashtra"));
    assert_eq!(location.city.as_deref(), Some("Mumbai"));
    assert_eq!(location.latitude, Some(19.0748));
    assert_eq!(location.longitude, Some(72.8856));
    assert_eq!(location.accuracy_radius_km, Some(20));
    assert_eq!(location.asn, Some(9829));
    assert_eq!(location.organization.as_deref(), Some("BSNL"));
    // The location is analysis, like the flags: the body the producer's content is kept in, and
    // so the leaf and the receipt's hash, do not hold it.
    assert!(!mumbai.body_without_seq.contains("Mumbai"));
    let AppendOutcome::Stored(receipt) = &outcomes[0] else {
        panic!("the first event is stored: {:?}", outcomes[0]);
    };
    assert_eq!(
        mumbai.leaf_hash().unwrap(),
        receipt.leaf.as_ref().expect("a leaf receipt").leaf_hash
    );
    assert!(
        mumbai
            .to_json()
            .contains(r#""location":{"country_code":"IN""#)
    );
    for row in &rows {
        let event = row.decode().unwrap();
        match event.message.as_str() {
            "unknown address" | "no address" => assert_eq!(event.location, None),
            "network only" => assert_eq!(
                event.location.as_ref().map(|location| location.asn),
                Some(Some(64512))
            ),
            _ => assert!(event.location.is_some(), "{}", event.message),
        }
    }

    assert_eq!(
        messages_matching(&store, "country:IN").await,
        ["mumbai", "pune"]
    );
    assert_eq!(
        messages_matching(&store, "country:in,SG").await,
        ["mumbai", "pune", "singapore"]
    );
    assert_eq!(messages_matching(&store, "asn:AS9829").await, ["mumbai"]);
    assert_eq!(
        messages_matching(&store, "asn:64512,3320").await,
        ["frankfurt", "network only"]
    );
    assert_eq!(
        messages_matching(&store, r#"city:"Frankfurt am Main""#).await,
        ["frankfurt"]
    );
    assert!(messages_matching(&store, "city:mumbai").await.is_empty());
    // A name beyond ASCII matches exactly as stored: not without its accent, nor in another case.
    assert_eq!(
        messages_matching(&store, r#"city:"São Paulo" country:BR"#).await,
        ["são paulo"]
    );
    assert!(
        messages_matching(&store, r#"city:"Sao Paulo""#)
            .await
            .is_empty()
    );
    assert!(
        messages_matching(&store, r#"city:"SÃO PAULO""#)
            .await
            .is_empty()
    );
    // A negated term keeps events without a location, as for every field.
    assert_eq!(
        messages_matching(&store, "-country:IN").await,
        [
            "frankfurt",
            "network only",
            "no address",
            "singapore",
            "são paulo",
            "unknown address"
        ]
    );
    assert_eq!(
        messages_matching(&store, "country:IN -city:Mumbai asn:55836").await,
        ["pune"]
    );
}

/// The locator `logbook geoip backfill` is given in the backfill case: it places 192.0.2.0/24
/// (which the conformance stores' locator does not know) in France, and says 203.0.113.0/24 is
/// in the United States, so an event located at ingest (India) shows it was not looked up again.
#[derive(Debug)]
struct BackfillLocator;

impl IpLocator for BackfillLocator {
    fn locate(&self, ip: IpAddr) -> Option<Location> {
        let ip = ip.to_canonical();
        let country = |code: &str, city: &str| Location {
            country_code: Some(code.to_owned()),
            city: Some(city.to_owned()),
            ..Location::default()
        };
        if "192.0.2.0/24".parse::<IpNet>().unwrap().contains(&ip) {
            Some(country("FR", "Paris"))
        } else if "203.0.113.0/24".parse::<IpNet>().unwrap().contains(&ip) {
            Some(country("US", "Dallas"))
        } else {
            None
        }
    }
}

pub async fn the_backfill_locates_only_events_without_a_place_in_resumable_batches(
    store: Arc<dyn Store>,
) {
    let event = |account_name: &str, ip: Option<&str>, message: &str| {
        let builder = EventBuilder::new(account_name)
            .actor("alice")
            .message(message);
        match ip {
            Some(ip) => builder.ip(ip).build(),
            None => builder.build(),
        }
    };
    store
        .append_events(vec![
            event("acme", Some("192.0.2.1"), "before the database, first"),
            event("acme", Some("203.0.113.9"), "located at ingest"),
            event("acme", None, "no address"),
            event(
                "acme",
                Some("::ffff:192.0.2.2"),
                "before the database, second",
            ),
            event("acme", Some("198.18.0.1"), "unknown to both"),
            event("other", Some("192.0.2.3"), "another account"),
        ])
        .await
        .unwrap();
    let before = store.events_since(&account("acme"), 0, 100).await.unwrap();
    let locator: SharedIpLocator = Arc::new(BackfillLocator);
    let locations = store.locations();

    // Batches of two: the first is interrupted after it committed, and the next call goes on
    // from where it stopped instead of reading the first two events again.
    let first = locations
        .locate_stored_events(&account("acme"), 2, locator.clone(), false)
        .await
        .unwrap();
    assert_eq!(
        (first.events_examined, first.events_located, first.done),
        (2, 1, false)
    );
    let mut examined = first.events_examined;
    let mut located = first.events_located;
    loop {
        let batch = locations
            .locate_stored_events(&account("acme"), 2, locator.clone(), false)
            .await
            .unwrap();
        examined += batch.events_examined;
        located += batch.events_located;
        if batch.done {
            break;
        }
    }
    assert_eq!((examined, located), (5, 2));
    // Run again, it reads nothing; from the start, it reads all and locates nothing more.
    let again = locations
        .locate_stored_events(&account("acme"), 10, locator.clone(), false)
        .await
        .unwrap();
    assert_eq!(
        (again.events_examined, again.events_located, again.done),
        (0, 0, true)
    );
    let restarted = locations
        .locate_stored_events(&account("acme"), 10, locator.clone(), true)
        .await
        .unwrap();
    assert_eq!(
        (restarted.events_examined, restarted.events_located),
        (5, 0)
    );

    let after = store.events_since(&account("acme"), 0, 100).await.unwrap();
    for (old, new) in before.iter().zip(&after) {
        // Nothing but the location changes: not the body, the leaf or the flags.
        assert_eq!(old.body_without_seq, new.body_without_seq);
        assert_eq!(old.leaf_hash().unwrap(), new.leaf_hash().unwrap());
        assert_eq!(
            (old.new_ip, old.new_network, old.new_country),
            (new.new_ip, new.new_network, new.new_country)
        );
        let country = new
            .decode()
            .unwrap()
            .location
            .and_then(|location| location.country_code);
        let expected = match new.decode().unwrap().message.as_str() {
            "before the database, first" | "before the database, second" => Some("FR"),
            "located at ingest" => Some("IN"),
            _ => None,
        };
        assert_eq!(country.as_deref(), expected, "{}", new.to_json());
    }
    assert_eq!(
        messages_matching(&store, "country:FR city:Paris").await,
        ["before the database, first", "before the database, second"]
    );
    // Another account's events are its own backfill's business.
    let other = store.events_since(&account("other"), 0, 10).await.unwrap();
    assert_eq!(other[0].decode().unwrap().location, None);
}
