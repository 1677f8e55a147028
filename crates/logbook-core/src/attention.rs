//! "Needs attention": pure detectors that read an account's events in `seq` order and report the
//! patterns worth a person's look (issue 6), plus `AttentionStore`, the part of the `Store` that
//! keeps what they found, which of it was dismissed, and how far each account has been read.
//!
//! The six patterns, each with settings in `AttentionSettings`:
//! 1. a burst of failed logins for one actor or from one IP address;
//! 2. a login from an IP address new for its actor (`new_ip`), followed within an hour by the same
//!    actor creating a key, inviting a member or changing a role;
//! 3. activity by a person at an hour of the day (UTC) at which they have never been active, once
//!    they have been active on enough distinct days for "never" to mean something;
//! 4. many deletions by one actor in a short time;
//! 5. impossible travel: two successful logins of one actor whose places (the events' locations,
//!    issue 19) are farther apart than anyone could travel in the time between them, at
//!    `impossible_travel_speed_kmh`. The distance is the great circle between the coordinates
//!    minus both accuracy radii, so two fuzzy locations that could be the same place never fire,
//!    and logins without coordinates are not compared;
//! 6. a login from a country new for its actor (`new_country`), followed within the same window
//!    as pattern 2 by the same actor doing a sensitive action (the same list as pattern 2).
//!
//! Every finding names the query (in Logbook's query language, canonical text) that shows its
//! evidence, so the page links straight to the search. Times are the events' `created_at`, the
//! time the activity happened as its producer reported it.
//!
//! A detector fires once per episode, not once per event: after a burst fires, further matching
//! events of the same actor or address belong to the same episode while each comes within the
//! window of the previous one. All detector state is in `AttentionState`, which serializes, so a
//! worker can save it with its cursor and resume after a restart exactly where it stopped.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::account::AccountId;
use crate::event::{ActorType, Outcome, StoredEvent, unix_micros};
use crate::query::{Clause, Condition, Query, TextPattern, TimeRange};

/// An action pattern of the detectors' settings: the action itself, where `*` stands for any run
/// of characters (`*.api_key.create`, `*.role*`). Matching is case-sensitive, like `action:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid action pattern {pattern:?}: {reason}")]
pub struct InvalidActionPattern {
    pub pattern: String,
    pub reason: &'static str,
}

impl ActionPattern {
    pub fn parse(text: &str) -> Result<Self, InvalidActionPattern> {
        let invalid = |reason| InvalidActionPattern {
            pattern: text.to_owned(),
            reason,
        };
        if text.is_empty() || text.chars().all(|character| character == '*') {
            return Err(invalid("it must name at least one character besides '*'"));
        }
        if text.len() > 256 {
            return Err(invalid("it is longer than 256 bytes"));
        }
        if text
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
        {
            return Err(invalid("it may not contain spaces or control characters"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, action: &str) -> bool {
        glob_matches(self.0.as_bytes(), action.as_bytes())
    }

    /// The same pattern as an `action:` value of the query language, when it can say it: an
    /// exact action or a trailing `*` (the query language has no `*` elsewhere).
    fn as_query_pattern(&self) -> Option<TextPattern> {
        match self.0.find('*') {
            None => Some(TextPattern::Exact(self.0.clone())),
            Some(position) if position == self.0.len() - 1 => {
                Some(TextPattern::Prefix(self.0[..position].to_owned()))
            }
            Some(_) => None,
        }
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// `*` matches any run of bytes (possibly empty); everything else matches itself. Iterative with
/// one backtrack point, so it is linear-ish and never recurses on hostile input.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut pattern_index, mut text_index) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while text_index < text.len() {
        if pattern_index < pattern.len() && pattern[pattern_index] == b'*' {
            last_star = Some((pattern_index, text_index));
            pattern_index += 1;
        } else if pattern_index < pattern.len() && pattern[pattern_index] == text[text_index] {
            pattern_index += 1;
            text_index += 1;
        } else if let Some((star_index, star_text_index)) = last_star {
            pattern_index = star_index + 1;
            text_index = star_text_index + 1;
            last_star = Some((star_index, star_text_index + 1));
        } else {
            return false;
        }
    }
    pattern[pattern_index..].iter().all(|&byte| byte == b'*')
}

fn patterns(texts: &[&str]) -> Vec<ActionPattern> {
    texts
        .iter()
        .map(|text| ActionPattern::parse(text).expect("built-in patterns are valid"))
        .collect()
}

/// What the detectors look for. `Default` holds the documented defaults (README, "Needs
/// attention").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionSettings {
    /// Login actions whose `outcome:failure` events count towards a failed-login burst.
    pub login_actions: Vec<ActionPattern>,
    /// This many failed logins ...
    pub failed_login_threshold: u32,
    /// ... within this long, for one actor or from one address, is a burst.
    pub failed_login_window: Duration,
    /// Key creation (API keys, and SSH keys added: the way in an intruder leaves for later),
    /// member invitation and role changes: what a login from a new address should not be
    /// followed by without someone noticing.
    pub sensitive_actions: Vec<ActionPattern>,
    /// How long after a login from a new address (or a new country) a sensitive action is
    /// reported.
    pub after_new_ip_login_window: Duration,
    /// Two successful logins of one actor farther apart than this speed allows (great-circle
    /// kilometres minus both accuracy radii, per hour between them) are impossible travel.
    pub impossible_travel_speed_kmh: u32,
    /// An actor's hours of activity mean something only after this many distinct active days.
    pub unusual_hour_minimum_active_days: u32,
    pub deletion_actions: Vec<ActionPattern>,
    /// This many deletions ...
    pub deletion_threshold: u32,
    /// ... by one actor within this long is a burst.
    pub deletion_window: Duration,
}

impl Default for AttentionSettings {
    fn default() -> Self {
        Self {
            login_actions: patterns(&["user.login", "logbook.login", "logbook.login_failed"]),
            failed_login_threshold: 5,
            failed_login_window: Duration::minutes(10),
            sensitive_actions: patterns(&[
                "*.api_key.create",
                "*ssh_key.add",
                "*.invite",
                "*.role*",
                "logbook.api_key.create",
                "logbook.member.invite",
                "logbook.member.role_change",
            ]),
            after_new_ip_login_window: Duration::hours(1),
            impossible_travel_speed_kmh: DEFAULT_IMPOSSIBLE_TRAVEL_SPEED_KMH,
            unusual_hour_minimum_active_days: 14,
            deletion_actions: patterns(&["*.delete*"]),
            deletion_threshold: 20,
            deletion_window: Duration::minutes(10),
        }
    }
}

/// The default speed beyond which two logins are impossible travel: about an airliner's.
pub const DEFAULT_IMPOSSIBLE_TRAVEL_SPEED_KMH: u32 = 900;

/// Which pattern a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    FailedLoginBurst,
    SensitiveChangeAfterNewIpLogin,
    UnusualHour,
    DeletionBurst,
    ImpossibleTravel,
    SensitiveChangeAfterNewCountryLogin,
}

impl FindingKind {
    pub const ALL: [FindingKind; 6] = [
        FindingKind::FailedLoginBurst,
        FindingKind::SensitiveChangeAfterNewIpLogin,
        FindingKind::UnusualHour,
        FindingKind::DeletionBurst,
        FindingKind::ImpossibleTravel,
        FindingKind::SensitiveChangeAfterNewCountryLogin,
    ];

    /// The stable name stores keep.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::FailedLoginBurst => "failed_login_burst",
            FindingKind::SensitiveChangeAfterNewIpLogin => "sensitive_change_after_new_ip_login",
            FindingKind::UnusualHour => "unusual_hour",
            FindingKind::DeletionBurst => "deletion_burst",
            FindingKind::ImpossibleTravel => "impossible_travel",
            FindingKind::SensitiveChangeAfterNewCountryLogin => {
                "sensitive_change_after_new_country_login"
            }
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Who or what a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FindingSubject {
    /// An actor id (for people, their email).
    Actor(String),
    Ip(IpAddr),
}

impl FindingSubject {
    /// `"actor"` or `"ip"`, as stores keep it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            FindingSubject::Actor(_) => "actor",
            FindingSubject::Ip(_) => "ip",
        }
    }

    /// The actor id or the address as text, as stores keep it.
    pub fn value(&self) -> String {
        match self {
            FindingSubject::Actor(actor) => actor.clone(),
            FindingSubject::Ip(ip) => ip.to_string(),
        }
    }

    pub fn from_parts(kind_name: &str, value: &str) -> Option<Self> {
        match kind_name {
            "actor" => Some(FindingSubject::Actor(value.to_owned())),
            "ip" => value.parse().ok().map(FindingSubject::Ip),
            _ => None,
        }
    }

    pub fn actor(&self) -> Option<&str> {
        match self {
            FindingSubject::Actor(actor) => Some(actor),
            FindingSubject::Ip(_) => None,
        }
    }
}

/// One pattern found in an account's log. An episode is identified by its account, kind, subject
/// and `first_seq`, which depend only on the log, so two workers reading the same log name the
/// same episode the same way (stores keep one finding per identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub subject: FindingSubject,
    /// The first and last event of the evidence the detector saw when it fired.
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
    /// A short sentence for the page (plain text: the page escapes it).
    pub title: String,
    /// Canonical query-language text that shows the evidence on the Activity Logs page.
    pub evidence_query: String,
}

/// A finding as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    /// The store's id of the finding, unique across accounts.
    pub finding_id: i64,
    pub account: AccountId,
    pub finding: Finding,
    pub detected_at: OffsetDateTime,
    pub dismissal: Option<Dismissal>,
}

/// "This was me": who said so and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dismissal {
    pub dismissed_by: String,
    pub dismissed_at: OffsetDateTime,
}

/// How far a worker has read an account's log, and the detectors' state at that point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionProgress {
    /// The next `seq` to read.
    pub next_seq: u64,
    /// `AttentionState::to_bytes` after every event before `next_seq`.
    pub state: Vec<u8>,
}

/// Which findings of an account to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingFilter {
    /// Only findings about this actor (a member sees only what is about them).
    pub about_actor: Option<String>,
    pub include_dismissed: bool,
    /// At most this many, newest first.
    pub limit: u32,
}

// ---------------------------------------------------------------------------------------------
// Detector state.

/// Everything the detectors remember between events, for one account. Windows only hold events
/// still inside them; the per-actor hour record is 12 bytes of data per actor ever seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionState {
    #[serde(default)]
    failed_logins_by_actor: BTreeMap<String, BurstWindow>,
    #[serde(default)]
    failed_logins_by_ip: BTreeMap<String, BurstWindow>,
    #[serde(default)]
    deletions_by_actor: BTreeMap<String, BurstWindow>,
    /// The latest login from a new address of each actor, until its hour is over or it was
    /// followed by a sensitive action (then it is reported once and forgotten).
    #[serde(default)]
    new_ip_logins_by_actor: BTreeMap<String, NewIpLogin>,
    #[serde(default)]
    activity_by_actor: BTreeMap<String, ActorActivity>,
    /// The latest successful login with coordinates of each actor, for impossible travel, until
    /// no login could be too far from it any more.
    #[serde(default)]
    located_logins_by_actor: BTreeMap<String, LocatedLogin>,
    /// Like `new_ip_logins_by_actor`, for logins from a new country.
    #[serde(default)]
    new_country_logins_by_actor: BTreeMap<String, NewCountryLogin>,
    /// The newest `created_at` seen, in microseconds: windows older than it are dropped.
    #[serde(default)]
    newest_event_micros: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct BurstWindow {
    /// `(seq, created_at micros)` of the matching events still inside the window.
    recent: VecDeque<(u64, i64)>,
    /// Set while an episode that already fired goes on: the time of its latest event.
    episode_last_micros: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NewIpLogin {
    seq: u64,
    at_micros: i64,
    ip: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NewCountryLogin {
    seq: u64,
    at_micros: i64,
    country_code: String,
}

/// Coordinates are kept in millionths of a degree, so the state stays `Eq` and serializes
/// exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LocatedLogin {
    seq: u64,
    at_micros: i64,
    latitude_micro_degrees: i64,
    longitude_micro_degrees: i64,
    accuracy_radius_km: u32,
    /// "Mumbai, IN" or the address, for the finding's sentence.
    place: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ActorActivity {
    /// Bit `h` set: the actor has been active during hour `h` (UTC) on some day.
    active_hours_utc: u32,
    /// Distinct UTC days with activity (a day counts when the actor's activity moves to it).
    active_day_count: u32,
    /// The latest UTC day of activity, as days since 1970-01-01.
    last_active_day: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("the saved attention state cannot be read: {0}")]
pub struct InvalidAttentionState(#[from] serde_json::Error);

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

impl AttentionState {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("attention state always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidAttentionState> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Feeds the next event of the account (in `seq` order) to every detector and returns what
    /// they found because of it.
    pub fn observe(&mut self, settings: &AttentionSettings, event: &StoredEvent) -> Vec<Finding> {
        let at_micros = unix_micros(event.created_at);
        let newest = self
            .newest_event_micros
            .map_or(at_micros, |newest| newest.max(at_micros));
        self.newest_event_micros = Some(newest);
        let mut findings = Vec::new();
        let actor_id = event.actor.as_ref().map(|actor| actor.id.as_str());

        let is_login = settings
            .login_actions
            .iter()
            .any(|pattern| pattern.matches(&event.action));
        if is_login && event.outcome == Some(Outcome::Failure) {
            findings.extend(self.observe_failed_login(settings, event, at_micros));
        }
        if let Some(actor_id) = actor_id {
            if is_login
                && event.outcome != Some(Outcome::Failure)
                && event.new_ip
                && let Some(ip) = event.ip
            {
                self.new_ip_logins_by_actor.insert(
                    actor_id.to_owned(),
                    NewIpLogin {
                        seq: event.seq,
                        at_micros,
                        ip: ip.to_string(),
                    },
                );
            }
            if is_login && event.outcome != Some(Outcome::Failure) {
                if event.new_country
                    && let Some(country_code) = event
                        .location
                        .as_ref()
                        .and_then(|location| location.country_code.clone())
                {
                    self.new_country_logins_by_actor.insert(
                        actor_id.to_owned(),
                        NewCountryLogin {
                            seq: event.seq,
                            at_micros,
                            country_code,
                        },
                    );
                }
                findings.extend(self.observe_located_login(settings, event, actor_id, at_micros));
            }
            let is_sensitive = settings
                .sensitive_actions
                .iter()
                .any(|pattern| pattern.matches(&event.action));
            if is_sensitive {
                findings
                    .extend(self.observe_sensitive_action(settings, event, actor_id, at_micros));
                findings.extend(self.observe_sensitive_action_after_new_country(
                    settings, event, actor_id, at_micros,
                ));
            }
            let is_deletion = settings
                .deletion_actions
                .iter()
                .any(|pattern| pattern.matches(&event.action));
            if is_deletion {
                let window = self
                    .deletions_by_actor
                    .entry(actor_id.to_owned())
                    .or_default();
                if let Some((first_seq, first_micros)) = window.observe(
                    event.seq,
                    at_micros,
                    settings.deletion_window,
                    settings.deletion_threshold,
                ) {
                    let count = window.recent.len();
                    let range = (first_micros, at_micros);
                    findings.push(Finding {
                        kind: FindingKind::DeletionBurst,
                        subject: FindingSubject::Actor(actor_id.to_owned()),
                        first_seq,
                        last_seq: event.seq,
                        first_at: time_of(first_micros),
                        last_at: event.created_at,
                        title: format!(
                            "{count} deletions by {actor_id} within {}",
                            describe_duration(settings.deletion_window)
                        ),
                        evidence_query: evidence_query(
                            Some(actor_id),
                            None,
                            &settings.deletion_actions,
                            false,
                            range,
                        ),
                    });
                }
            }
            let is_person = !matches!(
                event.actor.as_ref().and_then(|actor| actor.actor_type),
                Some(ActorType::ApiKey | ActorType::System)
            );
            if is_person {
                findings.extend(self.observe_activity_hour(settings, event, actor_id, at_micros));
            }
        }
        self.forget_expired(settings, newest);
        findings
    }

    fn observe_failed_login(
        &mut self,
        settings: &AttentionSettings,
        event: &StoredEvent,
        at_micros: i64,
    ) -> Option<Finding> {
        let window_length = settings.failed_login_window;
        let threshold = settings.failed_login_threshold;
        let actor_id = event.actor.as_ref().map(|actor| actor.id.clone());
        let by_actor = actor_id.as_ref().and_then(|actor_id| {
            let window = self
                .failed_logins_by_actor
                .entry(actor_id.clone())
                .or_default();
            window
                .observe(event.seq, at_micros, window_length, threshold)
                .map(|start| (start, window.recent.len()))
        });
        // The address's window is always fed, so its episode is open when the actor's fired for
        // the same attempts; one finding per burst is enough on the page, and the actor's says
        // more (an address is reported alone when its attempts spread over several actors).
        let by_ip = event.ip.and_then(|ip| {
            let window = self.failed_logins_by_ip.entry(ip.to_string()).or_default();
            window
                .observe(event.seq, at_micros, window_length, threshold)
                .map(|start| (ip, start, window.recent.len()))
        });
        if let (Some(actor_id), Some(((first_seq, first_micros), count))) = (actor_id, by_actor) {
            return Some(Finding {
                kind: FindingKind::FailedLoginBurst,
                subject: FindingSubject::Actor(actor_id.clone()),
                first_seq,
                last_seq: event.seq,
                first_at: time_of(first_micros),
                last_at: event.created_at,
                title: format!(
                    "{count} failed logins for {actor_id} within {}",
                    describe_duration(window_length)
                ),
                evidence_query: evidence_query(
                    Some(&actor_id),
                    None,
                    &settings.login_actions,
                    true,
                    (first_micros, at_micros),
                ),
            });
        }
        let (ip, (first_seq, first_micros), count) = by_ip?;
        Some(Finding {
            kind: FindingKind::FailedLoginBurst,
            subject: FindingSubject::Ip(ip),
            first_seq,
            last_seq: event.seq,
            first_at: time_of(first_micros),
            last_at: event.created_at,
            title: format!(
                "{count} failed logins from {ip} within {}",
                describe_duration(window_length)
            ),
            evidence_query: evidence_query(
                None,
                Some(ip),
                &settings.login_actions,
                true,
                (first_micros, at_micros),
            ),
        })
    }

    fn observe_sensitive_action(
        &mut self,
        settings: &AttentionSettings,
        event: &StoredEvent,
        actor_id: &str,
        at_micros: i64,
    ) -> Option<Finding> {
        let login = self.new_ip_logins_by_actor.get(actor_id)?;
        let elapsed = at_micros - login.at_micros;
        if elapsed < 0 || elapsed > micros_of(settings.after_new_ip_login_window) {
            return None;
        }
        // Reported once per login: later changes in the same hour are the same episode.
        let login = self.new_ip_logins_by_actor.remove(actor_id)?;
        Some(Finding {
            kind: FindingKind::SensitiveChangeAfterNewIpLogin,
            subject: FindingSubject::Actor(actor_id.to_owned()),
            first_seq: login.seq,
            last_seq: event.seq,
            first_at: time_of(login.at_micros),
            last_at: event.created_at,
            title: format!(
                "{actor_id} signed in from new address {} and then did {}",
                login.ip, event.action
            ),
            evidence_query: evidence_query(
                Some(actor_id),
                None,
                &[],
                false,
                (login.at_micros, at_micros),
            ),
        })
    }

    fn observe_sensitive_action_after_new_country(
        &mut self,
        settings: &AttentionSettings,
        event: &StoredEvent,
        actor_id: &str,
        at_micros: i64,
    ) -> Option<Finding> {
        let login = self.new_country_logins_by_actor.get(actor_id)?;
        let elapsed = at_micros - login.at_micros;
        if elapsed < 0 || elapsed > micros_of(settings.after_new_ip_login_window) {
            return None;
        }
        // Reported once per login, like a change after a login from a new address.
        let login = self.new_country_logins_by_actor.remove(actor_id)?;
        Some(Finding {
            kind: FindingKind::SensitiveChangeAfterNewCountryLogin,
            subject: FindingSubject::Actor(actor_id.to_owned()),
            first_seq: login.seq,
            last_seq: event.seq,
            first_at: time_of(login.at_micros),
            last_at: event.created_at,
            title: format!(
                "{actor_id} signed in from new country {} and then did {}",
                login.country_code, event.action
            ),
            evidence_query: evidence_query(
                Some(actor_id),
                None,
                &[],
                false,
                (login.at_micros, at_micros),
            ),
        })
    }

    /// Compares a successful login that has coordinates with the actor's previous one, and keeps
    /// it as the one the next is compared with.
    fn observe_located_login(
        &mut self,
        settings: &AttentionSettings,
        event: &StoredEvent,
        actor_id: &str,
        at_micros: i64,
    ) -> Option<Finding> {
        let location = event.location.as_ref()?;
        let (Some(latitude), Some(longitude)) = (location.latitude, location.longitude) else {
            return None;
        };
        if !(latitude.is_finite() && longitude.is_finite()) {
            return None;
        }
        let place = location
            .place()
            .or_else(|| event.ip.map(|ip| ip.to_string()))
            .unwrap_or_default();
        let login = LocatedLogin {
            seq: event.seq,
            at_micros,
            latitude_micro_degrees: (latitude * 1e6).round() as i64,
            longitude_micro_degrees: (longitude * 1e6).round() as i64,
            accuracy_radius_km: location.accuracy_radius_km.unwrap_or(0),
            place,
        };
        let previous = self
            .located_logins_by_actor
            .insert(actor_id.to_owned(), login.clone())?;
        let travel = Travel::between(&previous, &login);
        if !travel.is_impossible(settings.impossible_travel_speed_kmh) {
            return None;
        }
        let (first, last) = if previous.at_micros <= login.at_micros {
            (&previous, &login)
        } else {
            (&login, &previous)
        };
        Some(Finding {
            kind: FindingKind::ImpossibleTravel,
            subject: FindingSubject::Actor(actor_id.to_owned()),
            first_seq: previous.seq,
            last_seq: event.seq,
            first_at: time_of(first.at_micros),
            last_at: time_of(last.at_micros),
            title: format!(
                "{actor_id} signed in from {} and {} {} apart, about {:.0} km away",
                previous.place,
                login.place,
                describe_duration(Duration::microseconds(travel.elapsed_micros)),
                travel.distance_km,
            ),
            evidence_query: evidence_query(
                Some(actor_id),
                None,
                &settings.login_actions,
                false,
                (first.at_micros, last.at_micros),
            ),
        })
    }

    fn observe_activity_hour(
        &mut self,
        settings: &AttentionSettings,
        event: &StoredEvent,
        actor_id: &str,
        at_micros: i64,
    ) -> Option<Finding> {
        let day = at_micros.div_euclid(MICROS_PER_DAY);
        let hour = (at_micros.rem_euclid(MICROS_PER_DAY) / MICROS_PER_HOUR) as u32;
        let activity = self
            .activity_by_actor
            .entry(actor_id.to_owned())
            .or_insert_with(|| ActorActivity {
                active_hours_utc: 0,
                active_day_count: 0,
                last_active_day: day,
            });
        let enough_history = activity.active_day_count >= settings.unusual_hour_minimum_active_days;
        let hour_is_new = activity.active_hours_utc & (1 << hour) == 0;
        let active_day_count = activity.active_day_count;
        // Recording the hour makes the rest of it (and every later day's) ordinary: one finding
        // per new hour, not one per event.
        activity.active_hours_utc |= 1 << hour;
        if activity.active_day_count == 0 || day != activity.last_active_day {
            activity.active_day_count += 1;
            activity.last_active_day = day;
        }
        if !(enough_history && hour_is_new) {
            return None;
        }
        let hour_start = day * MICROS_PER_DAY + i64::from(hour) * MICROS_PER_HOUR;
        Some(Finding {
            kind: FindingKind::UnusualHour,
            subject: FindingSubject::Actor(actor_id.to_owned()),
            first_seq: event.seq,
            last_seq: event.seq,
            first_at: event.created_at,
            last_at: event.created_at,
            title: format!(
                "{actor_id} active between {hour:02}:00 and {hour:02}:59 UTC for the first time in {active_day_count} active days"
            ),
            evidence_query: evidence_query(
                Some(actor_id),
                None,
                &[],
                false,
                (hour_start, hour_start + MICROS_PER_HOUR - 1),
            ),
        })
    }

    /// Drops windows and pending logins that no event can extend any more, so the state holds
    /// only recent events (plus one hour record per actor).
    fn forget_expired(&mut self, settings: &AttentionSettings, newest_micros: i64) {
        let failed_login_cutoff = newest_micros - micros_of(settings.failed_login_window);
        let deletion_cutoff = newest_micros - micros_of(settings.deletion_window);
        for (windows, cutoff) in [
            (&mut self.failed_logins_by_actor, failed_login_cutoff),
            (&mut self.failed_logins_by_ip, failed_login_cutoff),
            (&mut self.deletions_by_actor, deletion_cutoff),
        ] {
            windows.retain(|_, window| {
                window.prune(cutoff);
                !window.recent.is_empty()
            });
        }
        let login_cutoff = newest_micros - micros_of(settings.after_new_ip_login_window);
        self.new_ip_logins_by_actor
            .retain(|_, login| login.at_micros >= login_cutoff);
        self.new_country_logins_by_actor
            .retain(|_, login| login.at_micros >= login_cutoff);
        // No two places on Earth are farther apart than half its circumference, so once that
        // takes longer than the speed allows, a login can never be impossible travel from this.
        let longest_possible_trip_micros = (HALF_EARTH_CIRCUMFERENCE_KM
            / f64::from(settings.impossible_travel_speed_kmh.max(1))
            * MICROS_PER_HOUR as f64) as i64;
        let travel_cutoff = newest_micros.saturating_sub(longest_possible_trip_micros);
        self.located_logins_by_actor
            .retain(|_, login| login.at_micros >= travel_cutoff);
    }
}

/// Mean radius of the Earth, in kilometres (IUGG).
const EARTH_RADIUS_KM: f64 = 6371.0088;
const HALF_EARTH_CIRCUMFERENCE_KM: f64 = std::f64::consts::PI * EARTH_RADIUS_KM;

/// Two located logins of one actor, as impossible travel sees them.
struct Travel {
    /// Great-circle distance between the two coordinates.
    distance_km: f64,
    /// The distance that is certain: minus both accuracy radii (never below zero).
    certain_distance_km: f64,
    elapsed_micros: i64,
}

impl Travel {
    fn between(first: &LocatedLogin, second: &LocatedLogin) -> Self {
        let distance_km = great_circle_km(
            (
                first.latitude_micro_degrees as f64 / 1e6,
                first.longitude_micro_degrees as f64 / 1e6,
            ),
            (
                second.latitude_micro_degrees as f64 / 1e6,
                second.longitude_micro_degrees as f64 / 1e6,
            ),
        );
        let radii = f64::from(first.accuracy_radius_km) + f64::from(second.accuracy_radius_km);
        Self {
            distance_km,
            certain_distance_km: (distance_km - radii).max(0.0),
            elapsed_micros: (second.at_micros - first.at_micros).abs(),
        }
    }

    /// Whether covering the certain distance in the elapsed time needs more than `speed_kmh`.
    /// Logins at the same instant are impossible whenever any distance is certain.
    fn is_impossible(&self, speed_kmh: u32) -> bool {
        if self.certain_distance_km <= 0.0 {
            return false;
        }
        let hours = self.elapsed_micros as f64 / MICROS_PER_HOUR as f64;
        self.certain_distance_km > f64::from(speed_kmh) * hours
    }
}

/// The haversine distance between two (latitude, longitude) points in degrees.
fn great_circle_km(first: (f64, f64), second: (f64, f64)) -> f64 {
    let (latitude_1, longitude_1) = (first.0.to_radians(), first.1.to_radians());
    let (latitude_2, longitude_2) = (second.0.to_radians(), second.1.to_radians());
    let half_chord = ((latitude_2 - latitude_1) / 2.0).sin().powi(2)
        + latitude_1.cos() * latitude_2.cos() * ((longitude_2 - longitude_1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * half_chord.sqrt().min(1.0).asin()
}

impl BurstWindow {
    /// Adds one matching event; returns the first `(seq, micros)` of the window when this event
    /// starts a new episode by reaching the threshold.
    fn observe(
        &mut self,
        seq: u64,
        at_micros: i64,
        window_length: Duration,
        threshold: u32,
    ) -> Option<(u64, i64)> {
        let window_micros = micros_of(window_length);
        if let Some(episode_last) = self.episode_last_micros {
            if at_micros - episode_last <= window_micros {
                // The episode goes on: remember it reached this far, report nothing new.
                self.episode_last_micros = Some(episode_last.max(at_micros));
                self.recent.push_back((seq, at_micros));
                self.prune(at_micros - window_micros);
                return None;
            }
            self.episode_last_micros = None;
        }
        self.recent.push_back((seq, at_micros));
        self.prune(at_micros - window_micros);
        let in_window: Vec<&(u64, i64)> = self
            .recent
            .iter()
            .filter(|(_, micros)| *micros >= at_micros - window_micros && *micros <= at_micros)
            .collect();
        if in_window.len() < threshold.max(1) as usize {
            return None;
        }
        let first = in_window
            .iter()
            .min_by_key(|(seq, micros)| (*micros, *seq))
            .map(|entry| **entry)?;
        self.episode_last_micros = Some(at_micros);
        Some(first)
    }

    /// Forgets events before `cutoff_micros`; an episode whose latest event is before it is over.
    fn prune(&mut self, cutoff_micros: i64) {
        self.recent.retain(|(_, micros)| *micros >= cutoff_micros);
        if self
            .episode_last_micros
            .is_some_and(|episode_last| episode_last < cutoff_micros)
        {
            self.episode_last_micros = None;
        }
    }
}

fn micros_of(duration: Duration) -> i64 {
    i64::try_from(duration.whole_microseconds()).unwrap_or(i64::MAX)
}

fn time_of(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn describe_duration(duration: Duration) -> String {
    let minutes = duration.whole_minutes();
    if minutes >= 60 && minutes % 60 == 0 {
        let hours = minutes / 60;
        if hours == 1 {
            "1 hour".to_owned()
        } else {
            format!("{hours} hours")
        }
    } else if minutes == 1 {
        "1 minute".to_owned()
    } else if minutes > 0 {
        format!("{minutes} minutes")
    } else {
        format!("{} seconds", duration.whole_seconds())
    }
}

/// The query that shows a finding's evidence: the subject, the actions when the query language
/// can name them all, failures only for logins, and the time range, both ends included. Built as
/// a `Query` and printed canonically, so hostile actor ids are quoted, never query syntax.
fn evidence_query(
    actor: Option<&str>,
    ip: Option<IpAddr>,
    actions: &[ActionPattern],
    failures_only: bool,
    (first_micros, last_micros): (i64, i64),
) -> String {
    let clause = |condition| Clause {
        negated: false,
        condition,
        span: 0..0,
    };
    let mut clauses = Vec::new();
    if let Some(actor) = actor {
        clauses.push(clause(Condition::Actor(vec![TextPattern::Exact(
            actor.to_owned(),
        )])));
    }
    if let Some(ip) = ip {
        clauses.push(clause(Condition::Ip(vec![ipnet::IpNet::from(ip)])));
    }
    let action_patterns: Option<Vec<TextPattern>> = actions
        .iter()
        .map(ActionPattern::as_query_pattern)
        .collect();
    if let Some(action_patterns) = action_patterns.filter(|patterns| !patterns.is_empty()) {
        clauses.push(clause(Condition::Action(action_patterns)));
    }
    if failures_only {
        clauses.push(clause(Condition::Outcome(vec![Outcome::Failure])));
    }
    clauses.push(clause(Condition::Created(TimeRange {
        start_inclusive: Some(time_of(first_micros)),
        end_exclusive: Some(time_of(last_micros + 1)),
    })));
    Query { clauses }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Actor;
    use time::macros::datetime;

    struct ScriptedLog {
        next_seq: u64,
        state: AttentionState,
        settings: AttentionSettings,
        findings: Vec<Finding>,
    }

    impl ScriptedLog {
        fn new() -> Self {
            Self {
                next_seq: 0,
                state: AttentionState::default(),
                settings: AttentionSettings::default(),
                findings: Vec::new(),
            }
        }

        /// Appends one event and returns what it triggered. The state goes through its saved
        /// form on every event, as it would across worker restarts.
        fn append(&mut self, event: ScriptedEvent) -> Vec<Finding> {
            let stored = StoredEvent {
                seq: self.next_seq,
                id: format!("event-{}", self.next_seq).into(),
                account: AccountId::parse("acme").unwrap(),
                created_at: event.at,
                received_at: event.at,
                action: event.action.to_owned(),
                message: event.message.to_owned(),
                actor: event.actor.map(|id| Actor {
                    id: id.to_owned(),
                    name: None,
                    actor_type: event.actor_type,
                }),
                ip: event.ip.map(|ip| ip.parse().unwrap()),
                user_agent: None,
                outcome: event.outcome,
                targets: Vec::new(),
                changes: Vec::new(),
                metadata: None,
                key: None,
                ip_network: None,
                leaf_version: None,
                salt: None,
                salts: None,
                removed: Vec::new(),
                removed_commitments: None,
                location: event.location.clone(),
                new_ip: event.new_ip,
                new_network: false,
                new_country: event.new_country,
            };
            self.next_seq += 1;
            let found = self.state.observe(&self.settings, &stored);
            self.state = AttentionState::from_bytes(&self.state.to_bytes()).unwrap();
            self.findings.extend(found.clone());
            found
        }
    }

    #[derive(Clone)]
    struct ScriptedEvent {
        at: OffsetDateTime,
        action: &'static str,
        actor: Option<&'static str>,
        actor_type: Option<ActorType>,
        ip: Option<&'static str>,
        outcome: Option<Outcome>,
        new_ip: bool,
        new_country: bool,
        location: Option<crate::location::Location>,
        message: &'static str,
    }

    fn event(at: OffsetDateTime, action: &'static str, actor: &'static str) -> ScriptedEvent {
        ScriptedEvent {
            at,
            action,
            actor: Some(actor),
            actor_type: Some(ActorType::User),
            ip: Some("203.0.113.9"),
            outcome: Some(Outcome::Success),
            new_ip: false,
            new_country: false,
            location: None,
            message: "something happened",
        }
    }

    fn failed_login(at: OffsetDateTime, actor: &'static str, ip: &'static str) -> ScriptedEvent {
        ScriptedEvent {
            ip: Some(ip),
            outcome: Some(Outcome::Failure),
            ..event(at, "user.login", actor)
        }
    }

    const START: OffsetDateTime = datetime!(2024-06-01 12:00:00 UTC);

    fn assert_query_is_canonical(finding: &Finding) {
        let parsed = crate::query::parse(&finding.evidence_query)
            .unwrap_or_else(|error| panic!("{}: {error}", finding.evidence_query));
        assert_eq!(parsed.to_string(), finding.evidence_query);
    }

    #[test]
    fn five_failed_logins_in_ten_minutes_fire_once_for_the_actor() {
        let mut log = ScriptedLog::new();
        for minute in 0..4 {
            let found = log.append(failed_login(
                START + Duration::minutes(minute * 2),
                "alice@acme.com",
                "198.51.100.7",
            ));
            assert!(found.is_empty(), "fired early at attempt {minute}");
        }
        let found = log.append(failed_login(
            START + Duration::minutes(9),
            "alice@acme.com",
            "198.51.100.7",
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        let finding = &found[0];
        assert_eq!(finding.kind, FindingKind::FailedLoginBurst);
        assert_eq!(
            finding.subject,
            FindingSubject::Actor("alice@acme.com".into())
        );
        assert_eq!((finding.first_seq, finding.last_seq), (0, 4));
        assert_eq!(
            finding.title,
            "5 failed logins for alice@acme.com within 10 minutes"
        );
        assert_eq!(
            finding.evidence_query,
            "actor:alice@acme.com action:user.login,logbook.login,logbook.login_failed outcome:failure created:2024-06-01T12:00:00Z..2024-06-01T12:09:00Z"
        );
        assert_query_is_canonical(finding);
        // The same attack going on is the same episode.
        for minute in 10..30 {
            let found = log.append(failed_login(
                START + Duration::minutes(minute),
                "alice@acme.com",
                "198.51.100.7",
            ));
            assert!(
                found.is_empty(),
                "fired again at minute {minute}: {found:?}"
            );
        }
        assert_eq!(log.findings.len(), 1);
    }

    #[test]
    fn four_failed_logins_or_five_spread_over_more_than_ten_minutes_do_not_fire() {
        let mut log = ScriptedLog::new();
        for attempt in 0..4 {
            log.append(failed_login(
                START + Duration::minutes(attempt),
                "alice@acme.com",
                "198.51.100.7",
            ));
        }
        // The fifth comes just after the first left the window.
        log.append(failed_login(
            START + Duration::minutes(10) + Duration::SECOND,
            "alice@acme.com",
            "198.51.100.7",
        ));
        // Successful logins and failures of other actions never count.
        for minute in 0..10 {
            log.append(event(
                START + Duration::minutes(minute),
                "user.login",
                "bob@acme.com",
            ));
            log.append(ScriptedEvent {
                outcome: Some(Outcome::Failure),
                ..event(
                    START + Duration::minutes(minute),
                    "server.reboot",
                    "bob@acme.com",
                )
            });
        }
        assert!(log.findings.is_empty(), "{:?}", log.findings);
    }

    #[test]
    fn a_second_burst_after_a_quiet_window_is_a_second_episode() {
        let mut log = ScriptedLog::new();
        for attempt in 0..5 {
            log.append(failed_login(
                START + Duration::minutes(attempt),
                "alice@acme.com",
                "198.51.100.7",
            ));
        }
        let later = START + Duration::hours(2);
        for attempt in 0..5 {
            log.append(failed_login(
                later + Duration::minutes(attempt),
                "alice@acme.com",
                "198.51.100.7",
            ));
        }
        let first_seqs: Vec<u64> = log
            .findings
            .iter()
            .map(|finding| finding.first_seq)
            .collect();
        assert_eq!(first_seqs, vec![0, 5]);
    }

    #[test]
    fn failed_logins_for_many_actors_from_one_address_fire_for_the_address() {
        let mut log = ScriptedLog::new();
        let actors = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", "f@x.io"];
        for (index, actor) in actors.into_iter().enumerate() {
            log.append(failed_login(
                START + Duration::minutes(index as i64),
                actor,
                "2001:db8::66",
            ));
        }
        assert_eq!(log.findings.len(), 1, "{:?}", log.findings);
        let finding = &log.findings[0];
        assert_eq!(
            finding.subject,
            FindingSubject::Ip("2001:db8::66".parse().unwrap())
        );
        assert_eq!((finding.first_seq, finding.last_seq), (0, 4));
        assert!(
            finding
                .evidence_query
                .starts_with("ip:2001:db8::66 action:")
        );
        assert_query_is_canonical(finding);
    }

    #[test]
    fn logbooks_own_failed_sign_ins_count_as_failed_logins() {
        let mut log = ScriptedLog::new();
        for attempt in 0..5 {
            log.append(ScriptedEvent {
                outcome: Some(Outcome::Failure),
                ..event(
                    START + Duration::seconds(attempt * 30),
                    "logbook.login_failed",
                    "carol@acme.com",
                )
            });
        }
        assert_eq!(log.findings.len(), 1);
        assert_eq!(
            log.findings[0].subject,
            FindingSubject::Actor("carol@acme.com".into())
        );
    }

    fn new_ip_login(at: OffsetDateTime, actor: &'static str) -> ScriptedEvent {
        ScriptedEvent {
            ip: Some("192.0.2.200"),
            new_ip: true,
            ..event(at, "user.login", actor)
        }
    }

    /// A successful login located at (latitude, longitude) within `radius_km`.
    fn located_login(
        at: OffsetDateTime,
        actor: &'static str,
        (city, country): (&str, &str),
        (latitude, longitude, radius_km): (f64, f64, u32),
    ) -> ScriptedEvent {
        ScriptedEvent {
            location: Some(crate::location::Location {
                city: Some(city.into()),
                country_code: Some(country.into()),
                latitude: Some(latitude),
                longitude: Some(longitude),
                accuracy_radius_km: Some(radius_km),
                ..Default::default()
            }),
            ..event(at, "user.login", actor)
        }
    }

    const MUMBAI: (f64, f64, u32) = (19.0748, 72.8856, 20);
    const SINGAPORE: (f64, f64, u32) = (1.2897, 103.8501, 5);

    #[test]
    fn great_circle_distances_match_known_ones() {
        // Mumbai to Singapore is about 3,910 km; a quarter of a meridian is about 10,008 km.
        let mumbai_singapore = great_circle_km((19.0748, 72.8856), (1.2897, 103.8501));
        assert!(
            (3_900.0..3_920.0).contains(&mumbai_singapore),
            "{mumbai_singapore}"
        );
        let pole = great_circle_km((0.0, 0.0), (90.0, 0.0));
        assert!((10_000.0..10_010.0).contains(&pole), "{pole}");
        assert_eq!(great_circle_km((1.0, 2.0), (1.0, 2.0)), 0.0);
    }

    #[test]
    fn logins_farther_apart_than_the_speed_allows_are_impossible_travel_and_slower_ones_are_not() {
        let mut log = ScriptedLog::new();
        log.append(located_login(START, "alice", ("Mumbai", "IN"), MUMBAI));
        // About 3,900 km in five hours is about 780 km/h: an airliner could.
        let slow = log.append(located_login(
            START + Duration::hours(5),
            "alice",
            ("Singapore", "SG"),
            SINGAPORE,
        ));
        assert!(slow.is_empty(), "{slow:?}");
        // Back in Mumbai four hours later: about 975 km/h.
        let found = log.append(located_login(
            START + Duration::hours(9),
            "alice",
            ("Mumbai", "IN"),
            MUMBAI,
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        let finding = &found[0];
        assert_eq!(finding.kind, FindingKind::ImpossibleTravel);
        assert_eq!((finding.first_seq, finding.last_seq), (1, 2));
        assert_eq!(
            finding.title,
            "alice signed in from Singapore, SG and Mumbai, IN 4 hours apart, about 3910 km away"
        );
        assert_query_is_canonical(finding);
        // A slower setting lets the same trip through.
        let mut patient = ScriptedLog::new();
        patient.settings.impossible_travel_speed_kmh = 1_000;
        patient.append(located_login(
            START,
            "alice",
            ("Singapore", "SG"),
            SINGAPORE,
        ));
        patient.append(located_login(
            START + Duration::hours(4),
            "alice",
            ("Mumbai", "IN"),
            MUMBAI,
        ));
        assert!(patient.findings.is_empty(), "{:?}", patient.findings);
    }

    #[test]
    fn accuracy_radii_that_could_cover_the_distance_make_a_pair_meaningless() {
        let mut log = ScriptedLog::new();
        log.append(located_login(START, "alice", ("Mumbai", "IN"), MUMBAI));
        // About 690 km in ten minutes, but the second place is only known within 1,000 km.
        log.append(located_login(
            START + Duration::minutes(10),
            "alice",
            ("India", "IN"),
            (20.5937, 78.9629, 1_000),
        ));
        // The same distance, known within 100 km each side: about 2,900 km/h of certain travel.
        log.append(located_login(
            START,
            "bob",
            ("Mumbai", "IN"),
            (19.0748, 72.8856, 100),
        ));
        log.append(located_login(
            START + Duration::minutes(10),
            "bob",
            ("India", "IN"),
            (20.5937, 78.9629, 100),
        ));
        let subjects: Vec<&FindingSubject> = log
            .findings
            .iter()
            .map(|finding| &finding.subject)
            .collect();
        assert_eq!(subjects, [&FindingSubject::Actor("bob".into())]);
    }

    #[test]
    fn failures_logins_without_coordinates_and_other_actors_are_never_compared() {
        let mut log = ScriptedLog::new();
        log.append(located_login(START, "alice", ("Mumbai", "IN"), MUMBAI));
        log.append(ScriptedEvent {
            outcome: Some(Outcome::Failure),
            ..located_login(
                START + Duration::minutes(1),
                "alice",
                ("Singapore", "SG"),
                SINGAPORE,
            )
        });
        log.append(ScriptedEvent {
            location: Some(crate::location::Location {
                country_code: Some("DE".into()),
                ..Default::default()
            }),
            ..event(START + Duration::minutes(2), "user.login", "alice")
        });
        log.append(located_login(
            START + Duration::minutes(3),
            "bob",
            ("Singapore", "SG"),
            SINGAPORE,
        ));
        assert!(log.findings.is_empty(), "{:?}", log.findings);
        // A day later no trip is too fast, so the state forgets the login.
        log.append(event(START + Duration::hours(30), "document.view", "carol"));
        assert!(log.state.located_logins_by_actor.is_empty());
    }

    #[test]
    fn a_sensitive_change_within_the_window_after_a_login_from_a_new_country_fires_once() {
        let mut log = ScriptedLog::new();
        log.append(ScriptedEvent {
            new_country: true,
            ..located_login(START, "alice", ("Singapore", "SG"), SINGAPORE)
        });
        let found = log.append(event(
            START + Duration::minutes(30),
            "acme.api_key.create",
            "alice",
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].kind,
            FindingKind::SensitiveChangeAfterNewCountryLogin
        );
        assert_eq!(
            found[0].title,
            "alice signed in from new country SG and then did acme.api_key.create"
        );
        assert_query_is_canonical(&found[0]);
        log.append(event(START + Duration::minutes(31), "user.invite", "alice"));
        assert_eq!(log.findings.len(), 1);
        // After the window, a change is not tied to the login any more.
        let mut late = ScriptedLog::new();
        late.append(ScriptedEvent {
            new_country: true,
            ..located_login(START, "alice", ("Singapore", "SG"), SINGAPORE)
        });
        late.append(event(
            START + Duration::minutes(61),
            "acme.api_key.create",
            "alice",
        ));
        assert!(late.findings.is_empty(), "{:?}", late.findings);
    }

    #[test]
    fn a_key_created_within_an_hour_of_a_new_address_login_fires_once() {
        let mut log = ScriptedLog::new();
        log.append(new_ip_login(START, "alice@acme.com"));
        log.append(event(
            START + Duration::minutes(5),
            "document.view",
            "alice@acme.com",
        ));
        assert!(log.findings.is_empty());
        let found = log.append(event(
            START + Duration::minutes(59),
            "acme.api_key.create",
            "alice@acme.com",
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        let finding = &found[0];
        assert_eq!(finding.kind, FindingKind::SensitiveChangeAfterNewIpLogin);
        assert_eq!((finding.first_seq, finding.last_seq), (0, 2));
        assert_eq!(
            finding.title,
            "alice@acme.com signed in from new address 192.0.2.200 and then did acme.api_key.create"
        );
        assert_eq!(
            finding.evidence_query,
            "actor:alice@acme.com created:2024-06-01T12:00:00Z..2024-06-01T12:59:00Z"
        );
        assert_query_is_canonical(finding);
        // More changes after the same login are the same episode.
        log.append(event(
            START + Duration::minutes(59),
            "user.invite",
            "alice@acme.com",
        ));
        assert_eq!(log.findings.len(), 1);
    }

    #[test]
    fn invitations_role_changes_ssh_keys_and_logbooks_own_actions_count_as_sensitive() {
        for action in [
            "user.invite",
            "ssh_key.add",
            "cloud.ssh_key.add",
            "team.role_change",
            "member.role.update",
            "logbook.api_key.create",
            "logbook.member.invite",
            "logbook.member.role_change",
        ] {
            let mut log = ScriptedLog::new();
            log.append(new_ip_login(START, "alice@acme.com"));
            log.append(event(
                START + Duration::minutes(1),
                action,
                "alice@acme.com",
            ));
            assert_eq!(log.findings.len(), 1, "{action}");
        }
    }

    #[test]
    fn near_misses_of_the_new_address_pattern_do_not_fire() {
        let mut log = ScriptedLog::new();
        // Too late: an hour and a second after the login.
        log.append(new_ip_login(START, "alice@acme.com"));
        log.append(event(
            START + Duration::hours(1) + Duration::SECOND,
            "acme.api_key.create",
            "alice@acme.com",
        ));
        // Someone else's change after alice's new address.
        log.append(new_ip_login(START + Duration::hours(3), "alice@acme.com"));
        log.append(event(
            START + Duration::hours(3) + Duration::minutes(1),
            "acme.api_key.create",
            "bob@acme.com",
        ));
        // A familiar address, then a change.
        log.append(event(
            START + Duration::hours(5),
            "user.login",
            "carol@acme.com",
        ));
        log.append(event(
            START + Duration::hours(5) + Duration::minutes(1),
            "user.invite",
            "carol@acme.com",
        ));
        // A failed login from a new address is not a login.
        log.append(ScriptedEvent {
            outcome: Some(Outcome::Failure),
            ..new_ip_login(START + Duration::hours(7), "dave@acme.com")
        });
        log.append(event(
            START + Duration::hours(7) + Duration::minutes(1),
            "user.invite",
            "dave@acme.com",
        ));
        // Not a sensitive action.
        log.append(new_ip_login(START + Duration::hours(9), "erin@acme.com"));
        log.append(event(
            START + Duration::hours(9) + Duration::minutes(1),
            "acme.api_key.revoke",
            "erin@acme.com",
        ));
        assert!(log.findings.is_empty(), "{:?}", log.findings);
    }

    /// Fourteen days of activity between 09:00 and 17:59 UTC.
    fn office_hours_history(log: &mut ScriptedLog, actor: &'static str, days: i64) {
        for day in 0..days {
            for hour in 9..18 {
                log.append(event(
                    datetime!(2024-05-01 00:00:00 UTC)
                        + Duration::days(day)
                        + Duration::hours(hour),
                    "document.edit",
                    actor,
                ));
            }
        }
    }

    #[test]
    fn activity_at_a_never_seen_hour_fires_once_after_fourteen_active_days() {
        let mut log = ScriptedLog::new();
        office_hours_history(&mut log, "alice@acme.com", 14);
        assert!(log.findings.is_empty());
        let night = datetime!(2024-05-20 03:12:00 UTC);
        let found = log.append(event(night, "document.export", "alice@acme.com"));
        assert_eq!(found.len(), 1, "{found:?}");
        let finding = &found[0];
        assert_eq!(finding.kind, FindingKind::UnusualHour);
        assert_eq!(
            finding.title,
            "alice@acme.com active between 03:00 and 03:59 UTC for the first time in 14 active days"
        );
        assert_eq!(
            finding.evidence_query,
            "actor:alice@acme.com created:2024-05-20T03:00:00Z..2024-05-20T03:59:59.999999Z"
        );
        assert_query_is_canonical(finding);
        // The rest of that hour, and the same hour on later days, are now known.
        log.append(event(
            night + Duration::minutes(20),
            "document.export",
            "alice@acme.com",
        ));
        log.append(event(
            night + Duration::days(1),
            "document.export",
            "alice@acme.com",
        ));
        assert_eq!(log.findings.len(), 1);
    }

    #[test]
    fn a_new_account_or_a_machine_actor_is_not_flagged_for_unusual_hours() {
        let mut log = ScriptedLog::new();
        // Thirteen active days are not enough history.
        office_hours_history(&mut log, "alice@acme.com", 13);
        log.append(event(
            datetime!(2024-05-20 03:12:00 UTC),
            "document.export",
            "alice@acme.com",
        ));
        // An API key or system actor runs at any hour.
        office_hours_history(&mut log, "nightly-job", 20);
        log.append(ScriptedEvent {
            actor_type: Some(ActorType::System),
            ..event(
                datetime!(2024-05-25 03:00:00 UTC),
                "backup.run",
                "nightly-job",
            )
        });
        assert!(log.findings.is_empty(), "{:?}", log.findings);
    }

    #[test]
    fn twenty_deletions_in_ten_minutes_fire_once_and_nineteen_do_not() {
        let mut log = ScriptedLog::new();
        for index in 0..19 {
            log.append(event(
                START + Duration::seconds(index * 20),
                "file.delete",
                "mallory@acme.com",
            ));
        }
        assert!(log.findings.is_empty());
        let found = log.append(event(
            START + Duration::minutes(9),
            "repository.delete_branch",
            "mallory@acme.com",
        ));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, FindingKind::DeletionBurst);
        assert_eq!(
            found[0].title,
            "20 deletions by mallory@acme.com within 10 minutes"
        );
        // `*.delete*` cannot be said in the query language, so the evidence is all the actor did.
        assert_eq!(
            found[0].evidence_query,
            "actor:mallory@acme.com created:2024-06-01T12:00:00Z..2024-06-01T12:09:00Z"
        );
        for index in 0..30 {
            log.append(event(
                START + Duration::minutes(9) + Duration::seconds(index),
                "file.delete",
                "mallory@acme.com",
            ));
        }
        assert_eq!(log.findings.len(), 1);
        // Another actor's nineteen deletions in the same minutes do not add up with mallory's.
        for index in 0..19 {
            log.append(event(
                START + Duration::minutes(9) + Duration::seconds(index),
                "file.delete",
                "bob@acme.com",
            ));
        }
        assert_eq!(log.findings.len(), 1);
    }

    #[test]
    fn hostile_actor_ids_stay_data_in_titles_and_quoted_in_evidence_queries() {
        let hostile = "x\" -actor:* OR <script>alert(1)</script>, \\";
        let mut log = ScriptedLog::new();
        for attempt in 0..5 {
            log.append(ScriptedEvent {
                message: "<img src=x onerror=alert(1)>",
                ..failed_login(START + Duration::minutes(attempt), hostile, "198.51.100.7")
            });
        }
        assert_eq!(log.findings.len(), 1);
        let finding = &log.findings[0];
        assert_eq!(finding.subject, FindingSubject::Actor(hostile.into()));
        assert!(finding.title.contains(hostile));
        assert_query_is_canonical(finding);
        let parsed = crate::query::parse(&finding.evidence_query).unwrap();
        assert_eq!(
            parsed.clauses[0].condition,
            Condition::Actor(vec![TextPattern::Exact(hostile.into())])
        );
        assert!(!parsed.clauses[0].negated);
    }

    #[test]
    fn the_state_forgets_windows_that_can_no_longer_fire() {
        let mut log = ScriptedLog::new();
        for attempt in 0..3 {
            log.append(failed_login(
                START + Duration::minutes(attempt),
                "alice@acme.com",
                "198.51.100.7",
            ));
        }
        log.append(new_ip_login(START, "bob@acme.com"));
        log.append(event(
            START + Duration::days(1),
            "document.view",
            "carol@acme.com",
        ));
        assert!(log.state.failed_logins_by_actor.is_empty());
        assert!(log.state.failed_logins_by_ip.is_empty());
        assert!(log.state.new_ip_logins_by_actor.is_empty());
        // The hour record of every actor stays: it is what "never" is measured against.
        assert_eq!(log.state.activity_by_actor.len(), 3);
    }

    #[test]
    fn action_patterns_match_with_stars_anywhere_and_reject_empty_ones() {
        let pattern = ActionPattern::parse("*.role*").unwrap();
        assert!(pattern.matches("logbook.member.role_change"));
        assert!(pattern.matches("x.role"));
        assert!(!pattern.matches("role.change"));
        assert!(
            ActionPattern::parse("*.delete*")
                .unwrap()
                .matches("a.b.delete_all")
        );
        assert!(
            !ActionPattern::parse("user.login")
                .unwrap()
                .matches("user.login2")
        );
        assert!(ActionPattern::parse("").is_err());
        assert!(ActionPattern::parse("**").is_err());
        assert!(ActionPattern::parse("a b").is_err());
    }

    #[test]
    fn finding_kinds_and_subjects_round_trip_through_their_stored_names() {
        for kind in FindingKind::ALL {
            assert_eq!(FindingKind::parse(kind.as_str()), Some(kind));
        }
        for subject in [
            FindingSubject::Actor("a@b.c".into()),
            FindingSubject::Ip("2001:db8::1".parse().unwrap()),
        ] {
            assert_eq!(
                FindingSubject::from_parts(subject.kind_name(), &subject.value()),
                Some(subject)
            );
        }
    }
}
