//! Measuring side of `bench/pipeline.sh` (issues #4 and #8): it only reads
//! (the processor's `/metrics`, consumer-group offsets, topics and
//! ClickHouse) and prints what it measured as one JSON object per line.
//!
//! ```text
//! pipeline_bench wait     --processor URL --events N [--metrics-topic T --sink-group G] [--since-ms MS]
//! pipeline_bench watch-ch --clickhouse URL --database DB --practices A,B,.. --out FILE --stop FILE
//! pipeline_bench latency  --events-topic T --metrics-topic T --events N [--ch-seen FILE]
//! pipeline_bench compare  --metrics-topic T --quix FILE
//! pipeline_bench drop-topics --topics A,B,..
//! pipeline_bench wait-records --topic T --records N --since-ms MS
//! callpulse simulate --to file --out - ... | pipeline_bench publish [--speed 10|max] [--skip-s S] [--until-s S]
//! ```
//!
//! Kafka at CALLPULSE__KAFKA__BROKERS (default 127.0.0.1:9092).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use callpulse_core::{EventKind, WindowSize};
use callpulse_runtime::avro;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::json;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        bail!("usage: pipeline_bench wait|watch-ch|latency|compare [--flag value ...]")
    };
    let flags = Flags::parse(&args[1..])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command.as_str() {
        "wait" => runtime.block_on(wait(&flags)),
        "watch-ch" => runtime.block_on(watch_clickhouse(&flags)),
        "latency" => latency(&flags),
        "compare" => compare(&flags),
        "drop-topics" => runtime.block_on(drop_topics(&flags)),
        "publish" => runtime.block_on(publish(&flags)),
        "wait-records" => wait_records(&flags),
        other => bail!("unknown command {other}"),
    }
}

struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: &[String]) -> Result<Flags> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let Some(name) = flag.strip_prefix("--") else {
                bail!("expected --flag, got {flag}")
            };
            let value = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            map.insert(name.to_string(), value.clone());
        }
        Ok(Flags(map))
    }
    fn get(&self, name: &str) -> Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("--{name} is required"))
    }
    fn opt(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
    fn num(&self, name: &str) -> Result<u64> {
        self.get(name)?
            .parse()
            .with_context(|| format!("--{name}: a number"))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn brokers() -> String {
    std::env::var("CALLPULSE__KAFKA__BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Sum of every series of `name` in a Prometheus text page (optionally only
/// the series whose labels contain `label`).
fn scrape(page: &str, name: &str, label: Option<&str>) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| label.is_none_or(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Next offsets committed by `group` on `topic`, summed over partitions.
fn committed_total(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Result<i64> {
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(5))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum())
}

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Result<i32> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let count = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    if count == 0 {
        bail!("topic {topic} has no partitions");
    }
    Ok(count)
}

/// Waits until the processor has consumed `--events` events (throughput),
/// then, with `--sink-group`, until the sink has committed every window
/// record the processor published (the sink commits after the insert).
async fn wait(flags: &Flags) -> Result<()> {
    let url = flags.get("processor")?;
    let events = flags.num("events")? as f64;
    let since = flags
        .opt("since-ms")
        .map(str::parse::<i64>)
        .transpose()?
        .unwrap_or_else(now_ms);
    let timeout = Duration::from_secs(flags.opt("timeout-s").unwrap_or("900").parse()?);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut first_event_ms = None;
    let mut polled_before_first_event = false;
    let mut page;
    let mut peak_windows = 0f64;
    let mut peak_calls = 0f64;
    loop {
        page = match client.get(url).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let consumed = scrape(&page, "callpulse_processor_events_in_total", None);
        peak_windows = peak_windows.max(scrape(&page, "callpulse_processor_open_windows", None));
        peak_calls = peak_calls.max(scrape(&page, "callpulse_processor_open_calls", None));
        // The first event's time is known only if a poll saw none before
        // it; when the processor was consuming before the tool started
        // (`live` waits after publishing) it stays unknown (null).
        if consumed == 0.0 {
            polled_before_first_event = true;
        } else if polled_before_first_event && first_event_ms.is_none() {
            first_event_ms = Some(now_ms());
        }
        if consumed >= events {
            break;
        }
        if started.elapsed() > timeout {
            bail!("timed out: {consumed} of {events} events consumed");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let processor_done = now_ms();
    let mut out = json!({
        "events": events,
        "processor_s": (processor_done - since) as f64 / 1000.0,
        "events_per_s": events / ((processor_done - since) as f64 / 1000.0),
        "first_event_after_s": first_event_ms.map(|t| (t - since) as f64 / 1000.0),
    });
    if let Some(group) = flags.opt("sink-group") {
        let topic = flags.get("metrics-topic")?;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        let partitions = partitions_of(&consumer, topic)?;
        // The last drain after the last event comes within emit_interval_ms.
        let mut published = -1.0;
        let mut stable_since = Instant::now();
        loop {
            page = client.get(url).send().await?.text().await?;
            let now = scrape(
                &page,
                "callpulse_processor_records_out_total",
                Some("topic=\"metrics\""),
            );
            if now != published {
                published = now;
                stable_since = Instant::now();
            }
            let committed = committed_total(&consumer, topic, partitions)? as f64;
            if committed >= published && stable_since.elapsed() > Duration::from_secs(2) {
                break;
            }
            if started.elapsed() > timeout {
                bail!("timed out: the sink committed {committed} of {published} window records");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sink_done = now_ms() - 2000; // minus the 2 s of stability asked for
        out["window_records"] = json!(published);
        out["sink_s"] = json!((sink_done - since) as f64 / 1000.0);
        out["events_per_s_to_clickhouse"] = json!(events / ((sink_done - since) as f64 / 1000.0));
    }
    // The state gauges are refreshed every 10 s: sample them a while longer.
    let state_wait = Duration::from_secs(flags.opt("state-wait-s").unwrap_or("0").parse()?);
    let sampling = Instant::now();
    while sampling.elapsed() < state_wait {
        tokio::time::sleep(Duration::from_millis(500)).await;
        page = client.get(url).send().await?.text().await?;
        peak_windows = peak_windows.max(scrape(&page, "callpulse_processor_open_windows", None));
        peak_calls = peak_calls.max(scrape(&page, "callpulse_processor_open_calls", None));
    }
    out["open_windows_peak"] = json!(peak_windows);
    out["open_calls_peak"] = json!(peak_calls);
    out["open_windows_end"] = json!(scrape(&page, "callpulse_processor_open_windows", None));
    out["open_calls_end"] = json!(scrape(&page, "callpulse_processor_open_calls", None));
    println!("{out}");
    Ok(())
}

/// Waits until `--topic` holds `--records` records (its partitions' end
/// offsets summed) and prints the seconds since `--since-ms`.
fn wait_records(flags: &Flags) -> Result<()> {
    let topic = flags.get("topic")?;
    let records = flags.num("records")? as i64;
    let since: i64 = flags.get("since-ms")?.parse()?;
    let timeout = Duration::from_secs(flags.opt("timeout-s").unwrap_or("900").parse()?);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()?;
    let partitions = partitions_of(&consumer, topic)?;
    let started = Instant::now();
    loop {
        let mut held = 0;
        for partition in 0..partitions {
            held += consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(5))?
                .1;
        }
        if held >= records {
            let after_s = (now_ms() - since) as f64 / 1000.0;
            println!(
                "{}",
                json!({"topic": topic, "records": held, "after_s": after_s})
            );
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("timed out: {topic} holds {held} of {records} records");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls ClickHouse for the 1-minute windows of a sample of practices and
/// writes a line `practice start_s revision seen_ms` whenever a window's
/// highest revision grows, until the file `--stop` exists.
async fn watch_clickhouse(flags: &Flags) -> Result<()> {
    let url = flags.get("clickhouse")?;
    let database = flags.get("database")?;
    let practices: Vec<String> = flags
        .get("practices")?
        .split(',')
        .filter(|p| p.len() == 6 && p.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|p| format!("'{p}'"))
        .collect();
    let stop = std::path::PathBuf::from(flags.get("stop")?);
    let mut out = std::io::BufWriter::new(std::fs::File::create(flags.get("out")?)?);
    let query = format!(
        "SELECT practice, toUInt32(start), max(revision) FROM {database}.window_metrics \
         WHERE window = '1m' AND practice IN ({}) GROUP BY practice, start FORMAT TabSeparated",
        practices.join(",")
    );
    let client = reqwest::Client::new();
    let mut seen: HashMap<(String, u32), u64> = HashMap::new();
    let mut polls = 0u64;
    let mut slowest = 0u128;
    while !stop.exists() {
        let asked = Instant::now();
        let Ok(resp) = client.post(url).body(query.clone()).send().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let ok = resp.status().is_success();
        let body = resp.text().await.unwrap_or_default();
        let at = now_ms();
        polls += 1;
        slowest = slowest.max(asked.elapsed().as_millis());
        if ok {
            for line in body.lines() {
                let mut cols = line.split('\t');
                let (Some(p), Some(s), Some(r)) = (cols.next(), cols.next(), cols.next()) else {
                    continue;
                };
                let (Ok(s), Ok(r)) = (s.parse::<u32>(), r.parse::<u64>()) else {
                    continue;
                };
                let last = seen.entry((p.to_string(), s)).or_insert(0);
                if r > *last {
                    *last = r;
                    writeln!(out, "{p}\t{s}\t{r}\t{at}")?;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100).saturating_sub(asked.elapsed())).await;
    }
    out.flush()?;
    eprintln!("watch-ch: {polls} polls, slowest {slowest} ms");
    Ok(())
}

/// Publishes canonical JSON lines from standard input to the call-events
/// topic (Avro, keyed by practice, the simulator's idempotent producer),
/// paced so that event time runs `--speed` times the wall clock. It keeps
/// up to 20,000 records in flight instead of awaiting each one: the
/// simulator's own Kafka output (`callpulse_simulator::publish`) creates
/// its send futures lazily and awaits them in turn, so it sends one record
/// per request, about 150 records per second against the local broker.
async fn publish(flags: &Flags) -> Result<()> {
    use callpulse_core::CallEvent;
    use callpulse_runtime::{kafka, Config};
    use rdkafka::producer::FutureRecord;
    let config = Config::load(None)?;
    kafka::ensure_topics(&config.kafka, &config.topics.all()).await?;
    let producer = kafka::producer(&config.kafka)?;
    let topic = config.topics.call_events.clone();
    let speed: Option<f64> = match flags.opt("speed").unwrap_or("max") {
        "max" => None,
        s => Some(s.trim_end_matches('x').parse()?),
    };
    let until_ms = flags
        .opt("until-s")
        .map_or(Ok(i64::MAX / 2), |s| s.parse::<i64>().map(|s| s * 1000))?;
    let skip_ms = flags
        .opt("skip-s")
        .map_or(Ok(0), |s| s.parse::<i64>().map(|s| s * 1000))?;
    let mut in_flight = std::collections::VecDeque::new();
    let mut event = CallEvent::from_json(
        r#"{"event_id":"x","call_id":"x","vendor":"generic","practice":"A81001","kind":"offered","at":"2026-01-01T00:00:00Z"}"#,
    )?;
    let mut started = Instant::now();
    let mut started_ms = now_ms();
    let mut origin = None;
    let mut count = 0u64;
    let mut line = String::new();
    let mut input = std::io::stdin().lock();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        event.read_json(line.trim_end())?;
        let origin = *origin.get_or_insert(event.at.0);
        if event.at.0 - origin < skip_ms {
            continue; // warm-up: queues and redials build up unpublished
        }
        if count == 0 && in_flight.is_empty() {
            // The clocks start with the first published event.
            started = Instant::now();
            started_ms = now_ms();
        }
        if event.at.0 - origin > until_ms {
            // Calls offered in the range run to their end (callbacks up to
            // hours later): paced, that tail would take hours.
            break;
        }
        if let Some(speed) = speed {
            let due = started
                + Duration::from_millis(
                    ((event.at.0 - origin - skip_ms) as f64 / speed).max(0.0) as u64
                );
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let body = avro::encode_call_event(&event)?;
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(&event.practice).payload(&body))
            {
                Ok(delivery) => {
                    in_flight.push_back(delivery);
                    break;
                }
                Err((err, _)) => {
                    let Some(oldest) = in_flight.pop_front() else {
                        bail!("publishing: {err}")
                    };
                    oldest.await?.map_err(|(err, _)| err)?;
                }
            }
        }
        count += 1;
        while in_flight.len() > 20_000 {
            in_flight
                .pop_front()
                .unwrap()
                .await?
                .map_err(|(err, _)| err)?;
        }
    }
    for delivery in in_flight {
        delivery.await?.map_err(|(err, _)| err)?;
    }
    let seconds = (now_ms() - started_ms) as f64 / 1000.0;
    println!(
        "{}",
        json!({"published_events": count, "publish_s": seconds, "published_per_s": count as f64 / seconds})
    );
    Ok(())
}

/// Deletes the run's topics (the local broker keeps them in memory).
async fn drop_topics(flags: &Flags) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()?;
    let topics: Vec<&str> = flags.get("topics")?.split(',').collect();
    for result in admin.delete_topics(&topics, &AdminOptions::new()).await? {
        if let Err((topic, err)) = result {
            eprintln!("deleting {topic}: {err}");
        }
    }
    Ok(())
}

/// Reads a whole topic from the beginning with record timestamps, until
/// `expected` messages arrived (or `idle` passed without one).
fn read_all(
    topic: &str,
    expected: Option<u64>,
    idle: Duration,
    mut each: impl FnMut(&[u8], &[u8], i64),
) -> Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("bench-reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()?;
    let partitions = partitions_of(&consumer, topic)?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let mut count = 0u64;
    let mut last = Instant::now();
    while expected.is_none_or(|e| count < e) && last.elapsed() < idle {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                count += 1;
                last = Instant::now();
                let ts = message.timestamp().to_millis().unwrap_or(0);
                each(
                    message.key().unwrap_or_default(),
                    message.payload().unwrap_or_default(),
                    ts,
                );
            }
            Some(Err(err)) => bail!("reading {topic}: {err}"),
            None => {}
        }
    }
    Ok(count)
}

fn percentile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn summary(mut delays: Vec<i64>) -> serde_json::Value {
    delays.sort_unstable();
    json!({
        "n": delays.len(),
        "p50_s": percentile(&delays, 0.50),
        "p99_s": percentile(&delays, 0.99),
        "max_s": percentile(&delays, 1.0),
    })
}

/// Publication (the event's CreateTime) to the first record of its
/// 1-minute window published at or after it (the metrics record's
/// CreateTime), and, for the practices `watch-ch` watched, to the first
/// poll that showed that window in ClickHouse at that revision or later.
fn latency(flags: &Flags) -> Result<()> {
    let expected = flags.num("events")?;
    // (practice, 1m start ms) -> [(record time, revision)]
    let mut emissions: HashMap<(String, i64), Vec<(i64, u64)>> = HashMap::new();
    let metrics = read_all(
        flags.get("metrics-topic")?,
        None,
        Duration::from_secs(5),
        |_, payload, ts| {
            if let Ok(w) = avro::decode_window_metrics(payload) {
                if w.window == WindowSize::Minute {
                    emissions
                        .entry((w.practice, w.start.0))
                        .or_default()
                        .push((ts, w.revision));
                }
            }
        },
    )?;
    for list in emissions.values_mut() {
        list.sort_unstable();
    }
    // (practice, 1m start s) -> [(seen ms, revision)]
    let mut seen: HashMap<(String, i64), Vec<(i64, u64)>> = HashMap::new();
    if let Some(path) = flags.opt("ch-seen") {
        for line in std::io::BufReader::new(std::fs::File::open(path)?).lines() {
            let line = line?;
            let cols: Vec<&str> = line.split('\t').collect();
            if let [p, s, r, at] = cols[..] {
                seen.entry((p.to_string(), s.parse::<i64>()? * 1000))
                    .or_default()
                    .push((at.parse()?, r.parse()?));
            }
        }
    }
    let watched: HashSet<&String> = seen.keys().map(|(p, _)| p).collect();
    let mut to_emission = Vec::new();
    let mut to_clickhouse = Vec::new();
    let mut missing = 0u64;
    let mut ch_missing = 0u64;
    let (mut first_pub, mut last_pub) = (i64::MAX, i64::MIN);
    let mut per_second: HashMap<i64, u64> = HashMap::new();
    let events = read_all(
        flags.get("events-topic")?,
        Some(expected),
        Duration::from_secs(10),
        |_, payload, ts| {
            let Ok(event) = avro::decode_call_event(payload) else {
                return;
            };
            first_pub = first_pub.min(ts);
            last_pub = last_pub.max(ts);
            *per_second.entry(ts / 1000).or_default() += 1;
            if matches!(event.kind, EventKind::Divert111On | EventKind::Divert111Off) {
                return; // practice-level switches do not change window counts
            }
            let start = event.at.0.div_euclid(60_000) * 60_000;
            let key = (event.practice, start);
            let Some(list) = emissions.get(&key) else {
                missing += 1;
                return;
            };
            let i = list.partition_point(|(t, _)| *t < ts);
            let Some(&(emitted, revision)) = list.get(i) else {
                missing += 1;
                return;
            };
            to_emission.push(emitted - ts);
            if watched.contains(&key.0) {
                match seen
                    .get(&key)
                    .and_then(|s| s.iter().find(|(_, r)| *r >= revision))
                {
                    Some(&(at, _)) => to_clickhouse.push(at - ts),
                    None => ch_missing += 1,
                }
            }
        },
    )?;
    let span = (last_pub - first_pub) as f64 / 1000.0;
    let busiest = per_second.values().copied().max().unwrap_or(0);
    let mut out = json!({
        "events": events,
        "window_records": metrics,
        "published_over_s": span,
        "published_per_s": events as f64 / span.max(0.001),
        "busiest_second": busiest,
        "to_first_emission": summary(to_emission),
        "without_emission": missing,
    });
    if !seen.is_empty() {
        out["watched_practices"] = json!(watched.len());
        out["to_clickhouse"] = summary(to_clickhouse);
        out["not_seen_in_clickhouse"] = json!(ch_missing);
    }
    println!("{out}");
    Ok(())
}

/// callpulse's 15-minute counts (the latest revision of each window on the
/// metrics topic) against the peer's (`--quix`: JSON lines with practice,
/// start (ms), offered, answered, abandoned).
fn compare(flags: &Flags) -> Result<()> {
    let mut ours: HashMap<(String, i64), (u64, [u64; 3])> = HashMap::new();
    read_all(
        flags.get("metrics-topic")?,
        None,
        Duration::from_secs(5),
        |_, payload, _| {
            if let Ok(w) = avro::decode_window_metrics(payload) {
                if w.window == WindowSize::FifteenMinutes {
                    let entry = ours.entry((w.practice, w.start.0)).or_default();
                    if w.revision >= entry.0 {
                        *entry = (w.revision, [w.offered, w.answered, w.abandoned]);
                    }
                }
            }
        },
    )?;
    let mut compared = 0u64;
    let mut differ = Vec::new();
    let mut absent = 0u64;
    let mut theirs_keys = HashSet::new();
    for line in std::io::BufReader::new(std::fs::File::open(flags.get("quix")?)?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let key = (
            v["practice"].as_str().unwrap_or_default().to_string(),
            v["start"].as_i64().unwrap_or_default(),
        );
        let theirs = [
            v["offered"].as_u64().unwrap_or(0),
            v["answered"].as_u64().unwrap_or(0),
            v["abandoned"].as_u64().unwrap_or(0),
        ];
        theirs_keys.insert(key.clone());
        match ours.get(&key) {
            Some((_, counts)) => {
                compared += 1;
                if *counts != theirs {
                    differ.push(json!({"practice": key.0, "start": key.1, "callpulse": counts, "quix": theirs}));
                }
            }
            None => absent += 1,
        }
    }
    // Windows only callpulse has with any of the three counts non-zero.
    let only_ours = ours
        .iter()
        .filter(|(k, (_, c))| !theirs_keys.contains(*k) && c.iter().any(|n| *n > 0))
        .count();
    let first: Vec<_> = differ.iter().take(5).cloned().collect();
    println!(
        "{}",
        json!({
            "windows_compared": compared,
            "windows_differing": differ.len(),
            "quix_windows_missing_in_callpulse": absent,
            "callpulse_windows_with_counts_not_in_quix": only_ours,
            "examples": first,
        })
    );
    Ok(())
}
