//! `amazon-connect`: to be written (see docs/adapters.md).

use crate::{AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "amazon-connect";

pub fn adapt_record(_record: &str, _ctx: &AdaptContext<'_>) -> Adapted {
    Err(AdaptError::field("vendor", "the amazon-connect adapter is not written yet"))
}
