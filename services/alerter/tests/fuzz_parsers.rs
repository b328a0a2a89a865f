//! Fuzzing the alerter's contacts file parser (`Contacts::parse`): who is
//! told about which alert. The file is written by hand by an operator, so
//! it gets every mistake; a mistake must stop the alerter with a message
//! that names it, never a panic.
//!
//! Inputs: arbitrary text, and the example file broken the ways real files
//! break (cut short, bytes flipped, inserted or deleted, a line repeated,
//! a value swapped for a hostile one). Teams and Slack webhook URLs carry
//! their own token (`REPLACE-ME` in the example): no error may quote one,
//! since start-up errors go to logs that more people read than the file.

use callpulse_alerter::contacts::Contacts;
use proptest::prelude::*;

#[path = "../../core/tests/support/mutate.rs"]
mod mutate;
use mutate::{mutated, mutation};

const EXAMPLE: &str = include_str!("../../../deploy/alerts/contacts.example.toml");

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn contacts_files_parse_or_say_why(
        text in prop_oneof![
            1 => "\\PC{0,200}",
            4 => prop::collection::vec(mutation(), 1..4).prop_map(|m| mutated(EXAMPLE, &m)),
        ],
    ) {
        if let Err(err) = Contacts::parse(&text) {
            let message = err.to_string();
            prop_assert!(message.len() > "contacts file: ".len(), "{}", message);
            prop_assert!(!message.contains("REPLACE-ME"), "a webhook token in: {}", message);
        }
    }
}
