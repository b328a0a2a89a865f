//! Fuzzing the Avro decoders of the Kafka topics (`decode_call_event`,
//! `decode_window_metrics`): anyone who can write to the broker can put
//! any bytes there, and the processor and the sink read them.
//!
//! Inputs: arbitrary bytes behind a valid header, and valid encodings
//! mutated (cut short, bytes flipped, inserted or deleted, a length prefix
//! made huge). Properties: never a panic, and bounded memory: a message of
//! N bytes never makes the decoder ask for one block of memory much larger
//! than N (before `MAX_DECODED_FIELD`, 14 bytes could claim 512 MiB). A
//! counting allocator (this test binary only) measures it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use callpulse_core::{CallEvent, EventKind, Timestamp, WindowMetrics, WindowSize};
use callpulse_runtime::avro::{
    decode_call_event, decode_window_metrics, encode_call_event, encode_window_metrics, reference,
    MAX_DECODED_FIELD,
};
use proptest::prelude::*;

mod support;
use support::decoders_agree;

/// The system allocator, noting the largest single request of this thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.with(|largest| largest.set(largest.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.with(|largest| largest.set(largest.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest block `decode` asked for.
fn largest_allocation(decode: impl FnOnce()) -> usize {
    LARGEST.with(|largest| largest.set(0));
    decode();
    LARGEST.with(Cell::get)
}

/// Room for the decoder's own tables and buffers, whatever the message:
/// an array whose count claims `MAX_DECODED_FIELD` items reserves room for
/// that many decoded values before reading them.
const FIXED_ALLOWANCE: usize = MAX_DECODED_FIELD * std::mem::size_of::<apache_avro::types::Value>();

fn event() -> CallEvent {
    CallEvent {
        event_id: "e1".into(),
        call_id: Some("c1".into()),
        vendor: "generic".into(),
        practice: "A81001".into(),
        kind: EventKind::Queued,
        at: Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap(),
        caller: Some("p:0123456789abcdef".into()),
        queue_position: Some(3),
    }
}

fn window() -> WindowMetrics {
    WindowMetrics {
        practice: "A81001".into(),
        window: WindowSize::Day,
        start: Timestamp(1_795_392_000_000),
        end: Timestamp(1_795_478_400_000),
        revision: 7,
        offered: 12,
        wait_hist: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        ..Default::default()
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(f64),
    Flip(f64, u8),
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        at.clone().prop_map(Mutation::Truncate),
        (at.clone(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        (
            at.clone(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..12),
                // Zig-zag varints: huge positive and negative lengths and counts.
                Just(vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
                Just(vec![
                    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
                ]),
                Just(vec![
                    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01
                ]),
                Just(vec![0x01]),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (at, 1usize..16).prop_map(|(at, len)| Mutation::Delete(at, len)),
    ]
}

/// Mutates the body only: a broken header is refused before any decoding.
fn apply(mutations: &[Mutation], valid: &[u8]) -> Vec<u8> {
    let (header, body) = valid.split_at(10);
    let mut body = body.to_vec();
    let index = |at: f64, len: usize| ((at * len as f64) as usize).min(len.saturating_sub(1));
    for mutation in mutations {
        match mutation {
            Mutation::Truncate(at) => body.truncate(index(*at, body.len() + 1)),
            Mutation::Flip(at, mask) if !body.is_empty() => {
                let i = index(*at, body.len());
                body[i] ^= mask;
            }
            Mutation::Insert(at, bytes) => {
                let i = index(*at, body.len() + 1);
                body.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(at, len) if !body.is_empty() => {
                let i = index(*at, body.len());
                body.drain(i..(i + len).min(body.len()));
            }
            Mutation::Flip(..) | Mutation::Delete(..) => {}
        }
    }
    [header, &body].concat()
}

/// What the hand-written decoders refuse where apache-avro read a record:
/// input cut short where apache-avro read null, and a histogram of more
/// than 10 buckets (of which apache-avro kept the first 10).
const STRICTER: [&str; 2] = ["cut short", "more than 10 buckets"];

/// Messages to decode: `valid` mutated, or arbitrary bytes behind its header.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let header = valid[..10].to_vec();
    prop_oneof![
        4 => prop::collection::vec(mutation(), 1..4).prop_map(move |m| apply(&m, &valid)),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(move |body| [&header[..], &body].concat()),
    ]
}

#[test]
fn valid_encodings_decode() {
    assert_eq!(
        decode_call_event(&encode_call_event(&event()).unwrap()).unwrap(),
        event()
    );
    assert_eq!(
        decode_window_metrics(&encode_window_metrics(&window()).unwrap()).unwrap(),
        window()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn call_events_decode_or_are_refused_in_bounded_memory(
        mutations in prop::collection::vec(mutation(), 1..4),
        arbitrary in prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..64)),
    ) {
        let valid = encode_call_event(&event()).unwrap();
        let bytes = match arbitrary {
            Some(body) => [&valid[..10], &body].concat(),
            None => apply(&mutations, &valid),
        };
        let largest = largest_allocation(|| {
            let _ = decode_call_event(&bytes);
        });
        prop_assert!(largest <= FIXED_ALLOWANCE + 16 * bytes.len(), "{} bytes asked for a message of {}", largest, bytes.len());
    }

    #[test]
    fn window_metrics_decode_or_are_refused_in_bounded_memory(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = apply(&mutations, &encode_window_metrics(&window()).unwrap());
        let largest = largest_allocation(|| {
            let _ = decode_window_metrics(&bytes);
        });
        prop_assert!(largest <= FIXED_ALLOWANCE + 16 * bytes.len(), "{} bytes asked for a message of {}", largest, bytes.len());
    }

    #[test]
    fn the_decoders_accept_no_more_than_apache_avro_did(
        event in damaged(encode_call_event(&event()).unwrap()),
        window in damaged(encode_window_metrics(&window()).unwrap()),
    ) {
        decoders_agree(decode_call_event(&event), reference::decode_call_event(&event), &STRICTER)?;
        decoders_agree(decode_window_metrics(&window), reference::decode_window_metrics(&window), &STRICTER)?;
    }
}
