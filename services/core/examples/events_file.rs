//! The core on a file of canonical events (JSON lines), on one thread, for
//! measurements (docs/benchmarks.md):
//!
//! - `memory FILE`: resident memory of the streaming engine holding every
//!   call of the file (default settings: calls kept 36 hours, so all are
//!   held at the end), per held call;
//! - `batch FILE`: the batch evaluation replay runs per shard, for
//!   profiling and instruction counts;
//! - `parse FILE`: only the reading, so that the others' share can be told
//!   apart.
//!
//! `cargo run --release -p callpulse-core --example events_file -- memory EVENTS.jsonl`
use std::io::BufRead;

use callpulse_core::batch::Batch;
use callpulse_core::{CallEvent, CoreHours, Engine, EngineConfig};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let usage = "usage: events_file memory|batch|parse EVENTS.jsonl";
    let mut args = std::env::args().skip(1);
    let mode = args.next().expect(usage);
    let path = args.next().expect(usage);
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open"));
    let events: Vec<CallEvent> = file
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| CallEvent::from_json(&line).ok())
        .collect();
    match mode.as_str() {
        "parse" => println!("events {}", events.len()),
        "batch" => {
            let mut batch = Batch::new(CoreHours::shipped());
            for event in &events {
                batch.ingest(event);
            }
            let output = batch.finish(false);
            println!("events {} windows {}", events.len(), output.windows.len());
        }
        "memory" => {
            let before = rss_kib();
            let mut engine = Engine::new(EngineConfig::default());
            for event in &events {
                engine.ingest(event);
                engine.drain(false);
            }
            let after = rss_kib();
            let calls = engine.stats().open_calls;
            println!(
                "events {} open_calls {calls} rss_before_kib {before} rss_after_kib {after} bytes_per_call {}",
                events.len(),
                (after - before) * 1024 / calls.max(1)
            );
        }
        other => panic!("{usage} (not {other})"),
    }
}
