//! Fuzzing the dashboard's login tokens: the tokens file (TOML, read with
//! `Tokens::add_file`) and the `SCOPE=TOKEN,...` pairs of
//! `CALLPULSE__DASHBOARD__TOKENS` (`Tokens::add_pairs`).
//!
//! Inputs: arbitrary text, and a valid file or list broken the ways real
//! ones break (cut short, bytes flipped, inserted or deleted, a line
//! repeated, a value swapped for a hostile one). Properties: never a panic;
//! an error names the file; and, as these are secrets, no error quotes a
//! token: start-up errors go to logs that more people read.
//!
//! Also the parts of a request's URL the API parses (`Node::parse` of a
//! level and a code, `parse_day`), which anyone who can reach the port sends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use callpulse_dashboard::api::parse_day;
use callpulse_dashboard::node::Node;
use callpulse_dashboard::Tokens;
use proptest::prelude::*;

#[path = "../../core/tests/support/mutate.rs"]
mod mutate;
use mutate::{mutated, mutation};

const SECRETS: [&str; 3] = [
    "england-secret-0123456789abcdef",
    "qhm-secret-fedcba9876543210",
    "qoq-secret-aaaabbbbccccdddd",
];

fn tokens_file() -> String {
    format!(
        "[[token]]\nname = \"nhse\"\ntoken = \"{}\"\nscope = \"england\"\n\n\
         [[token]]\nname = \"qhm-primary-care\"\ntoken = \"{}\"\nscope = \"QHM\"\n\n\
         [[token]]\nname = \"qoq\"\ntoken = \"{}\"\nscope = \"qoq\"\n",
        SECRETS[0], SECRETS[1], SECRETS[2]
    )
}

/// A file of its own for each case: the tests of a binary run in parallel.
fn write_temp(text: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "callpulse-fuzz-tokens-{}-{}.toml",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn check_no_secret(message: &str) -> Result<(), TestCaseError> {
    for secret in SECRETS {
        prop_assert!(!message.contains(secret), "a token in: {}", message);
    }
    Ok(())
}

#[test]
fn the_valid_file_and_pairs_load() {
    let path = write_temp(&tokens_file());
    let mut tokens = Tokens::new();
    tokens.add_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(tokens.len(), 3);
    let mut tokens = Tokens::new();
    tokens
        .add_pairs(&format!("england={},QHM={}", SECRETS[0], SECRETS[1]))
        .unwrap();
    assert_eq!(tokens.len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tokens_files_load_or_say_why_without_quoting_a_token(
        text in prop_oneof![
            1 => "\\PC{0,200}",
            4 => prop::collection::vec(mutation(), 1..4).prop_map(|m| mutated(&tokens_file(), &m)),
        ],
    ) {
        let path = write_temp(&text);
        let result = Tokens::new().add_file(&path);
        std::fs::remove_file(&path).unwrap();
        if let Err(err) = result {
            let message = err.to_string();
            prop_assert!(message.contains(&path.display().to_string()), "{}", message);
            check_no_secret(&message)?;
        }
    }

    #[test]
    fn token_pairs_load_or_say_why_without_quoting_a_token(
        text in prop_oneof![
            1 => "\\PC{0,200}",
            4 => prop::collection::vec(mutation(), 1..4).prop_map(|m| {
                mutated(&format!("england={},QHM={}, qoq = {}", SECRETS[0], SECRETS[1], SECRETS[2]), &m)
            }),
        ],
    ) {
        if let Err(err) = Tokens::new().add_pairs(&text) {
            let message = err.to_string();
            prop_assert!(message.len() > "login tokens: ".len(), "{}", message);
            check_no_secret(&message)?;
        }
    }

    #[test]
    fn url_parts_parse_or_are_a_bad_request(
        level in prop_oneof![
            prop::sample::select(vec!["england", "region", "icb", "pcn", "practice"]).prop_map(str::to_string),
            "\\PC{0,12}",
        ],
        code in prop_oneof!["[A-Za-z0-9]{0,7}", "\\PC{0,12}"],
        day in prop_oneof!["[0-9]{4}-[0-9]{2}-[0-9]{2}", "[+-]?[0-9]{1,7}-[0-9]{1,3}-[0-9]{1,3}", "\\PC{0,12}"],
    ) {
        if let Ok(node) = Node::parse(&level, &code) {
            prop_assert_eq!(node.code, code.to_ascii_uppercase());
        }
        match parse_day(&day) {
            Ok(canonical) => prop_assert_eq!(parse_day(&canonical).ok(), Some(canonical)),
            Err(err) => prop_assert!(err.to_string().contains("is not a date")),
        }
    }
}
