//! The event-time engine: per-call state, tumbling windows, the watermark,
//! early and final emission, lateness and eviction (metrics.md §3-§5).
//!
//! The same engine serves the streaming processor (one engine per Kafka
//! partition), `callpulse replay` and the tests, so all three agree.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::calendar::{CoreDayCache, CoreHours};
use crate::call::{
    derive, diff, event_id_hash, outcome_slot, Contribution, Placed, StoredEvent, SummaryOf,
};
use crate::event::CallEvent;
use crate::practice::PracticeId;
use crate::record::{histogram_bucket, CallSummary, Histogram, LateEvent, WindowMetrics};
use crate::time::{Timestamp, HOUR_MS, MINUTE_MS};
use crate::window::{DayCache, WindowSize};

/// How long after a window's end events may still change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lateness {
    /// Windows become final once the watermark passes `end + allowed`.
    Bounded { allowed_ms: i64 },
    /// Nothing is final until [`Engine::finish`]: replay, where the whole
    /// input is in hand.
    Unbounded,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub lateness: Lateness,
    /// How long a call is kept after its latest event, so that a callback
    /// made hours after the request still finds it.
    pub call_retention_ms: i64,
    pub core_hours: CoreHours,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lateness: Lateness::Bounded {
                allowed_ms: 5 * MINUTE_MS,
            },
            call_retention_ms: 36 * HOUR_MS,
            core_hours: CoreHours::shipped(),
        }
    }
}

impl EngineConfig {
    /// Everything final only at the end: for replaying a whole file.
    pub fn replay(core_hours: CoreHours) -> Self {
        EngineConfig {
            lateness: Lateness::Unbounded,
            call_retention_ms: i64::MAX / 4,
            core_hours,
        }
    }
}

/// What happened to one ingested event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Folded into call state and windows.
    Folded,
    /// A repeat of an event id already held: counted in `dq_duplicates`.
    Duplicate,
    /// It would change a window that is already final: not folded in.
    Late(Box<LateEvent>),
}

/// Counters for observability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub events_folded: u64,
    pub duplicates: u64,
    pub late: u64,
    pub open_calls: u64,
    pub open_windows: u64,
}

/// What a drain produced.
#[derive(Debug, Default)]
pub struct Emitted {
    pub windows: Vec<WindowMetrics>,
    pub calls: Vec<CallSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct WindowKey {
    practice: PracticeId,
    size: WindowSize,
    start: Timestamp,
}

/// The running contents of one window. Durations are kept as values, not
/// sums, so that a retraction (a late earlier outcome, an earlier duplicate)
/// can take one back exactly, maxima included.
#[derive(Debug, Default)]
struct WindowAcc {
    end: Timestamp,
    events: i64,
    duplicates: i64,
    conflicts: i64,
    offered: i64,
    outcomes: [i64; 6],
    diverted_111_core: i64,
    callbacks_made: i64,
    callback_delay_count: i64,
    callback_delay_ms_sum: i64,
    /// Caller digest and how many offered events carry it, sorted.
    callers: Vec<(u64, u32)>,
    waits: Vec<u64>,
    abandons: Vec<u64>,
    talks: Vec<u64>,
    /// Waiting intervals overlapping this window, unclipped.
    waiting: Vec<(Timestamp, Timestamp)>,
    revision: u64,
    touched_at_seq: u64,
    dirty: bool,
}

#[derive(Debug)]
struct CallState {
    /// The call's key in [`Engine::calls`], shared (not copied) by the
    /// [`CallRef`]s that the dirty list and the retention queue hold.
    call_id: Arc<str>,
    vendor: u16,
    /// For a practice's switches (`divert_111_on`/`off`), held together as
    /// one pseudo-call per practice and vendor, under the practice's code:
    /// that practice. `None` for calls.
    practice_level: Option<PracticeId>,
    /// Every copy of every event, sorted.
    events: Vec<StoredEvent>,
    /// Event ids whose counted copy is on another call (§1: a repeat of an
    /// event id is a duplicate, whichever call it names). Almost always empty.
    superseded: Vec<Box<str>>,
    /// What is currently applied to windows, sorted.
    applied: Vec<Placed>,
    latest_at: Timestamp,
    revision: u64,
    dirty: bool,
    /// Input position of the call's first event ([`NO_POSITION`] in replay).
    first_position: u64,
    /// Its number in [`Engine::call_slots`].
    slot: u32,
}

impl CallState {
    /// Whether this is the call `call` refers to, among those sharing its id.
    fn is(&self, vendor: u16, practice_level: Option<PracticeId>) -> bool {
        self.vendor == vendor && self.practice_level == practice_level
    }
}

/// A held call: calls are identified by vendor and call id (§1), whatever
/// practices their events name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CallRef {
    call_id: Arc<str>,
    vendor: u16,
    practice_level: Option<PracticeId>,
}

/// In [`Engine::event_ids`]: the event id is held by several calls, listed
/// in [`Engine::shared_ids`].
const SHARED: u32 = u32::MAX;

/// Another call re-derived because an event changed which of its copies count.
struct Rederived {
    call: CallRef,
    superseded: Vec<Box<str>>,
    new: Vec<Placed>,
    removed: Vec<Placed>,
    added: Vec<Placed>,
}

pub struct Engine {
    config: EngineConfig,
    /// Calls by call id; the rare same id from two vendors shares a slot.
    calls: FxHashMap<Arc<str>, Vec<CallState>>,
    /// The slot (in `call_slots`) of the call holding each event id, by the
    /// id's hash, or [`SHARED`]: for duplicates across calls. Numbers, not
    /// call keys, because it has an entry per held event.
    event_ids: FxHashMap<u64, u32>,
    /// The slots of the calls holding an id held by several (or whose
    /// hash collides with another's: a holder then turns out not to hold it).
    shared_ids: FxHashMap<u64, Vec<u32>>,
    /// Held calls by slot; freed slots are reused.
    call_slots: Vec<Option<CallRef>>,
    free_slots: Vec<u32>,
    windows: FxHashMap<WindowKey, WindowAcc>,
    /// Open windows by end, for finalisation in order.
    closing: BTreeSet<(Timestamp, WindowKey)>,
    dirty_windows: Vec<WindowKey>,
    dirty_calls: Vec<CallRef>,
    /// Calls to look at for eviction, by the hour of their latest event.
    retention: BTreeMap<i64, Vec<CallRef>>,
    vendors: Vec<Box<str>>,
    /// Final records of windows closed since the last drain.
    closed: Vec<WindowMetrics>,
    /// Wait starts of calls still waiting (no outcome yet), by practice.
    open_waits: FxHashMap<PracticeId, Vec<Timestamp>>,
    /// Final summaries of calls evicted since the last drain.
    evicted: Vec<CallSummary>,
    /// First positions of held calls: how many calls, and the watermark
    /// before the first of them was ingested. Its first key is the restart point.
    held_positions: BTreeMap<u64, (u32, Option<Timestamp>)>,
    watermark: Option<Timestamp>,
    seq: u64,
    day_cache: DayCache,
    core_days: CoreDayCache,
    stats: EngineStats,
    scratch_new: Vec<Placed>,
    scratch_removed: Vec<Placed>,
    scratch_added: Vec<Placed>,
    /// Contributions derived for a call summary, which only needs the facts.
    scratch_summary: Vec<Placed>,
    /// Edges of waiting intervals, for `peak_waiting`.
    scratch_edges: Vec<(Timestamp, i64)>,
}

/// The position of events whose input has no positions (files, tests).
pub const NO_POSITION: u64 = u64::MAX;

/// Where to resume reading an input so that every call and window still
/// held is rebuilt exactly: the position of the oldest held call's first
/// event, and the watermark just before that event was ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPoint {
    pub position: u64,
    pub watermark: Option<Timestamp>,
}

/// The held call `call` refers to ([`Engine::find_call`], for use while
/// other parts of the engine are borrowed).
fn held<'a>(
    calls: &'a FxHashMap<Arc<str>, Vec<CallState>>,
    call: &CallRef,
) -> Option<&'a CallState> {
    calls
        .get(&call.call_id)?
        .iter()
        .find(|state| state.is(call.vendor, call.practice_level))
}

fn held_mut<'a>(
    calls: &'a mut FxHashMap<Arc<str>, Vec<CallState>>,
    call: &CallRef,
) -> Option<&'a mut CallState> {
    calls
        .get_mut(&call.call_id)?
        .iter_mut()
        .find(|state| state.is(call.vendor, call.practice_level))
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            config,
            calls: FxHashMap::default(),
            event_ids: FxHashMap::default(),
            shared_ids: FxHashMap::default(),
            call_slots: Vec::new(),
            free_slots: Vec::new(),
            windows: FxHashMap::default(),
            closing: BTreeSet::new(),
            dirty_windows: Vec::new(),
            dirty_calls: Vec::new(),
            retention: BTreeMap::new(),
            vendors: Vec::new(),
            open_waits: FxHashMap::default(),
            evicted: Vec::new(),
            held_positions: BTreeMap::new(),
            closed: Vec::new(),
            watermark: None,
            seq: 0,
            day_cache: DayCache::default(),
            core_days: CoreDayCache::default(),
            stats: EngineStats::default(),
            scratch_new: Vec::new(),
            scratch_removed: Vec::new(),
            scratch_added: Vec::new(),
            scratch_summary: Vec::new(),
            scratch_edges: Vec::new(),
        }
    }

    /// An engine that resumes an input at a [`RestartPoint`] taken from
    /// an earlier engine: fed the same input from `point.position` on, it
    /// emits the same records as the earlier engine would have.
    pub fn resume(config: EngineConfig, point: RestartPoint) -> Self {
        let mut engine = Engine::new(config);
        engine.watermark = point.watermark;
        engine
    }

    /// Where to resume this engine's input after a crash, or `None` when
    /// it holds no call (resume after the last ingested position, with the
    /// current watermark).
    ///
    /// Exact when calls are retained longer than any window lasts plus the
    /// lateness (25 h + lateness; the default is 36 h): then every event
    /// that shaped an open window belongs to a call still held, and the
    /// oldest held call's first event covers them all.
    pub fn restart_point(&self) -> Option<RestartPoint> {
        debug_assert!(
            !matches!(self.config.lateness, Lateness::Bounded { allowed_ms }
                if self.config.call_retention_ms < 25 * HOUR_MS + allowed_ms),
            "call retention too short for an exact restart point"
        );
        self.held_positions
            .first_key_value()
            .map(|(&position, &(_, watermark))| RestartPoint {
                position,
                watermark,
            })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            open_windows: self.windows.len() as u64,
            ..self.stats
        }
    }

    /// Moves the watermark forward (never back), e.g. when a partition has
    /// been idle; windows it closes are emitted by the next drain.
    pub fn advance_watermark(&mut self, to: Timestamp) {
        if self.watermark.is_none_or(|wm| to > wm) {
            self.watermark = Some(to);
            // Close windows at once, not at the next drain: a window's final
            // record must be computed before any later event could reach it.
            let mut closed = std::mem::take(&mut self.closed);
            self.finalise_windows(&mut closed);
            self.closed = closed;
            // Calls too: eviction must depend on the input alone, not on
            // when drains happen, or a restarted engine could disagree.
            let mut evicted = std::mem::take(&mut self.evicted);
            self.evict_calls(&mut evicted);
            self.evicted = evicted;
        }
    }

    /// True when a change at instant `at` would touch a final window: its
    /// 1-minute window closes first, so that one decides.
    fn is_final_at(&self, at: Timestamp) -> bool {
        is_final_at(self.config.lateness, self.watermark, at)
    }

    /// True when a window ending at `end` is final under the current watermark.
    fn is_window_final(&self, end: Timestamp) -> bool {
        is_window_final(self.config.lateness, self.watermark, end)
    }

    /// Folds one validated event in. The event's own time advances the watermark.
    pub fn ingest(&mut self, event: &CallEvent) -> Ingested {
        self.ingest_at(event, NO_POSITION)
    }

    /// As [`Engine::ingest`], for an input with positions (a Kafka
    /// partition's offsets, increasing): the engine remembers where each
    /// held call began, for [`Engine::restart_point`].
    pub fn ingest_at(&mut self, event: &CallEvent, input_position: u64) -> Ingested {
        debug_assert!(event.validate().is_ok(), "ingest takes validated events");
        let Some(practice) = PracticeId::from_code(&event.practice) else {
            // Unreachable for validated events; report rather than panic.
            return self.late(event, "practice code is not valid");
        };
        if self.is_final_at(event.at) {
            return self.late(event, "its window is already final");
        }
        let vendor = self.vendor_id(&event.vendor);
        let practice_level = event.kind.is_practice_level().then_some(practice);
        // A practice's switches are held under its code (a real call with
        // that id is told apart by `practice_level`).
        let call_id: &str = if practice_level.is_some() {
            &event.practice
        } else {
            event.call_id.as_deref().unwrap_or_default()
        };
        let stored = StoredEvent::from_event(event, practice);
        let (call, call_slot) =
            self.find_or_add_call(call_id, vendor, practice_level, event.at, input_position);
        let id_hash = event_id_hash(&event.event_id);
        let other_holders = self.add_holder(id_hash, call_slot);

        let state = self.call_mut(&call).expect("just found or added");
        let held_here = state
            .events
            .iter()
            .any(|held| held.event_id == stored.event_id);
        let position = state.events.binary_search(&stored).unwrap_or_else(|p| p);
        state.events.insert(position, stored);

        // A copy of this id on other calls: which copy counts may move
        // between calls, and each call whose counted copies change is
        // derived again (rare: the same id on two calls).
        let mut own_superseded = None;
        let mut others = Vec::new();
        let held_elsewhere = !other_holders.is_empty()
            && self.share_event_id(
                &event.event_id,
                &call,
                &other_holders,
                &mut own_superseded,
                &mut others,
            );

        let (core_hours, core_days) = (&self.config.core_hours, &mut self.core_days);
        let state = held(&self.calls, &call).expect("just found or added");
        derive(
            &state.events,
            state.practice_level.is_some(),
            own_superseded.as_ref().unwrap_or(&state.superseded),
            |at| core_days.is_core(core_hours, at),
            &mut self.scratch_new,
        );
        diff(
            &state.applied,
            &self.scratch_new,
            &mut self.scratch_removed,
            &mut self.scratch_added,
        );

        // A change to a final window would make it disagree with what was
        // emitted as final: refuse the event instead.
        // Waiting intervals are the exception: a wait that outlasts the
        // lateness reaches back into closed windows, which counted the call
        // as waiting while it was open; only open windows take the change.
        let (lateness, watermark) = (self.config.lateness, self.watermark);
        let touches_final = self
            .scratch_removed
            .iter()
            .chain(&self.scratch_added)
            .chain(
                others
                    .iter()
                    .flat_map(|other| other.removed.iter().chain(&other.added)),
            )
            .filter(|(_, _, contribution)| {
                !matches!(
                    contribution,
                    Contribution::WaitingUntil(_) | Contribution::OpenWaitFrom
                )
            })
            .any(|(at, _, _)| is_final_at(lateness, watermark, *at));
        if touches_final {
            let state = self.call_mut(&call).expect("just found or added");
            state.events.remove(position);
            let still_held = state
                .events
                .iter()
                .any(|held| *held.event_id == *event.event_id);
            let emptied = state.events.is_empty();
            if !still_held {
                self.remove_holder(id_hash, call_slot);
            }
            if emptied {
                self.remove_call(&call);
            }
            return self.late(event, "it would change a window that is already final");
        }

        let state = held_mut(&mut self.calls, &call).expect("just found or added");
        if let Some(superseded) = own_superseded {
            state.superseded = superseded;
        }
        std::mem::swap(&mut state.applied, &mut self.scratch_new);
        let previous_hour = state.latest_at.0.div_euclid(HOUR_MS);
        let is_new_call = state.revision == 0;
        state.latest_at = state.latest_at.max(event.at);
        state.revision += 1;
        let latest_hour = state.latest_at.0.div_euclid(HOUR_MS);
        if !state.dirty && practice_level.is_none() {
            state.dirty = true;
            self.dirty_calls.push(call.clone());
        }
        if is_new_call || latest_hour != previous_hour {
            self.retention
                .entry(latest_hour)
                .or_default()
                .push(call.clone());
        }

        self.seq += 1;
        let removed = std::mem::take(&mut self.scratch_removed);
        let added = std::mem::take(&mut self.scratch_added);
        self.apply_all(&removed, &added);
        self.scratch_removed = removed;
        self.scratch_added = added;
        for other in others {
            self.apply_all(&other.removed, &other.added);
            let Some(state) = self.call_mut(&other.call) else {
                debug_assert!(false, "a re-derived call is held");
                continue;
            };
            state.superseded = other.superseded;
            state.applied = other.new;
            state.revision += 1;
            if !state.dirty && state.practice_level.is_none() {
                state.dirty = true;
                self.dirty_calls.push(other.call);
            }
        }

        self.advance_watermark(event.at);
        self.stats.events_folded += 1;
        if held_here || held_elsewhere {
            self.stats.duplicates += 1;
            Ingested::Duplicate
        } else {
            Ingested::Folded
        }
    }

    /// Retracts `removed` and adds `added` (both sorted) in their windows.
    fn apply_all(&mut self, removed: &[Placed], added: &[Placed]) {
        // Sorted lists keep contributions at one instant and practice
        // adjacent: they share their windows, found once per instant.
        let same_place = |a: &Placed, b: &Placed| a.0 == b.0 && a.1 == b.1;
        for at_one_instant in removed.chunk_by(same_place) {
            self.apply(at_one_instant, -1);
        }
        for at_one_instant in added.chunk_by(same_place) {
            self.apply(at_one_instant, 1);
        }
    }

    /// After a copy of `event_id` was added to `call`, while `other_holders`
    /// may hold copies too: decides which call's copy counts (the earliest
    /// `at`, then the rest of the content, as between copies in one call)
    /// and derives again every other call whose counted copies change.
    /// Sets `own_superseded` when `call`'s own list changes. Returns
    /// whether another call holds a copy.
    fn share_event_id(
        &mut self,
        event_id: &str,
        call: &CallRef,
        other_holders: &[CallRef],
        own_superseded: &mut Option<Vec<Box<str>>>,
        others: &mut Vec<Rederived>,
    ) -> bool {
        // Each holder's first copy of the id is its best (copies sort by id, then `at`, ...).
        let best_copy = |state: &CallState| {
            let first = state
                .events
                .partition_point(|held| *held.event_id < *event_id);
            state
                .events
                .get(first)
                .filter(|held| *held.event_id == *event_id)
                .cloned()
        };
        let mut holders: Vec<(CallRef, StoredEvent)> = Vec::new();
        for holder in std::iter::once(call).chain(other_holders) {
            if let Some(copy) = self.find_call(holder).and_then(best_copy) {
                holders.push((holder.clone(), copy));
            }
        }
        if holders.len() < 2 {
            return false;
        }
        let vendors = &self.vendors;
        // Which copy counts: the earliest `at`, then the rest of the content.
        fn order<'a>(
            vendors: &'a [Box<str>],
            (holder, copy): &'a (CallRef, StoredEvent),
        ) -> impl Ord + 'a {
            (
                copy.at,
                copy.kind,
                &copy.caller,
                &holder.call_id,
                copy.practice,
                copy.queue_position,
                &vendors[usize::from(holder.vendor)],
            )
        }
        let counted = holders
            .iter()
            .min_by(|a, b| order(vendors, a).cmp(&order(vendors, b)))
            .map(|(counted, _)| counted.clone())
            .expect("two holders or more");
        for (holder, _) in holders {
            let state = held(&self.calls, &holder).expect("found above");
            let is_superseded = state.superseded.iter().any(|id| **id == *event_id);
            if is_superseded == (holder != counted) {
                continue;
            }
            let mut superseded = state.superseded.clone();
            if is_superseded {
                superseded.retain(|id| **id != *event_id);
            } else {
                superseded.push(event_id.into());
            }
            if holder == *call {
                *own_superseded = Some(superseded);
                continue;
            }
            let (core_hours, core_days) = (&self.config.core_hours, &mut self.core_days);
            let mut new = Vec::new();
            derive(
                &state.events,
                state.practice_level.is_some(),
                &superseded,
                |at| core_days.is_core(core_hours, at),
                &mut new,
            );
            let (mut removed, mut added) = (Vec::new(), Vec::new());
            diff(&state.applied, &new, &mut removed, &mut added);
            others.push(Rederived {
                call: holder,
                superseded,
                new,
                removed,
                added,
            });
        }
        true
    }

    fn late(&mut self, event: &CallEvent, reason: &str) -> Ingested {
        self.stats.late += 1;
        Ingested::Late(Box::new(LateEvent {
            event: event.clone(),
            watermark: self.watermark.unwrap_or_default(),
            reason: reason.to_string(),
        }))
    }

    fn vendor_id(&mut self, vendor: &str) -> u16 {
        if let Some(index) = self.vendors.iter().position(|known| &**known == vendor) {
            return index as u16;
        }
        debug_assert!(self.vendors.len() < usize::from(u16::MAX));
        self.vendors.push(vendor.into());
        (self.vendors.len() - 1) as u16
    }

    /// The held call with this key, added (empty) if there is none, and its
    /// slot.
    fn find_or_add_call(
        &mut self,
        call_id: &str,
        vendor: u16,
        practice_level: Option<PracticeId>,
        at: Timestamp,
        input_position: u64,
    ) -> (CallRef, u32) {
        let mut new_key = None;
        let slot = match self.calls.get_mut(call_id) {
            Some(slot) => slot,
            None => {
                let key: Arc<str> = Arc::from(call_id);
                new_key = Some(Arc::clone(&key));
                self.calls.entry(key).or_default()
            }
        };
        if let Some(state) = slot.iter().find(|state| state.is(vendor, practice_level)) {
            let call = CallRef {
                call_id: Arc::clone(&state.call_id),
                vendor,
                practice_level,
            };
            return (call, state.slot);
        }
        // One copy of the id per slot, shared by its calls and refs.
        let shared_id = match (new_key, slot.first()) {
            (Some(key), _) => key,
            (None, Some(other)) => Arc::clone(&other.call_id),
            (None, None) => unreachable!("empty slots are removed"),
        };
        let call = CallRef {
            call_id: Arc::clone(&shared_id),
            vendor,
            practice_level,
        };
        let call_slot = match self.free_slots.pop() {
            Some(free) => {
                self.call_slots[free as usize] = Some(call.clone());
                free
            }
            None => {
                self.call_slots.push(Some(call.clone()));
                u32::try_from(self.call_slots.len() - 1).expect("fewer than 4 billion held calls")
            }
        };
        let slot = self.calls.get_mut(&shared_id).expect("added above");
        slot.push(CallState {
            call_id: Arc::clone(&shared_id),
            vendor,
            practice_level,
            events: Vec::new(),
            superseded: Vec::new(),
            applied: Vec::new(),
            latest_at: at,
            revision: 0,
            dirty: false,
            first_position: input_position,
            slot: call_slot,
        });
        if input_position != NO_POSITION {
            let held = self
                .held_positions
                .entry(input_position)
                .or_insert((0, self.watermark));
            held.0 += 1;
        }
        self.stats.open_calls += 1;
        (call, call_slot)
    }

    fn find_call(&self, call: &CallRef) -> Option<&CallState> {
        held(&self.calls, call)
    }

    fn call_mut(&mut self, call: &CallRef) -> Option<&mut CallState> {
        held_mut(&mut self.calls, call)
    }

    /// Records that the call in slot `mine` holds a copy of the event id
    /// with this hash; returns the other calls that may hold one.
    fn add_holder(&mut self, id_hash: u64, mine: u32) -> Vec<CallRef> {
        let others: Vec<u32> = match self.event_ids.entry(id_hash) {
            Entry::Vacant(entry) => {
                entry.insert(mine);
                return Vec::new();
            }
            Entry::Occupied(entry) if *entry.get() == mine => return Vec::new(),
            Entry::Occupied(entry) if *entry.get() == SHARED => {
                let holders = self.shared_ids.entry(id_hash).or_default();
                let others: Vec<u32> = holders.iter().copied().filter(|&h| h != mine).collect();
                if others.len() == holders.len() {
                    holders.push(mine);
                }
                others
            }
            Entry::Occupied(mut entry) => {
                let other = std::mem::replace(entry.get_mut(), SHARED);
                self.shared_ids.insert(id_hash, vec![other, mine]);
                vec![other]
            }
        };
        others
            .into_iter()
            .filter_map(|slot| self.call_slots[slot as usize].clone())
            .collect()
    }

    /// Records that the call in slot `mine` no longer holds the event id.
    fn remove_holder(&mut self, id_hash: u64, mine: u32) {
        let Entry::Occupied(mut entry) = self.event_ids.entry(id_hash) else {
            return;
        };
        if *entry.get() == mine {
            entry.remove();
        } else if *entry.get() == SHARED {
            let holders = self.shared_ids.entry(id_hash).or_default();
            holders.retain(|&holder| holder != mine);
            if let [last] = holders[..] {
                *entry.get_mut() = last;
                self.shared_ids.remove(&id_hash);
            }
        }
    }

    fn remove_call(&mut self, call: &CallRef) -> Option<CallState> {
        let slot = self.calls.get_mut(&call.call_id)?;
        let index = slot
            .iter()
            .position(|state| state.is(call.vendor, call.practice_level))?;
        let state = slot.swap_remove(index);
        if slot.is_empty() {
            self.calls.remove(&call.call_id);
        }
        // Copies of one id are adjacent: each id once.
        for copies in state.events.chunk_by(|a, b| a.event_id == b.event_id) {
            self.remove_holder(event_id_hash(&copies[0].event_id), state.slot);
        }
        self.call_slots[state.slot as usize] = None;
        self.free_slots.push(state.slot);
        if let Some(held) = self.held_positions.get_mut(&state.first_position) {
            held.0 -= 1;
            if held.0 == 0 {
                self.held_positions.remove(&state.first_position);
            }
        }
        self.stats.open_calls -= 1;
        Some(state)
    }

    /// Adds (`sign` = 1) or retracts (-1) contributions placed at one
    /// instant in every window they belong to.
    fn apply(&mut self, at_one_instant: &[Placed], sign: i64) {
        let Some(&(at, practice, _)) = at_one_instant.first() else {
            return;
        };
        debug_assert!(at_one_instant
            .iter()
            .all(|(other, of, _)| (*other, *of) == (at, practice)));
        let is_point = |contribution: &Contribution| {
            !matches!(
                contribution,
                Contribution::WaitingUntil(_) | Contribution::OpenWaitFrom
            )
        };
        // Point contributions sort before waits, and are applied first, so
        // windows become dirty (and drain) in the same order as one by one.
        if at_one_instant.iter().any(|(_, _, c)| is_point(c)) {
            for size in WindowSize::ALL {
                let start = self.day_cache.bounds(size, at).0;
                let acc = self.window_mut(practice, size, start, sign);
                for (_, _, contribution) in at_one_instant.iter().filter(|(_, _, c)| is_point(c)) {
                    apply_point(acc, *contribution, sign);
                }
            }
        }
        for &(_, _, contribution) in at_one_instant {
            match contribution {
                Contribution::OpenWaitFrom => {
                    let open = self.open_waits.entry(practice).or_default();
                    if sign > 0 {
                        open.push(at);
                    } else {
                        remove_one(open, &at);
                    }
                }
                Contribution::WaitingUntil(until) => self.apply_waiting(practice, at, until, sign),
                _ => {}
            }
        }
    }

    /// A waiting interval goes into every open window it overlaps.
    fn apply_waiting(
        &mut self,
        practice: PracticeId,
        from: Timestamp,
        until: Timestamp,
        sign: i64,
    ) {
        for size in WindowSize::ALL {
            let mut start = self.day_cache.bounds(size, from).0;
            while start < until {
                let end = size.end_of(start);
                if self.is_window_final(end) {
                    start = end;
                    continue;
                }
                let acc = self.window_mut(practice, size, start, sign);
                if sign > 0 {
                    acc.waiting.push((from, until));
                } else {
                    remove_one(&mut acc.waiting, &(from, until));
                }
                start = end;
            }
        }
    }

    /// The window, created when adding; marks it changed by this ingest.
    fn window_mut(
        &mut self,
        practice: PracticeId,
        size: WindowSize,
        start: Timestamp,
        sign: i64,
    ) -> &mut WindowAcc {
        let key = WindowKey {
            practice,
            size,
            start,
        };
        let acc = self.windows.entry(key).or_insert_with(|| {
            debug_assert!(sign > 0, "retracting from a window that does not exist");
            let end = size.end_of(start);
            self.closing.insert((end, key));
            WindowAcc {
                end,
                ..Default::default()
            }
        });
        if acc.touched_at_seq != self.seq {
            acc.touched_at_seq = self.seq;
            acc.revision += 1;
        }
        if !acc.dirty {
            acc.dirty = true;
            self.dirty_windows.push(key);
        }
        acc
    }

    /// Emits what changed since the last drain. Windows past the watermark
    /// plus the allowed lateness are emitted `final` and forgotten, and so
    /// are calls past their retention. With `provisional` false only final
    /// records are emitted (replay).
    pub fn drain(&mut self, provisional: bool) -> Emitted {
        let mut emitted = Emitted {
            windows: std::mem::take(&mut self.closed),
            calls: std::mem::take(&mut self.evicted),
        };
        self.finalise_windows(&mut emitted.windows);
        self.evict_calls(&mut emitted.calls);
        if provisional {
            for key in std::mem::take(&mut self.dirty_windows) {
                if let Some(acc) = self.windows.get_mut(&key) {
                    if acc.dirty {
                        acc.dirty = false;
                        if acc.events > 0 {
                            let mut edges = std::mem::take(&mut self.scratch_edges);
                            let record = self.record(key, &self.windows[&key], false, &mut edges);
                            self.scratch_edges = edges;
                            emitted.windows.push(record);
                        }
                    }
                }
            }
            for call in std::mem::take(&mut self.dirty_calls) {
                if let Some(summary) = self.call_summary(&call, false) {
                    emitted.calls.push(summary);
                }
            }
        }
        emitted
    }

    /// Ends the input: every window and call becomes final and is emitted.
    pub fn finish(&mut self) -> Emitted {
        self.config.lateness = Lateness::Bounded { allowed_ms: 0 };
        self.config.call_retention_ms = 0;
        self.watermark = Some(Timestamp(i64::MAX / 2));
        // With the whole input in hand, a call with no outcome was not waiting (§3).
        self.open_waits.clear();
        let emitted = self.drain(false);
        debug_assert!(self.windows.is_empty() && self.calls.is_empty());
        emitted
    }

    fn finalise_windows(&mut self, closed: &mut Vec<WindowMetrics>) {
        let (Lateness::Bounded { allowed_ms }, Some(wm)) = (self.config.lateness, self.watermark)
        else {
            return;
        };
        while let Some(&(end, key)) = self.closing.first() {
            if end.0.saturating_add(allowed_ms) > wm.0 {
                break;
            }
            self.closing.pop_first();
            if let Some(acc) = self.windows.remove(&key) {
                if acc.events > 0 {
                    let mut edges = std::mem::take(&mut self.scratch_edges);
                    closed.push(self.record(key, &acc, true, &mut edges));
                    self.scratch_edges = edges;
                }
            }
        }
    }

    fn evict_calls(&mut self, evicted: &mut Vec<CallSummary>) {
        let (Lateness::Bounded { allowed_ms }, Some(wm)) = (self.config.lateness, self.watermark)
        else {
            return;
        };
        let horizon =
            wm.0.saturating_sub(allowed_ms)
                .saturating_sub(self.config.call_retention_ms);
        while let Some((&hour, _)) = self.retention.first_key_value() {
            // Everything in this bucket had its latest event before the end of the hour.
            if (hour + 1).saturating_mul(HOUR_MS) > horizon.saturating_add(1)
                && horizon < i64::MAX / 4
            {
                break;
            }
            let (_, calls) = self.retention.pop_first().expect("checked non-empty");
            for call in calls {
                let Some(state) = self.find_call(&call) else {
                    continue;
                };
                if state.latest_at.0.div_euclid(HOUR_MS) != hour {
                    continue; // it has a newer entry
                }
                if let Some(summary) = self.call_summary(&call, true) {
                    evicted.push(summary);
                }
                self.remove_call(&call);
            }
        }
    }

    fn call_summary(&mut self, call: &CallRef, is_final: bool) -> Option<CallSummary> {
        let vendor = self.vendors[usize::from(call.vendor)].to_string();
        let (core_hours, core_days) = (&self.config.core_hours, &mut self.core_days);
        let state = held_mut(&mut self.calls, call)?;
        state.dirty = false;
        if state.practice_level.is_some() {
            return None;
        }
        let facts = derive(
            &state.events,
            false,
            &state.superseded,
            |at| core_days.is_core(core_hours, at),
            &mut self.scratch_summary,
        );
        let practice = facts.practice?;
        Some(facts.summary(SummaryOf {
            practice: practice.to_code(),
            vendor,
            call_id: call.call_id.to_string(),
            revision: state.revision,
            is_final,
            events: state.events.len() as u64,
        }))
    }

    /// The record of a window; `edges` is scratch space for `peak_waiting`.
    fn record(
        &self,
        key: WindowKey,
        acc: &WindowAcc,
        is_final: bool,
        edges: &mut Vec<(Timestamp, i64)>,
    ) -> WindowMetrics {
        let practice = key.practice.to_code();
        let count = |value: i64| -> u64 {
            debug_assert!(value >= 0, "a count went negative: {value}");
            value.max(0) as u64
        };
        let (wait_count, wait_ms_sum, wait_ms_max, wait_hist) = summarise(&acc.waits);
        let (abandon_count, abandon_ms_sum, abandon_ms_max, abandon_hist) =
            summarise(&acc.abandons);
        let (talk_count, talk_ms_sum, talk_ms_max, talk_hist) = summarise(&acc.talks);
        WindowMetrics {
            practice,
            window: key.size,
            start: key.start,
            end: acc.end,
            revision: acc.revision,
            is_final,
            offered: count(acc.offered),
            answered: count(acc.outcomes[0]),
            callback_requested: count(acc.outcomes[1]),
            abandoned: count(acc.outcomes[2]),
            missed: count(acc.outcomes[3]),
            ivr_ended: count(acc.outcomes[4]),
            diverted_111: count(acc.outcomes[5]),
            diverted_111_core: count(acc.diverted_111_core),
            callbacks_made: count(acc.callbacks_made),
            unique_callers: acc.callers.len() as u64,
            peak_waiting: peak_waiting(
                self.waiting_in(key.practice, acc),
                key.start,
                acc.end,
                edges,
            ),
            wait_count,
            wait_ms_sum,
            wait_ms_max,
            wait_hist,
            abandon_count,
            abandon_ms_sum,
            abandon_ms_max,
            abandon_hist,
            talk_count,
            talk_ms_sum,
            talk_ms_max,
            talk_hist,
            callback_delay_count: count(acc.callback_delay_count),
            callback_delay_ms_sum: count(acc.callback_delay_ms_sum),
            dq_duplicates: count(acc.duplicates),
            dq_conflicts: count(acc.conflicts),
        }
    }

    /// The window's closed waits plus the practice's calls still waiting.
    fn waiting_in<'a>(
        &'a self,
        practice: PracticeId,
        acc: &'a WindowAcc,
    ) -> impl Iterator<Item = (Timestamp, Timestamp)> + 'a {
        let open = self
            .open_waits
            .get(&practice)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let still_waiting = open.iter().map(|&from| (from, Timestamp(i64::MAX)));
        acc.waiting.iter().copied().chain(still_waiting)
    }
}

/// [`Engine::is_final_at`] on copies of the engine's settings, for use
/// while part of the engine is borrowed.
fn is_final_at(lateness: Lateness, watermark: Option<Timestamp>, at: Timestamp) -> bool {
    is_window_final(lateness, watermark, WindowSize::Minute.bounds(at).1)
}

fn is_window_final(lateness: Lateness, watermark: Option<Timestamp>, end: Timestamp) -> bool {
    match (lateness, watermark) {
        (Lateness::Bounded { allowed_ms }, Some(wm)) => end.0.saturating_add(allowed_ms) <= wm.0,
        _ => false,
    }
}

fn apply_point(acc: &mut WindowAcc, contribution: Contribution, sign: i64) {
    let values = |list: &mut Vec<u64>, value: u64| {
        if sign > 0 {
            list.push(value);
        } else {
            remove_one(list, &value);
        }
    };
    match contribution {
        Contribution::Landed => acc.events += sign,
        Contribution::Duplicate => acc.duplicates += sign,
        Contribution::Conflict => acc.conflicts += sign,
        Contribution::Offered { caller } => {
            acc.offered += sign;
            if let Some(digest) = caller {
                count_caller(&mut acc.callers, digest, sign);
            }
        }
        Contribution::Outcome {
            kind,
            in_core_hours,
        } => {
            acc.outcomes[outcome_slot(kind)] += sign;
            if in_core_hours {
                acc.diverted_111_core += sign;
            }
        }
        Contribution::WaitMs(ms) => values(&mut acc.waits, ms),
        Contribution::AbandonMs(ms) => values(&mut acc.abandons, ms),
        Contribution::TalkMs(ms) => values(&mut acc.talks, ms),
        Contribution::CallbackMade => acc.callbacks_made += sign,
        Contribution::CallbackDelayMs(ms) => {
            acc.callback_delay_count += sign;
            acc.callback_delay_ms_sum += sign * ms as i64;
        }
        Contribution::WaitingUntil(_) | Contribution::OpenWaitFrom => {
            unreachable!("waits are applied by Engine::apply")
        }
    }
}

fn count_caller(callers: &mut Vec<(u64, u32)>, digest: u64, sign: i64) {
    match callers.binary_search_by_key(&digest, |&(d, _)| d) {
        Ok(index) if sign > 0 => callers[index].1 += 1,
        Ok(index) => {
            callers[index].1 -= 1;
            if callers[index].1 == 0 {
                callers.remove(index);
            }
        }
        Err(index) => {
            debug_assert!(sign > 0, "retracting a caller never counted");
            callers.insert(index, (digest, 1));
        }
    }
}

fn remove_one<T: PartialEq>(list: &mut Vec<T>, value: &T) {
    let index = list.iter().position(|held| held == value);
    debug_assert!(index.is_some(), "retracting a value that was never added");
    if let Some(index) = index {
        list.swap_remove(index);
    }
}

/// Count, sum, max and histogram of a window's durations.
fn summarise(values: &[u64]) -> (u64, u64, u64, Histogram) {
    let mut hist = Histogram::default();
    let (mut sum, mut max) = (0u64, 0u64);
    for &value in values {
        hist[histogram_bucket(value)] += 1;
        sum = sum.saturating_add(value);
        max = max.max(value);
    }
    (values.len() as u64, sum, max, hist)
}

/// The largest number of calls waiting at one instant of [start, end).
fn peak_waiting(
    intervals: impl IntoIterator<Item = (Timestamp, Timestamp)>,
    start: Timestamp,
    end: Timestamp,
    edges: &mut Vec<(Timestamp, i64)>,
) -> u64 {
    edges.clear();
    for (from, until) in intervals {
        let (from, until) = (from.max(start), until.min(end));
        if from < until {
            edges.push((from, 1));
            edges.push((until, -1));
        }
    }
    // At one instant ends (-1) sort before starts (+1): the end is exclusive.
    edges.sort_unstable();
    let (mut current, mut peak) = (0i64, 0i64);
    for &(_, step) in edges.iter() {
        current += step;
        peak = peak.max(current);
    }
    peak as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_counts_overlaps_and_treats_ends_as_exclusive() {
        let t = |s: i64| Timestamp(s * 1000);
        let intervals = [(t(0), t(10)), (t(5), t(15)), (t(10), t(20))];
        let mut edges = Vec::new();
        assert_eq!(peak_waiting(intervals, t(0), t(60), &mut edges), 2);
        assert_eq!(peak_waiting(intervals, t(11), t(60), &mut edges), 2);
        assert_eq!(peak_waiting(intervals, t(16), t(60), &mut edges), 1);
        assert_eq!(peak_waiting(intervals, t(20), t(60), &mut edges), 0);
    }
}
