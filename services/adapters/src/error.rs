//! Why a vendor record could not become canonical events.

use std::borrow::Cow;

use callpulse_core::EventError;

/// One record's rejection: the field at fault (in the vendor's own words,
/// e.g. `CallStatus` or `Queue.EnqueueTimestamp`) and why. Messages never
/// quote a caller's number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdaptError {
    /// The record is not well-formed JSON, CSV, form data or UTF-8.
    #[error("malformed {format}: {reason}")]
    Malformed {
        format: &'static str,
        reason: String,
    },
    /// A field is missing or has a value we cannot map.
    #[error("field `{field}`: {reason}")]
    Field {
        field: Cow<'static, str>,
        reason: String,
    },
    /// No practice is mapped for this vendor identifier: an error, not a guess.
    #[error("no practice mapped for {vendor} {identifier_kind} `{identifier}` (add it to the practice mapping)")]
    UnmappedPractice {
        vendor: &'static str,
        identifier_kind: &'static str,
        identifier: String,
    },
    /// The record is larger than we accept.
    #[error("record of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// The request body did not arrive in time (a client trickling it in).
    #[error("the body did not arrive within {limit_ms} ms")]
    BodyTimeout { limit_ms: u64 },
    /// The canonical event built from the record broke a rule of metrics.md §1.
    #[error("canonical event: {0}")]
    Event(EventError),
    /// An event time far from when the record arrived ([`crate::bounds`]).
    #[error("field `at`: {at} is {reason}")]
    ImplausibleTime { at: String, reason: String },
}

impl From<EventError> for AdaptError {
    fn from(err: EventError) -> Self {
        match err {
            EventError::Json(reason) => AdaptError::Malformed {
                format: "JSON",
                reason,
            },
            other => AdaptError::Event(other),
        }
    }
}

impl AdaptError {
    pub fn field(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        AdaptError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn missing(field: impl Into<Cow<'static, str>>) -> Self {
        AdaptError::field(field, "required but missing")
    }

    pub fn malformed(format: &'static str, reason: impl ToString) -> Self {
        AdaptError::Malformed {
            format,
            reason: reason.to_string(),
        }
    }

    /// The field at fault, where one is known: for clients that branch on it.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            AdaptError::Field { field, .. } => Some(field),
            AdaptError::UnmappedPractice {
                identifier_kind, ..
            } => Some(identifier_kind),
            AdaptError::Event(err) => err.field(),
            AdaptError::ImplausibleTime { .. } => Some("at"),
            AdaptError::Malformed { .. }
            | AdaptError::TooLarge { .. }
            | AdaptError::BodyTimeout { .. } => None,
        }
    }

    /// A short stable code for metrics labels and clients.
    pub fn code(&self) -> &'static str {
        match self {
            AdaptError::Malformed { .. } => "malformed",
            AdaptError::Field { .. } => "invalid_field",
            AdaptError::UnmappedPractice { .. } => "unmapped_practice",
            AdaptError::TooLarge { .. } => "too_large",
            AdaptError::BodyTimeout { .. } => "body_timeout",
            AdaptError::Event(_) => "invalid_event",
            AdaptError::ImplausibleTime { .. } => "implausible_time",
        }
    }
}
