//! Replay's batch evaluation ([`callpulse_core::batch`]) against the
//! streaming engine: two implementations of metrics.md, which must agree
//! on every final window and call summary for any input.

use callpulse_core::batch::{entangled_practices, Batch};
use callpulse_core::{
    CallEvent, CallSummary, CoreHours, Engine, EngineConfig, EventKind, Ingested, Timestamp,
    WindowMetrics,
};
use proptest::prelude::*;

fn engine_results(events: &[CallEvent]) -> (Vec<WindowMetrics>, Vec<CallSummary>, u64) {
    let mut engine = Engine::new(EngineConfig::replay(CoreHours::shipped()));
    let mut duplicates = 0;
    for event in events {
        match engine.ingest(event) {
            Ingested::Folded => {}
            Ingested::Duplicate => duplicates += 1,
            Ingested::Late(late) => panic!("nothing is late in replay: {late:?}"),
        }
    }
    let emitted = engine.finish();
    let mut windows = emitted.windows;
    windows.sort_by_key(WindowMetrics::key);
    let mut calls = emitted.calls;
    calls.sort_by(|a, b| {
        (&a.practice, &a.vendor, &a.call_id).cmp(&(&b.practice, &b.vendor, &b.call_id))
    });
    (windows, calls, duplicates)
}

/// Also whether the batch took the path for calls and event ids across
/// practices ([`entangled_practices`]).
fn batch_results(events: &[CallEvent]) -> (Vec<WindowMetrics>, Vec<CallSummary>, u64, bool) {
    let mut batch = Batch::new(CoreHours::shipped());
    for event in events {
        batch.ingest(event);
    }
    let was_entangled = !entangled_practices(std::slice::from_ref(&batch)).is_empty();
    let output = batch.finish(true);
    (
        output.windows,
        output.calls,
        output.duplicates,
        was_entangled,
    )
}

/// Events around the autumn clock change (a 25-hour London day) and a
/// weekday's core hours, two vendors sharing call ids, duplicates with
/// differing copies, conflicting outcomes, callers, queue positions.
/// With `entangle`, a call's events name several practices and event ids
/// repeat across calls; without, each call has one practice and its own ids.
fn arbitrary_events(entangle: bool) -> impl Strategy<Value = Vec<CallEvent>> {
    let kinds = prop::sample::select(vec![
        EventKind::Offered,
        EventKind::Offered,
        EventKind::Queued,
        EventKind::Answered,
        EventKind::Abandoned,
        EventKind::Missed,
        EventKind::CallbackRequested,
        EventKind::CallbackMade,
        EventKind::Ended,
        EventKind::IvrEnded,
        EventKind::Diverted111,
        EventKind::Divert111On,
        EventKind::Divert111Off,
    ]);
    let base = prop::sample::select(vec![
        // 2026-10-25T00:30:00Z: the clocks go back at 01:00 UTC.
        1_792_888_200_000i64,
        // 2026-11-23T07:50:00Z: a Monday, core hours from 08:00.
        1_795_420_800_000 + 30 * 60_000,
        // 2026-11-23T18:20:00Z: core hours end at 18:30.
        1_795_458_000_000,
    ]);
    let one = (
        0u8..8,
        0u8..6,
        kinds,
        0i64..10_800_000,
        prop::option::of(0u8..4),
        0u8..3,
        0u8..2,
        prop::option::of(1u32..9),
    );
    (base, prop::collection::vec(one, 1..80)).prop_map(move |(base, items)| {
        items
            .into_iter()
            .map(
                |(call, id, kind, offset_ms, caller, practice, vendor, position)| {
                    // Whole seconds often, so that instants and bounds coincide.
                    let offset_ms = if offset_ms % 3 == 0 {
                        offset_ms - offset_ms % 60_000
                    } else {
                        offset_ms
                    };
                    let (event_id, practice) = if entangle {
                        (format!("e{call}-{id}"), practice)
                    } else {
                        let prefix = if kind.is_practice_level() { "s" } else { "e" };
                        (format!("{prefix}{call}-{vendor}-{id}"), (call + vendor) % 3)
                    };
                    CallEvent {
                        event_id,
                        call_id: (!kind.is_practice_level()).then(|| format!("c{call}")),
                        vendor: ["generic", "twilio"][usize::from(vendor)].into(),
                        practice: format!("A8100{practice}"),
                        kind,
                        at: Timestamp(base + offset_ms),
                        caller: caller.map(|c| format!("p{c}")),
                        queue_position: (kind == EventKind::Queued).then_some(position).flatten(),
                    }
                },
            )
            .collect()
    })
}

fn without_revisions(windows: Vec<WindowMetrics>) -> Vec<WindowMetrics> {
    windows.iter().map(WindowMetrics::values_only).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn batch_and_engine_agree(events in arbitrary_events(false)) {
        let (engine_windows, engine_calls, engine_duplicates) = engine_results(&events);
        let (batch_windows, batch_calls, batch_duplicates, was_entangled) = batch_results(&events);
        prop_assert!(!was_entangled, "each call is in one practice, with ids of its own");
        prop_assert_eq!(without_revisions(batch_windows), without_revisions(engine_windows));
        prop_assert_eq!(batch_calls, engine_calls);
        prop_assert_eq!(batch_duplicates, engine_duplicates);
    }

    /// Calls and event ids across practices: replay evaluates them with
    /// the engine, fed in the other order.
    #[test]
    fn batch_and_engine_agree_across_practices(events in arbitrary_events(true)) {
        let reversed: Vec<CallEvent> = events.iter().rev().cloned().collect();
        let (engine_windows, engine_calls, engine_duplicates) = engine_results(&reversed);
        let (batch_windows, batch_calls, batch_duplicates, _) = batch_results(&events);
        prop_assert_eq!(without_revisions(batch_windows), without_revisions(engine_windows));
        // A call's revision counts its changes, which depend on the order.
        let events_only = |calls: Vec<CallSummary>| -> Vec<CallSummary> {
            calls.into_iter().map(|call| CallSummary { revision: 0, ..call }).collect()
        };
        prop_assert_eq!(events_only(batch_calls), events_only(engine_calls));
        prop_assert_eq!(batch_duplicates, engine_duplicates);
    }
}

#[test]
fn a_window_revision_counts_the_events_that_landed_in_it() {
    let event = |id: &str, kind: EventKind, at: &str| CallEvent {
        event_id: id.into(),
        call_id: Some("c1".into()),
        vendor: "generic".into(),
        practice: "A81001".into(),
        kind,
        at: Timestamp::parse_rfc3339(at).unwrap(),
        caller: None,
        queue_position: None,
    };
    let mut batch = Batch::new(CoreHours::shipped());
    for e in [
        event("e1", EventKind::Offered, "2026-11-23T08:00:10Z"),
        event("e1", EventKind::Offered, "2026-11-23T08:00:10Z"),
        event("e2", EventKind::Answered, "2026-11-23T08:01:10Z"),
    ] {
        batch.ingest(&e);
    }
    let output = batch.finish(false);
    let revisions: Vec<(String, u64)> = output
        .windows
        .iter()
        .map(|w| (format!("{} {}", w.window, w.start), w.revision))
        .collect();
    assert_eq!(
        revisions,
        [
            ("1m 2026-11-23T08:00:00.000Z".to_string(), 2),
            ("1m 2026-11-23T08:01:00.000Z".to_string(), 1),
            ("15m 2026-11-23T08:00:00.000Z".to_string(), 3),
            ("1h 2026-11-23T08:00:00.000Z".to_string(), 3),
            ("1d 2026-11-23T00:00:00.000Z".to_string(), 3),
        ]
    );
    assert!(output.windows.iter().all(|w| w.is_final));
    assert!(output.calls.is_empty(), "summaries only when asked for");
    assert_eq!(output.duplicates, 1);
}

#[test]
fn only_the_practices_a_call_or_an_event_id_joins_are_evaluated_together() {
    let event = |id: &str, call: &str, practice: &str, kind: EventKind| CallEvent {
        event_id: id.into(),
        call_id: Some(call.into()),
        vendor: "generic".into(),
        practice: practice.into(),
        kind,
        at: Timestamp::parse_rfc3339("2026-11-23T10:00:00Z").unwrap(),
        caller: None,
        queue_position: None,
    };
    let events = [
        // One call at two practices.
        event("e1", "c1", "A81001", EventKind::Offered),
        event("e2", "c1", "A81002", EventKind::Answered),
        // One event id on calls of two other practices.
        event("e3", "c2", "B82001", EventKind::Offered),
        event("e3", "c3", "B82002", EventKind::Offered),
        // A repeat within one call, and calls of their own.
        event("e4", "c4", "C83001", EventKind::Offered),
        event("e4", "c4", "C83001", EventKind::Offered),
        event("e5", "c5", "C83002", EventKind::Offered),
        // The same call id from another vendor is another call.
        CallEvent {
            vendor: "twilio".into(),
            ..event("e6", "c5", "C83003", EventKind::Offered)
        },
    ];
    let mut batch = Batch::new(CoreHours::shipped());
    for e in &events {
        batch.ingest(e);
    }
    let mut tangled: Vec<String> = entangled_practices(std::slice::from_ref(&batch))
        .into_iter()
        .map(|practice| practice.to_code())
        .collect();
    tangled.sort();
    assert_eq!(tangled, ["A81001", "A81002", "B82001", "B82002"]);
    let (engine_windows, _, engine_duplicates) = engine_results(&events);
    let output = batch.finish(false);
    assert_eq!(
        without_revisions(output.windows),
        without_revisions(engine_windows)
    );
    assert_eq!((output.duplicates, engine_duplicates), (2, 2));
}
