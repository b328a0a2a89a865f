//! Outages at the network level: a TCP forwarder in front of a real server
//! (the broker, ClickHouse) that the fault tests cut and restore. While cut,
//! connecting is refused and every open connection is dropped, which is
//! what the clients see when the server process stops; the server itself
//! keeps running, so the shared local broker (which keeps everything in
//! memory) and ClickHouse lose nothing and other tests are not disturbed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP forwarder from a local port to `target` that can be cut.
pub struct Outage {
    addr: SocketAddr,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Outage {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the outage proxy");
        let addr = listener.local_addr().unwrap();
        let mut outage = Outage {
            addr,
            target,
            accept: None,
            connections: Arc::new(Mutex::new(Vec::new())),
        };
        outage.accept = Some(outage.spawn_accept(listener));
        outage
    }

    /// The address clients should use instead of the target's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether connections are forwarded now.
    pub fn is_up(&self) -> bool {
        self.accept.is_some()
    }

    /// Stops listening (connecting is refused) and drops every open
    /// connection; returns once both are done.
    pub async fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let connections: Vec<_> = std::mem::take(&mut *self.connections.lock().unwrap());
        for connection in &connections {
            connection.abort();
        }
        for connection in connections {
            let _ = connection.await;
        }
    }

    /// Listens on the same port again.
    pub async fn restore(&mut self) {
        if self.accept.is_some() {
            return;
        }
        // The port was ours a moment ago; retry briefly should the kernel
        // not have released it yet.
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("listening again on {}: {err}", self.addr),
            }
        };
        self.accept = Some(self.spawn_accept(listener));
    }

    fn spawn_accept(&self, listener: TcpListener) -> JoinHandle<()> {
        let target = self.target;
        let connections = self.connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let forward = tokio::spawn(async move {
                    // The target refusing is passed on as a closed connection.
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut connections = connections.lock().unwrap();
                connections.retain(|c| !c.is_finished());
                connections.push(forward);
            }
        })
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// A port of 127.0.0.1 that was free a moment ago (for a server started
/// as a process, which must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// `target/debug/callpulse`, next to the test binaries' `deps` folder.
pub fn callpulse_binary() -> PathBuf {
    // target/debug/deps/fault_broker-… → target/debug/callpulse
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("callpulse");
    assert!(
        path.exists(),
        "{} is missing: build it first (deploy/local/test.sh runs `cargo build -p callpulse-cli`)",
        path.display()
    );
    path
}

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

/// A server started as a process for one test, its standard output and
/// error in a log file; killed when dropped, also when the test fails (then the end
/// of its log is printed).
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn start(program: &Path, args: &[&str], env: &[(String, String)], name: &str) -> Process {
        let log = std::env::temp_dir().join(format!("callpulse-{name}-{}.log", std::process::id()));
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
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with its log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }

    /// Waits until the log shows `text`; panics after `timeout` or if the process exits.
    pub async fn wait_for_log(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(text) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "no `{text}` from {} in:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Waits until something accepts connections on `addr`.
pub async fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server: what it reads it writes back.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(text).await?;
        let mut buf = vec![0; text.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        Ok(buf)
    }

    #[tokio::test]
    async fn forwards_refuses_while_cut_and_forwards_again_once_restored() {
        let mut outage = Outage::start(echo().await).await;
        let mut before = TcpStream::connect(outage.addr()).await.unwrap();
        assert_eq!(round_trip(&mut before, b"hello").await.unwrap(), b"hello");

        outage.cut().await;
        assert!(!outage.is_up());
        let refused = TcpStream::connect(outage.addr()).await;
        assert_eq!(
            refused.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        // The open connection was dropped: it reads end-of-stream or fails.
        let mut buf = [0u8; 1];
        let _ = before.write_all(b"x").await;
        let read = tokio::time::timeout(Duration::from_secs(5), before.read(&mut buf))
            .await
            .expect("a cut connection must not hang");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

        outage.restore().await;
        assert!(outage.is_up());
        let mut after = TcpStream::connect(outage.addr()).await.unwrap();
        assert_eq!(round_trip(&mut after, b"again").await.unwrap(), b"again");
    }

    #[test]
    fn reads_the_resident_memory_of_this_process() {
        let rss = rss_kib(std::process::id()).unwrap();
        assert!(rss > 0);
    }
}
