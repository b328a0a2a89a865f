//! The contract evaluated over a whole input at once: what `callpulse
//! replay` uses.
//!
//! The streaming [`Engine`](crate::Engine) must keep every window right
//! after every event, so it re-derives a call on each of its events and
//! retracts what changed. With the whole input in hand none of that is
//! needed: events are grouped by call, each call is derived once by the
//! same [`derive`] the engine uses, and its contributions are added to
//! windows that only ever grow. Every window is final at the end.
//!
//! The results are the engine's, field for field, except `revision`: a
//! window is emitted once, and its revision counts the events that landed
//! in it. `tests/batch.rs` checks the two against each other on random
//! inputs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::calendar::{CoreDayCache, CoreHours};
use crate::call::{derive, outcome_slot, Contribution, HeldEvent, Placed, SummaryOf};
use crate::event::{CallEvent, EventKind};
use crate::practice::PracticeId;
use crate::record::{histogram_bucket, CallSummary, Histogram, WindowMetrics};
use crate::time::{Timestamp, MINUTE_MS};
use crate::window::{DayCache, WindowSize};

/// The id under which practice-level switches (`divert_111_on`/`off`) are
/// held, as in the engine: validation never lets a real call id be empty.
const PRACTICE_LEVEL_CALL_ID: &str = "";

/// What the whole input came to.
#[derive(Debug, Default)]
pub struct BatchOutput {
    /// Final windows, sorted by practice, window size and start.
    pub windows: Vec<WindowMetrics>,
    /// Final call summaries, sorted by practice, vendor and call id
    /// (empty unless asked for: they cost a string or three per call).
    pub calls: Vec<CallSummary>,
    /// Copies of an event id already held for the same call.
    pub duplicates: u64,
}

impl BatchOutput {
    /// Joins the outputs of batches that held different practices (see
    /// [`shard_of`]), keeping the order.
    pub fn merge(parts: Vec<BatchOutput>) -> BatchOutput {
        let mut merged = BatchOutput::default();
        for part in parts {
            merged.duplicates += part.duplicates;
            merged.windows.extend(part.windows);
            merged.calls.extend(part.calls);
        }
        // Each part is sorted and no key is in two parts.
        merged.windows.sort_by(|a, b| {
            (&a.practice, a.window, a.start).cmp(&(&b.practice, b.window, b.start))
        });
        merged.calls.sort_by(|a, b| {
            (&a.practice, &a.vendor, &a.call_id).cmp(&(&b.practice, &b.vendor, &b.call_id))
        });
        merged
    }
}

/// Which of `shards` batches holds `practice`: every window and call of a
/// practice is in one shard, so shards are evaluated independently.
pub fn shard_of(practice: &str, shards: usize) -> usize {
    debug_assert!(shards > 0);
    PracticeId::from_code(practice).map_or(0, |id| id.as_u32() as usize % shards)
}

/// One copy of an event; its strings live in [`Batch::text`].
#[derive(Debug, Clone, Copy)]
struct HeldCopy {
    call: u32,
    kind: EventKind,
    at: Timestamp,
    text_start: usize,
    id_len: u32,
    /// [`NO_CALLER`] when the caller is withheld.
    caller_len: u32,
    queue_position: Option<u32>,
}

const NO_CALLER: u32 = u32::MAX;

/// A held copy seen through [`HeldEvent`], its strings borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct CopyRef<'a> {
    // Field order as in `StoredEvent`: it decides which copy counts.
    event_id: &'a str,
    at: Timestamp,
    kind: EventKind,
    caller: Option<&'a str>,
    queue_position: Option<u32>,
}

impl HeldEvent for CopyRef<'_> {
    fn event_id(&self) -> &str {
        self.event_id
    }
    fn at(&self) -> Timestamp {
        self.at
    }
    fn kind(&self) -> EventKind {
        self.kind
    }
    fn caller(&self) -> Option<&str> {
        self.caller
    }
}

#[derive(Debug)]
struct HeldCall {
    practice: PracticeId,
    vendor: u16,
    practice_level: bool,
    /// The next call with the same call id (another practice or vendor),
    /// or [`NO_CALL`].
    next_same_id: u32,
    events: u32,
}

const NO_CALL: u32 = u32::MAX;

/// A duration's count, sum, maximum and histogram.
#[derive(Debug, Default, Clone, Copy)]
struct Durations {
    count: u64,
    sum: u64,
    max: u64,
    hist: Histogram,
}

impl Durations {
    fn add(&mut self, ms: u64) {
        self.count += 1;
        self.sum = self.sum.saturating_add(ms);
        self.max = self.max.max(ms);
        self.hist[histogram_bucket(ms)] += 1;
    }
}

/// Which window a [`WindowTotals`] belongs to.
#[derive(Debug, Clone, Copy)]
struct WindowPlace {
    practice: PracticeId,
    size: WindowSize,
    start: Timestamp,
    end: Timestamp,
}

#[derive(Debug, Default)]
struct WindowTotals {
    events: u64,
    duplicates: u64,
    conflicts: u64,
    offered: u64,
    outcomes: [u64; 6],
    diverted_111_core: u64,
    callbacks_made: u64,
    unique_callers: u64,
    callback_delays: Durations,
    waits: Durations,
    abandons: Durations,
    talks: Durations,
}

/// Collects validated events, then evaluates them all in [`Batch::finish`].
pub struct Batch {
    core_hours: CoreHours,
    /// Event ids and callers of every copy, back to back: one allocation
    /// for the whole input instead of two per event.
    text: String,
    copies: Vec<HeldCopy>,
    calls: Vec<HeldCall>,
    /// First call holding each call id; the rest are chained.
    call_ids: FxHashMap<Box<str>, u32>,
    vendors: Vec<Box<str>>,
}

impl Batch {
    pub fn new(core_hours: CoreHours) -> Self {
        Batch {
            core_hours,
            text: String::new(),
            copies: Vec::new(),
            calls: Vec::new(),
            call_ids: FxHashMap::default(),
            vendors: Vec::new(),
        }
    }

    /// Takes one validated event (see [`CallEvent::validate`]).
    pub fn ingest(&mut self, event: &CallEvent) {
        debug_assert!(event.validate().is_ok(), "ingest takes validated events");
        let Some(practice) = PracticeId::from_code(&event.practice) else {
            debug_assert!(false, "validated events have practice codes");
            return;
        };
        let vendor = self.vendor_id(&event.vendor);
        let practice_level = event.kind.is_practice_level();
        let call_id = match (&event.call_id, practice_level) {
            (Some(call_id), false) => call_id.as_str(),
            _ => PRACTICE_LEVEL_CALL_ID,
        };
        let call = self.call_index(practice, vendor, call_id, practice_level);
        self.calls[call as usize].events += 1;

        let text_start = self.text.len();
        self.text.push_str(&event.event_id);
        let caller_len = match &event.caller {
            Some(caller) => {
                self.text.push_str(caller);
                caller.len() as u32
            }
            None => NO_CALLER,
        };
        self.copies.push(HeldCopy {
            call,
            kind: event.kind,
            at: event.at,
            text_start,
            id_len: event.event_id.len() as u32,
            caller_len,
            queue_position: event.queue_position,
        });
    }

    /// How many events have been taken.
    pub fn len(&self) -> usize {
        self.copies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    /// Takes every event of `other` (e.g. one chunk of an input read by
    /// another thread), as if each had been ingested here.
    pub fn absorb(&mut self, other: Batch) {
        let vendors: Vec<u16> = other
            .vendors
            .iter()
            .map(|vendor| self.vendor_id(vendor))
            .collect();
        let mut calls = vec![NO_CALL; other.calls.len()];
        for (call_id, &first) in &other.call_ids {
            let mut index = first;
            while index != NO_CALL {
                let call = &other.calls[index as usize];
                let mine = self.call_index(
                    call.practice,
                    vendors[usize::from(call.vendor)],
                    call_id,
                    call.practice_level,
                );
                self.calls[mine as usize].events += call.events;
                calls[index as usize] = mine;
                index = call.next_same_id;
            }
        }
        let text_base = self.text.len();
        self.text.push_str(&other.text);
        self.copies.extend(other.copies.iter().map(|copy| HeldCopy {
            call: calls[copy.call as usize],
            text_start: copy.text_start + text_base,
            ..*copy
        }));
    }

    fn vendor_id(&mut self, vendor: &str) -> u16 {
        if let Some(index) = self.vendors.iter().position(|known| &**known == vendor) {
            return index as u16;
        }
        debug_assert!(self.vendors.len() < usize::from(u16::MAX));
        self.vendors.push(vendor.into());
        (self.vendors.len() - 1) as u16
    }

    fn call_index(
        &mut self,
        practice: PracticeId,
        vendor: u16,
        call_id: &str,
        practice_level: bool,
    ) -> u32 {
        let first = self.call_ids.get(call_id).copied();
        let mut index = first.unwrap_or(NO_CALL);
        while index != NO_CALL {
            let call = &self.calls[index as usize];
            if call.practice == practice && call.vendor == vendor {
                return index;
            }
            index = call.next_same_id;
        }
        let new = u32::try_from(self.calls.len()).expect("fewer than 4 billion calls");
        self.calls.push(HeldCall {
            practice,
            vendor,
            practice_level,
            next_same_id: first.unwrap_or(NO_CALL),
            events: 0,
        });
        match first {
            Some(_) => *self.call_ids.get_mut(call_id).expect("found above") = new,
            None => {
                self.call_ids.insert(call_id.into(), new);
            }
        }
        new
    }

    fn copy_ref(&self, copy: &HeldCopy) -> CopyRef<'_> {
        let id_end = copy.text_start + copy.id_len as usize;
        CopyRef {
            event_id: &self.text[copy.text_start..id_end],
            at: copy.at,
            kind: copy.kind,
            caller: (copy.caller_len != NO_CALLER)
                .then(|| &self.text[id_end..id_end + copy.caller_len as usize]),
            queue_position: copy.queue_position,
        }
    }

    /// Evaluates every call and window. With `with_calls`, call summaries too.
    pub fn finish(self, with_calls: bool) -> BatchOutput {
        let mut output = BatchOutput::default();
        // Copies grouped by call (a counting sort: calls are numbered).
        let mut call_starts = Vec::with_capacity(self.calls.len() + 1);
        let mut total = 0u32;
        for call in &self.calls {
            call_starts.push(total);
            total += call.events;
        }
        call_starts.push(total);
        let mut fill = call_starts.clone();
        let mut by_call = vec![0u32; self.copies.len()];
        for (index, copy) in self.copies.iter().enumerate() {
            let slot = &mut fill[copy.call as usize];
            by_call[*slot as usize] = index as u32;
            *slot += 1;
        }

        let mut windows = WindowStore::default();
        let mut waiting: Vec<(PracticeId, Timestamp, Timestamp)> = Vec::new();
        // A caller lands in at most four windows per offered call.
        let mut callers =
            FxHashSet::with_capacity_and_hasher(self.copies.len(), Default::default());
        let mut core_days = CoreDayCache::default();
        let mut held: Vec<CopyRef<'_>> = Vec::new();
        let mut placed: Vec<Placed> = Vec::new();
        let mut call_id_of: Vec<&str> = Vec::new();
        if with_calls {
            call_id_of = vec![PRACTICE_LEVEL_CALL_ID; self.calls.len()];
            for (id, &first) in &self.call_ids {
                let mut index = first;
                while index != NO_CALL {
                    call_id_of[index as usize] = id;
                    index = self.calls[index as usize].next_same_id;
                }
            }
        }

        // A practice's calls one after another: its windows stay in cache.
        let mut by_practice: Vec<(u32, u32)> = (0..self.calls.len() as u32)
            .map(|index| (self.calls[index as usize].practice.as_u32(), index))
            .collect();
        by_practice.sort_unstable();
        for (_, index) in by_practice {
            let (index, call) = (index as usize, &self.calls[index as usize]);
            let range = call_starts[index] as usize..call_starts[index + 1] as usize;
            held.clear();
            held.extend(
                by_call[range]
                    .iter()
                    .map(|&copy| self.copy_ref(&self.copies[copy as usize])),
            );
            held.sort_unstable();
            let facts = derive(
                &held,
                call.practice_level,
                |at| core_days.is_core(&self.core_hours, at),
                &mut placed,
            );
            output.duplicates += facts.duplicates;
            for at_one_instant in placed.chunk_by(|a, b| a.0 == b.0) {
                windows.add(call.practice, at_one_instant, &mut waiting, &mut callers);
            }
            if with_calls && !call.practice_level {
                output.calls.push(facts.summary(SummaryOf {
                    practice: call.practice.to_code(),
                    vendor: self.vendors[usize::from(call.vendor)].to_string(),
                    call_id: call_id_of[index].to_string(),
                    revision: u64::from(call.events),
                    is_final: true,
                    events: u64::from(call.events),
                }));
            }
        }
        output.windows = windows.into_records(waiting);
        output.calls.sort_unstable_by(|a, b| {
            (&a.practice, &a.vendor, &a.call_id).cmp(&(&b.practice, &b.vendor, &b.call_id))
        });
        output
    }
}

/// A window's identity in one number, ordered as practice, size, start:
/// practice ids take 22 bits, and every window starts on a whole minute
/// (London midnight is a whole hour in UTC).
fn window_key(practice: PracticeId, size: WindowSize, start: Timestamp) -> u64 {
    debug_assert_eq!(start.0 % MINUTE_MS, 0, "windows start on a minute");
    debug_assert!(start.0 >= 0 && start.0 / MINUTE_MS < 1 << 30);
    (u64::from(practice.as_u32()) << 32)
        | ((size.index() as u64) << 30)
        | (start.0 / MINUTE_MS) as u64
}

/// A vector in fixed chunks: window totals are large, and growing one
/// vector would copy all of them at every doubling.
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

const CHUNK: usize = 4096;

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, value: T) {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk").push(value);
        self.len += 1;
    }

    fn get(&self, index: u32) -> &T {
        &self.chunks[index as usize / CHUNK][index as usize % CHUNK]
    }

    fn get_mut(&mut self, index: u32) -> &mut T {
        &mut self.chunks[index as usize / CHUNK][index as usize % CHUNK]
    }
}

/// Windows that only grow, found by key.
#[derive(Default)]
struct WindowStore {
    index: FxHashMap<u64, u32>,
    places: Vec<WindowPlace>,
    totals: Chunked<WindowTotals>,
    /// Per window size, the last window found: key, end and slot (at
    /// first an end of 1970, before any valid event).
    last: [(u64, Timestamp, u32); 4],
    day_cache: DayCache,
}

impl WindowStore {
    /// Adds a call's contributions at one instant to the windows holding it.
    fn add(
        &mut self,
        practice: PracticeId,
        at_one_instant: &[Placed],
        waiting: &mut Vec<(PracticeId, Timestamp, Timestamp)>,
        callers: &mut FxHashSet<(u32, u64)>,
    ) {
        let Some(&(at, _)) = at_one_instant.first() else {
            return;
        };
        let mut points = at_one_instant
            .iter()
            .filter(|(_, c)| is_point(c))
            .peekable();
        if points.peek().is_some() {
            let mut slots = [0u32; 4];
            for size in WindowSize::ALL {
                slots[size.index()] = self.slot(practice, size, at);
            }
            for &(_, contribution) in points {
                for &slot in &slots {
                    add_point(self.totals.get_mut(slot), slot, contribution, callers);
                }
            }
        }
        for &(_, contribution) in at_one_instant {
            // With the whole input in hand, a call with no outcome was not
            // waiting (§3): `OpenWaitFrom` counts for nothing here.
            if let Contribution::WaitingUntil(until) = contribution {
                waiting.push((practice, at, until));
            }
        }
    }

    fn slot(&mut self, practice: PracticeId, size: WindowSize, at: Timestamp) -> u32 {
        // A call's instants mostly share their hour and day: the last
        // window of each size is looked up without hashing.
        let (last_key, last_end, last_slot) = self.last[size.index()];
        if last_key >> 32 == u64::from(practice.as_u32())
            && at < last_end
            && at.0 >= ((last_key & ((1 << 30) - 1)) as i64) * MINUTE_MS
        {
            return last_slot;
        }
        let (start, end) = self.day_cache.bounds(size, at);
        let key = window_key(practice, size, start);
        let next = self.totals.len() as u32;
        let slot = *self.index.entry(key).or_insert(next);
        self.last[size.index()] = (key, end, slot);
        if slot == next {
            self.places.push(WindowPlace {
                practice,
                size,
                start,
                end,
            });
            self.totals.push(WindowTotals::default());
        }
        slot
    }

    /// The final records, with `unique_callers` and `peak_waiting`, which
    /// need every call of the window at once.
    fn into_records(
        self,
        mut waiting: Vec<(PracticeId, Timestamp, Timestamp)>,
    ) -> Vec<WindowMetrics> {
        // Practice ids order as their codes do.
        let mut order: Vec<(u64, u32)> = self.index.into_iter().collect();
        order.sort_unstable();
        waiting.sort_unstable();

        let mut records = Vec::with_capacity(order.len());
        let mut steps: Vec<(Timestamp, u64)> = Vec::new();
        let mut ends = BinaryHeap::new();
        let mut steps_of: Option<PracticeId> = None;
        let mut waiting_rest = &waiting[..];
        let mut code = String::new();
        for (_, slot) in order {
            let (place, totals) = (&self.places[slot as usize], self.totals.get(slot));
            if steps_of != Some(place.practice) {
                // Waiting intervals are sorted by practice, as windows are.
                while waiting_rest
                    .first()
                    .is_some_and(|&(practice, _, _)| practice < place.practice)
                {
                    waiting_rest = &waiting_rest[1..];
                }
                let count = waiting_rest
                    .iter()
                    .take_while(|&&(practice, _, _)| practice == place.practice)
                    .count();
                let (mine, rest) = waiting_rest.split_at(count);
                waiting_rest = rest;
                waiting_steps(mine, &mut ends, &mut steps);
                steps_of = Some(place.practice);
                code = place.practice.to_code();
            }
            records.push(WindowMetrics {
                practice: code.clone(),
                window: place.size,
                start: place.start,
                end: place.end,
                revision: totals.events,
                is_final: true,
                offered: totals.offered,
                answered: totals.outcomes[0],
                callback_requested: totals.outcomes[1],
                abandoned: totals.outcomes[2],
                missed: totals.outcomes[3],
                ivr_ended: totals.outcomes[4],
                diverted_111: totals.outcomes[5],
                diverted_111_core: totals.diverted_111_core,
                callbacks_made: totals.callbacks_made,
                unique_callers: totals.unique_callers,
                peak_waiting: peak_in(&steps, place.start, place.end),
                wait_count: totals.waits.count,
                wait_ms_sum: totals.waits.sum,
                wait_ms_max: totals.waits.max,
                wait_hist: totals.waits.hist,
                abandon_count: totals.abandons.count,
                abandon_ms_sum: totals.abandons.sum,
                abandon_ms_max: totals.abandons.max,
                abandon_hist: totals.abandons.hist,
                talk_count: totals.talks.count,
                talk_ms_sum: totals.talks.sum,
                talk_ms_max: totals.talks.max,
                talk_hist: totals.talks.hist,
                callback_delay_count: totals.callback_delays.count,
                callback_delay_ms_sum: totals.callback_delays.sum,
                dq_duplicates: totals.duplicates,
                dq_conflicts: totals.conflicts,
            });
        }
        records
    }
}

fn is_point(contribution: &Contribution) -> bool {
    !matches!(
        contribution,
        Contribution::WaitingUntil(_) | Contribution::OpenWaitFrom
    )
}

fn add_point(
    totals: &mut WindowTotals,
    slot: u32,
    contribution: Contribution,
    callers: &mut FxHashSet<(u32, u64)>,
) {
    match contribution {
        Contribution::Landed => totals.events += 1,
        Contribution::Duplicate => totals.duplicates += 1,
        Contribution::Conflict => totals.conflicts += 1,
        Contribution::Offered { caller } => {
            totals.offered += 1;
            if let Some(digest) = caller {
                if callers.insert((slot, digest)) {
                    totals.unique_callers += 1;
                }
            }
        }
        Contribution::Outcome {
            kind,
            in_core_hours,
        } => {
            totals.outcomes[outcome_slot(kind)] += 1;
            if in_core_hours {
                totals.diverted_111_core += 1;
            }
        }
        Contribution::WaitMs(ms) => totals.waits.add(ms),
        Contribution::AbandonMs(ms) => totals.abandons.add(ms),
        Contribution::TalkMs(ms) => totals.talks.add(ms),
        Contribution::CallbackMade => totals.callbacks_made += 1,
        Contribution::CallbackDelayMs(ms) => totals.callback_delays.add(ms),
        Contribution::WaitingUntil(_) | Contribution::OpenWaitFrom => {
            unreachable!("waits are not points")
        }
    }
}

/// How many calls of one practice wait from each instant where that
/// number changes: `(instant, calls waiting from it on)`, in time order.
/// `intervals` are sorted by start; ends wait in a heap (a practice has
/// few calls waiting at once), so nothing else needs sorting.
fn waiting_steps(
    intervals: &[(PracticeId, Timestamp, Timestamp)],
    ends: &mut BinaryHeap<Reverse<Timestamp>>,
    steps: &mut Vec<(Timestamp, u64)>,
) {
    debug_assert!(intervals.windows(2).all(|pair| pair[0].1 <= pair[1].1));
    ends.clear();
    steps.clear();
    // At one instant ends come before starts (an end is exclusive), and
    // the step keeps the count after both.
    let mut step = |at: Timestamp, waiting: usize| match steps.last_mut() {
        Some(last) if last.0 == at => last.1 = waiting as u64,
        _ => steps.push((at, waiting as u64)),
    };
    for &(_, from, until) in intervals {
        debug_assert!(from < until, "empty waits are not placed");
        while let Some(&Reverse(end)) = ends.peek() {
            if end > from {
                break;
            }
            ends.pop();
            step(end, ends.len());
        }
        ends.push(Reverse(until));
        step(from, ends.len());
    }
    while let Some(Reverse(end)) = ends.pop() {
        step(end, ends.len());
    }
}

/// The largest number of calls waiting at one instant of `[start, end)`:
/// the number waiting at `start`, or after any change inside the window.
fn peak_in(steps: &[(Timestamp, u64)], start: Timestamp, end: Timestamp) -> u64 {
    let first_after_start = steps.partition_point(|&(at, _)| at <= start);
    let at_start = match first_after_start {
        0 => 0,
        n => steps[n - 1].1,
    };
    steps[first_after_start..]
        .iter()
        .take_while(|&&(at, _)| at < end)
        .map(|&(_, waiting)| waiting)
        .fold(at_start, u64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + seconds * 1000)
    }

    #[test]
    fn peak_counts_the_start_instant_and_changes_inside_only() {
        let practice = PracticeId::from_code("A81001").unwrap();
        let intervals = [
            (practice, ts(0), ts(10)),
            (practice, ts(5), ts(15)),
            (practice, ts(10), ts(20)),
        ];
        let (mut ends, mut steps) = (BinaryHeap::new(), Vec::new());
        waiting_steps(&intervals, &mut ends, &mut steps);
        assert_eq!(peak_in(&steps, ts(0), ts(60)), 2);
        assert_eq!(peak_in(&steps, ts(11), ts(60)), 2);
        assert_eq!(peak_in(&steps, ts(16), ts(60)), 1);
        assert_eq!(peak_in(&steps, ts(20), ts(60)), 0);
        assert_eq!(peak_in(&steps, ts(-10), ts(0)), 0, "the end is exclusive");
        assert_eq!(peak_in(&steps, ts(-10), ts(1)), 1);
    }
}
