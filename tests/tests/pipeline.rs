//! End to end through the real parts: canonical events published to the
//! local broker, the processor and the sink running against it, and the
//! window metrics read back from the real ClickHouse. Run by
//! `deploy/local/test.sh`, which starts both servers and sets
//! CALLPULSE_TEST_KAFKA and CALLPULSE_TEST_CLICKHOUSE.

use std::collections::BTreeMap;
use std::time::Duration;

use callpulse_core::{EventKind, Timestamp, WindowSize};
use callpulse_e2e::{assert_same_counts, expected_counts, test_config, wait_for_counts, Pipeline};
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
    let pipeline = Pipeline::start(&config);

    let producer = kafka::producer(&config.kafka).unwrap();
    callpulse_simulator::publish(&producer, &config.topics.call_events, &events)
        .await
        .unwrap();

    let actual = wait_for_counts(&config, &expected, Duration::from_secs(60)).await;

    // The calls table: one row per call with the replay's outcome and wait.
    let mut engine = callpulse_core::Engine::new(callpulse_core::EngineConfig::replay(
        callpulse_core::CoreHours::shipped(),
    ));
    for event in &events {
        engine.ingest(event);
    }
    let mut expected_calls: Vec<(String, String, Option<u64>)> = engine
        .finish()
        .calls
        .iter()
        .map(|c| {
            let outcome = c
                .outcome
                .map(|k| k.as_str().to_string())
                .unwrap_or_default();
            (c.call_id.clone(), outcome, c.wait_ms)
        })
        .collect();
    expected_calls.sort();
    let client = callpulse_sink::clickhouse_client(&config);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let calls = loop {
        let rows: Vec<(String, String, Option<u64>)> = client
            .query("SELECT call_id, outcome, wait_ms FROM calls FINAL ORDER BY call_id")
            .fetch_all()
            .await
            .unwrap_or_default();
        if rows == expected_calls || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    pipeline.stop().await;

    assert_same_counts(&actual, &expected);
    assert_eq!(calls.len(), expected_calls.len(), "one row per call");
    assert_eq!(
        calls, expected_calls,
        "each call's outcome and wait as replay has them"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diversion_in_core_hours_reaches_the_alerts_topic() {
    use callpulse_core::alert::{Alert, AlertState};
    use callpulse_core::CallEvent;
    let config = test_config("alerts");
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let processor = tokio::spawn(callpulse_processor::run(config.clone(), async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }));
    let event = |id: &str, call: Option<&str>, kind: EventKind, at: &str| CallEvent {
        event_id: id.into(),
        call_id: call.map(str::to_string),
        vendor: "generic".into(),
        practice: "A81001".into(),
        kind,
        at: Timestamp::parse_rfc3339(at).unwrap(),
        caller: None,
        queue_position: None,
    };
    // Monday 23 November 2026, 09:00 London (GMT): core hours.
    let events = [
        event("on", None, EventKind::Divert111On, "2026-11-23T09:00:00Z"),
        event("o1", Some("c1"), EventKind::Offered, "2026-11-23T09:01:00Z"),
        event(
            "d1",
            Some("c1"),
            EventKind::Diverted111,
            "2026-11-23T09:01:05Z",
        ),
    ];
    let sink = tokio::spawn(callpulse_sink::run(config.clone(), {
        let mut rx = stop_tx.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }));
    let published = std::time::Instant::now();
    let producer = kafka::producer(&config.kafka).unwrap();
    callpulse_simulator::publish(&producer, &config.topics.call_events, &events)
        .await
        .unwrap();
    let mut alerts: Vec<Alert> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline
        && !alerts.iter().any(|a| a.diverted_calls == Some(1))
    {
        alerts =
            callpulse_e2e::read_topic(&config, &config.topics.alerts, 2, Duration::from_secs(2))
                .into_iter()
                .map(|(_, payload)| serde_json::from_slice(&payload).unwrap())
                .collect();
    }
    eprintln!(
        "alert on the topic {:?} after publication",
        published.elapsed()
    );
    // The sink keeps every state in the alerts table; alert_status joins deliveries.
    let client = callpulse_sink::clickhouse_client(&config);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let rows: Vec<(String, String, u64)> = client
            .query("SELECT id, state, diverted_calls FROM alert_status ORDER BY revision")
            .fetch_all()
            .await
            .unwrap_or_default();
        if rows.iter().any(|(_, _, calls)| *calls == 1) || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop_tx.send(true).unwrap();
    processor.await.unwrap().unwrap();
    sink.await.unwrap().unwrap();
    assert!(
        stored.iter().any(
            |(id, state, calls)| id == "div111:A81001:2026-11-23T09:00:00.000Z"
                && state == "firing"
                && *calls == 1
        ),
        "{stored:?}"
    );
    let latest = alerts.last().expect("an alert on the alerts topic");
    assert_eq!(latest.id, "div111:A81001:2026-11-23T09:00:00.000Z");
    assert_eq!(latest.state, AlertState::Firing);
    assert_eq!(latest.diverted_calls, Some(1));
    assert!(latest.summary.contains("A81001"), "{}", latest.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_twice_through_the_adapter_are_counted_once() {
    use callpulse_adapters::http::{serve, IngestState, TwilioAuth};
    use callpulse_adapters::publish::Publisher;
    use callpulse_adapters::{AdaptContext, PracticeMapping, Pseudonymiser, Vendor};
    use std::sync::Arc;

    let config = test_config("duplicates");
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let plan = SimulationPlan {
        practices: 2,
        seed: 11,
        start: Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap(),
        duration_ms: 10 * 60_000,
        calls_per_practice_minute: 2.0,
        speed: None,
    };
    let lines: Vec<String> = generate(&plan).iter().map(|e| e.to_json()).collect();
    let key = b"duplicate-test-key-of-at-least-32-bytes!";
    // What the adapter makes of each line (the caller becomes a pseudonym).
    let mapping = PracticeMapping::default();
    let pseudonymiser = Pseudonymiser::new(key).unwrap();
    let ctx = AdaptContext {
        mapping: &mapping,
        pseudonymiser: &pseudonymiser,
        received_at: None,
    };
    let adapted: Vec<_> = lines
        .iter()
        .flat_map(|line| Vendor::Generic.adapt_record(line, &ctx).unwrap())
        .collect();
    let offered_once = adapted
        .iter()
        .filter(|e| e.kind == EventKind::Offered)
        .count() as u64;
    // Each repeat is either a duplicate (its window still open) or late (its
    // window already final, so it goes to the late-events topic): which one
    // depends on the watermark when it arrives. Either way it adds nothing.
    let without_duplicates = |rows: Vec<callpulse_sink::WindowMetricsRow>| {
        rows.into_iter()
            .map(|mut row| {
                row.dq_duplicates = 0;
                row
            })
            .collect::<Vec<_>>()
    };
    let expected = without_duplicates(callpulse_e2e::expected_rows(&adapted));

    let state = Arc::new(IngestState {
        mapping: PracticeMapping::default(),
        pseudonymiser: Pseudonymiser::new(key).unwrap(),
        publisher: Publisher::new(&config).unwrap(),
        metrics: Arc::new(callpulse_runtime::metrics::Registry::new()),
        max_body_bytes: 1 << 20,
        body_read_timeout: std::time::Duration::from_secs(30),
        ingest_token: None,
        twilio: TwilioAuth::Disabled,
        // Simulated events on a fixed day: not bounded by arrival time.
        time_bounds: callpulse_adapters::bounds::TimeBounds {
            max_age_ms: 0,
            max_lead_ms: 0,
        },
        throttle: callpulse_adapters::throttle::Throttle::new(0, 0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    tokio::spawn(serve(state, listener, stopped(stop_rx.clone())));
    let processor = tokio::spawn(callpulse_processor::run(
        config.clone(),
        stopped(stop_rx.clone()),
    ));
    let sink = tokio::spawn(callpulse_sink::run(
        config.clone(),
        stopped(stop_rx.clone()),
    ));

    // The same body twice, as a supplier retrying a webhook would.
    let body = lines.join("\n");
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let response = client.post(&url).body(body.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    let client = callpulse_sink::clickhouse_client(&config);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let rows = loop {
        let rows: Vec<callpulse_sink::WindowMetricsRow> = client
            .query("SELECT ?fields FROM window_metrics FINAL ORDER BY window, practice, start")
            .fetch_all()
            .await
            .unwrap()
            .into_iter()
            .map(callpulse_e2e::values_only)
            .collect();
        let duplicates: u64 = rows
            .iter()
            .filter(|r| r.window == "1m")
            .map(|r| r.dq_duplicates)
            .sum();
        let converged = without_duplicates(rows.clone()) == expected;
        // Read the late events only once the windows are right, and wait for
        // as many as the repeats not counted as duplicates (a fresh reader
        // must join its group first: seconds on the local broker).
        let late = if converged {
            let missing = (adapted.len() as u64).saturating_sub(duplicates) as usize;
            callpulse_e2e::read_topic(
                &config,
                &config.topics.late_events,
                missing,
                Duration::from_secs(15),
            )
            .len()
        } else {
            0
        };
        let settled = duplicates + late as u64 == adapted.len() as u64;
        if (converged && settled) || std::time::Instant::now() > deadline {
            break (rows, late);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (rows, late) = rows;
    stop_tx.send(true).unwrap();
    processor.await.unwrap().unwrap();
    sink.await.unwrap().unwrap();
    callpulse_e2e::assert_same_rows(&without_duplicates(rows.clone()), &expected);
    let offered: u64 = rows
        .iter()
        .filter(|r| r.window == "1m")
        .map(|r| r.offered)
        .sum();
    assert_eq!(offered, offered_once, "each call is offered once");
    let duplicates: u64 = rows
        .iter()
        .filter(|r| r.window == "1m")
        .map(|r| r.dq_duplicates)
        .sum();
    assert_eq!(
        duplicates + late as u64,
        adapted.len() as u64,
        "every repeat is a duplicate or late, none is lost or counted"
    );
}
