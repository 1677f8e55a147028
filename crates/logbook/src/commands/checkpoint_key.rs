//! The checkpoint signing key: created on first start in a file outside the database
//! (`<data-dir>/checkpoint-signing.key` unless `[checkpoints] signing_key_file` says otherwise),
//! readable by its owner only (0600), and `logbook checkpoint-key`, which prints its public key
//! for customers to verify checkpoints and exports with.
//!
//! The key lives outside the database so that someone who can edit the database cannot also
//! sign a checkpoint over their edits. Every PostgreSQL node of one database must hold a copy of
//! the same file: checkpoints signed by different keys could not be checked against one key.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use logbook_core::checkpoint::CheckpointSigner;
use rand::Rng;

use crate::config::Config;

/// Reads the signing key, creating it (mode 0600) when the file does not exist yet.
pub fn load_or_create_signer(config: &Config) -> Result<CheckpointSigner> {
    let path = config.checkpoint_signing_key_file();
    if path.exists() {
        return read_signer(&path);
    }
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("could not create directory {}", parent.display()))?;
    }
    let key_name = config.checkpoint_instance_name()?;
    let signer = CheckpointSigner::generate(rand::rng().random(), &key_name)
        .with_context(|| format!("{key_name:?} cannot name a signing key (no spaces or '+')"))?;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    let mut file = match created {
        Ok(file) => file,
        // Another node or process created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return read_signer(&path);
        }
        Err(error) => {
            return Err(error)
                .with_context(|| format!("could not create the signing key {}", path.display()));
        }
    };
    file.write_all(signer.to_key_file_text().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("could not write the signing key {}", path.display()))?;
    tracing::info!(path = %path.display(), "created the checkpoint signing key");
    Ok(signer)
}

fn read_signer(path: &Path) -> Result<CheckpointSigner> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("could not read the signing key {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        bail!(
            "the signing key {} is readable by other users; run chmod 600 on it",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the signing key {}", path.display()))?;
    CheckpointSigner::from_key_file_text(text.trim_end())
        .with_context(|| format!("{} is not a checkpoint signing key", path.display()))
}

/// `logbook checkpoint-key`: prints the public key (creating the key pair if it is missing).
pub fn run(config: &Config) -> Result<()> {
    let signer = load_or_create_signer(config)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", signer.verifier().to_key_text())?;
    Ok(())
}
