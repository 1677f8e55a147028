//! The HTTP API, tested end to end: a real server on `127.0.0.1:0` over a fresh SQLite store per
//! test, driven with reqwest (and raw TCP where the exact bytes on the wire matter).

mod auth;
mod checkpoints;
mod export;
mod ingest;
#[path = "../ip_database_writer/writer.rs"]
mod ip_database_writer;
mod ip_databases;
mod management;
mod operations;
mod query;
mod retention;
mod support;
mod tail;
mod viewer_sessions;
