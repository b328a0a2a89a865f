//! One module per supplier format. Each is pure: `adapt_record` takes one
//! record as text (a JSON object, a CSV line, a log line) and returns the
//! canonical events it implies, already validated, or why it cannot.
//!
//! The mapping of each vendor's vocabulary onto the canonical kinds is
//! written down in `docs/adapters.md`.

use crate::{AdaptContext, Adapted};

pub mod amazon_connect;
pub mod asterisk;
pub mod generic;
pub mod teams;
pub mod twilio;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    Generic,
    Twilio,
    AmazonConnect,
    Asterisk,
    Teams,
}

impl Vendor {
    pub const ALL: [Vendor; 5] = [
        Vendor::Generic,
        Vendor::Twilio,
        Vendor::AmazonConnect,
        Vendor::Asterisk,
        Vendor::Teams,
    ];

    /// The adapter's name: the canonical `vendor` field and the CLI's `--vendor`.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Generic => generic::NAME,
            Vendor::Twilio => twilio::NAME,
            Vendor::AmazonConnect => amazon_connect::NAME,
            Vendor::Asterisk => asterisk::NAME,
            Vendor::Teams => teams::NAME,
        }
    }

    pub fn parse(name: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|vendor| vendor.name() == name)
    }

    /// Adapts one record as it appears in this vendor's files.
    pub fn adapt_record(self, record: &str, ctx: &AdaptContext<'_>) -> Adapted {
        match self {
            Vendor::Generic => generic::adapt_record(record, ctx),
            Vendor::Twilio => twilio::adapt_record(record, ctx),
            Vendor::AmazonConnect => amazon_connect::adapt_record(record, ctx),
            Vendor::Asterisk => asterisk::adapt_record(record, ctx),
            Vendor::Teams => teams::adapt_record(record, ctx),
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Vendor {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Vendor::parse(name).ok_or_else(|| {
            let names: Vec<&str> = Vendor::ALL.iter().map(|v| v.name()).collect();
            format!("unknown vendor `{name}`; one of: {}", names.join(", "))
        })
    }
}
