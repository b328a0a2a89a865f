//! The operations endpoints every service serves (docs/operations.md):
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok`: the process is alive and serving |
//! | `GET /readyz` | `200` when every readiness check of the service passes, else `503`; JSON either way: `{"ready": bool, "checks": {name: "ok" or the reason}}` |
//! | `GET /metrics` | the service's Prometheus metrics ([`crate::metrics`]) |
//!
//! A service names its checks up front ([`Readiness::new`]); each starts
//! failing ("not checked yet") until the service reports it passing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::{Registry, CONTENT_TYPE};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{setting}: `{listen}` is not host:port")]
    Address { setting: String, listen: String },
    #[error("{setting}: listening on {listen}: {source}")]
    Bind {
        setting: String,
        listen: String,
        source: std::io::Error,
    },
}

/// The readiness checks of one service: name → `None` (passing) or the
/// reason it fails.
#[derive(Debug, Default)]
pub struct Readiness {
    checks: Mutex<BTreeMap<&'static str, Option<String>>>,
}

/// The reason of a check that has not been reported yet.
pub const NOT_CHECKED: &str = "not checked yet";

impl Readiness {
    /// Readiness with `checks`, each failing until reported passing. No
    /// checks: always ready.
    pub fn new(checks: &[&'static str]) -> Arc<Readiness> {
        let checks = checks
            .iter()
            .map(|name| (*name, Some(NOT_CHECKED.to_string())))
            .collect();
        Arc::new(Readiness {
            checks: Mutex::new(checks),
        })
    }

    pub fn pass(&self, check: &'static str) {
        self.set(check, None);
    }

    pub fn fail(&self, check: &'static str, reason: impl Into<String>) {
        self.set(check, Some(reason.into()));
    }

    /// Passing with `Ok`, failing with the error's text.
    pub fn report<E: std::fmt::Display>(&self, check: &'static str, result: &Result<(), E>) {
        match result {
            Ok(()) => self.pass(check),
            Err(err) => self.fail(check, err.to_string()),
        }
    }

    fn set(&self, check: &'static str, state: Option<String>) {
        let mut checks = self.checks.lock().expect("readiness lock");
        let previous = checks.insert(check, state.clone());
        // Log changes only, not every probe.
        match (previous.flatten(), state) {
            (Some(_), None) => tracing::info!(check, "readiness check passes"),
            (None, Some(reason)) => tracing::warn!(check, %reason, "readiness check fails"),
            _ => {}
        }
    }

    /// Whether every check passes.
    pub fn is_ready(&self) -> bool {
        self.checks
            .lock()
            .expect("readiness lock")
            .values()
            .all(Option::is_none)
    }

    /// `{"ready": bool, "checks": {name: "ok" | reason}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let checks = self.checks.lock().expect("readiness lock");
        let ready = checks.values().all(Option::is_none);
        let map: serde_json::Map<String, serde_json::Value> = checks
            .iter()
            .map(|(name, state)| {
                let text = state.as_deref().unwrap_or("ok");
                (name.to_string(), serde_json::Value::from(text))
            })
            .collect();
        serde_json::json!({ "ready": ready, "checks": map })
    }
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when ready, else 503; JSON.
pub fn readyz(readiness: &Readiness) -> Response {
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(readiness.to_json())).into_response()
}

/// `GET /metrics`.
pub fn metrics(registry: &Registry) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], registry.render()).into_response()
}

/// `/healthz`, `/readyz` and `/metrics`, to serve alone or merge into a
/// service's own router.
pub fn router(registry: Arc<Registry>, readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(move || async move { readyz(&readiness) }))
        .route("/metrics", get(move || async move { metrics(&registry) }))
}

/// Serves [`router`] on `listen` in the background. `setting` names the
/// configuration key, for messages. An empty `listen` is off: `Ok(None)`;
/// one that is not host:port is an error. A port that cannot be bound (in
/// use) is logged as an error and the service runs on without the
/// endpoints (its work does not depend on them; a liveness probe notices):
/// `Ok(None)`. Returns the bound address (a port of 0 picks a free one).
pub async fn serve(
    setting: &str,
    listen: &str,
    registry: Arc<Registry>,
    readiness: Arc<Readiness>,
) -> Result<Option<SocketAddr>, OpsError> {
    if listen.trim().is_empty() {
        tracing::info!(setting, "operations endpoints off");
        return Ok(None);
    }
    let addr: SocketAddr = listen.parse().map_err(|_| OpsError::Address {
        setting: setting.to_string(),
        listen: listen.to_string(),
    })?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(source) => {
            let err = OpsError::Bind {
                setting: setting.to_string(),
                listen: listen.to_string(),
                source,
            };
            tracing::error!(%err, "operations endpoints unavailable: /healthz, /readyz and /metrics are not served");
            return Ok(None);
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(setting, addr = %bound, "operations endpoints on /healthz, /readyz, /metrics");
    let app = router(registry, readiness);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(%err, "the operations endpoints stopped");
        }
    });
    Ok(Some(bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let readiness = Readiness::new(&["kafka", "clickhouse"]);
        assert!(!readiness.is_ready());
        assert_eq!(readiness.to_json()["checks"]["kafka"], NOT_CHECKED);
        readiness.pass("kafka");
        readiness.report::<String>("clickhouse", &Err("connection refused".into()));
        assert!(!readiness.is_ready());
        assert_eq!(
            readiness.to_json(),
            serde_json::json!({"ready": false, "checks": {"kafka": "ok", "clickhouse": "connection refused"}})
        );
        readiness.pass("clickhouse");
        assert!(readiness.is_ready());
        assert!(Readiness::new(&[]).is_ready());
    }

    #[tokio::test]
    async fn serves_the_three_routes_and_empty_is_off() {
        let registry = Arc::new(Registry::new());
        registry.inc("callpulse_test_total", "Test.", &[]);
        let readiness = Readiness::new(&["kafka"]);
        let addr = serve("test.listen", "127.0.0.1:0", registry, readiness.clone())
            .await
            .unwrap()
            .unwrap();
        let get = |path: &str| {
            let path = path.to_string();
            async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let request =
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).await.unwrap();
                response
            }
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        let not_ready = get("/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(not_ready.contains(NOT_CHECKED), "{not_ready}");
        readiness.pass("kafka");
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let metrics = get("/metrics").await;
        assert!(metrics.contains("callpulse_test_total 1"), "{metrics}");
        assert!(
            serve("x", "", Arc::new(Registry::new()), Readiness::new(&[]))
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            serve(
                "x",
                "nonsense",
                Arc::new(Registry::new()),
                Readiness::new(&[])
            )
            .await,
            Err(OpsError::Address { .. })
        ));
    }
}
