//! `logbook demo`: fills an account with a believable six-week history of a small team, written
//! straight into the store, so a newcomer has something real to search. The story: five people log
//! in from the office and from home during working hours, change firewall rules, DNS records and
//! SSH keys, create, reboot and delete servers, and a CI key calls the API; one night someone logs
//! in to Dmitri's account from an address nobody has used before, after failed attempts, adds an
//! SSH key and opens SSH to the world. The same `--seed` on the same day writes the same history.

use std::net::IpAddr;

use anyhow::{Context, Result, anyhow};
use logbook_core::event::{Actor, ActorType, Change, Outcome, Target};
use logbook_core::store::AppendOutcome;
use logbook_core::{AccountId, Clock, NewEvent, StoreError, SystemClock};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, Time, Weekday};

use crate::cli::DemoArgs;
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;

const HISTORY_DAYS: i64 = 42;
const APPEND_CHUNK: usize = 500;

struct Person {
    email: &'static str,
    name: &'static str,
    home_ip: &'static str,
    office_ip: &'static str,
    user_agent: &'static str,
    ssh_key_name: &'static str,
}

/// Documentation address ranges only (RFC 5737 / RFC 3849): 203.0.113.0/24 is the office,
/// 198.51.100.0/24 and 2001:db8::/32 are homes, 192.0.2.0/24 is the stranger.
const TEAM: [Person; 5] = [
    Person {
        email: "alice@example.com",
        name: "Alice Chen",
        home_ip: "198.51.100.23",
        office_ip: "203.0.113.10",
        user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        ssh_key_name: "alice@mbp",
    },
    Person {
        email: "bob@example.com",
        name: "Bob Martin",
        home_ip: "198.51.100.77",
        office_ip: "203.0.113.10",
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        ssh_key_name: "bob@workstation",
    },
    Person {
        email: "carla@example.com",
        name: "Carla Diaz",
        home_ip: "2001:db8:4a::17",
        office_ip: "203.0.113.10",
        user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        ssh_key_name: "carla@thinkpad",
    },
    Person {
        email: "dmitri@example.com",
        name: "Dmitri Ivanov",
        home_ip: "198.51.100.140",
        office_ip: "203.0.113.11",
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        ssh_key_name: "dmitri@desktop",
    },
    Person {
        email: "erin@example.com",
        name: "Erin O'Brien",
        home_ip: "198.51.100.201",
        office_ip: "203.0.113.11",
        user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        ssh_key_name: "erin@ipad",
    },
];

const STRANGER_IP: &str = "192.0.2.66";
const STRANGER_USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/115.0";
const CI_KEY_IP: &str = "203.0.113.200";
const CI_USER_AGENT: &str =
    "terraform-provider-cloud/2.34.1 (+https://www.terraform.io) Terraform/1.8.5";
const REGIONS: [&str; 4] = ["fra1", "ams3", "nyc3", "sgp1"];
const SIZES: [&str; 4] = ["s-1vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "m-2vcpu-16gb"];
const DNS_RECORDS: [(&str, &str); 5] = [
    ("A", "www.example.com"),
    ("A", "api.example.com"),
    ("CNAME", "status.example.com"),
    ("MX", "example.com"),
    ("TXT", "example.com"),
];
const CI_CALLS: [(&str, &str, &str); 5] = [
    ("GET", "/v2/servers", "listed servers"),
    (
        "GET",
        "/v2/domains/example.com/records",
        "listed DNS records",
    ),
    ("POST", "/v2/volumes/snapshots", "created a volume snapshot"),
    ("GET", "/v2/firewalls", "listed firewalls"),
    ("GET", "/v2/account", "read account details"),
];

pub async fn run(config: &Config, arguments: &DemoArgs) -> Result<()> {
    let account = AccountId::parse(&arguments.account)
        .map_err(|error| anyhow!("invalid account name {:?}: {error}", arguments.account))?;
    let now = SystemClock.now();
    let events = generate_history(&account, arguments.events, arguments.seed, now);
    let (Some(first), Some(last)) = (
        events.first().map(|event| event.created_at),
        events.last().map(|event| event.created_at),
    ) else {
        eprintln!("Nothing to write: --events is 0.");
        return Ok(());
    };

    let store = open_store(config, CreateDatabase::IfMissing)?;
    let written = write_events(store.as_ref(), &account, events, now).await;
    let demo_owner = match &written {
        Ok(_) => create_demo_owner(store.as_ref(), &account, now).await,
        Err(_) => Ok(None),
    };
    store.shutdown().await;
    let (stored, already_there) = written?;

    println!("{stored}");
    eprintln!(
        "Wrote {stored} demo events to account {account} ({already_there} were already there), from {} to {}.",
        first.date(),
        last.date()
    );
    eprintln!("To read them, serve the data directory and make a read key:");
    eprintln!("  logbook key create --account {account} --scope read");
    eprintln!("  LOGBOOK_KEY=<the key> logbook query 'ip:{STRANGER_IP}'");
    if let Some((email, password)) = demo_owner? {
        eprintln!(
            "To read them on the page, run `logbook serve` and sign in at http://{} as {email} with the password {password} (a demo owner; change it on the Security page).",
            config.listen
        );
    }
    Ok(())
}

/// A demo owner for the demo account, so its Activity Logs page can be opened at once: created
/// only while the account has nobody, with a random password returned to be printed once.
async fn create_demo_owner(
    store: &dyn logbook_core::Store,
    account: &AccountId,
    now: OffsetDateTime,
) -> Result<Option<(String, String)>> {
    if !store
        .people()
        .list_users(account)
        .await
        .context("could not read the demo account's people")?
        .is_empty()
    {
        return Ok(None);
    }
    let email = format!("owner@{account}.example");
    let password_bytes: [u8; 12] = rand::rng().random();
    let password: String = password_bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let to_hash = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || {
        logbook_server::web::password::hash_password_blocking(&to_hash)
    })
    .await?
    .map_err(|error| anyhow!("could not hash the demo owner's password: {error}"))?;
    let user_id_bytes: [u8; 10] = rand::rng().random();
    let user_id: String = user_id_bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    store
        .people()
        .create_user(logbook_core::people::NewUser {
            user_id: format!("usr_{user_id}").into(),
            account: account.clone(),
            email: email.clone(),
            role: logbook_core::people::Role::Owner,
            password_hash,
            created_at: now,
        })
        .await
        .context("could not create the demo owner")?;
    Ok(Some((email, password)))
}

async fn write_events(
    store: &dyn logbook_core::Store,
    account: &AccountId,
    mut events: Vec<NewEvent>,
    now: OffsetDateTime,
) -> Result<(usize, usize)> {
    match store.create_account(account, now).await {
        Ok(_) | Err(StoreError::AccountAlreadyExists(_)) => {}
        Err(error) => return Err(error).context("could not create the demo account"),
    }
    let (mut stored, mut already_there) = (0, 0);
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(APPEND_CHUNK));
        let outcomes = store
            .append_events(events)
            .await
            .context("could not write demo events")?;
        for outcome in outcomes {
            match outcome {
                AppendOutcome::Stored(_) => stored += 1,
                // Either the same history written earlier today, or an older run's: both mean
                // the demo data is already there.
                AppendOutcome::Duplicate(_)
                | AppendOutcome::KeyReusedWithDifferentContent { .. } => already_there += 1,
            }
        }
        events = rest;
    }
    Ok((stored, already_there))
}

/// The whole history, oldest first. Deterministic for a given seed and day: the history ends at
/// the start of `now`'s UTC day and each event's idempotency key names the seed and the day, so a
/// second run on the same day stores nothing new.
pub fn generate_history(
    account: &AccountId,
    event_count: usize,
    seed: u64,
    now: OffsetDateTime,
) -> Vec<NewEvent> {
    let mut random = StdRng::seed_from_u64(seed);
    let day_start = now
        .to_offset(time::UtcOffset::UTC)
        .replace_time(Time::MIDNIGHT);
    let mut generator = HistoryGenerator {
        account,
        random: &mut random,
        events: Vec::with_capacity(event_count),
        servers: vec![
            Server {
                id: "srv_4f1a9c".into(),
                name: "web-1".into(),
            },
            Server {
                id: "srv_7b22e0".into(),
                name: "web-2".into(),
            },
            Server {
                id: "srv_0c93d5".into(),
                name: "db-1".into(),
            },
            Server {
                id: "srv_e81f47".into(),
                name: "worker-1".into(),
            },
        ],
        next_server_number: 2,
        dns_values: DNS_RECORDS
            .iter()
            .enumerate()
            .map(|(index, _)| format!("203.0.113.{}", 50 + index))
            .collect(),
        firewall_sources: vec!["203.0.113.0/24".to_owned()],
        key_prefix: format!("demo-{seed}-{}", day_start.date()),
    };

    let incident_count = if event_count >= 20 { 8 } else { 0 };
    let mut moments: Vec<OffsetDateTime> = (0..event_count - incident_count)
        .map(|_| generator.working_moment(day_start))
        .collect();
    moments.sort();
    let incident_at = day_start - Duration::days(10) + Duration::hours(3) + Duration::minutes(12);
    let mut incident_written = incident_count == 0;
    for moment in moments {
        if !incident_written && moment > incident_at {
            generator.incident(incident_at);
            incident_written = true;
        }
        generator.ordinary_event(moment);
    }
    if !incident_written {
        generator.incident(incident_at);
    }
    generator.events.sort_by_key(|event| event.created_at);
    for (index, event) in generator.events.iter_mut().enumerate() {
        event.key = Some(format!("{}-{index}", generator.key_prefix));
    }
    generator.events
}

struct Server {
    id: String,
    name: String,
}

struct HistoryGenerator<'a> {
    account: &'a AccountId,
    random: &'a mut StdRng,
    events: Vec<NewEvent>,
    servers: Vec<Server>,
    next_server_number: u32,
    dns_values: Vec<String>,
    firewall_sources: Vec<String>,
    key_prefix: String,
}

/// What varies between events; the rest of a `NewEvent` is filled in by `push`.
struct Draft {
    action: &'static str,
    message: String,
    actor: Actor,
    ip: &'static str,
    user_agent: &'static str,
    outcome: Outcome,
    targets: Vec<Target>,
    changes: Vec<Change>,
    metadata: Value,
}

fn user(person: &Person) -> Actor {
    Actor {
        id: person.email.to_owned(),
        name: Some(person.name.to_owned()),
        actor_type: Some(ActorType::User),
    }
}

fn target(target_type: &str, id: &str, name: &str) -> Target {
    Target {
        target_type: target_type.to_owned(),
        id: id.to_owned(),
        name: Some(name.to_owned()),
    }
}

fn change(field: &str, old: Option<Value>, new: Option<Value>) -> Change {
    Change {
        field: field.to_owned(),
        old,
        new,
    }
}

impl HistoryGenerator<'_> {
    /// A moment in the last six weeks, mostly on weekdays between 08:00 and 19:00 UTC.
    fn working_moment(&mut self, day_start: OffsetDateTime) -> OffsetDateTime {
        loop {
            let day = day_start - Duration::days(self.random.random_range(1..=HISTORY_DAYS));
            let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
            if weekend && self.random.random_bool(0.9) {
                continue;
            }
            let seconds_into_day = self.random.random_range(8 * 3600..19 * 3600);
            let millis = self.random.random_range(0..1000);
            return day + Duration::seconds(seconds_into_day) + Duration::milliseconds(millis);
        }
    }

    fn push(&mut self, at: OffsetDateTime, draft: Draft) {
        let received_at = at + Duration::milliseconds(self.random.random_range(40..900));
        let random_bits: [u8; 10] = self.random.random();
        // From the seeded generator like everything else here, so the same seed writes the same
        // history (a demo's salts keep nothing secret).
        let salt = logbook_core::personal_data::EventSalt::from_bytes(self.random.random());
        let millis = u64::try_from(received_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let id = uuid::Builder::from_unix_timestamp_millis(millis, &random_bits)
            .into_uuid()
            .to_string();
        let metadata = match draft.metadata {
            Value::Object(map) if !map.is_empty() => Some(map),
            _ => None,
        };
        self.events.push(NewEvent {
            id: id.into(),
            account: self.account.clone(),
            received_at,
            created_at: at,
            created_at_was_sent: true,
            action: draft.action.to_owned(),
            message: draft.message,
            actor: Some(draft.actor),
            ip: Some(
                draft
                    .ip
                    .parse::<IpAddr>()
                    .expect("demo addresses are valid"),
            ),
            user_agent: Some(draft.user_agent.to_owned()),
            outcome: Some(draft.outcome),
            targets: draft.targets,
            changes: draft.changes,
            metadata,
            key: None,
            salt,
        });
    }

    fn someone(&mut self) -> (&'static Person, &'static str) {
        let person = TEAM.choose(self.random).expect("the team is not empty");
        let ip = if self.random.random_bool(0.7) {
            person.office_ip
        } else {
            person.home_ip
        };
        (person, ip)
    }

    fn ordinary_event(&mut self, at: OffsetDateTime) {
        let roll = self.random.random_range(0..100);
        let (person, ip) = self.someone();
        let draft = match roll {
            0..=27 => self.login(person, ip),
            28..=31 => self.failed_login(person, ip, "wrong_password"),
            32..=37 => Draft {
                action: "user.logout",
                message: format!("{} logged out", person.name),
                actor: user(person),
                ip,
                user_agent: person.user_agent,
                outcome: Outcome::Success,
                targets: vec![],
                changes: vec![],
                metadata: json!({}),
            },
            38..=47 => self.server_reboot(person, ip),
            48..=52 => self.server_create(person, ip),
            53..=55 => self.server_delete(person, ip),
            56..=60 => self.firewall_update(person, ip),
            61..=68 => self.dns_update(person, ip),
            69..=70 => self.ssh_key_add(person, ip, person.ssh_key_name),
            _ => self.ci_key_use(),
        };
        self.push(at, draft);
    }

    fn login(&mut self, person: &'static Person, ip: &'static str) -> Draft {
        let method = if self.random.random_bool(0.8) {
            "password+totp"
        } else {
            "sso"
        };
        Draft {
            action: "user.login",
            message: format!("{} logged in", person.name),
            actor: user(person),
            ip,
            user_agent: person.user_agent,
            outcome: Outcome::Success,
            targets: vec![],
            changes: vec![],
            metadata: json!({"method": method}),
        }
    }

    fn failed_login(&mut self, person: &'static Person, ip: &'static str, reason: &str) -> Draft {
        Draft {
            action: "user.login",
            message: format!("Failed login for {}", person.email),
            actor: user(person),
            ip,
            user_agent: if ip == STRANGER_IP {
                STRANGER_USER_AGENT
            } else {
                person.user_agent
            },
            outcome: Outcome::Failure,
            targets: vec![],
            changes: vec![],
            metadata: json!({"reason": reason}),
        }
    }

    fn server_reboot(&mut self, person: &'static Person, ip: &'static str) -> Draft {
        let server = self
            .servers
            .choose(self.random)
            .expect("there is always a server");
        Draft {
            action: "server.reboot",
            message: format!("Rebooted server {}", server.name),
            actor: user(person),
            ip,
            user_agent: person.user_agent,
            outcome: Outcome::Success,
            targets: vec![target("server", &server.id, &server.name)],
            changes: vec![],
            metadata: json!({"kind": if self.random.random_bool(0.8) { "soft" } else { "hard" }}),
        }
    }

    fn server_create(&mut self, person: &'static Person, ip: &'static str) -> Draft {
        let name = format!("worker-{}", self.next_server_number);
        self.next_server_number += 1;
        let id = format!("srv_{:06x}", self.random.random_range(0..0x0100_0000u32));
        let region = *REGIONS.choose(self.random).expect("regions are listed");
        let size = *SIZES.choose(self.random).expect("sizes are listed");
        let draft = Draft {
            action: "server.create",
            message: format!("Created server {name} ({size}, {region})"),
            actor: user(person),
            ip,
            user_agent: person.user_agent,
            outcome: Outcome::Success,
            targets: vec![target("server", &id, &name)],
            changes: vec![],
            metadata: json!({"region": region, "size": size, "image": "ubuntu-24-04-x64"}),
        };
        self.servers.push(Server { id, name });
        draft
    }

    fn server_delete(&mut self, person: &'static Person, ip: &'static str) -> Draft {
        // The first three servers are the product; only workers come and go.
        if self.servers.len() <= 3 {
            return self.server_create(person, ip);
        }
        let index = self.random.random_range(3..self.servers.len());
        let server = self.servers.remove(index);
        Draft {
            action: "server.delete",
            message: format!("Deleted server {}", server.name),
            actor: user(person),
            ip,
            user_agent: person.user_agent,
            outcome: Outcome::Success,
            targets: vec![target("server", &server.id, &server.name)],
            changes: vec![],
            metadata: json!({}),
        }
    }

    fn firewall_update(&mut self, person: &'static Person, ip: &'static str) -> Draft {
        let old_sources = self.firewall_sources.clone();
        let prefix_length = if person.home_ip.contains(':') {
            128
        } else {
            32
        };
        let home = format!("{}/{prefix_length}", person.home_ip);
        if self.firewall_sources.contains(&home) {
            self.firewall_sources.retain(|source| source != &home);
        } else {
            self.firewall_sources.push(home);
        }
        Draft {
            action: "firewall.rule.update",
            message: "Updated firewall rule allow-ssh on office-firewall".to_owned(),
            actor: user(person),
            ip,
            user_agent: person.user_agent,
            outcome: Outcome::Success,
            targets: vec![target("firewall", "fw_31c8a2", "office-firewall")],
            changes: vec![change(
                "inbound_rules.allow-ssh.sources",
                Some(json!(old_sources)),
                Some(json!(self.firewall_sources)),
            )],
            metadata: json!({"rule": "allow-ssh", "port": 22, "protocol": "tcp"}),
        }
    }

    fn dns_update(&mut self, person: &'static Person, ip: &'static str) -> Draft {
        let index = self.random.random_range(0..DNS_RECORDS.len());
        let (record_type, name) = DNS_RECORDS[index];
        let old_value = self.dns_values[index].clone();
        let new_value = format!("203.0.113.{}", self.random.random_range(40..99));
        self.dns_values[index] = new_value.clone();
        let mut changes = vec![change(
            "data",
            Some(json!(old_value)),
            Some(json!(new_value)),
        )];
        if self.random.random_bool(0.3) {
            changes.push(change("ttl", Some(json!(3600)), Some(json!(300))));
        }
        Draft {
            action: "dns.record.update",
            message: format!("Updated DNS record {record_type} {name}"),
            actor: user(person),
            ip,
            user_agent: person.user_agent,
            outcome: Outcome::Success,
            targets: vec![target(
                "dns_record",
                &format!("rec_{index}_{record_type}").to_lowercase(),
                name,
            )],
            changes,
            metadata: json!({"zone": "example.com", "type": record_type}),
        }
    }

    fn ssh_key_add(&mut self, person: &'static Person, ip: &'static str, key_name: &str) -> Draft {
        let fingerprint_bytes: [u8; 16] = self.random.random();
        let fingerprint: String = fingerprint_bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let fingerprint = format!("SHA256:{fingerprint}");
        Draft {
            action: "ssh_key.add",
            message: format!("Added SSH key {key_name}"),
            actor: user(person),
            ip,
            user_agent: if ip == STRANGER_IP {
                STRANGER_USER_AGENT
            } else {
                person.user_agent
            },
            outcome: Outcome::Success,
            targets: vec![target(
                "ssh_key",
                &format!("ssh_{}", &fingerprint[7..15]),
                key_name,
            )],
            changes: vec![
                change("fingerprint", None, Some(json!(fingerprint))),
                change("name", None, Some(json!(key_name))),
            ],
            metadata: json!({"key_type": "ssh-ed25519"}),
        }
    }

    fn ci_key_use(&mut self) -> Draft {
        let (method, path, what) = *CI_CALLS.choose(self.random).expect("calls are listed");
        Draft {
            action: "api_key.use",
            message: format!("API key CI deploy {what}"),
            actor: Actor {
                id: "key_ci_deploy".to_owned(),
                name: Some("CI deploy".to_owned()),
                actor_type: Some(ActorType::ApiKey),
            },
            ip: CI_KEY_IP,
            user_agent: CI_USER_AGENT,
            outcome: Outcome::Success,
            targets: vec![],
            changes: vec![],
            metadata: json!({"method": method, "path": path, "status": if method == "POST" { 201 } else { 200 }}),
        }
    }

    /// The night someone else used Dmitri's account from an address the team never used.
    fn incident(&mut self, at: OffsetDateTime) {
        let dmitri = &TEAM[3];
        let mut moment = at;
        for _ in 0..3 {
            let draft = self.failed_login(dmitri, STRANGER_IP, "wrong_totp");
            self.push(moment, draft);
            moment += Duration::seconds(self.random.random_range(20..70));
        }
        let mut login = self.login(dmitri, STRANGER_IP);
        login.user_agent = STRANGER_USER_AGENT;
        login.metadata = json!({"method": "password+totp", "country": "unknown"});
        self.push(moment, login);
        moment += Duration::minutes(2);
        let key = self.ssh_key_add(dmitri, STRANGER_IP, "root@localhost");
        self.push(moment, key);
        moment += Duration::minutes(1);
        let old_sources = self.firewall_sources.clone();
        self.firewall_sources = vec!["0.0.0.0/0".to_owned()];
        self.push(
            moment,
            Draft {
                action: "firewall.rule.update",
                message: "Updated firewall rule allow-ssh on office-firewall".to_owned(),
                actor: user(dmitri),
                ip: STRANGER_IP,
                user_agent: STRANGER_USER_AGENT,
                outcome: Outcome::Success,
                targets: vec![target("firewall", "fw_31c8a2", "office-firewall")],
                changes: vec![change(
                    "inbound_rules.allow-ssh.sources",
                    Some(json!(old_sources)),
                    Some(json!(["0.0.0.0/0"])),
                )],
                metadata: json!({"rule": "allow-ssh", "port": 22, "protocol": "tcp"}),
            },
        );
        moment += Duration::minutes(3);
        let reboot = self.server_reboot(dmitri, STRANGER_IP);
        self.push(
            moment,
            Draft {
                user_agent: STRANGER_USER_AGENT,
                ..reboot
            },
        );
        moment += Duration::minutes(1);
        self.push(
            moment,
            Draft {
                action: "user.logout",
                message: format!("{} logged out", dmitri.name),
                actor: user(dmitri),
                ip: STRANGER_IP,
                user_agent: STRANGER_USER_AGENT,
                outcome: Outcome::Success,
                targets: vec![],
                changes: vec![],
                metadata: json!({}),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn history(seed: u64) -> Vec<NewEvent> {
        generate_history(
            &AccountId::parse("demo").unwrap(),
            600,
            seed,
            datetime!(2024-06-20 15:00:00 UTC),
        )
    }

    /// The demo's incident is what "Needs attention" exists for: the intruder fails from an
    /// address Dmitri never used, then succeeds from it and adds an SSH key. Failures do not make
    /// an address familiar, so the success is a new address and the key a finding.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_intruders_sign_in_from_a_new_address_then_an_ssh_key_needs_attention() {
        use logbook_core::Store;
        use logbook_core::attention::{AttentionSettings, AttentionState, FindingKind};
        let directory = tempfile::tempdir().unwrap();
        let store = logbook_store_sqlite::SqliteStore::open(
            &directory.path().join("logbook.db"),
            logbook_store_sqlite::SqliteOptions::default(),
        )
        .unwrap();
        store.append_events(history(1)).await.unwrap();
        let rows = store
            .events_since(&AccountId::parse("demo").unwrap(), 0, 10_000)
            .await
            .unwrap();
        let settings = AttentionSettings::default();
        let mut state = AttentionState::default();
        let mut findings = Vec::new();
        for row in &rows {
            let event = row.decode().unwrap();
            if event.ip == Some(STRANGER_IP.parse().unwrap())
                && event.action == "user.login"
                && event.outcome == Some(Outcome::Success)
            {
                assert!(event.new_ip, "the intruder's success is from a new address");
            }
            findings.extend(state.observe(&settings, &event));
        }
        assert!(
            findings.iter().any(|finding| {
                finding.kind == FindingKind::SensitiveChangeAfterNewIpLogin
                    && finding.title.contains(STRANGER_IP)
                    && finding.title.contains("ssh_key.add")
            }),
            "{findings:#?}"
        );
    }

    #[test]
    fn the_same_seed_on_the_same_day_writes_the_same_history() {
        let (first, second) = (history(7), history(7));
        assert_eq!(first, second);
        assert_ne!(first, history(8));
    }

    #[test]
    fn the_history_is_six_weeks_of_the_promised_story() {
        let events = history(1);
        assert_eq!(events.len(), 600);
        assert!(
            events
                .windows(2)
                .all(|pair| pair[0].created_at <= pair[1].created_at)
        );
        assert!(events.first().unwrap().created_at >= datetime!(2024-05-09 00:00:00 UTC));
        assert!(events.last().unwrap().created_at < datetime!(2024-06-20 00:00:00 UTC));
        for action in [
            "user.login",
            "firewall.rule.update",
            "dns.record.update",
            "ssh_key.add",
            "server.create",
            "server.reboot",
            "server.delete",
            "api_key.use",
        ] {
            assert!(
                events.iter().any(|event| event.action == action),
                "no {action}"
            );
        }
        let stranger: IpAddr = STRANGER_IP.parse().unwrap();
        let from_stranger: Vec<&NewEvent> = events
            .iter()
            .filter(|event| event.ip == Some(stranger))
            .collect();
        assert_eq!(from_stranger.len(), 8);
        assert!(
            from_stranger.iter().any(
                |event| event.action == "user.login" && event.outcome == Some(Outcome::Failure)
            )
        );
        assert!(
            events
                .iter()
                .filter(|event| event.action.ends_with(".update"))
                .all(|event| !event.changes.is_empty())
        );
        let keys: std::collections::HashSet<_> = events
            .iter()
            .map(|event| event.key.clone().unwrap())
            .collect();
        assert_eq!(keys.len(), events.len());
    }
}
