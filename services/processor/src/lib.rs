//! The streaming processor: consumes canonical events, keeps one engine per
//! assigned partition (keys are practices, so a practice's state lives with
//! its partition), and publishes window metrics, call summaries and late
//! events. Emission is rate-limited: open windows are re-emitted when
//! changed, at most once per `emit_interval_ms`.
//!
//! Call events and window metrics are Avro (single-object encoding, see
//! docs/schemas.md); call summaries and late events are JSON until their
//! schemas are written.
//!
//! Offsets are committed after the outputs of everything consumed so far
//! were acknowledged by the broker. Rebuilding open state after a crash
//! (re-reading from a position that covers open windows) is issue #4.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use callpulse_core::{Emitted, Engine, EngineConfig, Ingested, Lateness};
use callpulse_runtime::{avro, kafka, Config};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::{info, warn};

pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    kafka::ensure_topics(&config.kafka, &config.topics.all()).await?;
    let consumer = kafka::consumer(&config.kafka, &config.processor.group_id)?;
    consumer
        .subscribe(&[&config.topics.call_events])
        .context("subscribing to call events")?;
    let producer = kafka::producer(&config.kafka)?;
    let engine_config = EngineConfig {
        lateness: Lateness::Bounded {
            allowed_ms: config.processor.allowed_lateness_ms,
        },
        ..EngineConfig::default()
    };
    let mut engines: HashMap<i32, Engine> = HashMap::new();
    let mut pending: HashMap<i32, i64> = HashMap::new();
    let mut ticker =
        tokio::time::interval(Duration::from_millis(config.processor.emit_interval_ms));
    tokio::pin!(shutdown);
    info!(topic = %config.topics.call_events, "processor running");

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {
                flush(&config, &producer, &mut engines).await?;
                commit(&consumer, &config.topics.call_events, &mut pending)?;
            }
            message = consumer.recv() => {
                let message = match message {
                    Ok(message) => message,
                    Err(err) => { warn!(%err, "consuming call events"); continue; }
                };
                let partition = message.partition();
                pending.insert(partition, message.offset() + 1);
                let Some(payload) = message.payload() else { continue };
                let event = match avro::decode_call_event(payload).map_err(|e| e.to_string()) {
                    Ok(event) => event,
                    Err(reason) => {
                        warn!(partition, offset = message.offset(), %reason, "invalid event sent to the dead-letter topic");
                        let body = serde_json::json!({"reason": reason, "partition": partition, "offset": message.offset(),
                            "raw_hex": payload.iter().map(|b| format!("{b:02x}")).collect::<String>()}).to_string();
                        send(&producer, &config.topics.dead_letters, "", body.as_bytes()).await?;
                        continue;
                    }
                };
                let engine = engines.entry(partition).or_insert_with(|| Engine::new(engine_config.clone()));
                if let Ingested::Late(late) = engine.ingest(&event) {
                    let body = serde_json::to_string(&*late)?;
                    send(&producer, &config.topics.late_events, &event.practice, body.as_bytes()).await?;
                }
            }
        }
    }
    flush(&config, &producer, &mut engines).await?;
    commit(&consumer, &config.topics.call_events, &mut pending)?;
    info!("processor stopped");
    Ok(())
}

async fn flush(
    config: &Config,
    producer: &FutureProducer,
    engines: &mut HashMap<i32, Engine>,
) -> Result<()> {
    for engine in engines.values_mut() {
        let Emitted { windows, calls } = engine.drain(true);
        for window in &windows {
            send(
                producer,
                &config.topics.metrics,
                &window.practice,
                &avro::encode_window_metrics(window)?,
            )
            .await?;
        }
        for call in &calls {
            send(
                producer,
                &config.topics.calls,
                &call.practice,
                serde_json::to_string(call)?.as_bytes(),
            )
            .await?;
        }
    }
    Ok(())
}

async fn send(producer: &FutureProducer, topic: &str, key: &str, body: &[u8]) -> Result<()> {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(body),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(err, _)| err)
        .with_context(|| format!("publishing to {topic}"))?;
    Ok(())
}

fn commit(consumer: &impl Consumer, topic: &str, pending: &mut HashMap<i32, i64>) -> Result<()> {
    kafka::commit_offsets(consumer, topic, pending.drain(), CommitMode::Async)
}
