//! The canonical call event (metrics.md §1): what every adapter produces and
//! the processor consumes. Validation lives here so that every entry point
//! (HTTP ingest, files, replay, Kafka) rejects the same things for the same reasons.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::time::{TimeError, Timestamp};

/// The longest identifier (event, call, vendor, caller pseudonym) we accept.
pub const MAX_ID_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "offered")]
    Offered,
    #[serde(rename = "queued")]
    Queued,
    #[serde(rename = "answered")]
    Answered,
    #[serde(rename = "callback_requested")]
    CallbackRequested,
    #[serde(rename = "abandoned")]
    Abandoned,
    #[serde(rename = "missed")]
    Missed,
    #[serde(rename = "ivr_ended")]
    IvrEnded,
    #[serde(rename = "diverted_111")]
    Diverted111,
    #[serde(rename = "ended")]
    Ended,
    #[serde(rename = "callback_made")]
    CallbackMade,
    #[serde(rename = "divert_111_on")]
    Divert111On,
    #[serde(rename = "divert_111_off")]
    Divert111Off,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::Offered,
        EventKind::Queued,
        EventKind::Answered,
        EventKind::CallbackRequested,
        EventKind::Abandoned,
        EventKind::Missed,
        EventKind::IvrEnded,
        EventKind::Diverted111,
        EventKind::Ended,
        EventKind::CallbackMade,
        EventKind::Divert111On,
        EventKind::Divert111Off,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Offered => "offered",
            EventKind::Queued => "queued",
            EventKind::Answered => "answered",
            EventKind::CallbackRequested => "callback_requested",
            EventKind::Abandoned => "abandoned",
            EventKind::Missed => "missed",
            EventKind::IvrEnded => "ivr_ended",
            EventKind::Diverted111 => "diverted_111",
            EventKind::Ended => "ended",
            EventKind::CallbackMade => "callback_made",
            EventKind::Divert111On => "divert_111_on",
            EventKind::Divert111Off => "divert_111_off",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// One of the kinds that settle what happened to an inbound call.
    pub fn is_outcome(self) -> bool {
        matches!(
            self,
            EventKind::Answered
                | EventKind::CallbackRequested
                | EventKind::Abandoned
                | EventKind::Missed
                | EventKind::IvrEnded
                | EventKind::Diverted111
        )
    }

    /// Practice-level switches that belong to no call.
    pub fn is_practice_level(self) -> bool {
        matches!(self, EventKind::Divert111On | EventKind::Divert111Off)
    }
}

/// One canonical call event. Field names are the wire contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    pub event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    pub vendor: String,
    pub practice: String,
    pub kind: EventKind,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a canonical call event: {0}")]
    Json(String),
    #[error("field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl EventError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        EventError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The field at fault, where one is known: for clients that branch on it.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            EventError::Invalid { field, .. } => Some(field),
            EventError::Json(_) => None,
        }
    }
}

impl From<TimeError> for EventError {
    fn from(err: TimeError) -> Self {
        EventError::invalid("at", err.to_string())
    }
}

impl CallEvent {
    /// Parses and validates one JSON object. Errors name the field at fault.
    pub fn from_json(text: &str) -> Result<CallEvent, EventError> {
        Self::from_json_with_caller(text, |caller| Some(caller.to_string()))
    }

    /// As [`CallEvent::from_json`], but `caller` goes through `pseudonymise`
    /// before validation: the edge that receives raw numbers replaces them
    /// here, so a number is never held in an event.
    pub fn from_json_with_caller(
        text: &str,
        pseudonymise: impl FnOnce(&str) -> Option<String>,
    ) -> Result<CallEvent, EventError> {
        let (raw, kind, at) = RawCallEvent::parse(text)?;
        let event = CallEvent {
            event_id: raw.event_id.into_owned(),
            call_id: raw.call_id.map(Cow::into_owned),
            vendor: raw.vendor.into_owned(),
            practice: raw.practice.into_owned(),
            kind,
            at,
            caller: raw.caller.as_deref().and_then(pseudonymise),
            queue_position: raw.queue_position,
        };
        event.validate()?;
        Ok(event)
    }

    /// As [`CallEvent::from_json`], but into `self`, reusing the buffers of
    /// its strings: replay reads millions of lines and need not allocate
    /// for each. Same checks, same errors; after an error `self` holds
    /// some mix of the old and the new event and must not be used.
    pub fn read_json(&mut self, text: &str) -> Result<(), EventError> {
        let (raw, kind, at) = RawCallEvent::parse(text)?;
        replace_string(&mut self.event_id, &raw.event_id);
        replace_optional(&mut self.call_id, raw.call_id.as_deref());
        replace_string(&mut self.vendor, &raw.vendor);
        replace_string(&mut self.practice, &raw.practice);
        self.kind = kind;
        self.at = at;
        replace_optional(&mut self.caller, raw.caller.as_deref());
        self.queue_position = raw.queue_position;
        self.validate()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a call event always serialises")
    }

    /// Checks the rules of metrics.md §1 that the types alone do not enforce.
    pub fn validate(&self) -> Result<(), EventError> {
        check_id("event_id", &self.event_id)?;
        check_id("vendor", &self.vendor)?;
        if !self
            .vendor
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(EventError::invalid(
                "vendor",
                "must be a lower-case adapter name such as `generic` or `amazon-connect`",
            ));
        }
        if !is_practice_code(&self.practice) {
            return Err(EventError::invalid(
                "practice",
                format!(
                    "`{}` is not an ODS practice code (one upper-case letter and five digits, e.g. A81001)",
                    self.practice.chars().take(20).collect::<String>()
                ),
            ));
        }
        match (&self.call_id, self.kind.is_practice_level()) {
            (None, false) => {
                return Err(EventError::invalid(
                    "call_id",
                    format!("required for `{}` events", self.kind.as_str()),
                ))
            }
            (Some(call_id), _) => check_id("call_id", call_id)?,
            (None, true) => {}
        }
        if let Some(caller) = &self.caller {
            check_id("caller", caller)?;
            if looks_like_phone_number(caller) {
                return Err(EventError::invalid(
                    "caller",
                    "must be a pseudonym (keyed HMAC), never a phone number",
                ));
            }
        }
        if self.queue_position.is_some() && self.kind != EventKind::Queued {
            return Err(EventError::invalid(
                "queue_position",
                "only `queued` events carry a queue position",
            ));
        }
        if self.at < crate::time::EARLIEST || self.at >= crate::time::LATEST {
            return Err(EventError::invalid(
                "at",
                "outside 2000-01-01 to 2100-01-01",
            ));
        }
        Ok(())
    }
}

/// The wire shape before validation: strings borrowed where the JSON allows,
/// so that a bad kind or timestamp is reported against its field.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct RawCallEvent<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow, default)]
    call_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    vendor: Cow<'a, str>,
    #[serde(borrow)]
    practice: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(borrow, default)]
    caller: Option<Cow<'a, str>>,
    #[serde(default)]
    queue_position: Option<u32>,
}

impl<'a> RawCallEvent<'a> {
    /// The JSON object, its kind and its time, in that order of checks.
    fn parse(text: &'a str) -> Result<(RawCallEvent<'a>, EventKind, Timestamp), EventError> {
        let raw = match RawCallEvent::parse_plain(text) {
            Some(raw) => raw,
            None => serde_json::from_str(text).map_err(|err| EventError::Json(err.to_string()))?,
        };
        let kind = EventKind::parse(&raw.kind).ok_or_else(|| {
            EventError::invalid(
                "kind",
                format!(
                    "`{}` is not a canonical kind (offered, queued, answered, ...)",
                    raw.kind.chars().take(40).collect::<String>()
                ),
            )
        })?;
        let at = Timestamp::parse_rfc3339(&raw.at)?;
        Ok((raw, kind, at))
    }
}

impl<'a> RawCallEvent<'a> {
    /// The plain shape every adapter writes, read without serde: one
    /// object of the known fields, strings without escapes, in any order.
    /// Anything else (an escape, an unknown or repeated field, a number
    /// that is not a plain `u32`, bad JSON) gives `None`, and serde reads
    /// it, with its error messages: the two agree on every line this one
    /// accepts (`plain_reading_agrees_with_serde`).
    fn parse_plain(text: &'a str) -> Option<RawCallEvent<'a>> {
        let mut cursor = Plain {
            bytes: text.as_bytes(),
            text,
            at: 0,
        };
        let (mut event_id, mut call_id, mut vendor, mut practice) = (None, None, None, None);
        let (mut kind, mut at, mut caller, mut queue_position) = (None, None, None, None);
        cursor.expect(b'{')?;
        if cursor.peek()? == b'}' {
            return None;
        }
        loop {
            let key = cursor.string()?;
            cursor.expect(b':')?;
            let field = match key {
                "event_id" => &mut event_id,
                "vendor" => &mut vendor,
                "practice" => &mut practice,
                "kind" => &mut kind,
                "at" => &mut at,
                "call_id" => &mut call_id,
                "caller" => &mut caller,
                "queue_position" => {
                    if queue_position.is_some() {
                        return None;
                    }
                    queue_position = Some(cursor.optional_u32()?);
                    if !cursor.next_member()? {
                        break;
                    }
                    continue;
                }
                _ => return None,
            };
            if field.is_some() {
                return None; // repeated: serde reports it
            }
            let optional = matches!(key, "call_id" | "caller");
            *field = Some(if optional {
                cursor.optional_string()?
            } else {
                Some(cursor.string()?)
            });
            if !cursor.next_member()? {
                break;
            }
        }
        if !cursor.rest_is_blank() {
            return None;
        }
        Some(RawCallEvent {
            event_id: Cow::Borrowed(event_id??),
            call_id: call_id.flatten().map(Cow::Borrowed),
            vendor: Cow::Borrowed(vendor??),
            practice: Cow::Borrowed(practice??),
            kind: Cow::Borrowed(kind??),
            at: Cow::Borrowed(at??),
            caller: caller.flatten().map(Cow::Borrowed),
            queue_position: queue_position.flatten(),
        })
    }
}

/// Bytes that end a JSON string without escapes: the closing quote, or
/// what only serde handles (an escape, a control character, an error).
const ENDS_PLAIN_STRING: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Where the first byte of [`ENDS_PLAIN_STRING`] is, eight bytes at a
/// time: values are short, so this beats both a byte loop and SIMD setup.
fn plain_string_length(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut offset = 0;
    while let Some(chunk) = bytes.get(offset..offset + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // A byte is flagged (high bit set) when it equals `"` or `\\`, or
        // is below 0x20; bytes of 0x80 and above are never flagged.
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let zero_in = |x: u64| x.wrapping_sub(ONES) & !x;
        let below_space = word.wrapping_sub(ONES * 0x20) & !word;
        let flagged = (zero_in(quote) | zero_in(backslash) | below_space) & HIGHS;
        if flagged != 0 {
            // The lowest flagged byte is exact (borrows only run upwards).
            return Some(offset + (flagged.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    bytes[offset..]
        .iter()
        .position(|&b| ENDS_PLAIN_STRING[usize::from(b)])
        .map(|position| offset + position)
}

/// A cursor over one line of JSON for [`RawCallEvent::parse_plain`].
struct Plain<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Plain<'a> {
    fn skip_blanks(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_blanks();
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let length = plain_string_length(&self.bytes[start..])?;
        self.at = start + length;
        if self.bytes[self.at] != b'"' {
            return None;
        }
        self.at += 1;
        // Quotes are ASCII, so both ends are character boundaries.
        Some(&self.text[start..start + length])
    }

    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            if self.bytes[self.at..].starts_with(b"null") {
                self.at += 4;
                return Some(true);
            }
            return None;
        }
        Some(false)
    }

    fn optional_string(&mut self) -> Option<Option<&'a str>> {
        if self.null()? {
            return Some(None);
        }
        self.string().map(Some)
    }

    fn optional_u32(&mut self) -> Option<Option<u32>> {
        if self.null()? {
            return Some(None);
        }
        let start = self.at;
        let digits = self.bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = start + digits;
        // A leading zero, a sign, a fraction or an exponent: serde decides.
        if digits == 0
            || (digits > 1 && self.bytes[start] == b'0')
            || matches!(self.bytes.get(end), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.at = end;
        self.text[start..end].parse().ok().map(Some)
    }

    /// After a member: true at a comma (another member follows), false
    /// at the closing brace.
    fn next_member(&mut self) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            b'}' => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    fn rest_is_blank(&mut self) -> bool {
        self.skip_blanks();
        self.at == self.bytes.len()
    }
}

fn replace_string(target: &mut String, text: &str) {
    target.clear();
    target.push_str(text);
}

fn replace_optional(target: &mut Option<String>, text: Option<&str>) {
    match (target.as_mut(), text) {
        (Some(held), Some(text)) => replace_string(held, text),
        (_, text) => *target = text.map(str::to_string),
    }
}

fn check_id(field: &'static str, value: &str) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(EventError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(EventError::invalid(
            field,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    let has_control = if value.is_ascii() {
        value.bytes().any(|b| b.is_ascii_control())
    } else {
        value.chars().any(char::is_control)
    };
    if has_control {
        return Err(EventError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// One upper-case letter and five digits, e.g. `A81001`.
pub fn is_practice_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 6 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

/// Seven or more digits with only phone punctuation around them: a number
/// that escaped pseudonymisation. Pseudonyms are hex or base64 and rarely
/// all-digit; a false alarm costs a rejected event, a miss costs a leak.
fn looks_like_phone_number(value: &str) -> bool {
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    digits >= 7
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b' ' | b'-' | b'(' | b')' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> CallEvent {
        CallEvent::from_json(
            r#"{"event_id":"e1","call_id":"c1","vendor":"generic","practice":"A81001","kind":"queued","at":"2026-11-23T08:00:00Z","caller":"p:9f86d081","queue_position":3}"#,
        )
        .unwrap()
    }

    #[test]
    fn parses_all_fields() {
        let event = valid();
        assert_eq!(event.kind, EventKind::Queued);
        assert_eq!(event.queue_position, Some(3));
        assert_eq!(event.at.to_rfc3339_millis(), "2026-11-23T08:00:00.000Z");
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in EventKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        let cases: [(&str, &str); 8] = [
            (r#""kind":"hung_up""#, "kind"),
            (r#""practice":"a81001""#, "practice"),
            (r#""practice":"A8100""#, "practice"),
            (r#""caller":"+44 7700 900123""#, "caller"),
            (r#""event_id":"""#, "event_id"),
            (r#""vendor":"Generic""#, "vendor"),
            (r#""at":"2026-13-01T00:00:00Z""#, "at"),
            (r#""at":"1999-12-31T23:59:59Z""#, "at"),
        ];
        for (patch, field) in cases {
            let mut value: serde_json::Value = serde_json::to_value(valid()).unwrap();
            let patch: serde_json::Value = serde_json::from_str(&format!("{{{patch}}}")).unwrap();
            for (key, v) in patch.as_object().unwrap() {
                value[key] = v.clone();
            }
            let err = CallEvent::from_json(&value.to_string()).unwrap_err();
            assert_eq!(err.field(), Some(field), "{patch}: {err}");
        }
    }

    #[test]
    fn call_id_required_except_for_practice_switches() {
        let missing = r#"{"event_id":"e1","vendor":"generic","practice":"A81001","kind":"answered","at":"2026-11-23T08:00:00Z"}"#;
        assert_eq!(
            CallEvent::from_json(missing).unwrap_err().field(),
            Some("call_id")
        );
        let switch = r#"{"event_id":"e1","vendor":"generic","practice":"A81001","kind":"divert_111_on","at":"2026-11-23T08:00:00Z"}"#;
        assert!(CallEvent::from_json(switch).is_ok());
    }

    #[test]
    fn reading_into_an_event_agrees_with_parsing_one() {
        let mut reused = valid();
        for text in [
            r#"{"event_id":"e2","vendor":"twilio","practice":"B82002","kind":"divert_111_on","at":"2026-11-23T09:00:00+01:00"}"#,
            r#"{"event_id":"e3","call_id":"c9","vendor":"generic","practice":"A81001","kind":"offered","at":"2026-11-23T08:00:00Z","caller":"p:1"}"#,
            r#"{"event_id":"e4","call_id":"c9","vendor":"generic","practice":"A81001","kind":"hung_up","at":"2026-11-23T08:00:00Z"}"#,
            r#"{"event_id":"e5","call_id":"c9","vendor":"generic","practice":"A81001","kind":"answered","at":"2026-11-23T08:00:00Z","queue_position":2}"#,
            "not json",
        ] {
            match (CallEvent::from_json(text), reused.read_json(text)) {
                (Ok(parsed), Ok(())) => assert_eq!(parsed, reused),
                (Err(expected), Err(actual)) => assert_eq!(expected, actual),
                (expected, actual) => panic!("{text}: {expected:?} but {actual:?}"),
            }
        }
    }

    #[test]
    fn the_adapters_shape_is_read_without_serde() {
        let text = valid().to_json();
        let plain = RawCallEvent::parse_plain(&text).expect("the plain shape");
        assert_eq!(
            Some(plain),
            serde_json::from_str::<RawCallEvent<'_>>(&text).ok()
        );
        let spaced = " { \"kind\" : \"offered\" ,\t\"at\":\"2026-11-23T08:00:00Z\", \"event_id\":\"e1\", \"call_id\": null, \"vendor\":\"generic\",\"practice\":\"A81001\",\"queue_position\":null }\r";
        assert!(RawCallEvent::parse_plain(spaced).is_some());
        for serde_decides in [
            r#"{"event_id":"e\"1","vendor":"generic","practice":"A81001","kind":"offered","at":"2026-11-23T08:00:00Z","call_id":"c"}"#,
            r#"{"event_id":"e1","event_id":"e2","vendor":"generic","practice":"A81001","kind":"offered","at":"2026-11-23T08:00:00Z","call_id":"c"}"#,
            r#"{"event_id":"e1","extra":1,"vendor":"generic","practice":"A81001","kind":"offered","at":"2026-11-23T08:00:00Z","call_id":"c"}"#,
            r#"{"event_id":"e1","vendor":"generic","practice":"A81001","kind":"queued","at":"2026-11-23T08:00:00Z","call_id":"c","queue_position":1e2}"#,
            r#"{"event_id":"e1","vendor":"generic","practice":"A81001","kind":"queued","at":"2026-11-23T08:00:00Z","call_id":"c"} x"#,
            r#"{"vendor":"generic","practice":"A81001","kind":"offered","at":"2026-11-23T08:00:00Z","call_id":"c"}"#,
        ] {
            assert!(
                RawCallEvent::parse_plain(serde_decides).is_none(),
                "{serde_decides}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn the_word_scan_finds_what_the_byte_scan_finds(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let by_bytes = bytes.iter().position(|&b| ENDS_PLAIN_STRING[usize::from(b)]);
            proptest::prop_assert_eq!(plain_string_length(&bytes), by_bytes);
        }
    }

    mod plain_reading {
        use super::super::*;
        use proptest::prelude::*;

        /// A JSON value as text: mostly what the fields hold, sometimes
        /// anything JSON (or not) allows.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => "[a-zA-Z0-9:_\\-]{0,12}".prop_map(|s| format!("\"{s}\"")),
                1 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
                1 => "[ -~]{0,8}".prop_map(|s| format!("\"{s}\"")),
                1 => "[a-z\\x00-\\x1f\\x7f\\u{80}-\\u{9f}é]{1,3}".prop_map(|s| format!("\"{s}\"")),
                1 => Just("null".to_string()),
                1 => any::<i64>().prop_map(|n| n.to_string()),
                1 => any::<u32>().prop_map(|n| n.to_string()),
                1 => prop::sample::select(vec!["01", "1.0", "2e1", "-0", "true", "[]", "{}"]).prop_map(str::to_string),
            ]
        }

        fn blank() -> impl Strategy<Value = String> {
            prop::sample::select(vec!["", "", "", " ", "\t", "\r\n", "  "]).prop_map(str::to_string)
        }

        fn member() -> impl Strategy<Value = String> {
            let key = prop::sample::select(vec![
                "event_id",
                "call_id",
                "vendor",
                "practice",
                "kind",
                "at",
                "caller",
                "queue_position",
                "other",
                "event\\u005fid",
            ]);
            (key, value(), blank(), blank())
                .prop_map(|(key, value, a, b)| format!("{a}\"{key}\"{b}:{a}{value}{b}"))
        }

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::collection::vec(member(), 0..10)
                    .prop_map(|members| format!("{{{}}}", members.join(","))),
                // Every required field, so that whole objects parse too.
                (
                    prop::collection::vec(value(), 8),
                    prop::sample::subsequence((0..8).collect::<Vec<usize>>(), 5..=8),
                    blank()
                )
                    .prop_map(|(values, order, end)| {
                        let keys = [
                            "event_id",
                            "vendor",
                            "practice",
                            "kind",
                            "at",
                            "call_id",
                            "caller",
                            "queue_position",
                        ];
                        let members: Vec<String> = order
                            .iter()
                            .map(|&i| format!("\"{}\":{}", keys[i], values[i]))
                            .collect();
                        format!("{{{}}}{end}", members.join(","))
                    }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]
            #[test]
            fn plain_reading_agrees_with_serde(text in line()) {
                if let Some(plain) = RawCallEvent::parse_plain(&text) {
                    let by_serde = serde_json::from_str::<RawCallEvent<'_>>(&text);
                    prop_assert_eq!(Some(plain), by_serde.ok(), "{}", text);
                }
            }

            /// Lines cut short or with one byte changed: the fast reading
            /// must not accept what serde refuses, nor panic on any of it.
            #[test]
            fn plain_reading_agrees_with_serde_on_broken_lines(
                text in line(),
                at in 0.0..1.0f64,
                byte in any::<u8>(),
                cut in any::<bool>(),
            ) {
                let mut bytes = text.into_bytes();
                let i = ((at * bytes.len() as f64) as usize).min(bytes.len().saturating_sub(1));
                if cut {
                    bytes.truncate(i);
                } else if !bytes.is_empty() {
                    bytes[i] = byte;
                }
                let text = String::from_utf8_lossy(&bytes);
                if let Some(plain) = RawCallEvent::parse_plain(&text) {
                    let by_serde = serde_json::from_str::<RawCallEvent<'_>>(&text);
                    prop_assert_eq!(Some(plain), by_serde.ok(), "{}", text);
                }
            }
        }
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for text in ["", "{", "[]", "null", r#"{"event_id":1}"#, "\u{0}"] {
            assert!(
                matches!(CallEvent::from_json(text), Err(EventError::Json(_))),
                "{text:?}"
            );
        }
    }
}
