//! The timestamp spellings vendors use, read into canonical UTC times.
//! Every parser names the vendor field it read, so errors point at it.

use callpulse_core::Timestamp;
use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::AdaptError;

/// ISO 8601 / RFC 3339 with an offset or `Z`, any fractional precision
/// (Amazon Connect, Microsoft Graph: `2026-11-23T08:15:02.1234567Z`).
pub fn iso8601(field: &'static str, text: &str) -> Result<Timestamp, AdaptError> {
    let parsed = DateTime::parse_from_rfc3339(text.trim()).map_err(|err| {
        AdaptError::field(field, format!("not an ISO 8601 time with offset: {err}"))
    })?;
    checked(field, parsed.timestamp_millis())
}

/// RFC 2822 (`Mon, 23 Nov 2026 08:15:02 +0000`), as Twilio writes `Timestamp`.
pub fn rfc2822(field: &'static str, text: &str) -> Result<Timestamp, AdaptError> {
    let parsed = DateTime::parse_from_rfc2822(text.trim())
        .map_err(|err| AdaptError::field(field, format!("not an RFC 2822 time: {err}")))?;
    checked(field, parsed.timestamp_millis())
}

/// A local wall-clock time without offset (`2026-11-23 08:15:02`, as Asterisk
/// CDRs write), in the PBX's time zone. A time that the clocks skip is an
/// error; one they repeat takes the earlier instant.
pub fn local(field: &'static str, text: &str, zone: Tz) -> Result<Timestamp, AdaptError> {
    let naive =
        NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f").map_err(|err| {
            AdaptError::field(field, format!("not a `YYYY-MM-DD HH:MM:SS` time: {err}"))
        })?;
    let resolved = zone.from_local_datetime(&naive).earliest().ok_or_else(|| {
        AdaptError::field(
            field,
            format!("{naive} does not exist in {zone} (the clocks went forward)"),
        )
    })?;
    checked(field, resolved.timestamp_millis())
}

/// Seconds since the Unix epoch, possibly fractional (`1763885702.123`).
pub fn epoch_seconds(field: &'static str, text: &str) -> Result<Timestamp, AdaptError> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| AdaptError::field(field, "not a number of seconds since 1970"))?;
    if !seconds.is_finite() {
        return Err(AdaptError::field(field, "not a finite number"));
    }
    checked(field, (seconds * 1000.0).round() as i64)
}

/// Milliseconds since the Unix epoch (Amazon Connect contact events use both).
pub fn epoch_millis(field: &'static str, millis: i64) -> Result<Timestamp, AdaptError> {
    checked(field, millis)
}

fn checked(field: &'static str, millis: i64) -> Result<Timestamp, AdaptError> {
    let at = Timestamp::from_millis(millis);
    if at < callpulse_core::time::EARLIEST || at >= callpulse_core::time::LATEST {
        return Err(AdaptError::field(field, "outside 2000-01-01 to 2100-01-01"));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_spelling() {
        let expected = Timestamp::parse_rfc3339("2026-11-23T08:15:02Z").unwrap();
        assert_eq!(
            iso8601("t", "2026-11-23T08:15:02.0000000Z").unwrap(),
            expected
        );
        assert_eq!(iso8601("t", "2026-11-23T08:15:02+00:00").unwrap(), expected);
        assert_eq!(
            rfc2822("t", "Mon, 23 Nov 2026 08:15:02 +0000").unwrap(),
            expected
        );
        assert_eq!(
            local("t", "2026-11-23 08:15:02", chrono_tz::Europe::London).unwrap(),
            expected
        );
        assert_eq!(epoch_seconds("t", "1795421702").unwrap(), expected);
        // British Summer Time: local 09:15 is 08:15 UTC.
        assert_eq!(
            local("t", "2026-06-01 09:15:02", chrono_tz::Europe::London).unwrap(),
            Timestamp::parse_rfc3339("2026-06-01T08:15:02Z").unwrap()
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            iso8601("Queue.EnqueueTimestamp", "yesterday")
                .unwrap_err()
                .field_name(),
            Some("Queue.EnqueueTimestamp")
        );
        assert!(local("start", "2026-03-29 01:30:00", chrono_tz::Europe::London).is_err());
        assert!(epoch_seconds("time", "NaN").is_err());
        assert!(iso8601("t", "1970-01-01T00:00:00Z").is_err());
    }
}
