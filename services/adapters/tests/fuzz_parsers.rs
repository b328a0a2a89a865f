//! Fuzzing the vendor parsers through the file path (`file::adapt_file`),
//! the way an imported file or a webhook body reaches them.
//!
//! Each vendor module already has property tests on single records of
//! arbitrary text and JSON-ish values. What they do not try, and this file
//! does: whole golden sample files (`samples/<vendor>/`) broken the ways real
//! files break (cut short, bytes flipped, inserted or deleted, a line
//! repeated, a JSON value swapped for another type, a key given twice, huge
//! numbers, deep nesting, long strings, invalid UTF-8), arbitrary bytes as a
//! whole file, the generic (canonical JSON) adapter on its own, the HTTP
//! body splitter, and the record size limit just under and just over.
//! Also the operator's files the adapters read: the practice mappings
//! (`mapping.toml`) and the practice codes of an organisations CSV.
//!
//! The properties: no panic; bounded output (a few events per record, a
//! rejection of bounded size per bad record); no caller's number from the
//! sample in any event or rejection.

use std::fs;
use std::path::{Path, PathBuf};

use callpulse_adapters::file::{adapt_file, FileSummary, Rejection, MAX_RECORD_BYTES};
use callpulse_adapters::http::split_json_records;
use callpulse_adapters::settings::practice_codes;
use callpulse_adapters::{AdaptContext, PracticeMapping, Pseudonymiser, Vendor};
use callpulse_core::{CallEvent, Timestamp};
use proptest::prelude::*;
use serde_json::Value;

#[path = "../../core/tests/support/mutate.rs"]
mod text_mutate;

/// The most canonical events one vendor record may imply: a call's
/// offered, queued, answered/abandoned/diverted and ended, with room to spare.
const MAX_EVENTS_PER_RECORD: u64 = 8;

/// A rejection keeps at most 4 KiB of the record; the error message and the
/// envelope around it must stay small too, whatever the record held.
const MAX_REJECTION_BYTES: usize = 16 * 1024;

/// One golden sample: the vendor, its input file and its practice mapping.
struct Sample {
    vendor: Vendor,
    input: Vec<u8>,
    mapping: PracticeMapping,
    /// Callers' numbers in the sample, digits only in national form
    /// (`7700900123`): none may reach an event or a rejection.
    callers: Vec<String>,
}

fn sample_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(name)
}

fn load_sample(vendor: Vendor, dir_name: &str) -> Sample {
    let dir = sample_dir(dir_name);
    let input_path = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.file_stem().is_some_and(|stem| stem == "input"))
        .unwrap();
    let input = fs::read(&input_path).unwrap();
    let mapping = PracticeMapping::load(&dir.join("mapping.toml")).unwrap();
    let callers = callers_in(&String::from_utf8_lossy(&input));
    Sample {
        vendor,
        input,
        mapping,
        callers,
    }
}

fn samples() -> Vec<Sample> {
    vec![
        load_sample(Vendor::Generic, "generic"),
        load_sample(Vendor::Twilio, "twilio"),
        load_sample(Vendor::AmazonConnect, "amazon-connect"),
        load_sample(Vendor::Asterisk, "asterisk"),
        load_sample(Vendor::Asterisk, "asterisk-queue-log"),
        load_sample(Vendor::Teams, "teams"),
    ]
}

/// The samples' callers all have numbers in Ofcom's drama range
/// 07700 900000–900999 (practices' own numbers are 01632 96xxxx).
fn callers_in(text: &str) -> Vec<String> {
    let digits: String = text
        .chars()
        .map(|ch| if ch.is_ascii_digit() { ch } else { ' ' })
        .collect();
    let mut found: Vec<String> = digits
        .split(' ')
        .filter_map(|run| {
            let national = run.strip_prefix("44").or(run.strip_prefix('0'))?;
            (national.len() == 10 && national.starts_with("7700900")).then(|| national.to_string())
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// What one run of the file path produced.
struct Output {
    summary: FileSummary,
    events: Vec<CallEvent>,
    rejections: Vec<Rejection>,
}

fn run_file(vendor: Vendor, mapping: &PracticeMapping, input: &[u8]) -> Output {
    let pseudonymiser = Pseudonymiser::new(b"callpulse-fuzz-test-key-32-bytes-long!!").unwrap();
    let ctx = AdaptContext {
        mapping,
        pseudonymiser: &pseudonymiser,
        received_at: None,
    };
    let mut events = Vec::new();
    let mut rejections = Vec::new();
    let summary = adapt_file(
        vendor,
        "file:fuzz",
        input,
        &ctx,
        Timestamp::from_millis(0),
        |event| {
            events.push(event);
            Ok(())
        },
        |rejection| {
            rejections.push(rejection);
            Ok(())
        },
    )
    .expect("reading from memory never fails");
    Output {
        summary,
        events,
        rejections,
    }
}

/// The properties every run must have, whatever the input.
fn check_output(output: &Output, input: &[u8], callers: &[String]) -> Result<(), TestCaseError> {
    let lines = input.split(|&b| b == b'\n').count() as u64;
    prop_assert!(output.summary.records <= lines);
    prop_assert_eq!(
        output.summary.events + output.summary.rejected,
        output.events.len() as u64 + output.rejections.len() as u64
    );
    prop_assert!(
        output.summary.events <= MAX_EVENTS_PER_RECORD * output.summary.records,
        "{} events from {} records",
        output.summary.events,
        output.summary.records
    );
    for event in &output.events {
        prop_assert!(event.validate().is_ok(), "{:?}", event);
        let json = without_separators(&event.to_json());
        for caller in callers {
            prop_assert!(!json.contains(caller.as_str()), "{} in {}", caller, json);
        }
    }
    for rejection in &output.rejections {
        let json = rejection.to_json();
        prop_assert!(
            json.len() <= MAX_REJECTION_BYTES,
            "a rejection of {} bytes: {}…",
            json.len(),
            &rejection.error.chars().take(200).collect::<String>()
        );
        // A practice lookup quotes the dialled number it could not map,
        // which a mutation may have replaced with a caller's: the record
        // itself is masked all the same.
        let shown = if rejection.code == "unmapped_practice" {
            without_separators(&rejection.record)
        } else {
            without_separators(&json)
        };
        for caller in callers {
            prop_assert!(!shown.contains(caller.as_str()), "{} in {}", caller, json);
        }
    }
    Ok(())
}

/// Numbers are written with spaces, dashes and brackets: drop them so a
/// number is found however it was written.
fn without_separators(text: &str) -> String {
    text.chars()
        .filter(|ch| !matches!(ch, ' ' | '-' | '(' | ')'))
        .collect()
}

/// A way a real file gets broken. Positions are fractions of the file (or
/// of its lines), so one mutation fits any sample.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(f64),
    FlipBit(f64, u8),
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
    RepeatLine(f64),
    /// In a JSON line: the n-th value (in document order) replaced.
    ReplaceJsonValue(f64, f64, Value),
    /// In a JSON line: its first key given again, with another value.
    DuplicateKey(f64, Value),
    /// In a CSV or `|`-separated line: the n-th field replaced.
    ReplaceField(f64, f64, String),
}

/// Values that break parsers: wrong types, extreme numbers, long strings,
/// deep nesting, callers' numbers in unexpected places.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(serde_json::json!(-0.0)),
        Just(Value::String("+447700900999".into())),
        Just(Value::String("99999999999999999999999999999".into())),
        Just(Value::String("2026-02-30T25:61:61Z".into())),
        Just(Value::String("9999-12-31T23:59:59.999999999+14:00".into())),
        "\\PC{0,40}".prop_map(Value::String),
        (1usize..70_000).prop_map(|n| Value::String("x".repeat(n))),
        (1usize..300).prop_map(nested),
        prop::collection::vec(any::<i32>().prop_map(Value::from), 0..50).prop_map(Value::Array),
        Just(serde_json::json!({"a": {"b": [1, {"c": null}]}})),
    ]
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::from(1), |inner, _| Value::Array(vec![inner]))
}

/// Raw text that breaks number parsers but no JSON library would produce.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e999999".to_string()),
        Just("-1e-999999".to_string()),
        Just("123456789012345678901234567890".to_string()),
        Just("NaN".to_string()),
        Just(format!("{}1{}", "[".repeat(200), "]".repeat(200))),
        Just("\"\\ud800\"".to_string()),
        Just("\"\\u0000\"".to_string()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        at.clone().prop_map(Mutation::Truncate),
        (at.clone(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (
            at.clone(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..16),
                Just(b"\n".to_vec()),
                Just(b"\xff\xfe".to_vec()),
                Just(b"\",\"".to_vec()),
                Just(b"|".to_vec()),
                hostile_text().prop_map(String::into_bytes),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (at.clone(), 1usize..64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        at.clone().prop_map(Mutation::RepeatLine),
        (at.clone(), at.clone(), hostile_value())
            .prop_map(|(line, nth, value)| Mutation::ReplaceJsonValue(line, nth, value)),
        (at.clone(), hostile_value()).prop_map(|(line, value)| Mutation::DuplicateKey(line, value)),
        (
            at.clone(),
            at,
            prop_oneof![hostile_text(), "\\PC{0,30}", Just("\"".to_string())]
        )
            .prop_map(|(line, nth, text)| Mutation::ReplaceField(line, nth, text)),
    ]
}

fn index(fraction: f64, len: usize) -> usize {
    ((fraction * len as f64) as usize).min(len.saturating_sub(1))
}

fn apply(mutation: &Mutation, file: &mut Vec<u8>) {
    match mutation {
        Mutation::Truncate(at) => file.truncate(index(*at, file.len() + 1)),
        Mutation::FlipBit(at, bit) if !file.is_empty() => {
            let i = index(*at, file.len());
            file[i] ^= 1 << bit;
        }
        Mutation::Insert(at, bytes) => {
            let i = index(*at, file.len() + 1);
            file.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete(at, len) if !file.is_empty() => {
            let i = index(*at, file.len());
            file.drain(i..(i + len).min(file.len()));
        }
        Mutation::RepeatLine(at) => edit_line(file, *at, |line| {
            let mut twice = line.to_vec();
            twice.push(b'\n');
            twice.extend_from_slice(line);
            Some(twice)
        }),
        Mutation::ReplaceJsonValue(at, nth, value) => edit_line(file, *at, |line| {
            let mut json: Value = serde_json::from_slice(line).ok()?;
            let leaves = count_leaves(&json);
            replace_leaf(&mut json, index(*nth, leaves), value).ok()?;
            Some(json.to_string().into_bytes())
        }),
        Mutation::DuplicateKey(at, value) => edit_line(file, *at, |line| {
            let json: Value = serde_json::from_slice(line).ok()?;
            let key = json.as_object()?.keys().next()?.clone();
            // serde_json would merge the keys: write the repeat as text.
            let text = String::from_utf8(line.to_vec()).ok()?;
            let rest = text.trim_start().strip_prefix('{')?;
            Some(format!("{{{}:{value},{rest}", Value::String(key)).into_bytes())
        }),
        Mutation::ReplaceField(at, nth, text) => edit_line(file, *at, |line| {
            let line = String::from_utf8(line.to_vec()).ok()?;
            let separator = if line.contains('|') { '|' } else { ',' };
            let mut fields: Vec<String> = line.split(separator).map(str::to_string).collect();
            let i = index(*nth, fields.len());
            fields[i] = if separator == ',' {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text.clone()
            };
            Some(fields.join(&separator.to_string()).into_bytes())
        }),
        Mutation::FlipBit(..) | Mutation::Delete(..) => {}
    }
}

/// Replaces the line at a fraction of the file by what `edit` makes of it
/// (nothing changes when `edit` gives `None`).
fn edit_line(file: &mut Vec<u8>, at: f64, edit: impl FnOnce(&[u8]) -> Option<Vec<u8>>) {
    let lines: Vec<&[u8]> = file.split(|&b| b == b'\n').collect();
    let i = index(at, lines.len());
    let Some(new) = edit(lines[i]) else { return };
    let mut out = Vec::with_capacity(file.len() + new.len());
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(if n == i { &new } else { line });
    }
    *file = out;
}

/// How many leaves (scalars and empty containers) `json` holds.
fn count_leaves(json: &Value) -> usize {
    match json {
        Value::Object(map) if !map.is_empty() => map.values().map(count_leaves).sum(),
        Value::Array(items) if !items.is_empty() => items.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

/// Replaces the `n`-th leaf of `json`, in document order; returns how many
/// leaves were passed over when `n` is not inside this value.
fn replace_leaf(json: &mut Value, n: usize, new: &Value) -> Result<(), usize> {
    let children: Vec<&mut Value> = match json {
        Value::Object(map) if !map.is_empty() => map.values_mut().collect(),
        Value::Array(items) if !items.is_empty() => items.iter_mut().collect(),
        leaf => {
            return if n == 0 {
                *leaf = new.clone();
                Ok(())
            } else {
                Err(1)
            }
        }
    };
    let mut passed = 0;
    for child in children {
        match replace_leaf(child, n - passed, new) {
            Ok(()) => return Ok(()),
            Err(count) => passed += count,
        }
    }
    Err(passed)
}

#[test]
fn golden_samples_meet_the_properties_unmutated() {
    for sample in samples() {
        let output = run_file(sample.vendor, &sample.mapping, &sample.input);
        assert!(output.summary.events > 0, "{}", sample.vendor);
        check_output(&output, &sample.input, &sample.callers).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A golden sample broken by one to four mutations, as every vendor.
    #[test]
    fn mutated_golden_samples_never_panic_nor_grow_nor_leak(
        which in 0usize..6,
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let sample = samples().swap_remove(which);
        let mut file = sample.input.clone();
        for mutation in &mutations {
            apply(mutation, &mut file);
        }
        let output = run_file(sample.vendor, &sample.mapping, &file);
        check_output(&output, &file, &sample.callers)?;
    }

    /// Any bytes as a whole file, as every vendor.
    #[test]
    fn arbitrary_bytes_as_a_file_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2_000),
    ) {
        for vendor in Vendor::ALL {
            let output = run_file(vendor, &PracticeMapping::default(), &bytes);
            check_output(&output, &bytes, &[])?;
        }
    }

    /// The generic adapter is the canonical JSON parser behind a caller's
    /// pseudonym: any text, and canonical events with fields swapped for
    /// hostile values.
    #[test]
    fn generic_records_never_panic(
        text in "\\PC{0,300}",
        field in prop::sample::select(vec![
            "event_id", "call_id", "vendor", "practice", "kind", "at", "caller", "queue_position", "extra",
        ]),
        value in hostile_value(),
    ) {
        let mapping = PracticeMapping::default();
        let mut event = serde_json::json!({
            "event_id": "g-1", "call_id": "call-1", "vendor": "generic", "practice": "A81001",
            "kind": "queued", "at": "2026-11-23T08:00:01.250Z", "caller": "07700 900123", "queue_position": 4,
        });
        event[field] = value;
        let file = format!("{text}\n{event}\n");
        let output = run_file(Vendor::Generic, &mapping, file.as_bytes());
        check_output(&output, file.as_bytes(), &["7700900123".to_string()])?;
    }

    /// The HTTP body splitter: each record it returns is a piece of the
    /// body, so there can never be more of them than bytes to hold them.
    #[test]
    fn http_bodies_split_into_at_most_one_record_per_two_bytes(
        body in prop_oneof![
            "\\PC{0,300}",
            "[\\[\\]{}\",:0-9a \n]{0,200}",
            prop::collection::vec(hostile_value(), 0..6).prop_map(|values| {
                values.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
            }),
        ],
    ) {
        if let Ok(records) = split_json_records(&body) {
            prop_assert!(records.len() <= body.len() / 2 + 1, "{} records", records.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The golden samples' mapping files broken, or arbitrary text: a
    /// mapping or an error that says what is wrong.
    #[test]
    fn practice_mappings_parse_or_say_why(
        which in prop::sample::select(vec!["generic", "twilio", "amazon-connect", "asterisk", "asterisk-queue-log", "teams"]),
        mutations in prop::collection::vec(text_mutate::mutation(), 1..4),
        arbitrary in prop::option::weighted(0.2, "\\PC{0,200}"),
    ) {
        let text = arbitrary.unwrap_or_else(|| {
            let valid = fs::read_to_string(sample_dir(which).join("mapping.toml")).unwrap();
            text_mutate::mutated(&valid, &mutations)
        });
        if let Err(err) = PracticeMapping::from_toml(&text) {
            prop_assert!(!err.to_string().is_empty());
        }
    }

    /// The practice codes of an organisations CSV (the directory the
    /// generic adapter checks practices against).
    #[test]
    fn practice_codes_parse_or_say_why(
        mutations in prop::collection::vec(text_mutate::mutation(), 1..4),
        arbitrary in prop::option::weighted(0.2, "\\PC{0,200}"),
    ) {
        let text = arbitrary.unwrap_or_else(|| {
            let head: String = include_str!("../../../data/organisations.csv")
                .lines()
                .take(20)
                .map(|line| format!("{line}\n"))
                .collect();
            text_mutate::mutated(&head, &mutations)
        });
        match practice_codes(&text) {
            Ok(codes) => prop_assert!(codes.len() <= text.lines().count()),
            Err(err) => {
                let message = format!("{err:#}");
                prop_assert!(!message.is_empty());
            }
        }
    }
}

/// The record size limit holds exactly: a record of `MAX_RECORD_BYTES` is
/// read, one byte more is refused as too large (not parsed, not kept whole).
#[test]
fn records_over_the_size_limit_are_refused_and_those_at_it_are_read() {
    for sample in samples() {
        let first = sample
            .input
            .split(|&b| b == b'\n')
            .find(|line| line.starts_with(b"{"))
            .map(<[u8]>::to_vec);
        let Some(record) = first else {
            // CSV and queue_log: only the refusal can be checked.
            let mut huge = vec![b'1'; MAX_RECORD_BYTES + 1];
            huge.push(b'\n');
            let output = run_file(sample.vendor, &sample.mapping, &huge);
            assert_eq!(output.rejections[0].code, "too_large");
            assert!(output.rejections[0].to_json().len() <= MAX_REJECTION_BYTES);
            continue;
        };
        let padded = |size: usize| {
            // JSON allows any whitespace after the opening brace.
            let mut line = b"{".to_vec();
            line.resize(size - record.len() + 1, b' ');
            line.extend_from_slice(&record[1..]);
            assert_eq!(line.len(), size);
            line
        };
        let at_limit = run_file(sample.vendor, &sample.mapping, &padded(MAX_RECORD_BYTES));
        let alone = run_file(sample.vendor, &sample.mapping, &record);
        assert_eq!(
            at_limit.summary, alone.summary,
            "{}: a record at the limit reads as it does unpadded",
            sample.vendor
        );
        let over = run_file(
            sample.vendor,
            &sample.mapping,
            &padded(MAX_RECORD_BYTES + 1),
        );
        assert_eq!(over.summary.rejected, 1);
        assert_eq!(over.rejections[0].code, "too_large", "{}", sample.vendor);
        assert!(over.rejections[0].to_json().len() <= MAX_REJECTION_BYTES);
    }
}
