//! The sink: consumes window metrics, inserts them into ClickHouse in
//! batches (by size and age), and commits Kafka offsets only after
//! ClickHouse acknowledged the insert. While ClickHouse is down the backlog
//! stays in Kafka: the sink retries the batch it holds and reads no further.
//!
//! Operations endpoints on `sink.metrics_listen` (docs/operations.md):
//! `/healthz`, `/readyz` (the broker answers, the group gave this instance
//! its partitions, ClickHouse answers and the last insert succeeded) and
//! Prometheus `/metrics`: rows inserted per table, insert latency, failed
//! inserts (each retried), batches, records skipped, and consumer lag.

pub mod access;
pub mod migrate;
pub mod organisations;
pub mod tables;

pub use tables::{AlertRow, CallRow};

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use callpulse_core::WindowMetrics;

use callpulse_runtime::kafka::GroupReadiness;
use callpulse_runtime::metrics::{Registry, LATENCY_BUCKETS};
use callpulse_runtime::ops::{self, Readiness};
use callpulse_runtime::{kafka, Config};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
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
    let metrics = Arc::new(Registry::new());
    let readiness = Readiness::new(&[KAFKA, CONSUMER_GROUP, CLICKHOUSE]);
    ops::serve(
        "sink.metrics_listen",
        &config.sink.metrics_listen,
        metrics.clone(),
        readiness.clone(),
    )
    .await?;
    migrate::apply(&config).await?;
    kafka::ensure_topics(&config.kafka, &config.topics.all()).await?;
    let client = clickhouse_client(&config);
    let consumer: StreamConsumer<GroupReadiness> =
        kafka::consumer_config(&config.kafka, &config.sink.group_id)
            .create_with_context(GroupReadiness::new(readiness.clone(), CONSUMER_GROUP))
            .context("creating Kafka consumer")?;
    let topics = [
        config.topics.metrics.as_str(),
        config.topics.calls.as_str(),
        config.topics.alerts.as_str(),
    ];
    consumer
        .subscribe(&topics)
        .context("subscribing to metrics, calls and alerts")?;
    let _watch = watch_lag(&config, &topics, metrics.clone(), readiness.clone())?;
    let insert_failing = Arc::new(AtomicBool::new(false));
    let _probe = AbortOnDrop(tokio::spawn(probe_clickhouse(
        client.clone(),
        readiness.clone(),
        CLICKHOUSE,
        insert_failing.clone(),
    )));
    let sink = Sink {
        client,
        metrics,
        readiness,
        insert_failing,
    };
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
            sink.flush(&consumer, &mut batch).await?;
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
                sink.metrics.inc("callpulse_sink_records_in_total", "Records consumed, by topic.", &[("topic", topic)]);
                record_offset(&mut batch.offsets, topic, message.partition(), message.offset() + 1);
                let Some(payload) = message.payload() else { continue };
                let skipped = |what: &str, err: &dyn std::fmt::Display| {
                    sink.metrics.inc("callpulse_sink_skipped_total", "Records that could not be read, skipped (logged), by topic.", &[("topic", topic)]);
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
        sink.flush(&consumer, &mut batch).await?;
    }
    info!("sink stopped");
    Ok(())
}

/// Readiness check: the broker answers (offsets of the consumed topics).
const KAFKA: &str = "kafka";
/// Readiness check: the consumer group gave this instance its partitions.
const CONSUMER_GROUP: &str = "consumer_group";
/// Readiness check: ClickHouse answers, and the last insert succeeded.
const CLICKHOUSE: &str = "clickhouse";

/// Every 10 seconds: the group's lag per partition (`callpulse_sink_consumer_lag`)
/// and whether the broker answers (the `kafka` check).
fn watch_lag(
    config: &Config,
    topics: &[&str],
    metrics: Arc<Registry>,
    readiness: Arc<Readiness>,
) -> Result<kafka::OffsetWatch> {
    kafka::watch_offsets(
        &config.kafka,
        Some(&config.sink.group_id),
        topics.iter().map(|t| t.to_string()).collect(),
        Duration::from_secs(10),
        move |offsets| match offsets {
            Ok(offsets) => {
                readiness.pass(KAFKA);
                kafka::set_lag_gauges(&metrics, "callpulse_sink_consumer_lag", &offsets);
            }
            Err(reason) => readiness.fail(KAFKA, reason),
        },
    )
}

/// Aborts a background task when dropped (whichever way `run` returns).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Asks ClickHouse `SELECT 1` every 5 seconds, for the readiness check
/// `check`; while `held` is set (e.g. an insert is failing) an answer does
/// not make it pass. Runs until aborted.
pub async fn probe_clickhouse(
    client: clickhouse::Client,
    readiness: Arc<Readiness>,
    check: &'static str,
    held: Arc<AtomicBool>,
) {
    loop {
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            client.query("SELECT toUInt8(1)").fetch_one::<u8>(),
        )
        .await;
        match answer {
            Ok(Ok(_)) if !held.load(Ordering::Relaxed) => readiness.pass(check),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => readiness.fail(check, format!("ClickHouse: {err}")),
            Err(_) => readiness.fail(check, "ClickHouse did not answer within 5 s"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// What the flushes share.
struct Sink {
    client: clickhouse::Client,
    metrics: Arc<Registry>,
    readiness: Arc<Readiness>,
    /// Set while an insert is being retried.
    insert_failing: Arc<AtomicBool>,
}

impl Sink {
    /// Inserts every table's rows (retrying until acknowledged), then commits.
    async fn flush<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        batch: &mut Batch,
    ) -> Result<()> {
        if !batch.windows.is_empty() {
            self.insert_until_acknowledged("window_metrics", &batch.windows)
                .await;
        }
        if !batch.calls.is_empty() {
            self.insert_until_acknowledged("calls", &batch.calls).await;
        }
        if !batch.alerts.is_empty() {
            self.insert_until_acknowledged("alerts", &batch.alerts)
                .await;
        }
        // The rows are in ClickHouse: a failed commit (the group coordinator
        // moving, the broker briefly away) is not a reason to stop. The next
        // batch's commit covers these offsets too, and rows inserted again
        // after a restart replace themselves (same version).
        if let Err(err) = commit(consumer, batch) {
            self.metrics.inc(
                "callpulse_sink_commit_failures_total",
                "Offset commits that failed after the rows were inserted (the next commit covers them).",
                &[],
            );
            warn!(error = %format!("{err:#}"), "committing offsets failed; the next batch's commit covers them");
        }
        self.metrics.inc(
            "callpulse_sink_batches_total",
            "Batches inserted and committed.",
            &[],
        );
        *batch = Batch::default();
        Ok(())
    }

    /// Inserts one table's rows, retrying with backoff until ClickHouse
    /// acknowledges them. The backlog stays in Kafka meanwhile: nothing
    /// more is read.
    async fn insert_until_acknowledged<T: clickhouse::RowOwned + clickhouse::RowWrite>(
        &self,
        table: &str,
        rows: &[T],
    ) {
        let labels = [("table", table)];
        let mut backoff = Duration::from_millis(200);
        loop {
            let started = Instant::now();
            match insert_rows(&self.client, table, rows).await {
                Ok(()) => {
                    self.metrics.observe(
                        "callpulse_sink_insert_seconds",
                        "Time of one acknowledged ClickHouse insert, by table.",
                        &labels,
                        LATENCY_BUCKETS,
                        started.elapsed().as_secs_f64(),
                    );
                    self.metrics.add(
                        "callpulse_sink_rows_inserted_total",
                        "Rows ClickHouse acknowledged, by table.",
                        &labels,
                        rows.len() as u64,
                    );
                    self.insert_failing.store(false, Ordering::Relaxed);
                    self.readiness.pass(CLICKHOUSE);
                    return;
                }
                Err(err) => {
                    let error = format!("{err:#}");
                    self.metrics.inc(
                        "callpulse_sink_insert_failures_total",
                        "ClickHouse inserts that failed (each is retried), by table.",
                        &labels,
                    );
                    self.insert_failing.store(true, Ordering::Relaxed);
                    self.readiness.fail(
                        CLICKHOUSE,
                        format!("inserting into {table} failed: {error}"),
                    );
                    warn!(%error, table, rows = rows.len(), retry_in_ms = backoff.as_millis() as u64, "ClickHouse insert failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Commits the offsets a batch covers.
fn commit<C: ConsumerContext>(consumer: &impl Consumer<C>, batch: &Batch) -> Result<()> {
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
