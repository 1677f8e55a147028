//! Version 1 of the JSON API, one module per resource.

pub mod checkpoints;
pub mod events;
pub mod manage;
pub mod openapi;
pub mod viewer_sessions;
