//! Helpers shared by the end-to-end tests: they run against the real local
//! broker and ClickHouse that `deploy/local/test.sh` starts, and read their
//! addresses from CALLPULSE_TEST_KAFKA and CALLPULSE_TEST_CLICKHOUSE.

use std::time::{Duration, Instant};

use callpulse_core::{CallEvent, CoreHours, Engine, EngineConfig};
use callpulse_runtime::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};
use serde::Deserialize;

/// A configuration with fresh topics, groups and database for this run:
/// runs never see each other's data.
pub fn test_config(name: &str) -> Config {
    Config::load_from(None, test_env(name)).unwrap()
}

/// The environment of [`test_config`], for services started as processes.
/// Each call names fresh topics, groups and a database (by process and
/// millisecond): a test that starts processes calls it once and builds its
/// own `Config` from the same environment (`Config::load_from(None,
/// env.clone())`), never from a second call.
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
        // Any free port: tests run several services at once.
        ("CALLPULSE__SINK__METRICS_LISTEN", "127.0.0.1:0".into()),
        ("CALLPULSE__ALERTER__METRICS_LISTEN", "127.0.0.1:0".into()),
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

/// The fields of a window the end-to-end tests compare.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Counts {
    pub practice: String,
    pub window: String,
    pub start: u32,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub callback_requested: u64,
    pub wait_count: u64,
    pub wait_ms_sum: u64,
    pub unique_callers: u64,
    pub peak_waiting: u64,
}

/// What ClickHouse must end up holding for `events`: the engine's windows
/// over the whole input, independently of the pipeline.
pub fn expected_counts(events: &[CallEvent]) -> Vec<Counts> {
    let mut engine = Engine::new(EngineConfig::replay(CoreHours::shipped()));
    for event in events {
        engine.ingest(event);
    }
    let mut expected: Vec<Counts> = engine
        .finish()
        .windows
        .iter()
        .map(|w| Counts {
            practice: w.practice.clone(),
            window: w.window.as_str().to_string(),
            start: (w.start.millis() / 1000) as u32,
            offered: w.offered,
            answered: w.answered,
            abandoned: w.abandoned,
            callback_requested: w.callback_requested,
            wait_count: w.wait_count,
            wait_ms_sum: w.wait_ms_sum,
            unique_callers: w.unique_callers,
            peak_waiting: w.peak_waiting,
        })
        .collect();
    expected
        .sort_by(|a, b| (&a.window, &a.practice, a.start).cmp(&(&b.window, &b.practice, b.start)));
    expected
}

/// Polls `window_metrics FINAL` until it equals `expected` or `timeout` passes.
pub async fn wait_for_counts(
    config: &Config,
    expected: &[Counts],
    timeout: Duration,
) -> Vec<Counts> {
    let client = callpulse_sink::clickhouse_client(config);
    let deadline = Instant::now() + timeout;
    loop {
        let rows = client
            .query(
                "SELECT practice, window, toUInt32(`start`) AS start, offered, answered, abandoned, \
                 callback_requested, wait_count, wait_ms_sum, unique_callers, peak_waiting \
                 FROM window_metrics FINAL ORDER BY window, practice, start",
            )
            .fetch_all::<Counts>()
            .await;
        if let Ok(rows) = &rows {
            if rows == expected {
                return rows.clone();
            }
        }
        if Instant::now() > deadline {
            return rows.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Asserts equality, showing a few differing rows when not.
pub fn assert_same_counts(actual: &[Counts], expected: &[Counts]) {
    let missing: Vec<&Counts> = expected
        .iter()
        .filter(|row| !actual.contains(row))
        .take(5)
        .collect();
    let unexpected: Vec<&Counts> = actual
        .iter()
        .filter(|row| !expected.contains(row))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && actual.len() == expected.len(),
        "ClickHouse differs from the engine's final windows ({} rows vs {} expected)\nexpected but not found: {missing:#?}\nfound but not expected: {unexpected:#?}",
        actual.len(),
        expected.len()
    );
}

/// Every §4 value of a window as ClickHouse holds it, without what depends
/// on when it was emitted (revision, final, version): what must equal
/// `callpulse replay` field for field.
pub fn values_only(mut row: callpulse_sink::WindowMetricsRow) -> callpulse_sink::WindowMetricsRow {
    row.revision = 0;
    row.is_final = 0;
    row.version = 0;
    row
}

/// `callpulse replay`'s final windows for `events`, as rows, values only.
pub fn expected_rows(events: &[CallEvent]) -> Vec<callpulse_sink::WindowMetricsRow> {
    replayed_rows(events).into_iter().map(values_only).collect()
}

/// `callpulse replay`'s final windows for `events`, as the sink writes
/// them (with revision and version), in `window, practice, start` order.
pub fn replayed_rows(events: &[CallEvent]) -> Vec<callpulse_sink::WindowMetricsRow> {
    let mut engine = Engine::new(EngineConfig::replay(CoreHours::shipped()));
    for event in events {
        engine.ingest(event);
    }
    let mut rows: Vec<_> = engine
        .finish()
        .windows
        .iter()
        .map(callpulse_sink::WindowMetricsRow::from)
        .collect();
    rows.sort_by(|a, b| (&a.window, &a.practice, a.start).cmp(&(&b.window, &b.practice, b.start)));
    rows
}

/// Polls every row of `window_metrics FINAL` until the values equal
/// `expected` or `timeout` passes.
pub async fn wait_for_rows(
    config: &Config,
    expected: &[callpulse_sink::WindowMetricsRow],
    timeout: Duration,
) -> Vec<callpulse_sink::WindowMetricsRow> {
    let client = callpulse_sink::clickhouse_client(config);
    let deadline = Instant::now() + timeout;
    loop {
        let rows = client
            .query("SELECT ?fields FROM window_metrics FINAL ORDER BY window, practice, start")
            .fetch_all::<callpulse_sink::WindowMetricsRow>()
            .await
            .map(|rows| rows.into_iter().map(values_only).collect::<Vec<_>>());
        match &rows {
            Ok(rows) if rows == expected => return rows.clone(),
            Err(err) if Instant::now() > deadline => panic!("reading window_metrics: {err}"),
            _ => {}
        }
        if Instant::now() > deadline {
            return rows.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The end of every fault test: waits (up to `timeout`) until ClickHouse
/// holds `expected`, checks that every process came through the fault
/// still running, and that the rows are replay's. Returns the instant the
/// rows were complete (or the wait gave up).
pub async fn assert_recovered(
    config: &Config,
    expected: &[callpulse_sink::WindowMetricsRow],
    timeout: Duration,
    processes: &mut [&mut process::Process],
) -> Instant {
    let actual = wait_for_rows(config, expected, timeout).await;
    let caught_up = Instant::now();
    for process in processes.iter_mut() {
        process.assert_running();
    }
    assert_same_rows(&actual, expected);
    caught_up
}

/// The sink's retry delays, as logged (`retry_in_ms`), never shrink and
/// grow overall: it backs off instead of hammering a ClickHouse in trouble.
pub fn assert_backs_off(delays: &[u64]) {
    assert!(
        delays.windows(2).all(|pair| pair[1] >= pair[0]) && delays.last() > delays.first(),
        "the sink should back off between attempts: {delays:?}"
    );
}

/// Asserts the rows are equal, showing the first differences when not.
pub fn assert_same_rows(
    actual: &[callpulse_sink::WindowMetricsRow],
    expected: &[callpulse_sink::WindowMetricsRow],
) {
    let missing: Vec<_> = expected
        .iter()
        .filter(|row| !actual.contains(row))
        .take(3)
        .collect();
    let unexpected: Vec<_> = actual
        .iter()
        .filter(|row| !expected.contains(row))
        .take(3)
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && actual.len() == expected.len(),
        "ClickHouse differs from callpulse replay ({} rows vs {} expected)\nexpected but not found: {missing:#?}\nfound but not expected: {unexpected:#?}",
        actual.len(),
        expected.len()
    );
}

/// Outages at the network level for the fault tests (tests/outage.rs).
pub mod outage;

/// Servers started as processes, their logs captured (tests/process.rs).
pub mod process;

/// A ClickHouse server of a test's own (tests/own_clickhouse.rs).
pub mod own_clickhouse;

/// Publishes `events` on the run's call-events topic, as an adapter would.
/// Rows of `table` (any revision), or `None` if ClickHouse does not answer.
pub async fn stored_rows(config: &Config, table: &str) -> Option<u64> {
    callpulse_sink::clickhouse_client(config)
        .query(&format!("SELECT count() FROM {table}"))
        .fetch_one::<u64>()
        .await
        .ok()
}

pub async fn publish_events(config: &Config, events: &[CallEvent]) {
    let producer = callpulse_runtime::kafka::producer(&config.kafka).unwrap();
    callpulse_simulator::publish(&producer, &config.topics.call_events, events)
        .await
        .unwrap();
}

/// A firing 111-diversion alert of `practice` (in `icb`, if given), now.
pub fn diversion_alert(practice: &str, icb: Option<&str>) -> callpulse_core::alert::Alert {
    use callpulse_core::alert::{Alert, AlertKind, Opening};
    use callpulse_core::Timestamp;
    let now = Timestamp(chrono::Utc::now().timestamp_millis());
    Alert {
        icb: icb.map(Into::into),
        opened_by: Some(Opening::DivertOn),
        switched_on_at: Some(now),
        diverted_calls: Some(0),
        summary: format!("{practice} has diverted its phones to NHS 111 in core hours"),
        ..Alert::blank(
            AlertKind::Diversion111,
            format!("div111:{practice}:{}", now.to_rfc3339_millis()),
            practice,
            now,
        )
    }
}

/// Publishes `alerts` on the run's alerts topic, keyed by practice, as the
/// processor does.
pub async fn publish_alerts(config: &Config, alerts: &[&callpulse_core::alert::Alert]) {
    use rdkafka::producer::FutureRecord;
    let producer = callpulse_runtime::kafka::producer(&config.kafka).unwrap();
    for alert in alerts {
        let payload = serde_json::to_vec(alert).unwrap();
        producer
            .send(
                FutureRecord::to(&config.topics.alerts)
                    .key(&alert.practice)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

/// `callpulse processor` and `callpulse sink` run in the test's runtime
/// with `config` until [`Pipeline::stop`].
pub struct Pipeline {
    stop: tokio::sync::watch::Sender<bool>,
    processor: tokio::task::JoinHandle<anyhow::Result<()>>,
    sink: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Pipeline {
    pub fn start(config: &Config) -> Pipeline {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let processor = tokio::spawn(callpulse_processor::run(
            config.clone(),
            until_stopped(stopped.clone()),
        ));
        let sink = tokio::spawn(callpulse_sink::run(config.clone(), until_stopped(stopped)));
        Pipeline {
            stop,
            processor,
            sink,
        }
    }

    /// Stops both; panics if either failed.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        self.processor.await.unwrap().unwrap();
        self.sink.await.unwrap().unwrap();
    }
}

/// The simulator's events for `plan`, in event-time order; at least
/// `at_least` of them, so a test's load cannot shrink unnoticed.
pub fn simulated_calls(
    plan: &callpulse_simulator::SimulationPlan,
    at_least: usize,
) -> Vec<CallEvent> {
    let mut events = callpulse_simulator::generate(plan);
    events.sort_by_key(|e| e.at);
    assert!(events.len() > at_least, "{}", events.len());
    events
}

/// The numbers after `field=` on every log line containing `marker`.
pub fn logged_numbers<T: std::str::FromStr>(log: &str, marker: &str, field: &str) -> Vec<T> {
    let key = format!("{field}=");
    log.lines()
        .filter(|line| line.contains(marker))
        .filter_map(|line| {
            line.split(key.as_str())
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// About 3,000–4,000 events of the simulator: 50 practices, the hour from
/// `start` (UTC) of a Monday morning, for the fault tests.
pub fn an_hour_of_calls(seed: u64, start: &str, calls_per_practice_minute: f64) -> Vec<CallEvent> {
    let plan = callpulse_simulator::SimulationPlan {
        practices: 50,
        seed,
        start: callpulse_core::Timestamp::parse_rfc3339(start).unwrap(),
        duration_ms: 3_600_000,
        calls_per_practice_minute,
        speed: None,
    };
    simulated_calls(&plan, 2_000)
}

/// `env` with the services' ClickHouse URL replaced by `url` (a test's own
/// server, or a proxy in front of the shared one).
pub fn with_clickhouse_url(env: &[(String, String)], url: &str) -> Vec<(String, String)> {
    env.iter()
        .map(|(key, value)| {
            let value = if key == "CALLPULSE__CLICKHOUSE__URL" {
                url.to_string()
            } else {
                value.clone()
            };
            (key.clone(), value)
        })
        .collect()
}

/// Starts the processor (with `env`) and the sink (with `sink_env`) as
/// processes named after `name`, once both are running.
pub async fn start_processor_and_sink(
    name: &str,
    env: &[(String, String)],
    sink_env: &[(String, String)],
) -> (process::Process, process::Process) {
    let mut processor =
        process::Process::callpulse(&format!("{name}-processor"), &["processor"], env);
    let mut sink = process::Process::callpulse(&format!("{name}-sink"), &["sink"], sink_env);
    processor
        .wait_for_log("partitions assigned", Duration::from_secs(60))
        .await;
    sink.wait_for_log("sink running", Duration::from_secs(60))
        .await;
    (processor, sink)
}

/// Publishes `chunks` and waits until the sink has stored some windows.
pub async fn publish_until_stored(
    config: &Config,
    chunks: &[&[CallEvent]],
    sink: &mut process::Process,
) {
    for chunk in chunks {
        publish_events(config, chunk).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_rows(config, "window_metrics").await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the sink stored nothing");
        sink.assert_running();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The offsets `group` committed on every partition of `topics`, as
/// (topic, partition, offset); -1 where it committed none.
pub fn committed_offsets(config: &Config, group: &str, topics: &[&str]) -> Vec<(String, i32, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    for topic in topics {
        for partition in 0..config.kafka.partitions {
            list.add_partition(topic, partition);
        }
    }
    let list = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    list.elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                rdkafka::Offset::Offset(o) => o,
                _ => -1,
            };
            (e.topic().to_string(), e.partition(), offset)
        })
        .collect()
}
