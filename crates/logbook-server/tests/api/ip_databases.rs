//! The IP databases (issue 19) on files built by a real MaxMind DB writer (the `mmdb-writer`
//! package, installed by `.ci/run` into `tests/ip_database_writer/venv`): lookups of both address
//! families and of the GeoLite2 and IPinfo Lite layouts, the location stored with each event and
//! shown by the API, hot reload, and the refusal of a corrupt or truncated file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use logbook_core::api_key::KeyOwner;
use logbook_core::location::IpLocator;
use logbook_server::ip_databases::{IpDatabaseSettings, IpDatabases};
use serde_json::{Value, json};

use crate::ip_database_writer::{write_database, writer_python};
use crate::support::{TestServer, event, json_of};

fn city_record(city: &str, country: &str, country_name: &str, latitude: f64) -> Value {
    json!({
        "city": {"geoname_id": 1275339, "names": {"en": city, "de": format!("{city} (de)")}},
        "country": {"geoname_id": 1269750, "iso_code": country, "names": {"en": country_name}},
        "subdivisions": [{"iso_code": "MH", "names": {"en": "Maharashtra"}}],
        "location": {"latitude": latitude, "longitude": 72.8856, "accuracy_radius": 20, "time_zone": "Asia/Kolkata"},
        "continent": {"code": "AS", "names": {"en": "Asia"}},
    })
}

/// A GeoLite2-City-shaped and a GeoLite2-ASN-shaped database in `directory`.
fn write_geolite2(python: &Path, directory: &Path) -> (PathBuf, PathBuf) {
    let city = directory.join("GeoLite2-City.mmdb");
    write_database(
        python,
        &city,
        "GeoLite2-City",
        &[
            (
                "203.0.113.0/24",
                city_record("Mumbai", "IN", "India", 19.0748),
            ),
            (
                "2001:db8:1::/48",
                json!({"country": {"iso_code": "DE", "names": {"en": "Germany"}},
                       "city": {"names": {"en": "Frankfurt am Main"}}}),
            ),
            (
                "198.51.100.0/24",
                json!({"country": {"iso_code": "SG", "names": {"en": "Singapore"}},
                       "city": {"names": {"en": "<img src=x onerror=alert(1)>\u{1b}[31m"}}}),
            ),
        ],
    );
    let asn = directory.join("GeoLite2-ASN.mmdb");
    write_database(
        python,
        &asn,
        "GeoLite2-ASN",
        &[
            (
                "203.0.113.0/24",
                json!({"autonomous_system_number": 9829, "autonomous_system_organization": "BSNL"}),
            ),
            (
                "198.51.100.0/24",
                json!({"autonomous_system_number": 13335,
                       "autonomous_system_organization": "<script>alert('org')</script>"}),
            ),
        ],
    );
    (city, asn)
}

fn settings(city: Option<PathBuf>, asn: Option<PathBuf>, directory: &Path) -> IpDatabaseSettings {
    IpDatabaseSettings {
        city_database: city,
        asn_database: asn,
        snapshot_directory: directory.join("snapshots"),
        reload_interval: Duration::from_millis(50),
    }
}

#[test]
fn databases_written_by_a_real_writer_locate_both_address_families() {
    let Some(python) =
        writer_python("databases_written_by_a_real_writer_locate_both_address_families")
    else {
        return;
    };
    let directory = tempfile::tempdir().unwrap();
    let (city, asn) = write_geolite2(&python, directory.path());
    let databases = IpDatabases::open(&settings(Some(city), Some(asn), directory.path()))
        .unwrap()
        .expect("two databases");
    let mumbai = databases.locate("203.0.113.9".parse().unwrap()).unwrap();
    assert_eq!(mumbai.country_code.as_deref(), Some("IN"));
    assert_eq!(mumbai.country_name.as_deref(), Some("India"));
    assert_eq!(mumbai.region.as_deref(), Some("Maharashtra"));
    assert_eq!(mumbai.city.as_deref(), Some("Mumbai"));
    assert_eq!(mumbai.latitude, Some(19.0748));
    assert_eq!(mumbai.longitude, Some(72.8856));
    assert_eq!(mumbai.accuracy_radius_km, Some(20));
    assert_eq!(mumbai.asn, Some(9829));
    assert_eq!(mumbai.organization.as_deref(), Some("BSNL"));
    // IPv4-mapped IPv6 is the IPv4 address; an IPv6 range answers from the same file.
    assert_eq!(
        databases.locate("::ffff:203.0.113.200".parse().unwrap()),
        Some(mumbai)
    );
    let frankfurt = databases.locate("2001:db8:1::7".parse().unwrap()).unwrap();
    assert_eq!(frankfurt.city.as_deref(), Some("Frankfurt am Main"));
    assert_eq!(frankfurt.asn, None);
    assert_eq!(databases.locate("192.0.2.1".parse().unwrap()), None);
    // No snapshot is left behind: each is unlinked once mapped.
    assert_eq!(
        std::fs::read_dir(directory.path().join("snapshots"))
            .unwrap()
            .count(),
        0
    );

    // IPinfo Lite's layout: one file with country, network and organization.
    let ipinfo = directory.path().join("ipinfo_lite.mmdb");
    write_database(
        &python,
        &ipinfo,
        "ipinfo ipinfo_lite.mmdb",
        &[(
            "203.0.113.0/24",
            json!({"country_code": "IN", "country": "India", "continent_code": "AS",
                   "asn": "AS9829", "as_name": "National Internet Backbone", "as_domain": "bsnl.co.in"}),
        )],
    );
    let ipinfo = IpDatabases::open(&settings(Some(ipinfo), None, directory.path()))
        .unwrap()
        .unwrap();
    let located = ipinfo.locate("203.0.113.9".parse().unwrap()).unwrap();
    assert_eq!(located.country_code.as_deref(), Some("IN"));
    assert_eq!(located.country_name.as_deref(), Some("India"));
    assert_eq!(located.asn, Some(9829));
    assert_eq!(
        located.organization.as_deref(),
        Some("National Internet Backbone")
    );
}

#[test]
fn a_replaced_file_is_loaded_and_a_corrupt_or_truncated_one_is_refused_keeping_the_previous() {
    let Some(python) = writer_python(
        "a_replaced_file_is_loaded_and_a_corrupt_or_truncated_one_is_refused_keeping_the_previous",
    ) else {
        return;
    };
    let directory = tempfile::tempdir().unwrap();
    let (city, _asn) = write_geolite2(&python, directory.path());
    let databases = IpDatabases::open(&settings(Some(city.clone()), None, directory.path()))
        .unwrap()
        .unwrap();
    let city_of = |databases: &IpDatabases| {
        databases
            .locate("203.0.113.9".parse().unwrap())
            .and_then(|location| location.city)
    };
    // What the stores keep is remembered per address, until the file is replaced.
    let stored_city_of = |databases: &IpDatabases| {
        databases
            .located_columns("203.0.113.9".parse().unwrap())
            .and_then(|columns| columns.city.clone())
    };
    assert_eq!(city_of(&databases).as_deref(), Some("Mumbai"));
    assert_eq!(stored_city_of(&databases).as_deref(), Some("Mumbai"));
    assert_eq!(stored_city_of(&databases).as_deref(), Some("Mumbai"));

    // Replaced the way geoipupdate does it: written beside, renamed over.
    let next = directory.path().join("next.mmdb");
    write_database(
        &python,
        &next,
        "GeoLite2-City",
        &[("203.0.113.0/24", city_record("Pune", "IN", "India", 18.52))],
    );
    std::fs::rename(&next, &city).unwrap();
    databases.reload_changed();
    assert_eq!(city_of(&databases).as_deref(), Some("Pune"));
    assert_eq!(
        stored_city_of(&databases).as_deref(),
        Some("Pune"),
        "an answer of the replaced database is never used again"
    );
    assert!(databases.refusals().is_empty());

    // Overwritten in place with half of a file, as an interrupted copy leaves it.
    let good = std::fs::read(&city).unwrap();
    std::fs::write(&city, &good[..good.len() / 2]).unwrap();
    databases.reload_changed();
    assert_eq!(city_of(&databases).as_deref(), Some("Pune"));
    let refusals = databases.refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0].contains("not a valid MaxMind DB file"),
        "{refusals:?}"
    );

    // Something that is no database at all, then a good file again.
    std::fs::write(&city, b"<html>rate limited</html>").unwrap();
    databases.reload_changed();
    assert_eq!(city_of(&databases).as_deref(), Some("Pune"));
    assert_eq!(databases.refusals().len(), 1);
    std::fs::write(&city, &good).unwrap();
    databases.reload_changed();
    assert_eq!(city_of(&databases).as_deref(), Some("Pune"));
    assert!(databases.refusals().is_empty());

    // At start-up there is nothing to keep: a bad file stops it, with the reason.
    std::fs::write(&city, &good[..100]).unwrap();
    let error = IpDatabases::open(&settings(Some(city.clone()), None, directory.path()))
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a valid MaxMind DB file"), "{error}");
    assert!(error.contains("city IP database"), "{error}");
}

#[tokio::test]
async fn ingested_events_keep_their_location_and_readyz_reports_a_refused_replacement() {
    let Some(python) = writer_python(
        "ingested_events_keep_their_location_and_readyz_reports_a_refused_replacement",
    ) else {
        return;
    };
    let directory = tempfile::tempdir().unwrap();
    let (city, asn) = write_geolite2(&python, directory.path());
    let databases = Arc::new(
        IpDatabases::open(&settings(Some(city.clone()), Some(asn), directory.path()))
            .unwrap()
            .unwrap(),
    );
    let server = TestServer::start_locating(databases).await;
    let acme = server.test_account("acme").await;
    let response = server
        .post_events(
            &acme.ingest_key,
            &json!({"events": [
                event("from mumbai", json!({"ip": "203.0.113.9"})),
                event("from somewhere hostile", json!({"ip": "198.51.100.4"})),
                event("from nowhere known", json!({"ip": "192.0.2.1"})),
            ]}),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let page = server
        .list_events(&acme.read_key, &[("q", "country:IN asn:9829 city:Mumbai")])
        .await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(
        events[0]["location"],
        json!({"country_code": "IN", "country_name": "India", "region": "Maharashtra",
               "city": "Mumbai", "latitude": 19.0748, "longitude": 72.8856,
               "accuracy_radius_km": 20, "asn": 9829, "organization": "BSNL"})
    );
    let csv = server
        .get(
            &acme.read_key,
            "/api/v1/events/export?format=csv&q=city:Mumbai",
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains(",IN,India,Maharashtra,Mumbai,19.0748,72.8856,20,9829,BSNL,false\r\n"),
        "{csv}"
    );
    let unknown = server
        .list_events(&acme.read_key, &[("q", "\"nowhere known\"")])
        .await;
    assert!(unknown["events"][0].get("location").is_none(), "{unknown}");
    let bad = server
        .get(&acme.read_key, "/api/v1/events?q=country:IND")
        .await;
    assert_eq!(bad.status(), 400);
    let bad = json_of(bad).await;
    assert_eq!(bad["error"]["term"], "IND", "{bad}");
    assert_eq!(bad["error"]["position"], 8, "{bad}");

    // The file is replaced by something corrupt: the server keeps locating with the previous
    // database, stays ready, and says so (the reason only to someone who runs Logbook).
    std::fs::write(&city, b"not a database").unwrap();
    let admin = server.create_key(KeyOwner::Platform, "admin").await;
    let mut answer = String::new();
    for _ in 0..100 {
        let ready = server.get(&admin, "/readyz").await;
        assert_eq!(ready.status(), 200);
        answer = ready.text().await.unwrap();
        if answer != "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answer.starts_with("ready; a replaced IP database was refused"),
        "{answer}"
    );
    assert!(answer.contains("not a valid MaxMind DB file"), "{answer}");
    let anonymous = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!anonymous.contains("MaxMind"), "{anonymous}");
    server
        .post_events(
            &acme.ingest_key,
            &json!({"events": [event("still located", json!({"ip": "203.0.113.10"}))]}),
        )
        .await;
    let still = server
        .list_events(&acme.read_key, &[("q", "city:Mumbai")])
        .await;
    assert_eq!(still["events"].as_array().unwrap().len(), 2, "{still}");
}
