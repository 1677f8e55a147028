//! The idempotency rules both writers apply: a key already stored for the account answers with the
//! original event's receipt, as a duplicate when the content is the same and as a reuse when it
//! differs; a key seen earlier in the same group commit counts exactly as if it had been stored in
//! an earlier commit.

use std::collections::HashMap;

use logbook_core::StoreError;
use logbook_core::store::{AppendOutcome, AppendReceipt, LeafReceipt};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What one idempotency key already stands for: the original's receipt and content fingerprint.
#[derive(Debug, Clone)]
pub struct KeyedOriginal {
    pub receipt: AppendReceipt,
    pub fingerprint: Vec<u8>,
}

impl KeyedOriginal {
    /// The answer to an event that carries this key again with content `fingerprint`.
    pub fn replay_outcome(&self, fingerprint: &[u8]) -> AppendOutcome {
        if self.fingerprint == fingerprint {
            AppendOutcome::Duplicate(self.receipt.clone())
        } else {
            AppendOutcome::KeyReusedWithDifferentContent {
                original: self.receipt.clone(),
            }
        }
    }

    /// The original as read back from its stored row: its `seq`, its JSON body (which holds `id`
    /// and `received_at`: duplicates are rare, so the row keeps no columns for them), its
    /// fingerprint and its leaf hash.
    pub fn from_stored(
        seq: u64,
        body: &str,
        fingerprint: Vec<u8>,
        leaf_hash: Option<Vec<u8>>,
    ) -> Result<Self, StoreError> {
        let leaf = leaf_hash
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(|leaf_hash| LeafReceipt {
                leaf_hash,
                tree_size: seq + 1,
            });
        let receipt = receipt_from_body(seq, body, leaf).ok_or_else(|| StoreError::Database {
            context: "reading the original of an idempotency key",
            message: "a stored event body lacks id or received_at".into(),
        })?;
        Ok(KeyedOriginal {
            receipt,
            fingerprint,
        })
    }
}

fn receipt_from_body(seq: u64, body: &str, leaf: Option<LeafReceipt>) -> Option<AppendReceipt> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let id = value.get("id")?.as_str()?.into();
    let received_at = OffsetDateTime::parse(value.get("received_at")?.as_str()?, &Rfc3339).ok()?;
    Some(AppendReceipt {
        id,
        seq,
        received_at,
        leaf,
    })
}

/// The keys a group commit has stored so far, per account row, so a second event with a key
/// later in the group is answered as its duplicate.
#[derive(Debug, Default)]
pub struct KeysInGroup {
    originals: HashMap<(i64, String), KeyedOriginal>,
}

impl KeysInGroup {
    pub fn get(&self, account_row: i64, key: &str) -> Option<&KeyedOriginal> {
        self.originals.get(&(account_row, key.to_owned()))
    }

    pub fn contains(&self, account_row: i64, key: &str) -> bool {
        self.originals.contains_key(&(account_row, key.to_owned()))
    }

    /// Remembers a key stored (or found stored) in this group.
    pub fn remember(&mut self, account_row: i64, key: &str, original: KeyedOriginal) {
        self.originals
            .insert((account_row, key.to_owned()), original);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original() -> KeyedOriginal {
        KeyedOriginal::from_stored(
            4,
            r#"{"id":"evt-1","received_at":"2024-06-01T07:12:00.12Z","action":"a.b"}"#,
            vec![1, 2, 3],
            Some(vec![7; 32]),
        )
        .unwrap()
    }

    #[test]
    fn the_same_content_is_a_duplicate_and_other_content_a_reuse() {
        let original = original();
        assert!(matches!(
            original.replay_outcome(&[1, 2, 3]),
            AppendOutcome::Duplicate(receipt) if receipt.id == "evt-1" && receipt.seq == 4
        ));
        assert!(matches!(
            original.replay_outcome(&[9]),
            AppendOutcome::KeyReusedWithDifferentContent { original } if original.seq == 4
        ));
    }

    #[test]
    fn the_receipt_of_a_stored_original_has_its_leaf_and_the_tree_size_after_it() {
        let leaf = original().receipt.leaf.unwrap();
        assert_eq!(leaf.leaf_hash, [7; 32]);
        assert_eq!(leaf.tree_size, 5);
    }

    #[test]
    fn a_body_without_its_id_is_a_database_error() {
        assert!(KeyedOriginal::from_stored(0, "{}", Vec::new(), None).is_err());
    }
}
