//! The batch evaluation (what `callpulse replay` runs per shard) of a file
//! of canonical events, on one thread: for profiling and instruction
//! counts. With `--parse-only`, stops after reading, so that the
//! evaluation's share can be told apart.
//! `cargo run --release -p callpulse-core --example batch_file -- EVENTS.jsonl`
use std::io::BufRead;

use callpulse_core::batch::Batch;
use callpulse_core::{CallEvent, CoreHours};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: batch_file EVENTS.jsonl [--parse-only]");
    let parse_only = args.next().as_deref() == Some("--parse-only");
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open"));
    let events: Vec<CallEvent> = file
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| CallEvent::from_json(&line).ok())
        .collect();
    if parse_only {
        println!("events {}", events.len());
        return;
    }
    let mut batch = Batch::new(CoreHours::shipped());
    for event in &events {
        batch.ingest(event);
    }
    let output = batch.finish(false);
    println!("events {} windows {}", events.len(), output.windows.len());
}
