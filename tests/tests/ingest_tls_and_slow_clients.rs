//! The adapters' HTTP ingest over TLS, and its limit on slow clients
//! (issue #10), against the real broker: events posted over HTTPS reach the
//! call-events topic; plain HTTP on the TLS port gets nothing; a connection
//! that does not finish its TLS handshake, or its request headers, within
//! `adapters.header_read_timeout_ms` is closed; a body that does not arrive
//! within `adapters.body_read_timeout_ms` is refused (408) and dead-lettered.

use std::time::{Duration, Instant};

use callpulse_e2e::process::free_port;
use callpulse_e2e::{read_topic, test_config};
use callpulse_runtime::avro::decode_call_event;
use callpulse_runtime::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PSEUDONYM_KEY: &str = "tls-test-pseudonym-key-0123456789abcdef";

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files.
fn certificate(dir: &std::path::Path) -> (String, String, String) {
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = issued.cert.pem();
    let cert = dir.join("ingest.crt");
    let key = dir.join("ingest.key");
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, issued.key_pair.serialize_pem()).unwrap();
    (
        cert.display().to_string(),
        key.display().to_string(),
        cert_pem,
    )
}

/// Starts the adapters with `config` and a limit of `header_read_timeout_ms`
/// on slow clients; returns their address and a stop switch.
async fn start(
    config: Config,
    header_read_timeout_ms: u64,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = config;
    config.adapters.header_read_timeout_ms = header_read_timeout_ms;
    start_with(config).await
}

/// Starts the adapters with `config` as it is.
async fn start_with(config: Config) -> (String, tokio::sync::oneshot::Sender<()>) {
    let port = free_port();
    let mut config = config;
    config.adapters.listen = format!("127.0.0.1:{port}");
    config.adapters.pseudonym_key = PSEUDONYM_KEY.into();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        callpulse_adapters::http::run(config, None, false, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&address).await.is_err() {
        assert!(Instant::now() < deadline, "the adapters never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (address, stop)
}

/// Whether the server closes `stream` (EOF, reset or an error status)
/// within `within`, having been sent `partial`.
async fn closed_within(address: &str, partial: &[u8], within: Duration) -> bool {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(partial).await.unwrap();
    let mut answer = Vec::new();
    // Finished reading: EOF or reset, the server closed it.
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .is_ok()
}

/// The call-events topic holds one event, and it is `event_id`.
fn assert_only_published(config: &Config, event_id: &str) {
    let published = read_topic(
        config,
        &config.topics.call_events,
        1,
        Duration::from_secs(20),
    );
    assert_eq!(published.len(), 1);
    assert_eq!(
        decode_call_event(&published[0].1).unwrap().event_id,
        event_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_posted_over_https_arrive_and_slow_clients_are_cut_off() {
    let dir = std::env::temp_dir().join(format!("callpulse-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, cert_pem) = certificate(&dir);
    let mut config = test_config("tls");
    config.adapters.tls_cert_file = cert;
    config.adapters.tls_key_file = key;
    callpulse_runtime::kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    let (address, stop) = start(config.clone(), 1_000).await;

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let event = serde_json::json!({
        "event_id": "tls-1", "call_id": "c-tls-1", "vendor": "generic", "practice": "A81001",
        "kind": "offered", "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let response = client
        .post(format!("https://{address}/v1/events"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_only_published(&config, "tls-1");

    // Plain HTTP on the TLS port: no answer, the connection is dropped.
    let plain = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP answered on the TLS port: {plain:?}"
    );

    // A client that opens a connection and never finishes the handshake
    // is closed after the 1 s limit, not held for ever.
    assert!(closed_within(&address, b"", Duration::from_secs(5)).await);
    let _ = stop.send(());

    // Without TLS, headers that trickle in are cut off the same way...
    let (address, stop) = start(test_config("slow"), 1_000).await;
    assert!(
        closed_within(
            &address,
            b"POST /v1/events HTTP/1.1\r\nHost: ingest\r\n",
            Duration::from_secs(5)
        )
        .await,
        "a request whose headers never end kept its connection"
    );
    // ...while a prompt client is served.
    let health = reqwest::get(format!("http://{address}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let _ = stop.send(());

    // The control: with a 60 s limit the same trickling client is still
    // connected after 3 s, so it is the limit that closed it above.
    let (address, stop) = start(test_config("patient"), 60_000).await;
    assert!(
        !closed_within(
            &address,
            b"POST /v1/events HTTP/1.1\r\nHost: ingest\r\n",
            Duration::from_secs(3)
        )
        .await
    );
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Posts `body` to `/v1/events` over plain HTTP, `chunk` bytes every
/// `pause`; returns the answer's status line and body (the server may
/// answer before the body is complete).
async fn post_trickling(address: &str, body: &[u8], chunk: usize, pause: Duration) -> String {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let body = body.to_vec();
    let sender = tokio::spawn(async move {
        for piece in body.chunks(chunk) {
            tokio::time::sleep(pause).await;
            // The server may have answered and closed already.
            if writer.write_all(piece).await.is_err() {
                return;
            }
        }
        // Keep the connection open for the answer: a client that shuts
        // down its side is taken to have gone.
        std::future::pending::<()>().await;
        drop(writer);
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut answer))
        .await
        .expect("the adapters answered within a minute")
        .ok();
    sender.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_is_refused_with_408_and_dead_lettered() {
    let mut config = test_config("slowbody");
    callpulse_runtime::kafka::ensure_topics(&config.kafka, &config.topics.all())
        .await
        .unwrap();
    config.adapters.body_read_timeout_ms = 2_000;
    let (address, stop) = start_with(config.clone()).await;
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let event = |id: &str| {
        serde_json::json!({
            "event_id": id, "call_id": format!("c-{id}"), "vendor": "generic",
            "practice": "A81001", "kind": "offered",
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
        .to_string()
    };

    // The control first: a body sent in pieces that is all there within
    // the limit (about 0.6 s) is taken.
    let prompt = event("slow-but-in-time");
    let answer = post_trickling(
        &address,
        prompt.as_bytes(),
        prompt.len() / 4 + 1,
        Duration::from_millis(150),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A byte every 100 ms: the body would need about 15 s; the limit is 2 s.
    let started = Instant::now();
    let slow = event("too-slow");
    let answer = post_trickling(&address, slow.as_bytes(), 1, Duration::from_millis(100)).await;
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    // Cut off by the limit, long before the body could have arrived.
    assert!(
        waited < Duration::from_secs(12),
        "answered after {waited:?}"
    );

    assert_only_published(&config, "slow-but-in-time");
    let dead = read_topic(
        &config,
        &config.topics.dead_letters,
        1,
        Duration::from_secs(20),
    );
    assert_eq!(dead.len(), 1);
    let letter: serde_json::Value = serde_json::from_slice(&dead[0].1).unwrap();
    assert_eq!(letter["code"], "body_timeout", "{letter}");
    assert_eq!(letter["source"], "http", "{letter}");

    let metrics = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"callpulse_adapter_rejected_total{vendor="generic",code="body_timeout"} 1"#
        ),
        "{metrics}"
    );
    let _ = stop.send(());
}
