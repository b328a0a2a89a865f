//! Golden test of the Twilio sample file (see `common/mod.rs` and
//! docs/adapters.md (twilio) for the mapping it checks).

mod common;

use std::collections::BTreeMap;

use callpulse_adapters::Vendor;
use callpulse_core::{CallEvent, EventKind};

/// The kinds of each call, in output order.
fn kinds_by_call(events: &[CallEvent]) -> BTreeMap<String, Vec<&'static str>> {
    let mut calls: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for event in events {
        let call = event.call_id.clone().unwrap_or_default();
        calls
            .entry(call[..4].to_string())
            .or_default()
            .push(event.kind.as_str());
    }
    calls
}

#[test]
fn twilio() {
    let events = common::golden(Vendor::Twilio);
    assert!(events.iter().all(|e| e.vendor == "twilio"));
    let calls = kinds_by_call(&events);
    let expect = |call: &str, kinds: &[&str]| {
        assert_eq!(
            calls.get(call).map(Vec::as_slice),
            Some(kinds),
            "call {call}"
        );
    };
    // Twilio answering with TwiML is not staff answering; the dequeue is.
    expect("CA01", &["offered", "queued", "answered", "ended"]);
    expect("CA02", &["offered", "queued", "abandoned", "ended"]);
    expect("CA03", &["offered", "ended", "ivr_ended"]);
    expect("CA04", &["offered", "queued", "missed", "ended"]);
    // The callback made (CA06's record) belongs to the call it returns.
    expect(
        "CA05",
        &[
            "offered",
            "queued",
            "callback_requested",
            "ended",
            "callback_made",
        ],
    );
    expect("CA07", &["offered", "diverted_111", "ended"]);
    expect("CA08", &["offered", "answered", "ended"]);
    expect("CA09", &["offered", "ended", "abandoned"]);
    expect("CA0a", &["offered", "missed", "ended"]);
    expect("CA0b", &["offered", "ended", "missed"]);
    // An outbound call that is not a callback gives nothing.
    assert!(!calls.contains_key("CA06") && !calls.contains_key("CA0e"));

    // Every inbound call has exactly one outcome.
    for (call, kinds) in &calls {
        let outcomes = kinds
            .iter()
            .filter(|kind| EventKind::parse(kind).is_some_and(EventKind::is_outcome))
            .count();
        assert_eq!(outcomes, 1, "call {call}: {kinds:?}");
    }
    // Withheld callers have no pseudonym; the others do.
    for event in events.iter().filter(|e| e.kind == EventKind::Offered) {
        let withheld = ["CA08", "CA09"].contains(&&event.call_id.as_deref().unwrap()[..4]);
        assert_eq!(event.caller.is_none(), withheld, "{}", event.to_json());
    }
    // The queue join carries its position; a Dial leg's answer is placed at
    // the leg's start (Timestamp − CallDuration).
    let queued = events.iter().find(|e| e.kind == EventKind::Queued).unwrap();
    assert_eq!(queued.queue_position, Some(4));
    let answered_by_dial = events
        .iter()
        .find(|e| {
            e.kind == EventKind::Answered && e.call_id.as_deref().unwrap().starts_with("CA08")
        })
        .unwrap();
    assert_eq!(
        answered_by_dial.at.to_rfc3339_seconds(),
        "2026-11-23T08:07:30Z"
    );
    assert!(events.iter().any(|e| e.kind == EventKind::Diverted111));
    assert!(events.iter().any(|e| e.practice == "A81002"));
}
