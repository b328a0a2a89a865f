//! `twilio`: to be written (see docs/adapters.md).

use crate::{AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "twilio";

pub fn adapt_record(_record: &str, _ctx: &AdaptContext<'_>) -> Adapted {
    Err(AdaptError::field("vendor", "the twilio adapter is not written yet"))
}
