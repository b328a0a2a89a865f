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

use std::collections::BTreeMap;

use crate::model::{Delivery, Scenario};
use crate::vendors::{self, Channel, Format, NativeFaults, NativeRecord, NativeStream};

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
    run_scenario_as(config, scenario, speed, target, Format::Canonical, shutdown).await
}

/// [`run_scenario`] in a chosen format: canonical events, or each
/// practice's supplier's own records ([`Format::Native`]): to the
/// adapters' vendor routes (`--to http`), or one file per vendor in the
/// directory `path` (`--to file`, with the practice mapping as
/// `mapping.toml`). Kafka takes canonical events only. Native records are
/// rendered from the fault-free stream; the scenario's faults are then
/// applied to the records ([`NativeFaults`]).
pub async fn run_scenario_as(
    config: &Config,
    scenario: Scenario,
    speed: Option<f64>,
    target: Target,
    format: Format,
    shutdown: impl Future<Output = ()>,
) -> Result<RunStats> {
    let start = scenario.start;
    info!(
        practices = scenario.practices.len(),
        start = %start,
        duration_ms = scenario.duration_ms,
        speed = speed.map_or("max".to_string(), |s| format!("{s}x")),
        target = ?target,
        format = ?format,
        "simulating"
    );
    let mix = match format {
        Format::Canonical => {
            let out = Output::open(config, &target).await?;
            return pump(scenario, speed, out, shutdown, |s| Box::new(s.stream())).await;
        }
        Format::Native(mix) => mix,
    };
    let out = match &target {
        Target::Kafka => {
            bail!("--format native needs --to http (the adapters) or --to file: Kafka takes canonical events only")
        }
        Target::Http { url, token } => {
            let base = url
                .trim_end_matches('/')
                .trim_end_matches("/v1/events")
                .to_string();
            NativeOutput::Http {
                client: http_client()?,
                base,
                token: token.clone(),
                twilio_token: (!config.adapters.twilio_auth_token.is_empty())
                    .then(|| config.adapters.twilio_auth_token.clone()),
                public_url: config.adapters.public_url.clone(),
                requests: 0,
            }
        }
        Target::File { path } => {
            std::fs::create_dir_all(path)
                .with_context(|| format!("creating the directory {}", path.display()))?;
            let mapping = path.join("mapping.toml");
            std::fs::write(&mapping, vendors::mapping_toml(&scenario.practices))
                .with_context(|| format!("writing {}", mapping.display()))?;
            NativeOutput::Files {
                dir: path.clone(),
                files: BTreeMap::new(),
            }
        }
    };
    let (faults, clean) = NativeFaults::split(scenario);
    let seed = clean.seed;
    pump(clean, speed, out, shutdown, move |s| {
        let records = NativeStream::new(s.stream(), mix, seed);
        if faults.is_none() {
            Box::new(records)
        } else {
            Box::new(faults.apply(records))
        }
    })
    .await
}

/// Something delivered at a time.
trait Timed {
    fn deliver_at(&self) -> Timestamp;
}

impl Timed for Delivery {
    fn deliver_at(&self) -> Timestamp {
        self.deliver_at
    }
}

impl Timed for NativeRecord {
    fn deliver_at(&self) -> Timestamp {
        self.deliver_at
    }
}

/// Where batches go.
trait Sink<T> {
    /// Sends one batch; returns how many records were rejected.
    async fn send(&mut self, items: &[T]) -> Result<u64>;
    fn finish(&mut self) -> Result<()>;
}

/// Runs the scenario's stream (made by `stream` on the generator thread)
/// into `out`, paced.
async fn pump<T, O>(
    scenario: Scenario,
    speed: Option<f64>,
    mut out: O,
    shutdown: impl Future<Output = ()>,
    stream: impl for<'a> FnOnce(&'a Scenario) -> Box<dyn Iterator<Item = T> + 'a> + Send + 'static,
) -> Result<RunStats>
where
    T: Timed + Send + 'static,
    O: Sink<T>,
{
    let start = scenario.start;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<T>>(64);
    let generator = std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(BATCH);
        for item in stream(&scenario) {
            chunk.push(item);
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
    let mut batch: Vec<T> = Vec::with_capacity(BATCH);
    let mut stopped = false;
    'outer: loop {
        let chunk = tokio::select! {
            _ = &mut shutdown => { stopped = true; break 'outer },
            chunk = rx.recv() => chunk,
        };
        let Some(chunk) = chunk else { break };
        for item in chunk {
            let deliver_at = item.deliver_at();
            if let Some(speed) = speed {
                let due = started
                    + Duration::from_millis(
                        ((deliver_at.0 - start.0) as f64 / speed).max(0.0) as u64
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
            stats.last = Some(deliver_at);
            batch.push(item);
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

fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")
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
                client: http_client()?,
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
}

impl Sink<Delivery> for Output {
    async fn send(&mut self, deliveries: &[Delivery]) -> Result<u64> {
        match self {
            Output::Kafka { producer, topic } => {
                let events: Vec<CallEvent> = deliveries.iter().map(|d| d.event.clone()).collect();
                crate::publish(producer, topic, &events).await?;
                Ok(0)
            }
            Output::Http { client, url, token } => {
                let mut body = String::with_capacity(deliveries.len() * 260 + 2);
                body.push('[');
                for (i, delivery) in deliveries.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&delivery.event.to_json());
                }
                body.push(']');
                post(client, url, token.as_deref(), "application/json", &[], body).await
            }
            Output::File(writer) => {
                for delivery in deliveries {
                    writeln!(writer, "{}", delivery.event.to_json()).context("writing events")?;
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

/// Where vendor-native records go.
enum NativeOutput {
    /// The adapters' routes under `base` (`http://127.0.0.1:8088`).
    Http {
        client: reqwest::Client,
        base: String,
        /// Bearer token (and Firehose access key) for every route but Twilio's.
        token: Option<String>,
        /// `adapters.twilio_auth_token`: sign Twilio requests when set.
        twilio_token: Option<String>,
        /// `adapters.public_url`: the URL Twilio requests are signed for.
        public_url: String,
        /// Firehose request ids.
        requests: u64,
    },
    /// One file per channel in `dir`.
    Files {
        dir: PathBuf,
        files: BTreeMap<Channel, std::io::BufWriter<std::fs::File>>,
    },
}

/// Twilio webhooks in flight at once: each is its own request, answered
/// only once Kafka has its events.
const TWILIO_CONCURRENCY: usize = 16;

impl Sink<NativeRecord> for NativeOutput {
    async fn send(&mut self, records: &[NativeRecord]) -> Result<u64> {
        match self {
            NativeOutput::Files { dir, files } => {
                for record in records {
                    let file = match files.entry(record.channel) {
                        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::btree_map::Entry::Vacant(e) => {
                            let path = dir.join(record.channel.file_name());
                            let file = std::fs::File::create(&path)
                                .with_context(|| format!("creating {}", path.display()))?;
                            e.insert(std::io::BufWriter::new(file))
                        }
                    };
                    writeln!(file, "{}", record.file_line()).context("writing vendor records")?;
                }
                Ok(0)
            }
            NativeOutput::Http {
                client,
                base,
                token,
                twilio_token,
                public_url,
                requests,
            } => {
                let mut rejected = 0;
                for channel in Channel::ALL {
                    let group: Vec<&NativeRecord> =
                        records.iter().filter(|r| r.channel == channel).collect();
                    if group.is_empty() {
                        continue;
                    }
                    let url = format!("{base}{}", channel.route());
                    rejected += match channel {
                        Channel::Twilio => {
                            let sign_url =
                                format!("{}{}", public_url.trim_end_matches('/'), channel.route());
                            post_twilio(client, &url, twilio_token.as_deref(), &sign_url, &group)
                                .await?
                        }
                        Channel::AmazonConnect => {
                            *requests += 1;
                            let (body, request_id) = firehose_body(&group, *requests);
                            let mut headers = vec![("x-amz-firehose-request-id", request_id)];
                            if let Some(token) = token {
                                headers.push(("x-amz-firehose-access-key", token.clone()));
                            }
                            post(client, &url, None, "application/json", &headers, body).await?
                        }
                        Channel::AsteriskCdr | Channel::AsteriskQueueLog => {
                            let body: String = group.iter().map(|r| r.file_line() + "\n").collect();
                            post(client, &url, token.as_deref(), "text/plain", &[], body).await?
                        }
                        Channel::Generic | Channel::Teams => {
                            let lines: Vec<String> = group.iter().map(|r| r.file_line()).collect();
                            let body = format!("[{}]", lines.join(","));
                            post(
                                client,
                                &url,
                                token.as_deref(),
                                "application/json",
                                &[],
                                body,
                            )
                            .await?
                        }
                    };
                }
                Ok(rejected)
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let NativeOutput::Files { files, .. } = self {
            for file in files.values_mut() {
                file.flush().context("writing vendor records")?;
            }
        }
        Ok(())
    }
}

/// An Amazon Data Firehose HTTP endpoint delivery of contact records (one
/// record per CTR, base64), and its request id.
fn firehose_body(records: &[&NativeRecord], n: u64) -> (String, String) {
    use base64::Engine as _;
    let request_id = vendors_guid(n);
    let timestamp = records.last().map_or(0, |r| r.deliver_at.0);
    let data: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(r.file_line())})
        })
        .collect();
    let body =
        serde_json::json!({"requestId": request_id, "timestamp": timestamp, "records": data});
    (body.to_string(), request_id)
}

fn vendors_guid(n: u64) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        n >> 32,
        n & 0xffff_ffff_ffff
    )
}

/// Posts Twilio webhooks, one request each, a few at a time, signed when
/// the adapters check signatures.
async fn post_twilio(
    client: &reqwest::Client,
    url: &str,
    auth_token: Option<&str>,
    sign_url: &str,
    records: &[&NativeRecord],
) -> Result<u64> {
    let mut rejected = 0;
    for chunk in records.chunks(TWILIO_CONCURRENCY) {
        let mut tasks = tokio::task::JoinSet::new();
        for record in chunk {
            let vendors::Body::Params(params) = &record.body else {
                continue;
            };
            let mut headers = Vec::new();
            if let Some(token) = auth_token {
                headers.push((
                    "x-twilio-signature",
                    vendors::twilio_signature(token, sign_url, params),
                ));
            }
            let body = vendors::form_encode(params);
            let (client, url) = (client.clone(), url.to_string());
            tasks.spawn(async move {
                post(
                    &client,
                    &url,
                    None,
                    "application/x-www-form-urlencoded",
                    &headers,
                    body,
                )
                .await
            });
        }
        while let Some(result) = tasks.join_next().await {
            rejected += result.context("a Twilio request task failed")??;
        }
    }
    Ok(rejected)
}

/// Posts one body; retries while the adapters answer 503 (Kafka not
/// acknowledging) or 429 (over the sender's budget), or cannot be reached. Returns how many records the
/// adapters rejected (422).
async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<u64> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut request = client
            .post(url)
            .header("content-type", content_type)
            .body(body.clone());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
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
                        warn!(rejected, answer = %text.chars().take(300).collect::<String>(), "the adapters rejected records");
                        return Ok(rejected);
                    }
                    503 | 429 => {
                        format!("{status} {}", text.chars().take(200).collect::<String>())
                    }
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
