//! Shared by the operability tests (ops_endpoints.rs, log_audit.rs): real
//! `callpulse` processes on free ports, their logs captured, and readers of
//! the operations endpoints (docs/operations.md).

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use callpulse_e2e::process::{free_port, Process};

/// `GET url`: (status, body); status 0 when nothing answered.
pub async fn get(url: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    match client.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// Polls `url` until it answers `status`; returns the last body.
pub async fn wait_for_status(url: &str, status: u16, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let (got, body) = get(url).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} answered {got}, not {status}, for {timeout:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The sum of every series of `name` in a Prometheus text whose labels
/// contain each of `labels` (e.g. `table="calls"`).
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric_name, label_text) = match series.split_once('{') {
                Some((n, l)) => (n, l),
                None => (series, ""),
            };
            (metric_name == name && labels.iter().all(|l| label_text.contains(l)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Whether the Prometheus text declares the metric `name` (`# TYPE name …`).
pub fn declares(text: &str, name: &str) -> bool {
    text.lines()
        .any(|line| line.starts_with(&format!("# TYPE {name} ")))
}

/// Where each service of a [`Stack`] listens.
pub struct Ports {
    pub processor: u16,
    pub sink: u16,
    pub alerter: u16,
    pub adapters: u16,
}

impl Ports {
    pub fn free() -> Ports {
        Ports {
            processor: free_port(),
            sink: free_port(),
            alerter: free_port(),
            adapters: free_port(),
        }
    }

    /// (service name, base URL of its operations endpoints).
    pub fn bases(&self) -> [(&'static str, String); 4] {
        let base = |port: u16| format!("http://127.0.0.1:{port}");
        [
            ("processor", base(self.processor)),
            ("sink", base(self.sink)),
            ("alerter", base(self.alerter)),
            ("adapters", base(self.adapters)),
        ]
    }
}

/// The environment that puts a test's services on `ports`, with the
/// alerter reading `contacts` and its own group and undeliverable topic.
pub fn stack_env(
    mut env: Vec<(String, String)>,
    ports: &Ports,
    contacts: &std::path::Path,
) -> Vec<(String, String)> {
    let run = env
        .iter()
        .find(|(k, _)| k == "CALLPULSE__CLICKHOUSE__DATABASE")
        .map(|(_, v)| v.clone())
        .unwrap();
    let listen = |port: u16| format!("127.0.0.1:{port}");
    for (key, value) in [
        (
            "CALLPULSE__PROCESSOR__METRICS_LISTEN",
            listen(ports.processor),
        ),
        ("CALLPULSE__SINK__METRICS_LISTEN", listen(ports.sink)),
        ("CALLPULSE__ALERTER__METRICS_LISTEN", listen(ports.alerter)),
        ("CALLPULSE__ADAPTERS__LISTEN", listen(ports.adapters)),
        (
            "CALLPULSE__ALERTER__CONTACTS",
            contacts.display().to_string(),
        ),
        ("CALLPULSE__ALERTER__GROUP_ID", format!("alerter-{run}")),
        (
            "CALLPULSE__ALERTER__UNDELIVERABLE_TOPIC",
            format!("undeliverable-{run}"),
        ),
        ("CALLPULSE__ALERTER__GROUP_WINDOW_MS", "200".into()),
        ("CALLPULSE__ALERTER__BACKOFF_INITIAL_MS", "100".into()),
        ("CALLPULSE__ALERTER__MAX_ATTEMPTS", "3".into()),
    ] {
        env.push((key.to_string(), value));
    }
    env
}

/// Starts processor, sink, alerter and adapters as processes, each named
/// after its command.
pub fn start_all(env: &[(String, String)]) -> Vec<Process> {
    ["processor", "sink", "alerter", "adapters"]
        .into_iter()
        .map(|service| Process::callpulse(service, &[service], env))
        .collect()
}

/// A webhook receiver: `POST /hooks/{token}` answers 200 and is counted.
pub struct Hook {
    /// The full URL, token included (a secret, like a Teams or Slack URL).
    pub url: String,
    pub received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

pub async fn hook(token: &str) -> Hook {
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let received = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hooks/{token}",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/{token}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Hook { url, received }
}

/// A contacts file sending everything (operators and ICB QHM) to `url`, a
/// signed webhook.
pub fn contacts_file(name: &str, url: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "callpulse-ops-contacts-{name}-{}.toml",
        std::process::id()
    ));
    std::fs::write(
        &path,
        format!(
            r#"
operators = ["hook"]
[recipients.hook]
name = "operations webhook"
channel = "webhook"
url = "{url}"
[icb]
QHM = ["hook"]
"#
        ),
    )
    .unwrap();
    path
}

/// Simulated calls of `practices` practices over 30 minutes starting 3
/// hours ago, without the events still in the future (callbacks): event
/// times the adapters accept. In event-time order.
pub fn recent_events(
    practices: usize,
    calls_per_practice_minute: f64,
) -> Vec<callpulse_core::CallEvent> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut events = callpulse_simulator::generate(&callpulse_simulator::SimulationPlan {
        practices,
        seed: 11,
        start: callpulse_core::Timestamp(now - 180 * 60_000),
        duration_ms: 30 * 60_000,
        calls_per_practice_minute,
        speed: None,
    });
    events.retain(|e| e.at.0 < now - 60_000);
    events
}

/// Posts `events` to the adapters' generic route as JSON lines, 200 at a
/// time; every request must be answered 200.
pub async fn post_events(base: &str, events: &[String], token: Option<&str>) {
    let client = reqwest::Client::new();
    for chunk in events.chunks(200) {
        let mut request = client
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(chunk.join("\n"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "the adapters refused events: {body}");
    }
}

/// The local stack's state directory (deploy/local/stack.sh), for users.d.
pub fn state_dir() -> PathBuf {
    std::env::var_os("CALLPULSE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.local")))
}

/// A ClickHouse user with a password, declared in a users.d file that the
/// server picks up live; removed when dropped.
pub struct PasswordUser {
    file: PathBuf,
    pub name: String,
    pub password: String,
}

impl PasswordUser {
    pub async fn create(config: &callpulse_runtime::Config, tag: &str) -> PasswordUser {
        let users_d = state_dir().join("clickhouse/users.d");
        assert!(
            users_d.is_dir(),
            "{} is missing: start the stack with deploy/local/stack.sh",
            users_d.display()
        );
        let name = format!("{tag}_{}", std::process::id());
        let password = format!("{tag}-ch-password-{}-4f9a1c", std::process::id());
        let hash = callpulse_sink::access::password_sha256_hex(&password);
        let file = users_d.join(format!("{name}.xml"));
        std::fs::write(
            &file,
            format!(
                "<?xml version=\"1.0\"?>\n<yandex>\n    <users>\n        <{name}>\n            <password_sha256_hex>{hash}</password_sha256_hex>\n            <networks>\n                <ip>127.0.0.1</ip>\n                <ip>::1</ip>\n            </networks>\n            <profile>default</profile>\n            <quota>default</quota>\n        </{name}>\n    </users>\n</yandex>\n"
            ),
        )
        .unwrap();
        let user = PasswordUser {
            file,
            name,
            password,
        };
        let client = callpulse_sink::clickhouse_server(config)
            .with_user(&user.name)
            .with_password(&user.password);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.query("SELECT toUInt8(1)").fetch_one::<u8>().await {
                Ok(_) => break,
                Err(err) => assert!(
                    Instant::now() < deadline,
                    "the ClickHouse user never got in: {err}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        user
    }
}

impl PasswordUser {
    /// Takes the user away (ClickHouse notices within seconds).
    pub fn revoke(&self) -> String {
        let text = std::fs::read_to_string(&self.file).unwrap();
        std::fs::remove_file(&self.file).unwrap();
        text
    }

    /// Declares the user again with `text` from [`PasswordUser::revoke`].
    pub fn restore(&self, text: &str) {
        std::fs::write(&self.file, text).unwrap();
    }
}

impl Drop for PasswordUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}
