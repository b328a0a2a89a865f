//! The Avro codec of the Kafka topics, per record: the hand-written codec
//! (`new`) against the apache-avro `Value` codec it replaced (`apache`),
//! on a queued event with every optional field and a day window with
//! filled histograms.
//!
//!     cargo bench -p callpulse-runtime --bench avro
//!
//! Compare `new` with `apache` within one run: the machine is shared.

use std::hint::black_box;

use callpulse_core::{CallEvent, EventKind, Timestamp, WindowMetrics, WindowSize};
use callpulse_runtime::avro::{self, reference};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

fn event() -> CallEvent {
    CallEvent {
        event_id: "c1042-7-1".into(),
        call_id: Some("c1042-7".into()),
        vendor: "generic".into(),
        practice: "A81042".into(),
        kind: EventKind::Queued,
        at: Timestamp(1_795_423_512_345),
        caller: Some("p:9f86d081884c7d65".into()),
        queue_position: Some(3),
    }
}

fn window() -> WindowMetrics {
    let histogram = |scale: u64| std::array::from_fn(|i| (i as u64 * 7 + 3) * scale);
    WindowMetrics {
        practice: "A81042".into(),
        window: WindowSize::Day,
        start: Timestamp(1_795_392_000_000),
        end: Timestamp(1_795_478_400_000),
        revision: 12,
        is_final: false,
        offered: 412,
        answered: 301,
        callback_requested: 40,
        abandoned: 35,
        missed: 6,
        ivr_ended: 20,
        diverted_111: 4,
        diverted_111_core: 2,
        callbacks_made: 38,
        unique_callers: 377,
        peak_waiting: 14,
        wait_count: 301,
        wait_ms_sum: 38_412_000,
        wait_ms_max: 1_204_000,
        wait_hist: histogram(1),
        abandon_count: 35,
        abandon_ms_sum: 6_120_000,
        abandon_ms_max: 610_000,
        abandon_hist: histogram(1),
        talk_count: 290,
        talk_ms_sum: 87_000_000,
        talk_ms_max: 2_400_000,
        talk_hist: histogram(2),
        callback_delay_count: 38,
        callback_delay_ms_sum: 91_000_000,
        dq_duplicates: 3,
        dq_conflicts: 1,
    }
}

/// `name/new` and `name/apache`, one after the other.
fn compare<R, S>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut new: impl FnMut() -> R,
    mut apache: impl FnMut() -> S,
) {
    group.bench_function(format!("{name}/new"), |b| b.iter(&mut new));
    group.bench_function(format!("{name}/apache"), |b| b.iter(&mut apache));
}

fn codec(c: &mut Criterion) {
    let event = event();
    let window = window();
    let event_bytes = avro::encode_call_event(&event).unwrap();
    let window_bytes = avro::encode_window_metrics(&window).unwrap();
    assert_eq!(event_bytes, reference::encode_call_event(&event).unwrap());
    assert_eq!(
        window_bytes,
        reference::encode_window_metrics(&window).unwrap()
    );

    let mut group = c.benchmark_group("avro");
    group.throughput(Throughput::Elements(1));
    compare(
        &mut group,
        "decode_call_event",
        || avro::decode_call_event(black_box(&event_bytes)).unwrap(),
        || reference::decode_call_event(black_box(&event_bytes)).unwrap(),
    );
    compare(
        &mut group,
        "encode_call_event",
        || avro::encode_call_event(black_box(&event)).unwrap(),
        || reference::encode_call_event(black_box(&event)).unwrap(),
    );
    compare(
        &mut group,
        "encode_window_metrics",
        || avro::encode_window_metrics(black_box(&window)).unwrap(),
        || reference::encode_window_metrics(black_box(&window)).unwrap(),
    );
    compare(
        &mut group,
        "decode_window_metrics",
        || avro::decode_window_metrics(black_box(&window_bytes)).unwrap(),
        || reference::decode_window_metrics(black_box(&window_bytes)).unwrap(),
    );
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
