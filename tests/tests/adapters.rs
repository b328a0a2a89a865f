//! The adapters' HTTP ingest and file import against the real local broker:
//! what a sender is told, what lands on the events topic (Avro), and what
//! lands on the dead-letter topic (JSON, numbers masked).

use std::sync::Arc;
use std::time::Duration;

use callpulse_adapters::bounds::TimeBounds;
use callpulse_adapters::http::{serve, IngestState, TwilioAuth};
use callpulse_adapters::import::{checkpoint_path, import_file, FileOutcome};
use callpulse_adapters::publish::Publisher;
use callpulse_adapters::throttle::Throttle;
use callpulse_adapters::{AdaptContext, PracticeMapping, Pseudonymiser, Vendor};
use callpulse_core::{CallEvent, Timestamp};
use callpulse_e2e::{read_topic, test_config};
use callpulse_runtime::avro::decode_call_event;
use callpulse_runtime::metrics::Registry;
use callpulse_runtime::{kafka, Config};
use serde_json::{json, Value};

const KEY: &[u8] = b"adapters-e2e-test-key-at-least-32-bytes";
const WAIT: Duration = Duration::from_secs(20);

struct Server {
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The tests' events are on fixed days: times are not bounded unless a
/// test asks for it.
fn unbounded(mut config: Config) -> Config {
    config.adapters.max_event_age_ms = 0;
    config.adapters.max_event_lead_ms = 0;
    config
}

async fn start(
    config: &Config,
    mapping: PracticeMapping,
    ingest_token: Option<&str>,
    twilio: TwilioAuth,
) -> Server {
    let state = Arc::new(IngestState {
        mapping,
        pseudonymiser: Pseudonymiser::new(KEY).unwrap(),
        publisher: Publisher::new(config).unwrap(),
        metrics: Arc::new(Registry::new()),
        max_body_bytes: config.adapters.max_body_bytes,
        body_read_timeout: std::time::Duration::from_millis(config.adapters.body_read_timeout_ms),
        ingest_token: ingest_token.map(str::to_string),
        twilio,
        time_bounds: TimeBounds {
            max_age_ms: config.adapters.max_event_age_ms,
            max_lead_ms: config.adapters.max_event_lead_ms,
        },
        throttle: Throttle::new(
            config.adapters.sender_records_per_second,
            config.adapters.sender_burst_records,
        ),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(state, listener, async move {
        let _ = stopped.await;
    }));
    Server { base, _stop: stop }
}

fn event(id: &str, kind: &str, caller: Option<&str>) -> Value {
    let mut event = json!({
        "event_id": id, "call_id": "call-1", "vendor": "generic", "practice": "A81001",
        "kind": kind, "at": "2026-11-23T08:00:00Z",
    });
    if let Some(caller) = caller {
        event["caller"] = json!(caller);
    }
    event
}

fn events_on(config: &Config, expected: usize) -> Vec<(String, CallEvent)> {
    read_topic(config, &config.topics.call_events, expected, WAIT)
        .into_iter()
        .map(|(key, payload)| (key, decode_call_event(&payload).unwrap()))
        .collect()
}

/// The topics and an adapters server for the generic route, with the
/// token "s3cret-token" and a body limit of `max_body_bytes`.
async fn generic_ingest(name: &str, max_body_bytes: usize) -> (Config, Server) {
    let mut config = unbounded(test_config(name));
    config.adapters.max_body_bytes = max_body_bytes;
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let server = start(
        &config,
        PracticeMapping::default(),
        Some("s3cret-token"),
        TwilioAuth::Disabled,
    )
    .await;
    (config, server)
}

/// A POST of `body` to the generic route, with its token.
fn generic_post(
    client: &reqwest::Client,
    server: &Server,
    body: String,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{}/v1/events", server.base))
        .bearer_auth("s3cret-token")
        .header("content-type", "application/json")
        .body(body)
}

fn dead_letters_on(config: &Config, expected: usize) -> Vec<Value> {
    read_topic(config, &config.topics.dead_letters, expected, WAIT)
        .into_iter()
        .map(|(_, payload)| serde_json::from_slice(&payload).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_events_reach_kafka_and_bad_input_is_answered_counted_and_dead_lettered() {
    let (config, server) = generic_ingest("adapters_http", 4096).await;
    let client = reqwest::Client::new();
    let post = |body: String| generic_post(&client, &server, body);

    // Two good events and one with a kind no one knows.
    let batch = json!([
        event("e1", "offered", Some("07700 900123")),
        event("e2", "answered", None),
        event("e3", "hung_up", Some("07700 900123")),
    ]);
    let response = post(batch.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"][0]["index"], 3);
    assert_eq!(body["rejected"][0]["field"], "kind");

    let published = events_on(&config, 2);
    assert_eq!(published.len(), 2);
    let ids: Vec<&str> = published.iter().map(|(_, e)| e.event_id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2"]);
    for (key, event) in &published {
        assert_eq!(key, "A81001", "events are keyed by practice");
        assert!(event.to_json().find("7700").is_none(), "{event:?}");
    }
    let pseudonym = Pseudonymiser::new(KEY)
        .unwrap()
        .caller(Some("+447700900123"));
    assert_eq!(published[0].1.caller, pseudonym);

    // Not JSON at all; too large; no credential.
    let response = post("{\"event_id\": 07700 900123".into())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "malformed");
    let response = post(format!(
        "[{}]",
        vec![event("big", "offered", None).to_string(); 60].join(",")
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 413);
    let response = client
        .post(format!("{}/v1/events", server.base))
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let dead = dead_letters_on(&config, 3);
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert_eq!(dead[0]["field"], "kind");
    assert_eq!(dead[0]["source"], "http");
    assert_eq!(dead[1]["code"], "malformed");
    assert_eq!(dead[2]["code"], "too_large");
    for letter in &dead {
        assert!(
            !letter.to_string().contains("900123"),
            "a number reached the dead-letter topic: {letter}"
        );
    }

    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"callpulse_adapter_records_total{vendor="generic",result="accepted"} 2"#,
        r#"callpulse_adapter_rejected_total{vendor="generic",code="invalid_event"} 1"#,
        r#"callpulse_adapter_rejected_total{vendor="generic",code="malformed"} 1"#,
        r#"callpulse_adapter_unauthorised_total{vendor="generic"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_exactly_at_the_limit_is_taken_and_one_byte_over_is_refused() {
    const LIMIT: usize = 4096;
    let (config, server) = generic_ingest("adapters_body_limit", LIMIT).await;
    let client = reqwest::Client::new();
    // One event, padded with trailing blanks (valid JSON) to `bytes`.
    let body_of = |id: &str, bytes: usize| {
        let mut body = json!([event(id, "offered", None)]).to_string();
        assert!(body.len() < bytes);
        body.push_str(&" ".repeat(bytes - body.len()));
        body
    };
    let post = |body: String| generic_post(&client, &server, body).send();

    let at_limit = post(body_of("at-limit", LIMIT)).await.unwrap();
    assert_eq!(at_limit.status(), 200);
    let over = post(body_of("one-over", LIMIT + 1)).await.unwrap();
    assert_eq!(over.status(), 413);
    assert_eq!(over.json::<Value>().await.unwrap()["code"], "too_large");

    let published = events_on(&config, 1);
    let ids: Vec<&str> = published.iter().map(|(_, e)| e.event_id.as_str()).collect();
    assert_eq!(ids, ["at-limit"]);
    let dead = dead_letters_on(&config, 1);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["code"], "too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_unreachable_is_503_with_retry_after() {
    let mut config = unbounded(test_config("adapters_down"));
    config.kafka.brokers = "127.0.0.1:1".into();
    config.adapters.kafka_timeout_ms = 1500;
    let server = start(
        &config,
        PracticeMapping::default(),
        None,
        TwilioAuth::Disabled,
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", server.base))
        .body(event("e1", "offered", None).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_resumes_from_its_checkpoint_and_skips_finished_files() {
    let config = test_config("adapters_import");
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("callpulse-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.jsonl");
    let mut lines: Vec<String> = (1..=10)
        .map(|i| event(&format!("i{i}"), "offered", None).to_string())
        .collect();
    lines.insert(4, "{broken".into());
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    // As if an earlier run had published the first three lines and stopped.
    let offset: usize = lines[..3].iter().map(|l| l.len() + 1).sum();
    std::fs::write(
        checkpoint_path(&path),
        json!({"vendor":"generic","offset":offset,"line":3,"complete_at_length":null,
               "summary":{"records":3,"events":3,"rejected":0}})
        .to_string(),
    )
    .unwrap();

    let mapping = PracticeMapping::default();
    let pseudonymiser = Pseudonymiser::new(KEY).unwrap();
    let ctx = AdaptContext {
        mapping: &mapping,
        pseudonymiser: &pseudonymiser,
        received_at: None,
    };
    let publisher = Publisher::new(&config).unwrap();
    let now = Timestamp::from_millis(0);
    let outcome = import_file(Vendor::Generic, &path, &ctx, &publisher, false, now)
        .await
        .unwrap();
    let FileOutcome::Imported(summary) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (summary.records, summary.events, summary.rejected),
        (11, 10, 1)
    );

    let published = events_on(&config, 8);
    let ids: Vec<String> = published.iter().map(|(_, e)| e.event_id.clone()).collect();
    let want: Vec<String> = (4..=10).map(|i| format!("i{i}")).collect();
    assert_eq!(
        ids, want,
        "only the lines after the checkpoint are published"
    );
    let dead = dead_letters_on(&config, 1);
    assert_eq!(dead[0]["line"], 5);

    let again = import_file(Vendor::Generic, &path, &ctx, &publisher, false, now)
        .await
        .unwrap();
    assert!(matches!(again, FileOutcome::AlreadyDone(_)), "{again:?}");
    std::fs::remove_dir_all(&dir).ok();
}

fn sample(vendor: &str, file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../services/adapters/tests/samples")
        .join(vendor)
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Twilio's signature, computed here independently of the adapter's code.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (key, value) in sorted {
        data.push_str(key);
        data.push_str(value);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_callbacks_are_accepted_only_with_a_valid_signature() {
    let config = test_config("adapters_twilio");
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let mapping = PracticeMapping::from_toml(&sample("twilio", "mapping.toml")).unwrap();
    let token = "twilio-auth-token-for-tests";
    let public_url = "https://ingest.example.nhs.uk";
    let twilio = TwilioAuth::Signed {
        auth_token: token.into(),
        public_url: public_url.into(),
    };
    let server = start(&config, mapping, None, twilio).await;
    let params = [
        ("AccountSid", "AC5e0f3a7b9c1d2e4f6a8b0c2d4e6f8a0b"),
        ("CallSid", "CA00000000000000000000000000000e2e"),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", "+447700900123"),
        ("To", "+441632960001"),
        ("Timestamp", "Mon, 23 Nov 2026 08:00:01 +0000"),
    ];
    let body = serde_urlencoded_body(&params);
    let client = reqwest::Client::new();
    let send = |signature: String| {
        client
            .post(format!("{}/v1/twilio", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(body.clone())
    };
    let forged = twilio_signature("another-token", &format!("{public_url}/v1/twilio"), &params);
    assert_eq!(send(forged).send().await.unwrap().status(), 403);
    let signature = twilio_signature(token, &format!("{public_url}/v1/twilio"), &params);
    let response = send(signature).send().await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let published = events_on(&config, 1);
    assert_eq!(published.len(), 1);
    let (key, event) = &published[0];
    assert_eq!(key, "A81001");
    assert_eq!(event.vendor, "twilio");
    assert_eq!(event.kind, callpulse_core::EventKind::Offered);
    assert_eq!(
        event.caller,
        Pseudonymiser::new(KEY)
            .unwrap()
            .caller(Some("07700 900123"))
    );
}

fn serde_urlencoded_body(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                k,
                v.replace('+', "%2B")
                    .replace(' ', "+")
                    .replace(',', "%2C")
                    .replace(':', "%3A")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_connect_firehose_delivery_is_acknowledged_in_firehose_terms() {
    use base64::Engine;
    let config = test_config("adapters_firehose");
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let mapping = PracticeMapping::from_toml(&sample("amazon-connect", "mapping.toml")).unwrap();
    let server = start(&config, mapping.clone(), None, TwilioAuth::Disabled).await;

    // Every sample CTR, one Firehose record each; the expected events are
    // what the pure parser makes of the same records.
    let input = sample("amazon-connect", "input.jsonl");
    let pseudonymiser = Pseudonymiser::new(KEY).unwrap();
    let ctx = AdaptContext {
        mapping: &mapping,
        pseudonymiser: &pseudonymiser,
        received_at: None,
    };
    let mut expected = Vec::new();
    let mut rejected = 0;
    for line in input.lines().filter(|l| !l.trim().is_empty()) {
        match Vendor::AmazonConnect.adapt_record(line, &ctx) {
            Ok(events) => expected.extend(events),
            Err(_) => rejected += 1,
        }
    }
    assert!(expected.len() > 10 && rejected > 0);
    let records: Vec<Value> = input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| json!({"data": base64::engine::general_purpose::STANDARD.encode(l)}))
        .collect();
    let delivery = json!({"requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f", "timestamp": 1795421702000i64, "records": records});
    let response = reqwest::Client::new()
        .post(format!("{}/v1/amazon-connect", server.base))
        .header(
            "x-amz-firehose-request-id",
            "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
        )
        .header("content-type", "application/json")
        .body(delivery.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["requestId"], "ed4acda5-034f-9f42-bba1-f29aea6d7d8f");
    assert!(body.get("errorMessage").is_none(), "{body}");

    let mut published: Vec<CallEvent> = events_on(&config, expected.len())
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    published.sort_by(|a, b| a.event_id.cmp(&b.event_id).then(a.at.cmp(&b.at)));
    expected.sort_by(|a, b| a.event_id.cmp(&b.event_id).then(a.at.cmp(&b.at)));
    assert_eq!(published, expected);
    assert_eq!(dead_letters_on(&config, rejected).len(), rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_times_are_refused_and_a_flooding_sender_is_told_to_wait() {
    let mut config = test_config("adapters_bounds");
    config.adapters.max_event_lead_ms = 5 * 60_000;
    config.adapters.max_event_age_ms = 7 * 86_400_000;
    // A burst of 3, refilled at one record a second: the second request
    // below needs 3 more, which takes 3 s even on a slow machine.
    config.adapters.sender_records_per_second = 1;
    config.adapters.sender_burst_records = 3;
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let server = start(
        &config,
        PracticeMapping::default(),
        None,
        TwilioAuth::Disabled,
    )
    .await;
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(format!("{}/v1/events", server.base))
            .header("content-type", "application/json")
            .body(body)
    };
    let at = |offset_ms: i64| {
        Timestamp(callpulse_runtime::wall_clock().0 + offset_ms).to_rfc3339_millis()
    };
    let mut now_event = event("t1", "offered", None);
    now_event["at"] = json!(at(-1_000));
    let mut ahead = event("t2", "offered", None);
    ahead["at"] = json!(at(2 * 3_600_000));
    let mut old = event("t3", "offered", None);
    old["at"] = json!(at(-30 * 86_400_000));
    let response = post(json!([now_event, ahead, old]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    for (index, words) in [
        (0, "after the record arrived"),
        (1, "before the record arrived"),
    ] {
        let rejected = &body["rejected"][index];
        assert_eq!(rejected["code"], "implausible_time", "{body}");
        assert_eq!(rejected["field"], "at");
        assert!(
            rejected["error"].as_str().unwrap().contains(words),
            "{body}"
        );
    }
    // The burst of 3 records is spent: the next 3, at once, wait.
    let response = post(json!([now_event, now_event, now_event]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(
        response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "too_many_records"
    );
    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("callpulse_adapter_throttled_total{vendor=\"generic\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("code=\"implausible_time\"} 2"),
        "{metrics}"
    );

    let dead = dead_letters_on(&config, 2);
    assert_eq!(dead.len(), 2, "both refusals are dead-lettered: {dead:?}");
    // Only the plausible event reached Kafka: not the refused ones, nor
    // the throttled request (asking for two waits the full time).
    let published = events_on(&config, 2);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].1.event_id, "t1");
}
