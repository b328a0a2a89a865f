//! The record of every attempt (ClickHouse `alert_deliveries`) and the
//! undeliverable topic. The recorder inserts rows in small batches and only
//! then passes on the settlements that followed them, so a Kafka offset is
//! committed only once the attempts it led to are recorded.

use std::time::Duration;

use anyhow::{Context, Result};
use callpulse_core::alert::{Alert, AlertState};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::warn;

use crate::deliver::Attempt;
use crate::offsets::Source;
use crate::policy::Verdict;
use crate::routing::kind_name;

/// A row of `alert_deliveries` (schemas/clickhouse/004_alert_deliveries.sql).
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize)]
pub struct DeliveryRow {
    pub alert_id: String,
    pub revision: u64,
    pub kind: String,
    pub state: String,
    pub practice: String,
    pub pcn: String,
    pub icb: String,
    pub recipient: String,
    pub channel: String,
    pub message_key: String,
    pub group_size: u32,
    pub attempt: u32,
    pub status: String,
    pub http_status: u16,
    pub reply: String,
    pub error: String,
    /// DateTime('UTC'): seconds.
    pub attempted_at: u32,
    pub attempted_at_ms: u64,
    pub duration_ms: u32,
}

/// `delivered`, `retry` or `failed`.
pub fn status(attempt: &Attempt, last: bool) -> &'static str {
    match (attempt.verdict, last) {
        (Verdict::Delivered, _) => "delivered",
        (_, false) => "retry",
        (_, true) => "failed",
    }
}

#[allow(clippy::too_many_arguments)]
pub fn row(
    alert: &Alert,
    recipient: &str,
    channel: &str,
    message_key: &str,
    group_size: usize,
    attempt: &Attempt,
    last: bool,
) -> DeliveryRow {
    DeliveryRow {
        alert_id: alert.id.clone(),
        revision: alert.revision,
        kind: kind_name(alert),
        state: match alert.state {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
        .to_string(),
        practice: alert.practice.clone(),
        pcn: alert.pcn.clone().unwrap_or_default(),
        icb: alert.icb.clone().unwrap_or_default(),
        recipient: recipient.to_string(),
        channel: channel.to_string(),
        message_key: message_key.to_string(),
        group_size: group_size as u32,
        attempt: attempt.number,
        status: status(attempt, last).to_string(),
        http_status: attempt.http_status,
        reply: attempt.reply.clone(),
        error: attempt.error.clone(),
        attempted_at: (attempt.at_ms.max(0) / 1000) as u32,
        attempted_at_ms: attempt.at_ms.max(0) as u64,
        duration_ms: attempt.duration_ms,
    }
}

/// What the delivery tasks tell the recorder, in order.
#[derive(Debug)]
pub enum Record {
    Rows(Vec<DeliveryRow>),
    /// A message (or an unroutable alert) is settled: `sources` are done
    /// once the rows sent before are inserted.
    Settled {
        sources: Vec<Source>,
    },
}

/// Settlements passed on after their rows are in ClickHouse.
#[derive(Debug)]
pub struct Settled {
    pub sources: Vec<Source>,
}

/// Inserts rows in batches (at most every `interval`), retrying with backoff
/// until ClickHouse acknowledges, then passes the settlements on. Ends when
/// every sender is gone.
pub async fn recorder(
    client: clickhouse::Client,
    mut input: mpsc::UnboundedReceiver<Record>,
    output: mpsc::UnboundedSender<Settled>,
    interval: Duration,
) {
    let mut rows: Vec<DeliveryRow> = Vec::new();
    let mut settled: Vec<Settled> = Vec::new();
    loop {
        let Some(first) = input.recv().await else {
            break;
        };
        let deadline = tokio::time::Instant::now() + interval;
        let mut next = Some(first);
        // Collect what arrives within `interval` into one insert.
        while let Some(record) = next.take() {
            match record {
                Record::Rows(more) => rows.extend(more),
                Record::Settled { sources } => settled.push(Settled { sources }),
            }
            if let Ok(Some(record)) = tokio::time::timeout_at(deadline, input.recv()).await {
                next = Some(record);
            }
        }
        flush(&client, &mut rows, &mut settled, &output).await;
    }
    flush(&client, &mut rows, &mut settled, &output).await;
}

async fn flush(
    client: &clickhouse::Client,
    rows: &mut Vec<DeliveryRow>,
    settled: &mut Vec<Settled>,
    output: &mpsc::UnboundedSender<Settled>,
) {
    if !rows.is_empty() {
        let mut backoff = Duration::from_millis(200);
        while let Err(err) = insert(client, rows).await {
            warn!(error = %format!("{err:#}"), rows = rows.len(), retry_in_ms = backoff.as_millis() as u64, "recording alert deliveries failed");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        rows.clear();
    }
    for s in settled.drain(..) {
        let _ = output.send(s);
    }
}

pub async fn insert(client: &clickhouse::Client, rows: &[DeliveryRow]) -> Result<()> {
    let mut insert = client.insert::<DeliveryRow>("alert_deliveries").await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await.context("inserting alert deliveries")?;
    Ok(())
}

/// What the undeliverable topic holds: the alert, who could not be reached, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Undeliverable<'a> {
    pub alert: &'a Alert,
    /// Empty: nobody to send it to.
    pub recipient: &'a str,
    pub channel: &'a str,
    pub message_key: &'a str,
    pub attempts: u32,
    pub error: &'a str,
    pub failed_at_ms: i64,
}

/// Publishes to the undeliverable topic, retrying until Kafka has it.
pub async fn publish_undeliverable(
    producer: &FutureProducer,
    topic: &str,
    record: &Undeliverable<'_>,
) {
    let payload = serde_json::to_vec(record).expect("JSON values serialise");
    let mut backoff = Duration::from_millis(200);
    loop {
        let sent = producer
            .send(
                FutureRecord::to(topic)
                    .key(&record.alert.id)
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await;
        match sent {
            Ok(_) => return,
            Err((err, _)) => {
                warn!(%err, topic, alert = %record.alert.id, "publishing an undeliverable alert failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
