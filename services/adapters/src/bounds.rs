//! Plausible event times: an event far from the time its record arrived is
//! a clock, time-zone or unit error at the sender, refused at the door
//! rather than counted in a window of another day (or year).
//!
//! Only live deliveries (HTTP) are checked: files are imported after the
//! fact, when old times are expected.

use callpulse_core::{CallEvent, Timestamp};

use crate::AdaptError;

/// How far before and after its arrival an event's `at` may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// Older than this is refused (a sender replaying a backlog should
    /// import files instead). 0: no bound.
    pub max_age_ms: i64,
    /// Further ahead than this is refused: clocks drift a little, never
    /// by hours. 0: no bound.
    pub max_lead_ms: i64,
}

impl TimeBounds {
    /// Checks every event of one record, which is refused whole.
    pub fn check(&self, events: &[CallEvent], received_at: Timestamp) -> Result<(), AdaptError> {
        for event in events {
            let ahead_ms = event.at.0.saturating_sub(received_at.0);
            if self.max_lead_ms > 0 && ahead_ms > self.max_lead_ms {
                return Err(AdaptError::ImplausibleTime {
                    at: event.at.to_rfc3339_millis(),
                    reason: format!(
                        "{} after the record arrived ({}); more than {} ahead is a clock or time-zone error (adapters.max_event_lead_ms)",
                        describe(ahead_ms),
                        received_at.to_rfc3339_millis(),
                        describe(self.max_lead_ms)
                    ),
                });
            }
            if self.max_age_ms > 0 && -ahead_ms > self.max_age_ms {
                return Err(AdaptError::ImplausibleTime {
                    at: event.at.to_rfc3339_millis(),
                    reason: format!(
                        "{} before the record arrived ({}); older than {} is refused over HTTP: import a backlog as files (adapters.max_event_age_ms)",
                        describe(-ahead_ms),
                        received_at.to_rfc3339_millis(),
                        describe(self.max_age_ms)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A duration in the largest whole unit that fits.
fn describe(ms: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (86_400_000, "day"),
        (3_600_000, "hour"),
        (60_000, "minute"),
        (1_000, "second"),
    ];
    for (size, name) in UNITS {
        if ms >= size {
            let count = ms / size;
            return format!("{count} {name}{}", if count == 1 { "" } else { "s" });
        }
    }
    format!("{ms} ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use callpulse_core::EventKind;

    fn event_at(at: &str) -> CallEvent {
        CallEvent {
            event_id: "e1".into(),
            call_id: Some("c1".into()),
            vendor: "generic".into(),
            practice: "A81001".into(),
            kind: EventKind::Offered,
            at: Timestamp::parse_rfc3339(at).unwrap(),
            caller: None,
            queue_position: None,
        }
    }

    const BOUNDS: TimeBounds = TimeBounds {
        max_age_ms: 7 * 86_400_000,
        max_lead_ms: 5 * 60_000,
    };

    #[test]
    fn times_near_arrival_pass_and_far_ones_are_refused_with_the_reason() {
        let arrived = Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap();
        for fine in [
            "2026-11-23T08:05:00Z",
            "2026-11-23T07:59:00Z",
            "2026-11-16T08:00:00Z",
        ] {
            assert!(BOUNDS.check(&[event_at(fine)], arrived).is_ok(), "{fine}");
        }
        let ahead = BOUNDS
            .check(&[event_at("2026-11-23T09:00:00.001Z")], arrived)
            .unwrap_err();
        assert_eq!(ahead.code(), "implausible_time");
        assert_eq!(ahead.field_name(), Some("at"));
        assert!(
            ahead
                .to_string()
                .contains("1 hour after the record arrived"),
            "{ahead}"
        );
        let old = BOUNDS
            .check(
                &[
                    event_at("2026-11-23T08:00:00Z"),
                    event_at("2025-11-23T08:00:00Z"),
                ],
                arrived,
            )
            .unwrap_err();
        assert!(old.to_string().contains("365 days before"), "{old}");
    }

    #[test]
    fn zero_means_no_bound() {
        let open = TimeBounds {
            max_age_ms: 0,
            max_lead_ms: 0,
        };
        let arrived = Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap();
        for far in ["2001-01-01T00:00:00Z", "2099-01-01T00:00:00Z"] {
            assert!(open.check(&[event_at(far)], arrived).is_ok());
        }
    }
}
