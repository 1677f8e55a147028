//! The generated workload: realistic audit events for many accounts whose sizes follow a Zipf
//! law, each built deterministically from the seed and its index so that the HTTP load and the
//! SQLite baselines see exactly the same events. Everything here runs before any clock starts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use logbook_core::AccountId;
use logbook_core::event::{Actor, ActorType, Change, NewEvent, Outcome, Target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The word that appears in roughly one message in two thousand: the "rare word" query.
pub const RARE_WORD: &str = "quarantined";
/// Two words that each appear in a large share of messages: the "two common words" query.
pub const COMMON_WORDS: &str = "rebooted server";
/// The action of about one event in eight: the "common action" query.
pub const COMMON_ACTION: &str = "action:server.reboot";
/// The action of about one event in two thousand (the events of the rare word): the "rare action"
/// query.
pub const RARE_ACTION: &str = "action:server.quarantine";

/// How far back the generated history reaches: events are spread evenly over this span.
const HISTORY_DAYS: i64 = 180;

const FIRST_NAMES: &[&str] = &[
    "Alice", "Bob", "Carmen", "Dmitri", "Eve", "Farah", "Gustavo", "Hana", "Ivan", "Jonas",
    "Keiko", "Liam", "Maya", "Noah", "Olga", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma",
    "Viktor", "Wen", "Yusuf",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Garcia", "Novak", "Okafor", "Tanaka", "Muller", "Rossi", "Kowalski", "Haddad",
    "Larsen", "Fischer", "Silva", "Nguyen", "Petrov", "Moreau", "Jensen",
];
const COMPANY_WORDS: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "soylent",
    "wonka",
    "oscorp",
    "aperture",
    "massive",
    "nakatomi",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "cloudctl/2.31.0 (linux; amd64)",
    "terraform-provider-cloud/1.42.1",
    "python-requests/2.31.0",
];
const SERVER_ROLES: &[&str] = &["web", "api", "db", "cache", "worker", "queue", "edge"];
const SIZES: &[&str] = &["s-1vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "s-8vcpu-16gb"];
const DNS_TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX"];
const DNS_NAMES: &[&str] = &["api", "www", "mail", "status", "cdn", "vpn"];
const FIREWALL_RULES: &[&str] = &[
    "allow-ssh",
    "allow-https",
    "allow-postgres",
    "deny-all-inbound",
];
const REGIONS: &[&str] = &["fra1", "ams3", "nyc1", "sfo3", "sgp1", "lon1"];

/// The shape of the workload, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadShape {
    pub event_count: usize,
    pub account_count: usize,
    pub seed: u64,
    pub zipf_exponent: f64,
}

/// Who acts in one account and from where: drawn once per account so filters find real repeats.
struct AccountProfile {
    account: AccountId,
    domain: String,
    people: Vec<(String, String)>,
    ip_pool: Vec<IpAddr>,
    /// The account's fleet: (target id, server name). A real account has a bounded set of
    /// servers, so target ids repeat, as the `target:` index sees them in production.
    server_pool: Vec<(String, String)>,
    api_key_names: Vec<String>,
}

/// The whole generated data set: which account each event belongs to, and per-account profiles.
pub struct Workload {
    shape: WorkloadShape,
    account_of_event: Vec<u32>,
    profiles: Vec<AccountProfile>,
    history_start: OffsetDateTime,
    /// Time between two consecutive events of the history, in microseconds.
    spacing_micros: i64,
}

/// One event as a producer sends it (the wire shape of PRODUCT.md's event model).
#[derive(Serialize)]
struct WireEvent<'a> {
    account: &'a str,
    action: &'a str,
    message: &'a str,
    created_at: &'a str,
    actor: WireActor<'a>,
    ip: IpAddr,
    user_agent: &'a str,
    outcome: &'a str,
    #[serde(skip_serializing_if = "<[Target]>::is_empty")]
    targets: &'a [Target],
    #[serde(skip_serializing_if = "<[Change]>::is_empty")]
    changes: &'a [Change],
    metadata: &'a serde_json::Map<String, serde_json::Value>,
    key: &'a str,
}

#[derive(Serialize)]
struct WireActor<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    actor_type: &'a str,
}

/// One generated event in structured form; both its JSON and its `NewEvent` come from here.
pub struct GeneratedEvent {
    pub account: AccountId,
    pub action: &'static str,
    pub message: String,
    pub created_at: OffsetDateTime,
    pub actor_id: String,
    pub actor_name: String,
    pub actor_type: ActorType,
    pub ip: IpAddr,
    pub user_agent: &'static str,
    pub outcome: Outcome,
    pub targets: Vec<Target>,
    pub changes: Vec<Change>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub key: String,
}

impl Workload {
    pub fn generate(shape: WorkloadShape, now: OffsetDateTime) -> Self {
        let mut rng = StdRng::seed_from_u64(shape.seed);
        let zipf = Zipf::new(shape.account_count as f64, shape.zipf_exponent)
            .expect("valid Zipf parameters");
        let account_of_event: Vec<u32> = (0..shape.event_count)
            .map(|_| {
                let rank: f64 = zipf.sample(&mut rng);
                (rank as u32 - 1).min(shape.account_count as u32 - 1)
            })
            .collect();
        let mut events_per_account = vec![0usize; shape.account_count];
        for &account_index in &account_of_event {
            events_per_account[account_index as usize] += 1;
        }
        let profiles = (0..shape.account_count)
            .map(|account_index| {
                Self::profile(&mut rng, account_index, events_per_account[account_index])
            })
            .collect();
        let history = time::Duration::days(HISTORY_DAYS);
        let spacing_micros =
            (history.whole_microseconds() as i64 / shape.event_count.max(1) as i64).max(1);
        Self {
            shape,
            account_of_event,
            profiles,
            history_start: now - history,
            spacing_micros,
        }
    }

    fn profile(rng: &mut StdRng, account_index: usize, event_count: usize) -> AccountProfile {
        let company = COMPANY_WORDS[account_index % COMPANY_WORDS.len()];
        let account = AccountId::parse(&format!("{company}-{account_index:04}"))
            .expect("generated account ids are valid");
        let domain = format!("{company}{account_index}.example");
        // Bigger accounts have bigger teams and more places they work from, as real ones do.
        let people_count = (3 + event_count / 2000).min(60);
        let people = (0..people_count)
            .map(|_| {
                let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
                let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
                let email = format!(
                    "{}.{}{}@{domain}",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    rng.random_range(1..100)
                );
                (email, format!("{first} {last}"))
            })
            .collect();
        let ip_count = (2 + event_count / 4000).min(48);
        let ip_pool = (0..ip_count)
            .map(|_| {
                if rng.random_bool(0.2) {
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        rng.random(),
                        rng.random(),
                        0,
                        0,
                        0,
                        rng.random_range(1..0xffff),
                    ))
                } else {
                    IpAddr::V4(Ipv4Addr::new(
                        rng.random_range(11..223),
                        rng.random(),
                        rng.random(),
                        rng.random_range(1..255),
                    ))
                }
            })
            .collect();
        // 20 servers for the smallest accounts, up to 200 for the largest.
        let server_count = (20 + event_count / 1000).min(200);
        let server_pool = (0..server_count)
            .map(|_| {
                let server_name = format!(
                    "{}-{}",
                    SERVER_ROLES[rng.random_range(0..SERVER_ROLES.len())],
                    rng.random_range(1..40)
                );
                (format!("srv-{:08x}", rng.random::<u32>()), server_name)
            })
            .collect();
        let api_key_names = ["ci-deploy", "terraform", "monitoring", "backup-job"]
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        AccountProfile {
            account,
            domain,
            people,
            ip_pool,
            server_pool,
            api_key_names,
        }
    }

    pub fn event_count(&self) -> usize {
        self.account_of_event.len()
    }

    pub fn accounts(&self) -> impl Iterator<Item = &AccountId> {
        self.profiles.iter().map(|profile| &profile.account)
    }

    /// The account with the most events, and how many it has.
    pub fn largest_account(&self) -> (AccountId, usize) {
        let mut counts = vec![0usize; self.profiles.len()];
        for &account_index in &self.account_of_event {
            counts[account_index as usize] += 1;
        }
        let (index, count) = counts
            .iter()
            .enumerate()
            .max_by_key(|(_, count)| **count)
            .expect("at least one account");
        (self.profiles[index].account.clone(), *count)
    }

    /// An actor id and an IP address that occur in the given account (for the filter queries).
    pub fn sample_actor_and_ip(&self, account: &AccountId) -> (String, IpAddr) {
        let profile = self
            .profiles
            .iter()
            .find(|profile| &profile.account == account)
            .expect("known account");
        (
            profile.people[0].0.clone(),
            profile.ip_pool[profile.ip_pool.len() / 2],
        )
    }

    /// The id of one server of `account`, the target of its server events (about one in three
    /// of the account's events, spread over up to 200 servers).
    pub fn sample_server_target(&self, account: &AccountId) -> String {
        let profile = self
            .profiles
            .iter()
            .find(|profile| &profile.account == account)
            .expect("known account");
        profile.server_pool[profile.server_pool.len() / 2].0.clone()
    }

    /// Builds event `index`. The same index always yields the same event.
    pub fn event(&self, index: usize) -> GeneratedEvent {
        let mut rng = StdRng::seed_from_u64(
            self.shape.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let profile = &self.profiles[self.account_of_event[index] as usize];
        let jitter = rng.random_range(0..self.spacing_micros.max(2));
        let created_at = self.history_start
            + time::Duration::microseconds(self.spacing_micros * index as i64 + jitter);
        let (email, name) = &profile.people[rng.random_range(0..profile.people.len())];
        let ip = profile.ip_pool[rng.random_range(0..profile.ip_pool.len())];
        let (server_id, server_name) =
            &profile.server_pool[rng.random_range(0..profile.server_pool.len())];
        let server_name = server_name.clone();
        let server_target = |server_name: &str, _rng: &mut StdRng| Target {
            target_type: "server".into(),
            id: server_id.clone(),
            name: Some(server_name.to_owned()),
        };
        let mut actor_id = email.clone();
        let mut actor_name = name.clone();
        let mut actor_type = ActorType::User;
        let mut outcome = Outcome::Success;
        let mut targets = Vec::new();
        let mut changes = Vec::new();
        let mut metadata = serde_json::Map::new();
        let roll = rng.random_range(0..10_000u32);
        let (action, message) = match roll {
            // One in two thousand: the rare word.
            0..5 => {
                targets.push(server_target(&server_name, &mut rng));
                metadata.insert("alert".into(), "file-integrity".into());
                (
                    "server.quarantine",
                    format!("Quarantined server {server_name} after an integrity alert"),
                )
            }
            5..2500 => {
                metadata.insert(
                    "method".into(),
                    if rng.random_bool(0.7) {
                        "password+totp"
                    } else {
                        "sso"
                    }
                    .into(),
                );
                ("user.login", format!("{name} logged in"))
            }
            2500..3000 => {
                outcome = Outcome::Failure;
                metadata.insert("reason".into(), "invalid_password".into());
                ("user.login", format!("Failed login for {email}"))
            }
            3000..4300 => {
                targets.push(server_target(&server_name, &mut rng));
                ("server.reboot", format!("Rebooted server {server_name}"))
            }
            4300..5100 => {
                targets.push(server_target(&server_name, &mut rng));
                let region = REGIONS[rng.random_range(0..REGIONS.len())];
                metadata.insert("region".into(), region.into());
                (
                    "server.create",
                    format!("Created server {server_name} in {region}"),
                )
            }
            5100..5500 => {
                targets.push(server_target(&server_name, &mut rng));
                ("server.delete", format!("Deleted server {server_name}"))
            }
            5500..5900 => {
                targets.push(server_target(&server_name, &mut rng));
                let from = SIZES[rng.random_range(0..SIZES.len() - 1)];
                let to = SIZES[SIZES.len() - 1];
                changes.push(Change {
                    field: "size".into(),
                    old: Some(from.into()),
                    new: Some(to.into()),
                });
                (
                    "server.resize",
                    format!("Resized server {server_name} from {from} to {to}"),
                )
            }
            5900..6700 => {
                let rule = FIREWALL_RULES[rng.random_range(0..FIREWALL_RULES.len())];
                targets.push(Target {
                    target_type: "firewall".into(),
                    id: format!("fw-{}", rng.random_range(1..9)),
                    name: Some("fw-prod".into()),
                });
                changes.push(Change {
                    field: format!("rules.{rule}.ports"),
                    old: Some(serde_json::json!([22])),
                    new: Some(serde_json::json!([22, 2222])),
                });
                (
                    "firewall.rule.update",
                    format!("Updated firewall rule {rule} on fw-prod"),
                )
            }
            6700..7500 => {
                let record_type = DNS_TYPES[rng.random_range(0..DNS_TYPES.len())];
                let record_name = DNS_NAMES[rng.random_range(0..DNS_NAMES.len())];
                let domain = &profile.domain;
                targets.push(Target {
                    target_type: "dns_record".into(),
                    id: format!("{record_name}.{domain}"),
                    name: None,
                });
                (
                    "dns.record.create",
                    format!("Created DNS record {record_type} {record_name}.{domain}"),
                )
            }
            7500..8000 => {
                let key_name = format!("laptop-{}", rng.random_range(2019..2026));
                targets.push(Target {
                    target_type: "ssh_key".into(),
                    id: format!("sshkey-{}", rng.random::<u16>()),
                    name: Some(key_name.clone()),
                });
                (
                    "ssh_key.create",
                    format!("Added SSH key {key_name} for {name}"),
                )
            }
            8000..9200 => {
                let key_name =
                    &profile.api_key_names[rng.random_range(0..profile.api_key_names.len())];
                actor_id = format!("key_{key_name}");
                actor_name = key_name.clone();
                actor_type = ActorType::ApiKey;
                metadata.insert("endpoint".into(), "GET /v2/servers".into());
                ("api_key.use", format!("API key {key_name} listed servers"))
            }
            9200..9600 => {
                actor_id = "system".into();
                actor_name = "Scheduler".into();
                actor_type = ActorType::System;
                targets.push(Target {
                    target_type: "database".into(),
                    id: "db-main".into(),
                    name: Some("db-main".into()),
                });
                ("database.backup", "Backed up database db-main".to_owned())
            }
            _ => {
                let volume = format!("vol-{}", rng.random_range(1..60));
                targets.push(Target {
                    target_type: "volume".into(),
                    id: volume.clone(),
                    name: None,
                });
                targets.push(server_target(&server_name, &mut rng));
                (
                    "volume.attach",
                    format!("Attached volume {volume} to server {server_name}"),
                )
            }
        };
        GeneratedEvent {
            account: profile.account.clone(),
            action,
            message,
            created_at,
            actor_id,
            actor_name,
            actor_type,
            ip,
            user_agent: USER_AGENTS[rng.random_range(0..USER_AGENTS.len())],
            outcome,
            targets,
            changes,
            metadata,
            key: format!("evt-{:x}-{index:08}", self.shape.seed),
        }
    }
}

impl GeneratedEvent {
    /// Appends the event's wire JSON to `out`, naming its account (the platform key needs it).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let created_at = self
            .created_at
            .format(&Rfc3339)
            .expect("RFC 3339 formats every generated time");
        let wire = WireEvent {
            account: self.account.as_str(),
            action: self.action,
            message: &self.message,
            created_at: &created_at,
            actor: WireActor {
                id: &self.actor_id,
                name: &self.actor_name,
                actor_type: match self.actor_type {
                    ActorType::User => "user",
                    ActorType::ApiKey => "api_key",
                    ActorType::System => "system",
                },
            },
            ip: self.ip,
            user_agent: self.user_agent,
            outcome: self.outcome.as_str(),
            targets: &self.targets,
            changes: &self.changes,
            metadata: &self.metadata,
            key: &self.key,
        };
        serde_json::to_writer(out, &wire).expect("generated events always serialize");
    }

    /// The validated form the store receives, for the baselines (which skip HTTP and validation).
    pub fn into_new_event(self, id: String, received_at: OffsetDateTime) -> NewEvent {
        NewEvent {
            id: id.into(),
            account: self.account,
            received_at,
            created_at: self.created_at,
            created_at_was_sent: true,
            action: self.action.to_owned(),
            message: self.message,
            actor: Some(Actor {
                id: self.actor_id,
                name: Some(self.actor_name),
                actor_type: Some(self.actor_type),
            }),
            ip: Some(self.ip),
            user_agent: Some(self.user_agent.to_owned()),
            outcome: Some(self.outcome),
            targets: self.targets,
            changes: self.changes,
            metadata: Some(self.metadata),
            key: Some(self.key),
            salt: logbook_core::personal_data::EventSalt::random(),
        }
    }
}
