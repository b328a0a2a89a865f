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
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

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
    group.bench_function("decode_call_event/new", |b| {
        b.iter(|| avro::decode_call_event(black_box(&event_bytes)).unwrap())
    });
    group.bench_function("decode_call_event/apache", |b| {
        b.iter(|| reference::decode_call_event(black_box(&event_bytes)).unwrap())
    });
    group.bench_function("encode_call_event/new", |b| {
        b.iter(|| avro::encode_call_event(black_box(&event)).unwrap())
    });
    group.bench_function("encode_call_event/apache", |b| {
        b.iter(|| reference::encode_call_event(black_box(&event)).unwrap())
    });
    group.bench_function("encode_window_metrics/new", |b| {
        b.iter(|| avro::encode_window_metrics(black_box(&window)).unwrap())
    });
    group.bench_function("encode_window_metrics/apache", |b| {
        b.iter(|| reference::encode_window_metrics(black_box(&window)).unwrap())
    });
    group.bench_function("decode_window_metrics/new", |b| {
        b.iter(|| avro::decode_window_metrics(black_box(&window_bytes)).unwrap())
    });
    group.bench_function("decode_window_metrics/apache", |b| {
        b.iter(|| reference::decode_window_metrics(black_box(&window_bytes)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
