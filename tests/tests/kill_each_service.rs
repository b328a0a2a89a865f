//! Each service killed with SIGKILL at points in the middle of a run (issue
//! #10): the adapters while requests are in flight, the sink twice while it
//! inserts, the alerter while it delivers. Each is started again at once.
//! Senders behave as vendors do: a request that got no answer, or a 503,
//! is sent again until it is answered 200.
//!
//! Nothing may be lost and nothing counted twice: every event sent is on
//! the call-events topic, and ClickHouse ends equal to `callpulse replay`
//! of that topic, field for field; a resent request repeats event ids,
//! which change only `dq_duplicates`. Every alert reaches the webhook;
//! a repeat is allowed only with the idempotency key of the first delivery,
//! so the receiver can drop it. (The processor's own SIGKILL test is
//! recovery.rs.)

mod ops_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callpulse_core::CallEvent;
use callpulse_e2e::{
    assert_same_rows, diversion_alert, expected_rows, publish_alerts, read_topic, test_env,
    wait_for_rows,
};
use callpulse_runtime::avro::decode_call_event;
use callpulse_runtime::{kafka, Config};
use ops_support::*;

const WAIT: Duration = Duration::from_secs(60);

/// Deliveries seen by the webhook: (idempotency key, body).
type Deliveries = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook that answers 200 and keeps every delivery.
async fn recording_hook() -> (String, Deliveries) {
    use axum::http::HeaderMap;
    use axum::routing::post;
    let seen: Deliveries = Arc::default();
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/hooks/kill-test",
        post(move |headers: HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                kept.lock().unwrap().push((key, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/kill-test", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

/// Sends `body` to the adapters until it is answered 200, as a vendor's
/// retrying sender would (no answer, 503 or 429: wait and send again).
async fn post_until_accepted(client: &reqwest::Client, base: &str, body: String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = client
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer {
            Ok(response) if response.status() == 200 => return,
            Ok(response) if [429, 503].contains(&response.status().as_u16()) => {}
            Ok(response) => {
                let status = response.status();
                panic!(
                    "the adapters refused events ({status}): {}",
                    response.text().await.unwrap_or_default()
                );
            }
            Err(_) => {} // killed mid-request, or not listening yet
        }
        assert!(
            Instant::now() < deadline,
            "the adapters never accepted a batch"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every service's `/readyz` answers 200; panics with the
/// logs of those that do not.
async fn wait_until_ready(ports: &Ports, services: &[Process]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut waiting = Vec::new();
        for (name, base) in ports.bases() {
            if get(&format!("{base}/readyz")).await.0 != 200 {
                waiting.push(name);
            }
        }
        if waiting.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = services
                .iter()
                .filter(|s| waiting.contains(&s.name.as_str()))
                .map(|s| format!("--- {} ---\n{}", s.name, s.log()))
                .collect();
            panic!("not ready after {WAIT:?}: {waiting:?}\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGKILL, then the same service again on the same ports.
fn kill_and_restart(service: &mut Process, env: &[(String, String)]) {
    let name = service.name.clone();
    service.kill();
    *service = Process::callpulse(&name, &[&name], env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_sink_and_alerter_killed_mid_run_lose_nothing() {
    let (hook_url, deliveries) = recording_hook().await;
    let contacts = contacts_file("kill", &hook_url);
    let ports = Ports::free();
    let mut env = stack_env(test_env("kill"), &ports, &contacts);
    env.push((
        "CALLPULSE__ALERTER__HMAC_SECRET".into(),
        "kill-test-hmac-secret-0123456789".into(),
    ));
    env.push((
        "CALLPULSE__ADAPTERS__PSEUDONYM_KEY".into(),
        "kill-test-pseudonym-key-0123456789abcdef".into(),
    ));
    let config = Config::load_from(None, env.clone()).unwrap();
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let mut services = start_all(&env);
    let adapters = format!("http://127.0.0.1:{}", ports.adapters);
    wait_until_ready(&ports, &services).await;
    // start_all's order.
    let (sink, alerter, adapter) = (1, 2, 3);
    assert_eq!(services[adapter].name, "adapters");

    let events = recent_events(6, 1.5);
    let sent_once = expected_rows(&events);
    let lines: Vec<String> = events.iter().map(|e| e.to_json()).collect();
    let batches: Vec<String> = lines.chunks(100).map(|chunk| chunk.join("\n")).collect();
    assert!(batches.len() >= 8, "{} batches", batches.len());
    let alerts: Vec<_> = (1..=12)
        .map(|i| diversion_alert(&format!("A81{i:03}"), Some("QHM")))
        .collect();
    let client = reqwest::Client::new();

    for (i, batch) in batches.iter().enumerate() {
        match i {
            // The adapters die with requests in flight: this batch as ten
            // concurrent requests of ten events.
            2 => {
                let in_flight: Vec<_> = batch
                    .lines()
                    .collect::<Vec<_>>()
                    .chunks(10)
                    .map(|chunk| {
                        let (client, base) = (client.clone(), adapters.clone());
                        let body = chunk.join("\n");
                        tokio::spawn(async move { post_until_accepted(&client, &base, body).await })
                    })
                    .collect();
                tokio::time::sleep(Duration::from_millis(15)).await;
                kill_and_restart(&mut services[adapter], &env);
                for request in in_flight {
                    request.await.unwrap();
                }
                wait_until_ready(&ports, &services).await;
                continue;
            }
            // The sink, right after a batch it is busy with.
            4 | 7 => {
                post_until_accepted(&client, &adapters, batch.clone()).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                kill_and_restart(&mut services[sink], &env);
                // Its replacement is back in the group before the next kill:
                // the local broker holds a dead member's partitions until
                // `max.poll.interval.ms` passes (docs/broker.md).
                wait_until_ready(&ports, &services).await;
                continue;
            }
            // The alerter, with alerts read and not all delivered.
            5 => {
                let first: Vec<_> = alerts[..8].iter().collect();
                publish_alerts(&config, &first).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
                kill_and_restart(&mut services[alerter], &env);
                wait_until_ready(&ports, &services).await;
                let rest: Vec<_> = alerts[8..].iter().collect();
                publish_alerts(&config, &rest).await;
            }
            _ => {}
        }
        post_until_accepted(&client, &adapters, batch.clone()).await;
    }

    // What the adapters published: every event sent, none lost, none
    // invented; some twice (a request answered after the adapters died was
    // sent again), which the processor must count once.
    let published: Vec<CallEvent> = read_topic(
        &config,
        &config.topics.call_events,
        events.len() * 2,
        Duration::from_secs(10),
    )
    .into_iter()
    .map(|(_, payload)| decode_call_event(&payload).unwrap())
    .collect();
    let sent: BTreeSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let arrived: BTreeSet<&str> = published.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(arrived, sent, "the call-events topic against what was sent");
    eprintln!(
        "{} events sent, {} published ({} repeats from resent requests)",
        events.len(),
        published.len(),
        published.len() - events.len()
    );
    // ClickHouse must equal replay of exactly that input: the same as the
    // input sent once, but for `dq_duplicates`, which counts the repeats.
    let expected = expected_rows(&published);
    let without_repeats = |rows: &[callpulse_sink::WindowMetricsRow]| {
        rows.iter()
            .cloned()
            .map(|mut row| {
                row.dq_duplicates = 0;
                row
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_repeats(&expected), without_repeats(&sent_once));
    let actual = wait_for_rows(&config, &expected, Duration::from_secs(120)).await;
    if actual != expected {
        for service in &services {
            eprintln!("--- {} ---\n{}", service.name, service.log());
        }
    }
    assert_same_rows(&actual, &expected);

    // Every alert delivered; repeats only under the first delivery's key.
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = deliveries.lock().unwrap().clone();
        let missing: Vec<&str> = alerts
            .iter()
            .map(|a| a.id.as_str())
            .filter(|id| !seen.iter().any(|(_, body)| body.contains(id)))
            .collect();
        if missing.is_empty() {
            let mut key_of: BTreeMap<&str, &str> = BTreeMap::new();
            for alert in &alerts {
                for (key, _) in seen.iter().filter(|(_, body)| body.contains(&alert.id)) {
                    assert!(!key.is_empty(), "a delivery without an idempotency key");
                    let first = *key_of.entry(alert.id.as_str()).or_insert(key.as_str());
                    assert_eq!(first, key, "{} delivered again under another key", alert.id);
                }
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alerts never delivered: {missing:?}\nalerter log:\n{}",
            services[alerter].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for service in services.iter_mut() {
        assert!(
            service.terminate(Duration::from_secs(20)),
            "{} did not stop cleanly:\n{}",
            service.name,
            service.log()
        );
    }
}
