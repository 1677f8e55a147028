//! The IP databases (issue 19): MaxMind DB files (GeoLite2 City and ASN, DB-IP Lite, IPinfo Lite)
//! read with the `maxminddb` crate, memory-mapped, answering `logbook_core::location::IpLocator`
//! for the stores, and reloaded when an operator replaces a file.
//!
//! # Replacing a file
//!
//! A memory-mapped file must not change under its reader: a file truncated or rewritten in place
//! (`cp new.mmdb GeoLite2-City.mmdb` does that) would let the process read bytes that are no
//! longer there, which ends it with SIGBUS. So Logbook never maps the operator's file: it copies it
//! into a snapshot of its own (`<data_dir>/ip-databases/`), checks the copy whole
//! (`Reader::verify`), maps it, and unlinks it at once. Nobody else can reach the mapped file, and
//! the operator may replace theirs any way they like.
//!
//! `IpDatabases::reload_changed` (every `reload_interval`, `workers::ip_databases`) notices a
//! replaced file by its identity (device, inode, size, modification time). A new file that is not
//! a valid MaxMind DB (truncated, half-copied, something else) is refused: the previous database
//! stays in use, the log says why, and `/readyz` says so until a good file replaces it.
//!
//! A lookup takes a read lock and walks the mapped tree: no allocation beyond the answer's strings.
//! What the stores keep of an answer (`IpLocator::located_columns`) is remembered per address, up
//! to `MOST_REMEMBERED_ADDRESSES`, until a database is replaced: a platform's events come again and
//! again from the same addresses, and walking and decoding both databases cost ~2 µs an event
//! (2.6 % of batched ingest, BENCHMARKS.md), where a remembered answer costs a hash lookup.

use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use logbook_core::location::{CountryCode, IpLocator, Location, LocationColumns};
use maxminddb::{Mmap, Reader};
use serde::Deserialize;

/// Which of the two databases a file is configured as. Both are read alike: a city database may
/// carry networks (IPinfo Lite does), an ASN database only networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpDatabaseKind {
    City,
    Asn,
}

impl fmt::Display for IpDatabaseKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            IpDatabaseKind::City => "city",
            IpDatabaseKind::Asn => "ASN",
        })
    }
}

/// Where the databases are and how often they are checked for a replacement.
#[derive(Debug, Clone)]
pub struct IpDatabaseSettings {
    pub city_database: Option<PathBuf>,
    pub asn_database: Option<PathBuf>,
    /// Where the private snapshots are made before they are mapped (and at once unlinked).
    pub snapshot_directory: PathBuf,
    pub reload_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum IpDatabaseError {
    #[error("could not read the {kind} IP database {path}: {source}")]
    Read {
        kind: IpDatabaseKind,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {kind} IP database {path} is not a valid MaxMind DB file: {reason}")]
    Invalid {
        kind: IpDatabaseKind,
        path: PathBuf,
        reason: String,
    },
}

/// What identifies one version of a file: replacing it (by rename or in place) changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
    size: u64,
    modified_nanos: i128,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<Self> {
        let metadata = fs::metadata(path)?;
        Ok(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified_nanos: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
        })
    }
}

/// One configured file: the database in use, and what became of the newest replacement.
struct WatchedDatabase {
    kind: IpDatabaseKind,
    path: PathBuf,
    reader: RwLock<Arc<Reader<Mmap>>>,
    /// The identity of the file the reader was loaded from, or of the last refused one (so a bad
    /// file is reported once, not every interval).
    seen: Mutex<FileIdentity>,
    /// Why the newest replacement was refused, while the previous database stays in use.
    refused: Mutex<Option<String>>,
}

/// The configured IP databases. Cheap to share behind an `Arc`.
pub struct IpDatabases {
    databases: Vec<WatchedDatabase>,
    snapshot_directory: PathBuf,
    reload_interval: Duration,
    /// Counts the databases replaced so far; an answer is remembered under the count it was made
    /// at, and one made before the newest replacement is never used.
    replacements: AtomicU64,
    remembered: Mutex<RememberedAnswers>,
}

/// Most addresses whose answers are remembered; past it they are all forgotten at once (a full
/// set costs a few MB; a busy platform's working set of addresses is far smaller).
const MOST_REMEMBERED_ADDRESSES: usize = 65_536;

/// The stores' columns for each address looked up since the databases in use were loaded,
/// including the addresses they could not place.
#[derive(Default)]
struct RememberedAnswers {
    replacements: u64,
    /// hashbrown's default hasher (foldhash, seeded per process) rather than SipHash: every
    /// located event looks its address up here under the lock.
    answers: hashbrown::HashMap<IpAddr, Option<Arc<LocationColumns>>>,
}

impl fmt::Debug for IpDatabases {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IpDatabases")
            .field(
                "files",
                &self
                    .databases
                    .iter()
                    .map(|database| &database.path)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Snapshot names differ per process and load, so two nodes sharing a data directory, or two
/// loads in one process, never write one file.
static SNAPSHOT_NUMBER: AtomicU64 = AtomicU64::new(0);

/// Copies the operator's file into a private snapshot, maps it, unlinks it, and checks the whole
/// database before it is used.
fn load_snapshot(
    kind: IpDatabaseKind,
    path: &Path,
    snapshot_directory: &Path,
) -> Result<(Reader<Mmap>, FileIdentity), IpDatabaseError> {
    let read_error = |source| IpDatabaseError::Read {
        kind,
        path: path.to_owned(),
        source,
    };
    let identity = FileIdentity::of(path).map_err(read_error)?;
    fs::create_dir_all(snapshot_directory).map_err(read_error)?;
    let snapshot = snapshot_directory.join(format!(
        ".{}-{}-{}.mmdb",
        kind.to_string().to_ascii_lowercase(),
        std::process::id(),
        SNAPSHOT_NUMBER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::copy(path, &snapshot).map_err(read_error)?;
    // SAFETY: `snapshot` is a file this process just wrote under a name no other process uses,
    // and it is unlinked right below: Logbook never writes it again, and once unlinked no name
    // reaches it, so nothing modifies or truncates it while the map exists (the module
    // documentation says why this matters). Only a process of the same user that opens the
    // hidden file in the instant between the copy and the unlink could, which is outside what
    // Logbook defends against (that user can replace the binary as well).
    #[allow(unsafe_code)]
    let opened = unsafe { Reader::open_mmap(&snapshot) };
    let _ = fs::remove_file(&snapshot);
    let invalid = |error: maxminddb::MaxMindDbError| IpDatabaseError::Invalid {
        kind,
        path: path.to_owned(),
        reason: error.to_string(),
    };
    let reader = opened.map_err(invalid)?;
    reader.verify().map_err(invalid)?;
    Ok((reader, identity))
}

impl IpDatabases {
    /// Loads every configured file; `None` when none is configured. A file that cannot be read or
    /// is not a valid database stops start-up with the reason.
    pub fn open(settings: &IpDatabaseSettings) -> Result<Option<Self>, IpDatabaseError> {
        let mut databases = Vec::new();
        for (kind, path) in [
            (IpDatabaseKind::City, &settings.city_database),
            (IpDatabaseKind::Asn, &settings.asn_database),
        ] {
            let Some(path) = path else { continue };
            let (reader, identity) = load_snapshot(kind, path, &settings.snapshot_directory)?;
            tracing::info!(
                kind = %kind,
                path = %path.display(),
                database_type = %reader.metadata().database_type,
                built = reader.metadata().build_epoch,
                "IP database loaded"
            );
            databases.push(WatchedDatabase {
                kind,
                path: path.clone(),
                reader: RwLock::new(Arc::new(reader)),
                seen: Mutex::new(identity),
                refused: Mutex::new(None),
            });
        }
        Ok((!databases.is_empty()).then(|| Self {
            databases,
            snapshot_directory: settings.snapshot_directory.clone(),
            reload_interval: settings.reload_interval,
            replacements: AtomicU64::new(0),
            remembered: Mutex::new(RememberedAnswers::default()),
        }))
    }

    pub fn reload_interval(&self) -> Duration {
        self.reload_interval
    }

    /// Loads every file whose identity changed since it was last seen. A good file replaces the
    /// database in use; a bad one is refused (logged, and kept in `refusals` until a good file
    /// comes). Blocking: it copies and verifies whole files.
    pub fn reload_changed(&self) {
        for database in &self.databases {
            let identity = match FileIdentity::of(&database.path) {
                Ok(identity) => identity,
                Err(error) => {
                    // A file missing for a moment (replaced by a non-atomic move) is not a bad
                    // database: the next round looks again.
                    tracing::debug!(kind = %database.kind, %error, "IP database file not readable now");
                    continue;
                }
            };
            let previously_seen = {
                let mut seen = database.seen.lock().expect("IP database lock poisoned");
                if *seen == identity {
                    continue;
                }
                std::mem::replace(&mut *seen, identity)
            };
            match load_snapshot(database.kind, &database.path, &self.snapshot_directory) {
                Ok((reader, loaded_identity)) => {
                    *database.seen.lock().expect("IP database lock poisoned") = loaded_identity;
                    *database.reader.write().expect("IP database lock poisoned") = Arc::new(reader);
                    // Counted after the swap: an answer remembered under the old count, from
                    // either database, is forgotten at the next lookup.
                    self.replacements.fetch_add(1, Ordering::AcqRel);
                    *database.refused.lock().expect("IP database lock poisoned") = None;
                    tracing::info!(kind = %database.kind, path = %database.path.display(), "IP database reloaded");
                }
                Err(error) => {
                    // A file that could not be read (being copied, a full disk) is tried again at
                    // the next poll; one that was read and is invalid waits for its next change.
                    if matches!(error, IpDatabaseError::Read { .. }) {
                        *database.seen.lock().expect("IP database lock poisoned") = previously_seen;
                    }
                    tracing::warn!(%error, "a replaced IP database was refused; the previous one stays in use");
                    *database.refused.lock().expect("IP database lock poisoned") =
                        Some(error.to_string());
                }
            }
        }
    }

    /// Why each refused replacement was refused (empty when every file in use is the newest).
    pub fn refusals(&self) -> Vec<String> {
        self.databases
            .iter()
            .filter_map(|database| {
                database
                    .refused
                    .lock()
                    .expect("IP database lock poisoned")
                    .clone()
            })
            .collect()
    }
}

/// The parts of a record Logbook reads, in the shape of GeoIP2/GeoLite2 and DB-IP (`country`,
/// `city`, `subdivisions`, `location`, `autonomous_system_*`) and of IPinfo Lite (`country_code`,
/// `country` as a name, `asn` as `AS123`, `as_name`). Everything else is skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Record {
    country: Option<CountryField>,
    city: Option<Named>,
    subdivisions: Option<Vec<Named>>,
    location: Option<Coordinates>,
    autonomous_system_number: Option<Number>,
    autonomous_system_organization: Option<String>,
    country_code: Option<String>,
    asn: Option<String>,
    as_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CountryField {
    Record(Named),
    Name(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    iso_code: Option<String>,
    names: EnglishName,
}

/// Only the English name of a `names` map is decoded: a GeoLite2 record names each place in
/// eight languages, and building a map of all of them for every event took about a third of a
/// lookup (`logbook-bench --geoip`: 4.0 against 2.7 µs per event, its generation included).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EnglishName {
    en: Option<String>,
}

impl Named {
    fn english(&self) -> Option<String> {
        self.names.en.clone()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Coordinates {
    latitude: Option<Number>,
    longitude: Option<Number>,
    accuracy_radius: Option<Number>,
}

/// A number of any of the format's widths. The reader decodes a field only as the exact type the
/// file stores (MaxMind writes an ASN as uint32, an accuracy radius as uint16, coordinates as
/// doubles), and other writers pick the smallest type that fits, so every number is read through
/// `deserialize_any` and converted here.
#[derive(Debug, Clone, Copy)]
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    fn as_u32(self) -> Option<u32> {
        match self {
            Number::Unsigned(value) => u32::try_from(value).ok(),
            Number::Signed(value) => u32::try_from(value).ok(),
            Number::Float(_) => None,
        }
    }

    fn as_f64(self) -> Option<f64> {
        let value = match self {
            Number::Unsigned(value) => value as f64,
            Number::Signed(value) => value as f64,
            Number::Float(value) => value,
        };
        value.is_finite().then_some(value)
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl serde::de::Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a number")
            }
            fn visit_u64<E>(self, value: u64) -> Result<Number, E> {
                Ok(Number::Unsigned(value))
            }
            fn visit_u128<E: serde::de::Error>(self, value: u128) -> Result<Number, E> {
                u64::try_from(value)
                    .map(Number::Unsigned)
                    .map_err(|_| E::custom("number out of range"))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Number, E> {
                Ok(Number::Signed(value))
            }
            fn visit_f64<E>(self, value: f64) -> Result<Number, E> {
                Ok(Number::Float(value))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

/// Longest name kept from a database, in bytes: a database is data from outside, and a
/// location is stored with every event.
const MAX_NAME_BYTES: usize = 128;

/// A name as stored: control characters (U+0000 included, which PostgreSQL's `text` cannot hold
/// and ingest refuses in every event) are dropped, then the name is cut at `MAX_NAME_BYTES`.
fn bounded(text: Option<String>) -> Option<String> {
    let mut text = text?;
    if text.chars().any(char::is_control) {
        text.retain(|character| !character.is_control());
    }
    if text.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Some(text).filter(|text| !text.is_empty())
}

impl Record {
    fn into_location(self) -> Location {
        let (country_code, country_name) = match self.country {
            Some(CountryField::Record(country)) => (country.iso_code.clone(), country.english()),
            Some(CountryField::Name(name)) => (None, Some(name)),
            None => (None, None),
        };
        let country_code = country_code
            .or(self.country_code)
            .and_then(|code| CountryCode::parse(&code).ok())
            .map(|code| code.as_str().to_owned());
        let coordinates = self.location.unwrap_or_default();
        let asn = self
            .autonomous_system_number
            .and_then(Number::as_u32)
            .or_else(|| {
                self.asn
                    .as_deref()
                    .and_then(|text| logbook_core::location::parse_asn(text).ok())
            });
        Location {
            country_code,
            country_name: bounded(country_name),
            region: bounded(
                self.subdivisions
                    .and_then(|subdivisions| subdivisions.first().and_then(Named::english)),
            ),
            city: bounded(self.city.as_ref().and_then(Named::english)),
            latitude: coordinates.latitude.and_then(Number::as_f64),
            longitude: coordinates.longitude.and_then(Number::as_f64),
            accuracy_radius_km: coordinates.accuracy_radius.and_then(Number::as_u32),
            asn,
            organization: bounded(self.autonomous_system_organization.or(self.as_name)),
        }
    }
}

/// Fills what `into` lacks from `from` (the city database answers first).
fn merge(into: &mut Location, from: Location) {
    macro_rules! fill {
        ($($field:ident),*) => { $( if into.$field.is_none() { into.$field = from.$field; } )* };
    }
    fill!(
        country_code,
        country_name,
        region,
        city,
        latitude,
        longitude,
        accuracy_radius_km,
        asn,
        organization
    );
}

impl IpLocator for IpDatabases {
    fn locate(&self, ip: IpAddr) -> Option<Location> {
        let ip = ip.to_canonical();
        let mut location = Location::default();
        for database in &self.databases {
            let reader = database
                .reader
                .read()
                .expect("IP database lock poisoned")
                .clone();
            // An address the database cannot hold (IPv6 in an IPv4 database) or a record that
            // does not decode has no location from it; ingest never fails for one.
            let Ok(found) = reader.lookup(ip) else {
                continue;
            };
            if let Ok(Some(record)) = found.decode::<Record>() {
                merge(&mut location, record.into_location());
            }
        }
        (!location.is_empty()).then_some(location)
    }

    fn located_columns(&self, ip: IpAddr) -> Option<Arc<LocationColumns>> {
        let ip = ip.to_canonical();
        let replacements = self.replacements.load(Ordering::Acquire);
        {
            let remembered = self.remembered.lock().expect("IP answers lock poisoned");
            if remembered.replacements == replacements
                && let Some(answer) = remembered.answers.get(&ip)
            {
                return answer.clone();
            }
        }
        let answer = self
            .locate(ip)
            .and_then(|location| LocationColumns::of_location(&location))
            .map(Arc::new);
        let mut remembered = self.remembered.lock().expect("IP answers lock poisoned");
        if remembered.replacements < replacements {
            remembered.answers.clear();
            remembered.replacements = replacements;
        }
        // An answer made before a replacement another lookup has already seen is not kept.
        if remembered.replacements == replacements {
            if remembered.answers.len() >= MOST_REMEMBERED_ADDRESSES {
                remembered.answers.clear();
            }
            remembered.answers.insert(ip, answer.clone());
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_a_database_lose_control_characters_and_are_cut_at_128_bytes() {
        assert_eq!(
            bounded(Some("Mum\u{0}bai\u{1b}[31m\n".to_owned())),
            Some("Mumbai[31m".to_owned())
        );
        assert_eq!(bounded(Some("\u{0}\u{7}".to_owned())), None);
        let long = "é".repeat(100);
        let kept = bounded(Some(long)).unwrap();
        assert_eq!(kept.len(), 128);
        assert!(kept.chars().all(|character| character == 'é'));
    }
}
