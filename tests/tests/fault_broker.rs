//! The broker stops for 30 seconds in the middle of a run and comes back.
//!
//! The broker is a tansu of this test's own (in-memory, like the shared
//! one), reachable only through a TCP proxy: it advertises the proxy's
//! address, so the adapters, processor and sink (real processes) reach it
//! only through the proxy, and cutting the proxy is, for them, the broker
//! stopping: connections dropped, connecting refused. (Stopping tansu
//! itself would lose every topic, since it keeps them in memory.)
//!
//! A sender posts canonical events to the adapters in batches, as a real
//! one would: a batch answered 503 is sent again after its Retry-After
//! until accepted. The adapters must answer 503 while the broker is away,
//! the processor and sink must carry on by themselves once it is back, and
//! ClickHouse must end up equal to `callpulse replay` of the accepted
//! events.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callpulse_adapters::file::adapt_file;
use callpulse_adapters::{AdaptContext, PracticeMapping, Pseudonymiser, Vendor};
use callpulse_core::{CallEvent, Timestamp};
use callpulse_e2e::outage::{wait_for_port, Outage};
use callpulse_e2e::process::{free_port, tansu_binary, Process};
use callpulse_e2e::{an_hour_of_calls, assert_recovered, expected_rows, test_env};
use callpulse_runtime::Config;

/// How long the broker is away: 30 s, or CALLPULSE_FAULT_OUTAGE_S seconds
/// (to try other lengths; 0 runs the same load without an outage, which
/// checks the test itself).
fn outage() -> Duration {
    let seconds = std::env::var("CALLPULSE_FAULT_OUTAGE_S")
        .map(|s| s.parse().expect("CALLPULSE_FAULT_OUTAGE_S: whole seconds"))
        .unwrap_or(30);
    Duration::from_secs(seconds)
}
const BATCH: usize = 100;

/// What the adapters make of accepted `generic` records: the same parser
/// and the same (demo) pseudonym key as `callpulse adapters --demo`.
fn adapted(records: &[String]) -> Vec<CallEvent> {
    let mapping = PracticeMapping::default();
    let pseudonymiser = Pseudonymiser::demo();
    let ctx = AdaptContext {
        mapping: &mapping,
        pseudonymiser: &pseudonymiser,
        received_at: None,
    };
    let mut events = Vec::new();
    let text = records.join("\n");
    let summary = adapt_file(
        Vendor::Generic,
        "accepted",
        text.as_bytes(),
        &ctx,
        Timestamp::parse_rfc3339("2026-11-23T12:00:00Z").unwrap(),
        |event| {
            events.push(event);
            Ok(())
        },
        |rejection| panic!("an accepted record does not adapt: {}", rejection.to_json()),
    )
    .unwrap();
    assert_eq!(summary.records as usize, records.len());
    events
}

/// What the sender saw.
#[derive(Default, Debug)]
struct Sent {
    /// Records of every batch answered 200.
    accepted: Vec<String>,
    /// Answers 503 (each carried Retry-After).
    unavailable: usize,
    /// When the first batch after the outage was accepted.
    first_accepted_after_cut: Option<Instant>,
}

/// Posts every batch until accepted; honours Retry-After on 503.
async fn send_all(
    url: String,
    batches: Vec<Vec<String>>,
    progress: tokio::sync::watch::Sender<usize>,
    cut_at: tokio::sync::watch::Receiver<Option<Instant>>,
) -> Sent {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut sent = Sent::default();
    for (i, batch) in batches.iter().enumerate() {
        let body = batch.join("\n");
        loop {
            let response = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
                .send()
                .await
                .expect("the adapters must answer even while the broker is away");
            let status = response.status().as_u16();
            match status {
                200 => {
                    let answer: serde_json::Value = response.json().await.unwrap();
                    assert_eq!(answer["accepted"], batch.len(), "{answer}");
                    sent.accepted.extend(batch.iter().cloned());
                    if sent.first_accepted_after_cut.is_none() && cut_at.borrow().is_some() {
                        sent.first_accepted_after_cut = Some(Instant::now());
                    }
                    break;
                }
                503 => {
                    let retry_after: u64 = response
                        .headers()
                        .get("retry-after")
                        .expect("a 503 must say when to retry")
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    sent.unavailable += 1;
                    tokio::time::sleep(Duration::from_secs(retry_after)).await;
                }
                other => panic!(
                    "batch {i}: unexpected answer {other}: {}",
                    response.text().await.unwrap_or_default()
                ),
            }
        }
        progress.send_replace(i + 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sent
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_second_broker_outage_loses_nothing_and_clickhouse_equals_replay() {
    let started = Instant::now();
    // The broker of this test, reachable only through the proxy.
    let broker_port = free_port();
    let broker: SocketAddr = ([127, 0, 0, 1], broker_port).into();
    let mut proxy = Outage::start(broker).await;
    let advertised = format!("tcp://{}", proxy.addr());
    let listener = format!("tcp://{broker}");
    let mut tansu = Process::start(
        "fault-broker-tansu",
        &tansu_binary(),
        &[
            "broker",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &advertised,
            "--storage-engine",
            "memory://tansu/",
        ],
        &[("RUST_LOG".into(), "warn".into())],
    );
    wait_for_port(broker, Duration::from_secs(30)).await;
    tansu.assert_running();

    let adapters_addr = format!("127.0.0.1:{}", free_port());
    let mut env = test_env("fault_broker");
    for (key, value) in &mut env {
        if key == "CALLPULSE__KAFKA__BROKERS" {
            *value = proxy.addr().to_string();
        }
    }
    env.push(("CALLPULSE__ADAPTERS__LISTEN".into(), adapters_addr.clone()));
    let config = Config::load_from(None, env.clone()).unwrap();

    let mut adapters = Process::callpulse("fault-broker-adapters", &["adapters", "--demo"], &env);
    let mut processor = Process::callpulse("fault-broker-processor", &["processor"], &env);
    let mut sink = Process::callpulse("fault-broker-sink", &["sink"], &env);
    adapters
        .wait_for_log("adapters listening", Duration::from_secs(60))
        .await;
    processor
        .wait_for_log("partitions assigned", Duration::from_secs(60))
        .await;
    sink.wait_for_log("sink running", Duration::from_secs(60))
        .await;

    // About 4,000 events.
    let events = an_hour_of_calls(10, "2026-11-23T08:00:00Z", 0.4);
    let records: Vec<String> = events.iter().map(CallEvent::to_json).collect();
    let batches: Vec<Vec<String>> = records.chunks(BATCH).map(<[String]>::to_vec).collect();
    let total = batches.len();
    let (progress, mut accepted_batches) = tokio::sync::watch::channel(0usize);
    let (cut_at_tx, cut_at) = tokio::sync::watch::channel(None);
    let sender = tokio::spawn(send_all(
        format!("http://{adapters_addr}/v1/events"),
        batches,
        progress,
        cut_at,
    ));
    // Should the test fail, the sender stops before the services are killed.
    let _stop_sender = AbortOnDrop(sender.abort_handle());

    // A third of the batches in, the broker goes away for 30 s.
    accepted_batches
        .wait_for(|n| *n >= total / 3)
        .await
        .expect("the sender stopped early");
    let outage = outage();
    let cut = Instant::now();
    if !outage.is_zero() {
        proxy.cut().await;
    }
    cut_at_tx.send_replace(Some(cut));
    let batches_at_cut = *accepted_batches.borrow();
    // Every service must ride the outage out by itself: none may exit.
    while cut.elapsed() < outage {
        for process in [&mut tansu, &mut adapters, &mut processor, &mut sink] {
            process.assert_running();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    proxy.restore().await;
    let restored = Instant::now();
    let batches_during_outage = *accepted_batches.borrow() - batches_at_cut;

    let mut sender = sender;
    let deadline = restored + Duration::from_secs(120);
    let sent = loop {
        tokio::select! {
            sent = &mut sender => break sent.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for process in [&mut tansu, &mut adapters, &mut processor, &mut sink] {
            process.assert_running();
        }
        assert!(
            Instant::now() < deadline,
            "after the broker's return, the adapters accepted only {} of {total} batches in 2 minutes",
            *accepted_batches.borrow()
        );
    };
    let all_accepted = Instant::now();

    // Nothing the adapters accepted may be missing: ClickHouse must equal
    // replay of exactly what was accepted.
    let expected = expected_rows(&adapted(&sent.accepted));
    let caught_up = assert_recovered(
        &config,
        &expected,
        Duration::from_secs(90),
        &mut [&mut tansu, &mut adapters, &mut processor, &mut sink],
    )
    .await;

    assert_eq!(sent.accepted.len(), records.len());
    assert!(
        outage.is_zero() || sent.unavailable >= 1,
        "the adapters should have answered 503 while the broker was away"
    );
    // (One batch may have been acknowledged just before the cut and
    // answered just after it.)
    assert!(
        outage.is_zero() || batches_during_outage <= 1,
        "{batches_during_outage} batches accepted while the broker was unreachable"
    );
    let first_after = sent
        .first_accepted_after_cut
        .expect("batches were accepted after the outage");
    eprintln!(
        "fault_broker: {} events in {total} batches; broker cut after {batches_at_cut} batches for {:.1} s; \
         {} answers 503; first batch accepted {:.1} s after the restore; all accepted {:.1} s after; \
         ClickHouse equal to replay ({} rows) {:.1} s after the restore; test {:.0} s",
        records.len(),
        (restored - cut).as_secs_f64(),
        sent.unavailable,
        first_after.saturating_duration_since(restored).as_secs_f64(),
        (all_accepted - restored).as_secs_f64(),
        expected.len(),
        (caught_up - restored).as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    eprintln!(
        "fault_broker: the adapters logged {} answers 503",
        adapters.log().matches("answering 503").count()
    );
}
