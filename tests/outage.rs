//! Outages at the network level: a TCP forwarder in front of a real server
//! (the broker, ClickHouse) that the fault tests cut and restore. While cut,
//! connecting is refused and every open connection is dropped, which is
//! what the clients see when the server process stops; the server itself
//! keeps running, so the shared local broker (which keeps everything in
//! memory) and ClickHouse lose nothing and other tests are not disturbed.

use std::net::SocketAddr;
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
}
