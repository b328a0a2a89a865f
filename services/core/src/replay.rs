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
    let mut engine = Engine::new(config);
    let mut output = ReplayOutput::default();
    for (index, line) in input.split(b'\n').enumerate() {
        let line = line?;
        let number = index as u64 + 1;
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
        match CallEvent::from_json(text) {
            Ok(event) => {
                output.events += 1;
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
    output.windows.sort_by_key(WindowMetrics::key);
    output.calls.sort_by(|a, b| {
        (&a.practice, &a.vendor, &a.call_id).cmp(&(&b.practice, &b.vendor, &b.call_id))
    });
    Ok(output)
}
