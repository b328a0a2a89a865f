//! `asterisk`: to be written (see docs/adapters.md).

use crate::{AdaptContext, AdaptError, Adapted};

pub const NAME: &str = "asterisk";

pub fn adapt_record(_record: &str, _ctx: &AdaptContext<'_>) -> Adapted {
    Err(AdaptError::field("vendor", "the asterisk adapter is not written yet"))
}
