//! `callpulse alerter` end to end against the real broker and ClickHouse:
//! alert records published to a fresh alerts topic reach local receivers
//! (a signed webhook that fails its first request, a Slack-compatible
//! hook, an operators' hook that refuses everything), grouped and routed
//! through the organisations file; every attempt lands in
//! `alert_deliveries`; the refused alert lands on the undeliverable topic;
//! offsets are committed once all is settled.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use callpulse_alerter::signature;
use callpulse_core::Timestamp;
use callpulse_e2e::{committed_offsets, diversion_alert, publish_alerts, read_topic, test_config};
use callpulse_runtime::{kafka, Config};
use serde::Deserialize;
use serde_json::Value;

const SECRET: &str = "alerter-e2e-hmac-secret";
const WAIT: Duration = Duration::from_secs(30);

/// Every request: (path, when, headers, body).
type Seen = Arc<Mutex<Vec<(String, Instant, HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/{name}",
            post(
                |Path(name): Path<String>,
                 State(seen): State<Seen>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let mut seen = seen.lock().unwrap();
                    let earlier = seen.iter().filter(|(p, ..)| *p == name).count();
                    seen.push((name.clone(), Instant::now(), headers, body));
                    match name.as_str() {
                        // The clinical director's system is down for the first request.
                        "cd" if earlier == 0 => StatusCode::SERVICE_UNAVAILABLE,
                        "ops" => StatusCode::NOT_FOUND,
                        _ => StatusCode::OK,
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// Waits until `count` requests to `path` arrived; returns their arrival times.
async fn arrivals(seen: &Seen, path: &str, count: usize) -> Vec<Instant> {
    let deadline = Instant::now() + WAIT;
    loop {
        let times: Vec<Instant> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, ..)| p == path)
            .map(|(_, at, ..)| *at)
            .collect();
        if times.len() >= count || Instant::now() > deadline {
            return times;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
struct DeliveryRow {
    practice: String,
    recipient: String,
    channel: String,
    pcn: String,
    attempt: u32,
    status: String,
    http_status: u16,
    group_size: u32,
}

#[allow(clippy::too_many_arguments)]
fn row(
    practice: &str,
    recipient: &str,
    channel: &str,
    pcn: &str,
    attempt: u32,
    status: &str,
    http_status: u16,
    group_size: u32,
) -> DeliveryRow {
    DeliveryRow {
        practice: practice.into(),
        recipient: recipient.into(),
        channel: channel.into(),
        pcn: pcn.into(),
        attempt,
        status: status.into(),
        http_status,
        group_size,
    }
}

/// The alerter group's committed offsets on `topic`, summed (none: 0).
fn committed(config: &Config, topic: &str) -> i64 {
    committed_offsets(config, &config.alerter.group_id, &[topic])
        .iter()
        .map(|(_, _, offset)| (*offset).max(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_their_hooks_grouped_recorded_and_committed() {
    let (base, seen) = receiver().await;
    let mut config = test_config("alerter");
    let run = config.clickhouse.database.clone();
    config.alerter.group_id = format!("alerter-{run}");
    config.alerter.undeliverable_topic = format!("undeliverable-{run}");
    config.alerter.hmac_secret = SECRET.into();
    config.alerter.group_window_ms = 300;
    config.alerter.backoff_initial_ms = 100;
    config.alerter.max_attempts = 3;
    config.alerter.organisations =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../data/organisations.csv").into();
    let contacts = std::env::temp_dir().join(format!("callpulse-contacts-{run}.toml"));
    std::fs::write(
        &contacts,
        format!(
            r#"
            operators = ["ops"]
            [recipients.cd]
            name = "Penbury PCN clinical director's system"
            channel = "webhook"
            url = "{base}/cd"
            [recipients.pct]
            name = "QHM primary care team"
            channel = "slack"
            url = "{base}/pct"
            [recipients.ops]
            channel = "slack"
            url = "{base}/ops"
            [pcn]
            U10030 = ["cd"]
            [icb]
            QHM = ["pct"]
            "#
        ),
    )
    .unwrap();
    config.alerter.contacts = contacts.display().to_string();
    kafka::ensure_topics(
        &config.kafka,
        &[&config.topics.alerts, &config.alerter.undeliverable_topic],
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let alerter = tokio::spawn(callpulse_alerter::run(config.clone(), async move {
        let _ = stopped.await;
    }));

    // Warm-up: the consumer joins its group; the webhook's first request fails.
    let warm_up = diversion_alert("A81003", None);
    let started = Instant::now();
    publish_alerts(&config, &[&warm_up]).await;
    assert_eq!(
        arrivals(&seen, "cd", 2).await.len(),
        2,
        "retried after a 503"
    );
    assert_eq!(arrivals(&seen, "pct", 1).await.len(), 1);
    println!(
        "warm-up (group join, one 503 and a retry): {:?}",
        started.elapsed()
    );

    // Two practices of one PCN at once, and a practice nobody knows.
    let first = diversion_alert("A81001", None);
    let second = diversion_alert("A81002", None);
    let stranger = diversion_alert("Z99999", None);
    let published = Instant::now();
    publish_alerts(&config, &[&first, &second, &stranger]).await;
    let acknowledged = published.elapsed();
    let cd = arrivals(&seen, "cd", 4).await;
    let pct = arrivals(&seen, "pct", 2).await;
    assert_eq!(cd.len(), 4, "one webhook request per alert state");
    assert_eq!(pct.len(), 2, "one grouped Slack message for both practices");
    println!(
        "alerts published (Kafka acknowledged all three after {acknowledged:?}) -> webhook received: {:?} and {:?}; -> grouped Slack message (window 300 ms): {:?} (goal < 3 s)",
        cd[2] - published,
        cd[3] - published,
        pct[1] - published
    );

    {
        let seen = seen.lock().unwrap();
        let mut keys = Vec::new();
        for (path, _, headers, body) in seen.iter() {
            let json: Value = serde_json::from_slice(body).unwrap();
            match path.as_str() {
                "cd" => {
                    let header = headers[signature::HEADER].to_str().unwrap();
                    assert!(signature::verify(SECRET.as_bytes(), body, header));
                    let key = headers["idempotency-key"].to_str().unwrap().to_string();
                    assert_eq!(json["idempotency_key"], key.as_str());
                    assert_eq!(
                        json["alerts"][0]["alert"]["pcn"], "U10030",
                        "from the organisations file"
                    );
                    keys.push(key);
                }
                "pct" => assert!(json["text"].is_string()),
                _ => {}
            }
        }
        assert_eq!(keys[0], keys[1], "a retry keeps its idempotency key");
        assert_eq!(keys[0], format!("{}:1", warm_up.id));
        let (_, _, _, group) = seen.iter().filter(|(p, ..)| p == "pct").nth(1).unwrap();
        let text: Value = serde_json::from_slice(group).unwrap();
        let text = text["text"].as_str().unwrap();
        assert!(text.contains("A81001") && text.contains("A81002"), "{text}");
    }

    // The stranger went to the operators, whose hook refuses: undeliverable.
    let undeliverable = read_topic(&config, &config.alerter.undeliverable_topic, 1, WAIT);
    assert_eq!(undeliverable.len(), 1);
    let record: Value = serde_json::from_slice(&undeliverable[0].1).unwrap();
    assert_eq!(record["alert"]["id"], stranger.id.as_str());
    assert_eq!(record["recipient"], "ops");
    assert_eq!(record["error"], "HTTP 404");

    // Every attempt is in ClickHouse.
    let client = callpulse_sink::clickhouse_client(&config);
    let mut expected = vec![
        row("A81003", "cd", "webhook", "U10030", 1, "retry", 503, 1),
        row("A81003", "cd", "webhook", "U10030", 2, "delivered", 200, 1),
        row("A81003", "pct", "slack", "U10030", 1, "delivered", 200, 1),
        row("A81001", "cd", "webhook", "U10030", 1, "delivered", 200, 1),
        row("A81002", "cd", "webhook", "U10030", 1, "delivered", 200, 1),
        row("A81001", "pct", "slack", "U10030", 1, "delivered", 200, 2),
        row("A81002", "pct", "slack", "U10030", 1, "delivered", 200, 2),
        row("Z99999", "ops", "slack", "", 1, "failed", 404, 1),
    ];
    expected.sort_by(|a, b| {
        (&a.recipient, &a.practice, a.attempt).cmp(&(&b.recipient, &b.practice, b.attempt))
    });
    let deadline = Instant::now() + WAIT;
    let rows = loop {
        let rows = client
            .query(
                "SELECT practice, recipient, channel, pcn, attempt, status, http_status, group_size \
                 FROM alert_deliveries ORDER BY recipient, practice, attempt",
            )
            .fetch_all::<DeliveryRow>()
            .await
            .unwrap_or_default();
        if rows.len() >= expected.len() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rows, expected);

    // Offsets are committed once all four alerts are settled.
    let deadline = Instant::now() + WAIT;
    while committed(&config, &config.topics.alerts) < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(committed(&config, &config.topics.alerts), 4);

    let _ = stop.send(());
    alerter.await.unwrap().unwrap();
    let _ = std::fs::remove_file(contacts);
}

/// The whole path of issue #7: a `divert_111_on` call event published to
/// Kafka, the processor's alert, the alerter, the clinical director's webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diversion_event_reaches_the_clinical_directors_webhook() {
    use callpulse_core::{CallEvent, EventKind};
    let (base, seen) = receiver().await;
    let mut config = test_config("divert_e2e");
    let run = config.clickhouse.database.clone();
    config.alerter.group_id = format!("alerter-{run}");
    config.alerter.undeliverable_topic = format!("undeliverable-{run}");
    config.alerter.hmac_secret = SECRET.into();
    config.alerter.group_window_ms = 200;
    config.alerter.organisations =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../data/organisations.csv").into();
    let contacts = std::env::temp_dir().join(format!("callpulse-contacts-{run}.toml"));
    std::fs::write(
        &contacts,
        format!(
            r#"
            operators = ["ops"]
            [recipients.cd]
            channel = "webhook"
            url = "{base}/cd"
            [recipients.ops]
            channel = "slack"
            url = "{base}/ops"
            [pcn]
            U10030 = ["cd"]
            "#
        ),
    )
    .unwrap();
    config.alerter.contacts = contacts.display().to_string();
    let mut topics = config.topics.all().to_vec();
    topics.push(&config.alerter.undeliverable_topic);
    kafka::ensure_topics(&config.kafka, &topics).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let processor = tokio::spawn(callpulse_processor::run(
        config.clone(),
        stopped(stop_rx.clone()),
    ));
    let alerter = tokio::spawn(callpulse_alerter::run(
        config.clone(),
        stopped(stop_rx.clone()),
    ));
    // Let both join their groups before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Monday 23 November 2026 10:00 London: core hours. A81001 is in PCN U10030.
    let switch_on = CallEvent {
        event_id: "switch-1".into(),
        call_id: None,
        vendor: "generic".into(),
        practice: "A81001".into(),
        kind: EventKind::Divert111On,
        at: Timestamp::parse_rfc3339("2026-11-23T10:00:00Z").unwrap(),
        caller: None,
        queue_position: None,
    };
    let published = Instant::now();
    let producer = kafka::producer(&config.kafka).unwrap();
    callpulse_simulator::publish(&producer, &config.topics.call_events, &[switch_on])
        .await
        .unwrap();
    let received = arrivals(&seen, "cd", 1).await;
    stop_tx.send(true).unwrap();
    processor.await.unwrap().unwrap();
    alerter.await.unwrap().unwrap();
    assert_eq!(
        received.len(),
        1,
        "the clinical director's webhook got the alert"
    );
    println!(
        "divert_111_on published -> clinical director's webhook: {:?} (goal < 3 s)",
        received[0] - published
    );
    let requests = seen.lock().unwrap();
    let (_, _, headers, body) = requests.iter().find(|(path, ..)| path == "cd").unwrap();
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("div111:A81001:2026-11-23T10:00:00.000Z"),
        "{text}"
    );
    let signature = headers["x-callpulse-signature"].to_str().unwrap();
    assert!(
        signature::verify(SECRET.as_bytes(), body, signature),
        "signed with the shared secret"
    );
}
