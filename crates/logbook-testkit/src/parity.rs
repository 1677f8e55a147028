//! The parity test: the query language has three engines (the SQLite compiler, the PostgreSQL
//! compiler, and `Query::matches`, which live views, alert rules and attention use), and this test
//! holds them to one meaning. It generates events (hostile text, IPv4 and IPv6 at the edges of
//! their blocks, ties and day boundaries in `created_at`, flags from real detection) and queries
//! (every term, negation, alternatives, prefixes, phrases, ranges, known networks, `is:` flags),
//! runs every query on the store, page by page and as an export, and compares the events with
//! those `Query::matches` selects from the same stored events, in the same order.
//!
//! Each store crate runs it as a conformance case, so SQLite and PostgreSQL are each held equal
//! to the in-memory engine, and so to each other. The generator is seeded (`LOGBOOK_PARITY_SEED`
//! overrides the fixed seed, `LOGBOOK_PARITY_QUERIES` the number of queries, for a longer soak),
//! and a failure prints the seed and every differing query.

use std::sync::Arc;

use logbook_core::ingest::{IngestLimits, KeyBinding, parse_ingest_body};
use logbook_core::query::{
    Clause, Condition, EventFlag, Query, TextPattern, TextSearch, TimeRange, parse,
};
use logbook_core::store::EventQuery;
use logbook_core::timeline::{TimeBucket, count_in_memory};
use logbook_core::unfamiliar_ip::{KnownNetwork, NetworkName, parse_network_blocks};
use logbook_core::{AccountId, Store, StoredEvent};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::builders::RECEIVED_AT;

const DEFAULT_SEED: u64 = 20_261_206;
const DEFAULT_QUERY_COUNT: usize = 400;
const EVENTS_IN_TESTED_ACCOUNT: usize = 300;
const EVENTS_IN_OTHER_ACCOUNT: usize = 60;

const TESTED_ACCOUNT: &str = "parity";
const OTHER_ACCOUNT: &str = "parity-other";

const ACTORS: &[&str] = &[
    "alice@acme.com",
    "alice@acme.com.evil",
    "al",
    "bob",
    "Bob",
    "ünïcødé@例え.jp",
    "o'brien\"x",
    "<script>alert(1)</script>",
    "server.*",
    "x y",
    "\u{202E}evil",
    "100%_wild",
    "a\\b",
    "ſtop",
];

const ACTIONS: &[&str] = &[
    "user.login",
    "user.logout",
    "user.login.failed",
    "server.reboot",
    "server.delete",
    "server_x.create",
    "firewall.rule.update",
    "a.b",
    "logbook.login",
];

const TARGET_IDS: &[&str] = &[
    "web-1", "web-10", "web", "srv-123", "srv-1234", "db.main", "Ünï", "*", "%", "_", "a,b",
];

/// Addresses at the edges of their blocks and of the IPv4-mapped block where IPv4 is stored.
const ADDRESSES: &[&str] = &[
    "203.0.113.9",
    "203.0.113.10",
    "203.0.113.255",
    "203.0.114.1",
    "198.51.100.7",
    "10.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "::ffff:203.0.113.77",
    "::ffff:0.0.0.1",
    "::1",
    "::",
    "::fffe:ffff:ffff",
    "::1:0:0:0",
    "2001:db8:1::5",
    "2001:db8:1:ffff::1",
    "2001:db8:2::1",
    "fe80::1",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
];

/// Words of messages: plain, cased, accented, joined scripts, and the syntax of FTS5, tsquery and
/// SQL, which must be searched as text.
const WORDS: &[&str] = &[
    "reboot",
    "Rebooted",
    "web-1",
    "web",
    "1",
    "server",
    "SERVER",
    "Straße",
    "strasse",
    "İstanbul",
    "istanbul",
    "ǅemal",
    "naïve",
    "naive",
    "日本語",
    "emoji😀",
    "👍🏽",
    "👨\u{200D}👩\u{200D}👧",
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "\"quoted\"",
    "'single'",
    "a&b",
    "!c",
    "<->",
    "col:val",
    "^start",
    "*",
    "-",
    "--",
    "'; DROP TABLE events; --",
    "%",
    "_",
    "zero\u{200B}width",
    "bidi\u{202E}txt",
    "C++",
    "2024-06-01",
    "1e10",
    "0x1F",
    "ſtop",
    "stop",
    "Kelvin\u{212A}",
];

const SEPARATORS: &[&str] = &[" ", ", ", "-", "  ", "\n", "/", "\t", "."];

/// Instants at the edges that matter: the first representable microsecond, day boundaries,
/// offsets that move the UTC day, and ties.
const CREATED_AT: &[&str] = &[
    "1970-01-01T00:00:00.000001Z",
    "2000-02-29T23:59:59.999999Z",
    "2024-05-31T23:59:59.999999Z",
    "2024-06-01T00:00:00Z",
    "2024-06-01T00:00:00.000001Z",
    "2024-06-01T09:12:00+02:00",
    "2024-06-01T11:59:59.5-00:30",
    "2024-06-01T12:00:00Z",
    "2024-06-02T11:00:00Z",
];

const KNOWN_NETWORKS: &[(&str, &str)] = &[
    ("office", "203.0.113.0/24, 2001:db8:1::/48"),
    ("everything6", "::/0"),
    ("tiny", "198.51.100.7/32"),
    ("lower", "0.0.0.0/1, ::/1"),
];

/// Runs the parity test on `store` (a fresh, empty store).
pub async fn query_engines_agree_on_generated_events_and_queries(store: Arc<dyn Store>) {
    let seed = std::env::var("LOGBOOK_PARITY_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let query_count = std::env::var("LOGBOOK_PARITY_QUERIES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(DEFAULT_QUERY_COUNT);
    let mut random = StdRng::seed_from_u64(seed);
    let tested = AccountId::parse(TESTED_ACCOUNT).expect("a valid account");

    let mut messages = Vec::new();
    for (account, count) in [
        (TESTED_ACCOUNT, EVENTS_IN_TESTED_ACCOUNT),
        (OTHER_ACCOUNT, EVENTS_IN_OTHER_ACCOUNT),
    ] {
        // In several appends, so detection sees history from earlier commits and within a group.
        let mut remaining = count;
        while remaining > 0 {
            let batch = remaining.min(random.random_range(1..=40));
            remaining -= batch;
            let bodies: Vec<String> = (0..batch)
                .map(|_| {
                    let (body, message) = generated_event_json(&mut random, account);
                    messages.push(message);
                    body
                })
                .collect();
            let request = format!("{{\"events\":[{}]}}", bodies.join(","));
            let mut next_id = {
                let mut number = 0_u64;
                let prefix = random.random::<u32>();
                move || {
                    number += 1;
                    format!("01900000-{:04x}-7000-8000-{number:012x}", prefix & 0xffff)
                }
            };
            let events = parse_ingest_body(
                request.as_bytes(),
                KeyBinding::Platform,
                &IngestLimits::default(),
                RECEIVED_AT,
                &mut next_id,
            )
            .expect("the generated request is well formed")
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|error| panic!("a generated event was refused: {error:?}"));
            store
                .append_events(events)
                .await
                .expect("the generated events are stored");
        }
    }
    for (name, blocks) in KNOWN_NETWORKS {
        store
            .unfamiliar_ips()
            .save_known_network(
                &tested,
                &KnownNetwork {
                    name: NetworkName::parse(name).expect("a valid network name"),
                    blocks: parse_network_blocks(blocks).expect("valid blocks"),
                    updated_at: RECEIVED_AT,
                },
            )
            .await
            .expect("the known network is saved");
    }

    let stored = stored_events(&store, &tested).await;
    let networks = store
        .unfamiliar_ips()
        .known_networks(&tested)
        .await
        .expect("known networks are listed");
    let vocabulary = Vocabulary::of(&stored, &messages);

    let mut differences = Vec::new();
    let mut queries_with_results = 0;
    let mut refused = 0;
    for query_number in 0..query_count {
        let generated = generated_query(&mut random, &vocabulary);
        let text = generated.to_string();
        // The generator also builds what the language refuses (a bare word without a letter or
        // digit, an overlong query); the parser's answer to those is an error, not a result.
        let query = match parse(&text) {
            Ok(query) => query,
            Err(error)
                if text.len() > logbook_core::query::MAX_QUERY_BYTES
                    || error.message.contains("no letters or digits") =>
            {
                refused += 1;
                continue;
            }
            Err(error) => panic!("the canonical text {text:?} does not parse: {error}"),
        };
        let expected: Vec<&StoredEvent> = {
            let resolved = query.resolve_known_networks(&networks);
            let mut matching: Vec<&StoredEvent> = stored
                .iter()
                .filter(|event| resolved.matches(event))
                .collect();
            matching.sort_by_key(|event| std::cmp::Reverse((event.created_at, event.seq)));
            matching
        };
        if !expected.is_empty() {
            queries_with_results += 1;
        }
        let expected_ids: Vec<&str> = expected.iter().map(|event| event.id.as_str()).collect();
        let page_size = if random.random_bool(0.3) {
            random.random_range(1..=4)
        } else {
            random.random_range(5..=200)
        };
        let paged = paged_ids(&store, &tested, &query, page_size).await;
        if paged != expected_ids {
            differences.push(describe(
                &text,
                &format!("pages of {page_size}"),
                &expected_ids,
                &paged,
                &stored,
            ));
        }
        // The timeline counts the same events (issue 21): per hour or per day, it must equal the
        // in-memory count of what `Query::matches` keeps.
        let bucket = if query_number % 2 == 0 {
            TimeBucket::Hour
        } else {
            TimeBucket::Day
        };
        let expected_timeline =
            count_in_memory(expected.iter().map(|event| event.created_at), bucket);
        let timeline = store
            .count_events_over_time(&tested, &query, bucket)
            .await
            .expect("the timeline is counted");
        if timeline != expected_timeline {
            differences.push(format!(
                "{text:?} timeline per {bucket:?}: expected {expected_timeline:?}, the store counted {timeline:?}"
            ));
        }
        if query_number % 8 == 0 {
            let exported = exported_ids(&store, &tested, &query).await;
            if exported != expected_ids {
                differences.push(describe(&text, "export", &expected_ids, &exported, &stored));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "the store and Query::matches disagree on {} of {query_count} queries (seed {seed}):\n{}",
        differences.len(),
        differences.join("\n")
    );
    // A generator whose queries are refused or match nothing would prove nothing.
    assert!(
        refused * 10 <= query_count,
        "the parser refused {refused} of {query_count} generated queries"
    );
    assert!(
        queries_with_results * 3 >= query_count,
        "only {queries_with_results} of {query_count} generated queries matched any event"
    );
}

/// One generated event as ingest JSON, and its message.
fn generated_event_json(random: &mut StdRng, account: &str) -> (String, String) {
    let mut fields = vec![
        format!("\"account\":{}", json_string(account)),
        format!(
            "\"action\":{}",
            json_string(ACTIONS.choose(random).unwrap())
        ),
    ];
    let word_count = random.random_range(1..=8);
    let mut message = String::new();
    for index in 0..word_count {
        if index > 0 {
            message.push_str(SEPARATORS.choose(random).unwrap());
        }
        message.push_str(WORDS.choose(random).unwrap());
    }
    fields.push(format!("\"message\":{}", json_string(&message)));
    if random.random_bool(0.85) {
        let actor = ACTORS.choose(random).unwrap();
        fields.push(format!(
            "\"actor\":{{\"id\":{},\"type\":\"user\"}}",
            json_string(actor)
        ));
    }
    if random.random_bool(0.8) {
        fields.push(format!(
            "\"ip\":{}",
            json_string(ADDRESSES.choose(random).unwrap())
        ));
    }
    match random.random_range(0..3) {
        0 => fields.push("\"outcome\":\"success\"".into()),
        1 => fields.push("\"outcome\":\"failure\"".into()),
        _ => {}
    }
    let target_count = random.random_range(0..=3);
    if target_count > 0 {
        let targets: Vec<String> = (0..target_count)
            .map(|_| {
                format!(
                    "{{\"type\":\"server\",\"id\":{}}}",
                    json_string(TARGET_IDS.choose(random).unwrap())
                )
            })
            .collect();
        fields.push(format!("\"targets\":[{}]", targets.join(",")));
    }
    match random.random_range(0..4) {
        0 => {}
        1 => {
            // A random instant within two weeks before the receipt, to the microsecond.
            let offset = Duration::microseconds(random.random_range(0..1_209_600_000_000));
            let created_at = (RECEIVED_AT - offset)
                .format(&Rfc3339)
                .expect("formats as RFC 3339");
            fields.push(format!("\"created_at\":{}", json_string(&created_at)));
        }
        _ => fields.push(format!(
            "\"created_at\":{}",
            json_string(CREATED_AT.choose(random).unwrap())
        )),
    }
    (format!("{{{}}}", fields.join(",")), message)
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// What queries are built from: the values the stored events hold, so that queries match.
struct Vocabulary {
    instants: Vec<OffsetDateTime>,
    messages: Vec<String>,
}

impl Vocabulary {
    fn of(stored: &[StoredEvent], messages: &[String]) -> Self {
        let mut instants: Vec<OffsetDateTime> =
            stored.iter().map(|event| event.created_at).collect();
        instants.sort();
        instants.dedup();
        Vocabulary {
            instants,
            messages: messages.to_vec(),
        }
    }
}

fn generated_query(random: &mut StdRng, vocabulary: &Vocabulary) -> Query {
    let clause_count = random.random_range(1..=4);
    Query {
        clauses: (0..clause_count)
            .map(|_| Clause {
                negated: random.random_bool(0.3),
                condition: generated_condition(random, vocabulary),
                span: 0..0,
            })
            .collect(),
    }
}

fn generated_condition(random: &mut StdRng, vocabulary: &Vocabulary) -> Condition {
    match random.random_range(0..14) {
        0 => Condition::Actor(patterns_from(random, ACTORS)),
        1 => Condition::Action(patterns_from(random, ACTIONS)),
        2 => Condition::Target(patterns_from(random, TARGET_IDS)),
        3 | 4 => Condition::Ip(
            (0..random.random_range(1..=3))
                .map(|_| generated_network(random))
                .collect(),
        ),
        5 => Condition::KnownNetwork(
            (0..random.random_range(1..=2))
                .map(|_| {
                    let name = [
                        KNOWN_NETWORKS.choose(random).unwrap().0,
                        "nowhere",
                        "office",
                    ]
                    .choose(random)
                    .copied()
                    .unwrap();
                    NetworkName::parse(name).expect("a valid network name")
                })
                .collect(),
        ),
        6 => Condition::Outcome(match random.random_range(0..3) {
            0 => vec![logbook_core::event::Outcome::Success],
            1 => vec![logbook_core::event::Outcome::Failure],
            _ => vec![
                logbook_core::event::Outcome::Failure,
                logbook_core::event::Outcome::Success,
            ],
        }),
        7 => Condition::Created(generated_range(random, vocabulary)),
        8 => Condition::Is(match random.random_range(0..5) {
            0 => vec![EventFlag::NewIp],
            1 => vec![EventFlag::NewNetwork],
            2 => vec![EventFlag::NewCountry],
            3 => vec![EventFlag::NewCountry, EventFlag::NewIp],
            _ => vec![EventFlag::NewNetwork, EventFlag::NewIp],
        }),
        9 => {
            // A bare word is what the grammar reads as one (no space, quote, `*` or `:`, and no
            // leading `-`, which negates); anything else is typed as a phrase.
            let word = generated_word(random);
            if word.starts_with('-')
                || word.contains(|character: char| {
                    character.is_whitespace() || matches!(character, '"' | '*' | ':')
                })
            {
                Condition::Text(TextSearch::Phrase(word))
            } else {
                Condition::Text(TextSearch::Word(word))
            }
        }
        // Where each address is (`location_cases::TestIpLocator` located the events): codes,
        // networks and cities it knows, and some it does not.
        11 => Condition::Country(
            (0..random.random_range(1..=2))
                .map(|_| {
                    let code = ["IN", "SG", "DE", "ZZ", "US"].choose(random).unwrap();
                    logbook_core::location::CountryCode::parse(code).expect("a valid code")
                })
                .collect(),
        ),
        12 => Condition::Asn(
            (0..random.random_range(1..=2))
                .map(|_| *[9829, 55836, 13335, 3320, 64512, 1].choose(random).unwrap())
                .collect(),
        ),
        13 => Condition::City(
            (0..random.random_range(1..=2))
                .map(|_| {
                    let city = [
                        "Mumbai",
                        "mumbai",
                        "Pune",
                        "Singapore",
                        "Frankfurt am Main",
                        "Frankfurt",
                    ]
                    .choose(random)
                    .unwrap();
                    (*city).to_owned()
                })
                .collect(),
        ),
        _ => Condition::Text(TextSearch::Phrase(generated_phrase(random, vocabulary))),
    }
}

/// One to three alternatives: values as stored, other cases, prefixes of them, and absent values.
fn patterns_from(random: &mut StdRng, values: &[&str]) -> Vec<TextPattern> {
    (0..random.random_range(1..=3))
        .map(|_| {
            let value = *values.choose(random).unwrap();
            match random.random_range(0..6) {
                0 | 1 => TextPattern::Exact(value.to_owned()),
                2 => TextPattern::Exact(value.to_uppercase()),
                3 => TextPattern::Exact(format!("{value}x")),
                _ => {
                    let characters: Vec<char> = value.chars().collect();
                    let length = random.random_range(1..=characters.len());
                    TextPattern::Prefix(characters[..length].iter().collect())
                }
            }
        })
        .collect()
}

/// An address of the pool as a block of a random prefix length (including `::/0`, blocks that
/// cover the IPv4-mapped block, and single addresses), written the way a person types it.
fn generated_network(random: &mut StdRng) -> ipnet::IpNet {
    let address: std::net::IpAddr = ADDRESSES.choose(random).unwrap().parse().unwrap();
    let max_prefix = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match random.random_range(0..4) {
        0 => max_prefix,
        1 => 0,
        _ => random.random_range(0..=max_prefix),
    };
    let text = format!("{address}/{prefix}");
    match parse(&format!("ip:{text}"))
        .expect("a generated block parses")
        .clauses
        .remove(0)
        .condition
    {
        Condition::Ip(mut networks) => networks.remove(0),
        other => panic!("ip:{text} parsed as {other:?}"),
    }
}

fn generated_range(random: &mut StdRng, vocabulary: &Vocabulary) -> TimeRange {
    let mut instant = || {
        let base = *vocabulary.instants.choose(random).unwrap();
        match random.random_range(0..4) {
            0 => base - Duration::MICROSECOND,
            1 => base + Duration::MICROSECOND,
            2 => base.replace_time(time::Time::MIDNIGHT),
            _ => base,
        }
    };
    let (first, second) = (instant(), instant());
    let (start, end) = if first <= second {
        (first, second)
    } else {
        (second, first)
    };
    let end = if start == end {
        end + Duration::MICROSECOND
    } else {
        end
    };
    match random.random_range(0..3) {
        0 => TimeRange {
            start_inclusive: Some(start),
            end_exclusive: None,
        },
        1 => TimeRange {
            start_inclusive: None,
            end_exclusive: Some(end),
        },
        _ => TimeRange {
            start_inclusive: Some(start),
            end_exclusive: Some(end),
        },
    }
}

fn generated_word(random: &mut StdRng) -> String {
    let word = *WORDS.choose(random).unwrap();
    match random.random_range(0..4) {
        0 => word.to_uppercase(),
        1 => word.to_lowercase(),
        _ => word.to_owned(),
    }
}

/// Two or three neighbouring words of a stored message, or words that never stand together.
fn generated_phrase(random: &mut StdRng, vocabulary: &Vocabulary) -> String {
    let message = vocabulary.messages.choose(random).unwrap();
    let tokens = logbook_core::query::text_tokens(message);
    if tokens.len() >= 2 && random.random_bool(0.8) {
        let length = random.random_range(2..=tokens.len().min(3));
        let start = random.random_range(0..=tokens.len() - length);
        tokens[start..start + length].join(" ")
    } else {
        format!("{} {}", generated_word(random), generated_word(random))
    }
}

async fn stored_events(store: &Arc<dyn Store>, account: &AccountId) -> Vec<StoredEvent> {
    let rows = store
        .events_since(account, 0, 100_000)
        .await
        .expect("the account's events are read");
    rows.iter()
        .map(|row| row.decode().expect("a stored event decodes"))
        .collect()
}

async fn paged_ids(
    store: &Arc<dyn Store>,
    account: &AccountId,
    query: &Query,
    page_size: u32,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .query_events(
                account,
                &EventQuery {
                    query: query.clone(),
                    limit: page_size,
                    after,
                },
            )
            .await
            .unwrap_or_else(|error| panic!("the query {query} failed: {error}"));
        ids.extend(page.events.iter().map(|row| {
            row.decode()
                .expect("a stored event decodes")
                .id
                .into_string()
        }));
        match page.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
}

async fn exported_ids(store: &Arc<dyn Store>, account: &AccountId, query: &Query) -> Vec<String> {
    use futures::StreamExt;
    let mut ids = Vec::new();
    let mut export = store.export_events(account, query.clone());
    while let Some(row) = export.next().await {
        let row = row.unwrap_or_else(|error| panic!("the export of {query} failed: {error}"));
        ids.push(
            row.decode()
                .expect("a stored event decodes")
                .id
                .into_string(),
        );
    }
    ids
}

/// The query, how it was read, and the events only one side returned (or the first place where
/// the order differs).
fn describe(
    text: &str,
    how: &str,
    expected: &[&str],
    actual: &[String],
    stored: &[StoredEvent],
) -> String {
    let summary = |id: &str| match stored.iter().find(|event| event.id == id) {
        Some(event) => format!(
            "seq {} created {} actor {:?} ip {:?} targets {:?} new_ip {} new_network {} new_country {} message {:?}",
            event.seq,
            event.created_at,
            event.actor.as_ref().map(|actor| actor.id.as_str()),
            event.ip,
            event
                .targets
                .iter()
                .map(|target| target.id.as_str())
                .collect::<Vec<_>>(),
            event.new_ip,
            event.new_network,
            event.new_country,
            event.message
        ),
        None => format!("{id} (not an event of the tested account)"),
    };
    let only_expected: Vec<String> = expected
        .iter()
        .filter(|id| !actual.iter().any(|actual| actual == *id))
        .map(|id| summary(id))
        .collect();
    let only_actual: Vec<String> = actual
        .iter()
        .filter(|id| !expected.contains(&id.as_str()))
        .map(|id| summary(id))
        .collect();
    let mut description = format!(
        "- {text:?} ({how}): Query::matches {} events, the store {}",
        expected.len(),
        actual.len()
    );
    for line in only_expected.iter().take(3) {
        description.push_str(&format!("\n    only in memory: {line}"));
    }
    for line in only_actual.iter().take(3) {
        description.push_str(&format!("\n    only in the store: {line}"));
    }
    if only_expected.is_empty() && only_actual.is_empty() {
        description.push_str("\n    same events in another order");
    }
    description
}
