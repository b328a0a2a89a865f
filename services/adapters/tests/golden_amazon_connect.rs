//! Golden test of the Amazon Connect contact-record sample (see `common/mod.rs`
//! and `docs/adapters.md (amazon-connect)`).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use callpulse_adapters::Vendor;
use callpulse_core::EventKind;

#[test]
fn amazon_connect() {
    let events = common::golden(Vendor::AmazonConnect);
    let has = |kind: EventKind| events.iter().any(|e| e.kind == kind);
    for kind in [
        EventKind::Offered,
        EventKind::Queued,
        EventKind::Answered,
        EventKind::Abandoned,
        EventKind::Missed,
        EventKind::IvrEnded,
        EventKind::CallbackRequested,
        EventKind::CallbackMade,
        EventKind::Diverted111,
        EventKind::Ended,
    ] {
        assert!(has(kind), "no {} event in the sample", kind.as_str());
    }

    // One offer per inbound call (a re-sent record repeats its event id):
    // transfers and callbacks never offer again.
    let mut offers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.kind == EventKind::Offered) {
        offers
            .entry(event.call_id.as_deref().unwrap())
            .or_default()
            .insert(event.event_id.as_str());
    }
    assert!(offers.values().all(|ids| ids.len() == 1), "{offers:?}");

    // Exactly one outcome per call, once copies with the same event id
    // (a re-sent record; a callback reported by both of its contacts) are one.
    let mut outcomes: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.kind.is_outcome()) {
        outcomes
            .entry(event.call_id.as_deref().unwrap())
            .or_default()
            .insert((event.event_id.as_str(), event.kind.as_str()));
    }
    for call in offers.keys() {
        let found = outcomes.get(call).map_or(0, BTreeSet::len);
        assert_eq!(found, 1, "call {call}: {:?}", outcomes.get(call));
    }

    // The callback is made on the original call, not on the callback contact.
    let made = events
        .iter()
        .find(|e| e.kind == EventKind::CallbackMade)
        .unwrap();
    assert!(offers.contains_key(made.call_id.as_deref().unwrap()));

    // Withheld callers have no pseudonym; every other offer has one.
    let withheld = events
        .iter()
        .filter(|e| e.kind == EventKind::Offered && e.caller.is_none())
        .map(|e| e.event_id.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    assert_eq!(withheld, 2);
    assert!(events
        .iter()
        .filter(|e| e.kind != EventKind::Offered)
        .all(|e| e.caller.is_none()));
}
