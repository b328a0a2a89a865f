//! Vendor adapters: each supplier's format in, canonical call events
//! (metrics.md §1) out.
//!
//! The parsers are pure and line-oriented ([`vendors`]): one record of
//! text in, zero or more validated [`CallEvent`]s or one [`AdaptError`] out.
//! Around them sit the shells: [`file`](mod@file) (convert a whole file, pure),
//! [`http`] (webhook ingest) and [`publish`] (Kafka, dead letters).
//!
//! - [`pseudonym`]: E.164 normalisation and keyed HMAC pseudonyms
//! - [`mapping`]: vendor identifiers (dialled number, queue, account) → practice
//! - [`redact`]: masks phone numbers in anything we keep about a rejected record
//! - [`ids`]: deterministic event ids, so a re-sent record is a duplicate

use callpulse_core::CallEvent;

pub mod bounds;
pub mod error;
pub mod file;
pub mod http;
pub mod ids;
pub mod import;
pub mod mapping;
pub mod pseudonym;
pub mod publish;
pub mod redact;
pub mod serve;
pub mod settings;
pub mod throttle;
pub mod timefmt;
pub mod vendors;

pub use error::AdaptError;
pub use mapping::PracticeMapping;
pub use pseudonym::Pseudonymiser;
pub use vendors::Vendor;

/// What a parser needs besides the record itself.
#[derive(Debug, Clone, Copy)]
pub struct AdaptContext<'a> {
    pub mapping: &'a PracticeMapping,
    pub pseudonymiser: &'a Pseudonymiser,
    /// When the record arrived, for HTTP records whose format carries no
    /// time of its own (e.g. Twilio's `<Enqueue>` action callback). `None`
    /// when reading files: such a record is then rejected, not guessed.
    pub received_at: Option<callpulse_core::Timestamp>,
}

/// The result of adapting one vendor record.
pub type Adapted = Result<Vec<CallEvent>, AdaptError>;
