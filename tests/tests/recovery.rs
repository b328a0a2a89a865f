//! The processor as real processes against the real broker and ClickHouse:
//! killed with SIGKILL mid-stream, restarted, and shared by two members of
//! one consumer group. Whatever happens, ClickHouse must end up with
//! exactly the windows of `callpulse replay` over the whole input, field
//! for field (all §4 values), as if nothing had happened. (That a restart reproduces the same
//! revisions, so ClickHouse keeps the right row, is a property test of the
//! core: `resuming_from_the_restart_point_gives_the_same_final_windows`.)
//!
//! The input spans 48 hours of event time, so that calls are evicted
//! (after 36 hours) and the restart points move past the first offsets:
//! a restart then really resumes mid-partition, with the checkpointed
//! watermark.

use std::time::Duration;

use callpulse_core::{CallEvent, Timestamp};
use callpulse_e2e::process::Process;
use callpulse_e2e::{
    assert_same_rows, expected_rows, logged_numbers, publish_events, simulated_calls, test_env,
    wait_for_rows,
};
use callpulse_runtime::{kafka, Config};
use callpulse_simulator::SimulationPlan;

/// SIGTERM: the graceful path; returns whether it exited cleanly.
/// (Only once it runs: before its handler is installed SIGTERM kills.)
fn terminate_once_running(processor: &mut Process) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !processor.log().contains("processor running") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    processor.terminate(Duration::MAX)
}

fn two_days_of_calls() -> Vec<CallEvent> {
    let plan = SimulationPlan {
        practices: 4,
        seed: 7,
        start: Timestamp::parse_rfc3339("2026-11-23T00:00:00Z").unwrap(),
        duration_ms: 48 * 3_600_000,
        calls_per_practice_minute: 0.04,
        speed: None,
    };
    simulated_calls(&plan, 1_000)
}

async fn start_sink(
    config: &Config,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sink = tokio::spawn(callpulse_sink::run(config.clone(), async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));
    (stop, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_killed_again_and_again_leaves_clickhouse_equal_to_replay() {
    let env = test_env("recovery");
    // From the same environment: a second `test_env` call a millisecond
    // later names other topics, and the processors would read those.
    let config = Config::load_from(None, env.clone()).unwrap();
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let events = two_days_of_calls();
    let expected = expected_rows(&events);
    let (stop, sink) = start_sink(&config).await;

    // Half the input, then three SIGKILLs at pseudo-random points (the same
    // for every run) while the rest arrives in chunks; the fourth process
    // runs to the end.
    let half = events.len() / 2;
    publish_events(&config, &events[..half]).await;
    let chunk = (events.len() - half).div_ceil(3);
    let mut logs = Vec::new();
    for (round, delay_ms) in [1_700u64, 600, 2_900].into_iter().enumerate() {
        // (CALLPULSE_TEST_PROCESSOR_LOG sets its RUST_LOG, e.g.
        // `info,librdkafka=debug` with CALLPULSE__KAFKA__CLIENT_DEBUG.)
        let name = format!("recovery-{round}");
        let mut processor = Process::callpulse(&name, &["processor"], &env);
        // The group must give it the partitions first: the local broker
        // holds a dead member's partitions until max.poll.interval passes.
        processor
            .wait_for_log("partitions assigned", Duration::from_secs(60))
            .await;
        let from = half + round * chunk;
        publish_events(&config, &events[from..(from + chunk).min(events.len())]).await;
        if round == 1 {
            // By now calls have been evicted: let a restart point move past
            // the first offsets, so the next processors resume mid-partition.
            wait_for_commit_past_start(&config, Duration::from_secs(60)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        processor.kill();
        logs.push(processor.log());
    }
    let mut last = Process::callpulse("recovery-last", &["processor"], &env);
    last.wait_for_log("partitions assigned", Duration::from_secs(60))
        .await;
    let actual = wait_for_rows(&config, &expected, Duration::from_secs(150)).await;
    let log = last.log();
    if actual != expected {
        eprintln!("{}\n--- last ---\n{log}", logs.join("\n---\n"));
    }
    assert!(
        terminate_once_running(&mut last),
        "SIGTERM should stop the processor cleanly:\n{log}"
    );
    stop.send(true).unwrap();
    sink.await.unwrap().unwrap();

    assert_same_rows(&actual, &expected);
    let resumed: Vec<i64> = logs
        .iter()
        .chain([&log])
        .flat_map(|l| logged_numbers::<i64>(l, "resuming from checkpoint", "offset"))
        .collect();
    assert!(
        resumed.iter().any(|offset| *offset > 0),
        "restarted processors should resume mid-partition from checkpoints, got {resumed:?}"
    );
    for log in logs.iter().chain([&log]) {
        assert!(
            !log.contains("never delivered"),
            "a restarted processor missed events after its checkpoint:\n{log}"
        );
    }
}

/// A client of the processors' group that only reads its committed offsets
/// (it never joins), and the call-events partitions to ask about.
fn processor_group(
    config: &Config,
) -> (rdkafka::consumer::BaseConsumer, rdkafka::TopicPartitionList) {
    let group: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", &config.processor.group_id)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for partition in 0..config.kafka.partitions {
        partitions.add_partition(&config.topics.call_events, partition);
    }
    (group, partitions)
}

/// Waits until the group has committed an offset past the start of some
/// partition (commits are checkpoints: the processor's restart points).
async fn wait_for_commit_past_start(config: &Config, timeout: Duration) {
    use rdkafka::consumer::Consumer;
    let (group, partitions) = processor_group(config);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let committed = group
            .committed_offsets(partitions.clone(), Duration::from_secs(10))
            .map(|list| {
                list.elements()
                    .iter()
                    .map(|e| e.offset())
                    .collect::<Vec<_>>()
            });
        if let Ok(offsets) = &committed {
            if offsets
                .iter()
                .any(|offset| matches!(offset, rdkafka::Offset::Offset(at) if *at > 0))
            {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no restart point moved past the start of a partition: {committed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_joining_and_leaving_leave_clickhouse_equal_to_replay() {
    let env = test_env("scaleout");
    // From the same environment: a second `test_env` call a millisecond
    // later names other topics, and the processors would read those.
    let config = Config::load_from(None, env.clone()).unwrap();
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let events = two_days_of_calls();
    let expected = expected_rows(&events);
    let (stop, sink) = start_sink(&config).await;

    // Members come and go while the input arrives; partitions move each
    // time and are rebuilt from their checkpoints. (Members leave with
    // SIGTERM: the local broker does not expire a member that dies without
    // leaving, docs/broker.md; SIGKILL is the test above.)
    let third = events.len() / 3;
    let mut first = Process::callpulse("scaleout-a", &["processor"], &env);
    publish_events(&config, &events[..third]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut second = Process::callpulse("scaleout-b", &["processor"], &env);
    publish_events(&config, &events[third..2 * third]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut third_member = Process::callpulse("scaleout-c", &["processor"], &env);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        terminate_once_running(&mut first),
        "SIGTERM should stop a member cleanly:\n{}",
        first.log()
    );
    publish_events(&config, &events[2 * third..]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        terminate_once_running(&mut second),
        "SIGTERM should stop a member cleanly:\n{}",
        second.log()
    );

    let actual = wait_for_rows(&config, &expected, Duration::from_secs(150)).await;
    let logs = [first.log(), second.log(), third_member.log()];
    if actual != expected {
        eprintln!("{}", logs.join("\n---\n"));
        eprintln!("{}", group_positions(&config));
    }
    assert!(
        terminate_once_running(&mut third_member),
        "SIGTERM should stop a member cleanly:\n{}",
        logs[2]
    );
    stop.send(true).unwrap();
    sink.await.unwrap().unwrap();
    assert_same_rows(&actual, &expected);
    for log in &logs {
        assert!(log.contains("partitions assigned"), "{log}");
    }
    assert!(
        logs[1..]
            .iter()
            .any(|log| log.contains("resuming from checkpoint")),
        "members that took over partitions should rebuild them from checkpoints"
    );
}

/// The group's committed offsets and each partition's watermarks, for
/// failure messages.
fn group_positions(config: &Config) -> String {
    use rdkafka::consumer::Consumer;
    let (group, partitions) = processor_group(config);
    let committed = group
        .committed_offsets(partitions, Duration::from_secs(10))
        .map(|list| {
            list.elements()
                .iter()
                .map(|e| (e.partition(), e.offset()))
                .collect::<Vec<_>>()
        });
    let watermarks: Vec<_> = (0..config.kafka.partitions)
        .map(|p| group.fetch_watermarks(&config.topics.call_events, p, Duration::from_secs(10)))
        .collect();
    format!("group committed: {committed:?}; watermarks (low, high): {watermarks:?}")
}
