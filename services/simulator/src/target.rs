//! Delivering a scenario: to Kafka, to the adapters' `POST /v1/events`, or
//! to a JSON-lines file that `callpulse replay` reads, paced by event time.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use callpulse_core::{CallEvent, Timestamp};
use callpulse_runtime::{kafka, Config};
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::model::{Delivery, Scenario};

/// Where the events go.
#[derive(Debug, Clone)]
pub enum Target {
    /// The call-events topic, Avro, keyed by practice (as the adapters publish).
    Kafka,
    /// Canonical JSON batches to the adapters' generic endpoint, e.g.
    /// `http://127.0.0.1:8088/v1/events`; `token`: the bearer token, if any.
    Http { url: String, token: Option<String> },
    /// Canonical events, one JSON object per line; `-` is standard output.
    File { path: PathBuf },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Events delivered (duplicates included).
    pub events: u64,
    /// Events the adapters rejected (HTTP only).
    pub rejected: u64,
    /// Event time of the last delivery.
    pub last: Option<Timestamp>,
}

/// Events per Kafka batch or HTTP request (well under the adapters' 1 MiB).
const BATCH: usize = 1_000;

/// `realtime` (1x), `60x` or `60` (60 times real time), `max` or `0` (as
/// fast as possible, `None`).
pub fn parse_speed(text: &str) -> Result<Option<f64>> {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "realtime" | "real-time" => return Ok(Some(1.0)),
        "max" | "0" | "0x" => return Ok(None),
        _ => {}
    }
    let number = t.strip_suffix('x').unwrap_or(&t);
    match number.parse::<f64>() {
        Ok(speed) if speed > 0.0 && speed.is_finite() => Ok(Some(speed)),
        Ok(0.0) => Ok(None),
        _ => bail!("speed `{text}`: expected realtime, a factor such as 60x, or max"),
    }
}

/// `90m`, `8h`, `7d`, `2w`, `45s`, or a plain number of minutes; in milliseconds.
pub fn parse_duration(text: &str) -> Result<i64> {
    let t = text.trim();
    let (number, unit_ms) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1_000),
        Some((i, 'm')) => (&t[..i], 60_000),
        Some((i, 'h')) => (&t[..i], 3_600_000),
        Some((i, 'd')) => (&t[..i], 86_400_000),
        Some((i, 'w')) => (&t[..i], 7 * 86_400_000),
        _ => (t, 60_000),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() && n * (unit_ms as f64) < 3.2e12 => {
            Ok((n * unit_ms as f64) as i64)
        }
        _ => bail!("duration `{text}`: expected e.g. 90m, 8h, 7d or a number of minutes"),
    }
}

/// `now`; an RFC 3339 instant (`2026-11-23T08:00:00Z`); or London local
/// time, `2026-11-23T07:30`, `2026-11-23 07:30:00` or a date (midnight).
pub fn parse_start(text: &str, now: Timestamp) -> Result<Timestamp> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(ts) = Timestamp::parse_rfc3339(t) {
        return Ok(ts);
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    let Some(local) = local else {
        bail!("start `{text}`: expected now, an RFC 3339 instant or London local time such as 2026-11-23T07:30");
    };
    let instant = chrono_tz::Europe::London
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            chrono_tz::Europe::London
                .from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .with_context(|| format!("start `{text}` does not exist in London"))?;
    Ok(Timestamp(instant.timestamp_millis()))
}

/// Delivers the scenario's events to `target`, paced so that event time
/// runs `speed` times faster than the wall clock (`None`: no pacing).
/// Generation runs on its own thread, a day ahead at most.
pub async fn run_scenario(
    config: &Config,
    scenario: Scenario,
    speed: Option<f64>,
    target: Target,
    shutdown: impl Future<Output = ()>,
) -> Result<RunStats> {
    let mut out = Output::open(config, &target).await?;
    let start = scenario.start;
    info!(
        practices = scenario.practices.len(),
        start = %start,
        duration_ms = scenario.duration_ms,
        speed = speed.map_or("max".to_string(), |s| format!("{s}x")),
        target = ?target,
        "simulating"
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Delivery>>(64);
    let generator = std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(BATCH);
        for delivery in scenario.stream() {
            chunk.push(delivery);
            if chunk.len() == BATCH && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
    });
    tokio::pin!(shutdown);
    let started = Instant::now();
    let mut last_report = started;
    let mut stats = RunStats::default();
    let mut batch: Vec<CallEvent> = Vec::with_capacity(BATCH);
    let mut stopped = false;
    'outer: loop {
        let chunk = tokio::select! {
            _ = &mut shutdown => { stopped = true; break 'outer },
            chunk = rx.recv() => chunk,
        };
        let Some(chunk) = chunk else { break };
        for delivery in chunk {
            if let Some(speed) = speed {
                let due = started
                    + Duration::from_millis(
                        ((delivery.deliver_at.0 - start.0) as f64 / speed).max(0.0) as u64,
                    );
                if due > Instant::now() {
                    if !batch.is_empty() {
                        tokio::select! {
                            _ = &mut shutdown => { stopped = true; break 'outer },
                            sent = out.send(&batch) => stats.rejected += sent?,
                        }
                        stats.events += batch.len() as u64;
                        batch.clear();
                    }
                    tokio::select! {
                        _ = &mut shutdown => { stopped = true; break 'outer },
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            stats.last = Some(delivery.event.at);
            batch.push(delivery.event);
            if batch.len() >= BATCH {
                tokio::select! {
                    _ = &mut shutdown => { stopped = true; break 'outer },
                    sent = out.send(&batch) => stats.rejected += sent?,
                }
                stats.events += batch.len() as u64;
                batch.clear();
            }
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            info!(
                sent = stats.events,
                rejected = stats.rejected,
                event_time = %stats.last.unwrap_or(start),
                "progress"
            );
        }
    }
    // After a shutdown what is in hand is dropped (the receiver may be
    // gone too); otherwise the last batch goes out.
    if !batch.is_empty() && !stopped {
        stats.rejected += out.send(&batch).await?;
        stats.events += batch.len() as u64;
    }
    drop(rx);
    let _ = generator.join();
    out.finish()?;
    info!(
        sent = stats.events,
        rejected = stats.rejected,
        "simulation finished"
    );
    Ok(stats)
}

enum Output {
    Kafka {
        producer: rdkafka::producer::FutureProducer,
        topic: String,
    },
    Http {
        client: reqwest::Client,
        url: String,
        token: Option<String>,
    },
    File(Box<dyn Write + Send>),
}

impl Output {
    async fn open(config: &Config, target: &Target) -> Result<Output> {
        Ok(match target {
            Target::Kafka => {
                kafka::ensure_topics(&config.kafka, &config.topics.all()).await?;
                Output::Kafka {
                    producer: kafka::producer(&config.kafka)?,
                    topic: config.topics.call_events.clone(),
                }
            }
            Target::Http { url, token } => Output::Http {
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .context("building the HTTP client")?,
                url: url.clone(),
                token: token.clone(),
            },
            Target::File { path } => {
                let writer: Box<dyn Write + Send> = if path.as_os_str() == "-" {
                    Box::new(std::io::BufWriter::new(std::io::stdout()))
                } else {
                    Box::new(std::io::BufWriter::new(
                        std::fs::File::create(path)
                            .with_context(|| format!("creating {}", path.display()))?,
                    ))
                };
                Output::File(writer)
            }
        })
    }

    /// Sends one batch; returns how many events were rejected.
    async fn send(&mut self, events: &[CallEvent]) -> Result<u64> {
        match self {
            Output::Kafka { producer, topic } => {
                crate::publish(producer, topic, events).await?;
                Ok(0)
            }
            Output::Http { client, url, token } => {
                post(client, url, token.as_deref(), events).await
            }
            Output::File(writer) => {
                for event in events {
                    writeln!(writer, "{}", event.to_json()).context("writing events")?;
                }
                writer.flush().context("writing events")?;
                Ok(0)
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let Output::File(writer) = self {
            writer.flush().context("writing events")?;
        }
        Ok(())
    }
}

/// Posts a JSON array of canonical events; retries while the adapters
/// answer 503 (Kafka not acknowledging) or cannot be reached.
async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    events: &[CallEvent],
) -> Result<u64> {
    let mut body = String::with_capacity(events.len() * 260 + 2);
    body.push('[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&event.to_json());
    }
    body.push(']');
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let retry = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                match status {
                    200 => return Ok(0),
                    422 => {
                        let rejected = text.matches("\"index\"").count() as u64;
                        warn!(rejected, answer = %text.chars().take(300).collect::<String>(), "the adapters rejected events");
                        return Ok(rejected);
                    }
                    503 => format!("503 {}", text.chars().take(200).collect::<String>()),
                    _ => bail!(
                        "POST {url}: {status} {}",
                        text.chars().take(300).collect::<String>()
                    ),
                }
            }
            Err(err) => err.to_string(),
        };
        if attempt >= 30 {
            bail!("POST {url}: still failing after {attempt} attempts: {retry}");
        }
        warn!(attempt, error = %retry, "POST failed; retrying in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds() {
        assert_eq!(parse_speed("realtime").unwrap(), Some(1.0));
        assert_eq!(parse_speed("60x").unwrap(), Some(60.0));
        assert_eq!(parse_speed("2.5").unwrap(), Some(2.5));
        assert_eq!(parse_speed("max").unwrap(), None);
        assert_eq!(parse_speed("0").unwrap(), None);
        assert!(parse_speed("fast").is_err());
        assert!(parse_speed("-3").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("60").unwrap(), 3_600_000);
        assert_eq!(parse_duration("1d").unwrap(), 86_400_000);
        assert_eq!(parse_duration("1w").unwrap(), 604_800_000);
        assert_eq!(parse_duration("30s").unwrap(), 30_000);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0m").is_err());
    }

    #[test]
    fn starts() {
        let now = Timestamp(1_700_000_000_000);
        assert_eq!(parse_start("now", now).unwrap(), now);
        let utc = parse_start("2026-11-23T08:00:00Z", now).unwrap();
        assert_eq!(parse_start("2026-11-23T08:00", now).unwrap(), utc); // GMT in November
        let summer = parse_start("2026-07-06T08:00", now).unwrap();
        assert_eq!(summer.to_rfc3339_seconds(), "2026-07-06T07:00:00Z");
        assert_eq!(
            parse_start("2026-11-23", now).unwrap().to_rfc3339_seconds(),
            "2026-11-23T00:00:00Z"
        );
        assert!(parse_start("tomorrow", now).is_err());
    }
}
