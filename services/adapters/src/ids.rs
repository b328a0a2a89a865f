//! Deterministic event ids: the same vendor record always gives the same
//! ids, so a re-sent webhook or a re-imported file produces duplicates that
//! the processor drops, never extra calls.

use callpulse_core::event::MAX_ID_LEN;
use sha2::{Digest, Sha256};

/// `vendor:part:part...`, or, when that would be too long for an id,
/// `vendor:h:` and a hash of it.
pub fn event_id(vendor: &str, parts: &[&str]) -> String {
    let mut id = String::with_capacity(64);
    id.push_str(vendor);
    for part in parts {
        id.push(':');
        id.push_str(part);
    }
    if id.len() <= MAX_ID_LEN && !id.chars().any(char::is_control) {
        return id;
    }
    let digest = Sha256::digest(id.as_bytes());
    let mut hashed = format!("{vendor}:h:");
    for byte in &digest[..20] {
        hashed.push_str(&format!("{byte:02x}"));
    }
    hashed
}

/// A vendor's call id, shortened to a stable hash when it is too long to be
/// a canonical `call_id`.
pub fn call_id(raw: &str) -> String {
    if raw.len() <= MAX_ID_LEN && !raw.chars().any(char::is_control) {
        return raw.to_string();
    }
    let digest = Sha256::digest(raw.as_bytes());
    let mut hashed = String::from("h:");
    for byte in &digest[..20] {
        hashed.push_str(&format!("{byte:02x}"));
    }
    hashed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_bounded() {
        assert_eq!(
            event_id("twilio", &["CA1", "offered"]),
            "twilio:CA1:offered"
        );
        let long = "x".repeat(300);
        let a = event_id("twilio", &[&long, "offered"]);
        assert_eq!(a, event_id("twilio", &[&long, "offered"]));
        assert!(a.len() <= MAX_ID_LEN);
        assert_ne!(a, event_id("twilio", &[&long, "ended"]));
        assert!(call_id(&long).len() <= MAX_ID_LEN);
    }
}
