//! Fuzzing the configuration loader (`Config::load_from`): the TOML file an
//! operator writes, and the `CALLPULSE__SECTION__KEY` environment overrides
//! a deployment sets, both with random and hostile values.
//!
//! The file is the built-in defaults with secrets filled in, broken the ways
//! real files break (cut short, bytes flipped, inserted or deleted, a line
//! repeated, a value swapped for a hostile one), or arbitrary text. The
//! overrides name real settings, real sections, or nothing that exists.
//! Properties: never a panic; a bad override is an error naming the
//! variable; and no error quotes a secret of the file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use callpulse_runtime::config::{Config, ConfigError};
use proptest::prelude::*;

#[path = "../../core/tests/support/mutate.rs"]
mod mutate;
use mutate::{hostile_value, mutated, mutation};

const DEFAULTS: &str = include_str!("../src/default.toml");
const PASSWORD: &str = "clickhouse-password-0123456789";
const HMAC_SECRET: &str = "hmac-secret-abcdefghijklmnop";

/// A file as an operator writes it: the defaults with its secrets set.
fn config_file() -> String {
    DEFAULTS
        .replace("password = \"\"", &format!("password = \"{PASSWORD}\""))
        .replace(
            "hmac_secret = \"\"",
            &format!("hmac_secret = \"{HMAC_SECRET}\""),
        )
}

/// Every `section.key` of the defaults: overrides of real settings.
fn settings() -> Vec<(String, String)> {
    let tree: toml::Table = DEFAULTS.parse().unwrap();
    tree.iter()
        .filter_map(|(section, keys)| Some((section, keys.as_table()?)))
        .flat_map(|(section, keys)| keys.keys().map(move |key| (section.clone(), key.clone())))
        .collect()
}

/// A file of its own for each case: the tests of a binary run in parallel.
fn write_temp(text: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "callpulse-fuzz-config-{}-{}.toml",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// An environment variable's name: a real setting, a section, or neither,
/// in any case (names are matched without regard to case).
fn variable() -> impl Strategy<Value = String> {
    let settings = settings();
    prop_oneof![
        4 => prop::sample::select(settings).prop_map(|(section, key)| {
            format!("CALLPULSE__{}__{}", section.to_uppercase(), key.to_uppercase())
        }),
        1 => Just("CALLPULSE__KAFKA".to_string()),
        1 => Just("CALLPULSE__".to_string()),
        1 => Just("CALLPULSE____".to_string()),
        1 => "[A-Za-z_]{0,20}".prop_map(|rest| format!("CALLPULSE__{rest}")),
        1 => "\\PC{0,20}",
    ]
}

fn override_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("true".to_string()),
        Just("99999999999999999999".to_string()),
        hostile_value(),
    ]
}

#[test]
fn the_file_with_secrets_loads() {
    let path = write_temp(&config_file());
    let config = Config::load_from(Some(&path), []);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(config.unwrap().clickhouse.password, PASSWORD);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn config_files_load_or_say_why_without_quoting_a_secret(
        text in prop_oneof![
            1 => "\\PC{0,200}",
            4 => prop::collection::vec(mutation(), 1..4).prop_map(|m| mutated(&config_file(), &m)),
        ],
    ) {
        let path = write_temp(&text);
        let result = Config::load_from(Some(&path), []);
        std::fs::remove_file(&path).unwrap();
        if let Err(err) = result {
            let message = err.to_string();
            prop_assert!(message.contains(&path.display().to_string()) || message.starts_with("configuration: "), "{}", message);
            prop_assert!(!message.contains(PASSWORD) && !message.contains(HMAC_SECRET), "a secret in: {}", message);
        }
    }

    #[test]
    fn overrides_apply_or_name_the_variable(
        overrides in prop::collection::vec((variable(), override_value()), 0..6),
    ) {
        match Config::load_from(None, overrides.clone()) {
            Ok(_) => {}
            Err(ConfigError::Env { name, reason }) => {
                prop_assert!(overrides.iter().any(|(variable, _)| *variable == name));
                prop_assert!(!reason.is_empty());
            }
            Err(err) => prop_assert!(err.to_string().starts_with("configuration: "), "{}", err),
        }
    }
}
