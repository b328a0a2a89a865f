//! Avro on Kafka, as Avro single-object encoding: every message starts with
//! `C3 01` and the 8-byte CRC-64-AVRO (Rabin) fingerprint of its writer
//! schema, then the Avro binary body. A reader looks the fingerprint up among
//! the schemas it knows (every version under `schemas/`, `*.avsc`) and resolves
//! the writer's schema to its own, so fields can be added with defaults
//! without a schema registry. See docs/schemas.md.

use std::sync::OnceLock;

use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::Schema;
use callpulse_core::{CallEvent, EventKind, Timestamp, WindowMetrics};

pub const CALL_EVENT_SCHEMA: &str = include_str!("../../../schemas/call_event.avsc");
pub const WINDOW_METRICS_SCHEMA: &str = include_str!("../../../schemas/window_metrics.avsc");

const MAGIC: [u8; 2] = [0xC3, 0x01];

#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("not Avro single-object encoding (no C3 01 header)")]
    NoHeader,
    #[error("unknown writer schema fingerprint {0}")]
    UnknownSchema(String),
    #[error("Avro: {0}")]
    Avro(String),
    #[error("Avro record field `{0}` missing or of the wrong type")]
    Field(&'static str),
    #[error("decoded event is not valid: {0}")]
    Invalid(String),
}

impl From<apache_avro::Error> for AvroError {
    fn from(err: apache_avro::Error) -> Self {
        AvroError::Avro(err.to_string())
    }
}

/// One schema and its fingerprint, parsed once.
pub struct Codec {
    schema: Schema,
    fingerprint: [u8; 8],
}

/// The most memory the decoder may set aside for one string, byte array
/// or array of a message, whatever length the message claims. apache-avro
/// allocates what a length prefix says before reading it, up to 512 MiB by
/// default: a 14-byte message on the topic could make the processor ask
/// for that much. Our fields are far shorter (ids at most 128 bytes,
/// arrays of 10); a longer one is refused as an Avro error.
pub const MAX_DECODED_FIELD: usize = 4096;

impl Codec {
    fn new(text: &str) -> Codec {
        // Set once per process, before anything is decoded (a codec is
        // built before its first decode).
        apache_avro::util::max_allocation_bytes(MAX_DECODED_FIELD);
        let schema = Schema::parse_str(text).expect("shipped schemas parse");
        let bytes = schema.fingerprint::<Rabin>().bytes;
        let fingerprint: [u8; 8] = bytes
            .as_slice()
            .try_into()
            .expect("Rabin fingerprints are 8 bytes");
        Codec {
            schema,
            fingerprint,
        }
    }

    fn encode(&self, value: Value) -> Result<Vec<u8>, AvroError> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.fingerprint);
        out.extend(apache_avro::to_avro_datum(&self.schema, value)?);
        Ok(out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, AvroError> {
        if bytes.len() < 10 || bytes[..2] != MAGIC {
            return Err(AvroError::NoHeader);
        }
        // One version of each schema so far; older ones join this check as they appear.
        if bytes[2..10] != self.fingerprint {
            return Err(AvroError::UnknownSchema(hex(&bytes[2..10])));
        }
        let mut body = &bytes[10..];
        Ok(apache_avro::from_avro_datum(&self.schema, &mut body, None)?)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn call_event_codec() -> &'static Codec {
    static CODEC: OnceLock<Codec> = OnceLock::new();
    CODEC.get_or_init(|| Codec::new(CALL_EVENT_SCHEMA))
}

fn window_metrics_codec() -> &'static Codec {
    static CODEC: OnceLock<Codec> = OnceLock::new();
    CODEC.get_or_init(|| Codec::new(WINDOW_METRICS_SCHEMA))
}

fn optional_string(value: &Option<String>) -> Value {
    match value {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(text) => Value::Union(1, Box::new(Value::String(text.clone()))),
    }
}

pub fn encode_call_event(event: &CallEvent) -> Result<Vec<u8>, AvroError> {
    let kind_index = EventKind::ALL
        .iter()
        .position(|k| *k == event.kind)
        .expect("every kind is listed") as u32;
    let value = Value::Record(vec![
        ("event_id".into(), Value::String(event.event_id.clone())),
        ("call_id".into(), optional_string(&event.call_id)),
        ("vendor".into(), Value::String(event.vendor.clone())),
        ("practice".into(), Value::String(event.practice.clone())),
        (
            "kind".into(),
            Value::Enum(kind_index, event.kind.as_str().into()),
        ),
        ("at".into(), Value::TimestampMillis(event.at.millis())),
        ("caller".into(), optional_string(&event.caller)),
        (
            "queue_position".into(),
            match event.queue_position {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(position) => Value::Union(1, Box::new(Value::Int(position as i32))),
            },
        ),
    ]);
    call_event_codec().encode(value)
}

pub fn decode_call_event(bytes: &[u8]) -> Result<CallEvent, AvroError> {
    let Value::Record(fields) = call_event_codec().decode(bytes)? else {
        return Err(AvroError::Field("record"));
    };
    let get = |name: &'static str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or(AvroError::Field(name))
    };
    let string = |name: &'static str| match get(name)? {
        Value::String(text) => Ok(text.clone()),
        _ => Err(AvroError::Field(name)),
    };
    let optional = |name: &'static str| match get(name)? {
        Value::Union(_, inner) => match inner.as_ref() {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text.clone())),
            _ => Err(AvroError::Field(name)),
        },
        _ => Err(AvroError::Field(name)),
    };
    let kind = match get("kind")? {
        Value::Enum(_, symbol) => EventKind::parse(symbol).ok_or(AvroError::Field("kind"))?,
        _ => return Err(AvroError::Field("kind")),
    };
    let at = match get("at")? {
        Value::TimestampMillis(ms) | Value::Long(ms) => Timestamp(*ms),
        _ => return Err(AvroError::Field("at")),
    };
    let queue_position = match get("queue_position")? {
        Value::Union(_, inner) => match inner.as_ref() {
            Value::Null => None,
            Value::Int(position) => {
                Some(u32::try_from(*position).map_err(|_| AvroError::Field("queue_position"))?)
            }
            _ => return Err(AvroError::Field("queue_position")),
        },
        _ => return Err(AvroError::Field("queue_position")),
    };
    let event = CallEvent {
        event_id: string("event_id")?,
        call_id: optional("call_id")?,
        vendor: string("vendor")?,
        practice: string("practice")?,
        kind,
        at,
        caller: optional("caller")?,
        queue_position,
    };
    event
        .validate()
        .map_err(|err| AvroError::Invalid(err.to_string()))?;
    Ok(event)
}

pub fn encode_window_metrics(window: &WindowMetrics) -> Result<Vec<u8>, AvroError> {
    let value = apache_avro::to_value(window)?;
    let value = value.resolve(&window_metrics_codec().schema)?;
    window_metrics_codec().encode(value)
}

pub fn decode_window_metrics(bytes: &[u8]) -> Result<WindowMetrics, AvroError> {
    let value = window_metrics_codec().decode(bytes)?;
    Ok(apache_avro::from_value::<WindowMetrics>(&value)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use callpulse_core::WindowSize;

    #[test]
    fn a_json_event_round_trips_through_avro_unchanged() {
        let lines = [
            r#"{"event_id":"e1","call_id":"c1","vendor":"generic","practice":"A81001","kind":"queued","at":"2026-11-23T08:00:00.123Z","caller":"p:9f86d081","queue_position":3}"#,
            r#"{"event_id":"e2","vendor":"twilio","practice":"Y01234","kind":"divert_111_on","at":"2026-03-29T00:59:59.999Z"}"#,
        ];
        for line in lines {
            let event = CallEvent::from_json(line).unwrap();
            let bytes = encode_call_event(&event).unwrap();
            assert_eq!(bytes[..2], MAGIC);
            let back = decode_call_event(&bytes).unwrap();
            assert_eq!(back, event);
            let json_back: serde_json::Value = serde_json::from_str(&back.to_json()).unwrap();
            let json_in: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(json_back, json_in, "JSON -> Avro -> JSON is the identity");
        }
    }

    #[test]
    fn every_kind_round_trips() {
        for kind in EventKind::ALL {
            let event = CallEvent {
                event_id: "e".into(),
                call_id: Some("c".into()),
                vendor: "generic".into(),
                practice: "A81001".into(),
                kind,
                at: Timestamp(1_795_420_800_000),
                caller: None,
                queue_position: None,
            };
            assert_eq!(
                decode_call_event(&encode_call_event(&event).unwrap()).unwrap(),
                event
            );
        }
    }

    #[test]
    fn window_metrics_round_trip() {
        let window = WindowMetrics {
            practice: "A81001".into(),
            window: WindowSize::Day,
            start: Timestamp(1_795_392_000_000),
            end: Timestamp(1_795_478_400_000),
            revision: 7,
            is_final: true,
            offered: 12,
            wait_hist: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            dq_conflicts: 2,
            ..Default::default()
        };
        assert_eq!(
            decode_window_metrics(&encode_window_metrics(&window).unwrap()).unwrap(),
            window
        );
    }

    /// Found by tests/fuzz_avro.rs: four bytes of body claimed a string of
    /// 73,790 bytes, which apache-avro allocated before reading (claims up
    /// to 512 MiB were honoured). Such a claim is now an error.
    #[test]
    fn a_huge_length_claim_is_refused_not_allocated() {
        let header = &encode_call_event(&CallEvent {
            event_id: "e1".into(),
            call_id: None,
            vendor: "generic".into(),
            practice: "A81001".into(),
            kind: EventKind::Offered,
            at: Timestamp(0),
            caller: None,
            queue_position: None,
        })
        .unwrap()[..10];
        let message = [header, &[0xfc, 0x80, 0x09, 0x00]].concat();
        match decode_call_event(&message) {
            Err(AvroError::Avro(reason)) => assert!(reason.contains("4096"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_foreign_bytes() {
        assert!(matches!(
            decode_call_event(b"{\"json\":1}"),
            Err(AvroError::NoHeader)
        ));
        let mut bytes = encode_call_event(&CallEvent::from_json(r#"{"event_id":"e","call_id":"c","vendor":"generic","practice":"A81001","kind":"offered","at":"2026-11-23T08:00:00Z"}"#).unwrap()).unwrap();
        bytes[5] ^= 0xff;
        assert!(matches!(
            decode_call_event(&bytes),
            Err(AvroError::UnknownSchema(_))
        ));
        assert!(decode_call_event(&bytes[..12]).is_err());
    }
}
