//! Logbook's domain, free of I/O: the event model and its validation, the query language,
//! cursors, API keys, the `Store` trait every backend implements, and the `Clock`.
//!
//! Everything here is shared by the store crates, the server and the binary; nothing here knows
//! SQL or HTTP.

pub mod account;
pub mod alerting;
pub mod api_key;
pub mod attention;
pub mod checkpoint;
pub mod checkpoint_check;
pub mod client_ip;
pub mod clock;
pub mod cursor;
pub mod delivery_format;
pub mod event;
pub mod export_verification;
pub mod ids;
pub mod ingest;
pub mod leaf;
pub mod location;
pub mod log_verification;
pub mod merkle;
pub mod people;
pub mod personal_data;
pub mod query;
pub mod retention;
pub mod single_sign_on;
pub mod store;
pub mod terminal_text;
pub mod timeline;
pub mod totp;

pub mod unfamiliar_ip;
pub mod viewer;
pub mod volume_quota;
pub use account::AccountId;
pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{EventRow, NewEvent, StoredEvent};
pub use store::{Store, StoreError};
