//! A simulated vendor mix over HTTP into the real `callpulse adapters`
//! process and the real broker (CALLPULSE_TEST_KAFKA, default
//! 127.0.0.1:9092; `deploy/local/test.sh` starts it and builds the binary):
//! Twilio webhooks signed, contact records through the Firehose delivery
//! protocol, Asterisk lines, Teams call records and generic events, each to
//! its route. The call-events topic must then hold exactly the events the
//! adapters' parsers make of those records, and no phone number.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callpulse_adapters::{AdaptContext, PracticeMapping, Pseudonymiser, Vendor};
use callpulse_core::{CallEvent, CoreHours, Timestamp};
use callpulse_runtime::Config;
use callpulse_simulator::vendors::{caller_number, mapping_toml, NativeStream, PracticeIds};
use callpulse_simulator::{
    parse_start, run_scenario_as, synthetic_practices, Faults, Format, Scenario, Target, VendorMix,
};
use callpulse_testkit::{callpulse_binary, free_port};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};

const KEY: &str = "simulator-native-e2e-key-at-least-32-bytes";
const TWILIO_TOKEN: &str = "simulator-e2e-twilio-auth-token";
const INGEST_TOKEN: &str = "simulator-e2e-ingest-token";

/// Stops the adapters process this test started, by its own handle.
struct Adapters(Child);

impl Drop for Adapters {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_topic(brokers: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + timeout;
    let mut payloads = Vec::new();
    while payloads.len() < expected && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            payloads.push(message.payload().unwrap_or_default().to_vec());
        }
    }
    payloads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_vendor_mix_through_callpulse_adapters_reaches_kafka_without_numbers() {
    let brokers = std::env::var("CALLPULSE_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let run = format!(
        "simnative_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let scenario = Scenario {
        practices: synthetic_practices(30),
        seed: 5,
        start: parse_start("2026-11-23T07:50", Timestamp(0)).unwrap(),
        duration_ms: 120 * 60_000,
        demand: 1.0,
        faults: Faults::default(),
        calendar: CoreHours::shipped(),
    };
    let dir = std::env::temp_dir().join(&run);
    std::fs::create_dir_all(&dir).unwrap();
    let mapping_path = dir.join("mapping.toml");
    std::fs::write(&mapping_path, mapping_toml(&scenario.practices)).unwrap();
    // Fresh topics per run (as tests/lib.rs does): runs never see each other's data.
    let env: Vec<(String, String)> = [
        ("CALLPULSE__KAFKA__BROKERS", brokers.clone()),
        ("CALLPULSE__KAFKA__PARTITIONS", "2".into()),
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
        ("CALLPULSE__ADAPTERS__LISTEN", format!("127.0.0.1:{port}")),
        ("CALLPULSE__ADAPTERS__PSEUDONYM_KEY", KEY.into()),
        (
            "CALLPULSE__ADAPTERS__TWILIO_AUTH_TOKEN",
            TWILIO_TOKEN.into(),
        ),
        ("CALLPULSE__ADAPTERS__PUBLIC_URL", base.clone()),
        ("CALLPULSE__ADAPTERS__INGEST_TOKEN", INGEST_TOKEN.into()),
        // A fixed simulated day: event times are not bounded by arrival.
        ("CALLPULSE__ADAPTERS__MAX_EVENT_AGE_MS", "0".into()),
        ("CALLPULSE__ADAPTERS__MAX_EVENT_LEAD_MS", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = dir.join("adapters.log");
    let _adapters = Adapters(
        Command::new(callpulse_binary())
            .arg("adapters")
            .arg("--mapping")
            .arg(&mapping_path)
            .envs(env.iter().cloned())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "adapters did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let config = Config::load_from(None, env.clone()).unwrap();
    let stats = run_scenario_as(
        &config,
        scenario.clone(),
        None,
        Target::Http {
            url: format!("{base}/v1/events"),
            token: Some(INGEST_TOKEN.into()),
        },
        Format::Native(VendorMix::Mix),
        std::future::pending::<()>(),
    )
    .await
    .unwrap();
    assert_eq!(
        stats.rejected,
        0,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // What the adapters' parsers make of the same records.
    let mapping = PracticeMapping::load(&mapping_path).unwrap();
    let key = Pseudonymiser::new(KEY.as_bytes()).unwrap();
    let ctx = AdaptContext {
        mapping: &mapping,
        pseudonymiser: &key,
        received_at: None,
    };
    let records: Vec<_> =
        NativeStream::new(scenario.stream(), VendorMix::Mix, scenario.seed).collect();
    assert_eq!(stats.events, records.len() as u64);
    let mut expected: Vec<CallEvent> = records
        .iter()
        .flat_map(|r| {
            Vendor::parse(r.channel.vendor())
                .unwrap()
                .adapt_record(&r.file_line(), &ctx)
                .unwrap()
        })
        .collect();
    let vendors: HashSet<&str> = expected.iter().map(|e| e.vendor.as_str()).collect();
    assert_eq!(vendors.len(), 5, "every adapter: {vendors:?}");

    let payloads = read_topic(
        &brokers,
        &config.topics.call_events,
        expected.len(),
        Duration::from_secs(60),
    );
    let mut got: Vec<CallEvent> = payloads
        .iter()
        .map(|p| callpulse_runtime::avro::decode_call_event(p).unwrap())
        .collect();
    let sort = |events: &mut Vec<CallEvent>| {
        events
            .sort_by(|a, b| (&a.event_id, a.at, &a.practice).cmp(&(&b.event_id, b.at, &b.practice)))
    };
    sort(&mut got);
    sort(&mut expected);
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);

    // No number reached Kafka: neither a caller's nor a practice's
    // (national significant numbers: the ten digits after the leading 0).
    let mut numbers: HashSet<String> = scenario
        .practices
        .iter()
        .map(|p| PracticeIds::of(&p.code).number[1..].to_string())
        .collect();
    for e in scenario.generate() {
        if let Some((_, hex)) = e.event.caller.as_deref().and_then(|c| c.rsplit_once("-p")) {
            let index = u32::from_str_radix(hex, 16).unwrap();
            numbers.insert(caller_number(&e.event.practice, index)[1..].to_string());
        }
    }
    let holds_number = |text: &str| {
        text.split(|c: char| !c.is_ascii_digit())
            .filter(|run| run.len() >= 10)
            .any(|run| (0..=run.len() - 10).any(|i| numbers.contains(&run[i..i + 10])))
    };
    let sent: String = records.iter().map(|r| r.file_line()).collect();
    assert!(holds_number(&sent), "the records hold numbers");
    for payload in &payloads {
        let text = String::from_utf8_lossy(payload);
        assert!(
            !text.contains("+44") && !holds_number(&text),
            "a number reached Kafka: {text}"
        );
    }
    // Nothing was dead-lettered.
    let dead = read_topic(
        &brokers,
        &config.topics.dead_letters,
        1,
        Duration::from_secs(3),
    );
    assert!(dead.is_empty(), "{:?}", String::from_utf8_lossy(&dead[0]));
    let _ = std::fs::remove_dir_all(&dir);
}
