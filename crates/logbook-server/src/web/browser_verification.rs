//! "Verified in your browser" on the event view (issue 15, item 5): what the page hands to
//! `assets/verify.js` so the browser itself checks the event against the signed checkpoint.
//!
//! The browser gets the same inputs a verifiable export gives a reader (`reading::verifiable_export`):
//! the event exactly as stored (its JSON object with `seq`, including leaf version 2's salts and
//! kept commitments), its leaf hash, the inclusion proof, the signed checkpoint, and the
//! checkpoint key `logbook checkpoint-key` prints. They travel as data attributes, which the
//! template escapes like any text and the browser never executes, so the page keeps its strict
//! CSP and hostile event text stays inert. The script takes no URL from anywhere, so the view
//! works under any path prefix.
//!
//! The key comes from the same server as the page, so on its own the check proves the page's data
//! is consistent with a checkpoint signed by that key; the person compares the key with the one
//! their operator publishes and can pin it in the browser (README, "Verified in your browser").

use logbook_core::EventRow;

use crate::web::activity::InclusionView;
use crate::web::assets;

/// The data attributes of the event view's `#browser-verification` section.
pub struct BrowserVerificationView {
    /// The stored event as JSON, exactly the object a verifiable export line starts from, with
    /// every non-ASCII character written as a `\u` escape (`ascii_json`).
    pub event_json: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub root_hash: String,
    /// The proof's hashes, lowercase hex, separated by single spaces.
    pub audit_path: String,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// When this server says it signed the checkpoint (the note itself carries no time).
    pub signed_at: String,
    /// `<name>+<key ID>+<key>` as `logbook checkpoint-key` prints it; empty when this server has
    /// no signing key (the script then says the signature cannot be checked here).
    pub verifier_key: String,
    /// The hashed URL of `verify.js`, which `app.js` imports on this page only.
    pub script_url: &'static str,
}

impl BrowserVerificationView {
    pub fn new(row: &EventRow, inclusion: &InclusionView, verifier_key: Option<String>) -> Self {
        let verifier_key = verifier_key.unwrap_or_default();
        Self {
            event_json: ascii_json(&row.to_json()),
            leaf_index: inclusion.seq,
            tree_size: inclusion.tree_size,
            leaf_hash: inclusion.leaf_hash.clone(),
            root_hash: inclusion.root_hash.clone(),
            audit_path: inclusion.proof.join(" "),
            checkpoint: inclusion.checkpoint.clone(),
            signed_at: inclusion.signed_at.clone(),
            verifier_key,
            script_url: assets::verification_script_url(),
        }
    }
}

/// `json` with every non-ASCII character written as `\uXXXX` (UTF-16, surrogate pairs above
/// U+FFFF): the same JSON value, but a bidi override or zero-width character in an event never
/// appears raw in the page's HTML, even inside an attribute nobody sees. Outside strings JSON is
/// ASCII, and serde_json already escapes control characters, so only string contents change.
pub fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for character in json.chars() {
        if character.is_ascii() {
            out.push(character);
        } else {
            let mut units = [0u16; 2];
            for unit in character.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_characters_of_the_event_json_are_escaped_and_mean_the_same() {
        let text = r#"{"message":"\u202eevil\u200b é 😀 \n","metadata":{"ü":"~"}}"#;
        let raw: serde_json::Value = serde_json::from_str(text).unwrap();
        let written = serde_json::to_string(&raw).unwrap();
        assert!(
            written.contains('\u{202e}'),
            "serde_json writes it raw: {written}"
        );
        let escaped = ascii_json(&written);
        assert_eq!(
            escaped,
            r#"{"message":"\u202eevil\u200b \u00e9 \ud83d\ude00 \n","metadata":{"\u00fc":"~"}}"#
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&escaped).unwrap(),
            raw
        );
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::vec((any::<String>(), inner), 0..4)
                    .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn escaping_non_ascii_keeps_any_json_value_and_leaves_only_ascii(value in arbitrary_json()) {
            let escaped = ascii_json(&serde_json::to_string(&value).unwrap());
            proptest::prop_assert!(escaped.is_ascii());
            proptest::prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&escaped).unwrap(), value);
        }
    }
}
