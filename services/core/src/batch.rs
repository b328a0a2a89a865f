//! The contract evaluated over a whole input at once: what `callpulse
//! replay` uses.
//!
//! The streaming [`Engine`](crate::Engine) must keep every window right
//! after every event, so it re-derives a call on each of its events and
//! retracts what changed. With the whole input in hand none of that is
//! needed: events are grouped by call, each call is derived once as the
//! engine derives it ([`derive_unordered`] is [`derive`] without the
//! sorting), and its contributions are added to windows that only ever
//! grow. Practices are evaluated one after another, so only one
//! practice's windows are open at a time, and contributions go to minute
//! windows only: the longer windows are sums of their minutes. Every
//! window is final at the end.
//!
//! [`derive`]: crate::call::derive
//!
//! Practice by practice is exact when each call's events name one practice
//! and each event id is on one call. The practices where that fails (a call
//! or an event id across practices, [`entangled_practices`]) are evaluated
//! by the engine instead ([`finish_entangled`]).
//!
//! The results are the engine's, field for field, except `revision`: a
//! window is emitted once, and its revision counts the events that landed
//! in it. `tests/batch.rs` checks the two against each other on random
//! inputs.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::BinaryHeap;
use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use crate::calendar::{CoreDayCache, CoreHours};
use crate::call::{
    derive_unordered, event_id_hash, outcome_slot, Contribution, HeldEvent, Placed, SummaryOf,
};
use crate::engine::{Engine, EngineConfig};
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
    /// Copies of an event id beyond the one that counts.
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
    /// [`event_id_hash`] of the event id: for finding it on other calls.
    id_hash: u64,
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
    practice: PracticeId,
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
    fn practice(&self) -> PracticeId {
        self.practice
    }
}

#[derive(Debug)]
struct HeldCall {
    practice: PracticeId,
    vendor: u16,
    practice_level: bool,
    /// Where the call id is in [`Batch::text`].
    id_start: usize,
    id_len: u32,
    /// The next call whose key has the same hash (see [`call_key_hash`]),
    /// or [`NO_CALL`].
    next_same_hash: u32,
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

    fn add_all(&mut self, other: &Durations) {
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
        for (mine, theirs) in self.hist.iter_mut().zip(&other.hist) {
            *mine += theirs;
        }
    }
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

impl WindowTotals {
    /// Adds the totals of a window nested in this one, except
    /// `unique_callers`, which do not add up.
    fn add_nested(&mut self, nested: &WindowTotals) {
        debug_assert_eq!(nested.unique_callers, 0, "counted after summing");
        self.events += nested.events;
        self.duplicates += nested.duplicates;
        self.conflicts += nested.conflicts;
        self.offered += nested.offered;
        for (mine, theirs) in self.outcomes.iter_mut().zip(&nested.outcomes) {
            *mine += theirs;
        }
        self.diverted_111_core += nested.diverted_111_core;
        self.callbacks_made += nested.callbacks_made;
        self.callback_delays.add_all(&nested.callback_delays);
        self.waits.add_all(&nested.waits);
        self.abandons.add_all(&nested.abandons);
        self.talks.add_all(&nested.talks);
    }
}

/// Collects validated events, then evaluates them all in [`Batch::finish`].
pub struct Batch {
    core_hours: CoreHours,
    /// Event ids and callers of every copy, and call ids of every call,
    /// back to back: one allocation for the whole input instead of two
    /// per event and one per call.
    text: String,
    copies: Vec<HeldCopy>,
    calls: Vec<HeldCall>,
    /// First call by the hash of its key (practice, vendor, call id); calls
    /// whose keys hash alike are chained, and told apart by comparing keys.
    calls_by_hash: FxHashMap<u64, u32>,
    vendors: Vec<Box<str>>,
    /// The vendor of the previous event: an input rarely mixes many.
    last_vendor: Option<u16>,
}

impl Batch {
    pub fn new(core_hours: CoreHours) -> Self {
        Batch {
            core_hours,
            text: String::new(),
            copies: Vec::new(),
            calls: Vec::new(),
            calls_by_hash: FxHashMap::default(),
            vendors: Vec::new(),
            last_vendor: None,
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
            id_hash: event_id_hash(&event.event_id),
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
        let calls: Vec<u32> = other
            .calls
            .iter()
            .map(|call| {
                let mine = self.call_index(
                    call.practice,
                    vendors[usize::from(call.vendor)],
                    other.call_id(call),
                    call.practice_level,
                );
                self.calls[mine as usize].events += call.events;
                mine
            })
            .collect();
        // After `call_index`, which adds the call ids of new calls.
        let text_base = self.text.len();
        self.text.push_str(&other.text);
        self.copies.extend(other.copies.iter().map(|copy| HeldCopy {
            call: calls[copy.call as usize],
            text_start: copy.text_start + text_base,
            ..*copy
        }));
    }

    #[inline]
    fn vendor_id(&mut self, vendor: &str) -> u16 {
        match self.last_vendor {
            Some(last) if &*self.vendors[usize::from(last)] == vendor => last,
            _ => self.other_vendor_id(vendor),
        }
    }

    #[cold]
    fn other_vendor_id(&mut self, vendor: &str) -> u16 {
        let index = match self.vendors.iter().position(|known| &**known == vendor) {
            Some(index) => index as u16,
            None => {
                debug_assert!(self.vendors.len() < usize::from(u16::MAX));
                self.vendors.push(vendor.into());
                (self.vendors.len() - 1) as u16
            }
        };
        self.last_vendor = Some(index);
        index
    }

    fn call_id(&self, call: &HeldCall) -> &str {
        &self.text[call.id_start..call.id_start + call.id_len as usize]
    }

    /// The call with this key, added if it is new.
    fn call_index(
        &mut self,
        practice: PracticeId,
        vendor: u16,
        call_id: &str,
        practice_level: bool,
    ) -> u32 {
        let new = u32::try_from(self.calls.len()).expect("fewer than 4 billion calls");
        let next_same_hash = match self
            .calls_by_hash
            .entry(call_key_hash(practice, vendor, call_id))
        {
            Entry::Vacant(entry) => {
                entry.insert(new);
                NO_CALL
            }
            Entry::Occupied(mut entry) => {
                let first = *entry.get();
                let mut index = first;
                while index != NO_CALL {
                    let call = &self.calls[index as usize];
                    let id = &self.text.as_bytes()[call.id_start..][..call.id_len as usize];
                    if call.practice == practice
                        && call.vendor == vendor
                        && id == call_id.as_bytes()
                    {
                        return index;
                    }
                    index = call.next_same_hash;
                }
                entry.insert(new);
                first
            }
        };
        let id_start = self.text.len();
        self.text.push_str(call_id);
        self.calls.push(HeldCall {
            practice,
            vendor,
            practice_level,
            id_start,
            id_len: call_id.len() as u32,
            next_same_hash,
            events: 0,
        });
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
            practice: self.calls[copy.call as usize].practice,
            queue_position: copy.queue_position,
        }
    }

    /// The held copies of the `practices` as events again, in the order
    /// they were taken.
    fn events_of<'a>(
        &'a self,
        practices: &'a FxHashSet<PracticeId>,
    ) -> impl Iterator<Item = (PracticeId, CallEvent)> + 'a {
        self.copies.iter().filter_map(|copy| {
            let call = &self.calls[copy.call as usize];
            if !practices.contains(&call.practice) {
                return None;
            }
            let held = self.copy_ref(copy);
            Some((
                call.practice,
                CallEvent {
                    event_id: held.event_id.to_string(),
                    call_id: (!call.practice_level).then(|| self.call_id(call).to_string()),
                    vendor: self.vendors[usize::from(call.vendor)].to_string(),
                    practice: call.practice.to_code(),
                    kind: held.kind,
                    at: held.at,
                    caller: held.caller.map(str::to_string),
                    queue_position: held.queue_position,
                },
            ))
        })
    }

    /// Evaluates every call and window. With `with_calls`, call summaries too.
    pub fn finish(self, with_calls: bool) -> BatchOutput {
        finish_shards(vec![self], with_calls)
    }

    /// Evaluates practice by practice, except the practices in `skip`
    /// (see [`entangled_practices`]: every call and event id of the others
    /// is within one practice).
    fn finish_practices(self, with_calls: bool, skip: &FxHashSet<PracticeId>) -> BatchOutput {
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

        let mut windows = PracticeWindows::default();
        let mut core_days = CoreDayCache::default();
        let mut held: Vec<CopyRef<'_>> = Vec::new();
        let mut placed: Vec<Placed> = Vec::new();

        // One practice after another, in the order of their codes (ids
        // order as codes do): a practice's windows are complete once its
        // calls are in, so they are emitted then and their totals reused.
        // Practice and call index in one number sort faster than as a pair.
        let mut by_practice: Vec<u64> = self
            .calls
            .iter()
            .enumerate()
            .map(|(index, call)| u64::from(call.practice.as_u32()) << 32 | index as u64)
            .collect();
        by_practice.sort_unstable();
        for calls_of_practice in by_practice.chunk_by(|a, b| a >> 32 == b >> 32) {
            let practice = self.calls[calls_of_practice[0] as u32 as usize].practice;
            if skip.contains(&practice) {
                continue;
            }
            windows.clear();
            for &key in calls_of_practice {
                let index = key as u32 as usize;
                let call = &self.calls[index];
                debug_assert_eq!(call.practice, practice);
                let range = call_starts[index] as usize..call_starts[index + 1] as usize;
                held.clear();
                held.extend(
                    by_call[range]
                        .iter()
                        .map(|&copy| self.copy_ref(&self.copies[copy as usize])),
                );
                held.sort_unstable();
                let facts = derive_unordered(
                    &held,
                    call.practice_level,
                    &[],
                    |at| core_days.is_core(&self.core_hours, at),
                    &mut placed,
                );
                output.duplicates += facts.duplicates;
                windows.add_call(&placed);
                if with_calls && !call.practice_level {
                    output.calls.push(facts.summary(SummaryOf {
                        practice: call.practice.to_code(),
                        vendor: self.vendors[usize::from(call.vendor)].to_string(),
                        call_id: self.call_id(call).to_string(),
                        revision: u64::from(call.events),
                        is_final: true,
                        events: u64::from(call.events),
                    }));
                }
            }
            windows.emit(practice, &mut output.windows);
        }
        output.calls.sort_unstable_by(|a, b| {
            (&a.practice, &a.vendor, &a.call_id).cmp(&(&b.practice, &b.vendor, &b.call_id))
        });
        output
    }
}

/// The hash under which a call is found: of its whole key, so that calls
/// of different practices or vendors sharing a call id are rarely chained.
fn call_key_hash(practice: PracticeId, vendor: u16, call_id: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write_u32(practice.as_u32());
    hasher.write_u16(vendor);
    hasher.write(call_id.as_bytes());
    hasher.finish()
}

/// Evaluates batches that hold different practices (see [`shard_of`]),
/// each on a thread of its own when there are several, and together the
/// practices a call or an event id joins across them (see
/// [`entangled_practices`]).
pub fn finish_shards(batches: Vec<Batch>, with_calls: bool) -> BatchOutput {
    let tangled = entangled_practices(&batches);
    let mut parts = Vec::new();
    if !tangled.is_empty() {
        parts.push(finish_entangled(&batches, &tangled, with_calls));
    }
    let tangled = &tangled;
    if batches.len() == 1 {
        parts.extend(
            batches
                .into_iter()
                .map(|batch| batch.finish_practices(with_calls, tangled)),
        );
    } else {
        parts.extend(std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .into_iter()
                .map(|batch| scope.spawn(move || batch.finish_practices(with_calls, tangled)))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("evaluating a shard does not panic"))
                .collect::<Vec<BatchOutput>>()
        }));
    }
    if parts.len() == 1 {
        // Already in order.
        return parts.pop().expect("one part");
    }
    BatchOutput::merge(parts)
}

/// The practices that practice-by-practice evaluation
/// ([`Batch::finish_practices`]) would get wrong: those of a call (vendor
/// and call id) whose events name more than one practice, and those of an
/// event id on more than one call (§1 identifies calls by vendor and call
/// id, and makes any repeat of an event id a duplicate). The set is closed:
/// no call or event id joins a practice in it to one outside. Found by
/// hashes, in one pass over the calls and one over the events: a collision
/// can only add practices, which costs time, never a wrong result. Almost
/// always empty.
pub fn entangled_practices(batches: &[Batch]) -> FxHashSet<PracticeId> {
    let mut tangled = FxHashSet::default();

    // Calls: within a batch a call is also keyed by practice, so a key
    // seen twice is one call in two practices (batches hold different
    // practices), or a collision.
    let call_key = |batch: &Batch, call: &HeldCall| {
        let mut hasher = FxHasher::default();
        hasher.write(batch.vendors[usize::from(call.vendor)].as_bytes());
        hasher.write_u8(0xff);
        hasher.write(batch.call_id(call).as_bytes());
        hasher.finish()
    };
    let calls = || {
        batches.iter().flat_map(move |batch| {
            batch
                .calls
                .iter()
                .filter(|call| !call.practice_level)
                .map(move |call| (call_key(batch, call), call.practice))
        })
    };
    let total_calls = batches.iter().map(|batch| batch.calls.len()).sum();
    let mut seen_keys = FxHashSet::with_capacity_and_hasher(total_calls, Default::default());
    let mut shared_keys = FxHashSet::default();
    for (key, _) in calls() {
        if !seen_keys.insert(key) {
            shared_keys.insert(key);
        }
    }
    drop(seen_keys);
    if !shared_keys.is_empty() {
        tangled.extend(
            calls()
                .filter(|(key, _)| shared_keys.contains(key))
                .map(|(_, practice)| practice),
        );
    }

    // Event ids: an id held by two calls (calls numbered across batches).
    let copies = || {
        let mut call_base = 0u32;
        batches.iter().flat_map(move |batch| {
            let base = call_base;
            call_base += batch.calls.len() as u32;
            batch.copies.iter().map(move |copy| {
                let practice = batch.calls[copy.call as usize].practice;
                (copy.id_hash, base + copy.call, practice)
            })
        })
    };
    let total_copies = batches.iter().map(|batch| batch.copies.len()).sum();
    let mut first_call: FxHashMap<u64, u32> =
        FxHashMap::with_capacity_and_hasher(total_copies, Default::default());
    let mut shared_ids = FxHashSet::default();
    for (id_hash, call, _) in copies() {
        match first_call.entry(id_hash) {
            Entry::Vacant(entry) => {
                entry.insert(call);
            }
            Entry::Occupied(entry) if *entry.get() != call => {
                shared_ids.insert(id_hash);
            }
            Entry::Occupied(_) => {}
        }
    }
    drop(first_call);
    if !shared_ids.is_empty() {
        tangled.extend(
            copies()
                .filter(|(id_hash, _, _)| shared_ids.contains(id_hash))
                .map(|(_, _, practice)| practice),
        );
    }
    // A practice joined to a tangled one by a call or an id shares its key
    // or id, so it is in the set too: closed without further passes.
    tangled
}

/// Evaluates the events of the `practices` (see [`entangled_practices`])
/// as one input, with the streaming engine's rules, which follow a call
/// and an event id across practices. Slower than
/// [`Batch::finish_practices`], and only for the practices that need it.
/// `revision` is, as there, the number of events that landed in the window.
fn finish_entangled(
    batches: &[Batch],
    practices: &FxHashSet<PracticeId>,
    with_calls: bool,
) -> BatchOutput {
    let Some(first) = batches.first() else {
        return BatchOutput::default();
    };
    let mut engine = Engine::new(EngineConfig::replay(first.core_hours.clone()));
    let mut landed: FxHashMap<(PracticeId, WindowSize, Timestamp), u64> = FxHashMap::default();
    let mut days = DayCache::default();
    for batch in batches {
        for (practice, event) in batch.events_of(practices) {
            for size in WindowSize::ALL {
                *landed
                    .entry((practice, size, days.bounds(size, event.at).0))
                    .or_default() += 1;
            }
            engine.ingest(&event);
        }
    }
    let emitted = engine.finish();
    let mut windows = emitted.windows;
    for window in &mut windows {
        let practice = PracticeId::from_code(&window.practice).expect("records name valid codes");
        window.revision = landed[&(practice, window.window, window.start)];
    }
    windows.sort_by(|a, b| (&a.practice, a.window, a.start).cmp(&(&b.practice, b.window, b.start)));
    let mut calls = if with_calls {
        emitted.calls
    } else {
        Vec::new()
    };
    for call in &mut calls {
        call.revision = call.events;
    }
    calls.sort_by(|a, b| {
        (&a.practice, &a.vendor, &a.call_id).cmp(&(&b.practice, &b.vendor, &b.call_id))
    });
    BatchOutput {
        windows,
        calls,
        duplicates: engine.stats().duplicates,
    }
}

/// One practice's windows while its calls are added, emitted as records
/// once its last call is in. Contributions are added to minute windows
/// only: the 15-minute, hour and day windows are unions of whole minutes
/// (London midnight is a whole hour in UTC), and every total but
/// `unique_callers` adds up, so they are summed from their minutes at the
/// end. Every buffer is kept for the next practice.
struct PracticeWindows {
    /// Start and totals of each minute window, by slot.
    minutes: Vec<(Timestamp, WindowTotals)>,
    minute_slots: FxHashMap<Timestamp, u32>,
    /// Recently found minutes and their slots, by minute number modulo
    /// [`RECENT_MINUTES`]: a call's contributions mostly fall in a few
    /// minutes close together, which this finds without hashing.
    recent: [(i64, u32); RECENT_MINUTES],
    /// Waiting intervals, [from, until).
    waiting: Vec<(Timestamp, Timestamp)>,
    /// Each offered caller's digest, when, and the slot of its minute.
    callers: Vec<(u64, Timestamp, u32)>,
    // Buffers of `emit`.
    /// Minute slots in time order, each as its start minute and slot.
    order: Vec<u64>,
    /// 15-minute, hour and day windows in time order: start, end, totals.
    coarser: [Vec<(Timestamp, Timestamp, WindowTotals)>; 3],
    /// By minute slot: the minute's slot and the indexes in `coarser` of
    /// the windows holding it, by [`WindowSize::index`].
    holding: Vec<[u32; 4]>,
    day_cache: DayCache,
    steps: Vec<(Timestamp, u64)>,
    ends: BinaryHeap<Reverse<Timestamp>>,
}

const RECENT_MINUTES: usize = 64;

/// A minute number no instant has, for empty [`PracticeWindows::recent`] entries.
const NO_MINUTE: i64 = i64::MIN;

/// The coarser window sizes, in the order of [`PracticeWindows::coarser`].
const COARSER: [WindowSize; 3] = [
    WindowSize::FifteenMinutes,
    WindowSize::Hour,
    WindowSize::Day,
];

impl Default for PracticeWindows {
    fn default() -> Self {
        PracticeWindows {
            minutes: Vec::new(),
            minute_slots: FxHashMap::default(),
            recent: [(NO_MINUTE, 0); RECENT_MINUTES],
            waiting: Vec::new(),
            callers: Vec::new(),
            order: Vec::new(),
            coarser: Default::default(),
            holding: Vec::new(),
            day_cache: DayCache::default(),
            steps: Vec::new(),
            ends: BinaryHeap::new(),
        }
    }
}

impl PracticeWindows {
    fn clear(&mut self) {
        self.minutes.clear();
        self.minute_slots.clear();
        self.recent = [(NO_MINUTE, 0); RECENT_MINUTES];
        self.waiting.clear();
        self.callers.clear();
    }

    /// Adds a call's contributions (from [`derive_unordered`]) to the
    /// minute windows holding them.
    fn add_call(&mut self, placed: &[Placed]) {
        for &(at, _practice, contribution) in placed {
            match contribution {
                Contribution::WaitingUntil(until) => self.waiting.push((at, until)),
                // With the whole input in hand, a call with no outcome was
                // not waiting (§3).
                Contribution::OpenWaitFrom => {}
                point => {
                    let slot = self.minute_slot(at);
                    add_point(&mut self.minutes[slot as usize].1, point);
                    if let Contribution::Offered {
                        caller: Some(digest),
                    } = point
                    {
                        self.callers.push((digest, at, slot));
                    }
                }
            }
        }
    }

    /// The slot of the minute window holding `at`, added if it is new.
    fn minute_slot(&mut self, at: Timestamp) -> u32 {
        let minute = at.0.div_euclid(MINUTE_MS);
        let recent = &mut self.recent[minute.rem_euclid(RECENT_MINUTES as i64) as usize];
        if recent.0 == minute {
            return recent.1;
        }
        let start = Timestamp(minute * MINUTE_MS);
        let next = self.minutes.len() as u32;
        let slot = *self.minute_slots.entry(start).or_insert(next);
        if slot == next {
            self.minutes.push((start, WindowTotals::default()));
        }
        *recent = (minute, slot);
        slot
    }

    /// Appends the practice's final records, ordered by size and start.
    fn emit(&mut self, practice: PracticeId, records: &mut Vec<WindowMetrics>) {
        // Validated events are from 2000 to 2100: a start in minutes
        // fits in the upper half of a u64, the slot in the lower.
        self.order.clear();
        self.order
            .extend(self.minutes.iter().enumerate().map(|(slot, (start, _))| {
                debug_assert!(start.0 >= 0 && start.0 / MINUTE_MS < 1 << 31);
                ((start.0 / MINUTE_MS) as u64) << 32 | slot as u64
            }));
        self.order.sort_unstable();

        // Minutes in time order: each coarser window is a run of them.
        for windows in &mut self.coarser {
            windows.clear();
        }
        self.holding.clear();
        self.holding.resize(self.minutes.len(), [0; 4]);
        for &key in &self.order {
            let slot = key as u32;
            let (minute_start, minute) = &self.minutes[slot as usize];
            let mut holding = [slot, 0, 0, 0];
            for (size, windows) in COARSER.into_iter().zip(&mut self.coarser) {
                let (start, end) = self.day_cache.bounds(size, *minute_start);
                debug_assert!(
                    start <= *minute_start && minute_start.0 + MINUTE_MS <= end.0,
                    "windows nest"
                );
                if windows.last().is_none_or(|&(last, _, _)| last != start) {
                    windows.push((start, end, WindowTotals::default()));
                }
                let last = windows.len() - 1;
                windows[last].2.add_nested(minute);
                holding[size.index()] = last as u32;
            }
            self.holding[slot as usize] = holding;
        }

        // Each caller's offers in time order: a window of any size holds
        // a run of them, so a caller counts once per run.
        self.callers
            .sort_unstable_by_key(|&(digest, at, _)| (digest, at));
        let mut previous: Option<(u64, [u32; 4])> = None;
        for &(digest, _, slot) in &self.callers {
            let holding = self.holding[slot as usize];
            for size in WindowSize::ALL {
                let i = size.index();
                if previous.is_some_and(|(last, last_holding)| {
                    last == digest && last_holding[i] == holding[i]
                }) {
                    continue;
                }
                let totals = match size {
                    WindowSize::Minute => &mut self.minutes[holding[i] as usize].1,
                    _ => &mut self.coarser[i - 1][holding[i] as usize].2,
                };
                totals.unique_callers += 1;
            }
            previous = Some((digest, holding));
        }

        self.waiting.sort_unstable();
        waiting_steps(&self.waiting, &mut self.ends, &mut self.steps);

        let code = practice.to_code();
        let mut peaks = PeakCursor::new(&self.steps);
        for &key in &self.order {
            let (start, totals) = &self.minutes[key as u32 as usize];
            let end = Timestamp(start.0 + MINUTE_MS);
            let peak = peaks.peak_in(*start, end);
            records.push(window_record(
                &code,
                WindowSize::Minute,
                *start,
                end,
                totals,
                peak,
            ));
        }
        for (size, windows) in COARSER.into_iter().zip(&self.coarser) {
            let mut peaks = PeakCursor::new(&self.steps);
            for &(start, end, ref totals) in windows {
                let peak = peaks.peak_in(start, end);
                records.push(window_record(&code, size, start, end, totals, peak));
            }
        }
    }
}

fn window_record(
    practice: &str,
    size: WindowSize,
    start: Timestamp,
    end: Timestamp,
    totals: &WindowTotals,
    peak_waiting: u64,
) -> WindowMetrics {
    WindowMetrics {
        practice: practice.to_string(),
        window: size,
        start,
        end,
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
        peak_waiting,
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
    }
}

/// Adds a contribution at one instant to the minute window holding it
/// (`unique_callers` is counted in [`PracticeWindows::emit`]).
fn add_point(totals: &mut WindowTotals, contribution: Contribution) {
    match contribution {
        Contribution::Landed => totals.events += 1,
        Contribution::Duplicate => totals.duplicates += 1,
        Contribution::Conflict => totals.conflicts += 1,
        Contribution::Offered { .. } => totals.offered += 1,
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
    intervals: &[(Timestamp, Timestamp)],
    ends: &mut BinaryHeap<Reverse<Timestamp>>,
    steps: &mut Vec<(Timestamp, u64)>,
) {
    debug_assert!(intervals.windows(2).all(|pair| pair[0].0 <= pair[1].0));
    ends.clear();
    steps.clear();
    // At one instant ends come before starts (an end is exclusive), and
    // the step keeps the count after both.
    let mut step = |at: Timestamp, waiting: usize| match steps.last_mut() {
        Some(last) if last.0 == at => last.1 = waiting as u64,
        _ => steps.push((at, waiting as u64)),
    };
    for &(from, until) in intervals {
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

/// Finds `peak_waiting` in windows of one size, visited in order of start:
/// the first step after a window's start is found by moving on from the
/// previous window's.
struct PeakCursor<'a> {
    steps: &'a [(Timestamp, u64)],
    /// The first step after the previous window's start.
    next: usize,
}

impl<'a> PeakCursor<'a> {
    fn new(steps: &'a [(Timestamp, u64)]) -> Self {
        PeakCursor { steps, next: 0 }
    }

    /// The largest number of calls waiting at one instant of `[start, end)`:
    /// the number waiting at `start`, or after any change inside the window.
    fn peak_in(&mut self, start: Timestamp, end: Timestamp) -> u64 {
        debug_assert!(self.next == 0 || self.steps[self.next - 1].0 <= start);
        while self
            .steps
            .get(self.next)
            .is_some_and(|&(at, _)| at <= start)
        {
            self.next += 1;
        }
        let at_start = match self.next {
            0 => 0,
            n => self.steps[n - 1].1,
        };
        self.steps[self.next..]
            .iter()
            .take_while(|&&(at, _)| at < end)
            .map(|&(_, waiting)| waiting)
            .fold(at_start, u64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + seconds * 1000)
    }

    #[test]
    fn peak_counts_the_start_instant_and_changes_inside_only() {
        let intervals = [(ts(0), ts(10)), (ts(5), ts(15)), (ts(10), ts(20))];
        let (mut ends, mut steps) = (BinaryHeap::new(), Vec::new());
        waiting_steps(&intervals, &mut ends, &mut steps);
        let peak_in = |start, end| PeakCursor::new(&steps).peak_in(start, end);
        assert_eq!(peak_in(ts(0), ts(60)), 2);
        assert_eq!(peak_in(ts(11), ts(60)), 2);
        assert_eq!(peak_in(ts(16), ts(60)), 1);
        assert_eq!(peak_in(ts(20), ts(60)), 0);
        assert_eq!(peak_in(ts(-10), ts(0)), 0, "the end is exclusive");
        assert_eq!(peak_in(ts(-10), ts(1)), 1);
        // One cursor over windows in order gives the same answers.
        let mut cursor = PeakCursor::new(&steps);
        for (start, end, peak) in [(-10, 0, 0), (-10, 1, 1), (0, 5, 1), (5, 10, 2), (16, 60, 1)] {
            assert_eq!(cursor.peak_in(ts(start), ts(end)), peak, "[{start}, {end})");
        }
    }
}
