//! Retention and legal hold (issue 18): how long an account keeps its events, the hold that stops
//! every removal, and the signed statement that makes a pruned log still verifiable.
//!
//! Retention removes a *prefix* of an account's log: every event below some `seq` N, all older
//! than the account's period by `received_at`. Before any event goes, the store keeps the compact
//! range of the first N leaves (`merkle::CompactRange::perfect_subtrees`: at most one hash per bit
//! of N), which is all any proof of a later event, or of consistency from a later checkpoint,
//! needs (`merkle::perfect_subtree_across_prefix`). The server signs a `PruneStatement` with the
//! checkpoint key: "events below seq N, whose tree had root R, were removed at T under policy P".
//! `logbook verify` accepts a log that starts at N only with a statement that verifies and whose
//! root is the kept range's; everything from N on is verified as before.
//!
//! The newest event of an account is never pruned, so its `seq` keeps counting from the log
//! itself, and retention needs no change to how the writers assign `seq`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::account::AccountId;
use crate::checkpoint::{CheckpointError, CheckpointSigner, CheckpointVerifier, checkpoint_origin};
use crate::merkle::Hash;
use crate::personal_data::{
    AddressRemoval, PersonalDataBatch, PersonalDataSelection, PersonalFieldRemoval,
};
use crate::store::{Store, StoreError};

/// The longest retention period accepted, in days (a century).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// The longest legal hold (or erasure) reason kept, in characters.
pub const MAX_HOLD_REASON_CHARACTERS: usize = 500;

/// Why a retention setting or a hold was refused; `field` names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RetentionInputError {
    pub field: &'static str,
    pub message: String,
}

/// A retention period in whole days, 1 ..= `MAX_RETENTION_DAYS`.
pub fn retention_days(days: i64) -> Result<u32, RetentionInputError> {
    u32::try_from(days)
        .ok()
        .filter(|days| (1..=MAX_RETENTION_DAYS).contains(days))
        .ok_or_else(|| RetentionInputError {
            field: "retention_days",
            message: format!(
                "a retention period is a whole number of days from 1 to {MAX_RETENTION_DAYS}; {days} is not"
            ),
        })
}

/// `text` without the spaces around it, as the API document's patterns count spaces: JSON
/// Schema's `\s` (ECMA-262) is Rust's `char::is_whitespace` except that it leaves out U+0085
/// (NEL, a control character the document refuses anywhere) and takes in U+FEFF. Trimming with
/// `str::trim` accepted a reason ending in NEL that the document says is refused.
pub fn trim_spaces_as_the_schema_does(text: &str) -> &str {
    text.trim_matches(|character: char| {
        (character.is_whitespace() && character != '\u{85}') || character == '\u{feff}'
    })
}

/// Why an account is held (or a person erased): trimmed, 1 ..= 500 characters, no control
/// characters.
pub fn hold_reason(text: &str) -> Result<String, RetentionInputError> {
    let reason = trim_spaces_as_the_schema_does(text);
    if reason.is_empty()
        || reason.chars().count() > MAX_HOLD_REASON_CHARACTERS
        || reason.chars().any(char::is_control)
    {
        return Err(RetentionInputError {
            field: "reason",
            message: format!(
                "a reason (kept in the account's log) is 1 to {MAX_HOLD_REASON_CHARACTERS} characters on one line"
            ),
        });
    }
    Ok(reason.to_owned())
}

/// A legal hold: while one is set, nothing of the account is pruned or erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    pub since: OffsetDateTime,
    /// Who set it (a person's email, an API key id or `cli`).
    pub set_by: String,
    pub reason: String,
}

/// One account's retention settings and what was pruned so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountRetention {
    /// The account's own period; `None` falls back to the instance default.
    pub retention_days: Option<u32>,
    pub legal_hold: Option<LegalHold>,
    /// Events below this `seq` were removed by retention (0: none).
    pub pruned_below_seq: u64,
    /// The account's own personal-data period; `None` falls back to the instance default.
    pub personal_data_days: Option<u32>,
    /// Whether aging keeps the /24 or /48 of a removed address; `None`: the instance default.
    pub keep_network: Option<bool>,
    /// Metadata members the account declares personal (erased with the person, aged with the
    /// rest), sorted.
    pub personal_metadata_fields: Vec<String>,
    /// Events below this `seq` had their personal fields removed by age (0: none).
    pub personal_aged_below_seq: u64,
}

/// What a store keeps for a pruned prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedPrefix {
    /// `CompactRange::to_bytes` of the first `pruned_below_seq` leaves.
    pub prefix_range: Vec<u8>,
    /// The signed `PruneStatement` note.
    pub statement: String,
    pub pruned_at: OffsetDateTime,
}

/// What a prune statement says, signed with the checkpoint key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneStatement {
    /// The log's origin, as in its checkpoints (`<instance>/<account>`).
    pub origin: String,
    pub pruned_below_seq: u64,
    /// The root of the tree of the first `pruned_below_seq` leaves.
    pub prefix_root: Hash,
    pub pruned_at: OffsetDateTime,
    /// The policy that removed them, in words (`retention of 90 days`).
    pub policy: String,
}

/// The line that tells a prune statement from a checkpoint (whose second line is a number).
const STATEMENT_KIND_LINE: &str = "logbook prune statement v1";

impl PruneStatement {
    /// The statement for `account`'s log.
    pub fn new(
        instance_name: &str,
        account: &AccountId,
        pruned_below_seq: u64,
        prefix_root: Hash,
        pruned_at: OffsetDateTime,
        policy: &str,
    ) -> Self {
        PruneStatement {
            origin: checkpoint_origin(instance_name, account),
            pruned_below_seq,
            prefix_root,
            pruned_at,
            policy: policy.replace(['\n', '\r'], " "),
        }
    }

    /// The note text, one fact a line.
    pub fn note_text(&self) -> String {
        format!(
            "{}\n{STATEMENT_KIND_LINE}\n{}\n{}\n{}\n{}\n",
            self.origin,
            self.pruned_below_seq,
            STANDARD.encode(self.prefix_root),
            self.pruned_at
                .format(&Rfc3339)
                .unwrap_or_else(|_| self.pruned_at.unix_timestamp().to_string()),
            self.policy
        )
    }

    /// The signed note.
    pub fn sign(&self, signer: &CheckpointSigner) -> String {
        signer.sign_note(&self.note_text())
    }

    /// Verifies a signed statement and reads it back.
    pub fn verify(note: &str, verifier: &CheckpointVerifier) -> Result<Self, CheckpointError> {
        let text = verifier.verify_note(note)?;
        let malformed = || CheckpointError::MalformedNote("not a prune statement");
        let mut lines = text.lines();
        let origin = lines.next().ok_or_else(malformed)?.to_owned();
        if lines.next() != Some(STATEMENT_KIND_LINE) {
            return Err(malformed());
        }
        let pruned_below_seq = lines
            .next()
            .and_then(|line| line.parse::<u64>().ok())
            .ok_or_else(malformed)?;
        let prefix_root: Hash = lines
            .next()
            .and_then(|line| STANDARD.decode(line).ok())
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(malformed)?;
        let pruned_at = lines
            .next()
            .and_then(|line| OffsetDateTime::parse(line, &Rfc3339).ok())
            .ok_or_else(malformed)?;
        let policy = lines.next().ok_or_else(malformed)?.to_owned();
        if lines.next().is_some() {
            return Err(malformed());
        }
        Ok(PruneStatement {
            origin,
            pruned_below_seq,
            prefix_root,
            pruned_at,
            policy,
        })
    }
}

/// What one pruning did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneOutcome {
    /// Events below this `seq` are removed (or being removed) now.
    pub pruned_below_seq: u64,
    /// Whether this run moved the prefix (and so signed a new statement).
    pub moved: bool,
    /// Events deleted by this run.
    pub deleted_events: u64,
}

/// The first `seq` of `account` whose event was received at or after `cutoff`, but never beyond
/// the newest event (which is always kept): the end of the prefix retention removes. `received_at`
/// grows with `seq` (both are given by one writer, `received_at` just before), so a binary search
/// over single-event reads finds it in O(log n) reads.
pub async fn prune_point(
    store: &dyn Store,
    account: &AccountId,
    cutoff: OffsetDateTime,
) -> Result<u64, StoreError> {
    let next_seq = store.next_seq(account).await?;
    if next_seq <= 1 {
        return Ok(0);
    }
    let received_at = |seq: u64| async move {
        let rows = store.events_since(account, seq, 1).await?;
        let Some(row) = rows.first().filter(|row| row.seq == seq) else {
            // Already pruned below here (or a hole, which verification reports): treat as old.
            return Ok::<Option<OffsetDateTime>, StoreError>(None);
        };
        Ok(row.decode().ok().map(|event| event.received_at))
    };
    // Invariant: every seq below `low` is older than the cutoff; `high` is the newest event.
    let (mut low, mut high) = (0_u64, next_seq - 1);
    while low < high {
        let middle = low + (high - low) / 2;
        match received_at(middle).await? {
            Some(at) if at >= cutoff => high = middle,
            _ => low = middle + 1,
        }
    }
    Ok(low)
}

/// Who signs prune statements: the checkpoint key, under the origin of the account's log.
#[derive(Debug, Clone, Copy)]
pub struct PruneSigning<'signer> {
    pub signer: &'signer CheckpointSigner,
    pub instance_name: &'signer str,
}

/// Keeps what proves the rest of `account`'s log once its events below `pruned_below_seq` are
/// gone: the compact range of the first `pruned_below_seq` leaves and a statement about them
/// signed with the checkpoint key. Nothing is deleted yet (`RetentionStore::delete_pruned_events`
/// does that, batch by batch). Returns whether the prefix moved (it never moves back). Refused
/// under legal hold.
pub async fn record_prefix(
    store: &dyn Store,
    account: &AccountId,
    pruned_below_seq: u64,
    signing: PruneSigning<'_>,
    policy: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let tree = store.log_tree().ok_or_else(|| {
        StoreError::Unavailable(
            "this store keeps no verifiable log, so nothing of it may be pruned".into(),
        )
    })?;
    let settings = store.retention().account_retention(account).await?;
    if settings.legal_hold.is_some() {
        return Err(StoreError::LegalHold(account.clone()));
    }
    if pruned_below_seq <= settings.pruned_below_seq {
        return Ok(false);
    }
    let nodes = tree
        .tree_nodes(
            account,
            &crate::merkle::compact_range_node_ids(pruned_below_seq),
        )
        .await?;
    let prefix = crate::merkle::CompactRange::from_node_source(&nodes, pruned_below_seq).map_err(
        |error| StoreError::Database {
            context: "reading the tree of a prefix to prune",
            message: error.to_string(),
        },
    )?;
    let statement = PruneStatement::new(
        signing.instance_name,
        account,
        pruned_below_seq,
        prefix.root(),
        now,
        policy,
    );
    store
        .retention()
        .record_prune(
            account,
            pruned_below_seq,
            &PrunedPrefix {
                prefix_range: prefix.to_bytes(),
                statement: statement.sign(signing.signer),
                pruned_at: now,
            },
        )
        .await?;
    Ok(true)
}

/// `record_prefix`, then every batch of deletes at once (for the CLI and tests; the server's
/// pruner paces its batches).
pub async fn prune_prefix(
    store: &dyn Store,
    account: &AccountId,
    pruned_below_seq: u64,
    signing: PruneSigning<'_>,
    policy: &str,
    now: OffsetDateTime,
    batch_size: u32,
) -> Result<PruneOutcome, StoreError> {
    let moved = record_prefix(store, account, pruned_below_seq, signing, policy, now).await?;
    let mut outcome = PruneOutcome {
        pruned_below_seq: store
            .retention()
            .account_retention(account)
            .await?
            .pruned_below_seq,
        moved,
        deleted_events: 0,
    };
    loop {
        let deleted = store
            .retention()
            .delete_pruned_events(account, batch_size)
            .await?;
        outcome.deleted_events += deleted;
        if deleted < u64::from(batch_size) {
            return Ok(outcome);
        }
    }
}

/// The actions of the events retention writes into an account's own log.
pub const RETENTION_SET_ACTION: &str = "logbook.retention.set";
pub const LEGAL_HOLD_SET_ACTION: &str = "logbook.legal_hold.set";
pub const LEGAL_HOLD_CLEAR_ACTION: &str = "logbook.legal_hold.clear";

/// Who changed a retention setting, for the event it writes: a person, an API key, or the CLI.
#[derive(Debug, Clone)]
pub struct ChangedBy {
    pub actor: crate::event::Actor,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

fn audit_event(
    account: &AccountId,
    event_id: crate::ids::EventId,
    action: &str,
    message: String,
    metadata: serde_json::Map<String, serde_json::Value>,
    changed_by: &ChangedBy,
    now: OffsetDateTime,
) -> crate::event::NewEvent {
    crate::event::NewEvent {
        id: event_id,
        account: account.clone(),
        received_at: now,
        created_at: now,
        created_at_was_sent: false,
        action: action.to_owned(),
        message,
        actor: Some(changed_by.actor.clone()),
        ip: changed_by.ip,
        user_agent: changed_by.user_agent.clone(),
        outcome: Some(crate::event::Outcome::Success),
        targets: Vec::new(),
        changes: Vec::new(),
        metadata: Some(metadata),
        key: None,
        salt: crate::personal_data::EventSalt::random(),
    }
}

/// Places a legal hold on `account` and writes `logbook.legal_hold.set` with who and why.
/// Returns false (and writes nothing) when the account was already held.
pub async fn place_legal_hold(
    store: &dyn Store,
    account: &AccountId,
    reason: &str,
    changed_by: &ChangedBy,
    now: OffsetDateTime,
    event_id: crate::ids::EventId,
) -> Result<bool, StoreError> {
    let hold = LegalHold {
        since: now,
        set_by: changed_by.actor.id.clone(),
        reason: reason.to_owned(),
    };
    let before = store
        .retention()
        .set_legal_hold(account, Some(hold), now)
        .await?;
    if before.is_some() {
        return Ok(false);
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("reason".into(), reason.into());
    store
        .append_events(vec![audit_event(
            account,
            event_id,
            LEGAL_HOLD_SET_ACTION,
            format!("Placed a legal hold: {reason}"),
            metadata,
            changed_by,
            now,
        )])
        .await?;
    Ok(true)
}

/// Clears `account`'s legal hold and writes `logbook.legal_hold.clear` with who and why.
/// Returns false (and writes nothing) when the account was not held.
pub async fn release_legal_hold(
    store: &dyn Store,
    account: &AccountId,
    reason: &str,
    changed_by: &ChangedBy,
    now: OffsetDateTime,
    event_id: crate::ids::EventId,
) -> Result<bool, StoreError> {
    let Some(before) = store.retention().set_legal_hold(account, None, now).await? else {
        return Ok(false);
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("reason".into(), reason.into());
    metadata.insert("held_since".into(), rfc3339(before.since).into());
    metadata.insert("held_by".into(), before.set_by.into());
    metadata.insert("held_for".into(), before.reason.into());
    store
        .append_events(vec![audit_event(
            account,
            event_id,
            LEGAL_HOLD_CLEAR_ACTION,
            format!("Cleared the legal hold: {reason}"),
            metadata,
            changed_by,
            now,
        )])
        .await?;
    Ok(true)
}

/// Sets (or with `None` clears) `account`'s own retention period and writes
/// `logbook.retention.set`.
pub async fn change_retention_period(
    store: &dyn Store,
    account: &AccountId,
    retention_days: Option<u32>,
    changed_by: &ChangedBy,
    now: OffsetDateTime,
    event_id: crate::ids::EventId,
) -> Result<(), StoreError> {
    store
        .retention()
        .set_retention_days(account, retention_days, now)
        .await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "retention_days".into(),
        retention_days.map_or(serde_json::Value::Null, serde_json::Value::from),
    );
    let message = match retention_days {
        Some(days) => format!("Set the retention period to {days} days"),
        None => "Cleared the account's own retention period (the instance default applies)".into(),
    };
    store
        .append_events(vec![audit_event(
            account,
            event_id,
            RETENTION_SET_ACTION,
            message,
            metadata,
            changed_by,
            now,
        )])
        .await?;
    Ok(())
}

pub const PERSONAL_DATA_SET_ACTION: &str = "logbook.personal_data.set";
pub const PERSONAL_DATA_AGE_ACTION: &str = "logbook.personal_data.age";
pub const PERSONAL_DATA_ERASE_ACTION: &str = "logbook.personal_data.erase";

/// The personal-data rule that applies to an account: its own settings over the instance's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalDataPolicy {
    pub days: u32,
    pub keep_network: bool,
    pub metadata_keys: Vec<String>,
}

impl PersonalDataPolicy {
    /// The policy for an account with `settings` on an instance whose defaults are
    /// `instance_days` and `instance_keep_network`; `None` when no period applies.
    pub fn of_account(
        settings: &AccountRetention,
        instance_days: Option<u32>,
        instance_keep_network: bool,
    ) -> Option<Self> {
        Some(PersonalDataPolicy {
            days: settings.personal_data_days.or(instance_days)?,
            keep_network: settings.keep_network.unwrap_or(instance_keep_network),
            metadata_keys: settings.personal_metadata_fields.clone(),
        })
    }

    fn removal(&self) -> PersonalFieldRemoval {
        PersonalFieldRemoval {
            address: if self.keep_network {
                AddressRemoval::KeepNetwork
            } else {
                AddressRemoval::Remove
            },
            metadata_keys: self.metadata_keys.clone(),
        }
    }
}

/// What one aging run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgingOutcome {
    /// Events below this `seq` have no personal data left.
    pub aged_below_seq: u64,
    /// Events whose personal fields this run removed.
    pub events_changed: u64,
}

/// Removes the personal fields (by `policy`) of every event of `account` received before
/// `now - policy.days`, in batches of `batch_size` (each its own transaction, with
/// `between_batches` awaited between two), and the new-IP
/// history no remaining event holds. Refused with `LegalHold` while the account is held. The
/// caller writes the `logbook.personal_data.age` event when something changed.
pub async fn age_personal_data<Pause: std::future::Future<Output = ()>>(
    store: &dyn Store,
    account: &AccountId,
    policy: &PersonalDataPolicy,
    now: OffsetDateTime,
    batch_size: u32,
    mut between_batches: impl FnMut() -> Pause,
) -> Result<AgingOutcome, StoreError> {
    let settings = store.retention().account_retention(account).await?;
    if settings.legal_hold.is_some() {
        return Err(StoreError::LegalHold(account.clone()));
    }
    let cutoff = now - time::Duration::days(i64::from(policy.days));
    let below_seq = prune_point(store, account, cutoff).await?;
    let mut outcome = AgingOutcome {
        aged_below_seq: settings.personal_aged_below_seq.max(below_seq),
        events_changed: 0,
    };
    if below_seq <= settings.personal_aged_below_seq {
        return Ok(outcome);
    }
    let mut from_seq = settings
        .personal_aged_below_seq
        .max(settings.pruned_below_seq);
    loop {
        let step = store
            .retention()
            .remove_personal_data(
                account,
                PersonalDataBatch {
                    selection: PersonalDataSelection::AgedBelow { below_seq },
                    removal: policy.removal(),
                    from_seq,
                    max_events: batch_size,
                },
            )
            .await?;
        outcome.events_changed += step.events_changed;
        match step.next_seq {
            Some(next) => from_seq = next,
            None => return Ok(outcome),
        }
        between_batches().await;
    }
}

/// What an erasure found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureOutcome {
    /// The person's personal fields went from this many events. `recorded` is false when the
    /// account's own stored-volume quota refused the `logbook.personal_data.erase` event: the
    /// erasure stands (a quota must never keep personal data alive), and the caller logs it.
    Erased { events_changed: u64, recorded: bool },
    /// The person has events, but nothing personal was left in them.
    NothingLeft,
    /// No event of the account has this `actor.id`.
    UnknownActor,
}

/// Erases the personal data of the person whose `actor.id` is `actor_id` from every event of
/// `account` (with the metadata members the account declares personal), forgets their new-IP
/// history, and writes `logbook.personal_data.erase` with who asked, why and how many events it
/// touched. Refused with `LegalHold` while the account is held; an unknown actor changes nothing.
#[allow(clippy::too_many_arguments)]
pub async fn erase_person(
    store: &dyn Store,
    account: &AccountId,
    actor_id: &str,
    reason: &str,
    changed_by: &ChangedBy,
    now: OffsetDateTime,
    event_id: crate::ids::EventId,
    batch_size: u32,
) -> Result<ErasureOutcome, StoreError> {
    let settings = store.retention().account_retention(account).await?;
    if settings.legal_hold.is_some() {
        return Err(StoreError::LegalHold(account.clone()));
    }
    let removal = PersonalFieldRemoval {
        address: AddressRemoval::Remove,
        metadata_keys: settings.personal_metadata_fields.clone(),
    };
    let (mut from_seq, mut examined, mut changed) = (settings.pruned_below_seq, 0_u64, 0_u64);
    loop {
        let step = store
            .retention()
            .remove_personal_data(
                account,
                PersonalDataBatch {
                    selection: PersonalDataSelection::Actor {
                        actor_id: actor_id.to_owned(),
                    },
                    removal: removal.clone(),
                    from_seq,
                    max_events: batch_size,
                },
            )
            .await?;
        examined += step.events_examined;
        changed += step.events_changed;
        match step.next_seq {
            Some(next) => from_seq = next,
            None => break,
        }
    }
    if examined == 0 {
        return Ok(ErasureOutcome::UnknownActor);
    }
    if changed == 0 {
        return Ok(ErasureOutcome::NothingLeft);
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("reason".into(), reason.into());
    metadata.insert("events_changed".into(), changed.into());
    let mut fields = vec!["ip", "ip_network", "user_agent", "actor.name"]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    fields.extend(
        removal
            .metadata_keys
            .iter()
            .map(|key| format!("metadata.{key}")),
    );
    metadata.insert("fields".into(), fields.into());
    let mut event = audit_event(
        account,
        event_id,
        PERSONAL_DATA_ERASE_ACTION,
        format!("Erased the personal data of {actor_id} from {changed} events: {reason}"),
        metadata,
        changed_by,
        now,
    );
    event.targets = vec![crate::event::Target {
        target_type: "person".into(),
        id: actor_id.to_owned(),
        name: None,
    }];
    let recorded = match store.append_events(vec![event]).await {
        Ok(_) => true,
        Err(StoreError::VolumeQuotaExceeded { .. }) => false,
        Err(error) => return Err(error),
    };
    Ok(ErasureOutcome::Erased {
        events_changed: changed,
        recorded,
    })
}

/// Sets (or with `None` clears) `account`'s own personal-data period and network rule, and
/// writes `logbook.personal_data.set`.
pub async fn change_personal_data_policy(
    store: &dyn Store,
    account: &AccountId,
    personal_data_days: Option<u32>,
    keep_network: Option<bool>,
    changed_by: &ChangedBy,
    now: OffsetDateTime,
    event_id: crate::ids::EventId,
) -> Result<(), StoreError> {
    store
        .retention()
        .set_personal_data_policy(account, personal_data_days, keep_network, now)
        .await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "personal_data_days".into(),
        personal_data_days.map_or(serde_json::Value::Null, serde_json::Value::from),
    );
    metadata.insert(
        "keep_network".into(),
        keep_network.map_or(serde_json::Value::Null, serde_json::Value::from),
    );
    let message = match personal_data_days {
        Some(days) => format!("Set the personal-data period to {days} days"),
        None => {
            "Cleared the account's own personal-data period (the instance default applies)".into()
        }
    };
    store
        .append_events(vec![audit_event(
            account,
            event_id,
            PERSONAL_DATA_SET_ACTION,
            message,
            metadata,
            changed_by,
            now,
        )])
        .await?;
    Ok(())
}

/// Declares the metadata members of `account`'s events that are personal (validated first), and
/// writes `logbook.personal_data.set`.
pub async fn declare_personal_metadata_fields(
    store: &dyn Store,
    account: &AccountId,
    names: &[String],
    changed_by: &ChangedBy,
    now: OffsetDateTime,
    event_id: crate::ids::EventId,
) -> Result<Vec<String>, DeclareFieldsError> {
    let fields = crate::personal_data::declared_personal_fields(names)?;
    store
        .retention()
        .set_personal_metadata_fields(account, fields.clone(), now)
        .await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert("personal_metadata_fields".into(), fields.clone().into());
    let message = if fields.is_empty() {
        "Declared no metadata field personal".to_owned()
    } else {
        format!("Declared personal metadata fields: {}", fields.join(", "))
    };
    store
        .append_events(vec![audit_event(
            account,
            event_id,
            PERSONAL_DATA_SET_ACTION,
            message,
            metadata,
            changed_by,
            now,
        )])
        .await?;
    Ok(fields)
}

/// Why declaring personal metadata fields failed.
#[derive(Debug, thiserror::Error)]
pub enum DeclareFieldsError {
    #[error(transparent)]
    Input(#[from] RetentionInputError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The words a statement and the prune event give the policy.
pub fn retention_policy_text(days: u32) -> String {
    format!("retention of {days} days")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reason_is_trimmed_as_the_api_document_counts_spaces() {
        assert_eq!(
            super::hold_reason(" \t Court order 42\u{feff}\n").unwrap(),
            "Court order 42"
        );
        // NEL is a control character: the document refuses it at the ends as anywhere else.
        for text in ["õ:\u{85}", "\u{85}õ:", "õ\u{85}:"] {
            let error = super::hold_reason(text).unwrap_err();
            assert_eq!(error.field, "reason");
        }
    }

    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_signed_statement_verifies_and_reads_back_and_an_edited_one_does_not() {
        let signer = CheckpointSigner::generate([7; 32], "logbook.example").unwrap();
        let statement = PruneStatement::new(
            "logbook.example",
            &AccountId::parse("acme").unwrap(),
            1234,
            [9; 32],
            datetime!(2026-12-06 10:00 UTC),
            "retention of 90 days",
        );
        let note = statement.sign(&signer);
        assert_eq!(
            PruneStatement::verify(&note, &signer.verifier()).unwrap(),
            statement
        );
        let edited = note.replace("1234", "1240");
        assert!(PruneStatement::verify(&edited, &signer.verifier()).is_err());
        // A checkpoint is never read as a statement.
        let checkpoint = signer.sign("logbook.example/acme", 1234, &[9; 32]).unwrap();
        assert!(PruneStatement::verify(&checkpoint.text, &signer.verifier()).is_err());
    }

    #[test]
    fn periods_and_reasons_outside_their_bounds_are_refused_with_their_field() {
        assert_eq!(retention_days(90), Ok(90));
        for days in [0, -5, 36_501, i64::MAX] {
            assert_eq!(retention_days(days).unwrap_err().field, "retention_days");
        }
        assert_eq!(hold_reason("  case 42 ").unwrap(), "case 42");
        for reason in ["", "   ", "two\nlines", &"x".repeat(501)] {
            assert_eq!(hold_reason(reason).unwrap_err().field, "reason");
        }
    }
}
