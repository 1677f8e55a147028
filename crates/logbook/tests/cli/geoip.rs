//! `logbook geoip backfill` on a database filled before an IP database was configured, with a
//! city database built by the real MaxMind DB writer.

use serde_json::json;

use super::{Workspace, fail, stderr_of, stdout_of, succeed};
use crate::ip_database_writer::{write_database, writer_python};

#[test]
fn backfill_locates_events_stored_before_a_database_and_resumes_where_it_stopped() {
    let Some(python) = writer_python(
        "backfill_locates_events_stored_before_a_database_and_resumes_where_it_stopped",
    ) else {
        return;
    };
    let workspace = Workspace::new();
    succeed(&mut workspace.on_data(&["demo", "--account", "demo", "--events", "300"]));
    // Without a database there is nothing to locate with: a clear refusal.
    let refused = fail(&mut workspace.on_data(&["geoip", "backfill"]));
    assert!(
        stderr_of(&refused).contains("no IP database is configured"),
        "{}",
        stderr_of(&refused)
    );

    // The demo's office network and its stranger's.
    let city = workspace.path().join("GeoLite2-City.mmdb");
    write_database(
        &python,
        &city,
        "GeoLite2-City",
        &[
            (
                "203.0.113.0/24",
                json!({"city": {"names": {"en": "Mumbai"}},
                       "country": {"iso_code": "IN", "names": {"en": "India"}}}),
            ),
            (
                "192.0.2.0/24",
                json!({"city": {"names": {"en": "Moscow"}},
                       "country": {"iso_code": "RU", "names": {"en": "Russia"}}}),
            ),
        ],
    );
    let backfill = |arguments: &[&str]| {
        let mut command = workspace.on_data(&[&["geoip", "backfill"], arguments].concat());
        command.env("LOGBOOK_GEOIP_CITY_DATABASE", &city);
        stdout_of(&succeed(&mut command))
    };
    let first = backfill(&["--batch-size", "40"]);
    let located: u64 = first
        .lines()
        .last()
        .and_then(|line| line.strip_prefix("Located "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no count in {first}"));
    assert!(located > 0, "{first}");
    assert!(first.contains("demo: located "), "{first}");
    // Run again, it reads only what came since: nothing. From the start, it reads everything
    // and locates nothing more, since every event it could place has its place.
    let again = backfill(&[]);
    assert!(again.contains("Located 0 events (0 read in "), "{again}");
    let restarted = backfill(&["--from-start"]);
    assert!(restarted.contains("Located 0 events ("), "{restarted}");
    assert!(!restarted.contains("(0 read"), "{restarted}");

    // The places are searchable, and the log still verifies: the leaves did not change.
    let key = workspace.create_key("demo", "read");
    let server = workspace.start_server();
    let table = stdout_of(&succeed(&mut workspace.client(
        &server,
        &key,
        &["query", "country:RU"],
    )));
    assert!(table.contains("192.0.2.66 · Moscow, RU"), "{table}");
    drop(server);
    succeed(&mut workspace.on_data(&["verify"]));
}
