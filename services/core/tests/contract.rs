//! The measurement contract (metrics.md) checked through the engine, and the
//! property that results depend on the set of events, not their order.

use callpulse_core::replay::replay;
use callpulse_core::{
    CallEvent, CoreHours, Engine, EngineConfig, EventKind, Ingested, Lateness, Timestamp,
    WindowMetrics, WindowSize,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn event(id: &str, call: &str, kind: EventKind, at: &str) -> CallEvent {
    CallEvent {
        event_id: id.into(),
        call_id: (!kind.is_practice_level()).then(|| call.to_string()),
        vendor: "generic".into(),
        practice: "A81001".into(),
        kind,
        at: Timestamp::parse_rfc3339(at).unwrap(),
        caller: None,
        queue_position: None,
    }
}

fn run(events: &[CallEvent]) -> Vec<WindowMetrics> {
    let mut engine = Engine::new(EngineConfig::replay(CoreHours::shipped()));
    for e in events {
        assert!(!matches!(engine.ingest(e), Ingested::Late(_)));
    }
    let mut windows = engine.finish().windows;
    windows.sort_by_key(|w| w.key());
    windows
}

fn window<'a>(windows: &'a [WindowMetrics], size: WindowSize, start: &str) -> &'a WindowMetrics {
    let start = Timestamp::parse_rfc3339(start).unwrap();
    windows
        .iter()
        .find(|w| w.window == size && w.start == start)
        .unwrap_or_else(|| panic!("no {size} window at {start}"))
}

#[test]
fn an_answered_call_counts_wait_and_talk_in_their_own_windows() {
    let windows = run(&[
        event("e1", "c1", EventKind::Offered, "2026-11-23T08:00:10Z"),
        event("e2", "c1", EventKind::Queued, "2026-11-23T08:00:30Z"),
        event("e3", "c1", EventKind::Answered, "2026-11-23T08:01:30Z"),
        event("e4", "c1", EventKind::Ended, "2026-11-23T08:05:30Z"),
    ]);
    let first = window(&windows, WindowSize::Minute, "2026-11-23T08:00:00Z");
    assert_eq!((first.offered, first.answered, first.wait_count), (1, 0, 0));
    assert_eq!(first.peak_waiting, 1);
    let second = window(&windows, WindowSize::Minute, "2026-11-23T08:01:00Z");
    assert_eq!(
        (
            second.answered,
            second.wait_count,
            second.wait_ms_sum,
            second.wait_ms_max
        ),
        (1, 1, 60_000, 60_000)
    );
    assert_eq!(
        second.wait_hist,
        [0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        "60 s is on the 60 s bound"
    );
    let fifth = window(&windows, WindowSize::Minute, "2026-11-23T08:05:00Z");
    assert_eq!((fifth.talk_count, fifth.talk_ms_sum), (1, 240_000));
    assert_eq!(fifth.talk_hist[4], 1, "240 s falls in the 300 s bucket");
    let hour = window(&windows, WindowSize::Hour, "2026-11-23T08:00:00Z");
    assert_eq!(
        (
            hour.offered,
            hour.answered,
            hour.talk_count,
            hour.peak_waiting
        ),
        (1, 1, 1, 1)
    );
    assert!(windows.iter().all(|w| w.is_final));
    // Minutes with no event in them are not emitted.
    assert!(!windows.iter().any(|w| w.window == WindowSize::Minute
        && w.start == Timestamp::parse_rfc3339("2026-11-23T08:02:00Z").unwrap()));
}

#[test]
fn duplicates_and_conflicts_are_counted_where_they_land() {
    let windows = run(&[
        event("e1", "c1", EventKind::Offered, "2026-11-23T09:00:00Z"),
        event("e2", "c1", EventKind::Abandoned, "2026-11-23T09:00:40Z"),
        event("e2", "c1", EventKind::Abandoned, "2026-11-23T09:00:40Z"),
        event("e3", "c1", EventKind::Missed, "2026-11-23T09:01:10Z"),
    ]);
    let first = window(&windows, WindowSize::Minute, "2026-11-23T09:00:00Z");
    assert_eq!(
        (
            first.abandoned,
            first.abandon_count,
            first.abandon_ms_sum,
            first.dq_duplicates
        ),
        (1, 1, 40_000, 1)
    );
    let second = window(&windows, WindowSize::Minute, "2026-11-23T09:01:00Z");
    assert_eq!((second.missed, second.dq_conflicts), (0, 1));
}

#[test]
fn callback_delay_lands_with_the_first_callback() {
    let windows = run(&[
        event("e1", "c1", EventKind::Offered, "2026-11-23T08:00:00Z"),
        event(
            "e2",
            "c1",
            EventKind::CallbackRequested,
            "2026-11-23T08:02:00Z",
        ),
        event("e4", "c1", EventKind::CallbackMade, "2026-11-23T10:30:00Z"),
        event("e3", "c1", EventKind::CallbackMade, "2026-11-23T10:02:00Z"),
        // A callback made for a call that never asked for one: counted, no delay.
        event("e5", "c2", EventKind::CallbackMade, "2026-11-23T10:05:00Z"),
    ]);
    let hour = window(&windows, WindowSize::Hour, "2026-11-23T10:00:00Z");
    assert_eq!(
        (
            hour.callbacks_made,
            hour.callback_delay_count,
            hour.callback_delay_ms_sum
        ),
        (3, 1, 2 * 3_600_000)
    );
}

#[test]
fn diversions_in_core_hours_stop_at_1830() {
    let windows = run(&[
        event("e1", "c1", EventKind::Diverted111, "2026-11-23T18:29:59Z"),
        event("e2", "c2", EventKind::Diverted111, "2026-11-23T18:30:00Z"),
        event("e3", "c3", EventKind::Diverted111, "2026-12-25T10:00:00Z"),
    ]);
    let day = window(&windows, WindowSize::Day, "2026-11-23T00:00:00Z");
    assert_eq!((day.diverted_111, day.diverted_111_core), (2, 1));
    let christmas = window(&windows, WindowSize::Day, "2026-12-25T00:00:00Z");
    assert_eq!(
        (christmas.diverted_111, christmas.diverted_111_core),
        (1, 0)
    );
}

#[test]
fn day_windows_follow_london_and_the_clock_change() {
    let windows = run(&[
        event("e1", "c1", EventKind::Offered, "2026-10-24T23:30:00Z"),
        event("e2", "c2", EventKind::Offered, "2026-10-25T23:30:00Z"),
    ]);
    let autumn = window(&windows, WindowSize::Day, "2026-10-24T23:00:00Z");
    assert_eq!(
        autumn.end,
        Timestamp::parse_rfc3339("2026-10-26T00:00:00Z").unwrap()
    );
    assert_eq!(autumn.offered, 2);
}

#[test]
fn unique_callers_count_pseudonyms_once() {
    let mut events = Vec::new();
    for (i, caller) in ["p1", "p1", "p2"].iter().enumerate() {
        let mut e = event(
            &format!("e{i}"),
            &format!("c{i}"),
            EventKind::Offered,
            "2026-11-23T08:00:00Z",
        );
        e.caller = Some(caller.to_string());
        events.push(e);
    }
    let windows = run(&events);
    let minute = window(&windows, WindowSize::Minute, "2026-11-23T08:00:00Z");
    assert_eq!((minute.offered, minute.unique_callers), (3, 2));
}

#[test]
fn streaming_reports_late_events_and_emits_revisions() {
    let config = EngineConfig {
        lateness: Lateness::Bounded { allowed_ms: 60_000 },
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config);
    assert_eq!(
        engine.ingest(&event(
            "e1",
            "c1",
            EventKind::Offered,
            "2026-11-23T08:00:00Z"
        )),
        Ingested::Folded
    );
    let early = engine.drain(true);
    assert_eq!(early.windows.len(), 4);
    assert!(early.windows.iter().all(|w| !w.is_final && w.revision == 1));
    engine.ingest(&event(
        "e2",
        "c2",
        EventKind::Offered,
        "2026-11-23T08:00:30Z",
    ));
    let again = engine.drain(true);
    assert!(again
        .windows
        .iter()
        .all(|w| w.revision == 2 && w.offered == 2));
    // Moves the watermark past 08:01 + 1 min of lateness.
    engine.ingest(&event(
        "e3",
        "c3",
        EventKind::Offered,
        "2026-11-23T08:02:00Z",
    ));
    let closed = engine.drain(true);
    assert!(closed
        .windows
        .iter()
        .any(|w| w.is_final && w.window == WindowSize::Minute && w.offered == 2));
    let late = engine.ingest(&event(
        "e4",
        "c4",
        EventKind::Offered,
        "2026-11-23T08:00:59Z",
    ));
    assert!(matches!(late, Ingested::Late(_)), "{late:?}");
    assert_eq!(engine.stats().late, 1);
}

#[test]
fn replay_reports_bad_lines_by_number() {
    let input = "{\"event_id\":\"e1\",\"call_id\":\"c\",\"vendor\":\"generic\",\"practice\":\"A81001\",\"kind\":\"offered\",\"at\":\"2026-11-23T08:00:00Z\"}\nnot json\n\n{\"event_id\":\"e2\",\"call_id\":\"c\",\"vendor\":\"generic\",\"practice\":\"X\",\"kind\":\"offered\",\"at\":\"2026-11-23T08:00:00Z\"}\n";
    let out = replay(input.as_bytes(), EngineConfig::replay(CoreHours::shipped())).unwrap();
    assert_eq!(
        out.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert_eq!(out.windows.len(), 4);
}

/// The engine's final windows and replay's, values only (replay takes
/// its path for inputs across practices, `batch::finish_entangled`).
fn engine_and_replay(events: &[CallEvent]) -> (Vec<WindowMetrics>, Vec<WindowMetrics>) {
    let lines: String = events.iter().map(|e| e.to_json() + "\n").collect();
    let replayed = replay(lines.as_bytes(), EngineConfig::replay(CoreHours::shipped())).unwrap();
    let values = |windows: &[WindowMetrics]| -> Vec<WindowMetrics> {
        windows.iter().map(WindowMetrics::values_only).collect()
    };
    (values(&run(events)), values(&replayed.windows))
}

fn at_practice(mut event: CallEvent, practice: &str) -> CallEvent {
    event.practice = practice.into();
    event
}

#[test]
fn an_event_id_repeated_on_another_call_is_a_duplicate_there() {
    // §1: "A repeat of an event_id is a duplicate"; the earliest copy counts.
    let first = event("e1", "c1", EventKind::Offered, "2026-11-23T10:00:00Z");
    let earlier_copy = event("e1", "c2", EventKind::Offered, "2026-11-23T09:59:55Z");
    for events in [
        vec![first.clone(), earlier_copy.clone()],
        vec![earlier_copy.clone(), first.clone()],
    ] {
        let windows = run(&events);
        let counted = window(&windows, WindowSize::Minute, "2026-11-23T09:59:00Z");
        assert_eq!((counted.offered, counted.dq_duplicates), (1, 0));
        let repeat = window(&windows, WindowSize::Minute, "2026-11-23T10:00:00Z");
        assert_eq!((repeat.offered, repeat.dq_duplicates), (0, 1));
        let day = window(&windows, WindowSize::Day, "2026-11-23T00:00:00Z");
        assert_eq!((day.offered, day.dq_duplicates), (1, 1));
        let (engine, replayed) = engine_and_replay(&events);
        assert_eq!(replayed, engine);
    }
}

#[test]
fn streaming_reports_a_repeat_on_another_call_as_a_duplicate() {
    let mut engine = Engine::new(EngineConfig::default());
    let first = event("e1", "c1", EventKind::Offered, "2026-11-23T10:00:00Z");
    assert_eq!(engine.ingest(&first), Ingested::Folded);
    let repeat = event("e1", "c2", EventKind::Offered, "2026-11-23T10:00:01Z");
    assert_eq!(engine.ingest(&repeat), Ingested::Duplicate);
    assert_eq!(engine.stats().duplicates, 1);
    let mut windows = engine.finish().windows;
    windows.sort_by_key(|w| w.key());
    let minute = window(&windows, WindowSize::Minute, "2026-11-23T10:00:00Z");
    assert_eq!((minute.offered, minute.dq_duplicates), (1, 1));
}

#[test]
fn a_repeat_in_another_practice_counts_there_as_a_duplicate() {
    let events = [
        event("e1", "c1", EventKind::Offered, "2026-11-23T10:00:00Z"),
        event("e2", "c1", EventKind::Answered, "2026-11-23T10:00:30Z"),
        at_practice(
            event("e2", "c1", EventKind::Answered, "2026-11-23T10:00:31Z"),
            "B82005",
        ),
    ];
    let windows = run(&events);
    let home = window(&windows, WindowSize::Minute, "2026-11-23T10:00:00Z");
    assert_eq!(
        (home.practice.as_str(), home.answered, home.wait_count),
        ("A81001", 1, 1)
    );
    let other = windows
        .iter()
        .find(|w| w.practice == "B82005" && w.window == WindowSize::Minute)
        .expect("the repeat's practice has a window");
    assert_eq!((other.answered, other.dq_duplicates), (0, 1));
    let (engine, replayed) = engine_and_replay(&events);
    assert_eq!(replayed, engine);
}

#[test]
fn a_call_whose_events_name_two_practices_is_one_call() {
    // §1: calls are identified by (vendor, call_id); §3: each event counts
    // in the windows of its own practice and `at`.
    let events = [
        event("e1", "c1", EventKind::Offered, "2026-11-23T10:00:00Z"),
        at_practice(
            event("e2", "c1", EventKind::Answered, "2026-11-23T10:02:00Z"),
            "B82005",
        ),
        at_practice(
            event("e3", "c1", EventKind::Ended, "2026-11-23T10:05:00Z"),
            "B82005",
        ),
    ];
    let windows = run(&events);
    let of = |practice: &str, start: &str| {
        let start = Timestamp::parse_rfc3339(start).unwrap();
        windows
            .iter()
            .find(|w| w.practice == practice && w.window == WindowSize::Minute && w.start == start)
            .unwrap_or_else(|| panic!("no {practice} minute at {start}"))
    };
    let offered = of("A81001", "2026-11-23T10:00:00Z");
    assert_eq!(
        (offered.offered, offered.peak_waiting),
        (1, 1),
        "it waited where it was offered"
    );
    let answered = of("B82005", "2026-11-23T10:02:00Z");
    assert_eq!(
        (answered.answered, answered.wait_count, answered.wait_ms_sum),
        (1, 1, 120_000)
    );
    let ended = of("B82005", "2026-11-23T10:05:00Z");
    assert_eq!((ended.talk_count, ended.talk_ms_sum), (1, 180_000));
    let (engine, replayed) = engine_and_replay(&events);
    assert_eq!(replayed, engine);
}

// ---- order independence ----

fn arbitrary_events() -> impl Strategy<Value = Vec<CallEvent>> {
    let kinds = prop::sample::select(vec![
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
    ]);
    let one = (
        0u8..6,
        0u8..8,
        kinds,
        0i64..7_200,
        prop::option::of(0u8..3),
        0u8..2,
    );
    prop::collection::vec(one, 1..60).prop_map(|items| {
        items
            .into_iter()
            .map(|(call, id, kind, secs, caller, practice)| CallEvent {
                // Few ids per call so that duplicates with differing copies occur.
                event_id: format!("e{call}-{id}"),
                call_id: (!kind.is_practice_level()).then(|| format!("c{call}")),
                vendor: "generic".into(),
                practice: format!("A8100{practice}"),
                kind,
                at: Timestamp(1_795_420_800_000 + secs * 1000), // 2026-11-23T07:20:00Z
                caller: caller.map(|c| format!("p{c}")),
                queue_position: None,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn any_order_gives_the_same_final_windows(events in arbitrary_events(), seed in any::<u64>()) {
        let expected: Vec<_> = run(&events).iter().map(WindowMetrics::values_only).collect();
        let mut shuffled = events.clone();
        // Fisher-Yates with a small deterministic generator.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let actual: Vec<_> = run(&shuffled).iter().map(WindowMetrics::values_only).collect();
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn two_halves_interleaved_give_the_same_final_windows(events in arbitrary_events(), split in any::<prop::sample::Index>(), pattern in any::<u64>()) {
        let expected: Vec<_> = run(&events).iter().map(WindowMetrics::values_only).collect();
        let (a, b) = events.split_at(split.index(events.len() + 1));
        let mut merged = Vec::new();
        let (mut i, mut j, mut bits) = (0, 0, pattern);
        while i < a.len() || j < b.len() {
            if j >= b.len() || (i < a.len() && bits & 1 == 0) { merged.push(a[i].clone()); i += 1; } else { merged.push(b[j].clone()); j += 1; }
            bits = bits.rotate_right(1);
        }
        let actual: Vec<_> = run(&merged).iter().map(WindowMetrics::values_only).collect();
        prop_assert_eq!(actual, expected);
    }
}

#[test]
fn streaming_with_long_waits_matches_replay() {
    // A 20-minute wait outlasts the 1-minute lateness: the windows it spans
    // close while the call is still waiting, and must count it as replay does.
    let mut events = vec![
        event("a1", "long", EventKind::Offered, "2026-11-23T08:00:00Z"),
        event("a2", "long", EventKind::Queued, "2026-11-23T08:00:20Z"),
        event("a3", "long", EventKind::Answered, "2026-11-23T08:20:20Z"),
        event("a4", "long", EventKind::Ended, "2026-11-23T08:25:00Z"),
    ];
    for minute in 0..25 {
        let at = format!("2026-11-23T08:{minute:02}:30Z");
        events.push(event(
            &format!("b{minute}"),
            &format!("short{minute}"),
            EventKind::Offered,
            &at,
        ));
        let at = format!("2026-11-23T08:{minute:02}:40Z");
        events.push(event(
            &format!("c{minute}"),
            &format!("short{minute}"),
            EventKind::Abandoned,
            &at,
        ));
    }
    events.sort_by_key(|e| e.at);
    let expected: Vec<_> = run(&events)
        .iter()
        .map(WindowMetrics::values_only)
        .collect();

    let config = EngineConfig {
        lateness: Lateness::Bounded { allowed_ms: 60_000 },
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config);
    let mut finals = Vec::new();
    for e in &events {
        assert!(!matches!(engine.ingest(e), Ingested::Late(_)), "{e:?}");
        finals.extend(
            engine
                .drain(true)
                .windows
                .into_iter()
                .filter(|w| w.is_final),
        );
    }
    finals.extend(engine.finish().windows);
    finals.sort_by_key(|w| w.key());
    let actual: Vec<_> = finals.iter().map(WindowMetrics::values_only).collect();
    assert_eq!(actual, expected);
    let minute_ten = window(&finals, WindowSize::Minute, "2026-11-23T08:10:00Z");
    assert_eq!(
        minute_ten.peak_waiting, 2,
        "the long call and the short one"
    );
}

/// Runs a streaming engine over `events` (positions = indices) from
/// `start`, draining after every `drain_every` events; returns every final
/// window by key and the positions of the events reported late.
fn stream_from(
    mut engine: Engine,
    events: &[CallEvent],
    start: usize,
    stop: usize,
    drain_every: usize,
    finish: bool,
) -> (Engine, BTreeMap<String, WindowMetrics>, Vec<usize>) {
    let mut finals = BTreeMap::new();
    let mut late = Vec::new();
    let keep = |windows: Vec<WindowMetrics>, finals: &mut BTreeMap<String, WindowMetrics>| {
        for w in windows.into_iter().filter(|w| w.is_final) {
            let key = format!("{:?}", w.key());
            if let Some(earlier) = finals.insert(key, w.clone()) {
                assert_eq!(
                    earlier, w,
                    "a window was finalised twice with different content"
                );
            }
        }
    };
    for (position, event) in events.iter().enumerate().take(stop).skip(start) {
        if let Ingested::Late(_) = engine.ingest_at(event, position as u64) {
            late.push(position);
        }
        if position % drain_every == 0 {
            keep(engine.drain(true).windows, &mut finals);
        }
    }
    keep(engine.drain(true).windows, &mut finals);
    if finish {
        keep(engine.finish().windows, &mut finals);
    }
    (engine, finals, late)
}

proptest! {
    /// A crash at any point, then a restart from the engine's restart
    /// point, gives every final window exactly as without the crash,
    /// revisions included (ClickHouse keeps the row with the highest).
    #[test]
    fn resuming_from_the_restart_point_gives_the_same_final_windows(
        events in arbitrary_events(),
        crash in any::<prop::sample::Index>(),
        drain_every in 1usize..7,
    ) {
        let config = EngineConfig {
            lateness: Lateness::Bounded { allowed_ms: 60_000 },
            // The shortest retention that keeps the restart point exact:
            // a call outlives every window it touches (a day is 25 h at most).
            call_retention_ms: 25 * 3_600_000 + 60_000,
            ..EngineConfig::default()
        };
        let (_, expected, expected_late) =
            stream_from(Engine::new(config.clone()), &events, 0, events.len(), drain_every, true);

        let crash = crash.index(events.len() + 1);
        let (before, mut finals, late_before) =
            stream_from(Engine::new(config.clone()), &events, 0, crash, drain_every, false);
        let (resume_at, engine) = match before.restart_point() {
            Some(point) => (point.position as usize, Engine::resume(config.clone(), point)),
            None => (crash, Engine::resume(config.clone(), callpulse_core::RestartPoint {
                position: crash as u64,
                watermark: before.watermark(),
            })),
        };
        prop_assert!(resume_at <= crash);
        let (_, after, late_after) = stream_from(engine, &events, resume_at, events.len(), drain_every, true);
        for (key, window) in after {
            if let Some(earlier) = finals.insert(key.clone(), window.clone()) {
                prop_assert_eq!(earlier, window, "{} differs after the restart", key);
            }
        }
        prop_assert_eq!(finals, expected);
        let mut late: Vec<usize> = late_before.into_iter().filter(|p| *p < resume_at).chain(late_after).collect();
        late.sort_unstable();
        prop_assert_eq!(late, expected_late);
    }
}
