//! Golden tests of the Asterisk adapter: a CDR CSV file through the shared
//! harness (`samples/asterisk/`), and a queue_log through a local variant of
//! it (`samples/asterisk-queue-log/`), with a callback key configured.
//! `CALLPULSE_BLESS=1 cargo test -p callpulse-adapters --test golden_asterisk`
//! rewrites the expected files: review the diff.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use callpulse_adapters::file::Rejection;
use callpulse_adapters::vendors::asterisk::{adapt_record_with, Options};
use callpulse_adapters::{AdaptContext, PracticeMapping, Vendor};
use callpulse_core::{CallEvent, EventKind, Timestamp};

fn kinds_by_call(events: &[CallEvent]) -> BTreeMap<String, Vec<&'static str>> {
    let mut calls: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for event in events {
        calls
            .entry(event.call_id.clone().unwrap())
            .or_default()
            .push(event.kind.as_str());
    }
    calls
}

#[test]
fn asterisk() {
    let events = common::golden(Vendor::Asterisk);
    let calls = kinds_by_call(&events);
    assert_eq!(
        calls["1795420800.1"],
        ["offered", "answered", "ended", "offered"],
        "answered, plus an unanswered member leg"
    );
    assert_eq!(calls["1795420860.2"], ["offered", "abandoned"]);
    assert_eq!(calls["1795420920.3"], ["offered", "ivr_ended"]);
    assert_eq!(calls["1795420980.4"], ["offered", "missed"], "voicemail");
    assert_eq!(calls["1795421040.6"], ["offered", "missed"], "busy");
    assert_eq!(calls["1795421100.7"], ["offered", "missed"], "rang out");
    assert_eq!(
        calls["1795421160.8"],
        ["offered", "abandoned"],
        "hung up while ringing"
    );
    assert_eq!(calls["1795437000.9"], ["offered", "diverted_111"]);
    // Two legs of one call give the same offered event: a duplicate, one call.
    let offered: Vec<&CallEvent> = events
        .iter()
        .filter(|e| e.call_id.as_deref() == Some("1795420800.1") && e.kind == EventKind::Offered)
        .collect();
    assert_eq!(offered[0].event_id, offered[1].event_id);
    // The Local channel leg gives nothing.
    assert!(!calls.contains_key("1795420910.5"));
    // Withheld numbers have no caller; a second practice is mapped by dst.
    let withheld = events
        .iter()
        .filter(|e| e.kind == EventKind::Offered && e.caller.is_none())
        .count();
    assert_eq!(withheld, 2);
    assert!(events.iter().any(|e| e.practice == "A81004"));
}

#[test]
fn asterisk_queue_log() {
    let dir = common::samples("asterisk-queue-log");
    let input = fs::read_to_string(dir.join("input.log")).unwrap();
    let mapping = PracticeMapping::load(&dir.join("mapping.toml")).unwrap();
    let pseudonymiser = common::pseudonymiser();
    let ctx = AdaptContext {
        mapping: &mapping,
        pseudonymiser: &pseudonymiser,
        received_at: None,
    };
    let options = Options {
        callback_keys: &["1"],
    };
    let mut events = Vec::new();
    let mut rejects = Vec::new();
    for (number, text) in input.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let line = Some(number as u64 + 1);
        match adapt_record_with(text, &ctx, &options) {
            Ok(mut got) => events.append(&mut got),
            Err(err) => rejects.push(Rejection::new(
                Vendor::Asterisk,
                "file:input",
                line,
                &err,
                text,
                Timestamp::from_millis(0),
            )),
        }
    }
    let got_events: Vec<String> = events.iter().map(CallEvent::to_json).collect();
    let got_rejects: Vec<String> = rejects
        .iter()
        .map(|r| serde_json::json!({"line": r.line, "code": r.code, "field": r.field}).to_string())
        .collect();
    compare(&dir.join("expected.jsonl"), &got_events);
    compare(&dir.join("expected-rejects.jsonl"), &got_rejects);

    let output = got_events
        .iter()
        .chain(rejects.iter().map(|r| &r.record))
        .chain(rejects.iter().map(|r| &r.error));
    for line in output {
        for number in ["7700900", "7700 900", "1632960"] {
            assert!(!line.contains(number), "a number leaked into {line}");
        }
    }
    let calls = kinds_by_call(&events);
    assert_eq!(
        calls["1795420800.1"],
        ["offered", "queued", "answered", "ended"]
    );
    assert_eq!(calls["1795420860.2"], ["offered", "queued", "abandoned"]);
    assert_eq!(
        calls["1795420900.5"],
        ["offered", "queued", "missed"],
        "queue timeout"
    );
    assert_eq!(
        calls["1795420920.6"],
        ["offered", "queued", "callback_requested"],
        "exit key 1"
    );
    assert_eq!(
        calls["1795421000.7"],
        ["offered", "queued", "missed"],
        "another exit key"
    );
    assert_eq!(
        calls["1795421100.8"],
        ["offered", "missed"],
        "nobody logged in"
    );
    assert_eq!(
        calls["1795421110.9"],
        ["offered", "queued", "answered", "ended"],
        "transferred"
    );
    assert_eq!(
        calls["1795421120.3"],
        ["offered", "queued", "missed"],
        "queue emptied"
    );
}

fn compare(path: &Path, got: &[String]) {
    if std::env::var_os("CALLPULSE_BLESS").is_some() {
        let text: String = got.iter().map(|line| format!("{line}\n")).collect();
        fs::write(path, text).unwrap();
        return;
    }
    let expected = fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("{}: {err} (CALLPULSE_BLESS=1 writes it)", path.display()));
    let expected: Vec<serde_json::Value> = expected
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<serde_json::Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got, expected, "{}", path.display());
}
