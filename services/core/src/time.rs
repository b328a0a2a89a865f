//! Event time: milliseconds since the Unix epoch, UTC, parsed from and printed
//! as RFC 3339. London local time is only needed for 1-day windows and core
//! hours, so it is computed on demand from the UTC instant.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in event time, milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

pub const SECOND_MS: i64 = 1_000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The earliest and latest instants an event may carry. Anything outside is
/// an impossible timestamp (a unit mix-up, a zeroed clock), not a call.
pub const EARLIEST: Timestamp = Timestamp(946_684_800_000); // 2000-01-01T00:00:00Z
pub const LATEST: Timestamp = Timestamp(4_102_444_800_000); // 2100-01-01T00:00:00Z

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not an RFC 3339 timestamp (expected e.g. 2026-11-23T08:00:00.000Z)")]
    Malformed(String),
    #[error("`{0}` is outside the accepted range 2000-01-01 to 2100-01-01")]
    OutOfRange(String),
}

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 with any offset; sub-millisecond digits are truncated.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        let ts = match parse_utc_fast(text.as_bytes()) {
            Some(ms) => Timestamp(ms),
            None => DateTime::parse_from_rfc3339(text)
                .map(|dt| Timestamp(dt.timestamp_millis()))
                .map_err(|_| TimeError::Malformed(truncate_for_message(text)))?,
        };
        if ts < EARLIEST || ts >= LATEST {
            return Err(TimeError::OutOfRange(truncate_for_message(text)));
        }
        Ok(ts)
    }

    fn to_utc(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the canonical event form.
    pub fn to_rfc3339_millis(self) -> String {
        match civil_utc(self.0) {
            Some(c) => {
                let mut out = String::with_capacity(24);
                c.write_seconds(&mut out);
                out.push('.');
                push_digits(&mut out, c.millis, 3);
                out.push('Z');
                out
            }
            None => self.to_utc().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the form window bounds print in.
    pub fn to_rfc3339_seconds(self) -> String {
        match civil_utc(self.0) {
            Some(c) => {
                let mut out = String::with_capacity(20);
                c.write_seconds(&mut out);
                out.push('Z');
                out
            }
            None => self.to_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }
    }

    /// The London calendar date this instant falls on.
    pub fn london_date(self) -> NaiveDate {
        self.to_utc().with_timezone(&London).date_naive()
    }

    pub fn floor_to(self, step_ms: i64) -> Timestamp {
        Timestamp(self.0.div_euclid(step_ms) * step_ms)
    }
}

/// A UTC instant's calendar fields, for printing without chrono's format
/// strings (window bounds and call summaries print several per event).
struct Civil {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

impl Civil {
    /// `YYYY-MM-DDTHH:MM:SS`.
    fn write_seconds(&self, out: &mut String) {
        push_digits(out, self.year, 4);
        out.push('-');
        push_digits(out, self.month, 2);
        out.push('-');
        push_digits(out, self.day, 2);
        out.push('T');
        push_digits(out, self.hour, 2);
        out.push(':');
        push_digits(out, self.minute, 2);
        out.push(':');
        push_digits(out, self.second, 2);
    }
}

/// The calendar fields of `ms` (proleptic Gregorian, UTC), for years 0 to
/// 9999; `None` outside them, where chrono's own form (a sign, more
/// digits) is kept. Days to dates by H. Hinnant's `civil_from_days`.
fn civil_utc(ms: i64) -> Option<Civil> {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe.checked_add(era.checked_mul(400)?)? + i64::from(month <= 2);
    if !(0..=9_999).contains(&year) {
        return None;
    }
    debug_assert!((1..=12).contains(&month) && (1..=31).contains(&day));
    Some(Civil {
        year: year as u32,
        month: month as u32,
        day: day as u32,
        hour: (in_day / HOUR_MS) as u32,
        minute: (in_day % HOUR_MS / MINUTE_MS) as u32,
        second: (in_day % MINUTE_MS / SECOND_MS) as u32,
        millis: (in_day % SECOND_MS) as u32,
    })
}

/// `value` as exactly `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    debug_assert!(value < 10u32.pow(width));
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

/// The UTC instant of London local midnight at the start of `date`.
/// Midnight always exists exactly once in London: the clocks change at 01:00 UTC.
pub fn london_midnight(date: NaiveDate) -> Timestamp {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight is a valid time");
    let local = London
        .from_local_datetime(&naive)
        .earliest()
        .expect("London midnight is never skipped");
    Timestamp(local.timestamp_millis())
}

/// Minutes since London local midnight, and the weekday (Monday = 0).
pub fn london_minute_of_day_and_weekday(ts: Timestamp) -> (NaiveDate, u32, u32) {
    use chrono::Timelike;
    let local = ts.to_utc().with_timezone(&London);
    (
        local.date_naive(),
        local.hour() * 60 + local.minute(),
        local.weekday().num_days_from_monday(),
    )
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_millis())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339_millis())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// Serialises an instant as `YYYY-MM-DDTHH:MM:SSZ` (window bounds).
pub mod seconds_format {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&ts.to_rfc3339_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

fn truncate_for_message(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Fast path for the common wire form `YYYY-MM-DDTHH:MM:SS[.fff...]Z`.
/// Returns `None` for anything else, which then goes through chrono.
fn parse_utc_fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || !matches!(*b.last()?, b'Z' | b'z') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let mut value = 0i64;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(c - b'0');
        }
        Some(value)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let millis = match b[19] {
        b'Z' | b'z' if b.len() == 20 => 0,
        b'.' => {
            let frac = &b[20..b.len() - 1];
            if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            frac.iter()
                .chain(std::iter::repeat(&b'0'))
                .take(3)
                .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'))
        }
        _ => return None,
    };
    let days_in_month = match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day < 1 || day > days_in_month {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1_000 + millis)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// What chrono prints, the reference for the hand-written form.
    fn chrono_forms(ms: i64) -> (String, String) {
        let utc = Timestamp(ms).to_utc();
        (
            utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
    }

    proptest! {
        #[test]
        fn instants_print_as_chrono_prints_them(ms in any::<i64>()) {
            let (millis, seconds) = chrono_forms(ms);
            prop_assert_eq!(Timestamp(ms).to_rfc3339_millis(), millis);
            prop_assert_eq!(Timestamp(ms).to_rfc3339_seconds(), seconds);
        }

        #[test]
        fn instants_of_the_accepted_range_print_as_chrono_prints_them(
            ms in EARLIEST.0 - DAY_MS..LATEST.0 + DAY_MS
        ) {
            let (millis, seconds) = chrono_forms(ms);
            prop_assert_eq!(Timestamp(ms).to_rfc3339_millis(), millis);
            prop_assert_eq!(Timestamp(ms).to_rfc3339_seconds(), seconds);
        }
    }

    #[test]
    fn calendar_edges_print_as_chrono_prints_them() {
        let edges = [
            0,
            -1,
            -62_167_219_200_000,   // 0000-01-01
            -62_167_219_200_001,   // just before year 0
            253_402_300_799_999,   // 9999-12-31T23:59:59.999
            253_402_300_800_000,   // 10000-01-01
            951_782_400_000,       // 2000-02-29
            4_107_542_400_000,     // 2100-03-01 (2100 is not a leap year)
            1_795_478_400_000 - 1, // a millisecond before a midnight
            i64::MIN,
            i64::MAX,
        ];
        for ms in edges {
            let (millis, seconds) = chrono_forms(ms);
            assert_eq!(Timestamp(ms).to_rfc3339_millis(), millis, "{ms}");
            assert_eq!(Timestamp(ms).to_rfc3339_seconds(), seconds, "{ms}");
        }
        assert_eq!(
            Timestamp(1_795_478_400_123).to_rfc3339_millis(),
            "2026-11-24T00:00:00.123Z"
        );
    }

    use super::*;

    #[test]
    fn fast_path_agrees_with_chrono() {
        for text in [
            "2026-11-23T08:00:00Z",
            "2026-11-23T08:00:00.1Z",
            "2026-11-23T08:00:00.123Z",
            "2026-11-23T08:00:00.123456Z",
            "2024-02-29T23:59:59.999Z",
            "2000-01-01T00:00:00Z",
        ] {
            let chrono_ms = DateTime::parse_from_rfc3339(text)
                .unwrap()
                .timestamp_millis();
            assert_eq!(parse_utc_fast(text.as_bytes()), Some(chrono_ms), "{text}");
        }
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let a = Timestamp::parse_rfc3339("2026-07-01T09:00:00+01:00").unwrap();
        let b = Timestamp::parse_rfc3339("2026-07-01T08:00:00Z").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_malformed_and_impossible() {
        for text in [
            "",
            "yesterday",
            "2026-02-30T08:00:00Z",
            "2026-11-23 08:00:00",
            "2026-11-23T25:00:00Z",
        ] {
            assert!(
                matches!(Timestamp::parse_rfc3339(text), Err(TimeError::Malformed(_))),
                "{text}"
            );
        }
        assert!(matches!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z"),
            Err(TimeError::OutOfRange(_))
        ));
        assert!(matches!(
            Timestamp::parse_rfc3339("2100-01-01T00:00:00Z"),
            Err(TimeError::OutOfRange(_))
        ));
    }

    #[test]
    fn prints_both_forms() {
        let ts = Timestamp::parse_rfc3339("2026-11-23T08:00:05.007Z").unwrap();
        assert_eq!(ts.to_rfc3339_millis(), "2026-11-23T08:00:05.007Z");
        assert_eq!(ts.to_rfc3339_seconds(), "2026-11-23T08:00:05Z");
    }

    #[test]
    fn london_midnight_in_summer_and_winter() {
        let summer = london_midnight(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
        assert_eq!(summer.to_rfc3339_seconds(), "2026-06-30T23:00:00Z");
        let winter = london_midnight(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(winter.to_rfc3339_seconds(), "2026-12-01T00:00:00Z");
    }
}
