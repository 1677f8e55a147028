//! Terminal-safe text.
