//! The hand-written Avro codec (`callpulse_runtime::avro`) against the
//! apache-avro codec it replaced (`avro::reference`), on arbitrary call
//! events and window records: the same bytes written, the same records (or
//! refusals) read, and any block layout of the histogram arrays that an
//! Avro writer may choose read the same.
//!
//! The generators make arbitrary field values, not realistic streams (the
//! engine's tests have those): long, non-ASCII and empty strings, every
//! kind, timestamps in and far out of range, and counts up to and past the
//! largest Avro long.

use apache_avro::types::Value;
use apache_avro::Schema;
use callpulse_core::record::Histogram;
use callpulse_core::{CallEvent, EventKind, Timestamp, WindowMetrics, WindowSize};
use callpulse_runtime::avro::{
    self, reference, AvroError, MAX_DECODED_FIELD, WINDOW_METRICS_SCHEMA,
};
use proptest::prelude::*;

mod support;
use support::decoders_agree;

/// Whole seconds from 2000 to 2100: the instants a window bound can be.
fn in_range_seconds() -> impl Strategy<Value = Timestamp> {
    (946_684_800i64..4_102_444_800).prop_map(|s| Timestamp(s * 1000))
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        8 => (946_684_800_000i64..4_102_444_800_000).prop_map(Timestamp),
        1 => any::<i64>().prop_map(Timestamp),
    ]
}

/// Strings of every sort, mostly short; now and then past the 128 bytes an
/// id may have, or past what the decoder reads at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "\\PC{0,24}",
        1 => "\\PC{100,200}",
        1 => Just("x".repeat(MAX_DECODED_FIELD + 1)),
    ]
}

/// Events that validate, mostly; the rest break one rule or another.
fn call_event() -> impl Strategy<Value = CallEvent> {
    let id = prop_oneof![8 => "[a-zA-Z0-9:_-]{1,40}", 1 => text()];
    let optional_id = prop::option::weighted(0.9, id.clone());
    (
        (id.clone(), optional_id.clone()),
        prop_oneof![8 => "[a-z][a-z0-9_-]{0,15}", 1 => text()],
        prop_oneof![8 => "[A-Z][0-9]{5}", 1 => text()],
        prop::sample::select(EventKind::ALL.to_vec()),
        timestamp(),
        optional_id,
        prop::option::weighted(0.15, prop_oneof![4 => 0u32..1000, 1 => any::<u32>()]),
    )
        .prop_map(
            |((event_id, call_id), vendor, practice, kind, at, caller, queue_position)| CallEvent {
                event_id,
                call_id,
                vendor,
                practice,
                kind,
                at,
                caller,
                queue_position,
            },
        )
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0u64..10_000,
        2 => 0..=i64::MAX as u64,
        1 => Just(i64::MAX as u64),
    ]
}

/// Window records that encode, with now and then one count past the
/// largest long (which neither codec can write).
fn window_metrics() -> impl Strategy<Value = WindowMetrics> {
    (
        text(),
        prop::sample::select(WindowSize::ALL.to_vec()),
        (in_range_seconds(), in_range_seconds()),
        any::<bool>(),
        prop::collection::vec(count(), 27),
        prop::array::uniform3(prop::array::uniform10(count())),
        prop::option::weighted(0.05, (0usize..34, (i64::MAX as u64 + 1)..=u64::MAX)),
    )
        .prop_map(
            |(practice, window, (start, end), is_final, c, [wait, abandon, talk], too_large)| {
                let mut w = WindowMetrics {
                    practice,
                    window,
                    start,
                    end,
                    revision: c[0],
                    is_final,
                    offered: c[1],
                    answered: c[2],
                    callback_requested: c[3],
                    abandoned: c[4],
                    missed: c[5],
                    ivr_ended: c[6],
                    diverted_111: c[7],
                    diverted_111_core: c[8],
                    callbacks_made: c[9],
                    unique_callers: c[10],
                    peak_waiting: c[11],
                    wait_count: c[12],
                    wait_ms_sum: c[13],
                    wait_ms_max: c[14],
                    wait_hist: wait,
                    abandon_count: c[15],
                    abandon_ms_sum: c[16],
                    abandon_ms_max: c[17],
                    abandon_hist: abandon,
                    talk_count: c[18],
                    talk_ms_sum: c[19],
                    talk_ms_max: c[20],
                    talk_hist: talk,
                    callback_delay_count: c[21],
                    callback_delay_ms_sum: c[22],
                    dq_duplicates: c[23],
                    dq_conflicts: c[24],
                };
                if let Some((field, value)) = too_large {
                    match field {
                        0..=29 => {
                            [&mut w.wait_hist, &mut w.abandon_hist, &mut w.talk_hist][field / 10]
                                [field % 10] = value
                        }
                        30 => w.revision = value,
                        31 => w.offered = value,
                        32 => w.wait_ms_sum = value,
                        _ => w.dq_conflicts = value,
                    }
                }
                w
            },
        )
}

/// How one histogram is cut into blocks: item counts adding up to 10, and
/// for each whether it is written as a negative count with a byte size.
#[derive(Debug, Clone)]
struct Blocks(Vec<(usize, bool)>);

fn blocks() -> impl Strategy<Value = Blocks> {
    prop::collection::vec((1usize..=10, any::<bool>()), 1..10).prop_map(|cuts| {
        let mut left = 10;
        let mut blocks = Vec::new();
        for (len, negative) in cuts {
            let len = len.min(left);
            if len > 0 {
                blocks.push((len, negative));
                left -= len;
            }
        }
        if left > 0 {
            blocks.push((left, false));
        }
        Blocks(blocks)
    })
}

fn long(n: i64) -> Vec<u8> {
    apache_avro::to_avro_datum(&Schema::Long, Value::Long(n)).unwrap()
}

/// `window` as apache-avro writes it, field by field with the schema's
/// field schemas, but its three histograms cut into `blocks` (as a writer
/// that streams arrays in blocks, such as Java's, may write them).
fn written_in_blocks(window: &WindowMetrics, blocks: [&Blocks; 3]) -> Vec<u8> {
    let schema = Schema::parse_str(WINDOW_METRICS_SCHEMA).unwrap();
    let Schema::Record(record) = &schema else {
        panic!("WindowMetrics is a record")
    };
    let Value::Record(values) = apache_avro::to_value(window)
        .unwrap()
        .resolve(&schema)
        .unwrap()
    else {
        panic!("a record")
    };
    let mut message = reference::encode_window_metrics(window).unwrap()[..10].to_vec();
    let mut histograms = blocks.into_iter();
    for (field, (_, value)) in record.fields.iter().zip(values) {
        let Value::Array(items) = value else {
            message.extend(apache_avro::to_avro_datum(&field.schema, value).unwrap());
            continue;
        };
        let mut items = items.into_iter();
        for &(len, negative) in &histograms.next().unwrap().0 {
            let block: Vec<u8> = items
                .by_ref()
                .take(len)
                .flat_map(|item| apache_avro::to_avro_datum(&Schema::Long, item).unwrap())
                .collect();
            if negative {
                message.extend(long(-(len as i64)));
                message.extend(long(block.len() as i64));
            } else {
                message.extend(long(len as i64));
            }
            message.extend(block);
        }
        message.extend(long(0));
    }
    message
}

fn sample_window() -> WindowMetrics {
    let histogram = |scale: u64| -> Histogram { std::array::from_fn(|i| i as u64 * scale) };
    WindowMetrics {
        practice: "A81001".into(),
        window: WindowSize::Hour,
        start: Timestamp(1_795_420_800_000),
        end: Timestamp(1_795_424_400_000),
        revision: 3,
        is_final: true,
        offered: 40,
        wait_hist: histogram(1),
        abandon_hist: histogram(1000),
        talk_hist: histogram(1 << 40),
        ..Default::default()
    }
}

#[test]
fn histograms_written_in_several_blocks_with_negative_counts_decode_the_same() {
    let window = sample_window();
    let one = Blocks(vec![(10, false)]);
    let several = Blocks(vec![(3, false), (4, true), (2, false), (1, true)]);
    let negative = Blocks(vec![(10, true)]);
    let bytes = written_in_blocks(&window, [&several, &negative, &one]);
    assert_ne!(bytes, avro::encode_window_metrics(&window).unwrap());
    assert_eq!(reference::decode_window_metrics(&bytes).unwrap(), window);
    assert_eq!(avro::decode_window_metrics(&bytes).unwrap(), window);
    // One block of 10: what apache-avro itself writes.
    assert_eq!(
        written_in_blocks(&window, [&one, &one, &one]),
        reference::encode_window_metrics(&window).unwrap()
    );
}

#[test]
fn a_histogram_of_another_length_is_refused() {
    let window = sample_window();
    let good = avro::encode_window_metrics(&window).unwrap();
    // wait_hist: a block of 10 (0x14), 10 one-byte longs, the end (0x00).
    let start = 10 + good[10..].iter().position(|&b| b == 0x14).unwrap();
    let nine = [
        &good[..start],
        &[0x12],
        &good[start + 1..start + 10],
        &good[start + 11..],
    ]
    .concat();
    let eleven = [
        &good[..start],
        &[0x16],
        &good[start + 1..start + 11],
        &[0x00],
        &good[start + 11..],
    ]
    .concat();
    for (bytes, reason) in [
        (nine, "9 buckets, not 10"),
        (eleven, "more than 10 buckets"),
    ] {
        match avro::decode_window_metrics(&bytes) {
            Err(AvroError::Avro(message)) => {
                assert!(
                    message.contains(&format!("field `wait_hist`: {reason}")),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn call_events_are_written_and_read_as_apache_avro_did(event in call_event()) {
        let old = reference::encode_call_event(&event).unwrap();
        let new = avro::encode_call_event(&event).unwrap();
        prop_assert_eq!(&new, &old);
        decoders_agree(avro::decode_call_event(&old), reference::decode_call_event(&old), &[])?;
        if event.validate().is_ok() && event.queue_position.is_none_or(|p| p <= i32::MAX as u32) {
            prop_assert_eq!(avro::decode_call_event(&new).unwrap(), event);
        }
    }

    #[test]
    fn window_records_are_written_and_read_as_apache_avro_did(window in window_metrics()) {
        match (avro::encode_window_metrics(&window), reference::encode_window_metrics(&window)) {
            (Ok(new), Ok(old)) => {
                prop_assert_eq!(&new, &old);
                decoders_agree(avro::decode_window_metrics(&old), reference::decode_window_metrics(&old), &[])?;
                if window.practice.len() <= MAX_DECODED_FIELD {
                    prop_assert_eq!(avro::decode_window_metrics(&new).unwrap(), window);
                }
            }
            (Err(AvroError::Avro(_)), Err(AvroError::Avro(_))) => {}
            (new, old) => prop_assert!(false, "new {:?}, apache-avro {:?}", new, old),
        }
    }

    #[test]
    fn any_block_layout_of_the_histograms_reads_the_same(
        window in window_metrics(),
        layout in prop::array::uniform3(blocks()),
    ) {
        prop_assume!(window.practice.len() <= MAX_DECODED_FIELD);
        prop_assume!(avro::encode_window_metrics(&window).is_ok());
        let bytes = written_in_blocks(&window, [&layout[0], &layout[1], &layout[2]]);
        prop_assert_eq!(reference::decode_window_metrics(&bytes).unwrap(), window.clone());
        prop_assert_eq!(avro::decode_window_metrics(&bytes).unwrap(), window);
    }
}
