//! The processor's Prometheus endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Keeps each call-event partition's end offset fresh, every 10 seconds, on
/// a thread of its own: asking the broker can take a while, and the
/// processing loop must not wait for a gauge.
pub fn watch_partition_ends(
    config: &callpulse_runtime::Config,
) -> anyhow::Result<Arc<Mutex<HashMap<i32, i64>>>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .create()
        .context("creating the lag watcher")?;
    let topic = config.topics.call_events.clone();
    let ends = Arc::new(Mutex::new(HashMap::new()));
    let shared = ends.clone();
    std::thread::Builder::new()
        .name("lag-watcher".into())
        .spawn(move || loop {
            if let Ok(metadata) = client.fetch_metadata(Some(&topic), Duration::from_secs(5)) {
                let partitions: Vec<i32> = metadata
                    .topics()
                    .iter()
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect();
                for partition in partitions {
                    if let Ok((_, high)) =
                        client.fetch_watermarks(&topic, partition, Duration::from_secs(5))
                    {
                        shared.lock().expect("ends lock").insert(partition, high);
                    }
                }
            }
            std::thread::sleep(Duration::from_secs(10));
        })
        .context("starting the lag watcher")?;
    Ok(ends)
}
