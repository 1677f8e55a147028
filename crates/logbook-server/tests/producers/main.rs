//! The producer protocols, tested with the real, unmodified clients producers already run: the
//! `@retracedhq/retraced` npm package, the `workos` Python SDK, and OpenTelemetry's Python SDK
//! (OTLP/HTTP protobuf with gzip) and JavaScript SDK (OTLP/HTTP JSON). Each test starts a server
//! on `127.0.0.1:0`, runs a client script from `scripts/` through a recording proxy (which can
//! also lose one answer, to make the client retry), then reads the events back through Logbook's
//! own API. The clients are installed by `.ci/run` into `clients/` (pinned in `package.json` and
//! `requirements.txt`); without them a local run prints `SKIPPED (...)` and CI fails.

#[path = "../api/support.rs"]
#[allow(dead_code)]
mod support;

mod harness;
mod otlp;
mod retraced;
mod workos;
