//! The invariants behind every fuzz target, as plain functions: a fuzzer calls them with its
//! inputs (`fuzz_targets/`), and `tests/corpus.rs` replays every saved input through them. Each
//! function panics when an invariant breaks, which is what a fuzzer reports as a crash.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use logbook_core::AccountId;
use logbook_core::event::EventRow;
use logbook_core::ingest::{IngestLimits, KeyBinding, parse_ingest_body};
use logbook_core::merkle::{self, MemoryTree};
use time::OffsetDateTime;

fn received_at() -> OffsetDateTime {
    // A fixed instant: the fuzzer must see the same behaviour for the same input.
    OffsetDateTime::from_unix_timestamp(1_750_000_000).expect("a valid timestamp")
}

/// The ingest parser and validator: never panics; every accepted event belongs to the key's
/// account, its stored body decodes back into the same content, and the producer's view of it
/// (the stored event minus what Logbook added) parses again into an event with the same
/// content fingerprint.
pub fn ingest_body(input: &[u8]) {
    let acme = AccountId::parse("acme").expect("valid account");
    let limits = IngestLimits::default();
    for binding in [KeyBinding::Account(&acme), KeyBinding::Platform] {
        let mut counter = 0u64;
        let mut next_id = || {
            counter += 1;
            format!("01900000-0000-7000-8000-{counter:012}")
        };
        let Ok(parsed) = parse_ingest_body(input, binding, &limits, received_at(), &mut next_id)
        else {
            continue;
        };
        assert!(parsed.len() <= limits.max_events_per_request);
        for event in parsed.into_iter().flatten() {
            if matches!(binding, KeyBinding::Account(_)) {
                assert_eq!(
                    event.account, acme,
                    "an account key wrote to another account"
                );
            }
            let row = EventRow {
                seq: 1,
                created_at_micros: event.created_at_micros(),
                body_without_seq: event.body_without_seq(),
                location: None,
                new_ip: false,
                new_network: false,
                new_country: false,
            };
            let stored = row.decode().expect("a stored body always decodes");
            assert_eq!(stored.action, event.action);
            assert_eq!(stored.message, event.message);
            assert_eq!(stored.account, event.account);
            assert_eq!(stored.metadata, event.metadata);

            let mut producer_view = serde_json::to_value(&stored).expect("serializes");
            let fields = producer_view.as_object_mut().expect("an object");
            for added_by_logbook in ["seq", "id", "received_at", "new_ip", "leaf_version", "salt"] {
                fields.remove(added_by_logbook);
            }
            if !event.created_at_was_sent {
                fields.remove("created_at");
            }
            let again = serde_json::to_vec(&producer_view).expect("serializes");
            let mut one_id = || "01900000-0000-7000-8000-000000000000".to_owned();
            let reparsed = parse_ingest_body(
                &again,
                KeyBinding::Platform,
                &limits,
                received_at(),
                &mut one_id,
            )
            .expect("an accepted event's own JSON parses again");
            let reparsed = reparsed
                .into_iter()
                .next()
                .expect("one event")
                .expect("an accepted event's own JSON is valid again");
            assert_eq!(
                reparsed.content_fingerprint(),
                event.content_fingerprint(),
                "re-serializing changed the event's content"
            );
        }
    }
}

/// The query parser: never panics, and every parsed query prints (`Display`) as text that
/// parses back into the same query.
pub fn query_parser(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(query) = logbook_core::query::parse(text) else {
        return;
    };
    let printed = query.to_string();
    // Printing escapes quotes and backslashes, so a query near the length limit could print
    // longer than the limit (a fuzz finding); the parser now refuses such queries, so every
    // accepted query's canonical text fits the limit and round-trips.
    assert!(
        printed.len() <= logbook_core::query::MAX_QUERY_BYTES,
        "{text:?} was accepted but prints {} bytes",
        printed.len()
    );
    let reparsed = logbook_core::query::parse(&printed)
        .unwrap_or_else(|error| panic!("{printed:?} (printed from {text:?}) fails: {error}"));
    // Spans point into the text they were parsed from, so only what each clause means is
    // compared (the first fuzz crash: spans differ once whitespace is normalized).
    let meaning = |query: &logbook_core::query::Query| {
        query
            .clauses
            .iter()
            .map(|clause| (clause.negated, clause.condition.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        meaning(&reparsed),
        meaning(&query),
        "{text:?} printed as {printed:?}"
    );
    assert_eq!(reparsed.to_string(), printed, "printing is not stable");
}

const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The CSV and NDJSON export writers, fed with events the ingest parser accepted: the CSV reads
/// back through the `csv` crate with one record per event plus the header, the same number of
/// cells in every record, no cell starting with a formula trigger (except the numbers and times
/// Logbook writes itself), and message/action intact after the defusing quote; the NDJSON has
/// one line per event, each parsing as JSON with the event's seq.
pub fn export_writers(input: &[u8]) {
    let acme = AccountId::parse("acme").expect("valid account");
    let mut next_id = || "01900000-0000-7000-8000-000000000001".to_owned();
    let Ok(parsed) = parse_ingest_body(
        input,
        KeyBinding::Account(&acme),
        &IngestLimits::default(),
        received_at(),
        &mut next_id,
    ) else {
        return;
    };
    let events: Vec<_> = parsed.into_iter().flatten().collect();
    if events.is_empty() {
        return;
    }
    let rows: Vec<EventRow> = events
        .iter()
        .enumerate()
        .map(|(index, event)| EventRow {
            seq: index as u64,
            created_at_micros: event.created_at_micros(),
            body_without_seq: event.body_without_seq(),
            // A location rides outside the leaf like the flags; verification must ignore it.
            location: (index % 3 == 1).then(|| r#"{"country_code":"IN","asn":9829}"#.to_owned()),
            new_ip: index % 2 == 1,
            new_network: index % 4 == 1,
            new_country: index % 5 == 1,
        })
        .collect();

    let csv_bytes = logbook_server::api::v1::events::export_bytes_of_rows(true, rows.clone())
        .expect("accepted events always export");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_bytes.as_slice());
    let records: Vec<csv::StringRecord> = reader
        .records()
        .map(|record| record.expect("the export is valid CSV"))
        .collect();
    assert_eq!(
        records.len(),
        events.len() + 1,
        "header plus one record per event"
    );
    let header = &records[0];
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        logbook_server::api::v1::events::CSV_HEADER.to_vec()
    );
    for (record, event) in records[1..].iter().zip(&events) {
        assert_eq!(record.len(), header.len());
        for cell in record {
            if let Some(first) = cell.chars().next() {
                assert!(
                    !FORMULA_TRIGGERS.contains(&first),
                    "a cell starts with a formula trigger: {cell:?}"
                );
            }
        }
        let undefused = |cell: &str, original: &str| {
            cell == original || cell.strip_prefix('\'') == Some(original)
        };
        assert!(
            undefused(&record[5], &event.action),
            "action {:?}",
            &record[5]
        );
        assert!(
            undefused(&record[6], &event.message),
            "message {:?}",
            &record[6]
        );
    }

    let ndjson = logbook_server::api::v1::events::export_bytes_of_rows(false, rows)
        .expect("accepted events always export");
    let lines: Vec<&[u8]> = ndjson.split(|byte| *byte == b'\n').collect();
    assert_eq!(
        lines.len(),
        events.len() + 1,
        "one line per event and a final newline"
    );
    assert!(lines[events.len()].is_empty());
    for (index, line) in lines[..events.len()].iter().enumerate() {
        let value: serde_json::Value = serde_json::from_slice(line).expect("each line is JSON");
        assert_eq!(value["seq"], index as u64);
        assert_eq!(value["action"], events[index].action.as_str());
    }
}

/// Client-IP resolution from `X-Forwarded-For`: the answer is the socket peer, or a hop of the
/// header such that the peer and every hop right of it are trusted proxies. So a client can
/// never choose its address by writing a left-most (spoofed) value past an untrusted hop.
pub fn client_ip(input: &[u8]) {
    if input.len() < 3 {
        return;
    }
    let trusted_networks: Vec<ipnet::IpNet> = ["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]
        .iter()
        .take(usize::from(input[0] % 4))
        .map(|network| network.parse().expect("valid network"))
        .collect();
    let peer = match input[1] % 4 {
        0 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, input[2])),
        1 => IpAddr::V4(Ipv4Addr::new(203, 0, 113, input[2])),
        2 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(input[2]))),
        _ => IpAddr::V6(Ipv4Addr::new(192, 168, 1, input[2]).to_ipv6_mapped()),
    };
    let Ok(header) = std::str::from_utf8(&input[3..]) else {
        return;
    };
    let values: Vec<&str> = header.split('\n').collect();
    let answer =
        logbook_core::client_ip::client_ip(peer, values.iter().copied(), &trusted_networks);
    let canonical = |address: IpAddr| match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        other => other,
    };
    let is_trusted = |address: IpAddr| {
        trusted_networks
            .iter()
            .any(|network| network.contains(&canonical(address)))
    };
    if answer == canonical(peer) {
        return;
    }
    assert!(is_trusted(peer), "an untrusted peer's header was believed");
    let hops: Vec<&str> = values
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    // Walking from the right, every hop passed must be trusted until the answer is reached.
    for hop in hops.iter().rev() {
        let parsed = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| {
                hop.parse::<std::net::SocketAddr>()
                    .ok()
                    .map(|socket| socket.ip())
            })
            .map(canonical);
        if parsed == Some(answer) {
            return;
        }
        match parsed {
            Some(address) if is_trusted(address) => continue,
            // Hops the resolver reads in other notations (brackets) are not second-guessed here,
            // but an untrusted readable hop must have been the answer.
            Some(_) => panic!("the answer {answer} lies left of an untrusted hop in {hops:?}"),
            None => {}
        }
    }
    panic!("the answer {answer} is neither the peer {peer} nor a hop of {hops:?}");
}

/// The inclusion-proof verifier: a proof made by the tree verifies, and flipping any one bit of
/// the proof, the leaf hash or the root, or changing the index or tree size, makes it fail.
pub fn inclusion_proof(input: &[u8]) {
    if input.len() < 4 {
        return;
    }
    let tree_size = u64::from(input[0]) + 1;
    let index = u64::from(input[1]) % tree_size;
    let mutation = u16::from_le_bytes([input[2], input[3]]);
    let mut tree = MemoryTree::new();
    for leaf in 0..tree_size {
        let mut content = input[4..].to_vec();
        content.extend_from_slice(&leaf.to_be_bytes());
        tree.append(merkle::hash_leaf(&content));
    }
    let root = tree.root();
    let mut leaf_content = input[4..].to_vec();
    leaf_content.extend_from_slice(&index.to_be_bytes());
    let leaf_hash = merkle::hash_leaf(&leaf_content);
    let proof = merkle::inclusion_proof(&tree, index, tree_size).expect("a proof in range");
    merkle::verify_inclusion(&leaf_hash, index, tree_size, &proof, &root)
        .expect("an honest proof verifies");

    let bit = usize::from(mutation) % 256;
    let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
    match mutation % 5 {
        0 if !proof.is_empty() => {
            let mut bad = proof.clone();
            let which = usize::from(mutation >> 8) % bad.len();
            bad[which][byte] ^= mask;
            assert!(merkle::verify_inclusion(&leaf_hash, index, tree_size, &bad, &root).is_err());
        }
        1 => {
            let mut bad_leaf = leaf_hash;
            bad_leaf[byte] ^= mask;
            assert!(merkle::verify_inclusion(&bad_leaf, index, tree_size, &proof, &root).is_err());
        }
        2 => {
            let mut bad_root = root;
            bad_root[byte] ^= mask;
            assert!(
                merkle::verify_inclusion(&leaf_hash, index, tree_size, &proof, &bad_root).is_err()
            );
        }
        3 if tree_size > 1 => {
            let other_index = (index + 1 + u64::from(mutation >> 8) % (tree_size - 1)) % tree_size;
            assert!(
                merkle::verify_inclusion(&leaf_hash, other_index, tree_size, &proof, &root)
                    .is_err(),
                "leaf {index} of {tree_size} also verified at {other_index}"
            );
        }
        _ => {
            let mut shorter = proof.clone();
            if shorter.pop().is_some() {
                assert!(
                    merkle::verify_inclusion(&leaf_hash, index, tree_size, &shorter, &root)
                        .is_err()
                );
            }
        }
    }
}
