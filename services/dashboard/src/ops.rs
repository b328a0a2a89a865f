//! The operations endpoints of the dashboard, on its own port like every
//! route (docs/operations.md): `/readyz` asks ClickHouse on each probe,
//! `/metrics` counts requests by route and status and times them.
//! `/healthz` (liveness) is in `assets.rs`. None needs a token, and none
//! carries figures or token names.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use callpulse_runtime::metrics::Registry;
use callpulse_runtime::ops::{self, Readiness};

use crate::AppState;

/// The readiness check `/readyz` names.
pub const CLICKHOUSE_CHECK: &str = "clickhouse";

/// Upper bounds, in seconds, of the request-time histogram.
const REQUEST_SECONDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// What the dashboard reports about itself.
pub struct Operations {
    pub metrics: Arc<Registry>,
    pub readiness: Arc<Readiness>,
}

impl Operations {
    pub fn new() -> Operations {
        Operations {
            metrics: Arc::new(Registry::new()),
            readiness: Readiness::new(&[CLICKHOUSE_CHECK]),
        }
    }
}

impl Default for Operations {
    fn default() -> Self {
        Operations::new()
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(state): State<Arc<AppState>>| async move {
                ops::metrics(&state.operations.metrics)
            }),
        )
}

/// 200 when ClickHouse answers `SELECT 1` now, else 503 with the reason.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let answered = state
        .client
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
        .map(|_| ());
    state
        .operations
        .readiness
        .report(CLICKHOUSE_CHECK, &answered);
    ops::readyz(&state.operations.readiness)
}

/// Counts and times every request by its route pattern (never the path
/// itself: it holds practice codes) and status code.
pub async fn record(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let metrics = &state.operations.metrics;
    metrics.inc(
        "callpulse_dashboard_requests_total",
        "HTTP requests answered, by route pattern and status code (401/403: refused logins, 502: ClickHouse did not answer).",
        &[("route", route.as_str()), ("status", status.as_str())],
    );
    metrics.observe(
        "callpulse_dashboard_request_seconds",
        "Time to answer a request, by route pattern.",
        &[("route", route.as_str())],
        REQUEST_SECONDS,
        started.elapsed().as_secs_f64(),
    );
    response
}
