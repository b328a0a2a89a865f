//! Avro on Kafka, as Avro single-object encoding: every message starts with
//! `C3 01` and the 8-byte CRC-64-AVRO (Rabin) fingerprint of its writer
//! schema, then the Avro binary body. A reader looks the fingerprint up among
//! the schemas it knows (every version under `schemas/`, `*.avsc`) and resolves
//! the writer's schema to its own, so fields can be added with defaults
//! without a schema registry. See docs/schemas.md.
//!
//! The bodies are written and read by a codec made by hand for exactly the
//! shipped schemas (`wire` has the primitives): no generic `Value` tree and
//! no schema walk per record, which cost the processor several µs per
//! event. `reference` keeps the apache-avro codec it replaced, which the
//! tests hold it to byte for byte.

use callpulse_core::record::Histogram;
use callpulse_core::{CallEvent, EventKind, Timestamp, WindowMetrics, WindowSize};

#[doc(hidden)]
pub mod reference;
mod wire;

use wire::{write_boolean, write_int, write_long, write_string, Reader, WireError};

pub const CALL_EVENT_SCHEMA: &str = include_str!("../../../../schemas/call_event.avsc");
pub const WINDOW_METRICS_SCHEMA: &str = include_str!("../../../../schemas/window_metrics.avsc");

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

/// The most memory the decoder may set aside for one string, byte array
/// or array of a message, whatever length the message claims: a 14-byte
/// message on the topic must not make the processor ask for 512 MiB (as
/// apache-avro's default allowed). Our fields are far shorter (ids at most
/// 128 bytes, arrays of 10); a longer one is refused as an Avro error.
pub const MAX_DECODED_FIELD: usize = 4096;

/// The start of a message: the magic bytes and the writer schema's fingerprint.
fn header(fingerprint: &[u8; 8], capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(fingerprint);
    out
}

/// The Avro body of a message written with the schema of `fingerprint`.
fn body<'a>(bytes: &'a [u8], fingerprint: &[u8; 8]) -> Result<&'a [u8], AvroError> {
    if bytes.len() < 10 || bytes[..2] != MAGIC {
        return Err(AvroError::NoHeader);
    }
    // One version of each schema so far; older ones join this check as they appear.
    if bytes[2..10] != *fingerprint {
        return Err(AvroError::UnknownSchema(hex(&bytes[2..10])));
    }
    Ok(&bytes[10..])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn call_event_fingerprint() -> &'static [u8; 8] {
    &reference::call_event_codec().fingerprint
}

fn window_metrics_fingerprint() -> &'static [u8; 8] {
    &reference::window_metrics_codec().fingerprint
}

// The codec below writes and reads exactly the shipped schemas, field by
// field in their order; `reference` (apache-avro) is what the tests hold it
// to. A new schema version needs both changed.

fn write_optional_string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => write_long(out, 0),
        Some(text) => {
            write_long(out, 1);
            write_string(out, text);
        }
    }
}

pub fn encode_call_event(event: &CallEvent) -> Result<Vec<u8>, AvroError> {
    let strings = [&event.event_id, &event.vendor, &event.practice]
        .into_iter()
        .chain(&event.call_id)
        .chain(&event.caller)
        .map(String::len)
        .sum::<usize>();
    let mut out = header(call_event_fingerprint(), 10 + 40 + strings);
    write_string(&mut out, &event.event_id);
    write_optional_string(&mut out, event.call_id.as_deref());
    write_string(&mut out, &event.vendor);
    write_string(&mut out, &event.practice);
    let kind_index = EventKind::ALL
        .iter()
        .position(|kind| *kind == event.kind)
        .expect("every kind is listed");
    write_int(&mut out, kind_index as i32);
    write_long(&mut out, event.at.millis());
    write_optional_string(&mut out, event.caller.as_deref());
    match event.queue_position {
        None => write_long(&mut out, 0),
        Some(position) => {
            write_long(&mut out, 1);
            // As the apache-avro codec wrote it: a position above
            // `i32::MAX` wraps, and the decoder refuses it.
            write_int(&mut out, position as i32);
        }
    }
    Ok(out)
}

/// A record's fields, read in order; errors name the field.
struct Fields<'a> {
    reader: Reader<'a>,
}

fn in_field(name: &'static str) -> impl Fn(WireError) -> AvroError {
    move |err| AvroError::Avro(format!("field `{name}`: {err}"))
}

impl<'a> Fields<'a> {
    fn new(body: &'a [u8]) -> Fields<'a> {
        Fields {
            reader: Reader::new(body),
        }
    }

    fn str(&mut self, name: &'static str) -> Result<&'a str, AvroError> {
        self.reader
            .string(MAX_DECODED_FIELD)
            .map_err(in_field(name))
    }

    fn string(&mut self, name: &'static str) -> Result<String, AvroError> {
        self.str(name).map(str::to_owned)
    }

    fn long(&mut self, name: &'static str) -> Result<i64, AvroError> {
        self.reader.long().map_err(in_field(name))
    }

    /// Whether a `["null", T]` union holds its `T`.
    fn present(&mut self, name: &'static str) -> Result<bool, AvroError> {
        match self.long(name)? {
            0 => Ok(false),
            1 => Ok(true),
            index => Err(AvroError::Avro(format!(
                "field `{name}`: union branch {index} of a union of 2"
            ))),
        }
    }

    fn optional_string(&mut self, name: &'static str) -> Result<Option<String>, AvroError> {
        Ok(if self.present(name)? {
            Some(self.string(name)?)
        } else {
            None
        })
    }

    fn int(&mut self, name: &'static str) -> Result<i32, AvroError> {
        self.reader.int().map_err(in_field(name))
    }

    fn boolean(&mut self, name: &'static str) -> Result<bool, AvroError> {
        self.reader.boolean().map_err(in_field(name))
    }

    /// A count or sum: a `long` that is not negative.
    fn count(&mut self, name: &'static str) -> Result<u64, AvroError> {
        let value = self.long(name)?;
        u64::try_from(value)
            .map_err(|_| AvroError::Avro(format!("field `{name}`: {value} is negative")))
    }

    fn timestamp(&mut self, name: &'static str) -> Result<Timestamp, AvroError> {
        Timestamp::parse_rfc3339(self.str(name)?)
            .map_err(|err| AvroError::Avro(format!("field `{name}`: {err}")))
    }

    /// An array of exactly 10 counts, in any number of blocks.
    fn histogram(&mut self, name: &'static str) -> Result<Histogram, AvroError> {
        let mut histogram = Histogram::default();
        let mut filled = 0;
        loop {
            let count = self
                .reader
                .block_count(MAX_DECODED_FIELD)
                .map_err(in_field(name))?;
            if count == 0 {
                break;
            }
            if count > histogram.len() - filled {
                return Err(AvroError::Avro(format!(
                    "field `{name}`: more than {} buckets",
                    histogram.len()
                )));
            }
            for bucket in &mut histogram[filled..filled + count] {
                *bucket = self.count(name)?;
            }
            filled += count;
        }
        if filled < histogram.len() {
            return Err(AvroError::Avro(format!(
                "field `{name}`: {filled} buckets, not {}",
                histogram.len()
            )));
        }
        Ok(histogram)
    }
}

pub fn decode_call_event(bytes: &[u8]) -> Result<CallEvent, AvroError> {
    let mut fields = Fields::new(body(bytes, call_event_fingerprint())?);
    // Trailing bytes after the record are ignored, as apache-avro ignored them.
    let event = CallEvent {
        event_id: fields.string("event_id")?,
        call_id: fields.optional_string("call_id")?,
        vendor: fields.string("vendor")?,
        practice: fields.string("practice")?,
        kind: {
            let index = fields.int("kind")?;
            *usize::try_from(index)
                .ok()
                .and_then(|index| EventKind::ALL.get(index))
                .ok_or_else(|| {
                    AvroError::Avro(format!(
                        "field `kind`: symbol {index} of an enum of {}",
                        EventKind::ALL.len()
                    ))
                })?
        },
        at: Timestamp(fields.long("at")?),
        caller: fields.optional_string("caller")?,
        queue_position: if fields.present("queue_position")? {
            let position = fields.int("queue_position")?;
            Some(u32::try_from(position).map_err(|_| AvroError::Field("queue_position"))?)
        } else {
            None
        },
    };
    event
        .validate()
        .map_err(|err| AvroError::Invalid(err.to_string()))?;
    Ok(event)
}

/// A count or sum of a window, a `long` on the wire.
fn write_count(out: &mut Vec<u8>, name: &'static str, value: u64) -> Result<(), AvroError> {
    let value = i64::try_from(value)
        .map_err(|_| AvroError::Avro(format!("field `{name}`: {value} is too large for a long")))?;
    write_long(out, value);
    Ok(())
}

/// A histogram as one block of 10 longs and the end of the array, as
/// apache-avro writes an array.
fn write_histogram(
    out: &mut Vec<u8>,
    name: &'static str,
    histogram: &Histogram,
) -> Result<(), AvroError> {
    write_long(out, histogram.len() as i64);
    for &bucket in histogram {
        write_count(out, name, bucket)?;
    }
    write_long(out, 0);
    Ok(())
}

pub fn encode_window_metrics(window: &WindowMetrics) -> Result<Vec<u8>, AvroError> {
    let mut out = header(
        window_metrics_fingerprint(),
        10 + 128 + window.practice.len(),
    );
    write_window_metrics(&mut out, window)?;
    Ok(out)
}

fn write_window_metrics(out: &mut Vec<u8>, w: &WindowMetrics) -> Result<(), AvroError> {
    write_string(out, &w.practice);
    write_string(out, w.window.as_str());
    write_string(out, &w.start.to_rfc3339_seconds());
    write_string(out, &w.end.to_rfc3339_seconds());
    write_count(out, "revision", w.revision)?;
    write_boolean(out, w.is_final);
    write_count(out, "offered", w.offered)?;
    write_count(out, "answered", w.answered)?;
    write_count(out, "callback_requested", w.callback_requested)?;
    write_count(out, "abandoned", w.abandoned)?;
    write_count(out, "missed", w.missed)?;
    write_count(out, "ivr_ended", w.ivr_ended)?;
    write_count(out, "diverted_111", w.diverted_111)?;
    write_count(out, "diverted_111_core", w.diverted_111_core)?;
    write_count(out, "callbacks_made", w.callbacks_made)?;
    write_count(out, "unique_callers", w.unique_callers)?;
    write_count(out, "peak_waiting", w.peak_waiting)?;
    write_count(out, "wait_count", w.wait_count)?;
    write_count(out, "wait_ms_sum", w.wait_ms_sum)?;
    write_count(out, "wait_ms_max", w.wait_ms_max)?;
    write_histogram(out, "wait_hist", &w.wait_hist)?;
    write_count(out, "abandon_count", w.abandon_count)?;
    write_count(out, "abandon_ms_sum", w.abandon_ms_sum)?;
    write_count(out, "abandon_ms_max", w.abandon_ms_max)?;
    write_histogram(out, "abandon_hist", &w.abandon_hist)?;
    write_count(out, "talk_count", w.talk_count)?;
    write_count(out, "talk_ms_sum", w.talk_ms_sum)?;
    write_count(out, "talk_ms_max", w.talk_ms_max)?;
    write_histogram(out, "talk_hist", &w.talk_hist)?;
    write_count(out, "callback_delay_count", w.callback_delay_count)?;
    write_count(out, "callback_delay_ms_sum", w.callback_delay_ms_sum)?;
    write_count(out, "dq_duplicates", w.dq_duplicates)?;
    write_count(out, "dq_conflicts", w.dq_conflicts)
}

pub fn decode_window_metrics(bytes: &[u8]) -> Result<WindowMetrics, AvroError> {
    let mut f = Fields::new(body(bytes, window_metrics_fingerprint())?);
    // Trailing bytes after the record are ignored, as apache-avro ignored them.
    Ok(WindowMetrics {
        practice: f.string("practice")?,
        window: {
            let text = f.str("window")?;
            WindowSize::parse(text).ok_or_else(|| {
                AvroError::Avro(format!(
                    "field `window`: `{}` is not 1m, 15m, 1h or 1d",
                    text.chars().take(20).collect::<String>()
                ))
            })?
        },
        start: f.timestamp("start")?,
        end: f.timestamp("end")?,
        revision: f.count("revision")?,
        is_final: f.boolean("final")?,
        offered: f.count("offered")?,
        answered: f.count("answered")?,
        callback_requested: f.count("callback_requested")?,
        abandoned: f.count("abandoned")?,
        missed: f.count("missed")?,
        ivr_ended: f.count("ivr_ended")?,
        diverted_111: f.count("diverted_111")?,
        diverted_111_core: f.count("diverted_111_core")?,
        callbacks_made: f.count("callbacks_made")?,
        unique_callers: f.count("unique_callers")?,
        peak_waiting: f.count("peak_waiting")?,
        wait_count: f.count("wait_count")?,
        wait_ms_sum: f.count("wait_ms_sum")?,
        wait_ms_max: f.count("wait_ms_max")?,
        wait_hist: f.histogram("wait_hist")?,
        abandon_count: f.count("abandon_count")?,
        abandon_ms_sum: f.count("abandon_ms_sum")?,
        abandon_ms_max: f.count("abandon_ms_max")?,
        abandon_hist: f.histogram("abandon_hist")?,
        talk_count: f.count("talk_count")?,
        talk_ms_sum: f.count("talk_ms_sum")?,
        talk_ms_max: f.count("talk_ms_max")?,
        talk_hist: f.histogram("talk_hist")?,
        callback_delay_count: f.count("callback_delay_count")?,
        callback_delay_ms_sum: f.count("callback_delay_ms_sum")?,
        dq_duplicates: f.count("dq_duplicates")?,
        dq_conflicts: f.count("dq_conflicts")?,
    })
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
    fn event_kinds_are_the_schema_symbols_in_order() {
        let apache_avro::Schema::Record(record) = &reference::call_event_codec().schema else {
            panic!("CallEvent is a record");
        };
        let kind = record.fields.iter().find(|f| f.name == "kind").unwrap();
        let apache_avro::Schema::Enum(kinds) = &kind.schema else {
            panic!("kind is an enum");
        };
        let ours: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds.symbols, ours);
    }

    fn queued() -> CallEvent {
        CallEvent::from_json(r#"{"event_id":"e","call_id":"c","vendor":"generic","practice":"A81001","kind":"queued","at":"2026-11-23T08:00:00Z","caller":"p:1","queue_position":4}"#).unwrap()
    }

    /// apache-avro read none past the record, and neither do we.
    #[test]
    fn bytes_after_the_record_are_ignored_as_before() {
        let bytes = [encode_call_event(&queued()).unwrap(), vec![0xff, 0x00]].concat();
        assert_eq!(decode_call_event(&bytes).unwrap(), queued());
        assert_eq!(reference::decode_call_event(&bytes).unwrap(), queued());
        let window = WindowMetrics {
            start: Timestamp(1_795_392_000_000),
            end: Timestamp(1_795_392_060_000),
            ..Default::default()
        };
        let bytes = [encode_window_metrics(&window).unwrap(), vec![0x02]].concat();
        assert_eq!(decode_window_metrics(&bytes).unwrap(), window);
        assert_eq!(reference::decode_window_metrics(&bytes).unwrap(), window);
    }

    /// apache-avro read the end of the input where a union's branch or a
    /// string's bytes should be as null, so an event cut short after `at`
    /// or inside `caller` was taken without its caller and queue position.
    #[test]
    fn an_event_cut_short_is_refused_where_apache_avro_read_null() {
        let bytes = encode_call_event(&queued()).unwrap();
        // ... `at`, caller: branch 1, 3 bytes "p:1", queue_position: branch 1, 4.
        let caller = bytes.len() - 7;
        let without_caller = CallEvent {
            caller: None,
            queue_position: None,
            ..queued()
        };
        for cut in [caller, caller + 2] {
            let short = &bytes[..cut];
            assert_eq!(reference::decode_call_event(short).unwrap(), without_caller);
            match decode_call_event(short) {
                Err(AvroError::Avro(reason)) => {
                    assert!(
                        reason.contains("field `caller`: the message is cut short"),
                        "{reason}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn unknown_union_branches_and_enum_symbols_are_refused() {
        let event = CallEvent::from_json(r#"{"event_id":"e","vendor":"generic","practice":"A81001","kind":"divert_111_on","at":"2026-11-23T08:00:00Z"}"#).unwrap();
        let good = encode_call_event(&event).unwrap();
        // Body: "e", call_id null, "generic", "A81001", kind, at, two nulls.
        let (call_id, kind) = (12, 12 + 1 + 8 + 7);
        assert_eq!((good[call_id], good[kind]), (0x00, 0x14));
        for (at, byte, reason) in [
            (
                call_id,
                0x04,
                "field `call_id`: union branch 2 of a union of 2",
            ),
            (
                call_id,
                0x01,
                "field `call_id`: union branch -1 of a union of 2",
            ),
            (kind, 0x18, "field `kind`: symbol 12 of an enum of 12"),
            (kind, 0x01, "field `kind`: symbol -1 of an enum of 12"),
            (
                good.len() - 1,
                0x02,
                "field `queue_position`: the message is cut short",
            ),
        ] {
            let mut bytes = good.clone();
            bytes[at] = byte;
            match decode_call_event(&bytes) {
                Err(AvroError::Avro(message)) => assert_eq!(message, reason),
                other => panic!("{other:?}"),
            }
            assert!(reference::decode_call_event(&bytes).is_err());
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
