//! Helpers shared by the end-to-end tests: they run against the real local
//! broker and ClickHouse that `deploy/local/test.sh` starts, and read their
//! addresses from CALLPULSE_TEST_KAFKA and CALLPULSE_TEST_CLICKHOUSE.

use std::time::{Duration, Instant};

use callpulse_runtime::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};

/// A configuration with fresh topics, groups and database for this run:
/// runs never see each other's data.
pub fn test_config(name: &str) -> Config {
    Config::load_from(None, test_env(name)).unwrap()
}

/// The environment of [`test_config`], for services started as processes.
pub fn test_env(name: &str) -> Vec<(String, String)> {
    let kafka = std::env::var("CALLPULSE_TEST_KAFKA")
        .expect("CALLPULSE_TEST_KAFKA is not set: run the tests with deploy/local/test.sh");
    let clickhouse = std::env::var("CALLPULSE_TEST_CLICKHOUSE")
        .expect("CALLPULSE_TEST_CLICKHOUSE is not set: run the tests with deploy/local/test.sh");
    // Fresh topics, groups and database per run: runs never see each other's data.
    let run = format!(
        "{name}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let env = [
        ("CALLPULSE__KAFKA__BROKERS", kafka),
        ("CALLPULSE__KAFKA__PARTITIONS", "3".into()),
        ("CALLPULSE__CLICKHOUSE__URL", clickhouse),
        ("CALLPULSE__CLICKHOUSE__DATABASE", format!("test_{run}")),
        ("CALLPULSE__PROCESSOR__EMIT_INTERVAL_MS", "200".into()),
        ("CALLPULSE__PROCESSOR__CHECKPOINT_INTERVAL_MS", "500".into()),
        ("CALLPULSE__PROCESSOR__METRICS_LISTEN", "127.0.0.1:0".into()),
        ("CALLPULSE__KAFKA__SESSION_TIMEOUT_MS", "6000".into()),
        ("CALLPULSE__KAFKA__MAX_POLL_INTERVAL_MS", "10000".into()),
        ("CALLPULSE__PROCESSOR__GROUP_ID", format!("processor-{run}")),
        ("CALLPULSE__SINK__GROUP_ID", format!("sink-{run}")),
        ("CALLPULSE__SINK__BATCH_MAX_AGE_MS", "200".into()),
        ("CALLPULSE__TOPICS__CALL_EVENTS", format!("events-{run}")),
        ("CALLPULSE__TOPICS__DEAD_LETTERS", format!("dlq-{run}")),
        ("CALLPULSE__TOPICS__METRICS", format!("metrics-{run}")),
        ("CALLPULSE__TOPICS__CALLS", format!("calls-{run}")),
        ("CALLPULSE__TOPICS__ALERTS", format!("alerts-{run}")),
        ("CALLPULSE__TOPICS__LATE_EVENTS", format!("late-{run}")),
        (
            "CALLPULSE__TOPICS__CHECKPOINTS",
            format!("checkpoints-{run}"),
        ),
    ];
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Reads every message of `topic` until `expected` have arrived or
/// `timeout` passes; returns (key, payload) pairs in partition order.
pub fn read_topic(
    config: &Config,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<(String, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", format!("reader-{topic}-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("creating a test consumer");
    consumer.subscribe(&[topic]).expect("subscribing");
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    while messages.len() < expected && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let key = message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            messages.push((key, message.payload().unwrap_or_default().to_vec()));
        }
    }
    messages
}
