//! Canonical events and dead letters to Kafka, acknowledged or not at all.
//!
//! Events go to `callpulse.call-events.v1` as Avro, keyed by practice so a
//! practice's events stay in one partition in arrival order. Rejections go
//! to `callpulse.call-events.dlq` as JSON, keyed by vendor. A caller waits
//! for every acknowledgement: HTTP answers 2xx, and import moves its
//! checkpoint, only after Kafka has the records.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use callpulse_core::CallEvent;
use callpulse_runtime::avro::encode_call_event;
use callpulse_runtime::config::KafkaConfig;
use callpulse_runtime::Config;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::file::Rejection;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Kafka did not acknowledge in time or refused: the caller should retry.
    #[error("Kafka did not acknowledge: {0}")]
    Unavailable(String),
    #[error("encoding an event as Avro: {0}")]
    Encode(String),
}

#[derive(Clone)]
pub struct Publisher {
    /// Replaced when it fails fatally (see [`Publisher::recover`]).
    producer: Arc<RwLock<FutureProducer>>,
    kafka: KafkaConfig,
    timeout_ms: u64,
    events_topic: String,
    dead_letters_topic: String,
}

impl Publisher {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Publisher {
            producer: Arc::new(RwLock::new(
                callpulse_runtime::kafka::producer_with_timeout(
                    &config.kafka,
                    config.adapters.kafka_timeout_ms,
                )?,
            )),
            kafka: config.kafka.clone(),
            timeout_ms: config.adapters.kafka_timeout_ms,
            events_topic: config.topics.call_events.clone(),
            dead_letters_topic: config.topics.dead_letters.clone(),
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// After a failure: an idempotent producer whose message timed out may
    /// be left fenced for good (a broker refusing the epoch it bumped, as
    /// tansu does), and would answer every later request 503. A fenced
    /// producer, or one in a fatal state, is replaced by a new one; the
    /// sender's retry then goes through it.
    fn recover(&self, fenced: bool) {
        let mut producer = self
            .producer
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (code, reason) = match producer.client().fatal_error() {
            Some(fatal) => fatal,
            None if fenced => (RDKafkaErrorCode::ProducerFenced, "fenced".to_string()),
            None => return,
        };
        match callpulse_runtime::kafka::producer_with_timeout(&self.kafka, self.timeout_ms) {
            Ok(fresh) => {
                tracing::warn!(?code, %reason, "the Kafka producer failed fatally; replaced by a new one");
                *producer = fresh;
            }
            Err(err) => {
                tracing::error!(?code, %reason, error = %format!("{err:#}"), "the Kafka producer failed fatally and could not be replaced");
            }
        }
    }

    /// Publishes all events and rejections; `Ok` once Kafka acknowledged every one.
    pub async fn publish(
        &self,
        events: &[CallEvent],
        rejections: &[Rejection],
    ) -> Result<(), PublishError> {
        let mut fenced = false;
        let result = self.publish_once(events, rejections, &mut fenced).await;
        if matches!(result, Err(PublishError::Unavailable(_))) {
            self.recover(fenced);
        }
        result
    }

    async fn publish_once(
        &self,
        events: &[CallEvent],
        rejections: &[Rejection],
        fenced: &mut bool,
    ) -> Result<(), PublishError> {
        let producer = self.producer();
        let mut deliveries = Vec::with_capacity(events.len() + rejections.len());
        for event in events {
            let payload =
                encode_call_event(event).map_err(|err| PublishError::Encode(err.to_string()))?;
            let record = FutureRecord::to(&self.events_topic)
                .key(event.practice.as_str())
                .payload(payload.as_slice());
            deliveries.push(send(&producer, record)?);
        }
        for rejection in rejections {
            let payload = rejection.to_json();
            let record = FutureRecord::to(&self.dead_letters_topic)
                .key(rejection.vendor.as_str())
                .payload(payload.as_bytes());
            deliveries.push(send(&producer, record)?);
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => {
                    *fenced = matches!(
                        err.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::ProducerFenced
                                | RDKafkaErrorCode::InvalidProducerEpoch
                        )
                    );
                    return Err(PublishError::Unavailable(err.to_string()));
                }
                Err(_) => return Err(PublishError::Unavailable("the producer shut down".into())),
            }
        }
        Ok(())
    }

    /// Waits for anything still queued, e.g. before exiting.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.producer().flush(timeout) {
            tracing::warn!(error = %err, "some records were not flushed to Kafka");
        }
    }
}

fn send(
    producer: &FutureProducer,
    record: FutureRecord<'_, str, [u8]>,
) -> Result<rdkafka::producer::DeliveryFuture, PublishError> {
    producer
        .send_result(record)
        .map_err(|(err, _)| PublishError::Unavailable(err.to_string()))
}
