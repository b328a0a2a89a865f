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

#[path = "support/mutate.rs"]
mod mutate;
use mutate::{mutated, mutation};

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
