//! Signed checkpoints of an account's log, in the C2SP `tlog-checkpoint` format carried in a
//! C2SP `signed-note`, signed with Ed25519; and the key file formats of the signing key.
//!
//! # Checkpoint text
//!
//! ```text
//! logbook.example.org/acme
//! 42
//! <base64 root hash>
//!
//! — logbook.example.org <base64(key ID (4 bytes) || Ed25519 signature (64 bytes))>
//! ```
//!
//! The signed bytes are the note text: the three body lines, each ending in a newline. The origin
//! is `<instance name>/<account>` (`checkpoint_origin`). The key ID is the first 4 bytes of
//! `SHA-256(key name || 0x0A || 0x01 || public key)` (0x01 is the signed-note Ed25519 type).
//! Extension lines after the root are allowed by the spec and ignored by the parser.
//!
//! # Key files
//!
//! Both are one line of text, the formats of Go's `golang.org/x/mod/sumdb/note` package, so the
//! public key works with existing signed-note tooling:
//! - verifier (public) key: `<name>+<key ID as 8 hex digits>+<base64(0x01 || 32-byte public key)>`
//! - signer (private) key: `PRIVATE+KEY+<name>+<key ID as 8 hex digits>+<base64(0x01 || 32-byte seed)>`

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::account::AccountId;
use crate::merkle::Hash;

/// The signed-note signature type byte of Ed25519.
const ED25519_SIGNATURE_TYPE: u8 = 0x01;
/// The signed-note separator between text and signatures is a blank line; signature lines start
/// with an em dash and a space.
const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";
/// More signature lines than this on one note is hostile input, not a real checkpoint.
const MAX_SIGNATURE_LINES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("a key name must be non-empty without spaces or '+'")]
    InvalidKeyName,
    #[error("an origin must be non-empty without spaces, control characters or '+'")]
    InvalidOrigin,
    #[error("the key text is malformed: {0}")]
    MalformedKey(&'static str),
    #[error("the signed note is malformed: {0}")]
    MalformedNote(&'static str),
    #[error("the checkpoint body is malformed: {0}")]
    MalformedCheckpoint(&'static str),
    #[error("the note has no signature by key {0}")]
    NoSignatureByKey(String),
    #[error("the signature by key {0} does not verify")]
    BadSignature(String),
}

/// `<instance name>/<account>`, the origin line of an account's checkpoints.
pub fn checkpoint_origin(instance_name: &str, account: &AccountId) -> String {
    format!("{instance_name}/{}", account.as_str())
}

fn validate_key_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
    {
        return Err(CheckpointError::InvalidKeyName);
    }
    Ok(())
}

fn validate_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty()
        || origin
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
    {
        return Err(CheckpointError::InvalidOrigin);
    }
    Ok(())
}

fn key_id(name: &str, public_key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_SIGNATURE_TYPE]);
    hasher.update(public_key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn decode_typed_key(text: &str) -> Result<[u8; 32], CheckpointError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| CheckpointError::MalformedKey("key is not base64"))?;
    match bytes.split_first() {
        Some((&ED25519_SIGNATURE_TYPE, key)) => key
            .try_into()
            .map_err(|_| CheckpointError::MalformedKey("an Ed25519 key is 32 bytes")),
        _ => Err(CheckpointError::MalformedKey(
            "only Ed25519 keys (type 0x01) are supported",
        )),
    }
}

fn parse_key_id_hex(text: &str) -> Result<[u8; 4], CheckpointError> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CheckpointError::MalformedKey("key ID is not 8 hex digits"));
    }
    let value = u32::from_str_radix(text, 16)
        .map_err(|_| CheckpointError::MalformedKey("key ID is not hex"))?;
    Ok(value.to_be_bytes())
}

fn key_id_hex(id: [u8; 4]) -> String {
    format!("{:08x}", u32::from_be_bytes(id))
}

/// The private key that signs checkpoints. Never logged: `Debug` shows only the key name.
pub struct CheckpointSigner {
    name: String,
    signing_key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A new key from 32 random bytes (the caller reads them from the OS random source).
    pub fn generate(rng_bytes: [u8; 32], key_name: &str) -> Result<Self, CheckpointError> {
        validate_key_name(key_name)?;
        Ok(CheckpointSigner {
            name: key_name.to_owned(),
            signing_key: SigningKey::from_bytes(&rng_bytes),
        })
    }

    pub fn key_name(&self) -> &str {
        &self.name
    }

    /// `PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>` (module docs).
    pub fn to_key_file_text(&self) -> String {
        let mut typed = Vec::with_capacity(33);
        typed.push(ED25519_SIGNATURE_TYPE);
        typed.extend_from_slice(self.signing_key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            key_id_hex(key_id(&self.name, &self.signing_key.verifying_key())),
            STANDARD.encode(typed)
        )
    }

    /// Parses `to_key_file_text`'s format (surrounding whitespace, such as a final newline, is
    /// ignored) and checks the key ID matches the key.
    pub fn from_key_file_text(text: &str) -> Result<Self, CheckpointError> {
        let rest =
            text.trim()
                .strip_prefix("PRIVATE+KEY+")
                .ok_or(CheckpointError::MalformedKey(
                    "a signer key starts with PRIVATE+KEY+",
                ))?;
        // At most three fields: standard base64 of the key may itself contain '+'.
        let mut fields = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(CheckpointError::MalformedKey(
                "expected PRIVATE+KEY+<name>+<id>+<key>",
            ));
        };
        validate_key_name(name)?;
        let signing_key = SigningKey::from_bytes(&decode_typed_key(key)?);
        if parse_key_id_hex(id_hex)? != key_id(name, &signing_key.verifying_key()) {
            return Err(CheckpointError::MalformedKey(
                "key ID does not match the key",
            ));
        }
        Ok(CheckpointSigner {
            name: name.to_owned(),
            signing_key,
        })
    }

    pub fn verifier(&self) -> CheckpointVerifier {
        let public_key = self.signing_key.verifying_key();
        CheckpointVerifier {
            id: key_id(&self.name, &public_key),
            name: self.name.clone(),
            public_key,
        }
    }

    /// Signs arbitrary note text (ending in a newline) and returns the whole signed note.
    pub fn sign_note(&self, note_text: &str) -> String {
        debug_assert!(note_text.ends_with('\n'));
        let signature = self.signing_key.sign(note_text.as_bytes());
        let mut signature_bytes = Vec::with_capacity(68);
        signature_bytes.extend_from_slice(&key_id(&self.name, &self.signing_key.verifying_key()));
        signature_bytes.extend_from_slice(&signature.to_bytes());
        format!(
            "{note_text}\n{SIGNATURE_LINE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(signature_bytes)
        )
    }

    /// The signed checkpoint of a tree of `tree_size` leaves with root `root_hash`.
    pub fn sign(
        &self,
        origin: &str,
        tree_size: u64,
        root_hash: &Hash,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        validate_origin(origin)?;
        let body = format!("{origin}\n{tree_size}\n{}\n", STANDARD.encode(root_hash));
        Ok(SignedCheckpoint {
            text: self.sign_note(&body),
        })
    }
}

/// A signed checkpoint note, as stored, served and exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub text: String,
}

/// What a verified checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
}

impl Checkpoint {
    /// The account named by the origin's last path segment.
    pub fn account(&self) -> Option<&str> {
        self.origin.rsplit_once('/').map(|(_, account)| account)
    }
}

/// The public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    name: String,
    id: [u8; 4],
    public_key: VerifyingKey,
}

impl CheckpointVerifier {
    pub fn key_name(&self) -> &str {
        &self.name
    }

    /// `<name>+<key ID hex>+<base64(0x01 || public key)>`, what `logbook checkpoint-key` prints.
    pub fn to_key_text(&self) -> String {
        let mut typed = Vec::with_capacity(33);
        typed.push(ED25519_SIGNATURE_TYPE);
        typed.extend_from_slice(self.public_key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            key_id_hex(self.id),
            STANDARD.encode(typed)
        )
    }

    pub fn from_key_text(text: &str) -> Result<Self, CheckpointError> {
        // At most three fields: standard base64 of the key may itself contain '+'.
        let mut fields = text.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(CheckpointError::MalformedKey("expected <name>+<id>+<key>"));
        };
        validate_key_name(name)?;
        let public_key = VerifyingKey::from_bytes(&decode_typed_key(key)?)
            .map_err(|_| CheckpointError::MalformedKey("not an Ed25519 public key"))?;
        let id = parse_key_id_hex(id_hex)?;
        if id != key_id(name, &public_key) {
            return Err(CheckpointError::MalformedKey(
                "key ID does not match the key",
            ));
        }
        Ok(CheckpointVerifier {
            name: name.to_owned(),
            id,
            public_key,
        })
    }

    /// Checks the note's signature by this key and returns the note text (without signatures).
    /// Signatures by other keys are ignored, as the signed-note spec asks; a signature that
    /// claims to be by this key and does not verify is an error.
    pub fn verify_note<'note>(&self, note: &'note str) -> Result<&'note str, CheckpointError> {
        if note.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(CheckpointError::MalformedNote(
                "control characters other than newline",
            ));
        }
        if !note.ends_with('\n') {
            return Err(CheckpointError::MalformedNote("a note ends with a newline"));
        }
        let separator = note.rfind("\n\n").ok_or(CheckpointError::MalformedNote(
            "no blank line before the signatures",
        ))?;
        let (text, signatures) = (&note[..=separator], &note[separator + 2..]);
        let mut verified = false;
        for (count, line) in signatures.split_terminator('\n').enumerate() {
            if count >= MAX_SIGNATURE_LINES {
                return Err(CheckpointError::MalformedNote("too many signature lines"));
            }
            let line =
                line.strip_prefix(SIGNATURE_LINE_PREFIX)
                    .ok_or(CheckpointError::MalformedNote(
                        "a signature line starts with an em dash and a space",
                    ))?;
            let (name, encoded) = line.split_once(' ').ok_or(CheckpointError::MalformedNote(
                "a signature line is name and signature",
            ))?;
            validate_key_name(name).map_err(|_| {
                CheckpointError::MalformedNote("invalid key name in a signature line")
            })?;
            let signature_bytes = STANDARD
                .decode(encoded)
                .map_err(|_| CheckpointError::MalformedNote("signature is not base64"))?;
            if signature_bytes.len() < 4 {
                return Err(CheckpointError::MalformedNote(
                    "signature shorter than its key ID",
                ));
            }
            if name != self.name || signature_bytes[..4] != self.id {
                continue;
            }
            let signature = Signature::from_slice(&signature_bytes[4..])
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
            self.public_key
                .verify(text.as_bytes(), &signature)
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
            verified = true;
        }
        if signatures.is_empty() {
            return Err(CheckpointError::MalformedNote(
                "a note has at least one signature",
            ));
        }
        if !verified {
            return Err(CheckpointError::NoSignatureByKey(self.name.clone()));
        }
        Ok(text)
    }

    /// Verifies a signed checkpoint and parses its body.
    pub fn parse_and_verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let text = self.verify_note(note)?;
        parse_checkpoint_body(text)
    }
}

/// `parse_and_verify` as a free function, the shape the CLI calls.
pub fn parse_and_verify(
    note: &str,
    verifier: &CheckpointVerifier,
) -> Result<Checkpoint, CheckpointError> {
    verifier.parse_and_verify(note)
}

fn parse_checkpoint_body(text: &str) -> Result<Checkpoint, CheckpointError> {
    let mut lines = text.split_terminator('\n');
    let origin = lines
        .next()
        .ok_or(CheckpointError::MalformedCheckpoint("missing origin"))?;
    validate_origin(origin).map_err(|_| CheckpointError::MalformedCheckpoint("invalid origin"))?;
    let size_text = lines
        .next()
        .ok_or(CheckpointError::MalformedCheckpoint("missing tree size"))?;
    let size_is_canonical = !size_text.is_empty()
        && size_text.bytes().all(|b| b.is_ascii_digit())
        && (size_text == "0" || !size_text.starts_with('0'));
    if !size_is_canonical {
        return Err(CheckpointError::MalformedCheckpoint(
            "tree size is not a decimal without leading zeros",
        ));
    }
    let tree_size = size_text
        .parse()
        .map_err(|_| CheckpointError::MalformedCheckpoint("tree size overflows"))?;
    let root_text = lines
        .next()
        .ok_or(CheckpointError::MalformedCheckpoint("missing root hash"))?;
    let root_hash: Hash = STANDARD
        .decode(root_text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(CheckpointError::MalformedCheckpoint(
            "root hash is not 32 bytes of base64",
        ))?;
    if lines.any(str::is_empty) {
        return Err(CheckpointError::MalformedCheckpoint("empty extension line"));
    }
    Ok(Checkpoint {
        origin: origin.to_owned(),
        tree_size,
        root_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GO_SIGNER_KEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER_KEY: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn test_signer() -> CheckpointSigner {
        CheckpointSigner::generate([7; 32], "logbook.example.org").unwrap()
    }

    #[test]
    fn signing_reproduces_the_published_go_signed_note_example_byte_for_byte() {
        let signer = CheckpointSigner::from_key_file_text(GO_SIGNER_KEY).unwrap();
        assert_eq!(signer.to_key_file_text(), GO_SIGNER_KEY);
        assert_eq!(signer.verifier().to_key_text(), GO_VERIFIER_KEY);
        assert_eq!(signer.sign_note(GO_TEXT), GO_NOTE);
        let verifier = CheckpointVerifier::from_key_text(GO_VERIFIER_KEY).unwrap();
        assert_eq!(verifier.verify_note(GO_NOTE).unwrap(), GO_TEXT);
        let edited = GO_NOTE.replace("cryptography", "cryptographY");
        assert_eq!(
            verifier.verify_note(&edited),
            Err(CheckpointError::BadSignature("PeterNeumann".into()))
        );
    }

    #[test]
    fn a_signed_checkpoint_has_the_tlog_checkpoint_layout_and_verifies() {
        let signer = test_signer();
        let root = [0xab; 32];
        let signed = signer.sign("logbook.example.org/acme", 42, &root).unwrap();
        let (body, signature_line) = signed.text.split_once("\n\n").unwrap();
        assert_eq!(
            body,
            format!("logbook.example.org/acme\n42\n{}", STANDARD.encode(root))
        );
        assert!(signature_line.starts_with("\u{2014} logbook.example.org "));
        let verifier = CheckpointVerifier::from_key_text(&signer.verifier().to_key_text()).unwrap();
        let checkpoint = parse_and_verify(&signed.text, &verifier).unwrap();
        assert_eq!(
            checkpoint,
            Checkpoint {
                origin: "logbook.example.org/acme".into(),
                tree_size: 42,
                root_hash: root
            }
        );
        assert_eq!(checkpoint.account(), Some("acme"));
    }

    #[test]
    fn key_files_round_trip_and_mismatched_or_foreign_keys_are_rejected() {
        let signer = test_signer();
        let restored =
            CheckpointSigner::from_key_file_text(&format!("{}\n", signer.to_key_file_text()))
                .unwrap();
        assert_eq!(restored.verifier(), signer.verifier());
        assert!(!format!("{signer:?}").contains(&signer.to_key_file_text()[30..]));
        let verifier_text = signer.verifier().to_key_text();
        let mut fields: Vec<&str> = verifier_text.splitn(3, '+').collect();
        fields[1] = "00000000";
        assert!(CheckpointVerifier::from_key_text(&fields.join("+")).is_err());
        assert!(CheckpointSigner::generate([1; 32], "bad name").is_err());
        assert!(CheckpointSigner::generate([1; 32], "bad+name").is_err());
        assert!(signer.sign("bad origin", 1, &[0; 32]).is_err());

        let other = CheckpointSigner::generate([8; 32], "logbook.example.org").unwrap();
        let signed = other.sign("logbook.example.org/acme", 1, &[0; 32]).unwrap();
        assert_eq!(
            signer.verifier().parse_and_verify(&signed.text),
            Err(CheckpointError::NoSignatureByKey(
                "logbook.example.org".into()
            ))
        );
    }

    #[test]
    fn malformed_checkpoint_bodies_are_rejected_even_when_signed() {
        let signer = test_signer();
        let verifier = signer.verifier();
        let root = STANDARD.encode([1u8; 32]);
        for body in [
            format!("origin/a\n042\n{root}\n"),
            format!("origin/a\n-1\n{root}\n"),
            format!("origin/a\n18446744073709551616\n{root}\n"),
            "origin/a\n1\nAAAA\n".to_string(),
            "origin/a\n1\n".to_string(),
        ] {
            let note = signer.sign_note(&body);
            assert!(
                matches!(
                    verifier.parse_and_verify(&note),
                    Err(CheckpointError::MalformedCheckpoint(_))
                ),
                "{body:?}"
            );
        }
        let with_extension = signer.sign_note(&format!("origin/a\n1\n{root}\nextension line\n"));
        assert_eq!(
            verifier
                .parse_and_verify(&with_extension)
                .unwrap()
                .tree_size,
            1
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn every_single_bit_flip_of_a_signed_checkpoint_is_rejected(size in any::<u64>(), root in any::<[u8; 32]>()) {
            let signer = test_signer();
            let verifier = signer.verifier();
            let signed = signer.sign("logbook.example.org/acme", size, &root).unwrap();
            prop_assert!(verifier.parse_and_verify(&signed.text).is_ok());
            let original = signed.text.into_bytes();
            for bit in 0..original.len() * 8 {
                let mut bytes = original.clone();
                bytes[bit / 8] ^= 1 << (bit % 8);
                // A flip that breaks UTF-8 cannot even be handed over as text: rejected too.
                if let Ok(text) = String::from_utf8(bytes) {
                    prop_assert!(verifier.parse_and_verify(&text).is_err(), "bit {} accepted: {:?}", bit, text);
                }
            }
        }
    }
}
