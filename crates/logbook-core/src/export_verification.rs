//! The verifiable NDJSON export format, how to write it, and its offline verifier
//! (`logbook verify export.ndjson --public-key ...`).
//!
//! # Format (v1)
//!
//! An export is cut against one signed checkpoint of the account (tree size `N`). Every event it
//! contains has `seq < N`. It may be the whole account or any filtered subset, in any order.
//!
//! - Lines 1..=n: one event each, the JSON object Logbook returns for it, plus two fields:
//!   `"leaf_hash":"<64 lowercase hex>"` (see `crate::leaf`) and
//!   `"inclusion_proof":["<64 hex>",...]`, the RFC 6962 inclusion proof of leaf `seq` in the
//!   checkpoint's tree.
//! - The last line, the trailer:
//!   `{"checkpoint":"<signed checkpoint>","selection":"<signed selection note>","seq_runs":[[start,count],...]}`.
//!
//! The checkpoint alone proves each line's event is in the account's log, unchanged. What it
//! cannot prove for a subset is that no line was dropped, inserted or moved: that is what the
//! selection note is for. It is a signed note by the same key whose text is
//!
//! ```text
//! <checkpoint origin>
//! logbook export selection v1
//! <checkpoint tree size>
//! <event count>
//! <base64 SHA-256 of the exported seqs, in line order, each as 8 big-endian bytes>
//! ```
//!
//! `seq_runs` spells out that list (runs of consecutive seqs, so a full export is one run); the
//! verifier checks it hashes to the signed digest and then that line `k` holds the `k`-th seq,
//! which is how a dropped, inserted or reordered line is named by its line number.
//!
//! # Verification
//!
//! The verifier reads the input twice (it needs the trailer, which comes last, before it can
//! check the first line), holding one line at a time. A line fails when it is not a JSON object,
//! its `seq` is not the one the signed selection puts there, its content does not hash to its
//! `leaf_hash`, its proof does not lead to the checkpoint root, or its account is not the
//! checkpoint's.

use std::io::{BufRead, Seek, SeekFrom};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointSigner, CheckpointVerifier};
use crate::leaf::{EventLeaf, event_leaf_of_json_object};
#[cfg(test)]
use crate::leaf::{leaf_bytes_from_json_object, leaf_hash_of_bytes};
use crate::merkle::{self, Hash};

const SELECTION_NOTE_TAG: &str = "logbook export selection v1";

/// A verified export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportVerified {
    pub event_count: u64,
    /// Lines whose personal fields were removed and whose remaining content verified
    /// (leaf version 2).
    pub events_with_removed_personal_data: u64,
    /// Lines of events stored before leaf version 2 whose personal fields were removed: their
    /// `leaf_hash` is proved in the tree, but their content cannot be checked against it.
    pub erased_events_not_verifiable: u64,
    pub tree_size: u64,
    pub origin: String,
    pub root_hash: Hash,
}

/// Why an export failed verification, and on which line (1-based; the trailer's line for
/// problems with the trailer or with lines missing at the end).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ExportVerificationError {
    pub line: usize,
    pub reason: String,
}

fn fail<T>(line: usize, reason: impl Into<String>) -> Result<T, ExportVerificationError> {
    Err(ExportVerificationError {
        line,
        reason: reason.into(),
    })
}

pub(crate) fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize]);
        out.push(DIGITS[(byte & 15) as usize]);
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    write_hex(&mut out, bytes);
    String::from_utf8(out).expect("hex digits are ASCII")
}

fn parse_hash_hex(text: &str) -> Option<Hash> {
    if text.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (index, pair) in text.as_bytes().chunks_exact(2).enumerate() {
        let digit = |byte: u8| match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'a'..=b'f' => Some(byte - b'a' + 10),
            _ => None,
        };
        hash[index] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(hash)
}

/// Appends one export event line: `event_json` is the event object as reads return it
/// (`EventRow::write_json`), spliced with its leaf hash and inclusion proof, then a newline.
pub fn write_export_event_line(
    out: &mut Vec<u8>,
    event_json: &[u8],
    leaf_hash: &Hash,
    inclusion_proof: &[Hash],
) {
    debug_assert!(event_json.ends_with(b"}"));
    out.extend_from_slice(&event_json[..event_json.len() - 1]);
    out.extend_from_slice(b",\"leaf_hash\":\"");
    write_hex(out, leaf_hash);
    out.extend_from_slice(b"\",\"inclusion_proof\":[");
    for (position, hash) in inclusion_proof.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        out.push(b'"');
        write_hex(out, hash);
        out.push(b'"');
    }
    out.extend_from_slice(b"]}\n");
}

/// Collects the seqs of an export in line order, then signs the selection and writes the trailer.
#[derive(Debug, Default)]
pub struct ExportSelection {
    digest: Sha256,
    runs: Vec<(u64, u64)>,
    event_count: u64,
}

impl ExportSelection {
    pub fn new() -> Self {
        ExportSelection::default()
    }

    pub fn push(&mut self, seq: u64) {
        self.digest.update(seq.to_be_bytes());
        self.event_count += 1;
        match self.runs.last_mut() {
            Some((start, count)) if start.checked_add(*count) == Some(seq) => *count += 1,
            _ => self.runs.push((seq, 1)),
        }
    }

    /// The trailer line (with its newline) for an export cut against `checkpoint_text`, whose
    /// parsed form is `checkpoint`.
    pub fn trailer_line(
        self,
        signer: &CheckpointSigner,
        checkpoint_text: &str,
        checkpoint: &Checkpoint,
    ) -> String {
        let note = selection_note_text(
            &checkpoint.origin,
            checkpoint.tree_size,
            self.event_count,
            &self.digest.finalize().into(),
        );
        let trailer = serde_json::json!({
            "checkpoint": checkpoint_text,
            "selection": signer.sign_note(&note),
            "seq_runs": self.runs.iter().map(|(start, count)| [*start, *count]).collect::<Vec<_>>(),
        });
        let mut line = trailer.to_string();
        line.push('\n');
        line
    }
}

fn selection_note_text(
    origin: &str,
    tree_size: u64,
    event_count: u64,
    seqs_digest: &Hash,
) -> String {
    format!(
        "{origin}\n{SELECTION_NOTE_TAG}\n{tree_size}\n{event_count}\n{}\n",
        STANDARD.encode(seqs_digest)
    )
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    checkpoint: String,
    selection: String,
    seq_runs: Vec<(u64, u64)>,
}

/// What the trailer establishes: the checkpoint and the signed list of seqs, in line order.
struct VerifiedTrailer {
    checkpoint: Checkpoint,
    seq_runs: Vec<(u64, u64)>,
    event_count: u64,
}

fn verify_trailer(
    line: usize,
    text: &str,
    verifier: &CheckpointVerifier,
) -> Result<VerifiedTrailer, ExportVerificationError> {
    let trailer: Trailer = match serde_json::from_str(text) {
        Ok(trailer) => trailer,
        Err(_) => return fail(line, "the last line is not the export trailer"),
    };
    let checkpoint = verifier
        .parse_and_verify(&trailer.checkpoint)
        .or_else(|error| fail(line, format!("checkpoint: {error}")))?;
    let selection_text = verifier
        .verify_note(&trailer.selection)
        .or_else(|error: CheckpointError| fail(line, format!("selection: {error}")))?;
    let mut digest = Sha256::new();
    let mut event_count: u64 = 0;
    for &(start, count) in &trailer.seq_runs {
        let Some(end) = start.checked_add(count) else {
            return fail(line, "seq_runs overflow");
        };
        if end > checkpoint.tree_size {
            return fail(line, "seq_runs name events beyond the checkpoint");
        }
        for seq in start..end {
            digest.update(seq.to_be_bytes());
        }
        event_count += count;
    }
    let expected = selection_note_text(
        &checkpoint.origin,
        checkpoint.tree_size,
        event_count,
        &digest.finalize().into(),
    );
    if selection_text != expected {
        return fail(line, "seq_runs do not match the signed selection");
    }
    Ok(VerifiedTrailer {
        checkpoint,
        seq_runs: trailer.seq_runs,
        event_count,
    })
}

/// Reads the next line into `line` without its newline; `false` at the end of input.
fn next_line(
    reader: &mut impl BufRead,
    line: &mut String,
    number: usize,
) -> Result<bool, ExportVerificationError> {
    line.clear();
    match reader.read_line(line) {
        Ok(0) => Ok(false),
        Ok(_) => {
            if line.ends_with('\n') {
                line.pop();
            }
            Ok(true)
        }
        Err(error) => fail(number, format!("cannot read: {error}")),
    }
}

/// Verifies an export (module docs) offline with the instance's public key.
pub fn verify_export<R: BufRead + Seek>(
    mut reader: R,
    verifier: &CheckpointVerifier,
) -> Result<ExportVerified, ExportVerificationError> {
    // Pass 1: find the trailer, the last line.
    let mut line = String::new();
    let mut line_count = 0usize;
    let mut last_line = String::new();
    while next_line(&mut reader, &mut line, line_count + 1)? {
        line_count += 1;
        std::mem::swap(&mut last_line, &mut line);
    }
    if line_count == 0 {
        return fail(1, "the export is empty (no trailer)");
    }
    let trailer = verify_trailer(line_count, &last_line, verifier)?;
    let account = trailer.checkpoint.account().unwrap_or_default().to_owned();

    // Pass 2: every event line against the trailer.
    if let Err(error) = reader.seek(SeekFrom::Start(0)) {
        return fail(1, format!("cannot rewind: {error}"));
    }
    let mut expected_seqs = trailer
        .seq_runs
        .iter()
        .flat_map(|&(start, count)| start..start + count);
    let mut proof = Vec::with_capacity(64);
    let mut events_with_removed_personal_data = 0u64;
    let mut erased_events_not_verifiable = 0u64;
    for number in 1..line_count {
        if !next_line(&mut reader, &mut line, number)? {
            return fail(number, "the export changed while it was being verified");
        }
        let Some(expected_seq) = expected_seqs.next() else {
            return fail(
                number,
                "this line is not in the signed selection (inserted line)",
            );
        };
        let mut object: serde_json::Map<String, serde_json::Value> =
            match serde_json::from_str(&line) {
                Ok(object) => object,
                Err(_) => return fail(number, "not an event JSON object"),
            };
        let seq = object.get("seq").and_then(serde_json::Value::as_u64);
        if seq != Some(expected_seq) {
            return fail(
                number,
                format!(
                    "the signed selection puts seq {expected_seq} here (line dropped, inserted, reordered or edited)"
                ),
            );
        }
        if object.get("account").and_then(serde_json::Value::as_str) != Some(account.as_str()) {
            return fail(number, "the event's account is not the checkpoint's");
        }
        let Some(claimed_leaf_hash) = object
            .get("leaf_hash")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_hash_hex)
        else {
            return fail(number, "missing or malformed leaf_hash");
        };
        proof.clear();
        let proof_values = match object.remove("inclusion_proof") {
            Some(serde_json::Value::Array(values)) => values,
            _ => return fail(number, "missing or malformed inclusion_proof"),
        };
        for value in &proof_values {
            match value.as_str().and_then(parse_hash_hex) {
                Some(hash) => proof.push(hash),
                None => return fail(number, "malformed hash in inclusion_proof"),
            }
        }
        match event_leaf_of_json_object(&object) {
            Ok(EventLeaf::Verifiable { leaf_hash, .. }) if leaf_hash != claimed_leaf_hash => {
                return fail(
                    number,
                    "the event's content does not match its leaf_hash (edited line)",
                );
            }
            Ok(EventLeaf::Verifiable { removed_fields, .. }) => {
                if removed_fields > 0 {
                    events_with_removed_personal_data += 1;
                }
            }
            Ok(EventLeaf::ErasedBeforeVersion2 { .. }) => erased_events_not_verifiable += 1,
            Err(error) => return fail(number, format!("cannot canonicalize the event: {error}")),
        }
        if merkle::verify_inclusion(
            &claimed_leaf_hash,
            expected_seq,
            trailer.checkpoint.tree_size,
            &proof,
            &trailer.checkpoint.root_hash,
        )
        .is_err()
        {
            return fail(
                number,
                "the event is not in the checkpoint's tree (edited line or proof)",
            );
        }
    }
    if expected_seqs.next().is_some() {
        return fail(
            line_count,
            "the signed selection has more events than the export (line dropped)",
        );
    }
    Ok(ExportVerified {
        event_count: trailer.event_count,
        events_with_removed_personal_data,
        erased_events_not_verifiable,
        tree_size: trailer.checkpoint.tree_size,
        origin: trailer.checkpoint.origin,
        root_hash: trailer.checkpoint.root_hash,
    })
}

/// What `logbook verify --since-checkpoint` establishes: the log only grew from `old` to `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyVerified {
    pub old: Checkpoint,
    pub new: Checkpoint,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyCheckError {
    #[error("the saved checkpoint: {0}")]
    OldCheckpoint(CheckpointError),
    #[error("the current checkpoint: {0}")]
    NewCheckpoint(CheckpointError),
    #[error("the checkpoints are for different logs ({old} and {new})")]
    DifferentOrigins { old: String, new: String },
    #[error("the log is not an extension of the saved checkpoint: {0}")]
    NotConsistent(merkle::MerkleError),
}

/// Verifies both checkpoints' signatures and the consistency proof between them.
pub fn verify_consistency(
    old_checkpoint_text: &str,
    new_checkpoint_text: &str,
    proof: &[Hash],
    verifier: &CheckpointVerifier,
) -> Result<ConsistencyVerified, ConsistencyCheckError> {
    let old = verifier
        .parse_and_verify(old_checkpoint_text)
        .map_err(ConsistencyCheckError::OldCheckpoint)?;
    let new = verifier
        .parse_and_verify(new_checkpoint_text)
        .map_err(ConsistencyCheckError::NewCheckpoint)?;
    if old.origin != new.origin {
        return Err(ConsistencyCheckError::DifferentOrigins {
            old: old.origin,
            new: new.origin,
        });
    }
    merkle::verify_consistency(
        old.tree_size,
        new.tree_size,
        proof,
        &old.root_hash,
        &new.root_hash,
    )
    .map_err(ConsistencyCheckError::NotConsistent)?;
    Ok(ConsistencyVerified { old, new })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::account::AccountId;
    use crate::checkpoint::checkpoint_origin;
    use crate::event::{EventRow, NewEvent};
    use crate::merkle::{MemoryTree, consistency_proof, inclusion_proof};
    use time::macros::datetime;

    fn signer() -> CheckpointSigner {
        CheckpointSigner::generate([9; 32], "logbook.example.org").unwrap()
    }

    fn account_rows(account: &str, count: u64) -> Vec<EventRow> {
        (0..count)
            .map(|seq| {
                let at = datetime!(2024-06-01 12:00:00 UTC) + time::Duration::seconds(seq as i64);
                let event = NewEvent {
                    id: format!("event-{seq}").into(),
                    account: AccountId::parse(account).unwrap(),
                    received_at: at,
                    created_at: at,
                    created_at_was_sent: false,
                    action: "user.login".into(),
                    message: format!("Login number {seq}"),
                    actor: None,
                    ip: Some("192.0.2.1".parse().unwrap()),
                    user_agent: None,
                    outcome: None,
                    targets: vec![],
                    changes: vec![],
                    metadata: None,
                    key: None,
                    salt: crate::personal_data::EventSalt::random(),
                };
                EventRow {
                    seq,
                    created_at_micros: event.created_at_micros(),
                    body_without_seq: event.body_without_seq(),
                    location: (seq == 0).then(|| r#"{"country_code":"SG"}"#.to_owned()),
                    new_ip: seq == 0,
                    new_network: seq == 0,
                    new_country: false,
                }
            })
            .collect()
    }

    fn tree_of(rows: &[EventRow]) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for row in rows {
            tree.append(row.leaf_hash().unwrap());
        }
        tree
    }

    /// An export of the rows with the given seqs, in that line order, cut at the full tree.
    fn export(rows: &[EventRow], seqs_in_line_order: &[u64]) -> Vec<String> {
        let signer = signer();
        let tree = tree_of(rows);
        let account = rows[0].decode().unwrap().account;
        let signed = signer
            .sign(
                &checkpoint_origin("logbook.example.org", &account),
                tree.size(),
                &tree.root(),
            )
            .unwrap();
        let checkpoint = signer.verifier().parse_and_verify(&signed.text).unwrap();
        let mut out = Vec::new();
        let mut selection = ExportSelection::new();
        let mut event_json = Vec::new();
        for &seq in seqs_in_line_order {
            let row = &rows[seq as usize];
            event_json.clear();
            row.write_json(&mut event_json);
            let proof = inclusion_proof(&tree, seq, tree.size()).unwrap();
            write_export_event_line(&mut out, &event_json, &row.leaf_hash().unwrap(), &proof);
            selection.push(seq);
        }
        out.extend_from_slice(
            selection
                .trailer_line(&signer, &signed.text, &checkpoint)
                .as_bytes(),
        );
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn verify_lines(lines: &[String]) -> Result<ExportVerified, ExportVerificationError> {
        let mut text = lines.join("\n");
        text.push('\n');
        verify_export(Cursor::new(text.into_bytes()), &signer().verifier())
    }

    fn failing_line(lines: &[String]) -> usize {
        match verify_lines(lines) {
            Ok(verified) => panic!("tampered export verified: {verified:?}"),
            Err(error) => error.line,
        }
    }

    #[test]
    fn a_full_export_and_a_filtered_newest_first_export_verify() {
        let rows = account_rows("acme", 13);
        let all: Vec<u64> = (0..13).collect();
        let verified = verify_lines(&export(&rows, &all)).unwrap();
        assert_eq!((verified.event_count, verified.tree_size), (13, 13));
        assert_eq!(verified.origin, "logbook.example.org/acme");
        assert!(
            export(&rows, &all)
                .last()
                .unwrap()
                .contains("\"seq_runs\":[[0,13]]")
        );

        let newest_first_subset = [12, 9, 4, 3, 0];
        let verified = verify_lines(&export(&rows, &newest_first_subset)).unwrap();
        assert_eq!((verified.event_count, verified.tree_size), (5, 13));
    }

    #[test]
    fn editing_any_event_line_fails_and_names_that_line() {
        let rows = account_rows("acme", 9);
        let lines = export(&rows, &(0..9).collect::<Vec<_>>());
        for index in 0..9 {
            let mut edited = lines.clone();
            edited[index] = edited[index].replace("Login number", "Logout number");
            assert_eq!(failing_line(&edited), index + 1);
        }
        // Recomputing the leaf hash of the edited content does not help: the proof no longer
        // leads to the signed root.
        let mut edited = lines.clone();
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&edited[3]).unwrap();
        object.insert("message".into(), "Logout number 3".into());
        let recomputed = leaf_hash_of_bytes(&leaf_bytes_from_json_object(&object).unwrap());
        object.insert("leaf_hash".into(), hex(&recomputed).into());
        edited[3] = serde_json::Value::Object(object).to_string();
        assert_eq!(failing_line(&edited), 4);
        // An added field is an edit too.
        let mut edited = lines.clone();
        edited[5] = edited[5].replacen('{', "{\"extra\":true,", 1);
        assert_eq!(failing_line(&edited), 6);
    }

    #[test]
    fn dropping_reordering_or_inserting_lines_fails_and_names_the_line() {
        let rows = account_rows("acme", 9);
        let filtered = export(&rows, &[8, 6, 5, 2, 1]);
        let full = export(&rows, &(0..9).collect::<Vec<_>>());
        for lines in [filtered, full] {
            let mut dropped = lines.clone();
            dropped.remove(2);
            assert_eq!(failing_line(&dropped), 3, "drop");

            let event_line_count = lines.len() - 1;
            let mut dropped_last = lines.clone();
            dropped_last.remove(event_line_count - 1);
            assert_eq!(
                failing_line(&dropped_last),
                event_line_count,
                "drop last event line"
            );

            let mut swapped = lines.clone();
            swapped.swap(1, 3);
            assert_eq!(failing_line(&swapped), 2, "swap");

            let mut duplicated = lines.clone();
            duplicated.insert(3, lines[0].clone());
            assert_eq!(failing_line(&duplicated), 4, "insert a copy");

            let mut appended = lines.clone();
            appended.insert(event_line_count, lines[0].clone());
            assert_eq!(
                failing_line(&appended),
                event_line_count + 1,
                "insert before the trailer"
            );

            let mut blank = lines.clone();
            blank.insert(1, String::new());
            assert_eq!(failing_line(&blank), 2, "blank line");
        }
    }

    #[test]
    fn a_tampered_trailer_or_a_foreign_key_or_account_fails_on_the_right_line() {
        let rows = account_rows("acme", 6);
        let lines = export(&rows, &[5, 3, 1]);
        let trailer_line = lines.len();

        let mut runs_edited = lines.clone();
        runs_edited[trailer_line - 1] =
            runs_edited[trailer_line - 1].replace("[[5,1],[3,1],[1,1]]", "[[5,1],[1,1]]");
        assert_ne!(runs_edited, lines);
        assert_eq!(failing_line(&runs_edited), trailer_line);

        let mut no_trailer = lines.clone();
        no_trailer.pop();
        assert_eq!(failing_line(&no_trailer), trailer_line - 1);

        let other_key = CheckpointSigner::generate([10; 32], "logbook.example.org")
            .unwrap()
            .verifier();
        let text = format!("{}\n", lines.join("\n"));
        assert_eq!(
            verify_export(Cursor::new(text.into_bytes()), &other_key)
                .unwrap_err()
                .line,
            trailer_line
        );

        // A line from another account's export, at the same seq, proves nothing about this one.
        let other_account = export(&account_rows("globex", 6), &[5, 3, 1]);
        let mut foreign = lines.clone();
        foreign[1] = other_account[1].clone();
        assert_eq!(failing_line(&foreign), 2);

        assert_eq!(
            verify_export(Cursor::new(Vec::new()), &signer().verifier())
                .unwrap_err()
                .line,
            1
        );
    }

    #[test]
    fn a_consistency_check_accepts_growth_and_rejects_a_rewritten_history() {
        let signer = signer();
        let rows = account_rows("acme", 10);
        let tree = tree_of(&rows);
        let old_tree = tree_of(&rows[..4]);
        let old = signer
            .sign("logbook.example.org/acme", 4, &old_tree.root())
            .unwrap();
        let new = signer
            .sign("logbook.example.org/acme", 10, &tree.root())
            .unwrap();
        let proof = consistency_proof(&tree, 4, 10).unwrap();
        let verified =
            verify_consistency(&old.text, &new.text, &proof, &signer.verifier()).unwrap();
        assert_eq!((verified.old.tree_size, verified.new.tree_size), (4, 10));

        // The operator rewrote event 2 and re-signed a new checkpoint over the rewritten log.
        let mut rewritten_rows = rows.clone();
        rewritten_rows[2].body_without_seq = rewritten_rows[2]
            .body_without_seq
            .replace("Login", "Logout");
        let rewritten = tree_of(&rewritten_rows);
        let rewritten_checkpoint = signer
            .sign("logbook.example.org/acme", 10, &rewritten.root())
            .unwrap();
        let rewritten_proof = consistency_proof(&rewritten, 4, 10).unwrap();
        assert!(matches!(
            verify_consistency(
                &old.text,
                &rewritten_checkpoint.text,
                &rewritten_proof,
                &signer.verifier()
            ),
            Err(ConsistencyCheckError::NotConsistent(_))
        ));
        // Truncating to an earlier size cannot be proven consistent either.
        let truncated = signer
            .sign("logbook.example.org/acme", 3, &tree_of(&rows[..3]).root())
            .unwrap();
        assert!(verify_consistency(&old.text, &truncated.text, &[], &signer.verifier()).is_err());
        let other_log = signer
            .sign("logbook.example.org/globex", 10, &tree.root())
            .unwrap();
        assert!(matches!(
            verify_consistency(&old.text, &other_log.text, &proof, &signer.verifier()),
            Err(ConsistencyCheckError::DifferentOrigins { .. })
        ));
    }
}
