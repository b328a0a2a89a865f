//! Tumbling windows (metrics.md §3): 1m, 15m and 1h align to UTC; 1d runs from
//! London local midnight to the next, so it lasts 23 or 25 hours when the
//! clocks change.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::{london_midnight, Timestamp, HOUR_MS, MINUTE_MS};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum WindowSize {
    #[serde(rename = "1m")]
    #[default]
    Minute,
    #[serde(rename = "15m")]
    FifteenMinutes,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl WindowSize {
    pub const ALL: [WindowSize; 4] = [
        WindowSize::Minute,
        WindowSize::FifteenMinutes,
        WindowSize::Hour,
        WindowSize::Day,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WindowSize::Minute => "1m",
            WindowSize::FifteenMinutes => "15m",
            WindowSize::Hour => "1h",
            WindowSize::Day => "1d",
        }
    }

    pub fn parse(text: &str) -> Option<WindowSize> {
        WindowSize::ALL
            .into_iter()
            .find(|size| size.as_str() == text)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The window of this size that contains `ts`, as [start, end).
    pub fn bounds(self, ts: Timestamp) -> (Timestamp, Timestamp) {
        let fixed = |step: i64| {
            let start = ts.floor_to(step);
            (start, Timestamp(start.0 + step))
        };
        match self {
            WindowSize::Minute => fixed(MINUTE_MS),
            WindowSize::FifteenMinutes => fixed(15 * MINUTE_MS),
            WindowSize::Hour => fixed(HOUR_MS),
            WindowSize::Day => london_day_bounds(ts),
        }
    }

    /// The end of the window that starts at `start`.
    pub fn end_of(self, start: Timestamp) -> Timestamp {
        match self {
            WindowSize::Minute => Timestamp(start.0 + MINUTE_MS),
            WindowSize::FifteenMinutes => Timestamp(start.0 + 15 * MINUTE_MS),
            WindowSize::Hour => Timestamp(start.0 + HOUR_MS),
            WindowSize::Day => london_day_bounds(start).1,
        }
    }
}

impl fmt::Display for WindowSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// London local midnight to the next London local midnight around `ts`.
fn london_day_bounds(ts: Timestamp) -> (Timestamp, Timestamp) {
    // London is UTC or UTC+1, so its day starts at 00:00 or 23:00 UTC: try the
    // UTC day first, and the one after it when `ts` is past 23:00 UTC in summer.
    let date = ts.london_date();
    let start = london_midnight(date);
    let end = london_midnight(date.succ_opt().expect("dates before 2100 have a successor"));
    debug_assert!(start <= ts && ts < end, "{ts} not in its London day");
    debug_assert!(matches!(
        end.0 - start.0,
        82_800_000 | 86_400_000 | 90_000_000
    ));
    (start, end)
}

/// Remembers the last London day looked up: events arrive roughly in time
/// order, so nearly every lookup hits and the time-zone rules are skipped.
#[derive(Debug, Default, Clone)]
pub struct DayCache {
    last: Option<(Timestamp, Timestamp)>,
}

impl DayCache {
    pub fn bounds(&mut self, size: WindowSize, ts: Timestamp) -> (Timestamp, Timestamp) {
        if size != WindowSize::Day {
            return size.bounds(ts);
        }
        match self.last {
            Some((start, end)) if start <= ts && ts < end => (start, end),
            _ => {
                let bounds = london_day_bounds(ts);
                self.last = Some(bounds);
                bounds
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn show(bounds: (Timestamp, Timestamp)) -> (String, String) {
        (bounds.0.to_rfc3339_seconds(), bounds.1.to_rfc3339_seconds())
    }

    #[test]
    fn utc_aligned_windows() {
        let ts = at("2026-11-23T08:07:59.999Z");
        assert_eq!(
            show(WindowSize::Minute.bounds(ts)),
            ("2026-11-23T08:07:00Z".into(), "2026-11-23T08:08:00Z".into())
        );
        assert_eq!(
            show(WindowSize::FifteenMinutes.bounds(ts)),
            ("2026-11-23T08:00:00Z".into(), "2026-11-23T08:15:00Z".into())
        );
        assert_eq!(
            show(WindowSize::Hour.bounds(ts)),
            ("2026-11-23T08:00:00Z".into(), "2026-11-23T09:00:00Z".into())
        );
    }

    #[test]
    fn a_start_instant_belongs_to_its_own_window() {
        let ts = at("2026-11-23T08:15:00Z");
        assert_eq!(WindowSize::FifteenMinutes.bounds(ts).0, ts);
    }

    #[test]
    fn london_days_in_winter_and_summer() {
        assert_eq!(
            show(WindowSize::Day.bounds(at("2026-11-23T23:59:59Z"))),
            ("2026-11-23T00:00:00Z".into(), "2026-11-24T00:00:00Z".into())
        );
        // 23:30 UTC on 1 July is 00:30 on 2 July in London.
        assert_eq!(
            show(WindowSize::Day.bounds(at("2026-07-01T23:30:00Z"))),
            ("2026-07-01T23:00:00Z".into(), "2026-07-02T23:00:00Z".into())
        );
    }

    #[test]
    fn clock_change_days_last_23_and_25_hours() {
        // 2026: clocks go forward on 29 March, back on 25 October.
        let spring = WindowSize::Day.bounds(at("2026-03-29T12:00:00Z"));
        assert_eq!(
            show(spring),
            ("2026-03-29T00:00:00Z".into(), "2026-03-29T23:00:00Z".into())
        );
        assert_eq!(spring.1 .0 - spring.0 .0, 23 * HOUR_MS);
        let autumn = WindowSize::Day.bounds(at("2026-10-25T12:00:00Z"));
        assert_eq!(
            show(autumn),
            ("2026-10-24T23:00:00Z".into(), "2026-10-26T00:00:00Z".into())
        );
        assert_eq!(autumn.1 .0 - autumn.0 .0, 25 * HOUR_MS);
    }

    #[test]
    fn day_cache_agrees_with_the_rules() {
        let mut cache = DayCache::default();
        let mut ts = at("2026-03-27T00:00:00Z");
        while ts < at("2026-04-01T00:00:00Z") {
            assert_eq!(
                cache.bounds(WindowSize::Day, ts),
                WindowSize::Day.bounds(ts)
            );
            ts = Timestamp(ts.0 + 17 * MINUTE_MS);
        }
    }
}
