//! The local broker behaves as Kafka where callpulse relies on it.
//!
//! A restarted processor resumes each partition at its checkpointed offset,
//! which usually falls inside a record batch: producers send hundreds of
//! records per batch. Kafka answers a fetch from inside a batch with the
//! whole batch (the client skips the records before the offset it asked
//! for). tansu 0.6.0 with `memory://` storage skipped to the next batch
//! instead, silently losing the rest of the batch on every restart
//! (docs/broker.md); `deploy/local/stack.sh` builds tansu with a fix
//! (`deploy/local/tansu/`). These tests fail on a broker without it.

use std::time::{Duration, Instant};

use callpulse_e2e::test_config;
use callpulse_runtime::{kafka, Config};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const RECORDS: i64 = 500;

/// A topic of one partition, empty.
async fn one_partition_topic(config: &Config) -> String {
    let topic = config.topics.call_events.clone();
    kafka::ensure_topics_with_partitions(&config.kafka, &[&topic], 1)
        .await
        .unwrap();
    topic
}

/// Sends `RECORDS` records to `topic` at once, so that the producer packs
/// them into a few large batches; returns once all are acknowledged.
async fn send_large_batches(config: &Config, topic: &str) {
    let producer = kafka::producer(&config.kafka).unwrap();
    let payloads: Vec<String> = (0..RECORDS).map(|i| format!("record {i}")).collect();
    let deliveries: Vec<_> = payloads
        .iter()
        .map(|payload| {
            producer
                .send_result(FutureRecord::to(topic).key("A81001").payload(payload))
                .map_err(|(err, _)| err)
                .unwrap()
        })
        .collect();
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(err, _)| err).unwrap();
    }
}

/// One partition holding `RECORDS` records in a few large batches.
async fn topic_of_large_batches(config: &Config) -> String {
    let topic = one_partition_topic(config).await;
    send_large_batches(config, &topic).await;
    topic
}

fn client(config: &Config, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap()
}

/// The offsets and payloads a consumer receives until the partition's end.
fn read_to_end(consumer: &BaseConsumer) -> Vec<(i64, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = Vec::new();
    while received.last().map(|(offset, _)| *offset) != Some(RECORDS - 1) {
        assert!(
            Instant::now() < deadline,
            "the partition's end never arrived; got {} records, last {:?}",
            received.len(),
            received.last()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let payload = String::from_utf8_lossy(message.payload().unwrap()).into_owned();
            received.push((message.offset(), payload));
        }
    }
    received
}

fn assert_everything_from(received: &[(i64, String)], from: i64) {
    let expected: Vec<(i64, String)> = (from..RECORDS)
        .map(|offset| (offset, format!("record {offset}")))
        .collect();
    assert_eq!(
        received.first().map(|(offset, _)| *offset),
        Some(from),
        "a fetch from offset {from} must start there"
    );
    assert_eq!(received, expected.as_slice());
}

#[tokio::test]
async fn a_fetch_from_inside_a_batch_returns_the_rest_of_that_batch() {
    let config = test_config("broker_fetch");
    let topic = topic_of_large_batches(&config).await;
    let consumer = client(&config, "broker-fetch-probe");
    let (low, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (0, RECORDS), "watermarks of the partition");

    for from in [0, 1, 37, RECORDS / 2, RECORDS - 1] {
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, 0, Offset::Offset(from))
            .unwrap();
        consumer.assign(&assignment).unwrap();
        assert_everything_from(&read_to_end(&consumer), from);
    }
}

#[tokio::test]
async fn a_new_member_resumes_at_the_groups_committed_offset() {
    let config = test_config("broker_commit");
    let topic = topic_of_large_batches(&config).await;
    let group = format!("{}-resume", config.processor.group_id);
    let committed_at = 123;

    let first = client(&config, &group);
    let mut position = TopicPartitionList::new();
    position
        .add_partition_offset(&topic, 0, Offset::Offset(committed_at))
        .unwrap();
    first.commit(&position, CommitMode::Sync).unwrap();
    drop(first);

    let member = client(&config, &group);
    member.subscribe(&[&topic]).unwrap();
    assert_everything_from(&read_to_end(&member), committed_at);
}

#[tokio::test]
async fn a_member_waiting_on_an_empty_partition_receives_what_is_published_later() {
    let config = test_config("broker_waiting");
    let topic = one_partition_topic(&config).await;
    let member = client(&config, &format!("{}-waiting", config.processor.group_id));
    member.subscribe(&[&topic]).unwrap();
    // Joined and positioned at the (empty) start before anything is sent.
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.assignment().unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "never assigned");
        assert!(member.poll(Duration::from_millis(100)).is_none());
    }
    for _ in 0..10 {
        assert!(member.poll(Duration::from_millis(100)).is_none());
    }
    send_large_batches(&config, &topic).await;
    assert_everything_from(&read_to_end(&member), 0);
}
