//! `GET /api/v1/events/export/verifiable`: the NDJSON export that a customer
//! can check offline with `logbook verify FILE --public-key KEY` (format in
//! `logbook_core::export_verification`).
//!
//! The export is cut against the account's newest checkpoint, signed on the spot when the tree
//! grew since the last one, so it holds every matching event committed before the request. Each
//! line carries its leaf hash and inclusion proof; the nodes of a whole chunk of proofs are read
//! in one store call. The last line is the signed trailer.
//!
//! It is opt-in rather than the NDJSON default because every line costs a proof (O(log n) node
//! reads and ~1 KiB of hashes per event), which a SIEM feed re-reading the log does not need.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use logbook_core::checkpoint::{Checkpoint, checkpoint_origin};
use logbook_core::export_verification::{ExportSelection, write_export_event_line};
use logbook_core::leaf::EventLeaf;
use logbook_core::merkle::{self, NodeId};
use logbook_core::store::StoredCheckpoint;
use logbook_core::{AccountId, EventRow, Store, StoreError};

use crate::error::{ApiError, ErrorChain};
use crate::state::AppState;
use crate::workers::checkpointer::CheckpointSigning;

const ROWS_PER_CHUNK: usize = 256;

/// The newest checkpoint of `account`, signing one first if its tree grew since.
async fn current_checkpoint(
    store: &dyn Store,
    signing: &CheckpointSigning,
    account: &AccountId,
    now: time::OffsetDateTime,
) -> Result<Option<StoredCheckpoint>, ApiError> {
    let tree = store.log_tree().ok_or(ApiError::Unavailable)?;
    let head = tree.tree_head(account).await?;
    let latest = tree.latest_checkpoint(account).await?;
    let covered = latest.as_ref().map_or(0, |latest| latest.tree_size);
    if head.tree_size > covered {
        let origin = checkpoint_origin(&signing.instance_name, account);
        let signed = signing
            .signer
            .sign(&origin, head.tree_size, &head.root_hash)
            .map_err(ApiError::internal)?;
        tree.store_checkpoint(&StoredCheckpoint {
            account: account.clone(),
            tree_size: head.tree_size,
            root_hash: head.root_hash,
            signed_at: now,
            text: signed.text,
        })
        .await?;
        return Ok(tree.latest_checkpoint(account).await?);
    }
    Ok(latest)
}

#[derive(Debug, thiserror::Error)]
enum VerifiableExportError {
    #[error("reading events or tree nodes failed")]
    Store(#[source] StoreError),
    #[error("a stored event could not be encoded as a leaf")]
    Leaf(#[source] logbook_core::leaf::LeafEncodingError),
    #[error("an inclusion proof could not be built")]
    Proof(#[source] merkle::MerkleError),
}

pub(crate) async fn verifiable_export_response(
    state: &AppState,
    account: &AccountId,
    query: logbook_core::query::Query,
    filename: String,
) -> Result<Response, ApiError> {
    // Both refusals depend on the server's and the account's state, not on the request: 409.
    let signing = state
        .checkpoint_signing()
        .cloned()
        .ok_or_else(|| ApiError::Conflict {
            code: "verifiable_export_unavailable",
            message: "this server signs no checkpoints, so it cannot cut a verifiable export"
                .to_owned(),
            field: None,
        })?;
    let store = state.store().clone();
    let Some(stored) =
        current_checkpoint(store.as_ref(), &signing, account, state.clock().now()).await?
    else {
        // An account without events: an export of nothing, against nothing, proves nothing.
        return Err(ApiError::Conflict {
            code: "nothing_to_verify",
            message:
                "the account has no events yet, so there is no checkpoint to cut an export against"
                    .to_owned(),
            field: None,
        });
    };
    let checkpoint = Checkpoint {
        origin: checkpoint_origin(&signing.instance_name, account),
        tree_size: stored.tree_size,
        root_hash: stored.root_hash,
    };
    let tree_size = stored.tree_size;
    let selection = Arc::new(Mutex::new(ExportSelection::new()));

    let chunk_store = store.clone();
    let chunk_account = account.clone();
    let chunk_selection = selection.clone();
    let chunks = store
        .export_events(account, query)
        .ready_chunks(ROWS_PER_CHUNK)
        .then(move |rows| {
            let store = chunk_store.clone();
            let account = chunk_account.clone();
            let selection = chunk_selection.clone();
            async move {
                encode_chunk(store.as_ref(), &account, tree_size, rows, &selection)
                    .await
                    .inspect_err(|error| {
                        tracing::error!(error = %ErrorChain(error), "verifiable export stopped part-way");
                    })
            }
        });
    let trailer = futures::stream::once(async move {
        let selection = std::mem::take(&mut *selection.lock().expect("selection lock poisoned"));
        Ok::<_, VerifiableExportError>(Bytes::from(selection.trailer_line(
            &signing.signer,
            &stored.text,
            &checkpoint,
        )))
    });
    let mut response = Body::from_stream(chunks.chain(trailer)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .map_err(ApiError::internal)?,
    );
    Ok(response)
}

async fn encode_chunk(
    store: &dyn Store,
    account: &AccountId,
    tree_size: u64,
    rows: Vec<Result<EventRow, StoreError>>,
    selection: &Mutex<ExportSelection>,
) -> Result<Bytes, VerifiableExportError> {
    let tree = store
        .log_tree()
        .ok_or_else(|| VerifiableExportError::Store(StoreError::Unavailable("no tree".into())))?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let row = row.map_err(VerifiableExportError::Store)?;
        // Events committed after the checkpoint are not covered by it.
        if row.seq < tree_size {
            events.push(row);
        }
    }
    let mut node_ids: Vec<NodeId> = Vec::new();
    let mut leaves = Vec::with_capacity(events.len());
    for event in &events {
        let leaf = event.leaf().map_err(VerifiableExportError::Leaf)?;
        // An event erased before leaf version 2 cannot prove its leaf from its content: the
        // export carries the leaf stored when it was committed, and the verifier says so.
        if matches!(leaf, EventLeaf::ErasedBeforeVersion2 { .. }) {
            node_ids.push(NodeId::new(0, event.seq));
        }
        leaves.push(leaf);
        node_ids.extend(
            merkle::inclusion_proof_node_ids(event.seq, tree_size)
                .map_err(VerifiableExportError::Proof)?,
        );
    }
    node_ids.sort_unstable();
    node_ids.dedup();
    let nodes = tree
        .tree_nodes(account, &node_ids)
        .await
        .map_err(VerifiableExportError::Store)?;
    let mut out = Vec::with_capacity(events.len() * 1536);
    let mut event_json = Vec::with_capacity(1024);
    let mut selection = selection.lock().expect("selection lock poisoned");
    for (event, leaf) in events.iter().zip(&leaves) {
        let leaf_hash = match leaf.verifiable_hash() {
            Some(leaf_hash) => leaf_hash,
            None => *nodes.get(&NodeId::new(0, event.seq)).ok_or_else(|| {
                VerifiableExportError::Store(StoreError::Unavailable(format!(
                    "the stored leaf of erased event seq {} is missing",
                    event.seq
                )))
            })?,
        };
        let proof = merkle::inclusion_proof(&nodes, event.seq, tree_size)
            .map_err(VerifiableExportError::Proof)?;
        event_json.clear();
        event.write_json(&mut event_json);
        write_export_event_line(&mut out, &event_json, &leaf_hash, &proof);
        selection.push(event.seq);
    }
    metrics::counter!("logbook_events_exported_total", "format" => "verifiable_ndjson")
        .increment(events.len() as u64);
    Ok(Bytes::from(out))
}
