//! `teams`: to be written (see docs/adapters.md).

use crate::{AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "teams";

pub fn adapt_record(_record: &str, _ctx: &AdaptContext<'_>) -> Adapted {
    Err(AdaptError::field("vendor", "the teams adapter is not written yet"))
}
