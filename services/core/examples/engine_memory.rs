//! Resident memory of the streaming engine holding every call of a file
//! (default settings: calls kept 36 hours, so all are held at the end).
//! `cargo run --release -p callpulse-core --example engine_memory -- EVENTS.jsonl`
use std::io::BufRead;

use callpulse_core::{CallEvent, Engine, EngineConfig};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: engine_memory EVENTS.jsonl");
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open"));
    let events: Vec<CallEvent> = file
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| CallEvent::from_json(&line).ok())
        .collect();
    let before = rss_kib();
    let mut engine = Engine::new(EngineConfig::default());
    for event in &events {
        engine.ingest(event);
        engine.drain(false);
    }
    let after = rss_kib();
    let stats = engine.stats();
    println!(
        "events {} open_calls {} rss_before_kib {} rss_after_kib {} bytes_per_call {}",
        events.len(),
        stats.open_calls,
        before,
        after,
        (after - before) * 1024 / stats.open_calls.max(1)
    );
}
