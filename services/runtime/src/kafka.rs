//! Kafka clients with the settings every callpulse service needs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::config::KafkaConfig;

/// The settings every client shares: the brokers, and librdkafka's own
/// debug logging when `kafka.client_debug` names contexts (e.g.
/// `"cgrp,fetch"`); its lines are logged under the `librdkafka` target.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    if !kafka.client_debug.is_empty() {
        config
            .set("debug", &kafka.client_debug)
            .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    config
}

/// An idempotent producer: acks from all replicas, no duplicates on retry.
pub fn producer(kafka: &KafkaConfig) -> Result<FutureProducer> {
    // Five minutes: a broker away for a while (a restart, a failover) is
    // waited out; only a longer outage fails the service, which then
    // restarts from its checkpoint.
    producer_with_timeout(kafka, 300_000)
}

/// As [`producer`], giving up on a message after `timeout_ms`: for callers
/// that answer someone and must say "try again" rather than wait.
pub fn producer_with_timeout(kafka: &KafkaConfig, timeout_ms: u64) -> Result<FutureProducer> {
    client_config(kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", kafka.linger_ms.to_string())
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
    let mut config = client_config(kafka);
    config
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
    let admin: AdminClient<DefaultClientContext> = client_config(kafka)
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

/// One partition's offsets, as [`watch_offsets`] sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: i32,
    /// The first offset still held (retention may have removed older ones).
    pub low: i64,
    /// The offset the next message will get.
    pub high: i64,
    /// The group's committed offset, when a group was given and it has one.
    pub committed: Option<i64>,
}

impl PartitionOffsets {
    /// Messages the group has yet to commit: from its committed offset (or
    /// the first offset held, when it has none) to the end.
    pub fn lag(&self) -> i64 {
        let from = self.committed.unwrap_or(self.low).max(self.low);
        (self.high - from).max(0)
    }
}

/// Stops the watcher of [`watch_offsets`] when dropped.
pub struct OffsetWatch {
    stop: Arc<AtomicBool>,
}

impl Drop for OffsetWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Every `every`, on a thread of its own (asking the broker can take a
/// while; no service loop should wait for a gauge), reads each partition's
/// offsets of `topics` and, with a `group`, the group's committed offsets,
/// and hands them to `report` — or the reason it could not (the broker is
/// unreachable). The first report comes at once. Stops when the returned
/// guard is dropped.
pub fn watch_offsets(
    kafka: &KafkaConfig,
    group: Option<&str>,
    topics: Vec<String>,
    every: Duration,
    mut report: impl FnMut(Result<Vec<PartitionOffsets>, String>) + Send + 'static,
) -> Result<OffsetWatch> {
    let mut config = client_config(kafka);
    if let Some(group) = group {
        // Reads the group's committed offsets only: it never joins the group.
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false");
    }
    let client: BaseConsumer = config.create().context("creating the offset watcher")?;
    let with_group = group.is_some();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("offset-watcher".into())
        .spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                report(read_offsets(&client, &topics, with_group));
                let until = std::time::Instant::now() + every;
                while std::time::Instant::now() < until && !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
        .context("starting the offset watcher")?;
    Ok(OffsetWatch { stop })
}

fn read_offsets(
    client: &BaseConsumer,
    topics: &[String],
    with_group: bool,
) -> Result<Vec<PartitionOffsets>, String> {
    let timeout = Duration::from_secs(5);
    let mut offsets = Vec::new();
    for topic in topics {
        let metadata = client
            .fetch_metadata(Some(topic), timeout)
            .map_err(|err| format!("Kafka metadata of {topic}: {err}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        for partition in partitions {
            let (low, high) = client
                .fetch_watermarks(topic, partition, timeout)
                .map_err(|err| format!("Kafka offsets of {topic}/{partition}: {err}"))?;
            offsets.push(PartitionOffsets {
                topic: topic.clone(),
                partition,
                low,
                high,
                committed: None,
            });
        }
    }
    if with_group && !offsets.is_empty() {
        let mut list = TopicPartitionList::new();
        for o in &offsets {
            list.add_partition(&o.topic, o.partition);
        }
        let committed = client
            .committed_offsets(list, timeout)
            .map_err(|err| format!("Kafka committed offsets: {err}"))?;
        for element in committed.elements() {
            if let Offset::Offset(at) = element.offset() {
                if let Some(o) = offsets
                    .iter_mut()
                    .find(|o| o.topic == element.topic() && o.partition == element.partition())
                {
                    o.committed = Some(at);
                }
            }
        }
    }
    Ok(offsets)
}

/// Sets the gauge `name{topic, partition}` to each partition's [`PartitionOffsets::lag`].
pub fn set_lag_gauges(
    metrics: &crate::metrics::Registry,
    name: &'static str,
    offsets: &[PartitionOffsets],
) {
    for o in offsets {
        let partition = o.partition.to_string();
        metrics.set(
            name,
            "Messages not yet committed by the consumer group, per partition.",
            &[("topic", &o.topic), ("partition", &partition)],
            o.lag() as f64,
        );
    }
}

/// A consumer context that reports to a readiness check: passing once the
/// group gave this member its assignment (possibly empty: more members
/// than partitions), failing on a rebalance error.
pub struct GroupReadiness {
    readiness: Arc<crate::ops::Readiness>,
    check: &'static str,
}

impl GroupReadiness {
    /// The readiness check `check` ("consumer_group") follows the group.
    pub fn new(readiness: Arc<crate::ops::Readiness>, check: &'static str) -> Self {
        readiness.fail(check, "waiting for the consumer group's assignment");
        GroupReadiness { readiness, check }
    }

    /// What a service's own consumer context calls on a rebalance.
    pub fn rebalanced(&self, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(_) => self.readiness.pass(self.check),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(err) => self.readiness.fail(
                self.check,
                format!("consumer group rebalance failed: {err}"),
            ),
        }
    }
}

impl ClientContext for GroupReadiness {}

impl ConsumerContext for GroupReadiness {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.rebalanced(rebalance);
    }
}
