//! End to end through the real parts: canonical events published to the
//! local broker, the processor and the sink running against it, and the
//! window metrics read back from the real ClickHouse. Run by
//! `deploy/local/test.sh`, which starts both servers and sets
//! CALLPULSE_TEST_KAFKA and CALLPULSE_TEST_CLICKHOUSE.

use std::collections::BTreeMap;
use std::time::Duration;

use callpulse_core::{EventKind, Timestamp, WindowSize};
use callpulse_e2e::{assert_same_counts, expected_counts, test_config, wait_for_counts};
use callpulse_runtime::kafka;
use callpulse_simulator::{generate, SimulationPlan};

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
    let expected = expected_counts(&events);

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

    let actual = wait_for_counts(&config, &expected, Duration::from_secs(60)).await;
    stop_tx.send(true).unwrap();
    processor.await.unwrap().unwrap();
    sink.await.unwrap().unwrap();

    assert_same_counts(&actual, &expected);
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
