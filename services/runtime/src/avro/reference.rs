//! The same four functions through apache-avro's generic `Value` tree: the
//! codec callpulse used until the hand-written one of `super`. Kept as the
//! reference the tests hold the hand-written codec to, and for the
//! benchmark (`benches/avro.rs`) to compare with; not used by the services.
//! It also parses the shipped schemas, for their fingerprints.

use std::sync::OnceLock;

use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::Schema;
use callpulse_core::{CallEvent, EventKind, Timestamp, WindowMetrics};

use super::{body, header, AvroError, CALL_EVENT_SCHEMA, MAX_DECODED_FIELD, WINDOW_METRICS_SCHEMA};

impl From<apache_avro::Error> for AvroError {
    fn from(err: apache_avro::Error) -> Self {
        AvroError::Avro(err.to_string())
    }
}

/// One schema and its fingerprint, parsed once.
pub struct Codec {
    pub schema: Schema,
    pub fingerprint: [u8; 8],
}

impl Codec {
    fn new(text: &str) -> Codec {
        // apache-avro allocates what a length prefix says before reading
        // it, up to 512 MiB by default. Set once per process, before
        // anything is decoded (a codec is built before its first decode).
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
        let mut out = header(&self.fingerprint, 128);
        out.extend(apache_avro::to_avro_datum(&self.schema, value)?);
        Ok(out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, AvroError> {
        let mut body = body(bytes, &self.fingerprint)?;
        Ok(apache_avro::from_avro_datum(&self.schema, &mut body, None)?)
    }
}

pub fn call_event_codec() -> &'static Codec {
    static CODEC: OnceLock<Codec> = OnceLock::new();
    CODEC.get_or_init(|| Codec::new(CALL_EVENT_SCHEMA))
}

pub fn window_metrics_codec() -> &'static Codec {
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
