//! Caller numbers become keyed pseudonyms at the edge, and go no further.
//!
//! A number is normalised to E.164 first, so `07700 900123`,
//! `+44 (0)7700 900123` and `tel:+447700900123` are one caller. The
//! pseudonym is HMAC-SHA256 under an operator-held key: an unkeyed hash of a
//! phone number is reversible by trying every number, a keyed one is not
//! without the key (domain.md, Privacy).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest key we accept: 32 bytes, the HMAC-SHA256 block strength.
pub const MIN_KEY_BYTES: usize = 32;

/// A fixed key for the local demo only; `callpulse adapters` refuses it
/// unless started with `--demo`.
pub const DEMO_KEY: &str = "callpulse-demo-key-not-secret-do-not-use-in-production";

/// Numbers that carriers and suppliers use to say "withheld": no caller.
const WITHHELD_WORDS: [&str; 9] = [
    "anonymous",
    "restricted",
    "withheld",
    "private",
    "unknown",
    "unavailable",
    "blocked",
    "none",
    "null",
];
/// Twilio's stand-ins for withheld numbers (ANONYMOUS, RESTRICTED, UNAVAILABLE on a keypad).
const WITHHELD_NUMBERS: [&str; 3] = ["+266696687", "+7378742833", "+86282452253"];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the pseudonym key is {0} bytes; at least {MIN_KEY_BYTES} are needed")]
    TooShort(usize),
    #[error("the demo pseudonym key is not allowed outside demo mode")]
    DemoKey,
}

#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser { key: <hidden> }")
    }
}

impl Pseudonymiser {
    pub fn new(key: &[u8]) -> Result<Self, KeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(key.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        Ok(Pseudonymiser { mac })
    }

    /// The key for production: anything but the demo key.
    pub fn for_production(key: &[u8]) -> Result<Self, KeyError> {
        if key == DEMO_KEY.as_bytes() {
            return Err(KeyError::DemoKey);
        }
        Self::new(key)
    }

    pub fn demo() -> Self {
        Self::new(DEMO_KEY.as_bytes()).expect("the demo key is long enough")
    }

    /// The pseudonym of a caller as a vendor wrote it, or `None` when the
    /// number is withheld or absent. Not a number at all (a SIP user name,
    /// say) is still pseudonymised, as its trimmed lower-case text.
    pub fn caller(&self, raw: Option<&str>) -> Option<String> {
        let raw = raw?.trim();
        if is_withheld(raw) {
            return None;
        }
        let identity = match normalise_e164(raw) {
            Some(e164) => e164,
            None => format!("id:{}", raw.to_lowercase()),
        };
        Some(self.pseudonym_of(&identity))
    }

    fn pseudonym_of(&self, identity: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(identity.as_bytes());
        let digest = mac.finalize().into_bytes();
        // 128 bits are plenty to keep distinct callers distinct; "p:" marks a
        // pseudonym so it can never be mistaken for a number.
        let mut out = String::with_capacity(34);
        out.push_str("p:");
        for byte in &digest[..16] {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

pub fn is_withheld(raw: &str) -> bool {
    let trimmed = raw.trim();
    trimmed.is_empty()
        || WITHHELD_WORDS
            .iter()
            .any(|word| trimmed.eq_ignore_ascii_case(word))
        || WITHHELD_NUMBERS.contains(&trimmed)
}

/// Normalises a UK-style or international number to E.164 (`+447700900123`).
/// `None` when the text is not a phone number.
pub fn normalise_e164(raw: &str) -> Option<String> {
    let mut text = raw.trim();
    for scheme in ["tel:", "sip:", "sips:"] {
        // `get`: the text may be any UTF-8, and a byte index can split a character.
        if text
            .get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        {
            text = &text[scheme.len()..];
        }
    }
    // A SIP URI's user part, without host or parameters.
    if let Some(at) = text.find(['@', ';']) {
        text = &text[..at];
    }
    let plus = text.starts_with('+');
    let mut digits = String::with_capacity(16);
    let mut rest = if plus { &text[1..] } else { text };
    // `+44 (0)20 ...`: the trunk zero in brackets is not dialled internationally.
    if plus {
        if let Some(stripped) = rest.strip_prefix("44").map(str::trim_start) {
            if let Some(after) = stripped.strip_prefix("(0)") {
                digits.push_str("44");
                rest = after;
            }
        }
    }
    for ch in rest.chars() {
        match ch {
            '0'..='9' => digits.push(ch),
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => return None,
        }
    }
    let international = if plus {
        digits
    } else if let Some(after) = digits.strip_prefix("00") {
        after.to_string()
    } else if digits.starts_with('0') && (10..=11).contains(&digits.len()) {
        format!("44{}", &digits[1..])
    } else if digits.starts_with("44") && (11..=12).contains(&digits.len()) {
        digits
    } else {
        return None;
    };
    if !(8..=15).contains(&international.len()) || international.starts_with('0') {
        return None;
    }
    Some(format!("+{international}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_however_written() {
        let p = Pseudonymiser::demo();
        let forms = [
            "07700 900123",
            "+44 7700 900123",
            "+44 (0)7700 900123",
            "00447700900123",
            "447700900123",
            "tel:+447700900123",
            "sip:+447700900123@pbx.example.nhs.uk;user=phone",
            "(07700) 900-123",
        ];
        let expected = p.caller(Some("+447700900123")).unwrap();
        for form in forms {
            assert_eq!(
                p.caller(Some(form)).as_deref(),
                Some(expected.as_str()),
                "{form}"
            );
        }
        assert_ne!(p.caller(Some("+447700900124")).unwrap(), expected);
    }

    #[test]
    fn pseudonyms_depend_on_the_key_and_hide_the_number() {
        let a = Pseudonymiser::new(&[1u8; 32]).unwrap();
        let b = Pseudonymiser::new(&[2u8; 32]).unwrap();
        let pa = a.caller(Some("07700900123")).unwrap();
        assert_ne!(pa, b.caller(Some("07700900123")).unwrap());
        assert!(pa.starts_with("p:") && pa.len() == 34);
        assert!(!pa.contains("7700900123"));
        // The core refuses anything that looks like a number: a pseudonym must pass.
        assert!(pa.bytes().any(|b| b.is_ascii_alphabetic()));
    }

    #[test]
    fn withheld_numbers_have_no_pseudonym() {
        let p = Pseudonymiser::demo();
        for raw in [
            "",
            "  ",
            "anonymous",
            "Anonymous",
            "RESTRICTED",
            "withheld",
            "+266696687",
        ] {
            assert_eq!(p.caller(Some(raw)), None, "{raw}");
        }
        assert_eq!(p.caller(None), None);
    }

    #[test]
    fn keys_must_be_long_and_not_the_demo_key_in_production() {
        assert!(matches!(
            Pseudonymiser::new(b"short"),
            Err(KeyError::TooShort(5))
        ));
        assert!(matches!(
            Pseudonymiser::for_production(DEMO_KEY.as_bytes()),
            Err(KeyError::DemoKey)
        ));
        assert!(Pseudonymiser::for_production(&[7u8; 32]).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_handled_without_panic(text in "\\PC{0,40}") {
            let p = Pseudonymiser::demo();
            let _ = p.caller(Some(&text));
            let _ = normalise_e164(&text);
        }
    }

    #[test]
    fn non_ascii_is_not_a_number() {
        assert_eq!(normalise_e164("¡ࠀ"), None);
        assert_eq!(normalise_e164("tél:+447700900123"), None);
    }

    #[test]
    fn e164_rejects_what_is_not_a_number() {
        assert_eq!(normalise_e164("alice"), None);
        assert_eq!(normalise_e164("123"), None);
        assert_eq!(
            normalise_e164("+1 415 555 0100").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            normalise_e164("020 7946 0000").as_deref(),
            Some("+442079460000")
        );
    }
}
