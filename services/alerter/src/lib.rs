//! `callpulse alerter`: alert records from Kafka (`topics.alerts`, JSON of
//! `callpulse_core::alert::Alert`) to the people who must act on them, over
//! Microsoft Teams, Slack-compatible webhooks, a generic signed JSON
//! webhook, and email (docs/alerts.md).
//!
//! Pure parts, unit tested: [`contacts`] (the contacts file), [`routing`]
//! (alert kind -> audiences -> recipients, via the practice's PCN and ICB),
//! [`render`] (messages and idempotency keys), [`dispatch`] (grouping, rate
//! limit, one message in flight per recipient), [`policy`] (backoff,
//! classification of results, token bucket), [`offsets`] (what may be
//! committed), [`signature`]. I/O: [`deliver`] and [`email`] (the
//! channels), [`audit`] (ClickHouse `alert_deliveries`, the undeliverable
//! topic), and [`run`], the loop that ties them together.
//!
//! Delivery is at least once: a Kafka offset is committed only after every
//! delivery of the alerts up to it is settled (delivered, or failed after
//! all retries and then published to the undeliverable topic) and its
//! attempts are recorded in ClickHouse. A restart re-sends what was not
//! settled, with the same idempotency key.
//!
//! Operations endpoints on `alerter.metrics_listen` (docs/operations.md):
//! `/healthz`, `/readyz` (the broker answers, the group gave this instance
//! its partitions, ClickHouse answers) and Prometheus `/metrics`:
//! deliveries by channel and result, attempts, retries, undeliverable
//! alerts by reason, alerts in flight and consumer lag.

pub mod audit;
pub mod contacts;
pub mod deliver;
pub mod dispatch;
pub mod email;
pub mod offsets;
pub mod policy;
pub mod render;
pub mod routing;
pub mod signature;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use callpulse_core::alert::Alert;
use callpulse_runtime::kafka::GroupReadiness;
use callpulse_runtime::metrics::{Registry, LATENCY_BUCKETS};
use callpulse_runtime::ops::{self, Readiness};
use callpulse_runtime::{kafka, Config};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::audit::{Record, Undeliverable};
use crate::contacts::Contacts;
use crate::deliver::{Attempt, Sender};
use crate::dispatch::{Batch, DispatchPolicy, Dispatcher, Item};
use crate::offsets::{OffsetTracker, Source};
use crate::policy::{RetryPolicy, Verdict};
use crate::render::Entry;
use crate::routing::Directory;

/// Reads and checks the contacts file.
pub fn load_contacts(path: &Path) -> Result<Contacts> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Contacts::parse(&text).with_context(|| path.display().to_string())
}

/// Reads an organisations CSV into a practice -> PCN, ICB directory.
/// A file with bad rows is refused, as `callpulse orgs load` does.
pub fn load_directory(path: &Path) -> Result<Directory> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let parsed = callpulse_sink::organisations::parse(std::io::BufReader::new(file))
        .with_context(|| format!("reading {}", path.display()))?;
    if let Some(first) = parsed.errors.first() {
        bail!(
            "{}: {} bad rows, the first: {first}",
            path.display(),
            parsed.errors.len()
        );
    }
    Ok(Directory::from_practices(&parsed.practices))
}

/// What every delivery task shares.
struct Shared {
    contacts: Contacts,
    sender: Sender,
    retry: RetryPolicy,
    producer: FutureProducer,
    undeliverable_topic: String,
    metrics: Arc<Registry>,
}

/// Readiness check: the broker answers (offsets of the alerts topic).
const KAFKA: &str = "kafka";
/// Readiness check: the consumer group gave this instance its partitions.
const CONSUMER_GROUP: &str = "consumer_group";
/// Readiness check: ClickHouse (the deliveries audit) answers.
const CLICKHOUSE: &str = "clickhouse";

const UNDELIVERABLE: &str = "callpulse_alerter_undeliverable_total";
const UNDELIVERABLE_HELP: &str =
    "Alerts published to the undeliverable topic, by reason (delivery_failed, no_recipient, not_an_alert).";

/// Runs until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let settings = &config.alerter;
    if settings.contacts.is_empty() {
        bail!("no contacts file: set alerter.contacts (CALLPULSE__ALERTER__CONTACTS) or pass --contacts FILE; see docs/alerts.md");
    }
    let contacts = load_contacts(Path::new(&settings.contacts))?;
    let directory = if settings.organisations.is_empty() {
        Directory::default()
    } else {
        load_directory(Path::new(&settings.organisations))?
    };
    let sender = Sender::new(settings, &contacts)?;
    let metrics = Arc::new(Registry::new());
    let readiness = Readiness::new(&[KAFKA, CONSUMER_GROUP, CLICKHOUSE]);
    ops::serve(
        "alerter.metrics_listen",
        &settings.metrics_listen,
        metrics.clone(),
        readiness.clone(),
    )
    .await?;
    callpulse_sink::migrate::apply(&config).await?;
    kafka::ensure_topics(
        &config.kafka,
        &[&config.topics.alerts, &settings.undeliverable_topic],
    )
    .await?;
    // Alerts are few and urgent: do not let the broker hold a fetch for
    // librdkafka's default 500 ms.
    let consumer: StreamConsumer<GroupReadiness> =
        kafka::consumer_config(&config.kafka, &settings.group_id)
            .set("fetch.wait.max.ms", "50")
            .create_with_context(GroupReadiness::new(readiness.clone(), CONSUMER_GROUP))
            .context("creating the alerts consumer")?;
    consumer
        .subscribe(&[&config.topics.alerts])
        .context("subscribing to alerts")?;
    let _watch = {
        let (metrics, readiness) = (metrics.clone(), readiness.clone());
        kafka::watch_offsets(
            &config.kafka,
            Some(&settings.group_id),
            vec![config.topics.alerts.clone()],
            Duration::from_secs(10),
            move |offsets| match offsets {
                Ok(offsets) => {
                    readiness.pass(KAFKA);
                    kafka::set_lag_gauges(&metrics, "callpulse_alerter_consumer_lag", &offsets);
                }
                Err(reason) => readiness.fail(KAFKA, reason),
            },
        )?
    };
    let _probe = callpulse_sink::AbortOnDrop(tokio::spawn(callpulse_sink::probe_clickhouse(
        callpulse_sink::clickhouse_client(&config),
        readiness.clone(),
        CLICKHOUSE,
        Arc::new(AtomicBool::new(false)),
    )));
    let shared = Arc::new(Shared {
        contacts,
        sender,
        retry: RetryPolicy {
            max_attempts: settings.max_attempts.max(1),
            initial_ms: settings.backoff_initial_ms,
            max_ms: settings.backoff_max_ms,
        },
        producer: kafka::producer(&config.kafka)?,
        undeliverable_topic: settings.undeliverable_topic.clone(),
        metrics,
    });
    let (records, records_rx) = mpsc::unbounded_channel::<Record>();
    let (settled_tx, mut settled) = mpsc::unbounded_channel();
    // A recipient's message is finished (the next may go) as soon as it is
    // delivered or given up, before its attempts are recorded.
    let (finished_tx, mut finished) = mpsc::unbounded_channel::<String>();
    tokio::spawn(audit::recorder(
        callpulse_sink::clickhouse_client(&config),
        records_rx,
        settled_tx,
        Duration::from_millis(200),
    ));
    let mut dispatcher = Dispatcher::new(DispatchPolicy {
        group_window_ms: settings.group_window_ms as i64,
        rate_burst: settings.rate_limit_burst,
        rate_per_minute: settings.rate_limit_per_minute,
    });
    let mut tracker = OffsetTracker::default();
    let topic = config.topics.alerts.clone();
    let max_in_flight = settings.max_in_flight.max(1);
    // Messages being sent (and unroutable alerts being published).
    let mut tasks = 0usize;
    let started = Instant::now();
    let now = || started.elapsed().as_millis() as i64;
    tokio::pin!(shutdown);
    info!(
        topic = %topic,
        recipients = shared.contacts.recipients.len(),
        practices = directory.len(),
        "alerter running"
    );

    loop {
        for batch in dispatcher.due(now()) {
            tasks += 1;
            tokio::spawn(deliver_batch(
                shared.clone(),
                batch,
                records.clone(),
                finished_tx.clone(),
            ));
        }
        commit(&consumer, &topic, &mut tracker);
        shared.metrics.set(
            "callpulse_alerter_in_flight",
            "Alert records read and not yet settled (delivered, or recorded as failed).",
            &[],
            tracker.in_flight() as f64,
        );
        let wake_in = dispatcher
            .next_due(now())
            .map_or(1000, |at| (at - now()).clamp(1, 1000)) as u64;
        tokio::select! {
            _ = &mut shutdown => break,
            Some(recipient) = finished.recv() => dispatcher.finished(&recipient),
            Some(done) = settled.recv() => {
                tasks -= 1;
                for source in done.sources {
                    tracker.settle(source);
                }
            }
            message = consumer.recv(), if tracker.in_flight() < max_in_flight => {
                let message = match message {
                    Ok(message) => message,
                    Err(err) => { warn!(%err, "consuming alerts"); continue; }
                };
                let source = (message.partition(), message.offset());
                shared.metrics.inc("callpulse_alerter_alerts_in_total", "Alert records consumed.", &[]);
                let payload = message.payload().unwrap_or_default();
                match serde_json::from_slice::<Alert>(payload) {
                    Ok(alert) => {
                        let routed = routing::route(&alert, &directory, &shared.contacts);
                        if routed.recipients.is_empty() {
                            tracker.read(source, 1);
                            tasks += 1;
                            tokio::spawn(unroutable(shared.clone(), routed, source, records.clone()));
                            continue;
                        }
                        tracker.read(source, routed.recipients.len());
                        for id in &routed.recipients {
                            let groups = shared.contacts.recipients[id].channel.groups();
                            let fallback = routed
                                .fallback
                                .clone()
                                .filter(|_| shared.contacts.operators.contains(id));
                            let entry = Entry { alert: routed.alert.clone(), fallback };
                            dispatcher.push(id, groups, Item { entry, sources: vec![source] }, now());
                        }
                    }
                    Err(err) => {
                        warn!(%err, partition = source.0, offset = source.1, "not an alert record; published to the undeliverable topic");
                        tracker.read(source, 1);
                        tasks += 1;
                        let raw = String::from_utf8_lossy(payload).into_owned();
                        tokio::spawn(not_an_alert(shared.clone(), raw, err.to_string(), source, records.clone()));
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(wake_in)) => {}
        }
    }

    // Let deliveries under way finish briefly; what is not settled stays
    // uncommitted and is sent again after a restart.
    let grace = tokio::time::Instant::now() + Duration::from_secs(5);
    while tasks > 0 {
        match tokio::time::timeout_at(grace, settled.recv()).await {
            Ok(Some(done)) => {
                tasks -= 1;
                for source in done.sources {
                    tracker.settle(source);
                }
            }
            _ => break,
        }
    }
    let offsets = tracker.committable();
    if !offsets.is_empty() {
        if let Err(err) = kafka::commit_offsets(&consumer, &topic, offsets, CommitMode::Sync) {
            warn!(error = %format!("{err:#}"), "committing alert offsets at shutdown");
        }
    }
    info!(
        unsettled = tracker.in_flight(),
        waiting = dispatcher.waiting(),
        "alerter stopped"
    );
    Ok(())
}

fn commit<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
    tracker: &mut OffsetTracker,
) {
    let offsets = tracker.committable();
    if offsets.is_empty() {
        return;
    }
    if let Err(err) = kafka::commit_offsets(consumer, topic, offsets, CommitMode::Async) {
        // After a rebalance the partition may be someone else's: they will
        // deliver again from their committed position (at least once).
        warn!(error = %format!("{err:#}"), "committing alert offsets");
    }
}

/// Sends one message with retries, records every attempt, and on final
/// failure publishes its alerts to the undeliverable topic.
async fn deliver_batch(
    shared: Arc<Shared>,
    batch: Batch,
    records: mpsc::UnboundedSender<Record>,
    finished: mpsc::UnboundedSender<String>,
) {
    let recipient = &shared.contacts.recipients[&batch.recipient];
    let entries = batch.entries();
    let message = render::render(recipient.channel, &recipient.id, &entries);
    let channel = recipient.channel.as_str();
    let last = deliver::deliver(
        &shared.sender,
        recipient,
        &message,
        shared.retry,
        |attempt, last| {
            let metrics = &shared.metrics;
            let verdict = match attempt.verdict {
                Verdict::Delivered => "delivered",
                Verdict::Retry => "retry",
                Verdict::Permanent => "permanent",
            };
            metrics.inc(
                "callpulse_alerter_attempts_total",
                "Delivery attempts, by channel and verdict (delivered, retry, permanent).",
                &[("channel", channel), ("verdict", verdict)],
            );
            metrics.observe(
                "callpulse_alerter_attempt_seconds",
                "Time of one delivery attempt, by channel.",
                &[("channel", channel)],
                LATENCY_BUCKETS,
                f64::from(attempt.duration_ms) / 1000.0,
            );
            if !last {
                metrics.inc(
                    "callpulse_alerter_retries_total",
                    "Attempts followed by another (after a backoff), by channel.",
                    &[("channel", channel)],
                );
            }
            let rows = entries
                .iter()
                .map(|e| {
                    audit::row(
                        &e.alert,
                        &recipient.id,
                        channel,
                        &message.key,
                        entries.len(),
                        attempt,
                        last,
                    )
                })
                .collect();
            let _ = records.send(Record::Rows(rows));
        },
    )
    .await;
    let result = if last.verdict == Verdict::Delivered {
        "delivered"
    } else {
        "failed"
    };
    shared.metrics.inc(
        "callpulse_alerter_deliveries_total",
        "Messages settled, by channel and result (delivered, failed after all attempts).",
        &[("channel", channel), ("result", result)],
    );
    shared.metrics.add(
        "callpulse_alerter_alerts_delivered_total",
        "Alerts in messages settled, by channel and result.",
        &[("channel", channel), ("result", result)],
        entries.len() as u64,
    );
    if last.verdict == Verdict::Delivered {
        info!(recipient = %recipient.id, channel, key = %message.key, alerts = entries.len(), attempts = last.number, "alert message delivered");
    } else {
        warn!(recipient = %recipient.id, channel, key = %message.key, alerts = entries.len(), attempts = last.number, error = %last.error, reply = %last.reply, "alert message undeliverable");
        shared.metrics.add(
            UNDELIVERABLE,
            UNDELIVERABLE_HELP,
            &[("reason", "delivery_failed")],
            entries.len() as u64,
        );
        for entry in &entries {
            let record = Undeliverable {
                alert: &entry.alert,
                recipient: &recipient.id,
                channel,
                message_key: &message.key,
                attempts: last.number,
                error: &last.error,
                failed_at_ms: chrono::Utc::now().timestamp_millis(),
            };
            audit::publish_undeliverable(&shared.producer, &shared.undeliverable_topic, &record)
                .await;
        }
    }
    let _ = finished.send(batch.recipient.clone());
    let _ = records.send(Record::Settled {
        sources: batch.sources().collect(),
    });
}

/// An alert nobody is configured to receive: recorded as failed and published.
async fn unroutable(
    shared: Arc<Shared>,
    routed: routing::Routed,
    source: Source,
    records: mpsc::UnboundedSender<Record>,
) {
    let error = format!(
        "no recipient: {}",
        routed
            .fallback
            .as_deref()
            .unwrap_or("no contacts for this alert's audiences")
    );
    warn!(alert = %routed.alert.id, %error, "alert undeliverable");
    shared.metrics.inc(
        UNDELIVERABLE,
        UNDELIVERABLE_HELP,
        &[("reason", "no_recipient")],
    );
    let attempt = Attempt {
        number: 0,
        verdict: Verdict::Permanent,
        http_status: 0,
        reply: String::new(),
        error: error.clone(),
        at_ms: chrono::Utc::now().timestamp_millis(),
        duration_ms: 0,
    };
    let key = render::alert_key(&routed.alert);
    let row = audit::row(&routed.alert, "", "", &key, 1, &attempt, true);
    let _ = records.send(Record::Rows(vec![row]));
    let record = Undeliverable {
        alert: &routed.alert,
        recipient: "",
        channel: "",
        message_key: &key,
        attempts: 0,
        error: &error,
        failed_at_ms: attempt.at_ms,
    };
    audit::publish_undeliverable(&shared.producer, &shared.undeliverable_topic, &record).await;
    let _ = records.send(Record::Settled {
        sources: vec![source],
    });
}

/// A record on the alerts topic that is not an alert: kept, with the reason.
async fn not_an_alert(
    shared: Arc<Shared>,
    raw: String,
    error: String,
    source: Source,
    records: mpsc::UnboundedSender<Record>,
) {
    shared.metrics.inc(
        UNDELIVERABLE,
        UNDELIVERABLE_HELP,
        &[("reason", "not_an_alert")],
    );
    let payload = serde_json::json!({
        "raw": raw, "error": error, "partition": source.0, "offset": source.1,
    })
    .to_string();
    let mut backoff = Duration::from_millis(200);
    loop {
        let sent = shared
            .producer
            .send(
                FutureRecord::<str, str>::to(&shared.undeliverable_topic).payload(&payload),
                Duration::from_secs(30),
            )
            .await;
        match sent {
            Ok(_) => break,
            Err((err, _)) => {
                warn!(%err, "publishing an unreadable alert record failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    let _ = records.send(Record::Settled {
        sources: vec![source],
    });
}
