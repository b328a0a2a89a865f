//! The streaming processor: consumes canonical events in a consumer group,
//! keeps one engine per assigned partition (keys are practices, so a
//! practice's state lives with its partition), and publishes window
//! metrics, call summaries, alerts (111 diversions, thresholds over the
//! 1-minute windows, feed silence) and late events.
//!
//! - **Emission**: open windows are re-emitted when changed, at most once
//!   per `emit_interval_ms`; final windows as soon as they close.
//! - **Recovery**: every `checkpoint_interval_ms`, once the outputs of
//!   everything consumed were acknowledged, each partition's restart point
//!   (the first offset of the oldest call still held, and the watermark
//!   before it; see `Engine::restart_point`) is written to the checkpoint
//!   topic and its offset committed. A restarted processor, or the new
//!   owner of a partition after a rebalance, resumes there and rebuilds
//!   the same state, so it emits the same records with the same revisions;
//!   ClickHouse keeps one row per window version.
//! - **Watermarks** are per partition; a partition idle for
//!   `idle_timeout_ms` follows the most advanced partition of this instance.
//! - **Operations**: `/healthz`, `/readyz` (the broker answers and the
//!   group gave this instance its partitions) and Prometheus `/metrics` on
//!   `metrics_listen` (docs/operations.md), and a log line every 10 seconds.
//!
//! Call events and window metrics are Avro (docs/schemas.md); call
//! summaries and late events are JSON.

mod checkpoint;
mod observe;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use callpulse_core::alert_stream::StreamingAlerts;
use callpulse_core::{
    AlertRules, Emitted, Engine, EngineConfig, FeedSilence, Ingested, Lateness, PracticeIcbs,
    RestartPoint, ThresholdTracker, Timestamp, WindowSize,
};
use callpulse_runtime::kafka::GroupReadiness;
use callpulse_runtime::metrics::Registry;
use callpulse_runtime::ops::{self, Readiness};
use callpulse_runtime::{avro, kafka, Config};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientContext;
use tracing::{error, info, warn};

pub use checkpoint::Checkpoint;

/// How long a partition's first event waits for the checkpoint topic while
/// the broker is away, before the processor gives up and exits: as long as
/// the producers wait out an outage (`kafka::producer`'s message timeout).
const CHECKPOINT_READ_PATIENCE: Duration = Duration::from_secs(300);

/// Records allowed in flight before consuming waits for their
/// acknowledgements: well under the producer's queue (librdkafka's
/// `queue.buffering.max.messages`, 100,000), which a burst of late events
/// or dead letters could otherwise fill.
const MAX_IN_FLIGHT: usize = 20_000;

/// State of one assigned partition.
struct PartitionState {
    engine: Engine,
    /// 111-diversion alerts of the partition's practices.
    alerts: StreamingAlerts,
    /// Threshold alerts over the partition's 1-minute windows.
    thresholds: ThresholdTracker,
    /// Feed-silence alerts of the partition's practices.
    feed: FeedSilence,
    /// The offset after the last message processed.
    next_offset: i64,
    last_event: Instant,
    /// The restart point last written, to write only on change.
    written: Option<Checkpoint>,
}

/// Hears rebalances: partitions taken away are dropped before anything
/// else is processed, so a partition is never worked on by two owners'
/// states at once.
struct RebalanceListener {
    revoked: Arc<Mutex<Vec<i32>>>,
    /// The `consumer_group` readiness check.
    group: GroupReadiness,
}

impl ClientContext for RebalanceListener {}

impl ConsumerContext for RebalanceListener {
    fn pre_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                info!(?partitions, "partitions revoked");
                self.revoked
                    .lock()
                    .expect("revoked lock")
                    .extend(partitions);
            }
            Rebalance::Assign(list) => {
                let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                info!(?partitions, "partitions assigned");
            }
            Rebalance::Error(err) => warn!(%err, "rebalance error"),
        }
    }

    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        self.group.rebalanced(rebalance);
    }
}

struct Processor {
    config: Config,
    engine_config: EngineConfig,
    /// Threshold and feed-silence rules, and each practice's ICB for them.
    alert_rules: Arc<AlertRules>,
    practice_icbs: Arc<PracticeIcbs>,
    consumer: StreamConsumer<RebalanceListener>,
    revoked: Arc<Mutex<Vec<i32>>>,
    producer: FutureProducer,
    checkpoints: checkpoint::CheckpointStore,
    partitions: BTreeMap<i32, PartitionState>,
    metrics: Arc<Registry>,
    /// Each partition's end offset, refreshed off the hot path for the lag gauge.
    partition_ends: Arc<Mutex<HashMap<i32, i64>>>,
    /// Keeps `partition_ends` fresh while held.
    _watch: kafka::OffsetWatch,
    /// Events consumed per partition since the last [`Processor::emit`],
    /// added to the registry there: once a second rather than per event
    /// (a registry update formats its labels and takes a lock).
    consumed: BTreeMap<i32, u64>,
    /// The time, read once per emission tick rather than per event: it only
    /// dates a partition's last event for the idle rule, whose timeout is
    /// tens of seconds.
    clock: Instant,
    /// Records published and not yet known to be acknowledged. Consuming
    /// goes on while the broker acknowledges them; they are awaited at the
    /// next emission (so at most about one emission's records are in
    /// flight) and before every checkpoint (so a restart point never
    /// covers an unacknowledged output).
    in_flight: Vec<DeliveryFuture>,
}

pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let metrics = Arc::new(Registry::new());
    let readiness = Readiness::new(&[observe::KAFKA, observe::CONSUMER_GROUP]);
    ops::serve(
        "processor.metrics_listen",
        &config.processor.metrics_listen,
        metrics.clone(),
        readiness.clone(),
    )
    .await?;
    kafka::ensure_topics(&config.kafka, &config.topics.all()).await?;
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let consumer: StreamConsumer<RebalanceListener> =
        kafka::consumer_config(&config.kafka, &config.processor.group_id)
            .create_with_context(RebalanceListener {
                revoked: revoked.clone(),
                group: GroupReadiness::new(readiness.clone(), observe::CONSUMER_GROUP),
            })
            .context("creating Kafka consumer")?;
    consumer
        .subscribe(&[&config.topics.call_events])
        .context("subscribing to call events")?;
    let (partition_ends, watch) = observe::watch_partition_ends(&config, readiness)?;
    let (alert_rules, practice_icbs) = load_alert_rules(&config)?;
    let mut processor = Processor {
        alert_rules: Arc::new(alert_rules),
        practice_icbs: Arc::new(practice_icbs),
        partition_ends,
        _watch: watch,
        engine_config: EngineConfig {
            lateness: Lateness::Bounded {
                allowed_ms: config.processor.allowed_lateness_ms,
            },
            ..EngineConfig::default()
        },
        producer: kafka::producer(&config.kafka)?,
        checkpoints: checkpoint::CheckpointStore::open(&config).await?,
        consumer,
        revoked,
        partitions: BTreeMap::new(),
        metrics,
        consumed: BTreeMap::new(),
        clock: Instant::now(),
        in_flight: Vec::new(),
        config,
    };
    processor.run(shutdown).await
}

impl Processor {
    async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut emit = tokio::time::interval(Duration::from_millis(
            self.config.processor.emit_interval_ms,
        ));
        let mut checkpoint = tokio::time::interval(Duration::from_millis(
            self.config.processor.checkpoint_interval_ms,
        ));
        let mut report = tokio::time::interval(Duration::from_secs(10));
        tokio::pin!(shutdown);
        info!(topic = %self.config.topics.call_events, group = %self.config.processor.group_id, "processor running");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = emit.tick() => {
                    self.clock = Instant::now();
                    self.drop_revoked();
                    self.follow_idle_partitions();
                    self.emit().await?;
                }
                _ = checkpoint.tick() => {
                    self.drop_revoked();
                    self.emit().await?;
                    self.checkpoint(CommitMode::Async).await?;
                }
                _ = report.tick() => self.report(),
                message = self.consumer.recv() => {
                    let received = message
                        .map(|m| (m.partition(), m.offset(), m.payload().map(<[u8]>::to_vec)));
                    self.drop_revoked();
                    match received {
                        Ok((partition, offset, payload)) => {
                            self.handle(partition, offset, payload.as_deref()).await?;
                        }
                        Err(err) => warn!(%err, "consuming call events"),
                    }
                }
            }
        }
        // Graceful: publish what is pending, record where to resume, and
        // leave the group (dropping the consumer closes it) so the
        // partitions move on at once.
        self.drop_revoked();
        self.emit().await?;
        self.checkpoint(CommitMode::Sync).await?;
        use rdkafka::producer::Producer;
        self.producer.flush(Duration::from_secs(10))?;
        info!("processor stopped");
        Ok(())
    }

    /// Forgets partitions that moved to another member: their new owner rebuilds them.
    fn drop_revoked(&mut self) {
        let revoked: Vec<i32> = std::mem::take(&mut *self.revoked.lock().expect("revoked lock"));
        for partition in revoked {
            if self.partitions.remove(&partition).is_some() {
                info!(partition, "dropped the state of a revoked partition");
            }
        }
    }

    async fn handle(&mut self, partition: i32, offset: i64, payload: Option<&[u8]>) -> Result<()> {
        if !self.partitions.contains_key(&partition) {
            let engine = self.engine_for(partition, offset).await?;
            let alerts = StreamingAlerts::new(
                self.engine_config.core_hours.clone(),
                self.config.processor.allowed_lateness_ms,
            );
            let core_hours = self.engine_config.core_hours.clone();
            let thresholds = ThresholdTracker::new(
                self.alert_rules.clone(),
                self.practice_icbs.clone(),
                core_hours.clone(),
            );
            let feed = FeedSilence::new(
                self.alert_rules.clone(),
                self.practice_icbs.clone(),
                core_hours,
            );
            self.partitions.insert(
                partition,
                PartitionState {
                    engine,
                    alerts,
                    thresholds,
                    feed,
                    next_offset: offset,
                    last_event: self.clock,
                    written: None,
                },
            );
        }
        let state = self.partitions.get_mut(&partition).expect("just inserted");
        if offset < state.next_offset {
            return Ok(()); // already processed (a fetch repeated after a seek)
        }
        state.next_offset = offset + 1;
        state.last_event = self.clock;
        *self.consumed.entry(partition).or_default() += 1;
        let Some(payload) = payload else {
            return Ok(());
        };
        // Rare outcomes (dead letters, duplicates, late events) are counted at once.
        let count = |metrics: &Registry, name: &'static str, help: &'static str| {
            metrics.inc(name, help, &[("partition", partition.to_string().as_str())]);
        };
        let event = match avro::decode_call_event(payload) {
            Ok(event) => event,
            Err(err) => {
                let reason = err.to_string();
                warn!(partition, offset, %reason, "invalid event sent to the dead-letter topic");
                let body =
                    serde_json::json!({"reason": reason, "partition": partition, "offset": offset,
                    "raw_hex": payload.iter().map(|b| format!("{b:02x}")).collect::<String>()})
                    .to_string();
                count(
                    &self.metrics,
                    "callpulse_processor_dead_letters_total",
                    "Undecodable events dead-lettered.",
                );
                let topic = self.config.topics.dead_letters.clone();
                self.in_flight
                    .push(send(&self.producer, &topic, "", body.as_bytes())?);
                return self.acknowledged_if_many().await;
            }
        };
        // Any event, late or repeated, shows the practice's feed works.
        state.feed.observe(&event);
        let ingested = state.engine.ingest_at(&event, offset as u64);
        if !matches!(ingested, Ingested::Late(_)) {
            // Alerts see what the windows see: late events change neither.
            state.alerts.observe(&event);
        }
        match ingested {
            Ingested::Folded => {}
            Ingested::Duplicate => count(
                &self.metrics,
                "callpulse_processor_duplicates_total",
                "Duplicate events (counted in dq_duplicates).",
            ),
            Ingested::Late(late) => {
                count(
                    &self.metrics,
                    "callpulse_processor_late_total",
                    "Events for final windows, sent to the late-events topic.",
                );
                let body = serde_json::to_string(&*late)?;
                let topic = self.config.topics.late_events.clone();
                self.in_flight.push(send(
                    &self.producer,
                    &topic,
                    &event.practice,
                    body.as_bytes(),
                )?);
                return self.acknowledged_if_many().await;
            }
        }
        Ok(())
    }

    /// A fresh engine for a partition first seen at `offset`: resumed with
    /// the watermark of the checkpoint written for that offset, if any.
    async fn engine_for(&mut self, partition: i32, offset: i64) -> Result<Engine> {
        if let Some(missed) = checkpoint::resume_gap(self.checkpoints.latest(partition), offset) {
            // The state of open calls and windows then lacks these events.
            error!(
                partition,
                offset,
                missed,
                "the first event after a restart lies beyond the last checkpoint: events in between were never delivered (deleted by retention, or skipped by the broker)"
            );
            let p = partition.to_string();
            self.metrics.add(
                "callpulse_processor_resume_gap_events_total",
                "Offsets between a partition's last checkpoint and the first event delivered after it: events never processed.",
                &[("partition", p.as_str())],
                missed,
            );
        }
        // The checkpoint topic is on the broker: if it is away (a partition
        // can be handed over during an outage), wait for it rather than
        // exit, as the producers do.
        let started = Instant::now();
        let checkpointed = loop {
            match self.checkpoints.watermark_at(partition, offset) {
                Ok(watermark) => break watermark,
                Err(err) if started.elapsed() < CHECKPOINT_READ_PATIENCE => {
                    warn!(partition, offset, error = %format!("{err:#}"), "reading the checkpoint topic failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(err) => return Err(err),
            }
        };
        match checkpointed {
            Some(watermark) => {
                info!(partition, offset, watermark = ?watermark.map(|w| w.to_rfc3339_millis()), "resuming from checkpoint");
                Ok(Engine::resume(
                    self.engine_config.clone(),
                    RestartPoint {
                        position: offset as u64,
                        watermark,
                    },
                ))
            }
            None => {
                if offset > 0 {
                    warn!(
                        partition,
                        offset,
                        "no checkpoint for this offset: the watermark is rebuilt from the events"
                    );
                }
                Ok(Engine::new(self.engine_config.clone()))
            }
        }
    }

    /// A partition that has been idle follows the busiest partition's
    /// watermark, so its own windows close instead of waiting for traffic.
    ///
    /// Idle means caught up, not merely quiet: a partition with a backlog
    /// that the broker has not served for a while (it serves partitions
    /// unevenly when the processor is behind) must not jump ahead, or its
    /// backlog would all be late. Its end offset must be known and reached.
    fn follow_idle_partitions(&mut self) {
        let idle_after = Duration::from_millis(self.config.processor.idle_timeout_ms);
        let Some(leader) = self
            .partitions
            .values()
            .filter_map(|s| s.engine.watermark())
            .max()
        else {
            return;
        };
        let ends = self.partition_ends.lock().expect("ends lock").clone();
        for (partition, state) in self.partitions.iter_mut() {
            let idle = is_idle(
                state.next_offset,
                ends.get(partition).copied(),
                state.last_event.elapsed(),
                idle_after,
            );
            if idle && state.engine.watermark().is_some_and(|wm| wm < leader) {
                state.engine.advance_watermark(leader);
            }
        }
    }

    /// Publishes what changed in every partition, once the records of the
    /// previous emission were acknowledged.
    async fn emit(&mut self) -> Result<()> {
        self.acknowledged().await?;
        for (partition, events) in std::mem::take(&mut self.consumed) {
            let p = partition.to_string();
            self.metrics.add(
                "callpulse_processor_events_in_total",
                "Call events consumed.",
                &[("partition", p.as_str())],
                events,
            );
        }
        let deliveries = &mut self.in_flight;
        let mut windows_out = 0u64;
        let mut calls_out = 0u64;
        let mut alerts_out = 0u64;
        for state in self.partitions.values_mut() {
            let Emitted { windows, calls } = state.engine.drain(true);
            for window in &windows {
                let payload = avro::encode_window_metrics(window)?;
                deliveries.push(send(
                    &self.producer,
                    &self.config.topics.metrics,
                    &window.practice,
                    &payload,
                )?);
            }
            for call in &calls {
                let payload = serde_json::to_vec(call)?;
                deliveries.push(send(
                    &self.producer,
                    &self.config.topics.calls,
                    &call.practice,
                    &payload,
                )?);
            }
            windows_out += windows.len() as u64;
            calls_out += calls.len() as u64;
            for window in windows.iter().filter(|w| w.window == WindowSize::Minute) {
                state.thresholds.observe_window(window);
            }
            if let Some(watermark) = state.engine.watermark() {
                state.alerts.advance_to(watermark);
                state.thresholds.advance_to(watermark);
                state.feed.advance_to(watermark);
            }
            let alerts = state
                .alerts
                .drain()
                .into_iter()
                .chain(state.thresholds.drain())
                .chain(state.feed.drain());
            for alert in alerts {
                let payload = serde_json::to_vec(&alert)?;
                deliveries.push(send(
                    &self.producer,
                    &self.config.topics.alerts,
                    &alert.practice,
                    &payload,
                )?);
                alerts_out += 1;
            }
        }
        let help = "Records published, by topic.";
        self.metrics.add(
            "callpulse_processor_records_out_total",
            help,
            &[("topic", "metrics")],
            windows_out,
        );
        self.metrics.add(
            "callpulse_processor_records_out_total",
            help,
            &[("topic", "calls")],
            calls_out,
        );
        self.metrics.add(
            "callpulse_processor_records_out_total",
            help,
            &[("topic", "alerts")],
            alerts_out,
        );
        Ok(())
    }

    /// Waits until every record published so far is acknowledged: an
    /// error here (the broker refused or timed out a record) stops the
    /// processor before a checkpoint could skip the lost output.
    async fn acknowledged(&mut self) -> Result<()> {
        await_all(std::mem::take(&mut self.in_flight)).await
    }

    async fn acknowledged_if_many(&mut self) -> Result<()> {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.acknowledged().await?;
        }
        Ok(())
    }

    /// Writes each partition's restart point (on change) and commits it,
    /// once everything published so far is acknowledged (the caller has
    /// emitted everything consumed).
    async fn checkpoint(&mut self, mode: CommitMode) -> Result<()> {
        self.acknowledged().await?;
        let mut changed = Vec::new();
        for (&partition, state) in &self.partitions {
            let point = state.engine.restart_point().unwrap_or(RestartPoint {
                position: state.next_offset as u64,
                watermark: state.engine.watermark(),
            });
            let cp = Checkpoint {
                partition,
                offset: point.position as i64,
                watermark_ms: point.watermark.map(Timestamp::millis),
            };
            if state.written != Some(cp) {
                changed.push(cp);
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        self.checkpoints.write(&self.producer, &changed).await?;
        kafka::commit_offsets(
            &self.consumer,
            &self.config.topics.call_events,
            changed.iter().map(|cp| (cp.partition, cp.offset)),
            mode,
        )?;
        for cp in changed {
            if let Some(state) = self.partitions.get_mut(&cp.partition) {
                state.written = Some(cp);
            }
        }
        Ok(())
    }

    fn report(&self) {
        let mut open_calls = 0;
        let mut open_windows = 0;
        for (partition, state) in &self.partitions {
            let stats = state.engine.stats();
            let p = partition.to_string();
            let labels = [("partition", p.as_str())];
            self.metrics.set(
                "callpulse_processor_open_calls",
                "Calls held in memory.",
                &labels,
                stats.open_calls as f64,
            );
            self.metrics.set(
                "callpulse_processor_open_windows",
                "Windows held in memory.",
                &labels,
                stats.open_windows as f64,
            );
            if let Some(wm) = state.engine.watermark() {
                self.metrics.set(
                    "callpulse_processor_watermark_ms",
                    "Event-time watermark, epoch ms.",
                    &labels,
                    wm.millis() as f64,
                );
            }
            let end = self
                .partition_ends
                .lock()
                .expect("ends lock")
                .get(partition)
                .copied();
            if let Some(high) = end {
                let lag = (high - state.next_offset).max(0);
                self.metrics.set(
                    "callpulse_processor_consumer_lag",
                    "Messages behind the partition's end.",
                    &labels,
                    lag as f64,
                );
            }
            open_calls += stats.open_calls;
            open_windows += stats.open_windows;
        }
        info!(
            partitions = self.partitions.len(),
            open_calls,
            open_windows,
            events_in = self.metrics.total("callpulse_processor_events_in_total"),
            late = self.metrics.total("callpulse_processor_late_total"),
            duplicates = self.metrics.total("callpulse_processor_duplicates_total"),
            "processor state"
        );
    }
}

/// The threshold and feed-silence rules (`alerts.thresholds`, else the
/// defaults) and the practices' ICBs (`alerts.organisations`, else none).
fn load_alert_rules(config: &Config) -> Result<(AlertRules, PracticeIcbs)> {
    let settings = &config.alerts;
    let rules = if settings.thresholds.is_empty() {
        AlertRules::default()
    } else {
        let text = std::fs::read_to_string(&settings.thresholds)
            .with_context(|| format!("reading alert rules {}", settings.thresholds))?;
        AlertRules::from_toml(&text).with_context(|| format!("in {}", settings.thresholds))?
    };
    let icbs = if settings.organisations.is_empty() {
        PracticeIcbs::default()
    } else {
        let text = std::fs::read_to_string(&settings.organisations)
            .with_context(|| format!("reading organisations {}", settings.organisations))?;
        PracticeIcbs::from_csv(&text).with_context(|| format!("in {}", settings.organisations))?
    };
    if !rules.icb.is_empty() && icbs.is_empty() {
        warn!(
            icbs = rules.icb.len(),
            "the alert rules have per-ICB overrides but alerts.organisations is not set: the defaults apply to every practice"
        );
    }
    info!(
        rolling_minutes = rules.rolling_minutes,
        icb_overrides = rules.icb.len(),
        practices_with_icb = icbs.len(),
        "threshold and feed-silence alert rules loaded"
    );
    Ok((rules, icbs))
}

/// Whether a partition is idle, so that it may follow the others'
/// watermark: quiet for `idle_after`, and caught up with its end offset
/// (`end`, unknown until the offset watch has read it). A quiet partition
/// with a backlog is starved, not idle.
fn is_idle(next_offset: i64, end: Option<i64>, quiet_for: Duration, idle_after: Duration) -> bool {
    quiet_for >= idle_after && end.is_some_and(|end| next_offset >= end)
}

fn send(producer: &FutureProducer, topic: &str, key: &str, body: &[u8]) -> Result<DeliveryFuture> {
    producer
        .send_result(FutureRecord::to(topic).key(key).payload(body))
        .map_err(|(err, _)| err)
        .with_context(|| format!("publishing to {topic}"))
}

async fn await_all(deliveries: Vec<DeliveryFuture>) -> Result<()> {
    for delivery in deliveries {
        delivery
            .await
            .map_err(|_| anyhow::anyhow!("the producer shut down"))?
            .map_err(|(err, _)| err)
            .context("publishing")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_idle_only_when_quiet_and_caught_up() {
        let (quiet, idle_after) = (Duration::from_secs(31), Duration::from_secs(30));
        assert!(is_idle(500, Some(500), quiet, idle_after));
        // Quiet with a backlog (the broker serving other partitions first):
        // following the leader would make the whole backlog late.
        assert!(!is_idle(120, Some(500), quiet, idle_after));
        // End not known yet: not idle.
        assert!(!is_idle(500, None, quiet, idle_after));
        // Caught up but not quiet long enough.
        assert!(!is_idle(500, Some(500), Duration::from_secs(5), idle_after));
    }
}
