//! The records the core emits: window metrics (metrics.md §4, exact field
//! names), call summaries and late events.

use serde::{Deserialize, Serialize};

use crate::event::{CallEvent, EventKind};
use crate::time::{seconds_format, Timestamp};
use crate::window::WindowSize;

/// Upper bounds of the duration histogram buckets, in seconds; the tenth
/// bucket is everything above an hour. A value equal to a bound falls in
/// that bound's bucket.
pub const HISTOGRAM_BOUNDS_SECONDS: [u64; 9] = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600];
pub const HISTOGRAM_BUCKETS: usize = 10;

pub type Histogram = [u64; HISTOGRAM_BUCKETS];

/// The bucket a duration falls in.
pub fn histogram_bucket(duration_ms: u64) -> usize {
    HISTOGRAM_BOUNDS_SECONDS
        .iter()
        .position(|&bound| duration_ms <= bound * 1_000)
        .unwrap_or(HISTOGRAM_BUCKETS - 1)
}

/// One window of one practice, as emitted (metrics.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WindowMetrics {
    pub practice: String,
    pub window: WindowSize,
    #[serde(with = "seconds_format")]
    pub start: Timestamp,
    #[serde(with = "seconds_format")]
    pub end: Timestamp,
    pub revision: u64,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub offered: u64,
    pub answered: u64,
    pub callback_requested: u64,
    pub abandoned: u64,
    pub missed: u64,
    pub ivr_ended: u64,
    pub diverted_111: u64,
    pub diverted_111_core: u64,
    pub callbacks_made: u64,
    pub unique_callers: u64,
    pub peak_waiting: u64,
    pub wait_count: u64,
    pub wait_ms_sum: u64,
    pub wait_ms_max: u64,
    pub wait_hist: Histogram,
    pub abandon_count: u64,
    pub abandon_ms_sum: u64,
    pub abandon_ms_max: u64,
    pub abandon_hist: Histogram,
    pub talk_count: u64,
    pub talk_ms_sum: u64,
    pub talk_ms_max: u64,
    pub talk_hist: Histogram,
    pub callback_delay_count: u64,
    pub callback_delay_ms_sum: u64,
    pub dq_duplicates: u64,
    pub dq_conflicts: u64,
}

impl WindowMetrics {
    /// The identity of a window: who, which size, when.
    pub fn key(&self) -> (String, WindowSize, Timestamp) {
        (self.practice.clone(), self.window, self.start)
    }

    /// The same record without its emission bookkeeping, for comparing
    /// results computed along different paths.
    pub fn values_only(&self) -> WindowMetrics {
        WindowMetrics {
            revision: 0,
            is_final: false,
            ..self.clone()
        }
    }
}

/// Everything known about one call, one line per call (`callpulse replay --calls`,
/// `callpulse.calls.v1`). No phone number: `caller` is the pseudonym.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    pub practice: String,
    pub vendor: String,
    pub call_id: String,
    pub revision: u64,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub caller: Option<String>,
    pub offered_at: Option<Timestamp>,
    pub wait_start_at: Option<Timestamp>,
    pub outcome: Option<EventKind>,
    pub outcome_at: Option<Timestamp>,
    pub outcome_in_core_hours: bool,
    /// Time to answer (answered calls).
    pub wait_ms: Option<u64>,
    /// Time waited before hanging up (abandoned calls).
    pub abandon_ms: Option<u64>,
    /// `ended.at - answered.at` (answered calls).
    pub talk_ms: Option<u64>,
    pub ended_at: Option<Timestamp>,
    pub callback_requested_at: Option<Timestamp>,
    pub first_callback_made_at: Option<Timestamp>,
    pub callbacks_made: u64,
    /// First callback made minus the request (callback requested calls).
    pub callback_delay_ms: Option<u64>,
    /// Outcome events beyond the one that counts.
    pub conflicting_outcomes: u64,
    pub events: u64,
}

/// An event that arrived for a window already final: reported, never folded in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateEvent {
    pub event: CallEvent,
    /// The watermark when it arrived.
    pub watermark: Timestamp,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_equal_to_a_bound_falls_in_that_bucket() {
        assert_eq!(histogram_bucket(0), 0);
        assert_eq!(histogram_bucket(10_000), 0);
        assert_eq!(histogram_bucket(10_001), 1);
        assert_eq!(histogram_bucket(30_000), 1);
        assert_eq!(histogram_bucket(3_600_000), 8);
        assert_eq!(histogram_bucket(3_600_001), 9);
        assert_eq!(histogram_bucket(u64::MAX), 9);
    }

    #[test]
    fn record_field_names_are_the_contract() {
        let record = WindowMetrics {
            practice: "A81001".into(),
            window: WindowSize::FifteenMinutes,
            start: Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap(),
            end: Timestamp::parse_rfc3339("2026-11-23T08:15:00Z").unwrap(),
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::to_value(&record).unwrap();
        let names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected = "practice window start end revision final offered answered callback_requested abandoned missed ivr_ended diverted_111 diverted_111_core callbacks_made unique_callers peak_waiting wait_count wait_ms_sum wait_ms_max wait_hist abandon_count abandon_ms_sum abandon_ms_max abandon_hist talk_count talk_ms_sum talk_ms_max talk_hist callback_delay_count callback_delay_ms_sum dq_duplicates dq_conflicts";
        let mut expected: Vec<&str> = expected.split(' ').collect();
        let mut names_sorted = names.clone();
        names_sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(names_sorted, expected);
        assert_eq!(json["window"], "15m");
        assert_eq!(json["start"], "2026-11-23T08:00:00Z");
        assert_eq!(json["wait_hist"].as_array().unwrap().len(), 10);
        let back: WindowMetrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }
}
