//! Fuzzing the organisations CSV parser (`organisations::parse`): the
//! practice → PCN → ICB → region directory an operator loads from NHS
//! Digital's file or ours.
//!
//! Inputs: arbitrary bytes (not always UTF-8), and the first rows of the
//! shipped file broken the ways real files break (cut short, bytes flipped,
//! inserted or deleted, a line repeated, a field swapped for a hostile
//! value). Properties: never a panic; each row is a practice or an error
//! with its line number in the file, never more of them than rows.

use callpulse_sink::organisations::parse;
use proptest::prelude::*;

#[path = "../../core/tests/support/mutate.rs"]
mod mutate;
use mutate::{mutated, mutation};

/// The first rows of the shipped file: the whole of it is 1.4 MB, too much
/// to parse hundreds of times.
fn shipped_head() -> String {
    include_str!("../../../data/organisations.csv")
        .lines()
        .take(40)
        .map(|line| format!("{line}\n"))
        .collect()
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse(bytes) {
        Ok(parsed) => {
            // Quoted fields may hold line breaks, so rows ≤ lines.
            let lines = bytes.split(|&b| b == b'\n').count() as u64;
            prop_assert!((parsed.practices.len() + parsed.errors.len()) as u64 <= lines);
            for error in &parsed.errors {
                prop_assert!((2..=lines + 1).contains(&error.line), "{}", error);
                prop_assert!(error.to_string().len() > "line 2: ".len());
            }
        }
        Err(err) => prop_assert!(!err.to_string().is_empty()),
    }
    Ok(())
}

#[test]
fn the_shipped_rows_parse_without_errors() {
    let parsed = parse(shipped_head().as_bytes()).unwrap();
    assert_eq!(parsed.practices.len(), 39);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_parse_or_say_why(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check(&bytes)?;
    }

    #[test]
    fn broken_organisation_files_parse_or_say_why(
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        check(mutated(&shipped_head(), &mutations).as_bytes())?;
    }
}
