//! Restart points on Kafka: for each partition of the call-event topic,
//! the offset to resume from and the watermark to resume with.
//!
//! Kafka's commit metadata would be the natural home for the watermark,
//! but the local broker (tansu 0.6) does not return it (docs/broker.md).
//! So each restart point is also written, before the offset is committed,
//! as a JSON message to a one-partition topic; a processor that is given a
//! partition reads that topic to find the watermark that belongs to the
//! committed offset. Writes happen at most every `checkpoint_interval_ms`
//! and only on change, so the topic stays small.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use callpulse_core::Timestamp;
use callpulse_runtime::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub partition: i32,
    /// The offset to resume reading from.
    pub offset: i64,
    /// The engine's watermark just before that offset, in epoch milliseconds.
    pub watermark_ms: Option<i64>,
}

impl Checkpoint {
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark_ms.map(Timestamp::from_millis)
    }
}

pub struct CheckpointStore {
    topic: String,
    events_topic: String,
    reader: BaseConsumer,
    /// Next offset of the checkpoint topic to read.
    read_to: i64,
    /// (partition, offset) → watermark, from everything read or written.
    known: HashMap<(i32, i64), Option<i64>>,
    /// The last checkpoint written for each partition.
    latest: HashMap<i32, i64>,
}

impl CheckpointStore {
    pub async fn open(config: &Config) -> Result<Self> {
        callpulse_runtime::kafka::ensure_topics_with_partitions(
            &config.kafka,
            &[&config.topics.checkpoints],
            1,
        )
        .await?;
        let reader: BaseConsumer = callpulse_runtime::kafka::client_config(&config.kafka)
            .set(
                "group.id",
                format!("{}-checkpoint-reader", config.processor.group_id),
            )
            .set("enable.auto.commit", "false")
            .create()
            .context("creating the checkpoint reader")?;
        let mut store = CheckpointStore {
            topic: config.topics.checkpoints.clone(),
            events_topic: config.topics.call_events.clone(),
            reader,
            read_to: 0,
            known: HashMap::new(),
            latest: HashMap::new(),
        };
        store.catch_up()?;
        Ok(store)
    }

    /// Reads checkpoints written since the last read (by any instance).
    pub fn catch_up(&mut self) -> Result<()> {
        let (_, high) = self
            .reader
            .fetch_watermarks(&self.topic, 0, Duration::from_secs(10))
            .context("reading the checkpoint topic's end")?;
        if high <= self.read_to {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.topic, 0, Offset::Offset(self.read_to))?;
        self.reader.assign(&assignment)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.read_to < high {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "timed out reading checkpoints ({} of {high})",
                self.read_to
            );
            let Some(message) = self.reader.poll(Duration::from_millis(500)) else {
                continue;
            };
            let message = message.context("reading checkpoints")?;
            self.read_to = message.offset() + 1;
            let Some(payload) = message.payload() else {
                continue;
            };
            match serde_json::from_slice::<StoredCheckpoint>(payload) {
                Ok(stored) if stored.topic == self.events_topic => {
                    let cp = stored.checkpoint;
                    self.known
                        .insert((cp.partition, cp.offset), cp.watermark_ms);
                    self.latest.insert(cp.partition, cp.offset);
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(offset = message.offset(), %err, "skipping an unreadable checkpoint")
                }
            }
        }
        Ok(())
    }

    /// The watermark recorded for resuming `partition` at `offset`, if any.
    pub fn watermark_at(
        &mut self,
        partition: i32,
        offset: i64,
    ) -> Result<Option<Option<Timestamp>>> {
        if !self.known.contains_key(&(partition, offset)) {
            self.catch_up()?;
        }
        Ok(self
            .known
            .get(&(partition, offset))
            .map(|wm| wm.map(Timestamp::from_millis)))
    }

    /// Writes restart points; returns once the broker acknowledged them all.
    pub async fn write(
        &mut self,
        producer: &FutureProducer,
        checkpoints: &[Checkpoint],
    ) -> Result<()> {
        let mut deliveries = Vec::with_capacity(checkpoints.len());
        for cp in checkpoints {
            let body = serde_json::to_vec(&StoredCheckpoint {
                topic: self.events_topic.clone(),
                checkpoint: *cp,
            })?;
            let key = format!("{}:{}", self.events_topic, cp.partition);
            let record = FutureRecord::to(&self.topic)
                .key(key.as_str())
                .payload(body.as_slice());
            deliveries.push(producer.send_result(record).map_err(|(err, _)| err)?);
        }
        for delivery in deliveries {
            delivery
                .await
                .map_err(|_| anyhow::anyhow!("the producer shut down"))?
                .map_err(|(err, _)| err)
                .context("writing a checkpoint")?;
        }
        for cp in checkpoints {
            self.known
                .insert((cp.partition, cp.offset), cp.watermark_ms);
            self.latest.insert(cp.partition, cp.offset);
        }
        Ok(())
    }

    /// Where the last checkpoint of `partition` says to resume, if any.
    /// With the broker away, what this process has read or written so far
    /// (an older restart point only means re-reading more; never less).
    pub fn latest(&mut self, partition: i32) -> Option<i64> {
        if let Err(err) = self.catch_up() {
            tracing::warn!(partition, error = %format!("{err:#}"), "reading the checkpoint topic failed; using the checkpoints already known");
        }
        self.latest.get(&partition).copied()
    }
}

#[derive(Serialize, Deserialize)]
struct StoredCheckpoint {
    topic: String,
    #[serde(flatten)]
    checkpoint: Checkpoint,
}

/// How many offsets lie between a partition's last checkpoint and the
/// first message the broker delivered after it: events the processor never
/// saw (retention deleted them, or the broker skipped them). A start before
/// the checkpoint only means reading some events again, which is harmless.
pub fn resume_gap(last_checkpoint: Option<i64>, first_offset: i64) -> Option<u64> {
    let checkpoint = last_checkpoint?;
    (first_offset > checkpoint).then(|| (first_offset - checkpoint) as u64)
}

#[cfg(test)]
mod tests {
    use super::resume_gap;

    #[test]
    fn only_a_start_after_the_last_checkpoint_is_a_gap() {
        assert_eq!(
            resume_gap(None, 389),
            None,
            "no checkpoint yet: a first start"
        );
        assert_eq!(resume_gap(Some(62), 62), None);
        assert_eq!(resume_gap(Some(62), 10), None, "re-reading is harmless");
        assert_eq!(resume_gap(Some(62), 389), Some(327));
    }
}
