//! The processor's Prometheus endpoint.

use std::sync::Arc;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use callpulse_runtime::metrics::{Registry, CONTENT_TYPE};

/// Serves `GET /metrics` on `listen` in the background.
pub async fn serve_metrics(listen: &str, metrics: Arc<Registry>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("processor.metrics_listen: listening on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "processor metrics on /metrics");
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    metrics.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(%err, "the metrics endpoint stopped");
        }
    });
    Ok(())
}
