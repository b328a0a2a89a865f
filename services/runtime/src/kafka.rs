//! Kafka clients with the settings every callpulse service needs.

use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::config::KafkaConfig;

/// An idempotent producer: acks from all replicas, no duplicates on retry.
pub fn producer(kafka: &KafkaConfig) -> Result<FutureProducer> {
    producer_with_timeout(kafka, 30_000)
}

/// As [`producer`], giving up on a message after `timeout_ms`: for callers
/// that answer someone and must say "try again" rather than wait.
pub fn producer_with_timeout(kafka: &KafkaConfig, timeout_ms: u64) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", timeout_ms.to_string())
        .create()
        .context("creating Kafka producer")
}

/// A consumer in `group_id` that commits only what the caller says is done.
pub fn consumer(kafka: &KafkaConfig, group_id: &str) -> Result<StreamConsumer> {
    consumer_config(kafka, group_id)
        .create()
        .context("creating Kafka consumer")
}

/// The settings of [`consumer`], for callers that need their own context
/// (e.g. to hear about rebalances).
pub fn consumer_config(kafka: &KafkaConfig, group_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Short intervals: a crashed member's partitions move on quickly.
        .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", "1000")
        .set(
            "max.poll.interval.ms",
            kafka.max_poll_interval_ms.to_string(),
        );
    config
}

/// Creates the topics that do not exist yet, with an explicit retention.
pub async fn ensure_topics(kafka: &KafkaConfig, topics: &[&str]) -> Result<()> {
    ensure_topics_with_partitions(kafka, topics, kafka.partitions).await
}

/// As [`ensure_topics`], with `partitions` partitions each.
pub async fn ensure_topics_with_partitions(
    kafka: &KafkaConfig,
    topics: &[&str],
    partitions: i32,
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .context("creating Kafka admin client")?;
    let retention = kafka.retention_ms.to_string();
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|name| {
            NewTopic::new(name, partitions, TopicReplication::Fixed(1))
                .set("retention.ms", &retention)
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .context("creating topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Commits, for each (partition, next offset), the position to resume from.
pub fn commit_offsets<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
    offsets: impl IntoIterator<Item = (i32, i64)>,
    mode: CommitMode,
) -> Result<()> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    if list.count() == 0 {
        return Ok(());
    }
    consumer.commit(&list, mode).context("committing offsets")?;
    Ok(())
}
