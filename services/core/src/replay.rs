//! `callpulse replay`: a file of canonical events (JSON lines) evaluated as
//! a whole ([`crate::batch`]: the engine's rules, each call derived once).
//! The whole input is in hand, so nothing is late and every window is final
//! at the end. The alert rules ([`crate::alert`]) see the same events, so
//! `--alerts` agrees with the metrics.

use std::io::BufRead;

use crate::alert::{Alert, AlertTracker};
use crate::batch::{finish_shards, shard_of, Batch};
use crate::calendar::CoreHours;
use crate::engine::EngineConfig;
use crate::event::CallEvent;
use crate::record::{CallSummary, WindowMetrics};

/// A line that was not a valid canonical event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ReplayOutput {
    /// Final windows, sorted by practice, window size and start.
    pub windows: Vec<WindowMetrics>,
    /// Final call summaries, sorted by practice, vendor and call id (empty
    /// unless [`ReplayOptions::call_summaries`]).
    pub calls: Vec<CallSummary>,
    /// Every state change of every alert, as of the latest event time in
    /// the input, ordered by `updated_at`, id and revision.
    pub alerts: Vec<Alert>,
    pub rejected: Vec<Rejected>,
    pub events: u64,
    pub duplicates: u64,
}

/// What a replay computes beyond the windows.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub core_hours: CoreHours,
    /// One summary per call (`--calls`): a few strings per call, so only
    /// when asked for.
    pub call_summaries: bool,
    /// The alert rules over the same events (`--alerts`).
    pub alerts: bool,
}

/// Replays JSON lines from `input`, with call summaries and alerts; only the engine's
/// core hours are used (every window is final at the end).
pub fn replay(input: impl BufRead, config: EngineConfig) -> std::io::Result<ReplayOutput> {
    replay_with(
        input,
        ReplayOptions {
            core_hours: config.core_hours,
            call_summaries: true,
            alerts: true,
        },
    )
}

/// Replays JSON lines from `input`.
///
/// Without alerts, lines are read in chunks and parsed on every core, each
/// chunk into per-practice shards that are joined in input order, and the
/// shards are evaluated in parallel: results are the same as one thread's
/// (they depend on the set of events only), and so are rejected lines'
/// numbers. The alert rules follow the input's order, so with alerts the
/// input is read on one thread.
pub fn replay_with(input: impl BufRead, options: ReplayOptions) -> std::io::Result<ReplayOutput> {
    if options.alerts {
        return replay_in_order(input, options);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    replay_in_chunks(input, options, threads, CHUNK_BYTES)
}

/// What one line of input is.
enum Line {
    Event,
    Blank,
    Rejected(String),
}

/// Reads one line (without its newline) into `event`.
fn read_line(line: &[u8], event: &mut CallEvent) -> Line {
    let text = match std::str::from_utf8(line) {
        Ok(text) => text.trim(),
        Err(_) => return Line::Rejected("not UTF-8".into()),
    };
    if text.is_empty() {
        return Line::Blank;
    }
    match event.read_json(text) {
        Ok(()) => Line::Event,
        Err(err) => Line::Rejected(err.to_string()),
    }
}

fn empty_event() -> CallEvent {
    CallEvent {
        event_id: String::new(),
        call_id: None,
        vendor: String::new(),
        practice: String::new(),
        kind: crate::event::EventKind::Offered,
        at: crate::time::Timestamp::default(),
        caller: None,
        queue_position: None,
    }
}

/// Bytes per chunk handed to a parsing thread.
const CHUNK_BYTES: usize = 1 << 20;

/// A chunk of whole lines, parsed into per-practice shards.
struct ParsedChunk {
    shards: Vec<Batch>,
    lines: u64,
    events: u64,
    /// Line numbers within the chunk, from 1.
    rejected: Vec<Rejected>,
}

fn parse_chunk(chunk: &[u8], options: &ReplayOptions, shards: usize) -> ParsedChunk {
    let mut parsed = ParsedChunk {
        shards: (0..shards)
            .map(|_| Batch::new(options.core_hours.clone()))
            .collect(),
        lines: 0,
        events: 0,
        rejected: Vec::new(),
    };
    let mut event = empty_event();
    if chunk.is_empty() {
        return parsed;
    }
    // "\n" alone is one blank line; a last line may lack its newline.
    let lines = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    for line in lines.split(|&b| b == b'\n') {
        parsed.lines += 1;
        match read_line(line, &mut event) {
            Line::Event => {
                parsed.events += 1;
                parsed.shards[shard_of(&event.practice, shards)].ingest(&event);
            }
            Line::Blank => {}
            Line::Rejected(reason) => parsed.rejected.push(Rejected {
                line: parsed.lines,
                reason,
            }),
        }
    }
    parsed
}

/// Reads the next chunk of whole lines (the last may lack its newline);
/// `carry` holds a partial line between calls. Empty at the end.
fn next_chunk(
    input: &mut impl BufRead,
    carry: &mut Vec<u8>,
    chunk_bytes: usize,
) -> std::io::Result<Vec<u8>> {
    let mut chunk = std::mem::take(carry);
    chunk.reserve(chunk_bytes + 4096);
    while chunk.len() < chunk_bytes {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(chunk);
        }
        let taken = available.len().min(chunk_bytes - chunk.len() + 1);
        chunk.extend_from_slice(&available[..taken]);
        input.consume(taken);
    }
    // Keep the partial last line for the next chunk; a line longer than a
    // chunk is read whole.
    match chunk.iter().rposition(|&b| b == b'\n') {
        Some(newline) => *carry = chunk.split_off(newline + 1),
        None => {
            input.read_until(b'\n', &mut chunk)?;
        }
    }
    Ok(chunk)
}

fn replay_in_chunks(
    mut input: impl BufRead,
    options: ReplayOptions,
    threads: usize,
    chunk_bytes: usize,
) -> std::io::Result<ReplayOutput> {
    use std::sync::mpsc;
    let shards = threads;
    let mut output = ReplayOutput::default();
    let mut batches: Vec<Batch> = (0..shards)
        .map(|_| Batch::new(options.core_hours.clone()))
        .collect();
    // Bounded queues: at most a few chunks in flight, so memory stays
    // bounded whatever the input's size.
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(threads);
    let work_rx = std::sync::Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, ParsedChunk)>(threads * 2);
    std::thread::scope(|scope| -> std::io::Result<()> {
        // Owned here, so that an early return (an I/O error) closes the
        // queues and the parsing threads stop.
        let (work_tx, done_rx) = (work_tx, done_rx);
        for _ in 0..threads {
            let (work_rx, done_tx, options) = (&work_rx, done_tx.clone(), &options);
            scope.spawn(move || loop {
                let next = work_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((sequence, chunk))) = next else {
                    return;
                };
                if done_tx
                    .send((sequence, parse_chunk(&chunk, options, shards)))
                    .is_err()
                {
                    return;
                }
            });
        }
        drop(done_tx);

        // Chunks are joined in input order, so line numbers count up.
        let mut waiting = std::collections::BTreeMap::new();
        let (mut sent, mut joined, mut lines_before) = (0u64, 0u64, 0u64);
        let mut join_ready = |waiting: &mut std::collections::BTreeMap<u64, ParsedChunk>,
                              joined: &mut u64| {
            while let Some(parsed) = waiting.remove(joined) {
                output.events += parsed.events;
                output
                    .rejected
                    .extend(parsed.rejected.into_iter().map(|rejected| Rejected {
                        line: lines_before + rejected.line,
                        ..rejected
                    }));
                lines_before += parsed.lines;
                for (batch, shard) in batches.iter_mut().zip(parsed.shards) {
                    batch.absorb(shard);
                }
                *joined += 1;
            }
        };
        let mut carry = Vec::new();
        loop {
            let chunk = next_chunk(&mut input, &mut carry, chunk_bytes)?;
            if chunk.is_empty() {
                break;
            }
            // Join what is parsed while waiting for room in the queue.
            let mut job = Some((sent, chunk));
            while let Some(item) = job.take() {
                match work_tx.try_send(item) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full(item)) => {
                        job = Some(item);
                        if let Ok((sequence, parsed)) = done_rx.recv() {
                            waiting.insert(sequence, parsed);
                            join_ready(&mut waiting, &mut joined);
                        }
                    }
                    Err(mpsc::TrySendError::Disconnected(_)) => {
                        return Err(std::io::Error::other("a parsing thread stopped"))
                    }
                }
            }
            sent += 1;
        }
        drop(work_tx);
        while joined < sent {
            let Ok((sequence, parsed)) = done_rx.recv() else {
                return Err(std::io::Error::other("a parsing thread stopped"));
            };
            waiting.insert(sequence, parsed);
            join_ready(&mut waiting, &mut joined);
        }
        Ok(())
    })?;

    let evaluated = finish_shards(batches, options.call_summaries);
    output.windows = evaluated.windows;
    output.calls = evaluated.calls;
    output.duplicates = evaluated.duplicates;
    Ok(output)
}

/// One thread, in input order: what the alert rules need.
fn replay_in_order(input: impl BufRead, options: ReplayOptions) -> std::io::Result<ReplayOutput> {
    let mut alerts = AlertTracker::new(options.core_hours.clone());
    // Rules 2 and 3 (thresholds, feed silence) with their default settings.
    let rules = std::sync::Arc::new(crate::thresholds::AlertRules::default());
    let icbs = std::sync::Arc::new(crate::thresholds::PracticeIcbs::default());
    let mut silence = crate::feed_silence::FeedSilence::new(
        rules.clone(),
        icbs.clone(),
        options.core_hours.clone(),
    );
    let core_hours = options.core_hours.clone();
    let mut batch = Batch::new(options.core_hours);
    let mut output = ReplayOutput::default();
    // One line buffer and one event, reused for every line.
    let mut input = input;
    let mut line = Vec::new();
    let mut event = empty_event();
    let mut number = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        number += 1;
        match read_line(&line, &mut event) {
            Line::Event => {
                output.events += 1;
                silence.observe(&event);
                alerts.observe(&event);
                batch.ingest(&event);
            }
            Line::Blank => {}
            Line::Rejected(reason) => output.rejected.push(Rejected {
                line: number,
                reason,
            }),
        }
    }
    let evaluated = batch.finish(options.call_summaries);
    output.windows = evaluated.windows;
    output.calls = evaluated.calls;
    output.duplicates = evaluated.duplicates;
    output.alerts = alerts.alerts();
    if let Some(horizon) = alerts.horizon() {
        let mut minutes: Vec<&WindowMetrics> = output
            .windows
            .iter()
            .filter(|w| w.window == crate::window::WindowSize::Minute)
            .collect();
        minutes.sort_by_key(|w| w.start);
        output.alerts.extend(crate::thresholds::threshold_alerts(
            minutes,
            rules,
            icbs,
            &core_hours,
            horizon,
        ));
        silence.advance_to(horizon);
        output.alerts.extend(silence.drain());
        output.alerts.sort_by(|a, b| {
            (a.updated_at, &a.id, a.revision).cmp(&(b.updated_at, &b.id, b.revision))
        });
    }
    debug_assert!(output.windows.windows(2).all(|pair| {
        (&pair[0].practice, pair[0].window, pair[0].start)
            < (&pair[1].practice, pair[1].window, pair[1].start)
    }));
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day of mixed calls for a few practices, with duplicates, blank
    /// and bad lines, and no newline at the very end.
    fn input() -> String {
        let mut lines = Vec::new();
        for call in 0..300 {
            let practice = format!("A8100{}", call % 7);
            let minute = call % 600;
            let at = |second: u32| {
                format!(
                    "2026-11-23T{:02}:{:02}:{:02}.{:03}Z",
                    8 + (minute + second / 60) / 60,
                    (minute + second / 60) % 60,
                    second % 60,
                    call % 1000
                )
            };
            let event = |id: &str, kind: &str, at: String| {
                format!(
                    r#"{{"event_id":"{call}-{id}","call_id":"c{call}","vendor":"generic","practice":"{practice}","kind":"{kind}","at":"{at}","caller":"p{}"}}"#,
                    call % 13
                )
            };
            lines.push(event("o", "offered", at(0)));
            lines.push(event("q", "queued", at(5)));
            let outcome =
                ["answered", "abandoned", "missed", "callback_requested"][call as usize % 4];
            lines.push(event("x", outcome, at(40 + call % 90)));
            if call % 5 == 0 {
                lines.push(event("x", outcome, at(40 + call % 90)));
            }
            if call % 17 == 0 {
                lines.push(String::new());
                lines.push("{not json".into());
            }
        }
        lines.join("\n")
    }

    fn options() -> ReplayOptions {
        ReplayOptions {
            core_hours: CoreHours::shipped(),
            call_summaries: true,
            alerts: false,
        }
    }

    #[test]
    fn chunks_on_many_threads_give_what_one_thread_gives() {
        let text = input();
        let in_order = replay_in_order(text.as_bytes(), options()).unwrap();
        assert!(in_order.duplicates > 0 && !in_order.rejected.is_empty());
        for (threads, chunk_bytes) in [(1, 1 << 20), (2, 64), (3, 1000), (4, 7)] {
            let chunked =
                replay_in_chunks(text.as_bytes(), options(), threads, chunk_bytes).unwrap();
            let context = format!("{threads} threads, chunks of {chunk_bytes} bytes");
            assert_eq!(chunked.windows, in_order.windows, "{context}");
            assert_eq!(chunked.calls, in_order.calls, "{context}");
            assert_eq!(chunked.rejected, in_order.rejected, "{context}");
            assert_eq!(chunked.events, in_order.events, "{context}");
            assert_eq!(chunked.duplicates, in_order.duplicates, "{context}");
        }
    }

    #[test]
    fn a_read_error_stops_the_threads_and_is_returned() {
        struct Failing(usize);
        impl std::io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk gone"));
                }
                self.0 -= 1;
                let line = b"{}\n";
                buf[..line.len()].copy_from_slice(line);
                Ok(line.len())
            }
        }
        let input = std::io::BufReader::new(Failing(100));
        let error = replay_in_chunks(input, options(), 2, 16).unwrap_err();
        assert_eq!(error.to_string(), "disk gone");
    }
}
