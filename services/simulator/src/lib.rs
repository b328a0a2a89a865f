//! Synthetic GP practice call traffic as canonical events, deterministic for a seed.
//!
//! - [`model`]: the national model, pure (docs/simulator.md): practices from
//!   the organisations file, demand by list size, the daily and weekly shape,
//!   staffed queues, abandons, redials, callbacks, voicemail, 111 diversions,
//!   and faults on request.
//! - [`run_scenario`]: delivers a scenario to Kafka, the adapters' HTTP
//!   endpoint or a JSON-lines file, paced in (accelerated) real time.
//! - [`vendors`]: each practice's supplier's own records (Twilio, Amazon
//!   Connect, Asterisk, Teams, generic) for the model's calls, pure.
//! - [`SimulationPlan`] / [`generate`]: the original flat model (a constant
//!   rate per practice), kept for the end-to-end tests.

pub mod model;
pub mod practices;
mod target;
pub mod vendors;

pub use model::{national_core_rate, Delivery, Faults, Scenario};
pub use practices::{parse_organisations, spread, synthetic_practices, Practice};
pub use target::{
    parse_duration, parse_speed, parse_start, run_scenario, run_scenario_as, RunStats, Target,
};
pub use vendors::{Format, VendorMix};

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use callpulse_core::{CallEvent, EventKind, Timestamp};
use callpulse_runtime::{kafka, Config};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::info;

#[derive(Debug, Clone)]
pub struct SimulationPlan {
    pub practices: usize,
    pub seed: u64,
    /// Event time of the first call.
    pub start: Timestamp,
    /// Event time covered.
    pub duration_ms: i64,
    /// Mean calls per practice per minute.
    pub calls_per_practice_minute: f64,
    /// Event-time milliseconds per wall-clock millisecond; `None` = as fast as possible.
    pub speed: Option<f64>,
}

/// Synthetic practice codes: `A81001`, `A81002`, ...
pub fn practice_code(index: usize) -> String {
    format!("A{:05}", 81_001 + index)
}

/// Generates the whole plan's events, ordered by `at`.
pub fn generate(plan: &SimulationPlan) -> Vec<CallEvent> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut heap = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut push = |heap: &mut BinaryHeap<Reverse<(i64, u64, CallEventOrd)>>, event: CallEvent| {
        sequence += 1;
        heap.push(Reverse((event.at.0, sequence, CallEventOrd(event))));
    };
    let mean_gap_ms = 60_000.0 / plan.calls_per_practice_minute.max(0.001);
    for practice_index in 0..plan.practices {
        let practice = practice_code(practice_index);
        let mut t = plan.start.0;
        let mut call_number = 0u64;
        loop {
            let gap: f64 = -mean_gap_ms * (1.0 - rng.random::<f64>()).ln();
            t += gap as i64;
            if t >= plan.start.0 + plan.duration_ms {
                break;
            }
            call_number += 1;
            for event in one_call(&mut rng, &practice, call_number, Timestamp(t)) {
                push(&mut heap, event);
            }
        }
    }
    let mut events = Vec::with_capacity(heap.len());
    while let Some(Reverse((_, _, CallEventOrd(event)))) = heap.pop() {
        events.push(event);
    }
    events
}

struct CallEventOrd(CallEvent);
impl PartialEq for CallEventOrd {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for CallEventOrd {}
impl PartialOrd for CallEventOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for CallEventOrd {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

fn one_call(
    rng: &mut StdRng,
    practice: &str,
    number: u64,
    offered_at: Timestamp,
) -> Vec<CallEvent> {
    let call_id = format!("sim-{practice}-{number}");
    let caller = format!("sim-caller-{:x}", rng.random_range(0..5_000u32));
    let mut events = Vec::new();
    let mut event = |kind: EventKind, at: i64| {
        let index = events.len();
        events.push(CallEvent {
            event_id: format!("{call_id}-{index}"),
            call_id: Some(call_id.clone()),
            vendor: "generic".into(),
            practice: practice.to_string(),
            kind,
            at: Timestamp(at),
            caller: (kind == EventKind::Offered).then(|| caller.clone()),
            queue_position: None,
        });
    };
    let t0 = offered_at.0;
    event(EventKind::Offered, t0);
    let roll: f64 = rng.random();
    let menu_ms = rng.random_range(5_000..40_000);
    if roll < 0.22 {
        event(EventKind::IvrEnded, t0 + menu_ms);
        return events;
    }
    if roll < 0.225 {
        event(EventKind::Diverted111, t0 + menu_ms);
        return events;
    }
    let queued = t0 + menu_ms;
    event(EventKind::Queued, queued);
    let wait_ms = (-90_000.0 * (1.0 - rng.random::<f64>()).ln()) as i64;
    let after: f64 = rng.random();
    if after < 0.68 {
        let answered = queued + wait_ms;
        event(EventKind::Answered, answered);
        event(
            EventKind::Ended,
            answered + rng.random_range(60_000..600_000),
        );
    } else if after < 0.78 {
        let requested = queued + wait_ms / 2;
        event(EventKind::CallbackRequested, requested);
        event(
            EventKind::CallbackMade,
            requested + rng.random_range(600_000..7_200_000),
        );
    } else if after < 0.92 {
        event(EventKind::Abandoned, queued + wait_ms);
    } else {
        event(EventKind::Missed, queued + wait_ms.max(300_000));
    }
    events
}

/// Publishes the plan's events to the call-events topic, paced by `speed`.
pub async fn run(
    config: Config,
    plan: SimulationPlan,
    shutdown: impl Future<Output = ()>,
) -> Result<u64> {
    kafka::ensure_topics(&config.kafka, &config.topics.all()).await?;
    let producer = kafka::producer(&config.kafka)?;
    let events = generate(&plan);
    info!(
        events = events.len(),
        practices = plan.practices,
        "simulating"
    );
    let started = tokio::time::Instant::now();
    tokio::pin!(shutdown);
    let mut sent = 0u64;
    for chunk in events.chunk_by(|a, b| a.at.0 / 1000 == b.at.0 / 1000) {
        if let Some(speed) = plan.speed {
            let due = Duration::from_millis(
                ((chunk[0].at.0 - plan.start.0) as f64 / speed).max(0.0) as u64,
            );
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep_until(started + due) => {}
            }
        }
        publish(&producer, &config.topics.call_events, chunk).await?;
        sent += chunk.len() as u64;
    }
    info!(sent, "simulation finished");
    Ok(sent)
}

/// Publishes canonical events as Avro, keyed by practice, and waits for the broker's acks.
pub async fn publish(producer: &FutureProducer, topic: &str, events: &[CallEvent]) -> Result<()> {
    let bodies = events
        .iter()
        .map(|e| {
            Ok((
                callpulse_runtime::avro::encode_call_event(e)?,
                e.practice.as_str(),
            ))
        })
        .collect::<Result<Vec<(Vec<u8>, &str)>>>()?;
    // Queued at once (`send_result`), then awaited together: awaiting
    // `send` one record at a time sends one record per round trip.
    let mut deliveries = Vec::with_capacity(bodies.len());
    for (body, key) in &bodies {
        loop {
            match producer.send_result(FutureRecord::to(topic).key(*key).payload(body)) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // The producer's queue is full: let what is queued go first.
                    if deliveries.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        await_deliveries(topic, std::mem::take(&mut deliveries)).await?;
                    }
                }
                Err((err, _)) => {
                    return Err(err).with_context(|| format!("publishing to {topic}"));
                }
            }
        }
    }
    await_deliveries(topic, deliveries).await
}

async fn await_deliveries(
    topic: &str,
    deliveries: Vec<rdkafka::producer::DeliveryFuture>,
) -> Result<()> {
    for delivery in deliveries {
        delivery
            .await
            .map_err(|_| anyhow::anyhow!("the producer shut down"))?
            .map_err(|(err, _)| err)
            .with_context(|| format!("publishing to {topic}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_ordered_and_valid() {
        let plan = SimulationPlan {
            practices: 3,
            seed: 7,
            start: Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap(),
            duration_ms: 3_600_000,
            calls_per_practice_minute: 1.0,
            speed: None,
        };
        let a = generate(&plan);
        assert_eq!(a, generate(&plan));
        assert!(a.len() > 300, "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(a.iter().all(|e| e.validate().is_ok()));
    }
}
