//! `generic`: the canonical event itself, as JSON (metrics.md §1).
//!
//! The sender's `caller` is taken to be the caller's number (or any other
//! caller identity) and is replaced by its keyed pseudonym before the event
//! is validated: a sender never has to hold our key, and a raw number never
//! passes this point. The practice code must exist when a practice
//! directory is loaded.

use callpulse_core::CallEvent;

use crate::{AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "generic";

pub fn adapt_record(record: &str, ctx: &AdaptContext<'_>) -> Adapted {
    let event =
        CallEvent::from_json_with_caller(record, |raw| ctx.pseudonymiser.caller(Some(raw)))?;
    if !ctx.mapping.is_known_practice(&event.practice) {
        return Err(AdaptError::field(
            "practice",
            format!(
                "`{}` is not a practice in the organisations directory",
                event.practice
            ),
        ));
    }
    Ok(vec![event])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PracticeMapping, Pseudonymiser};

    #[test]
    fn pseudonymises_the_caller_and_keeps_the_rest() {
        let mapping = PracticeMapping::default();
        let pseudonymiser = Pseudonymiser::demo();
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: None,
        };
        let line = r#"{"event_id":"e1","call_id":"c1","vendor":"generic","practice":"A81001","kind":"offered","at":"2026-11-23T08:00:00Z","caller":"07700 900123"}"#;
        let events = adapt_record(line, &ctx).unwrap();
        assert_eq!(events.len(), 1);
        let caller = events[0].caller.as_deref().unwrap();
        assert_eq!(
            Some(caller.to_string()),
            pseudonymiser.caller(Some("+447700900123"))
        );
        assert!(!events[0].to_json().contains("7700"));
    }

    #[test]
    fn unknown_practices_are_rejected_when_the_directory_is_loaded() {
        let mapping = PracticeMapping::default().with_directory(["A81001".to_string()]);
        let pseudonymiser = Pseudonymiser::demo();
        let ctx = AdaptContext {
            mapping: &mapping,
            pseudonymiser: &pseudonymiser,
            received_at: None,
        };
        let line = r#"{"event_id":"e1","call_id":"c1","vendor":"generic","practice":"B99999","kind":"offered","at":"2026-11-23T08:00:00Z"}"#;
        assert_eq!(
            adapt_record(line, &ctx).unwrap_err().field_name(),
            Some("practice")
        );
    }
}
