//! Alert rule 1 (111 diversions in core hours, metrics.md §5) through
//! `replay`, as `callpulse replay --alerts` writes it, and its agreement with
//! the `diverted_111_core` metric.

use callpulse_core::replay::replay;
use callpulse_core::{AlertState, CoreHours, EngineConfig, Resolution, WindowSize};

fn line(id: &str, call: Option<&str>, kind: &str, at: &str) -> String {
    let call = call
        .map(|c| format!(r#""call_id":"{c}","#))
        .unwrap_or_default();
    format!(
        r#"{{"event_id":"{id}",{call}"vendor":"generic","practice":"A81001","kind":"{kind}","at":"{at}"}}"#
    )
}

#[test]
fn a_morning_diversion_through_replay() {
    // Monday 23 November 2026 (GMT): switched on at 07:30, before core
    // hours; three calls diverted, one of them before 08:00; off at 10:40.
    let input = [
        line("s1", None, "divert_111_on", "2026-11-23T07:30:00Z"),
        line("e1", Some("c1"), "offered", "2026-11-23T07:45:00Z"),
        line("e2", Some("c1"), "diverted_111", "2026-11-23T07:45:05Z"),
        line("e3", Some("c2"), "offered", "2026-11-23T08:12:00Z"),
        line("e4", Some("c2"), "diverted_111", "2026-11-23T08:12:05Z"),
        line("e4", Some("c2"), "diverted_111", "2026-11-23T08:12:05Z"), // duplicate
        line("e5", Some("c3"), "offered", "2026-11-23T09:30:00Z"),
        line("e6", Some("c3"), "diverted_111", "2026-11-23T09:30:04Z"),
        line("s2", None, "divert_111_off", "2026-11-23T10:40:00Z"),
        line("e7", Some("c4"), "offered", "2026-11-23T11:00:00Z"),
        line("e8", Some("c4"), "answered", "2026-11-23T11:00:30Z"),
    ]
    .join("\n");
    // Shuffled lines give the same alerts.
    let mut reversed: Vec<&str> = input.lines().collect();
    reversed.reverse();
    let reversed = reversed.join("\n");

    let config = || EngineConfig::replay(CoreHours::shipped());
    let out = replay(input.as_bytes(), config()).unwrap();
    let again = replay(reversed.as_bytes(), config()).unwrap();
    assert_eq!(out.alerts, again.alerts);

    let states: Vec<(u64, AlertState, u64)> = out
        .alerts
        .iter()
        .map(|a| (a.revision, a.state, a.diverted_calls.unwrap_or(0)))
        .collect();
    assert_eq!(
        states,
        vec![
            (1, AlertState::Firing, 0),
            (2, AlertState::Firing, 1),
            (3, AlertState::Firing, 2),
            (4, AlertState::Resolved, 2),
        ]
    );
    let done = out.alerts.last().unwrap();
    assert_eq!(done.id, "div111:A81001:2026-11-23T08:00:00.000Z");
    assert_eq!(done.resolution, Some(Resolution::DivertOff));
    assert_eq!(done.duration_ms, Some((2 * 60 + 40) * 60_000));
    assert_eq!(
        done.summary,
        "Resolved: A81001 diverted 2 calls to NHS 111 in core hours, 08:00 to 10:40 on Mon 23 Nov (2 h 40 min; switched on at 07:30); switched back"
    );

    // The alert's count is the day's diverted_111_core.
    let day = out
        .windows
        .iter()
        .find(|w| w.window == WindowSize::Day)
        .unwrap();
    assert_eq!((day.diverted_111, day.diverted_111_core), (3, 2));

    // One JSON line per state, as the CLI writes them.
    let first = serde_json::to_value(&out.alerts[0]).unwrap();
    assert_eq!(first["state"], "firing");
    assert_eq!(first["opened_by"], "core_hours_started");
    assert_eq!(first["switched_on_at"], "2026-11-23T07:30:00.000Z");
    assert_eq!(
        first["summary"],
        "A81001 has diverted its phones to NHS 111 in core hours since 08:00 on Mon 23 Nov (switched on at 07:30); no calls diverted yet"
    );
}

#[test]
fn no_alert_out_of_core_hours() {
    // Saturday 28 November 2026, and a weekday evening.
    let input = [
        line("s1", None, "divert_111_on", "2026-11-28T09:00:00Z"),
        line("e1", Some("c1"), "diverted_111", "2026-11-28T09:10:00Z"),
        line("s2", None, "divert_111_off", "2026-11-28T12:00:00Z"),
        line("e2", Some("c2"), "diverted_111", "2026-11-30T19:00:00Z"),
    ]
    .join("\n");
    let out = replay(input.as_bytes(), EngineConfig::replay(CoreHours::shipped())).unwrap();
    assert!(out.alerts.is_empty(), "{:#?}", out.alerts);
}

/// `callpulse replay --alerts` also judges the thresholds (rule 2) with
/// their default settings: many abandoned calls in core hours fire one.
#[test]
fn replay_reports_threshold_alerts_too() {
    use callpulse_core::alert::AlertKind;
    let mut lines = String::new();
    // Monday 23 November 2026, 09:00-09:30 London: 60 calls, 40 abandoned.
    for i in 0..60 {
        let minute = i / 2;
        let offered = format!("2026-11-23T09:{minute:02}:00Z");
        let outcome_at = format!("2026-11-23T09:{minute:02}:40Z");
        let kind = if i % 3 == 0 { "answered" } else { "abandoned" };
        lines.push_str(&format!(
            "{{\"event_id\":\"o{i}\",\"call_id\":\"c{i}\",\"vendor\":\"generic\",\"practice\":\"A81001\",\"kind\":\"offered\",\"at\":\"{offered}\"}}\n\
             {{\"event_id\":\"x{i}\",\"call_id\":\"c{i}\",\"vendor\":\"generic\",\"practice\":\"A81001\",\"kind\":\"{kind}\",\"at\":\"{outcome_at}\"}}\n"
        ));
    }
    let output = callpulse_core::replay::replay(
        lines.as_bytes(),
        callpulse_core::EngineConfig::replay(callpulse_core::CoreHours::shipped()),
    )
    .unwrap();
    assert!(output.rejected.is_empty(), "{:?}", output.rejected);
    let fired: Vec<_> = output
        .alerts
        .iter()
        .filter(|a| a.kind == AlertKind::AbandonedRate)
        .collect();
    assert!(!fired.is_empty(), "{:?}", output.alerts);
    assert!(fired[0].summary.contains("A81001"), "{}", fired[0].summary);
}
