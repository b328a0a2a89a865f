//! Fuzzing the core's parsers of files an operator or a sender supplies:
//! canonical event lines (one at a time and whole replay files), the
//! bank-holiday calendar, the alert rules (TOML) and the practice → ICB
//! columns of the organisations CSV.
//!
//! Inputs are arbitrary text and the shipped files broken the ways real
//! files break: cut short, bytes flipped, inserted or deleted, a line
//! repeated, a value swapped for a hostile one. The property is the same
//! for all: an answer (a value or an error that says what is wrong), never
//! a panic. The scanner-versus-serde agreement of canonical lines is tested
//! in `src/event.rs`.

use callpulse_core::replay::{replay_with, ReplayOptions};
use callpulse_core::{AlertRules, CallEvent, CoreHours, PracticeIcbs, Timestamp};
use proptest::prelude::*;

const VALID_LINE: &str = r#"{"event_id":"e1","call_id":"c1","vendor":"generic","practice":"A81001","kind":"queued","at":"2026-11-23T08:00:00.250Z","caller":"p:0123456789abcdef","queue_position":3}"#;

const CALENDAR: &str = include_str!("../../../data/bank-holidays-england-and-wales.json");
const RULES: &str = include_str!("../../../deploy/alerts/thresholds.example.toml");

/// The first rows of the shipped organisations file: the whole of it is
/// 1.4 MB, too much to parse hundreds of times.
fn organisations_head() -> String {
    include_str!("../../../data/organisations.csv")
        .lines()
        .take(40)
        .map(|line| format!("{line}\n"))
        .collect()
}

/// A way a real file gets broken; positions are fractions of the text.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(f64),
    FlipBit(f64, u8),
    Insert(f64, String),
    Delete(f64, usize),
    RepeatLine(f64),
    /// The value after the n-th `:` or `=` (a JSON member, a TOML key).
    ReplaceValue(f64, String),
}

/// Values that break parsers: wrong types, extreme numbers and dates,
/// long and odd strings, deep nesting.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("1e999".to_string()),
        Just("nan".to_string()),
        Just("\"\"".to_string()),
        Just("\"+262143-12-31\"".to_string()),
        Just("\"-262144-01-01\"".to_string()),
        Just("\"2026-02-30\"".to_string()),
        Just("\"9999-12-31T23:59:59.999Z\"".to_string()),
        Just("\"0000-01-01T00:00:00Z\"".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        (1usize..200).prop_map(|depth| format!("{}1{}", "[".repeat(depth), "]".repeat(depth))),
        (1usize..20_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        "\\PC{0,20}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        at.clone().prop_map(Mutation::Truncate),
        (at.clone(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (at.clone(), "\\PC{1,8}|\n|\"|\\[|\\{|,|=|\u{feff}")
            .prop_map(|(at, text)| Mutation::Insert(at, text)),
        (at.clone(), 1usize..64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        at.clone().prop_map(Mutation::RepeatLine),
        (at, hostile_value()).prop_map(|(at, value)| Mutation::ReplaceValue(at, value)),
    ]
}

fn index(fraction: f64, len: usize) -> usize {
    ((fraction * len as f64) as usize).min(len.saturating_sub(1))
}

/// Applies `mutation` to the bytes of `text`; broken UTF-8 is made whole
/// again with replacement characters, as a reader of text would.
fn apply(mutation: &Mutation, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    match mutation {
        Mutation::Truncate(at) => bytes.truncate(index(*at, bytes.len() + 1)),
        Mutation::FlipBit(at, bit) if !bytes.is_empty() => {
            let i = index(*at, bytes.len());
            bytes[i] ^= 1 << bit;
        }
        Mutation::Insert(at, inserted) => {
            let i = index(*at, bytes.len() + 1);
            bytes.splice(i..i, inserted.bytes());
        }
        Mutation::Delete(at, len) if !bytes.is_empty() => {
            let i = index(*at, bytes.len());
            bytes.drain(i..(i + len).min(bytes.len()));
        }
        Mutation::RepeatLine(at) => {
            let lines: Vec<&str> = text.split('\n').collect();
            let i = index(*at, lines.len());
            let mut out = lines.clone();
            out.insert(i, lines[i]);
            return out.join("\n");
        }
        Mutation::ReplaceValue(at, value) => {
            let separators: Vec<usize> = text.match_indices([':', '=']).map(|(i, _)| i).collect();
            if separators.is_empty() {
                return text.to_string();
            }
            let start = separators[index(*at, separators.len())] + 1;
            let end = text[start..]
                .find([',', '\n', '}'])
                .map_or(text.len(), |n| start + n);
            return format!("{}{value}{}", &text[..start], &text[end..]);
        }
        Mutation::FlipBit(..) | Mutation::Delete(..) => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mutated(text: &str, mutations: &[Mutation]) -> String {
    mutations
        .iter()
        .fold(text.to_string(), |text, mutation| apply(mutation, &text))
}

/// Reading into a reused event must give what a fresh parse gives.
fn check_event_line(line: &str) -> Result<(), TestCaseError> {
    let fresh = CallEvent::from_json(line);
    let mut reused = CallEvent::from_json(VALID_LINE).unwrap();
    let read = reused.read_json(line);
    match (&fresh, read) {
        (Ok(event), Ok(())) => {
            prop_assert_eq!(event, &reused);
            prop_assert!(event.validate().is_ok());
            let again = CallEvent::from_json(&event.to_json());
            prop_assert_eq!(again.as_ref(), Ok(event));
        }
        (Err(fresh), Err(read)) => {
            prop_assert_eq!(fresh, &read);
            prop_assert!(!fresh.to_string().is_empty());
        }
        (fresh, read) => prop_assert!(false, "from_json {:?}, read_json {:?}", fresh, read),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_as_an_event_line_is_an_event_or_an_error(text in "\\PC{0,300}") {
        check_event_line(&text)?;
    }

    #[test]
    fn mutated_event_lines_are_an_event_or_an_error(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        check_event_line(&mutated(VALID_LINE, &mutations))?;
    }

    /// A replay file of valid and broken lines: every line is counted at
    /// most once, as an event (maybe a duplicate) or a rejection with its
    /// line number.
    #[test]
    fn replay_files_of_broken_lines_never_panic(
        lines in prop::collection::vec(prop::collection::vec(mutation(), 0..3), 1..30),
        alerts in any::<bool>(),
    ) {
        let file: String = lines
            .iter()
            .map(|mutations| format!("{}\n", mutated(VALID_LINE, mutations).replace('\n', " ")))
            .collect();
        let output = replay_with(
            file.as_bytes(),
            ReplayOptions { core_hours: CoreHours::shipped(), call_summaries: true, alerts },
        )
        .unwrap();
        let count = lines.len() as u64;
        prop_assert!(output.events + output.rejected.len() as u64 <= count);
        prop_assert!(output.duplicates <= output.events);
        for rejected in &output.rejected {
            prop_assert!((1..=count).contains(&rejected.line), "{:?}", rejected);
            prop_assert!(!rejected.reason.is_empty());
        }
    }

    /// A calendar that parses can be asked about any day it covers.
    #[test]
    fn calendars_parse_or_say_why(
        text in prop_oneof![
            1 => "\\PC{0,200}",
            4 => prop::collection::vec(mutation(), 1..4).prop_map(|m| mutated(CALENDAR, &m)),
        ],
    ) {
        match CoreHours::from_gov_json(&text) {
            Ok(hours) => {
                let (first, last) = hours.covered_range();
                prop_assert!(first <= last);
                for date in [first, last] {
                    prop_assert!(hours.is_bank_holiday(date));
                    if let Some(noon) = date.and_hms_opt(12, 0, 0) {
                        let at = Timestamp(noon.and_utc().timestamp_millis());
                        if Timestamp::parse_rfc3339(&at.to_rfc3339_millis()).is_ok() {
                            let _ = hours.is_core(at);
                            let day = hours.core_day_of(at);
                            prop_assert!(day.contains(at));
                        }
                    }
                }
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn alert_rules_parse_or_say_why(
        text in prop_oneof![
            1 => "\\PC{0,200}",
            4 => prop::collection::vec(mutation(), 1..4).prop_map(|m| mutated(RULES, &m)),
        ],
    ) {
        if let Err(err) = AlertRules::from_toml(&text) {
            prop_assert!(err.to_string().len() > "alert rules: ".len(), "{}", err);
        }
    }

    #[test]
    fn practice_icbs_parse_or_say_why(
        text in prop_oneof![
            1 => "\\PC{0,200}",
            4 => prop::collection::vec(mutation(), 1..4).prop_map(|m| mutated(&organisations_head(), &m)),
        ],
    ) {
        match PracticeIcbs::from_csv(&text) {
            Ok(icbs) => prop_assert!(icbs.len() <= text.lines().count()),
            Err(err) => prop_assert!(err.to_string().len() > "organisations CSV: ".len(), "{}", err),
        }
    }
}
