//! The core engine on a realistic stream: many practices, mixed outcomes,
//! events in time order as a partition delivers them.
//!
//!     cargo bench -p callpulse-core --bench engine
//!
//! Throughput is reported in events per second (criterion's "elem/s").

use callpulse_core::batch::Batch;
use callpulse_core::replay::{replay_with, ReplayOptions};
use callpulse_core::{CallEvent, CoreHours, Engine, EngineConfig, EventKind, Lateness, Timestamp};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A deterministic stream: `practices` practices, a call every `gap_ms` each,
/// outcomes cycling through answered, abandoned, callback, menu and missed.
fn stream(practices: u32, calls_per_practice: u32) -> Vec<CallEvent> {
    let start = 1_795_420_800_000i64; // 2026-11-23T08:00:00Z
    let mut events = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for practice in 0..practices {
        let code = format!("A{:05}", 81_001 + practice);
        for call in 0..calls_per_practice {
            let call_id = format!("c{practice}-{call}");
            let t0 = start + i64::from(call) * 45_000 + (next() % 30_000) as i64;
            let wait = (next() % 240_000) as i64;
            let mut push = |kind: EventKind, at: i64, n: u32| {
                events.push(CallEvent {
                    event_id: format!("{call_id}-{n}"),
                    call_id: Some(call_id.clone()),
                    vendor: "generic".into(),
                    practice: code.clone(),
                    kind,
                    at: Timestamp(at),
                    caller: (kind == EventKind::Offered)
                        .then(|| format!("caller-{}", next() % 2000)),
                    queue_position: None,
                });
            };
            push(EventKind::Offered, t0, 0);
            match call % 5 {
                0 | 1 => {
                    push(EventKind::Queued, t0 + 10_000, 1);
                    push(EventKind::Answered, t0 + 10_000 + wait, 2);
                    push(EventKind::Ended, t0 + 10_000 + wait + 300_000, 3);
                }
                2 => {
                    push(EventKind::Queued, t0 + 10_000, 1);
                    push(EventKind::Abandoned, t0 + 10_000 + wait, 2);
                }
                3 => push(EventKind::IvrEnded, t0 + 20_000, 1),
                _ => {
                    push(EventKind::Queued, t0 + 10_000, 1);
                    push(EventKind::CallbackRequested, t0 + 10_000 + wait / 2, 2);
                    push(EventKind::CallbackMade, t0 + 3_600_000, 3);
                }
            }
        }
    }
    events.sort_by_key(|e| e.at);
    events
}

fn engine(c: &mut Criterion) {
    let events = stream(300, 200);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    group.bench_function("streaming_5min_lateness", |b| {
        b.iter(|| {
            let config = EngineConfig {
                lateness: Lateness::Bounded {
                    allowed_ms: 300_000,
                },
                ..EngineConfig::default()
            };
            let mut engine = Engine::new(config);
            for event in &events {
                engine.ingest(event);
            }
            engine.finish().windows.len()
        })
    });
    group.bench_function("replay_in_memory", |b| {
        b.iter(|| {
            let mut engine = Engine::new(EngineConfig::replay(CoreHours::shipped()));
            for event in &events {
                engine.ingest(event);
            }
            engine.finish().windows.len()
        })
    });
    group.bench_function("batch_in_memory", |b| {
        b.iter(|| {
            let mut batch = Batch::new(CoreHours::shipped());
            for event in &events {
                batch.ingest(event);
            }
            batch.finish(false).windows.len()
        })
    });
    let lines: String = events.iter().map(|e| e.to_json() + "\n").collect();
    group.bench_function("replay_from_json_lines", |b| {
        b.iter(|| {
            let options = ReplayOptions {
                core_hours: CoreHours::shipped(),
                call_summaries: false,
                alerts: false,
            };
            replay_with(lines.as_bytes(), options)
                .unwrap()
                .windows
                .len()
        })
    });
    group.finish();
}

/// Printing instants, as window bounds and call summaries do several times
/// per event: the hand-written form against chrono's format string.
fn printing(c: &mut Criterion) {
    let instants: Vec<Timestamp> = (0..1_000)
        .map(|i| Timestamp(1_795_420_800_000 + i * 61_001))
        .collect();
    let mut group = c.benchmark_group("time");
    group.throughput(Throughput::Elements(instants.len() as u64));
    group.bench_function("to_rfc3339_millis", |b| {
        b.iter(|| {
            instants
                .iter()
                .map(|t| t.to_rfc3339_millis().len())
                .sum::<usize>()
        })
    });
    group.bench_function("chrono_format_millis", |b| {
        b.iter(|| {
            instants
                .iter()
                .map(|t| {
                    chrono::DateTime::from_timestamp_millis(t.millis())
                        .unwrap()
                        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                        .to_string()
                        .len()
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, engine, printing);
criterion_main!(benches);
