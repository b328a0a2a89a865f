//! Masks phone numbers in what we keep about a rejected record.
//!
//! A rejected record goes to the dead-letter topic and the rejects file so
//! an operator can see what was wrong, but a caller's number must not go
//! with it. The record may be too broken to know which field holds the
//! number, so every run of seven or more digits (with the spaces, dashes,
//! brackets and `+` that numbers are written with) is masked. ISO dates
//! (`2026-11-23`) and times are kept: they are what an operator needs.

pub const MASK: &str = "<redacted>";

pub fn redact_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !(bytes[i].is_ascii_digit() || (bytes[i] == b'+' && next_is_digit(bytes, i))) {
            i += 1;
            continue;
        }
        let (end, digits) = number_run(bytes, i);
        if digits >= 7 && !is_date_like(&text[i..end]) {
            out.push_str(&text[copied..i]);
            out.push_str(MASK);
            copied = end;
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

fn next_is_digit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
}

/// The end of a phone-number-like run from `start` and its digit count.
/// Separators count only between digits, so a run never swallows a trailing space.
fn number_run(bytes: &[u8], start: usize) -> (usize, usize) {
    let mut end = start;
    let mut digits = 0;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'0'..=b'9' => {
                digits += 1;
                i += 1;
                end = i;
            }
            b'+' if i == start => i += 1,
            b' ' | b'-' | b'(' | b')' | b'.' => {
                // Only a single separator (or `) (`) between digit groups.
                let mut j = i;
                while j < bytes.len()
                    && matches!(bytes[j], b' ' | b'-' | b'(' | b')' | b'.')
                    && j - i < 3
                {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    i = j;
                } else {
                    break;
                }
            }
            _ => break,
        }
    }
    (end, digits)
}

/// `2026-11-23`, `2026-11-23 08:15:00`, `23/11/2026`: dates are not numbers.
fn is_date_like(run: &str) -> bool {
    let groups: Vec<&str> = run
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    match groups.as_slice() {
        [y, m, d, ..] if y.len() == 4 && m.len() == 2 && d.len() == 2 => run.contains('-'),
        [d, m, y, ..] if y.len() == 4 && m.len() == 2 && d.len() == 2 => run.contains('/'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_numbers_in_every_spelling() {
        for number in [
            "07700900123",
            "07700 900123",
            "+44 7700 900123",
            "+44 (0)7700 900 123",
            "0161-496-0000",
            "+447700900123",
        ] {
            let text = format!(r#"{{"From":"{number}","CallStatus":"completed"}}"#);
            let redacted = redact_numbers(&text);
            assert!(
                !redacted.contains("7700") && !redacted.contains("496-0000"),
                "{redacted}"
            );
            assert!(redacted.contains(MASK), "{redacted}");
            assert!(redacted.contains("CallStatus"), "{redacted}");
        }
    }

    #[test]
    fn keeps_dates_times_and_short_numbers() {
        let text = r#"{"at":"2026-11-23T08:15:00.000Z","QueueTime":"125","position":3}"#;
        assert_eq!(redact_numbers(text), text);
        let csv = r#""","07700900123","111","from-pstn","2026-11-23 08:15:00""#;
        assert_eq!(
            redact_numbers(csv),
            r#""","<redacted>","111","from-pstn","2026-11-23 08:15:00""#
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_never_keeps_a_long_digit_run(text in "\\PC{0,80}", number in "[1-9][0-9]{9,11}") {
            let input = format!("{text} {number} {text}");
            let out = redact_numbers(&input);
            prop_assert!(!out.contains(&number));
        }
    }
}
