//! The processor as real processes against the real broker and ClickHouse:
//! killed with SIGKILL mid-stream, restarted, and shared by two members of
//! one consumer group. Whatever happens, ClickHouse must end up with
//! exactly the window contents that the engine computes from the whole
//! input, as if nothing had happened. (That a restart reproduces the same
//! revisions, so ClickHouse keeps the right row, is a property test of the
//! core: `resuming_from_the_restart_point_gives_the_same_final_windows`.)
//!
//! The input spans 48 hours of event time, so that calls are evicted
//! (after 36 hours) and the restart points move past the first offsets:
//! a restart then really resumes mid-partition, with the checkpointed
//! watermark.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use callpulse_core::{CallEvent, Timestamp};
use callpulse_e2e::{
    assert_same_counts, expected_counts, read_topic, test_config, test_env, wait_for_counts,
};
use callpulse_runtime::{kafka, Config};
use callpulse_simulator::{generate, SimulationPlan};

fn callpulse_binary() -> PathBuf {
    // target/debug/deps/recovery-… → target/debug/callpulse
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("callpulse");
    assert!(
        path.exists(),
        "{} is missing: build it first (deploy/local/test.sh runs `cargo build -p callpulse-cli`)",
        path.display()
    );
    path
}

struct Processor {
    child: Child,
    log: PathBuf,
}

impl Processor {
    fn start(env: &[(String, String)], name: &str) -> Processor {
        let log = std::env::temp_dir().join(format!("callpulse-{name}-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(callpulse_binary())
            .arg("processor")
            .envs(env.iter().cloned())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Processor { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no flush, no commit, no leaving the group.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM: the graceful path; returns whether it exited cleanly.
    fn terminate(&mut self) -> bool {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        self.child.wait().unwrap().success()
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
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
    let mut events = generate(&plan);
    events.sort_by_key(|e| e.at);
    assert!(events.len() > 1_000, "{}", events.len());
    events
}

async fn publish(config: &Config, events: &[CallEvent]) {
    let producer = kafka::producer(&config.kafka).unwrap();
    callpulse_simulator::publish(&producer, &config.topics.call_events, events)
        .await
        .unwrap();
}

/// Waits until the processors have emitted something and written restart points.
async fn wait_for_progress(config: &Config) {
    let metrics = read_topic(config, &config.topics.metrics, 1, Duration::from_secs(60));
    assert!(!metrics.is_empty(), "the processor emitted nothing");
    tokio::time::sleep(Duration::from_secs(2)).await; // a few checkpoint intervals (500 ms)
}

fn resumed_offsets(log: &str) -> Vec<i64> {
    log.lines()
        .filter(|line| line.contains("resuming from checkpoint"))
        .filter_map(|line| {
            line.split("offset=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_processor_restarts_from_its_checkpoints_and_clickhouse_ends_exact() {
    let env = test_env("recovery");
    let config = test_config("recovery");
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let events = two_days_of_calls();
    let expected = expected_counts(&events);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sink = tokio::spawn(callpulse_sink::run(config.clone(), async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));

    // 90% of the input (43 hours), then SIGKILL mid-stream.
    let split = events.len() * 9 / 10;
    publish(&config, &events[..split]).await;
    let mut first = Processor::start(&env, "recovery-a");
    wait_for_progress(&config).await;
    first.kill();

    publish(&config, &events[split..]).await;
    let mut second = Processor::start(&env, "recovery-b");
    let actual = wait_for_counts(&config, &expected, Duration::from_secs(120)).await;
    let log = second.log();
    if actual != expected {
        eprintln!(
            "--- before the kill ---\n{}\n--- after ---\n{log}",
            first.log()
        );
    }
    assert!(
        second.terminate(),
        "SIGTERM should stop the processor cleanly:\n{log}"
    );
    stop.send(true).unwrap();
    sink.await.unwrap().unwrap();

    assert_same_counts(&actual, &expected);
    let resumed = resumed_offsets(&log);
    assert!(
        resumed.iter().any(|offset| *offset > 0),
        "the restarted processor should resume mid-partition from a checkpoint, got {resumed:?}:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_share_the_partitions_and_one_leaving_changes_nothing() {
    let env = test_env("scaleout");
    let config = test_config("scaleout");
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let events = two_days_of_calls();
    let expected = expected_counts(&events);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sink = tokio::spawn(callpulse_sink::run(config.clone(), async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));

    let mut first = Processor::start(&env, "scaleout-a");
    let mut second = Processor::start(&env, "scaleout-b");
    let split = events.len() * 9 / 10;
    publish(&config, &events[..split]).await;
    wait_for_progress(&config).await;
    // The first member leaves (SIGTERM: it flushes, commits and leaves the
    // group); its partitions move to the second, which rebuilds them from
    // their checkpoints. (A member that dies without leaving is not
    // expired by the local broker: docs/broker.md. SIGKILL and restart are
    // the test above.)
    assert!(
        first.terminate(),
        "SIGTERM should stop the first member cleanly:\n{}",
        first.log()
    );
    let first_log = first.log();
    publish(&config, &events[split..]).await;

    let actual = wait_for_counts(&config, &expected, Duration::from_secs(120)).await;
    let second_log = second.log();
    if actual != expected {
        eprintln!("--- first member ---\n{first_log}\n--- second member ---\n{second_log}");
    }
    assert!(
        second.terminate(),
        "SIGTERM should stop the processor cleanly:\n{second_log}"
    );
    stop.send(true).unwrap();
    sink.await.unwrap().unwrap();
    assert_same_counts(&actual, &expected);
    // Both members owned partitions, and the second took over the first's.
    for log in [&first_log, &second_log] {
        assert!(log.contains("partitions assigned"), "{log}");
    }
    assert!(
        second_log.contains("resuming from checkpoint"),
        "the second member should rebuild the moved partitions from checkpoints:\n{second_log}"
    );
}
