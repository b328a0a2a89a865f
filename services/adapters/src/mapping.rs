//! Which practice a vendor record belongs to.
//!
//! Suppliers do not send ODS codes: they send the number that was dialled,
//! a queue, an account. The operator keeps a table from those identifiers
//! to practice codes, per vendor, in one TOML file:
//!
//! ```toml
//! # Time zone of vendor times written without an offset (Asterisk CDRs).
//! local_time_zone = "Europe/London"
//!
//! [divert_111]
//! # A transfer or forward to one of these destinations is a 111 diversion.
//! numbers = ["111", "+44111"]
//!
//! [asterisk]
//! # queue_log EXITWITHKEY keys that book a callback.
//! callback_keys = ["1"]
//!
//! [vendors.twilio]
//! "+441632960001" = "A81001"      # the practice's number (To)
//!
//! [vendors.amazon-connect]
//! "GP-A81002-Reception" = "A81002" # queue name, queue ARN or dialled number
//! ```
//!
//! A record whose identifier is not in the table is rejected with an
//! [`AdaptError::UnmappedPractice`]: a guess would put calls on the wrong
//! practice's figures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use callpulse_core::event::is_practice_code;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::pseudonym::normalise_e164;
use crate::AdaptError;

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("reading the practice mapping {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the practice mapping's local_time_zone `{0}` is not an IANA time zone (e.g. Europe/London)")]
    TimeZone(String),
    #[error("the practice mapping is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("the practice mapping maps {vendor} `{identifier}` to `{practice}`, which is not an ODS practice code (e.g. A81001)")]
    NotAPractice {
        vendor: String,
        identifier: String,
        practice: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    local_time_zone: Option<String>,
    #[serde(default)]
    divert_111: Divert111,
    #[serde(default)]
    vendors: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    asterisk: AsteriskSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AsteriskSettings {
    /// queue_log EXITWITHKEY keys that book a callback.
    #[serde(default)]
    callback_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Divert111 {
    #[serde(default = "default_111_numbers")]
    numbers: Vec<String>,
}

impl Default for Divert111 {
    fn default() -> Self {
        Divert111 {
            numbers: default_111_numbers(),
        }
    }
}

fn default_111_numbers() -> Vec<String> {
    vec!["111".into(), "+44111".into()]
}

#[derive(Debug, Clone)]
pub struct PracticeMapping {
    /// vendor → identifier → practice code. Phone-number identifiers are
    /// stored in E.164 so any spelling of the number matches.
    by_vendor: HashMap<String, HashMap<String, String>>,
    divert_111: HashSet<String>,
    /// Practices that exist (from the organisations file), when known.
    directory: Option<HashSet<String>>,
    local_time_zone: Option<Tz>,
    asterisk_callback_keys: Vec<String>,
}

/// No vendor identifiers, the default 111 numbers, London time.
impl Default for PracticeMapping {
    fn default() -> Self {
        PracticeMapping::from_toml("").expect("the empty mapping is valid")
    }
}

impl PracticeMapping {
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        let file: MappingFile = toml::from_str(text)?;
        let local_time_zone = match file.local_time_zone {
            Some(name) => Some(
                name.parse::<Tz>()
                    .map_err(|_| MappingError::TimeZone(name))?,
            ),
            None => None,
        };
        let mut mapping = PracticeMapping {
            local_time_zone,
            divert_111: file
                .divert_111
                .numbers
                .iter()
                .map(|number| identifier_key(number))
                .collect(),
            by_vendor: HashMap::new(),
            directory: None,
            asterisk_callback_keys: file.asterisk.callback_keys,
        };
        for (vendor, table) in file.vendors {
            for (identifier, practice) in table {
                if !is_practice_code(&practice) {
                    return Err(MappingError::NotAPractice {
                        vendor,
                        identifier,
                        practice,
                    });
                }
                mapping
                    .by_vendor
                    .entry(vendor.clone())
                    .or_default()
                    .insert(identifier_key(&identifier), practice);
            }
        }
        Ok(mapping)
    }

    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Adds one entry (for tests and tools that build mappings in code).
    pub fn insert(&mut self, vendor: &str, identifier: &str, practice: &str) {
        debug_assert!(is_practice_code(practice), "{practice}");
        self.by_vendor
            .entry(vendor.to_string())
            .or_default()
            .insert(identifier_key(identifier), practice.to_string());
    }

    /// Restricts practice codes to those that exist, e.g. from the organisations file.
    pub fn with_directory(mut self, practices: impl IntoIterator<Item = String>) -> Self {
        self.directory = Some(practices.into_iter().collect());
        self
    }

    /// The practice for one vendor identifier.
    pub fn practice(
        &self,
        vendor: &'static str,
        identifier_kind: &'static str,
        identifier: &str,
    ) -> Result<String, AdaptError> {
        self.by_vendor
            .get(vendor)
            .and_then(|table| table.get(&identifier_key(identifier)))
            .cloned()
            .ok_or_else(|| AdaptError::UnmappedPractice {
                vendor,
                identifier_kind,
                identifier: identifier.chars().take(200).collect(),
            })
    }

    /// The practice for the first identifier, in order of preference, that
    /// the table knows. The error names the first identifier present.
    pub fn practice_of_any(
        &self,
        vendor: &'static str,
        candidates: &[(&'static str, Option<&str>)],
    ) -> Result<String, AdaptError> {
        let mut first_err = None;
        for (kind, value) in candidates {
            let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match self.practice(vendor, kind, value) {
                Ok(practice) => return Ok(practice),
                Err(err) => {
                    first_err.get_or_insert(err);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| {
            let names: Vec<&str> = candidates.iter().map(|(kind, _)| *kind).collect();
            AdaptError::field(
                names.join(" / "),
                "required to find the practice, but missing",
            )
        }))
    }

    /// Whether a practice code is one we know, when a directory is loaded.
    pub fn is_known_practice(&self, code: &str) -> bool {
        self.directory
            .as_ref()
            .is_none_or(|practices| practices.contains(code))
    }

    /// The zone of vendor times written without an offset; London unless configured.
    pub fn local_time_zone(&self) -> Tz {
        self.local_time_zone.unwrap_or(chrono_tz::Europe::London)
    }

    /// The Asterisk queue keys ("press 1 to be called back") that book a callback.
    pub fn asterisk_callback_keys(&self) -> &[String] {
        &self.asterisk_callback_keys
    }

    /// Whether a destination (number or SIP URI) is NHS 111.
    pub fn is_111(&self, destination: &str) -> bool {
        self.divert_111.contains(&identifier_key(destination))
    }
}

/// Phone numbers compare in E.164; other identifiers as written, trimmed.
fn identifier_key(identifier: &str) -> String {
    normalise_e164(identifier).unwrap_or_else(|| identifier.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[divert_111]
numbers = ["111", "+44111"]

[vendors.twilio]
"+441632960001" = "A81001"

[vendors.amazon-connect]
"GP-A81002-Reception" = "A81002"
"#;

    #[test]
    fn numbers_match_however_written() {
        let mapping = PracticeMapping::from_toml(SAMPLE).unwrap();
        assert_eq!(
            mapping.practice("twilio", "To", "01632 960001").unwrap(),
            "A81001"
        );
        assert_eq!(
            mapping.practice("twilio", "To", "+441632960001").unwrap(),
            "A81001"
        );
        assert!(mapping.is_111("111"));
        assert!(!mapping.is_111("01632960001"));
    }

    #[test]
    fn unknown_identifiers_are_errors_naming_the_field() {
        let mapping = PracticeMapping::from_toml(SAMPLE).unwrap();
        let err = mapping
            .practice("twilio", "To", "+441632960099")
            .unwrap_err();
        assert_eq!(err.field_name(), Some("To"));
        assert!(err.to_string().contains("+441632960099"));
        // The same identifier under another vendor is not a match.
        assert!(mapping
            .practice("asterisk", "dst", "+441632960001")
            .is_err());
        let err = mapping
            .practice_of_any(
                "amazon-connect",
                &[("Queue.Name", None), ("Queue.ARN", None)],
            )
            .unwrap_err();
        assert!(err.to_string().contains("Queue.Name / Queue.ARN"), "{err}");
    }

    #[test]
    fn values_must_be_practice_codes() {
        let bad = "[vendors.twilio]\n\"+441632960001\" = \"a81001\"\n";
        assert!(matches!(
            PracticeMapping::from_toml(bad),
            Err(MappingError::NotAPractice { .. })
        ));
        assert!(PracticeMapping::from_toml("[twilio]\nx = \"A81001\"\n").is_err());
    }
}
