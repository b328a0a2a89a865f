//! Whole vendor files, record by record, with line numbers: the pure part
//! of `callpulse adapt` and `callpulse import`.
//!
//! Every vendor file here is line-oriented (JSON lines, CDR CSV, queue_log),
//! so a bad line never hides the rest: it becomes a [`Rejection`] with its
//! line number and the reading goes on.

use std::io::BufRead;

use callpulse_core::{CallEvent, Timestamp};
use serde::Serialize;

use crate::redact::redact_numbers;
use crate::{AdaptContext, AdaptError, Vendor};

/// The largest record we accept, in a file or an HTTP body's single record.
/// Real records are well under 16 KiB (an Amazon Connect CTR with attributes).
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// How much of a rejected record is kept: enough to see what was wrong.
const MAX_KEPT_RECORD_BYTES: usize = 4096;

/// How much of the reason is kept. A JSON parser's message quotes the value
/// it could not read, which may be a string of any length.
const MAX_ERROR_BYTES: usize = 1024;

/// The longest start of `text` of at most `max` bytes that ends on a character.
fn prefix(text: &str, max: usize) -> &str {
    let mut cut = text.len().min(max);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// A record that could not be adapted, as it goes to the rejects file and
/// the dead-letter topic: what, where and why, with numbers masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub vendor: String,
    /// `http` or `file:NAME`.
    pub source: String,
    /// 1-based line in the file (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// A short stable code: malformed, invalid_field, unmapped_practice, too_large, invalid_event.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why, cut to 1 KiB: a parser's message may quote a whole value.
    pub error: String,
    /// The record as received, with anything like a phone number masked,
    /// cut to 4 KiB.
    pub record: String,
    pub rejected_at: Timestamp,
}

impl Rejection {
    pub fn new(
        vendor: Vendor,
        source: &str,
        line: Option<u64>,
        error: &AdaptError,
        record: &str,
        rejected_at: Timestamp,
    ) -> Self {
        Rejection {
            vendor: vendor.name().to_string(),
            source: source.to_string(),
            line,
            code: error.code().to_string(),
            field: error.field_name().map(str::to_string),
            error: prefix(&error.to_string(), MAX_ERROR_BYTES).to_string(),
            record: redact_numbers(prefix(record, MAX_KEPT_RECORD_BYTES)),
            rejected_at,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a rejection always serialises")
    }
}

/// The `source` of a file's rejections: `file:` and its name.
pub fn source_of(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!("file:{name}")
}

/// Counts of one file's conversion.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FileSummary {
    pub records: u64,
    pub events: u64,
    pub rejected: u64,
}

/// One record of a file: its line number and raw text, or why it could not be read.
pub struct Line {
    pub number: u64,
    /// Byte offset just after this line: where to resume.
    pub end_offset: u64,
    pub text: Result<String, AdaptError>,
}

/// Reads records line by line; blank lines are skipped, a `\r\n` ending is
/// accepted, over-long lines and invalid UTF-8 become errors for that line.
/// `start_offset` and `start_line` say where `reader` starts in the file
/// (when resuming), so offsets and line numbers stay those of the file.
pub fn lines<R: BufRead>(
    mut reader: R,
    start_offset: u64,
    start_line: u64,
) -> impl Iterator<Item = std::io::Result<Line>> {
    let mut number = start_line;
    let mut offset = start_offset;
    let mut buf = Vec::with_capacity(4096);
    std::iter::from_fn(move || loop {
        buf.clear();
        let read = match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(n) => n,
            Err(err) => return Some(Err(err)),
        };
        number += 1;
        offset += read as u64;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = if buf.len() > MAX_RECORD_BYTES {
            Err(AdaptError::TooLarge {
                size: buf.len(),
                limit: MAX_RECORD_BYTES,
            })
        } else {
            String::from_utf8(buf.clone()).map_err(|err| {
                AdaptError::malformed(
                    "UTF-8",
                    format!("invalid byte at {}", err.utf8_error().valid_up_to()),
                )
            })
        };
        return Some(Ok(Line {
            number,
            end_offset: offset,
            text,
        }));
    })
}

/// Converts a whole file: each event to `on_event`, each rejection to
/// `on_reject`. I/O errors of the reader stop the conversion.
pub fn adapt_file<R: BufRead>(
    vendor: Vendor,
    source: &str,
    reader: R,
    ctx: &AdaptContext<'_>,
    now: Timestamp,
    mut on_event: impl FnMut(CallEvent) -> std::io::Result<()>,
    mut on_reject: impl FnMut(Rejection) -> std::io::Result<()>,
) -> std::io::Result<FileSummary> {
    let mut summary = FileSummary::default();
    for line in lines(reader, 0, 0) {
        let line = line?;
        summary.records += 1;
        let result = line
            .text
            .as_deref()
            .map_err(Clone::clone)
            .and_then(|text| vendor.adapt_record(text, ctx));
        match result {
            Ok(events) => {
                summary.events += events.len() as u64;
                for event in events {
                    on_event(event)?;
                }
            }
            Err(err) => {
                summary.rejected += 1;
                let raw = line.text.as_deref().unwrap_or("");
                on_reject(Rejection::new(
                    vendor,
                    source,
                    Some(line.number),
                    &err,
                    raw,
                    now,
                ))?;
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PracticeMapping, Pseudonymiser};

    #[test]
    fn bad_lines_are_rejected_with_their_number_and_the_rest_goes_on() {
        let input = concat!(
            r#"{"event_id":"e1","call_id":"c1","vendor":"generic","practice":"A81001","kind":"offered","at":"2026-11-23T08:00:00Z","caller":"07700900123"}"#,
            "\n",
            "\n",
            r#"{"event_id":"e2","call_id":"c1","vendor":"generic","practice":"A81001","kind":"hung_up","at":"2026-11-23T08:00:05Z","caller":"07700900123"}"#,
            "\r\n",
            "not json at all 07700 900123\n",
            r#"{"event_id":"e3","call_id":"c1","vendor":"generic","practice":"A81001","kind":"answered","at":"2026-11-23T08:00:09Z"}"#,
        );
        let mapping = PracticeMapping::default();
        let pseudonymiser = Pseudonymiser::demo();
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: None,
        };
        let mut events = Vec::new();
        let mut rejects = Vec::new();
        let summary = adapt_file(
            Vendor::Generic,
            "file:test.jsonl",
            input.as_bytes(),
            &ctx,
            Timestamp::from_millis(0),
            |e| {
                events.push(e);
                Ok(())
            },
            |r| {
                rejects.push(r);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            summary,
            FileSummary {
                records: 4,
                events: 2,
                rejected: 2
            }
        );
        assert_eq!(rejects[0].line, Some(3));
        assert_eq!(rejects[0].field.as_deref(), Some("kind"));
        assert_eq!(rejects[1].line, Some(4));
        assert_eq!(rejects[1].code, "malformed");
        for reject in &rejects {
            assert!(!reject.to_json().contains("7700"), "{}", reject.to_json());
        }
    }

    /// Found by `tests/fuzz_parsers.rs`: serde's message quotes the whole
    /// value it could not read, so a 70 KB string made a 70 KB rejection.
    #[test]
    fn a_rejection_keeps_a_bounded_part_of_a_long_error() {
        let value = "é".repeat(40_000);
        let err = AdaptError::field("queue_position", format!("`{value}` is not a number"));
        let rejection = Rejection::new(
            Vendor::Generic,
            "http",
            None,
            &err,
            &value,
            Timestamp::from_millis(0),
        );
        assert!(rejection.error.len() <= MAX_ERROR_BYTES);
        assert!(rejection.error.starts_with("field `queue_position`: `éé"));
        assert!(rejection.record.len() <= MAX_KEPT_RECORD_BYTES);
    }

    #[test]
    fn invalid_utf8_and_huge_lines_are_errors_not_panics() {
        let mut input = b"\xff\xfe{\n".to_vec();
        input.extend(vec![b'x'; MAX_RECORD_BYTES + 1]);
        input.push(b'\n');
        let read: Vec<Line> = lines(&input[..], 0, 0).map(Result::unwrap).collect();
        assert!(matches!(
            read[0].text,
            Err(AdaptError::Malformed {
                format: "UTF-8",
                ..
            })
        ));
        assert!(matches!(read[1].text, Err(AdaptError::TooLarge { .. })));
        assert_eq!(read[1].end_offset, input.len() as u64);
    }
}
