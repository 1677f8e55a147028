//! The JSON API, by version, and the producer protocols Logbook also speaks (Retraced's publisher
//! API, WorkOS's audit log events, OTLP/HTTP logs), each a thin translation into the same ingest
//! path (`producer_ingest`).

pub mod otlp;
pub(crate) mod producer_ingest;
pub mod retraced;
pub mod v1;
pub mod workos;
