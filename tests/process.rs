//! Servers started as processes for one test: the `callpulse` services
//! and the fault tests' own broker, each with its output in a log file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use callpulse_testkit::{callpulse_binary, free_port};

/// The tansu broker that deploy/local/stack.sh installs (it prints the
/// path with `stack.sh tansu-bin`; deploy/local/test.sh exports it as
/// CALLPULSE_TANSU_BIN).
pub fn tansu_binary() -> PathBuf {
    let path = std::env::var_os("CALLPULSE_TANSU_BIN")
        .map(PathBuf::from)
        .expect(
            "CALLPULSE_TANSU_BIN is not set: run the tests with deploy/local/test.sh, \
         or export CALLPULSE_TANSU_BIN=$(deploy/local/stack.sh tansu-bin)",
        );
    assert!(
        path.exists(),
        "the tansu broker is missing at {}: install it with `deploy/local/stack.sh install` \
         (deploy/local/test.sh does before running the tests)",
        path.display()
    );
    path
}

/// Resident memory of a process in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A server started as a process for one test, its standard output and
/// error in one log file (a file per process started, so that tests of
/// one binary running at once keep theirs apart). Killed when dropped,
/// also when the test fails: then the end of its log is printed and the
/// file is kept.
pub struct Process {
    /// What its log and failure messages call it.
    pub name: String,
    child: Child,
    log: PathBuf,
    /// Once stopped by [`Process::kill`] or [`Process::terminate`]:
    /// whether it exited cleanly.
    exited: Option<bool>,
}

impl Process {
    /// `callpulse <args>` (the binary of [`callpulse_binary`]). Its
    /// RUST_LOG is `info`, or that of CALLPULSE_TEST_<ARGS[0]>_LOG (e.g.
    /// CALLPULSE_TEST_PROCESSOR_LOG=info,librdkafka=debug, with
    /// CALLPULSE__KAFKA__CLIENT_DEBUG, to see the Kafka client's side);
    /// a RUST_LOG in `env` overrides both.
    pub fn callpulse(name: &str, args: &[&str], env: &[(String, String)]) -> Process {
        let rust_log = args.first().and_then(|command| {
            std::env::var(format!("CALLPULSE_TEST_{}_LOG", command.to_uppercase())).ok()
        });
        let env: Vec<(String, String)> = rust_log
            .map(|level| ("RUST_LOG".to_string(), level))
            .into_iter()
            .chain(env.iter().cloned())
            .collect();
        Process::start(name, &callpulse_binary(), args, &env)
    }

    /// `program <args>` with RUST_LOG=info and NO_COLOR=1 unless `env` sets them.
    pub fn start(name: &str, program: &Path, args: &[&str], env: &[(String, String)]) -> Process {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let log =
            std::env::temp_dir().join(format!("callpulse-{name}-{}-{n}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", program.display()));
        Process {
            name: name.to_string(),
            child,
            log,
            exited: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with its log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    /// Waits until the log shows `text`; panics after `timeout`, or at once
    /// if the process exited without writing it.
    pub async fn wait_for_log(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            // Whether it runs before reading the log: what it wrote before
            // exiting counts.
            let exited = self.child.try_wait().unwrap();
            let log = self.log();
            if log.contains(text) {
                return;
            }
            if let Some(status) = exited {
                panic!(
                    "{} exited ({status}) without `{text}` in its log:\n{log}",
                    self.name
                );
            }
            assert!(
                Instant::now() < deadline,
                "no `{text}` from {} in {timeout:?}:\n{log}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no flush, no commit, no goodbye.
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exited = Some(false);
        }
    }

    /// SIGTERM, then waits up to `timeout` (`Duration::MAX`: as long as it
    /// takes) before a SIGKILL; whether it exited with status 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        if let Some(clean) = self.exited {
            return clean;
        }
        Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now().checked_add(timeout);
        let clean = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.success();
            }
            if deadline.is_some_and(|deadline| Instant::now() > deadline) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.exited = Some(clean);
        clean
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- last lines of {} ({}) ---",
                self.name,
                self.log.display()
            );
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resident_memory_of_this_process() {
        let rss = rss_kib(std::process::id()).unwrap();
        assert!(rss > 0);
    }
}
