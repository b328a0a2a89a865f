//! The operations endpoints of every service (docs/operations.md), on real
//! `callpulse` processes against the real broker and ClickHouse: `/healthz`
//! answers at once, `/readyz` reaches 200 once the service's checks pass,
//! `/metrics` declares the documented metrics and they move with traffic —
//! the processor's window records out, the sink's rows inserted and the
//! window rows in ClickHouse agree. SIGTERM stops each one cleanly. And
//! readiness fails, with the reason, while ClickHouse refuses the sink.

mod ops_support;

use std::time::{Duration, Instant};

use callpulse_e2e::{diversion_alert, publish_alerts, test_env};
use callpulse_runtime::Config;
use ops_support::*;

const WAIT: Duration = Duration::from_secs(60);

/// The metrics each service declares from the start (docs/operations.md);
/// more appear with the traffic that moves them.
const DECLARED_AT_START: &[(&str, &[&str])] = &[
    ("processor", &[]),
    ("sink", &[]),
    ("alerter", &["callpulse_alerter_in_flight"]),
    ("adapters", &[]),
];

/// The metrics each service has once traffic went through.
const AFTER_TRAFFIC: &[(&str, &[&str])] = &[
    (
        "processor",
        &[
            "callpulse_processor_events_in_total",
            "callpulse_processor_records_out_total",
            "callpulse_processor_consumer_lag",
            "callpulse_processor_open_calls",
            "callpulse_processor_watermark_ms",
        ],
    ),
    (
        "sink",
        &[
            "callpulse_sink_records_in_total",
            "callpulse_sink_rows_inserted_total",
            "callpulse_sink_insert_seconds",
            "callpulse_sink_batches_total",
            "callpulse_sink_consumer_lag",
        ],
    ),
    (
        "alerter",
        &[
            "callpulse_alerter_alerts_in_total",
            "callpulse_alerter_deliveries_total",
            "callpulse_alerter_alerts_delivered_total",
            "callpulse_alerter_attempts_total",
            "callpulse_alerter_attempt_seconds",
            "callpulse_alerter_in_flight",
            "callpulse_alerter_consumer_lag",
        ],
    ),
    (
        "adapters",
        &[
            "callpulse_adapter_records_total",
            "callpulse_adapter_events_total",
        ],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_serves_health_readiness_and_metrics_that_move() {
    let env = test_env("ops");
    let config = Config::load_from(None, env.clone()).unwrap();
    let hook = hook("ops-token").await;
    let contacts = contacts_file("ops", &hook.url);
    let ports = Ports::free();
    let mut env = stack_env(env, &ports, &contacts);
    env.push((
        "CALLPULSE__ALERTER__HMAC_SECRET".into(),
        "ops-test-hmac-secret-0123456789".into(),
    ));
    env.push((
        "CALLPULSE__ADAPTERS__PSEUDONYM_KEY".into(),
        "ops-test-pseudonym-key-0123456789abcdef".into(),
    ));
    let mut services = start_all(&env);
    let bases = ports.bases();

    // Alive at once, ready once the group and the stores answer.
    for (name, base) in &bases {
        wait_for_status(&format!("{base}/healthz"), 200, WAIT).await;
        let body = wait_for_status(&format!("{base}/readyz"), 200, WAIT).await;
        let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ready["ready"], true, "{name}: {body}");
        let metrics = get(&format!("{base}/metrics")).await.1;
        for (service, names) in DECLARED_AT_START {
            if service == name {
                for metric in *names {
                    assert!(
                        declares(&metrics, metric),
                        "{name}: no {metric} in\n{metrics}"
                    );
                }
            }
        }
    }
    let readiness = get(&format!("{}/readyz", bases[1].1)).await.1;
    for check in ["kafka", "consumer_group", "clickhouse"] {
        assert!(readiness.contains(check), "the sink's checks: {readiness}");
    }

    // Traffic: calls through the adapters, one alert for the alerter.
    let events: Vec<String> = recent_events(3, 2.0).iter().map(|e| e.to_json()).collect();
    assert!(events.len() > 200, "{} events", events.len());
    post_events(&bases[3].1, &events, None).await;
    publish_alerts(&config, &[&diversion_alert("A81001", Some("QHM"))]).await;

    // The processor's window records out, the sink's rows in and inserted,
    // and ClickHouse agree once everything settled.
    let client = callpulse_sink::clickhouse_client(&config);
    let deadline = Instant::now() + WAIT;
    let (processor, sink) = loop {
        let processor = get(&format!("{}/metrics", bases[0].1)).await.1;
        let sink = get(&format!("{}/metrics", bases[1].1)).await.1;
        let out = metric(
            &processor,
            "callpulse_processor_records_out_total",
            &["topic=\"metrics\""],
        );
        let inserted = metric(
            &sink,
            "callpulse_sink_rows_inserted_total",
            &["table=\"window_metrics\""],
        );
        let events_in = metric(&processor, "callpulse_processor_events_in_total", &[]);
        if events_in == events.len() as f64 && out > 0.0 && inserted == out {
            break (processor, sink);
        }
        assert!(
            Instant::now() < deadline,
            "events in {events_in} of {}, windows out {out}, rows inserted {inserted}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let inserted = metric(
        &sink,
        "callpulse_sink_rows_inserted_total",
        &["table=\"window_metrics\""],
    );
    let versions: u64 = client
        .query("SELECT count() FROM window_metrics")
        .fetch_one()
        .await
        .unwrap();
    let windows: u64 = client
        .query("SELECT count() FROM window_metrics FINAL")
        .fetch_one()
        .await
        .unwrap();
    // Background merges may already have replaced old versions: ClickHouse
    // holds at most what was inserted, and at least one row per window.
    assert!(
        windows > 0 && windows as f64 <= inserted && versions as f64 <= inserted,
        "inserted {inserted}, stored {versions} versions of {windows} windows"
    );
    let timed = metric(
        &sink,
        "callpulse_sink_insert_seconds_count",
        &["table=\"window_metrics\""],
    );
    assert!(timed >= 1.0, "no insert timed:\n{sink}");
    assert_eq!(
        metric(&sink, "callpulse_sink_insert_failures_total", &[]),
        0.0
    );
    let calls_in_clickhouse: u64 = client
        .query("SELECT count() FROM calls FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert!(calls_in_clickhouse > 0);
    let _ = processor;

    // The alert was delivered to the webhook and counted.
    let deadline = Instant::now() + WAIT;
    loop {
        let alerter = get(&format!("{}/metrics", bases[2].1)).await.1;
        let delivered = metric(
            &alerter,
            "callpulse_alerter_deliveries_total",
            &["channel=\"webhook\"", "result=\"delivered\""],
        );
        if delivered >= 1.0 {
            assert!(hook.received.load(std::sync::atomic::Ordering::SeqCst) >= 1);
            assert!(metric(&alerter, "callpulse_alerter_alerts_in_total", &[]) >= 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "no delivery counted:\n{alerter}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let adapters = get(&format!("{}/metrics", bases[3].1)).await.1;
    assert_eq!(
        metric(&adapters, "callpulse_adapter_events_total", &[]),
        events.len() as f64
    );

    // The lag gauges come from a watcher every 10 seconds; once the sink
    // committed everything they read 0.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut seen = std::collections::BTreeMap::new();
    loop {
        for (name, base) in &bases {
            seen.insert(*name, get(&format!("{base}/metrics")).await.1);
        }
        let all_there = AFTER_TRAFFIC
            .iter()
            .all(|(service, names)| names.iter().all(|n| declares(&seen[service], n)));
        let sink_lag = metric(&seen["sink"], "callpulse_sink_consumer_lag", &[]);
        // Every window record the processor published was inserted.
        let out = metric(
            &seen["processor"],
            "callpulse_processor_records_out_total",
            &["topic=\"metrics\""],
        );
        let inserted = metric(
            &seen["sink"],
            "callpulse_sink_rows_inserted_total",
            &["table=\"window_metrics\""],
        );
        if all_there && sink_lag == 0.0 && out == inserted {
            break;
        }
        if Instant::now() > deadline {
            for (service, names) in AFTER_TRAFFIC {
                for n in *names {
                    assert!(
                        declares(&seen[service], n),
                        "{service}: no {n} in\n{}",
                        seen[service]
                    );
                }
            }
            panic!(
                "the sink's lag stays at {sink_lag}, {inserted} of {out} windows inserted:\n{}",
                seen["sink"]
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Graceful shutdown: SIGTERM, exit 0.
    for service in services.iter_mut() {
        let clean = service.terminate(Duration::from_secs(30));
        assert!(
            clean,
            "{} did not stop cleanly:\n{}",
            service.name,
            service.log()
        );
    }
    let _ = std::fs::remove_file(&contacts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_is_not_ready_while_clickhouse_refuses_it_and_ready_again_after() {
    let env = test_env("opsready");
    let config = Config::load_from(None, env.clone()).unwrap();
    let user = PasswordUser::create(&config, "opsready").await;
    let port = free_port();
    let mut env = env;
    for (key, value) in [
        (
            "CALLPULSE__SINK__METRICS_LISTEN",
            format!("127.0.0.1:{port}"),
        ),
        ("CALLPULSE__CLICKHOUSE__USER", user.name.clone()),
        ("CALLPULSE__CLICKHOUSE__PASSWORD", user.password.clone()),
    ] {
        env.push((key.to_string(), value));
    }
    // This one logs JSON (docs/operations.md, "Logs").
    env.push(("CALLPULSE_LOG_FORMAT".into(), "json".into()));
    let mut sink = Process::callpulse("sink", &["sink"], &env);
    let base = format!("http://127.0.0.1:{port}");
    wait_for_status(&format!("{base}/readyz"), 200, WAIT).await;

    // The user disappears: the probe's SELECT 1 is refused within seconds.
    let declaration = user.revoke();
    let body = wait_for_status(&format!("{base}/readyz"), 503, WAIT).await;
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], false, "{body}");
    assert_eq!(ready["checks"]["kafka"], "ok", "{body}");
    let reason = ready["checks"]["clickhouse"].as_str().unwrap();
    assert!(reason.starts_with("ClickHouse"), "{body}");
    assert!(!reason.contains(&user.password), "{body}");
    // Alive all the same.
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    sink.wait_for_log("readiness check fails", WAIT).await;

    user.restore(&declaration);
    wait_for_status(&format!("{base}/readyz"), 200, WAIT).await;
    assert!(sink.terminate(Duration::from_secs(30)), "{}", sink.log());
    let log = sink.log();
    assert!(!log.contains(&user.password));
    for line in log.lines() {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON log line ({err}): {line}"));
        assert!(
            record["level"].is_string() && record["fields"].is_object(),
            "{line}"
        );
    }
    assert!(log.contains("\"check\":\"clickhouse\""), "{log}");
}
