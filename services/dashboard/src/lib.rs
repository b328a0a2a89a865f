//! `callpulse dashboard`: a live web dashboard of the call metrics,
//! England → region → ICB → PCN → practice, read from ClickHouse through
//! the analysts' rollup views, and the JSON API under `/api/v1` that the
//! page itself uses (docs/dashboard.md). Every API route checks the login
//! token's scope on the server; without a token there is no data.

pub mod access;
pub mod api;
pub mod assets;
pub mod db;
pub mod node;
pub mod ops;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callpulse_runtime::Config;
use tokio::sync::Mutex;
use tracing::{info, warn};

pub use access::{Scope, Tokens};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("login tokens: {0}")]
    Tokens(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("a login token is needed (Authorization: Bearer TOKEN)")]
    Unauthorized,
    #[error("this login may not see that organisation")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("dashboard.day `{0}` is not a date (YYYY-MM-DD)")]
    Day(String),
    #[error("listening on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadRequest(_) | Error::Day(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::ClickHouse(err) => {
                warn!(%err, "ClickHouse query failed");
                StatusCode::BAD_GATEWAY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self {
            // The query text is for the log, not for the browser.
            Error::ClickHouse(_) => "the database did not answer; try again shortly".to_string(),
            other => other.to_string(),
        };
        let mut response =
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"callpulse\""),
            );
        }
        response
    }
}

/// What every request shares.
pub struct AppState {
    pub client: clickhouse::Client,
    pub tokens: Tokens,
    pub refresh_seconds: u64,
    /// The day shown when none is asked for; None: the latest with metrics.
    pub fixed_day: Option<String>,
    /// `/readyz` and `/metrics`.
    pub operations: ops::Operations,
    cache: Cache,
}

impl AppState {
    pub fn new(config: &Config, tokens: Tokens) -> Result<AppState, Error> {
        let dashboard = &config.dashboard;
        let fixed_day = match dashboard.day.trim() {
            "" => None,
            day => Some(api::parse_day(day).map_err(|_| Error::Day(day.to_string()))?),
        };
        Ok(AppState {
            client: db::client(config),
            tokens,
            refresh_seconds: dashboard.refresh_seconds.max(1),
            fixed_day,
            operations: ops::Operations::new(),
            cache: Cache::new(Duration::from_millis(dashboard.cache_ms)),
        })
    }
}

/// Answers computed within `ttl` are shared: many viewers polling the same
/// page cost ClickHouse one query per refresh, not one each.
struct Cache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, serde_json::Value)>>,
}

impl Cache {
    fn new(ttl: Duration) -> Cache {
        Cache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    async fn get_or<F, Fut>(&self, key: String, compute: F) -> Result<serde_json::Value, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<serde_json::Value, Error>>,
    {
        if self.ttl.is_zero() {
            return compute().await;
        }
        if let Some((at, value)) = self.entries.lock().await.get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        let value = compute().await?;
        let mut entries = self.entries.lock().await;
        let ttl = self.ttl;
        entries.retain(|_, (at, _)| at.elapsed() < ttl);
        entries.insert(key, (Instant::now(), value.clone()));
        Ok(value)
    }
}

/// The tokens of the configuration: the tokens file, then `dashboard.tokens`.
pub fn load_tokens(config: &Config) -> Result<Tokens, Error> {
    let mut tokens = Tokens::new();
    let file = config.dashboard.tokens_file.trim();
    if !file.is_empty() {
        tokens.add_file(Path::new(file))?;
    }
    tokens.add_pairs(&config.dashboard.tokens)?;
    Ok(tokens)
}

/// The whole application: the page, its assets, the API, and `/healthz`,
/// `/readyz` and `/metrics`; every request counted in `/metrics`.
pub fn router(state: Arc<AppState>) -> axum::Router {
    assets::routes()
        .merge(api::routes())
        .merge(ops::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::record,
        ))
        .with_state(state)
}

/// `callpulse dashboard`: serves until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let tokens = load_tokens(&config)?;
    if tokens.is_empty() {
        warn!("no login tokens configured (dashboard.tokens_file, CALLPULSE__DASHBOARD__TOKENS): the dashboard will show no data");
    }
    let count = tokens.len();
    let state = Arc::new(AppState::new(&config, tokens)?);
    let address = &config.dashboard.listen;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Error::Listen {
            address: address.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(Error::Serve)?;
    info!(
        url = %format!("http://{local}/"),
        tokens = count,
        database = %config.clickhouse.database,
        clickhouse = %config.clickhouse.url,
        "dashboard listening"
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)?;
    info!("dashboard stopped");
    Ok(())
}
