//! `logbook export`: streams every matching event as NDJSON or CSV to a file or stdout, chunk by
//! chunk as the server sends it (`logbook_client`'s export stream), so memory stays flat however many events there are. A file is
//! written under a temporary name and renamed when complete, so a cut-off export never looks
//! like a finished one.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::cli::{ExportArgs, ExportFormat};
use crate::client::{ApiKeySecret, logbook_client};
use crate::config::Config;
use crate::output::inert;

pub async fn run(config: &Config, arguments: &ExportArgs) -> Result<()> {
    if arguments.verifiable && matches!(arguments.format, ExportFormat::Csv) {
        anyhow::bail!(
            "a verifiable export is NDJSON (each line carries its proof): drop --format csv"
        );
    }
    let key = ApiKeySecret::from_environment()?;
    let client = logbook_client(config, &key, |builder| builder)?;
    let request = logbook_client::ExportRequest {
        query: arguments.query.clone(),
        format: match arguments.format {
            ExportFormat::Ndjson => logbook_client::ExportFormat::Ndjson,
            ExportFormat::Csv => logbook_client::ExportFormat::Csv,
        },
        verifiable: arguments.verifiable,
    };
    let mut chunks = Box::pin(client.export(&request).await?);

    match &arguments.output {
        Some(path) => {
            let partial = partial_path(path);
            let mut file = tokio::io::BufWriter::new(
                tokio::fs::File::create(&partial)
                    .await
                    .with_context(|| format!("could not create {}", partial.display()))?,
            );
            let mut written = 0u64;
            let copied: Result<()> = async {
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk.context("the export was cut off")?;
                    file.write_all(&chunk).await?;
                    written += chunk.len() as u64;
                }
                file.flush().await?;
                file.get_ref().sync_all().await?;
                Ok(())
            }
            .await;
            if let Err(error) = copied {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(error)
                    .with_context(|| format!("could not export to {}", path.display()));
            }
            tokio::fs::rename(&partial, path).await.with_context(|| {
                format!(
                    "could not rename {} to {}",
                    partial.display(),
                    path.display()
                )
            })?;
            eprintln!("Wrote {written} bytes to {}.", path.display());
        }
        None if std::io::stdout().is_terminal() => {
            // A person is reading: show each complete line made inert, keeping partial lines
            // until their end arrives so an escape sequence is never split across writes.
            let mut pending_line: Vec<u8> = Vec::new();
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.context("the export was cut off")?;
                pending_line.extend_from_slice(&chunk);
                if let Some(last_newline) = pending_line.iter().rposition(|byte| *byte == b'\n') {
                    let complete: Vec<u8> = pending_line.drain(..=last_newline).collect();
                    let mut stdout = std::io::stdout().lock();
                    for line in String::from_utf8_lossy(&complete).lines() {
                        writeln!(stdout, "{}", inert(line))?;
                    }
                }
            }
            if !pending_line.is_empty() {
                writeln!(
                    std::io::stdout().lock(),
                    "{}",
                    inert(&String::from_utf8_lossy(&pending_line))
                )?;
            }
        }
        None => {
            let mut stdout = tokio::io::stdout();
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.context("the export was cut off")?;
                stdout.write_all(&chunk).await?;
            }
            stdout.flush().await?;
        }
    }
    Ok(())
}

fn partial_path(path: &std::path::Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}
