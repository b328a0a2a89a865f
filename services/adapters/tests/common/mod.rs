//! Golden tests: a sample file per vendor, written from the vendor's public
//! documentation, and the canonical events and rejects it must give.
//!
//! `samples/<vendor>/` holds `input.*` (the vendor file), `mapping.toml`,
//! `expected.jsonl` (canonical events, in output order) and
//! `expected-rejects.jsonl` (line, code and field of each rejected record).
//! `CALLPULSE_BLESS=1 cargo test -p callpulse-adapters` rewrites the
//! expected files from the current output: review the diff before committing.

use std::fs;
use std::path::{Path, PathBuf};

use callpulse_adapters::file::adapt_file;
use callpulse_adapters::{AdaptContext, PracticeMapping, Pseudonymiser, Vendor};
use callpulse_core::Timestamp;

/// The key every golden test uses, so expected pseudonyms are stable.
pub const TEST_KEY: &[u8] = b"callpulse-golden-test-key-32-bytes-long!";

pub fn samples(vendor: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(vendor)
}

pub fn pseudonymiser() -> Pseudonymiser {
    Pseudonymiser::new(TEST_KEY).unwrap()
}

/// Runs the vendor's sample file and compares with the expected files.
/// Returns the events, for further checks by the caller.
pub fn golden(vendor: Vendor) -> Vec<callpulse_core::CallEvent> {
    let dir = samples(vendor.name());
    let input = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.file_stem().is_some_and(|stem| stem == "input"))
        .unwrap_or_else(|| panic!("no input.* in {}", dir.display()));
    let mapping = PracticeMapping::load(&dir.join("mapping.toml")).unwrap();
    let pseudonymiser = pseudonymiser();
    let ctx = AdaptContext {
        mapping: &mapping,
        pseudonymiser: &pseudonymiser,
        received_at: None,
    };
    let mut events = Vec::new();
    let mut rejects = Vec::new();
    adapt_file(
        vendor,
        "file:input",
        fs::read(&input).unwrap().as_slice(),
        &ctx,
        Timestamp::from_millis(0),
        |event| {
            events.push(event);
            Ok(())
        },
        |reject| {
            rejects.push(reject);
            Ok(())
        },
    )
    .unwrap();
    let got_events: Vec<String> = events.iter().map(|e| e.to_json()).collect();
    let got_rejects: Vec<String> = rejects
        .iter()
        .map(|r| serde_json::json!({"line": r.line, "code": r.code, "field": r.field}).to_string())
        .collect();
    compare(&dir.join("expected.jsonl"), &got_events);
    compare(&dir.join("expected-rejects.jsonl"), &got_rejects);

    // Privacy: no caller number from the input reaches any output.
    let raw = fs::read_to_string(&input).unwrap_or_default();
    for reject in &rejects {
        let json = reject.to_json();
        assert!(
            !json.contains("7700 900"),
            "a rejection shows a number: {json}"
        );
    }
    for number in phone_numbers_in(&raw) {
        for line in got_events.iter().chain(rejects.iter().map(|r| &r.record)) {
            assert!(!line.contains(&number), "{number} leaked into {line}");
        }
    }
    events
}

fn compare(path: &Path, got: &[String]) {
    if std::env::var_os("CALLPULSE_BLESS").is_some() {
        let mut text = got.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        fs::write(path, text).unwrap();
        return;
    }
    let expected = fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("{}: {err} (CALLPULSE_BLESS=1 writes it)", path.display()));
    let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, (want, got)) in expected.iter().zip(got).enumerate() {
        let want: serde_json::Value = serde_json::from_str(want).unwrap();
        let got: serde_json::Value = serde_json::from_str(got).unwrap();
        assert_eq!(got, want, "{} line {}", path.display(), i + 1);
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "{}: number of lines",
        path.display()
    );
}

/// Mobile and geographic UK numbers in the sample (07..., +447..., 01/02...),
/// in their digit-only national form, e.g. `7700900123`.
fn phone_numbers_in(text: &str) -> Vec<String> {
    let digits: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut run = String::new();
    for ch in digits.iter().chain(std::iter::once(&' ')) {
        if ch.is_ascii_digit() {
            run.push(*ch);
        } else {
            if run.len() >= 10
                && (run.starts_with("07")
                    || run.starts_with("447")
                    || run.starts_with("01")
                    || run.starts_with("02"))
            {
                let national = run
                    .trim_start_matches("44")
                    .trim_start_matches('0')
                    .to_string();
                if national.len() >= 9 {
                    found.push(national);
                }
            }
            run.clear();
        }
    }
    found
}
