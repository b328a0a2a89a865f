//! ClickHouse stops for 60 seconds while events flow, and comes back.
//!
//! The sink (a real process) reaches the shared ClickHouse only through a
//! TCP proxy; cutting the proxy is, for the sink, ClickHouse stopping:
//! connections dropped, connecting refused. (The shared ClickHouse itself
//! keeps running for the other tests.) The processor and the broker are
//! not touched. The sink must back off, keep its memory bounded (the
//! backlog stays in Kafka), lose nothing and catch up: ClickHouse must end
//! up equal to `callpulse replay` of the events.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callpulse_core::CallEvent;
use callpulse_e2e::outage::Outage;
use callpulse_e2e::process::rss_kib;
use callpulse_e2e::{
    an_hour_of_calls, assert_backs_off, assert_recovered, expected_rows, logged_numbers,
    publish_events, publish_until_stored, start_processor_and_sink, test_env, with_clickhouse_url,
};
use callpulse_runtime::{kafka, Config};

const OUTAGE: Duration = Duration::from_secs(60);
/// How much the sink's resident memory may grow during the outage.
const RSS_GROWTH_LIMIT_KIB: u64 = 200 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_second_clickhouse_outage_loses_nothing_and_memory_stays_bounded() {
    let started = Instant::now();
    let env = test_env("fault_clickhouse");
    // The test reads ClickHouse directly; the sink only through the proxy.
    let config = Config::load_from(None, env.clone()).unwrap();
    let clickhouse: SocketAddr = config
        .clickhouse
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("CALLPULSE_TEST_CLICKHOUSE should be http://HOST:PORT with an IP address");
    let mut proxy = Outage::start(clickhouse).await;
    let sink_env = with_clickhouse_url(&env, &format!("http://{}", proxy.addr()));
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();

    let (mut processor, mut sink) =
        start_processor_and_sink("fault-clickhouse", &env, &sink_env).await;

    // About 3,000 events.
    let events = an_hour_of_calls(11, "2026-11-23T08:00:00Z", 0.25);
    let expected = expected_rows(&events);
    let chunks: Vec<&[CallEvent]> = events.chunks(events.len().div_ceil(8)).collect();

    // The first quarter, and wait until the sink has stored some of it.
    publish_until_stored(&config, &chunks[..2], &mut sink).await;
    let rss_before = rss_kib(sink.pid()).expect("reading the sink's VmRSS");

    // ClickHouse goes away for 60 s while the rest of the events arrive.
    let cut = Instant::now();
    proxy.cut().await;
    let mut rss_max = rss_before;
    let mut next_chunk = 2;
    let per_chunk = OUTAGE / (chunks.len() as u32 - 1);
    let mut next_publish = cut;
    while cut.elapsed() < OUTAGE {
        if next_chunk < chunks.len() && Instant::now() >= next_publish {
            publish_events(&config, chunks[next_chunk]).await;
            next_chunk += 1;
            next_publish += per_chunk;
        }
        sink.assert_running();
        rss_max = rss_max.max(rss_kib(sink.pid()).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for chunk in &chunks[next_chunk..] {
        publish_events(&config, chunk).await;
    }
    let delays = logged_numbers::<u64>(&sink.log(), "ClickHouse insert failed", "retry_in_ms");
    proxy.restore().await;
    let restored = Instant::now();

    let caught_up = assert_recovered(
        &config,
        &expected,
        Duration::from_secs(90),
        &mut [&mut processor, &mut sink],
    )
    .await;

    assert!(
        delays.len() >= 2,
        "the sink should have logged failed inserts while ClickHouse was away: {delays:?}"
    );
    assert_backs_off(&delays);
    assert!(
        rss_max - rss_before < RSS_GROWTH_LIMIT_KIB,
        "the sink's memory grew from {rss_before} KiB to {rss_max} KiB during the outage"
    );
    eprintln!(
        "fault_clickhouse: {} events; ClickHouse cut for {:.1} s; sink retried {} times, delays {:?} ms; \
         sink VmRSS {} KiB before, at most {} KiB during the outage; \
         ClickHouse equal to replay ({} rows) {:.1} s after the restore; test {:.0} s",
        events.len(),
        (restored - cut).as_secs_f64(),
        delays.len(),
        delays,
        rss_before,
        rss_max,
        expected.len(),
        (caught_up - restored).as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}
