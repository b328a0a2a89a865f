//! The adapters' settings from the one configuration: practice mapping and
//! pseudonym key, with the refusals that keep production safe.

use std::path::Path;

use anyhow::{bail, Context, Result};
use callpulse_runtime::config::AdaptersConfig;

use crate::{PracticeMapping, Pseudonymiser};

/// The practice mapping: `path` if given, else `adapters.mapping`, else empty.
pub fn mapping(config: &AdaptersConfig, path: Option<&Path>) -> Result<PracticeMapping> {
    let path = path.or_else(|| (!config.mapping.is_empty()).then(|| Path::new(&config.mapping)));
    match path {
        Some(path) => PracticeMapping::load(path).context("loading the practice mapping"),
        None => Ok(PracticeMapping::default()),
    }
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
