//! End to end through the real parts: canonical events published to the
//! local broker, the processor and the sink running against it, and the
//! window metrics read back from the real ClickHouse. Run by
//! `deploy/local/test.sh`, which starts both servers and sets
//! CALLPULSE_TEST_KAFKA and CALLPULSE_TEST_CLICKHOUSE.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use callpulse_core::{CoreHours, Engine, EngineConfig, EventKind, Timestamp, WindowSize};
use callpulse_e2e::test_config;
use callpulse_runtime::kafka;
use callpulse_simulator::{generate, SimulationPlan};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
struct Counts {
    practice: String,
    window: String,
    start: u32,
    offered: u64,
    answered: u64,
    abandoned: u64,
    callback_requested: u64,
    wait_count: u64,
    wait_ms_sum: u64,
    unique_callers: u64,
    peak_waiting: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_become_exact_window_counts_in_clickhouse() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let config = test_config("pipeline");
    let plan = SimulationPlan {
        practices: 4,
        seed: 42,
        start: Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap(),
        duration_ms: 20 * 60_000,
        calls_per_practice_minute: 1.5,
        speed: None,
    };
    let events = generate(&plan);
    assert!(
        events.len() > 200,
        "the plan should produce traffic, got {}",
        events.len()
    );

    // Expected, independently of the pipeline: offered per practice counted
    // straight from the events, and the engine's final windows.
    let mut offered_by_practice: BTreeMap<String, u64> = BTreeMap::new();
    for event in events.iter().filter(|e| e.kind == EventKind::Offered) {
        *offered_by_practice
            .entry(event.practice.clone())
            .or_default() += 1;
    }
    let mut engine = Engine::new(EngineConfig::replay(CoreHours::shipped()));
    for event in &events {
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

    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let processor = tokio::spawn(callpulse_processor::run(
        config.clone(),
        stopped(stop_rx.clone()),
    ));
    let sink = tokio::spawn(callpulse_sink::run(
        config.clone(),
        stopped(stop_rx.clone()),
    ));

    let producer = kafka::producer(&config.kafka).unwrap();
    callpulse_simulator::publish(&producer, &config.topics.call_events, &events)
        .await
        .unwrap();

    let client = callpulse_sink::clickhouse_client(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let actual = loop {
        let rows = client
            .query(
                "SELECT practice, window, toUInt32(`start`) AS start, offered, answered, abandoned, \
                 callback_requested, wait_count, wait_ms_sum, unique_callers, peak_waiting \
                 FROM window_metrics FINAL ORDER BY window, practice, start",
            )
            .fetch_all::<Counts>()
            .await;
        if let Ok(rows) = &rows {
            if *rows == expected {
                break rows.clone();
            }
        }
        if Instant::now() > deadline {
            break rows.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop_tx.send(true).unwrap();
    processor.await.unwrap().unwrap();
    sink.await.unwrap().unwrap();

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
    // And the plain count, independent of the engine: 1-minute windows add up to the events.
    let mut offered_in_clickhouse: BTreeMap<String, u64> = BTreeMap::new();
    for row in actual
        .iter()
        .filter(|r| r.window == WindowSize::Minute.as_str())
    {
        *offered_in_clickhouse
            .entry(row.practice.clone())
            .or_default() += row.offered;
    }
    assert_eq!(offered_in_clickhouse, offered_by_practice);
}
