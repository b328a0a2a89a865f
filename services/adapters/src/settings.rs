//! The adapters' settings from the one configuration: practice mapping and
//! pseudonym key, with the refusals that keep production safe.

use std::path::Path;

use anyhow::{bail, Context, Result};
use callpulse_runtime::config::AdaptersConfig;

use crate::{PracticeMapping, Pseudonymiser};

/// The practice mapping: `path` if given, else `adapters.mapping`, else
/// empty; restricted to the practices of `adapters.organisations` when set.
pub fn mapping(config: &AdaptersConfig, path: Option<&Path>) -> Result<PracticeMapping> {
    let path = path.or_else(|| (!config.mapping.is_empty()).then(|| Path::new(&config.mapping)));
    let mapping = match path {
        Some(path) => PracticeMapping::load(path).context("loading the practice mapping")?,
        None => PracticeMapping::default(),
    };
    if config.organisations.is_empty() {
        return Ok(mapping);
    }
    let path = Path::new(&config.organisations);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading adapters.organisations {}", path.display()))?;
    let practices = practice_codes(&text)
        .with_context(|| format!("reading practice codes from {}", path.display()))?;
    tracing::info!(
        practices = practices.len(),
        "practice codes restricted to the organisations file"
    );
    Ok(mapping.with_directory(practices))
}

/// The `PRACTICE_CODE` column of an organisations CSV (either header of
/// docs/organisations.md).
pub fn practice_codes(csv_text: &str) -> Result<Vec<String>> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().context("reading the header")?.clone();
    let column = headers
        .iter()
        .position(|name| name.trim() == "PRACTICE_CODE")
        .context("no PRACTICE_CODE column")?;
    let mut codes = Vec::new();
    for record in reader.records() {
        let record = record.context("reading a row")?;
        if let Some(code) = record.get(column) {
            codes.push(code.trim().to_string());
        }
    }
    Ok(codes)
}

/// The pseudonymiser: the configured key, or in demo mode the demo key.
/// Outside demo mode a missing, short or demo key is refused.
pub fn pseudonymiser(config: &AdaptersConfig, demo: bool) -> Result<Pseudonymiser> {
    let key = config.pseudonym_key.as_bytes();
    if key.is_empty() {
        if demo {
            tracing::warn!("demo mode: caller pseudonyms use the published demo key");
            return Ok(Pseudonymiser::demo());
        }
        bail!(
            "no pseudonym key: set CALLPULSE__ADAPTERS__PSEUDONYM_KEY to a secret of at least {} bytes \
             (or pass --demo for the local demo)",
            crate::pseudonym::MIN_KEY_BYTES
        );
    }
    let pseudonymiser = if demo {
        Pseudonymiser::new(key)
    } else {
        Pseudonymiser::for_production(key)
    };
    pseudonymiser.context("the pseudonym key (adapters.pseudonym_key)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn practice_codes_come_from_their_column() {
        let csv = "PRACTICE_CODE,PRACTICE_NAME\nA81001,\"The Surgery, Hartlepool\"\nA81002,Two\n";
        assert_eq!(practice_codes(csv).unwrap(), ["A81001", "A81002"]);
        assert!(practice_codes("CODE\nA81001\n").is_err());
    }

    #[test]
    fn the_shipped_organisations_file_lists_the_simulated_practices() {
        let text = include_str!("../../../data/organisations.csv");
        let codes = practice_codes(text).unwrap();
        assert!(codes.len() > 6_000);
        assert!(codes.iter().any(|c| c == "A81001"));
    }
}
