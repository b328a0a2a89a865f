//! The adapters' HTTP ingest over TLS, and its limit on slow clients
//! (issue #10), against the real broker: events posted over HTTPS reach the
//! call-events topic; plain HTTP on the TLS port gets nothing; a connection
//! that does not finish its TLS handshake, or its request headers, within
//! `adapters.header_read_timeout_ms` is closed.

use std::time::{Duration, Instant};

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = config;
    config.adapters.listen = format!("127.0.0.1:{port}");
    config.adapters.pseudonym_key = PSEUDONYM_KEY.into();
    config.adapters.header_read_timeout_ms = header_read_timeout_ms;
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
    let published = read_topic(
        &config,
        &config.topics.call_events,
        1,
        Duration::from_secs(20),
    );
    assert_eq!(published.len(), 1);
    assert_eq!(
        decode_call_event(&published[0].1).unwrap().event_id,
        "tls-1"
    );

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
