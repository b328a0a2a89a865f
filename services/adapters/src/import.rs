//! `callpulse import`: vendor files to Kafka, resumable and idempotent.
//!
//! Records go in batches; after Kafka acknowledged a batch, a checkpoint
//! next to the file (`FILE.callpulse-import`) records the byte offset and
//! line reached. Interrupted, the next run resumes there; finished, a run
//! skips the file unless `restart`. Importing a file again anyway is safe:
//! event ids come from the vendor records, so the processor drops the
//! repeats as duplicates.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use callpulse_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::file::{lines, FileSummary, Rejection};
use crate::publish::Publisher;
use crate::{AdaptContext, Vendor};

/// Records per Kafka round trip and checkpoint.
pub const BATCH_RECORDS: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub vendor: String,
    /// Byte offset just after the last acknowledged line.
    pub offset: u64,
    pub line: u64,
    /// The file's length when the import finished; `None` while in progress.
    pub complete_at_length: Option<u64>,
    pub summary: FileSummary,
}

pub fn checkpoint_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".callpulse-import");
    PathBuf::from(name)
}

fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("reading checkpoint {}", path.display())
            })?))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading checkpoint {}", path.display())),
    }
}

/// Written to a temporary file and renamed, so a crash leaves the old or the new one.
fn write_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let tmp = path.with_extension("callpulse-import.tmp");
    std::fs::write(&tmp, serde_json::to_vec(checkpoint)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    Imported(FileSummary),
    /// Already imported completely by an earlier run.
    AlreadyDone(FileSummary),
}

/// Imports one file, resuming from its checkpoint.
pub async fn import_file(
    vendor: Vendor,
    path: &Path,
    ctx: &AdaptContext<'_>,
    publisher: &Publisher,
    restart: bool,
    now: Timestamp,
) -> Result<FileOutcome> {
    let checkpoint_file = checkpoint_path(path);
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let length = file.metadata()?.len();
    let previous = if restart {
        None
    } else {
        read_checkpoint(&checkpoint_file)?
    };
    let mut checkpoint = match previous {
        Some(cp) if cp.vendor != vendor.name() => {
            anyhow::bail!(
                "{} was being imported as `{}`, not `{}`: pass --restart to import it again",
                path.display(),
                cp.vendor,
                vendor.name()
            )
        }
        Some(cp) if cp.complete_at_length == Some(length) => {
            return Ok(FileOutcome::AlreadyDone(cp.summary))
        }
        // A file that shrank was replaced: its offsets mean nothing now.
        Some(cp) if cp.offset > length => {
            tracing::warn!(file = %path.display(), "the file is shorter than its checkpoint: importing from the start");
            Checkpoint {
                vendor: vendor.name().into(),
                offset: 0,
                line: 0,
                complete_at_length: None,
                summary: FileSummary::default(),
            }
        }
        Some(cp) => Checkpoint {
            complete_at_length: None,
            ..cp
        },
        None => Checkpoint {
            vendor: vendor.name().into(),
            offset: 0,
            line: 0,
            complete_at_length: None,
            summary: FileSummary::default(),
        },
    };
    if checkpoint.offset > 0 {
        tracing::info!(file = %path.display(), line = checkpoint.line, "resuming import");
    }
    file.seek(SeekFrom::Start(checkpoint.offset))?;
    let source = crate::file::source_of(path);
    let mut reader = lines(
        BufReader::with_capacity(1 << 20, file),
        checkpoint.offset,
        checkpoint.line,
    )
    .peekable();
    loop {
        let mut events = Vec::new();
        let mut rejections = Vec::new();
        let mut batch = FileSummary::default();
        let mut last = None;
        while batch.records < BATCH_RECORDS as u64 {
            let Some(line) = reader.next() else { break };
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            batch.records += 1;
            let result = line
                .text
                .as_deref()
                .map_err(Clone::clone)
                .and_then(|text| vendor.adapt_record(text, ctx));
            match result {
                Ok(mut adapted) => {
                    batch.events += adapted.len() as u64;
                    events.append(&mut adapted);
                }
                Err(err) => {
                    batch.rejected += 1;
                    let raw = line.text.as_deref().unwrap_or("");
                    rejections.push(Rejection::new(
                        vendor,
                        &source,
                        Some(line.number),
                        &err,
                        raw,
                        now,
                    ));
                }
            }
            last = Some((line.end_offset, line.number));
        }
        let Some((offset, line)) = last else { break };
        publisher
            .publish(&events, &rejections)
            .await
            .with_context(|| {
                format!(
                    "publishing {} up to line {line}; run again to resume",
                    path.display()
                )
            })?;
        checkpoint.offset = offset;
        checkpoint.line = line;
        checkpoint.summary.records += batch.records;
        checkpoint.summary.events += batch.events;
        checkpoint.summary.rejected += batch.rejected;
        write_checkpoint(&checkpoint_file, &checkpoint)?;
        if reader.peek().is_none() {
            break;
        }
    }
    checkpoint.complete_at_length = Some(length);
    write_checkpoint(&checkpoint_file, &checkpoint)?;
    Ok(FileOutcome::Imported(checkpoint.summary))
}
