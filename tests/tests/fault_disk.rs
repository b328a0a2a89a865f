//! ClickHouse runs out of disk in the middle of a run, and comes back.
//!
//! The test starts a ClickHouse of its own (the local 18.16, on free
//! ports) whose data path is a small tmpfs mounted for the run (logs and
//! temporary files elsewhere), applies the schema, and runs the processor
//! and the sink (real processes) against it and the shared broker. Once
//! the sink has stored the first events, a filler file takes every byte
//! left on the tmpfs: ClickHouse's inserts fail with "No space left on
//! device" while the rest of the events arrive. The sink must report the
//! failures, keep retrying without exiting, and commit nothing while its
//! rows are not stored (the backlog stays in Kafka). Then the filler is
//! deleted, and ClickHouse must end up equal to `callpulse replay` of the
//! events. The server is killed and the tmpfs unmounted when the test
//! ends, also when it fails. Mounting needs root: without it the test fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use callpulse_core::CallEvent;
use callpulse_e2e::own_clickhouse::{start_server, wait_until_answers, Ports, TempDir};
use callpulse_e2e::process::Process;
use callpulse_e2e::{
    an_hour_of_calls, assert_backs_off, assert_recovered, committed_offsets, expected_rows,
    logged_numbers, publish_events, publish_until_stored, start_processor_and_sink, stored_rows,
    test_env, with_clickhouse_url,
};
use callpulse_runtime::{kafka, Config};

/// The size of ClickHouse's disk.
const DISK_MIB: u64 = 128;
/// How long the disk stays full at least.
const FULL_FOR: Duration = Duration::from_secs(20);

/// A tmpfs mounted on a folder; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|err| panic!("fault_disk needs `mount` (and root): {err}"));
        assert!(
            out.status.success(),
            "fault_disk needs to mount a tmpfs (run it as root, or in a container allowed to \
             mount): `mount -t tmpfs` on {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process not yet gone): detach it now, freed when unused.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Writes zeros into `path` until the file system has no byte left; its size.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(err) if err.raw_os_error() == Some(28) => break, // ENOSPC
            Err(err) => panic!("filling {}: {err}", path.display()),
        }
    }
    // The last pages, smaller than a chunk.
    loop {
        match file.write(&chunk[..512]) {
            Ok(n) if n > 0 => written += n as u64,
            _ => break,
        }
    }
    let _ = file.sync_all();
    written
}

/// ClickHouse with its data on a tmpfs. Dropped in field order: the
/// server first, then the tmpfs, then the folder.
struct DiskClickHouse {
    url: String,
    home: PathBuf,
    _server: Process,
    disk: Tmpfs,
    _dir: TempDir,
}

impl DiskClickHouse {
    async fn start() -> DiskClickHouse {
        let dir = TempDir::new("fault-disk");
        let disk = Tmpfs::mount(&dir.0.join("disk"), DISK_MIB);
        let ports = Ports::free();
        let home = dir.0.join("home");
        let mut server = start_server(
            "fault-disk-clickhouse",
            &home,
            &disk.0.join("data"),
            &ports,
            "",
        );
        let url = format!("http://127.0.0.1:{}", ports.http);
        wait_until_answers(&url, &mut server).await;
        DiskClickHouse {
            url,
            home,
            _server: server,
            disk,
            _dir: dir,
        }
    }

    fn filler(&self) -> PathBuf {
        self.disk.0.join("filler")
    }
}

/// The sink group's committed offsets on its three topics.
fn sink_committed(config: &Config) -> Vec<(String, i32, i64)> {
    let topics = [
        config.topics.metrics.as_str(),
        config.topics.calls.as_str(),
        config.topics.alerts.as_str(),
    ];
    committed_offsets(config, &config.sink.group_id, &topics)
}

fn is_disk_full(error: &str) -> bool {
    [
        "No space left on device",
        "Cannot reserve space",
        "NOT_ENOUGH_SPACE",
    ]
    .iter()
    .any(|text| error.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_out_of_disk_loses_nothing_and_commits_nothing_unstored() {
    let started = Instant::now();
    let clickhouse = DiskClickHouse::start().await;
    let env = with_clickhouse_url(&test_env("fault_disk"), &clickhouse.url);
    let config = Config::load_from(None, env.clone()).unwrap();
    callpulse_sink::migrate::apply(&config).await.unwrap();
    kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();

    let (mut processor, mut sink) = start_processor_and_sink("fault-disk", &env, &env).await;

    // About 3,000 events.
    let events = an_hour_of_calls(12, "2026-11-23T09:00:00Z", 0.25);
    let expected = expected_rows(&events);
    let chunks: Vec<&[CallEvent]> = events.chunks(events.len().div_ceil(8)).collect();

    // The first quarter, and wait until the sink has stored some of it.
    publish_until_stored(&config, &chunks[..2], &mut sink).await;

    // The disk fills up; the rest of the events arrive.
    let filled_at = Instant::now();
    let filler_bytes = fill(&clickhouse.filler());
    const INSERT_FAILED: &str = "ClickHouse insert failed";
    let failures_before = sink.log().matches(INSERT_FAILED).count();
    // The sink's log lines of failed inserts since the disk filled up.
    let failures_since_full = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|line| line.contains(INSERT_FAILED))
            .skip(failures_before)
            .map(str::to_owned)
            .collect()
    };
    for chunk in &chunks[2..] {
        publish_events(&config, chunk).await;
    }

    // The sink's inserts fail: wait for its first failure on a full disk.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        sink.assert_running();
        let failures = failures_since_full(&sink.log());
        if failures.iter().any(|line| is_disk_full(line)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sink reported no failed insert on the full disk ({filler_bytes} bytes of filler):\n{}",
            failures.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // From now on the sink retries one batch: nothing may be committed, and
    // nothing stored, until the disk has room again.
    let committed_stuck = sink_committed(&config);
    let windows_stuck = stored_rows(&config, "window_metrics").await;
    while filled_at.elapsed() < FULL_FOR {
        sink.assert_running();
        processor.assert_running();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let committed_full = sink_committed(&config);
    let windows_full = stored_rows(&config, "window_metrics").await;
    let failures = failures_since_full(&sink.log());
    let delays = logged_numbers::<u64>(&failures.join("\n"), INSERT_FAILED, "retry_in_ms");

    // Room again.
    std::fs::remove_file(clickhouse.filler()).unwrap();
    let freed = Instant::now();
    let caught_up = assert_recovered(
        &config,
        &expected,
        Duration::from_secs(90),
        &mut [&mut processor, &mut sink],
    )
    .await;

    assert!(
        failures.len() >= 3 && failures.iter().all(|line| is_disk_full(line)),
        "while the disk was full the sink should have retried, every failure for want of space:\n{}",
        failures.join("\n")
    );
    assert_backs_off(&delays);
    assert_eq!(
        committed_full, committed_stuck,
        "the sink committed offsets while its batch was not stored"
    );
    assert_eq!(
        windows_full, windows_stuck,
        "rows were stored while the disk was full"
    );
    // And once stored, committed: the group's offsets move on.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink_committed(&config) == committed_full {
        assert!(
            Instant::now() < deadline,
            "the sink committed nothing after the rows were stored"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(sink);
    drop(processor);
    let server_log = std::fs::read_to_string(clickhouse.home.join("error.log")).unwrap_or_default();
    let space_errors = server_log.lines().filter(|line| is_disk_full(line)).count();
    eprintln!(
        "fault_disk: {} events; {} MiB tmpfs, {} MiB of filler; disk full for {:.1} s; \
         the sink retried {} times ({} ClickHouse error-log lines for want of space), delays {:?} ms, \
         committed nothing meanwhile; ClickHouse equal to replay ({} rows) {:.1} s after the filler \
         was deleted; test {:.0} s",
        events.len(),
        DISK_MIB,
        filler_bytes / (1024 * 1024),
        (freed - filled_at).as_secs_f64(),
        failures.len(),
        space_errors,
        delays,
        expected.len(),
        (caught_up - freed).as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}
