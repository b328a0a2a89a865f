//! The sink: consumes window metrics, inserts them into ClickHouse in
//! batches (by size and age), and commits Kafka offsets only after
//! ClickHouse acknowledged the insert. While ClickHouse is down the backlog
//! stays in Kafka: the sink retries the batch it holds and reads no further.

pub mod access;
pub mod migrate;
pub mod organisations;
pub mod tables;

pub use tables::{AlertRow, CallRow};

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use callpulse_core::WindowMetrics;

use callpulse_runtime::{kafka, Config};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use serde::Serialize;
use tracing::{info, warn};

/// A `window_metrics` row: the §4 record plus the replacing version.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, serde::Deserialize)]
pub struct WindowMetricsRow {
    pub practice: String,
    pub window: String,
    pub start: u32,
    pub end: u32,
    pub revision: u64,
    #[serde(rename = "final")]
    pub is_final: u8,
    pub version: u64,
    pub offered: u64,
    pub answered: u64,
    pub callback_requested: u64,
    pub abandoned: u64,
    pub missed: u64,
    pub ivr_ended: u64,
    pub diverted_111: u64,
    pub diverted_111_core: u64,
    pub callbacks_made: u64,
    pub unique_callers: u64,
    pub peak_waiting: u64,
    pub wait_count: u64,
    pub wait_ms_sum: u64,
    pub wait_ms_max: u64,
    pub wait_hist: Vec<u64>,
    pub abandon_count: u64,
    pub abandon_ms_sum: u64,
    pub abandon_ms_max: u64,
    pub abandon_hist: Vec<u64>,
    pub talk_count: u64,
    pub talk_ms_sum: u64,
    pub talk_ms_max: u64,
    pub talk_hist: Vec<u64>,
    pub callback_delay_count: u64,
    pub callback_delay_ms_sum: u64,
    pub dq_duplicates: u64,
    pub dq_conflicts: u64,
}

impl From<&WindowMetrics> for WindowMetricsRow {
    fn from(w: &WindowMetrics) -> Self {
        let seconds = |ts: callpulse_core::Timestamp| (ts.millis() / 1000) as u32;
        WindowMetricsRow {
            practice: w.practice.clone(),
            window: w.window.as_str().to_string(),
            start: seconds(w.start),
            end: seconds(w.end),
            revision: w.revision,
            is_final: u8::from(w.is_final),
            version: w.revision * 2 + u64::from(w.is_final),
            offered: w.offered,
            answered: w.answered,
            callback_requested: w.callback_requested,
            abandoned: w.abandoned,
            missed: w.missed,
            ivr_ended: w.ivr_ended,
            diverted_111: w.diverted_111,
            diverted_111_core: w.diverted_111_core,
            callbacks_made: w.callbacks_made,
            unique_callers: w.unique_callers,
            peak_waiting: w.peak_waiting,
            wait_count: w.wait_count,
            wait_ms_sum: w.wait_ms_sum,
            wait_ms_max: w.wait_ms_max,
            wait_hist: w.wait_hist.to_vec(),
            abandon_count: w.abandon_count,
            abandon_ms_sum: w.abandon_ms_sum,
            abandon_ms_max: w.abandon_ms_max,
            abandon_hist: w.abandon_hist.to_vec(),
            talk_count: w.talk_count,
            talk_ms_sum: w.talk_ms_sum,
            talk_ms_max: w.talk_ms_max,
            talk_hist: w.talk_hist.to_vec(),
            callback_delay_count: w.callback_delay_count,
            callback_delay_ms_sum: w.callback_delay_ms_sum,
            dq_duplicates: w.dq_duplicates,
            dq_conflicts: w.dq_conflicts,
        }
    }
}

/// A ClickHouse client for the server, no database chosen. This server
/// version (18.16) lacks what the crate's schema validation queries, so it is off.
pub fn clickhouse_server(config: &Config) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(&config.clickhouse.url)
        .with_user(&config.clickhouse.user)
        .with_password(&config.clickhouse.password)
        .with_validation(false)
}

/// A ClickHouse client for the configured database.
pub fn clickhouse_client(config: &Config) -> clickhouse::Client {
    clickhouse_server(config).with_database(&config.clickhouse.database)
}

/// What one flush holds: rows for each table and the offsets they cover.
#[derive(Default)]
struct Batch {
    windows: Vec<WindowMetricsRow>,
    calls: Vec<CallRow>,
    alerts: Vec<AlertRow>,
    /// (topic, partition) → next offset.
    offsets: Vec<(String, i32, i64)>,
}

impl Batch {
    fn rows(&self) -> usize {
        self.windows.len() + self.calls.len() + self.alerts.len()
    }

    fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

/// `callpulse sink`: window metrics, call summaries and alerts from Kafka
/// into their tables, in batches; offsets are committed only after
/// ClickHouse acknowledged every insert of the batch.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    migrate::apply(&config).await?;
    kafka::ensure_topics(&config.kafka, &config.topics.all()).await?;
    let client = clickhouse_client(&config);
    let consumer = kafka::consumer(&config.kafka, &config.sink.group_id)?;
    let topics = [
        config.topics.metrics.as_str(),
        config.topics.calls.as_str(),
        config.topics.alerts.as_str(),
    ];
    consumer
        .subscribe(&topics)
        .context("subscribing to metrics, calls and alerts")?;
    let max_age = Duration::from_millis(config.sink.batch_max_age_ms);
    let mut batch = Batch::default();
    let mut batch_started = Instant::now();
    tokio::pin!(shutdown);
    info!(
        ?topics,
        tables = "window_metrics, calls, alerts",
        "sink running"
    );

    loop {
        let flush_due = !batch.is_empty()
            && (batch.rows() >= config.sink.batch_rows || batch_started.elapsed() >= max_age);
        if flush_due {
            flush(&client, &consumer, &mut batch).await?;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(max_age) => {}
            message = consumer.recv() => {
                let message = match message {
                    Ok(message) => message,
                    Err(err) => { warn!(%err, "consuming"); continue; }
                };
                if batch.is_empty() { batch_started = Instant::now(); }
                let topic = message.topic();
                record_offset(&mut batch.offsets, topic, message.partition(), message.offset() + 1);
                let Some(payload) = message.payload() else { continue };
                let skipped = |what: &str, err: &dyn std::fmt::Display| {
                    warn!(%err, topic, partition = message.partition(), offset = message.offset(), "skipping a record that is not {what}");
                };
                if topic == config.topics.metrics {
                    match callpulse_runtime::avro::decode_window_metrics(payload) {
                        Ok(window) => batch.windows.push(WindowMetricsRow::from(&window)),
                        Err(err) => skipped("window metrics", &err),
                    }
                } else if topic == config.topics.calls {
                    match serde_json::from_slice::<callpulse_core::CallSummary>(payload) {
                        Ok(call) => batch.calls.push(CallRow::from(&call)),
                        Err(err) => skipped("a call summary", &err),
                    }
                } else {
                    match serde_json::from_slice::<serde_json::Value>(payload).ok().as_ref().and_then(AlertRow::from_json) {
                        Some(alert) => batch.alerts.push(alert),
                        None => skipped("an alert", &"no alert id"),
                    }
                }
            }
        }
    }
    if !batch.is_empty() {
        flush(&client, &consumer, &mut batch).await?;
    }
    info!("sink stopped");
    Ok(())
}

/// Inserts every table's rows (retrying until acknowledged), then commits.
async fn flush(
    client: &clickhouse::Client,
    consumer: &impl Consumer,
    batch: &mut Batch,
) -> Result<()> {
    if !batch.windows.is_empty() {
        insert_until_acknowledged(client, "window_metrics", &batch.windows).await;
    }
    if !batch.calls.is_empty() {
        insert_until_acknowledged(client, "calls", &batch.calls).await;
    }
    if !batch.alerts.is_empty() {
        insert_until_acknowledged(client, "alerts", &batch.alerts).await;
    }
    let mut topics: Vec<&str> = batch.offsets.iter().map(|(t, _, _)| t.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    for topic in topics {
        let offsets = batch
            .offsets
            .iter()
            .filter(|(t, _, _)| t == topic)
            .map(|(_, p, o)| (*p, *o));
        kafka::commit_offsets(consumer, topic, offsets, CommitMode::Sync)?;
    }
    *batch = Batch::default();
    Ok(())
}

fn record_offset(offsets: &mut Vec<(String, i32, i64)>, topic: &str, partition: i32, next: i64) {
    match offsets
        .iter_mut()
        .find(|(t, p, _)| t == topic && *p == partition)
    {
        Some(entry) => entry.2 = entry.2.max(next),
        None => offsets.push((topic.to_string(), partition, next)),
    }
}

/// Inserts one batch, retrying with backoff until ClickHouse acknowledges it.
/// The backlog stays in Kafka meanwhile: nothing more is read.
async fn insert_until_acknowledged<T: clickhouse::RowOwned + clickhouse::RowWrite>(
    client: &clickhouse::Client,
    table: &str,
    rows: &[T],
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match insert_rows(client, table, rows).await {
            Ok(()) => return,
            Err(err) => {
                warn!(error = %format!("{err:#}"), table, rows = rows.len(), retry_in_ms = backoff.as_millis() as u64, "ClickHouse insert failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Inserts rows into `table` in one request.
pub async fn insert_rows<T: clickhouse::RowOwned + clickhouse::RowWrite>(
    client: &clickhouse::Client,
    table: &str,
    rows: &[T],
) -> Result<()> {
    let mut insert = client.insert::<T>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert
        .end()
        .await
        .with_context(|| format!("inserting into {table}"))?;
    Ok(())
}

pub async fn insert(client: &clickhouse::Client, rows: &[WindowMetricsRow]) -> Result<()> {
    insert_rows(client, "window_metrics", rows).await
}
