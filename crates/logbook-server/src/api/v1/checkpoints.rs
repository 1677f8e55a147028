//! The verifiable log of the key's account, read scope: `GET /api/v1/checkpoints/latest`,
//! `GET /api/v1/checkpoints?before=&limit=` (history, largest tree first),
//! `GET /api/v1/proofs/inclusion?seq=&tree_size=` and `GET /api/v1/proofs/consistency?from=&to=`.
//!
//! Proofs are built from O(log n) stored subtree hashes fetched in one store call
//! (`logbook_core::merkle`), so each answer costs logarithmic work whatever the log's size.
//! A parameter that is not a whole number in its documented range is a 400; a proof that does
//! not exist in the account's tree as it stands (a size beyond the current tree, a `seq` not
//! below the tree size, `from` above `to`) is a 404 naming the parameter. Hashes are lowercase
//! hex; checkpoints are the signed note text.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use logbook_core::export_verification::hex;
use logbook_core::merkle;
use logbook_core::store::{LogTree, StoredCheckpoint};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::auth::ReadAccount;
use crate::error::ApiError;
use crate::reading::proofs::{check_within_head, inclusion_proof, invalid_range, root_node_ids};
use crate::reading::{MAX_WHOLE_NUMBER_PARAMETER, whole_number_parameter};
use crate::state::AppState;

const DEFAULT_HISTORY_LIMIT: u32 = 100;
pub(crate) const MAX_HISTORY_LIMIT: u32 = 1000;

fn log_tree(state: &AppState) -> Result<&dyn LogTree, ApiError> {
    state.store().log_tree().ok_or(ApiError::Unavailable)
}

/// The JSON form of a stored checkpoint.
pub fn checkpoint_json(checkpoint: &StoredCheckpoint) -> Value {
    json!({
        "account": checkpoint.account.as_str(),
        "tree_size": checkpoint.tree_size,
        "root_hash": hex(&checkpoint.root_hash),
        "signed_at": checkpoint.signed_at.format(&Rfc3339).unwrap_or_default(),
        "checkpoint": checkpoint.text,
    })
}

/// A seq or a tree size: `minimum` to the largest number the document allows.
fn whole_number(
    text: Option<&str>,
    field: &'static str,
    minimum: u64,
) -> Result<Option<u64>, ApiError> {
    whole_number_parameter(
        text,
        field,
        "invalid_parameters",
        minimum..=MAX_WHOLE_NUMBER_PARAMETER,
    )
}

/// `GET /api/v1/checkpoints/latest`: the account's newest signed checkpoint (404 before the first).
#[utoipa::path(
    get,
    path = "/api/v1/checkpoints/latest",
    operation_id = "latest_checkpoint",
    tag = "verification",
    security(("read_key" = [])),
    responses(
        (status = 200, description = "The newest signed checkpoint", body = crate::api::v1::openapi::CheckpointDocument),
        (status = 404, description = "No checkpoint yet", body = crate::api::v1::openapi::ErrorDocument),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn latest(
    State(state): State<AppState>,
    reader: ReadAccount,
) -> Result<Json<Value>, ApiError> {
    let checkpoint = log_tree(&state)?
        .latest_checkpoint(&reader.account)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(checkpoint_json(&checkpoint)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParameters {
    /// Only checkpoints of a tree smaller than this (the previous page's `next_before`).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9007199254740991_u64)]
    before: Option<String>,
    /// At most this many checkpoints (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// `GET /api/v1/checkpoints?before=&limit=`: checkpoints with a tree smaller than `before`,
/// largest first; `next_before` pages on.
#[utoipa::path(
    get,
    path = "/api/v1/checkpoints",
    operation_id = "list_checkpoints",
    tag = "verification",
    params(HistoryParameters),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "Checkpoints, largest tree first", body = Object),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn list(
    State(state): State<AppState>,
    reader: ReadAccount,
    query: Result<Query<HistoryParameters>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query?;
    let before = whole_number(query.before.as_deref(), "before", 0)?;
    let limit = whole_number_parameter(
        query.limit.as_deref(),
        "limit",
        "invalid_limit",
        1..=u64::from(MAX_HISTORY_LIMIT),
    )?
    .map_or(DEFAULT_HISTORY_LIMIT, |limit| limit as u32);
    let checkpoints = log_tree(&state)?
        .checkpoints(&reader.account, before, limit)
        .await?;
    let next_before = (checkpoints.len() == limit as usize)
        .then(|| checkpoints.last().map(|checkpoint| checkpoint.tree_size))
        .flatten();
    Ok(Json(json!({
        "checkpoints": checkpoints.iter().map(checkpoint_json).collect::<Vec<_>>(),
        "next_before": next_before,
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionParameters {
    /// The event's seq.
    #[param(required = true, value_type = u64, minimum = 0, maximum = 9007199254740991_u64)]
    seq: Option<String>,
    /// The size of the tree to prove it in (default: the current tree).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 9007199254740991_u64)]
    tree_size: Option<String>,
}

/// `GET /api/v1/proofs/inclusion?seq=&tree_size=`: the inclusion proof of event `seq` in the
/// account's tree of `tree_size` leaves (default: the current tree).
#[utoipa::path(
    get,
    path = "/api/v1/proofs/inclusion",
    operation_id = "inclusion_proof",
    tag = "verification",
    params(InclusionParameters),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "The inclusion proof", body = Object),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such proof in the account's tree as it stands (`invalid_range`): a size beyond the current tree, a `seq` not below the tree size, or `from` above `to`; field names the parameter", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn inclusion(
    State(state): State<AppState>,
    reader: ReadAccount,
    query: Result<Query<InclusionParameters>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query?;
    let seq = whole_number(query.seq.as_deref(), "seq", 0)?.ok_or_else(|| {
        ApiError::bad_request("invalid_parameters", "seq is required", Some("seq"))
    })?;
    let tree_size = whole_number(query.tree_size.as_deref(), "tree_size", 1)?;
    let proof = inclusion_proof(log_tree(&state)?, &reader.account, seq, tree_size).await?;
    Ok(Json(proof))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParameters {
    /// The size of the older tree (a tree of 0 events commits to nothing).
    #[param(required = true, value_type = u64, minimum = 1, maximum = 9007199254740991_u64)]
    from: Option<String>,
    /// The size of the newer tree (default: the current tree).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 9007199254740991_u64)]
    to: Option<String>,
}

/// `GET /api/v1/proofs/consistency?from=&to=`: the consistency proof from the tree of `from`
/// leaves to the tree of `to` leaves (default: the current tree).
#[utoipa::path(
    get,
    path = "/api/v1/proofs/consistency",
    operation_id = "consistency_proof",
    tag = "verification",
    params(ConsistencyParameters),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "The consistency proof", body = Object),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such proof in the account's tree as it stands (`invalid_range`): a size beyond the current tree, a `seq` not below the tree size, or `from` above `to`; field names the parameter", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn consistency(
    State(state): State<AppState>,
    reader: ReadAccount,
    query: Result<Query<ConsistencyParameters>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query?;
    let from = whole_number(query.from.as_deref(), "from", 1)?.ok_or_else(|| {
        ApiError::bad_request("invalid_parameters", "from is required", Some("from"))
    })?;
    let tree = log_tree(&state)?;
    let head = tree.tree_head(&reader.account).await?;
    let to = whole_number(query.to.as_deref(), "to", 1)?.unwrap_or(head.tree_size);
    check_within_head(to, head.tree_size, "to")?;
    let mut node_ids = merkle::consistency_proof_node_ids(from, to)
        .map_err(|error| invalid_range(error, "from"))?;
    node_ids.extend(root_node_ids(from));
    node_ids.extend(root_node_ids(to));
    let nodes = tree.tree_nodes(&reader.account, &node_ids).await?;
    let proof = merkle::consistency_proof(&nodes, from, to).map_err(ApiError::internal)?;
    let old_root = merkle::root_at(&nodes, from).map_err(ApiError::internal)?;
    let new_root = merkle::root_at(&nodes, to).map_err(ApiError::internal)?;
    Ok(Json(json!({
        "from": from,
        "to": to,
        "old_root_hash": hex(&old_root),
        "new_root_hash": hex(&new_root),
        "proof": proof.iter().map(|hash| hex(hash)).collect::<Vec<_>>(),
    })))
}
