//! GP core hours: 08:00 to 18:30 London local time, Monday to Friday, except
//! bank holidays in England and Wales (metrics.md §5). The bank holidays come
//! from a file in the UK government's bank-holidays JSON shape, so operators
//! can replace it without a rebuild; a copy is compiled in as the default.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::time::{london_midnight, london_minute_of_day_and_weekday, Timestamp};

/// The calendar shipped with callpulse (`data/bank-holidays-england-and-wales.json`).
pub const SHIPPED_BANK_HOLIDAYS: &str =
    include_str!("../../../data/bank-holidays-england-and-wales.json");

const CORE_START_MINUTE: u32 = 8 * 60;
const CORE_END_MINUTE: u32 = 18 * 60 + 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreHours {
    bank_holidays: BTreeSet<NaiveDate>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("bank holiday file is not the UK government's bank-holidays JSON: {0}")]
    Format(String),
    #[error("bank holiday file has no `england-and-wales` events")]
    Empty,
}

#[derive(Deserialize)]
struct GovFile {
    #[serde(rename = "england-and-wales")]
    england_and_wales: Division,
}

#[derive(Deserialize)]
struct Division {
    events: Vec<GovEvent>,
}

#[derive(Deserialize)]
struct GovEvent {
    date: NaiveDate,
}

impl CoreHours {
    /// Parses the UK government's bank-holidays JSON (`england-and-wales.events[].date`).
    pub fn from_gov_json(json: &str) -> Result<CoreHours, CalendarError> {
        let file: GovFile =
            serde_json::from_str(json).map_err(|err| CalendarError::Format(err.to_string()))?;
        let bank_holidays: BTreeSet<NaiveDate> = file
            .england_and_wales
            .events
            .into_iter()
            .map(|event| event.date)
            .collect();
        if bank_holidays.is_empty() {
            return Err(CalendarError::Empty);
        }
        Ok(CoreHours { bank_holidays })
    }

    /// The calendar compiled into the binary.
    pub fn shipped() -> CoreHours {
        CoreHours::from_gov_json(SHIPPED_BANK_HOLIDAYS).expect("the shipped calendar parses")
    }

    pub fn is_bank_holiday(&self, date: NaiveDate) -> bool {
        self.bank_holidays.contains(&date)
    }

    /// The first and last dates the calendar knows: outside them, bank holidays
    /// are unknown and only weekends are excluded.
    pub fn covered_range(&self) -> (NaiveDate, NaiveDate) {
        let first = *self.bank_holidays.first().expect("calendar is never empty");
        let last = *self.bank_holidays.last().expect("calendar is never empty");
        (first, last)
    }

    /// True when `ts` is within GP core hours: [08:00, 18:30) London time on a
    /// weekday that is not a bank holiday.
    pub fn is_core(&self, ts: Timestamp) -> bool {
        let (date, minute, weekday) = london_minute_of_day_and_weekday(ts);
        weekday < 5
            && (CORE_START_MINUTE..CORE_END_MINUTE).contains(&minute)
            && !self.is_bank_holiday(date)
    }

    /// The instant core hours end on the London day of `ts` (18:30 local).
    pub fn core_end_on_day_of(&self, ts: Timestamp) -> Timestamp {
        london_instant(ts.london_date(), CORE_END_MINUTE)
    }

    /// The London day of `ts` and its core hours as UTC instants, so that
    /// many instants of one day can be checked without the time-zone rules.
    pub fn core_day_of(&self, ts: Timestamp) -> CoreDay {
        let (date, _, weekday) = london_minute_of_day_and_weekday(ts);
        let next = date.succ_opt().expect("dates before 2100 have a successor");
        let core = (weekday < 5 && !self.is_bank_holiday(date)).then(|| {
            (
                london_instant(date, CORE_START_MINUTE),
                london_instant(date, CORE_END_MINUTE),
            )
        });
        CoreDay {
            start: london_midnight(date),
            end: london_midnight(next),
            core,
        }
    }
}

/// The UTC instant of a London local time of day. Core hours' bounds are
/// never skipped or repeated: the clocks change at 01:00 UTC.
fn london_instant(date: NaiveDate, minute_of_day: u32) -> Timestamp {
    use chrono::TimeZone;
    let local = date
        .and_hms_opt(minute_of_day / 60, minute_of_day % 60, 0)
        .expect("a valid time of day");
    let instant = chrono_tz::Europe::London
        .from_local_datetime(&local)
        .earliest()
        .expect("core hours' bounds are never skipped in London");
    Timestamp(instant.timestamp_millis())
}

/// One London day, [`start`, `end`), and its core hours, if it has any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreDay {
    pub start: Timestamp,
    pub end: Timestamp,
    pub core: Option<(Timestamp, Timestamp)>,
}

impl CoreDay {
    pub fn contains(&self, ts: Timestamp) -> bool {
        self.start <= ts && ts < self.end
    }

    /// [`CoreHours::is_core`] for an instant of this day.
    pub fn is_core(&self, ts: Timestamp) -> bool {
        debug_assert!(self.contains(ts));
        self.core
            .is_some_and(|(start, end)| start <= ts && ts < end)
    }
}

/// Remembers the last London day's core hours: the outcomes a stream
/// brings are mostly on one day, so the time-zone rules run once a day
/// rather than once per call derivation.
#[derive(Debug, Clone, Default)]
pub struct CoreDayCache {
    last: Option<CoreDay>,
}

impl CoreDayCache {
    /// The same answer as `hours.is_core(ts)`; `hours` must be the same
    /// calendar on every call.
    pub fn is_core(&mut self, hours: &CoreHours, ts: Timestamp) -> bool {
        match self.last {
            Some(day) if day.contains(ts) => day.is_core(ts),
            _ => {
                let day = hours.core_day_of(ts);
                self.last = Some(day);
                day.is_core(ts)
            }
        }
    }
}

impl Default for CoreHours {
    fn default() -> Self {
        CoreHours::shipped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn shipped_calendar_covers_2024_to_2028() {
        let hours = CoreHours::shipped();
        let (first, last) = hours.covered_range();
        assert!(first <= NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        assert!(last >= NaiveDate::from_ymd_opt(2028, 12, 26).unwrap());
        // Christmas Day 2026 is a Friday; Boxing Day's substitute is Monday 28th.
        assert!(hours.is_bank_holiday(NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()));
        assert!(hours.is_bank_holiday(NaiveDate::from_ymd_opt(2026, 12, 28).unwrap()));
    }

    #[test]
    fn boundaries_of_the_core_day_in_winter() {
        let hours = CoreHours::shipped();
        // Monday 23 November 2026, GMT.
        assert!(!hours.is_core(at("2026-11-23T07:59:59.999Z")));
        assert!(hours.is_core(at("2026-11-23T08:00:00Z")));
        assert!(hours.is_core(at("2026-11-23T18:29:59.999Z")));
        assert!(!hours.is_core(at("2026-11-23T18:30:00Z")));
    }

    #[test]
    fn boundaries_follow_london_time_in_summer() {
        let hours = CoreHours::shipped();
        // Wednesday 1 July 2026, BST: 08:00 local is 07:00 UTC.
        assert!(hours.is_core(at("2026-07-01T07:00:00Z")));
        assert!(!hours.is_core(at("2026-07-01T06:59:59Z")));
        assert!(hours.is_core(at("2026-07-01T17:29:59Z")));
        assert!(!hours.is_core(at("2026-07-01T17:30:00Z")));
    }

    #[test]
    fn weekends_and_bank_holidays_are_not_core() {
        let hours = CoreHours::shipped();
        assert!(!hours.is_core(at("2026-11-21T10:00:00Z"))); // Saturday
        assert!(!hours.is_core(at("2026-11-22T10:00:00Z"))); // Sunday
        assert!(!hours.is_core(at("2026-12-25T10:00:00Z"))); // Christmas Day
        assert!(!hours.is_core(at("2026-04-03T10:00:00Z"))); // Good Friday 2026
        assert!(hours.is_core(at("2026-12-24T10:00:00Z")));
    }

    #[test]
    fn an_operator_file_replaces_the_shipped_one() {
        let file = r#"{"england-and-wales":{"division":"england-and-wales","events":[{"title":"Extra","date":"2026-11-23","notes":"","bunting":true}]}}"#;
        let hours = CoreHours::from_gov_json(file).unwrap();
        assert!(!hours.is_core(at("2026-11-23T10:00:00Z")));
        assert!(
            hours.is_core(at("2026-12-25T10:00:00Z")),
            "only the file's days count"
        );
        assert!(CoreHours::from_gov_json("{}").is_err());
    }

    #[test]
    fn the_day_cache_agrees_with_the_rules() {
        let hours = CoreHours::shipped();
        let mut cache = CoreDayCache::default();
        // Across both clock changes of 2026, a bank holiday and weekends,
        // in steps that land on 08:00 and 18:30 exactly.
        for (from, to) in [
            ("2026-03-26T00:00:00Z", "2026-04-08T00:00:00Z"),
            ("2026-10-22T00:00:00Z", "2026-10-29T00:00:00Z"),
        ] {
            let (mut ts, to) = (at(from), at(to));
            while ts < to {
                assert_eq!(cache.is_core(&hours, ts), hours.is_core(ts), "{ts}");
                let before = Timestamp(ts.0 - 1);
                assert_eq!(
                    cache.is_core(&hours, before),
                    hours.is_core(before),
                    "{before}"
                );
                ts = Timestamp(ts.0 + 30 * 60_000);
            }
        }
    }

    #[test]
    fn core_end_is_1830_local() {
        let hours = CoreHours::shipped();
        assert_eq!(
            hours.core_end_on_day_of(at("2026-07-01T09:00:00Z")),
            at("2026-07-01T17:30:00Z")
        );
        assert_eq!(
            hours.core_end_on_day_of(at("2026-11-23T09:00:00Z")),
            at("2026-11-23T18:30:00Z")
        );
    }
}
