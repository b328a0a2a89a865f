//! `callpulse replay`: the engine over a file of canonical events (JSON
//! lines). The whole input is in hand, so nothing is late and every window
//! is final at the end. The alert rules ([`crate::alert`]) see the same
//! events, so `--alerts` agrees with the metrics.

use std::io::BufRead;

use crate::alert::{Alert, AlertTracker};
use crate::engine::{Engine, EngineConfig, Ingested};
use crate::event::CallEvent;
use crate::record::{CallSummary, LateEvent, WindowMetrics};

/// A line that was not a valid canonical event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ReplayOutput {
    /// Final windows, sorted by practice, window size and start.
    pub windows: Vec<WindowMetrics>,
    /// Final call summaries, sorted by practice, vendor and call id.
    pub calls: Vec<CallSummary>,
    pub late: Vec<LateEvent>,
    /// Every state change of every alert, as of the latest event time in
    /// the input, ordered by `updated_at`, id and revision.
    pub alerts: Vec<Alert>,
    pub rejected: Vec<Rejected>,
    pub events: u64,
    pub duplicates: u64,
}

/// Replays JSON lines from `input` through one engine.
pub fn replay(input: impl BufRead, config: EngineConfig) -> std::io::Result<ReplayOutput> {
    let mut alerts = AlertTracker::new(config.core_hours.clone());
    // Rules 2 and 3 (thresholds, feed silence) with their default settings.
    let rules = std::sync::Arc::new(crate::thresholds::AlertRules::default());
    let icbs = std::sync::Arc::new(crate::thresholds::PracticeIcbs::default());
    let mut silence = crate::feed_silence::FeedSilence::new(
        rules.clone(),
        icbs.clone(),
        config.core_hours.clone(),
    );
    let core_hours = config.core_hours.clone();
    let mut engine = Engine::new(config);
    let mut output = ReplayOutput::default();
    // One line buffer and one event, reused for every line: no allocation
    // per line once their buffers have grown.
    let mut input = input;
    let mut line = Vec::new();
    let mut event = CallEvent {
        event_id: String::new(),
        call_id: None,
        vendor: String::new(),
        practice: String::new(),
        kind: crate::event::EventKind::Offered,
        at: crate::time::Timestamp::default(),
        caller: None,
        queue_position: None,
    };
    let mut number = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        number += 1;
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text.trim(),
            Err(_) => {
                output.rejected.push(Rejected {
                    line: number,
                    reason: "not UTF-8".into(),
                });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match event.read_json(text) {
            Ok(()) => {
                output.events += 1;
                silence.observe(&event);
                match engine.ingest(&event) {
                    Ingested::Folded => alerts.observe(&event),
                    Ingested::Duplicate => {
                        output.duplicates += 1;
                        alerts.observe(&event);
                    }
                    Ingested::Late(late) => output.late.push(*late),
                }
            }
            Err(err) => output.rejected.push(Rejected {
                line: number,
                reason: err.to_string(),
            }),
        }
    }
    let emitted = engine.finish();
    output.windows = emitted.windows;
    output.calls = emitted.calls;
    output.alerts = alerts.alerts();
    if let Some(horizon) = alerts.horizon() {
        let mut minutes: Vec<WindowMetrics> = output
            .windows
            .iter()
            .filter(|w| w.window == crate::window::WindowSize::Minute)
            .cloned()
            .collect();
        minutes.sort_by_key(|w| w.start);
        output.alerts.extend(crate::thresholds::threshold_alerts(
            &minutes,
            rules,
            icbs,
            &core_hours,
            horizon,
        ));
        silence.advance_to(horizon);
        output.alerts.extend(silence.drain());
        output.alerts.sort_by(|a, b| {
            (a.updated_at, &a.id, a.revision).cmp(&(b.updated_at, &b.id, b.revision))
        });
    }
    // Borrowed keys: `WindowMetrics::key` clones the practice code on every
    // comparison. Keys are unique (one window per practice, size and start;
    // one call per practice, vendor and call id), so an unstable sort gives
    // the same order as a stable one.
    output.windows.sort_unstable_by(|a, b| {
        (&a.practice, a.window, a.start).cmp(&(&b.practice, b.window, b.start))
    });
    output.calls.sort_unstable_by(|a, b| {
        (&a.practice, &a.vendor, &a.call_id).cmp(&(&b.practice, &b.vendor, &b.call_id))
    });
    Ok(output)
}
