//! End to end for the threshold rules (issue #7, rule 2): call events with
//! many abandoned calls in core hours, published to the real local broker,
//! through the processor, come out on the alerts topic as a firing
//! `abandoned_rate` alert. Run by `deploy/local/test.sh` (it sets
//! CALLPULSE_TEST_KAFKA and CALLPULSE_TEST_CLICKHOUSE).

use std::time::{Duration, Instant};

use callpulse_core::alert::{Alert, AlertKind, AlertState};
use callpulse_core::{CallEvent, EventKind, Timestamp};
use callpulse_e2e::{read_topic, test_config};
use callpulse_runtime::kafka;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_abandoned_calls_in_core_hours_raise_an_abandoned_rate_alert() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    // The built-in rules: abandoned above 30% of at least 20 offered calls
    // over the last 15 minutes.
    let config = test_config("thresholds");
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let processor = tokio::spawn(callpulse_processor::run(config.clone(), async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }));

    // Monday 23 November 2026 from 09:00 London (GMT): core hours. Three
    // calls a minute; one answered after 20 s, two abandoned after 40 s.
    let start = Timestamp::parse_rfc3339("2026-11-23T09:00:00Z").unwrap();
    let mut events = Vec::new();
    let mut push = |id: String, call: &str, kind: EventKind, ms: i64| {
        events.push(CallEvent {
            event_id: id,
            call_id: Some(call.to_string()),
            vendor: "generic".into(),
            practice: "A81001".into(),
            kind,
            at: Timestamp(start.0 + ms),
            caller: None,
            queue_position: None,
        })
    };
    for minute in 0..20i64 {
        for n in 0..3i64 {
            let call = format!("c{minute}-{n}");
            let t = minute * 60_000 + n * 1_000;
            push(format!("{call}-o"), &call, EventKind::Offered, t);
            if n == 0 {
                push(format!("{call}-a"), &call, EventKind::Answered, t + 20_000);
                push(format!("{call}-e"), &call, EventKind::Ended, t + 50_000);
            } else {
                push(format!("{call}-x"), &call, EventKind::Abandoned, t + 40_000);
            }
        }
    }
    events.sort_by_key(|e| e.at);
    let published = Instant::now();
    let producer = kafka::producer(&config.kafka).unwrap();
    callpulse_simulator::publish(&producer, &config.topics.call_events, &events)
        .await
        .unwrap();

    let firing = |alerts: &[Alert]| {
        alerts
            .iter()
            .find(|a| a.kind == AlertKind::AbandonedRate && a.state == AlertState::Firing)
            .cloned()
    };
    let mut alerts: Vec<Alert> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(45);
    while Instant::now() < deadline && firing(&alerts).is_none() {
        alerts = read_topic(&config, &config.topics.alerts, 1, Duration::from_secs(2))
            .into_iter()
            .map(|(key, payload)| {
                assert_eq!(key, "A81001", "alerts are keyed by practice");
                serde_json::from_slice(&payload).unwrap()
            })
            .collect();
    }
    eprintln!(
        "abandoned-rate alert on the topic {:?} after publication",
        published.elapsed()
    );
    stop_tx.send(true).unwrap();
    processor.await.unwrap().unwrap();

    let alert = firing(&alerts).unwrap_or_else(|| panic!("no abandoned_rate alert: {alerts:#?}"));
    // The first period with 20 offered: 09:00-09:07 holds 21, 14 abandoned.
    assert_eq!(alert.id, "abandoned_rate:A81001:2026-11-23T09:07:00.000Z");
    assert_eq!(alert.revision, 1);
    assert_eq!(
        (alert.offered, alert.abandoned, alert.value),
        (Some(21), Some(14), Some(67))
    );
    assert_eq!(
        alert.summary,
        "A81001: 67% of calls abandoned in the last 15 minutes (14 of 21), since 09:07"
    );
    // Fields of other kinds are null in the record.
    let json = serde_json::to_value(&alert).unwrap();
    assert_eq!(json["kind"], "abandoned_rate");
    assert!(json["diverted_calls"].is_null() && json["opened_by"].is_null());
    // No other threshold fired: waits are short and few wait at once.
    assert!(
        alerts.iter().all(|a| a.kind == AlertKind::AbandonedRate),
        "{alerts:#?}"
    );
}
