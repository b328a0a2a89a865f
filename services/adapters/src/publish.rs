//! Canonical events and dead letters to Kafka, acknowledged or not at all.
//!
//! Events go to `callpulse.call-events.v1` as Avro, keyed by practice so a
//! practice's events stay in one partition in arrival order. Rejections go
//! to `callpulse.call-events.dlq` as JSON, keyed by vendor. A caller waits
//! for every acknowledgement: HTTP answers 2xx, and import moves its
//! checkpoint, only after Kafka has the records.

use std::time::Duration;

use callpulse_core::CallEvent;
use callpulse_runtime::avro::encode_call_event;
use callpulse_runtime::Config;
use rdkafka::producer::{FutureProducer, FutureRecord};

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
    producer: FutureProducer,
    events_topic: String,
    dead_letters_topic: String,
}

impl Publisher {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Publisher {
            producer: callpulse_runtime::kafka::producer_with_timeout(
                &config.kafka,
                config.adapters.kafka_timeout_ms,
            )?,
            events_topic: config.topics.call_events.clone(),
            dead_letters_topic: config.topics.dead_letters.clone(),
        })
    }

    /// Publishes all events and rejections; `Ok` once Kafka acknowledged every one.
    pub async fn publish(
        &self,
        events: &[CallEvent],
        rejections: &[Rejection],
    ) -> Result<(), PublishError> {
        let mut deliveries = Vec::with_capacity(events.len() + rejections.len());
        for event in events {
            let payload =
                encode_call_event(event).map_err(|err| PublishError::Encode(err.to_string()))?;
            let record = FutureRecord::to(&self.events_topic)
                .key(event.practice.as_str())
                .payload(payload.as_slice());
            deliveries.push(self.send(record)?);
        }
        for rejection in rejections {
            let payload = rejection.to_json();
            let record = FutureRecord::to(&self.dead_letters_topic)
                .key(rejection.vendor.as_str())
                .payload(payload.as_bytes());
            deliveries.push(self.send(record)?);
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => return Err(PublishError::Unavailable(err.to_string())),
                Err(_) => return Err(PublishError::Unavailable("the producer shut down".into())),
            }
        }
        Ok(())
    }

    fn send(
        &self,
        record: FutureRecord<'_, str, [u8]>,
    ) -> Result<rdkafka::producer::DeliveryFuture, PublishError> {
        self.producer
            .send_result(record)
            .map_err(|(err, _)| PublishError::Unavailable(err.to_string()))
    }

    /// Waits for anything still queued, e.g. before exiting.
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer;
        if let Err(err) = self.producer.flush(timeout) {
            tracing::warn!(error = %err, "some records were not flushed to Kafka");
        }
    }
}
