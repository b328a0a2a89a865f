//! Per-call state: every copy of every event of one call, and what the call
//! contributes to windows, derived from that set alone (metrics.md §1-§3).
//!
//! Deriving from the whole set, rather than updating counters as events
//! arrive, is what makes results depend on the set of events and not on
//! their order: a late `queued` event or an earlier duplicate simply changes
//! the derivation, and the engine applies the difference.

use crate::event::{CallEvent, EventKind};
use crate::practice::PracticeId;
use crate::time::Timestamp;

/// One copy of an event as kept in call state (vendor and call id are the
/// call's own and are not repeated; the practice is the event's: a call is
/// identified by vendor and call id alone, §1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredEvent {
    // Field order is the tie-break order between copies of one event_id:
    // the earliest `at` counts, then the rest of the content decides.
    pub event_id: Box<str>,
    pub at: Timestamp,
    pub kind: EventKind,
    pub caller: Option<Box<str>>,
    pub practice: PracticeId,
    pub queue_position: Option<u32>,
}

/// What [`derive()`] reads of one held copy of an event: the engine holds
/// owned copies ([`StoredEvent`]), replay borrows them from one buffer
/// ([`crate::batch`]). `Ord` must order copies as [`StoredEvent`] does:
/// by event id, then `at`, then the rest.
pub trait HeldEvent: Ord {
    fn event_id(&self) -> &str;
    fn at(&self) -> Timestamp;
    fn kind(&self) -> EventKind;
    fn caller(&self) -> Option<&str>;
    /// The practice the copy names: its contributions count there.
    fn practice(&self) -> PracticeId;
}

impl HeldEvent for StoredEvent {
    fn event_id(&self) -> &str {
        &self.event_id
    }
    fn at(&self) -> Timestamp {
        self.at
    }
    fn kind(&self) -> EventKind {
        self.kind
    }
    fn caller(&self) -> Option<&str> {
        self.caller.as_deref()
    }
    fn practice(&self) -> PracticeId {
        self.practice
    }
}

impl StoredEvent {
    /// The copy of a validated event (its practice code already checked).
    pub fn from_event(event: &CallEvent, practice: PracticeId) -> StoredEvent {
        StoredEvent {
            event_id: event.event_id.as_str().into(),
            at: event.at,
            kind: event.kind,
            caller: event.caller.as_deref().map(Into::into),
            practice,
            queue_position: event.queue_position,
        }
    }
}

/// What one call contributes to the windows containing `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contribution {
    /// Every copy of every event lands in its windows: a window exists if any does.
    Landed,
    Duplicate,
    Offered {
        caller: Option<u64>,
    },
    Outcome {
        kind: EventKind,
        in_core_hours: bool,
    },
    /// An outcome event that lost to an earlier one.
    Conflict,
    WaitMs(u64),
    AbandonMs(u64),
    TalkMs(u64),
    CallbackMade,
    CallbackDelayMs(u64),
    /// The call waits from `at` (inclusive) until this instant (exclusive):
    /// applies to every window the interval overlaps.
    WaitingUntil(Timestamp),
    /// The call has waited since `at` and has no outcome yet. Streaming counts
    /// it as waiting in windows that close meanwhile (it is, most likely);
    /// replay's final windows, with the whole input in hand, do not.
    OpenWaitFrom,
}

/// A contribution, and the instant and practice that place it in windows:
/// those of the event it comes from (the outcome's for a wait, the wait
/// start's for a waiting interval).
pub type Placed = (Timestamp, PracticeId, Contribution);

/// The derived facts of a call: the material of its summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFacts<'a> {
    /// The practice the call is summarised under: its offered event's, or
    /// with none, that of its first event (by event id).
    pub practice: Option<PracticeId>,
    pub caller: Option<&'a str>,
    pub offered_at: Option<Timestamp>,
    pub wait_start: Option<Timestamp>,
    pub outcome: Option<(EventKind, Timestamp)>,
    pub outcome_in_core_hours: bool,
    pub ended_at: Option<Timestamp>,
    pub first_callback_made_at: Option<Timestamp>,
    pub callbacks_made: u64,
    pub conflicting_outcomes: u64,
    pub duplicates: u64,
}

impl CallFacts<'_> {
    pub fn wait_ms(&self) -> Option<u64> {
        match self.outcome {
            Some((EventKind::Answered, at)) => self.wait_start.map(|start| clamped_ms(start, at)),
            _ => None,
        }
    }

    pub fn abandon_ms(&self) -> Option<u64> {
        match self.outcome {
            Some((EventKind::Abandoned, at)) => self.wait_start.map(|start| clamped_ms(start, at)),
            _ => None,
        }
    }

    pub fn talk_ms(&self) -> Option<u64> {
        match (self.outcome, self.ended_at) {
            (Some((EventKind::Answered, answered)), Some(ended)) => {
                Some(clamped_ms(answered, ended))
            }
            _ => None,
        }
    }

    pub fn callback_requested_at(&self) -> Option<Timestamp> {
        match self.outcome {
            Some((EventKind::CallbackRequested, at)) => Some(at),
            _ => None,
        }
    }

    pub fn callback_delay_ms(&self) -> Option<u64> {
        match (self.callback_requested_at(), self.first_callback_made_at) {
            (Some(requested), Some(made)) => Some(clamped_ms(requested, made)),
            _ => None,
        }
    }
}

/// `to - from` in milliseconds; a negative duration is clamped to 0 (§2).
/// Who a call summary is about, and how it stands.
#[derive(Debug, Clone)]
pub struct SummaryOf {
    pub practice: String,
    pub vendor: String,
    pub call_id: String,
    pub revision: u64,
    pub is_final: bool,
    /// Every copy of every event the call holds.
    pub events: u64,
}

impl CallFacts<'_> {
    /// The call summary these facts give.
    pub fn summary(&self, of: SummaryOf) -> crate::record::CallSummary {
        crate::record::CallSummary {
            practice: of.practice,
            vendor: of.vendor,
            call_id: of.call_id,
            revision: of.revision,
            is_final: of.is_final,
            caller: self.caller.map(str::to_string),
            offered_at: self.offered_at,
            wait_start_at: self.wait_start,
            outcome: self.outcome.map(|(kind, _)| kind),
            outcome_at: self.outcome.map(|(_, at)| at),
            outcome_in_core_hours: self.outcome.is_some() && self.outcome_in_core_hours,
            wait_ms: self.wait_ms(),
            abandon_ms: self.abandon_ms(),
            talk_ms: self.talk_ms(),
            ended_at: self.ended_at,
            callback_requested_at: self.callback_requested_at(),
            first_callback_made_at: self.first_callback_made_at,
            callbacks_made: self.callbacks_made,
            callback_delay_ms: self.callback_delay_ms(),
            conflicting_outcomes: self.conflicting_outcomes,
            events: of.events,
        }
    }
}

/// Where a counted outcome is tallied in a window's `outcomes` array.
pub fn outcome_slot(kind: EventKind) -> usize {
    match kind {
        EventKind::Answered => 0,
        EventKind::CallbackRequested => 1,
        EventKind::Abandoned => 2,
        EventKind::Missed => 3,
        EventKind::IvrEnded => 4,
        EventKind::Diverted111 => 5,
        other => unreachable!("{other:?} is not an outcome"),
    }
}

pub fn clamped_ms(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(to.0 - from.0).unwrap_or(0)
}

/// The hash under which an event id is looked for on other calls (a
/// repeat of an event id is a duplicate, whichever call it names, §1).
pub fn event_id_hash(event_id: &str) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    std::hash::Hasher::write(&mut hasher, event_id.as_bytes());
    std::hash::Hasher::finish(&hasher)
}

/// A stable 64-bit digest (FNV-1a) of a caller pseudonym, for counting
/// distinct callers without keeping every pseudonym in every window.
pub fn caller_digest(caller: &str) -> u64 {
    caller.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Derives a call's contributions and facts from all copies of its events.
/// `events` must be sorted (their `Ord`), which groups copies of one event_id
/// with the one that counts first. `superseded` lists the event ids whose
/// counted copy belongs to another call (a repeat of an event id is a
/// duplicate wherever it is, §1): every copy of them here is a duplicate.
/// `is_core` tells whether an instant is in GP core hours
/// ([`crate::CoreHours::is_core`], possibly cached). `out` is cleared and
/// filled, sorted (as [`diff`] needs).
// Inlined, as the body was before it moved to `derive_unordered`: the
// engine derives on every event, and a call here cost it 2% more.
#[inline]
pub fn derive<'a, E: HeldEvent>(
    events: &'a [E],
    practice_level: bool,
    superseded: &[Box<str>],
    is_core: impl FnMut(Timestamp) -> bool,
    out: &mut Vec<Placed>,
) -> CallFacts<'a> {
    let facts = derive_unordered(events, practice_level, superseded, is_core, out);
    out.sort_unstable();
    facts
}

/// [`derive()`], leaving `out` in the order the contributions were made:
/// for adding them up, where the order does not matter, sorting them
/// costs as much as the rest of the derivation.
#[inline]
pub fn derive_unordered<'a, E: HeldEvent>(
    events: &'a [E],
    practice_level: bool,
    superseded: &[Box<str>],
    mut is_core: impl FnMut(Timestamp) -> bool,
    out: &mut Vec<Placed>,
) -> CallFacts<'a> {
    debug_assert!(
        events.windows(2).all(|pair| pair[0] <= pair[1]),
        "events must be sorted"
    );
    out.clear();
    let mut facts = CallFacts::default();
    // The earliest `queued` and `offered`, ties by the smaller event id
    // (events come in event id order, so the first of equal instants).
    let mut first_queued: Option<&E> = None;
    let mut first_offered: Option<&E> = None;
    let mut outcome: Option<&E> = None;
    let mut other_outcomes: Vec<&E> = Vec::new();
    let mut previous_id: Option<&str> = None;
    let mut ended: Option<&E> = None;
    let mut first_callback_made: Option<&E> = None;
    let earlier =
        |candidate: &E, current: Option<&E>| current.is_none_or(|c| candidate.at() < c.at());

    for event in events {
        let (at, practice) = (event.at(), event.practice());
        out.push((at, practice, Contribution::Landed));
        let is_copy = previous_id == Some(event.event_id())
            || (!superseded.is_empty() && superseded.iter().any(|id| **id == *event.event_id()));
        previous_id = Some(event.event_id());
        if is_copy {
            out.push((at, practice, Contribution::Duplicate));
            facts.duplicates += 1;
            continue;
        }
        if facts.practice.is_none() {
            facts.practice = Some(practice);
        }
        if practice_level {
            continue;
        }
        match event.kind() {
            EventKind::Offered => {
                out.push((
                    at,
                    practice,
                    Contribution::Offered {
                        caller: event.caller().map(caller_digest),
                    },
                ));
                if earlier(event, first_offered) {
                    first_offered = Some(event);
                }
            }
            EventKind::Queued if earlier(event, first_queued) => first_queued = Some(event),
            EventKind::Ended if earlier(event, ended) => ended = Some(event),
            EventKind::CallbackMade => {
                out.push((at, practice, Contribution::CallbackMade));
                facts.callbacks_made += 1;
                if earlier(event, first_callback_made) {
                    first_callback_made = Some(event);
                }
            }
            kind if kind.is_outcome() => {
                // Earliest `at` wins, ties by the smaller event_id.
                let wins = outcome.is_none_or(|current| {
                    (at, event.event_id()) < (current.at(), current.event_id())
                });
                if wins {
                    if let Some(loser) = outcome.replace(event) {
                        other_outcomes.push(loser);
                    }
                } else {
                    other_outcomes.push(event);
                }
            }
            _ => {}
        }
    }
    if let Some(offered) = first_offered {
        facts.offered_at = Some(offered.at());
        facts.caller = offered.caller();
        facts.practice = Some(offered.practice());
    }
    facts.ended_at = ended.map(HeldEvent::at);
    facts.first_callback_made_at = first_callback_made.map(HeldEvent::at);
    if facts.caller.is_none() {
        facts.caller = events.iter().find_map(|event| event.caller());
    }
    if facts.practice.is_none() {
        // Only duplicates: summarised under the practice they name.
        facts.practice = events.first().map(HeldEvent::practice);
    }
    if practice_level {
        return facts;
    }

    for loser in &other_outcomes {
        out.push((loser.at(), loser.practice(), Contribution::Conflict));
    }
    facts.conflicting_outcomes = other_outcomes.len() as u64;
    let wait_start = first_queued.or(first_offered);
    facts.wait_start = wait_start.map(HeldEvent::at);

    if let Some(outcome) = outcome {
        let (kind, outcome_at, practice) = (outcome.kind(), outcome.at(), outcome.practice());
        facts.outcome = Some((kind, outcome_at));
        facts.outcome_in_core_hours = is_core(outcome_at);
        let in_core_hours = kind == EventKind::Diverted111 && facts.outcome_in_core_hours;
        out.push((
            outcome_at,
            practice,
            Contribution::Outcome {
                kind,
                in_core_hours,
            },
        ));
        if let Some(wait_ms) = facts.wait_ms() {
            out.push((outcome_at, practice, Contribution::WaitMs(wait_ms)));
        }
        if let Some(abandon_ms) = facts.abandon_ms() {
            out.push((outcome_at, practice, Contribution::AbandonMs(abandon_ms)));
        }
        if let (Some(talk_ms), Some(ended)) = (facts.talk_ms(), ended) {
            out.push((ended.at(), ended.practice(), Contribution::TalkMs(talk_ms)));
        }
        if let (Some(delay), Some(made)) = (facts.callback_delay_ms(), first_callback_made) {
            out.push((
                made.at(),
                made.practice(),
                Contribution::CallbackDelayMs(delay),
            ));
        }
        if let Some(start) = wait_start {
            if start.at() < outcome_at {
                out.push((
                    start.at(),
                    start.practice(),
                    Contribution::WaitingUntil(outcome_at),
                ));
            }
        }
    } else if let Some(start) = wait_start {
        out.push((start.at(), start.practice(), Contribution::OpenWaitFrom));
    }
    facts
}

/// Splits `old` and `new` (both sorted) into what to retract and what to add.
pub fn diff(old: &[Placed], new: &[Placed], removed: &mut Vec<Placed>, added: &mut Vec<Placed>) {
    removed.clear();
    added.clear();
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match old[i].cmp(&new[j]) {
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                removed.push(old[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                added.push(new[j]);
                j += 1;
            }
        }
    }
    removed.extend_from_slice(&old[i..]);
    added.extend_from_slice(&new[j..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn practice() -> PracticeId {
        PracticeId::from_code("A81001").unwrap()
    }

    fn ev(id: &str, kind: EventKind, at_s: i64) -> StoredEvent {
        StoredEvent {
            event_id: id.into(),
            at: Timestamp(1_700_000_000_000 + at_s * 1000),
            kind,
            caller: None,
            practice: practice(),
            queue_position: None,
        }
    }

    fn derive_sorted(
        mut events: Vec<StoredEvent>,
    ) -> (Vec<Placed>, u64, Option<(EventKind, Timestamp)>) {
        events.sort();
        let mut out = Vec::new();
        let hours = crate::CoreHours::shipped();
        let facts = derive(&events, false, &[], |at| hours.is_core(at), &mut out);
        (out.clone(), facts.conflicting_outcomes, facts.outcome)
    }

    #[test]
    fn earliest_outcome_wins_ties_by_event_id() {
        let (_, conflicts, outcome) = derive_sorted(vec![
            ev("b", EventKind::Abandoned, 30),
            ev("a", EventKind::Answered, 30),
            ev("c", EventKind::Missed, 40),
        ]);
        assert_eq!(conflicts, 2);
        assert_eq!(outcome.unwrap().0, EventKind::Answered);
    }

    #[test]
    fn earliest_copy_of_a_duplicate_counts() {
        let (placed, _, outcome) = derive_sorted(vec![
            ev("x", EventKind::Answered, 50),
            ev("x", EventKind::Answered, 20),
        ]);
        assert_eq!(outcome.unwrap().1, Timestamp(1_700_000_000_000 + 20_000));
        let duplicates: Vec<_> = placed
            .iter()
            .filter(|(_, _, c)| *c == Contribution::Duplicate)
            .collect();
        assert_eq!(
            duplicates,
            vec![&(
                Timestamp(1_700_000_000_000 + 50_000),
                practice(),
                Contribution::Duplicate
            )]
        );
    }

    #[test]
    fn wait_starts_at_first_queue_not_at_offer() {
        let (placed, _, _) = derive_sorted(vec![
            ev("o", EventKind::Offered, 0),
            ev("q2", EventKind::Queued, 25),
            ev("q1", EventKind::Queued, 20),
            ev("a", EventKind::Answered, 80),
        ]);
        assert!(placed.contains(&(
            Timestamp(1_700_000_080_000),
            practice(),
            Contribution::WaitMs(60_000)
        )));
        assert!(placed.contains(&(
            Timestamp(1_700_000_020_000),
            practice(),
            Contribution::WaitingUntil(Timestamp(1_700_000_080_000))
        )));
    }

    #[test]
    fn outcome_before_offer_clamps_to_zero_and_does_not_wait() {
        let (placed, _, _) = derive_sorted(vec![
            ev("o", EventKind::Offered, 10),
            ev("a", EventKind::Answered, 5),
        ]);
        assert!(placed.contains(&(
            Timestamp(1_700_000_005_000),
            practice(),
            Contribution::WaitMs(0)
        )));
        assert!(!placed
            .iter()
            .any(|(_, _, c)| matches!(c, Contribution::WaitingUntil(_))));
    }

    #[test]
    fn diff_finds_retractions_and_additions() {
        let old = vec![
            (Timestamp(1), practice(), Contribution::Landed),
            (Timestamp(2), practice(), Contribution::WaitMs(5)),
        ];
        let new = vec![
            (Timestamp(1), practice(), Contribution::Landed),
            (Timestamp(2), practice(), Contribution::WaitMs(7)),
        ];
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        diff(&old, &new, &mut removed, &mut added);
        assert_eq!(
            removed,
            vec![(Timestamp(2), practice(), Contribution::WaitMs(5))]
        );
        assert_eq!(
            added,
            vec![(Timestamp(2), practice(), Contribution::WaitMs(7))]
        );
    }

    #[test]
    fn contributions_count_in_the_practice_of_their_event() {
        let other = PracticeId::from_code("B82005").unwrap();
        let mut answered = ev("a", EventKind::Answered, 30);
        answered.practice = other;
        let mut ended = ev("e", EventKind::Ended, 90);
        ended.practice = other;
        let (placed, _, _) = derive_sorted(vec![ev("o", EventKind::Offered, 0), answered, ended]);
        let at = |s: i64| Timestamp(1_700_000_000_000 + s * 1000);
        assert!(placed.contains(&(at(30), other, Contribution::WaitMs(30_000))));
        assert!(placed.contains(&(at(90), other, Contribution::TalkMs(60_000))));
        // The call waited at the practice it was offered to.
        assert!(placed.contains(&(at(0), practice(), Contribution::WaitingUntil(at(30)))));
    }

    #[test]
    fn a_superseded_event_id_is_a_duplicate_here() {
        let events = vec![
            ev("a", EventKind::Answered, 30),
            ev("o", EventKind::Offered, 0),
        ];
        let hours = crate::CoreHours::shipped();
        let mut out = Vec::new();
        let facts = derive(
            &events,
            false,
            &["a".into()],
            |at| hours.is_core(at),
            &mut out,
        );
        assert_eq!(facts.outcome, None);
        assert_eq!(facts.duplicates, 1);
        assert!(out.contains(&(
            Timestamp(1_700_000_030_000),
            practice(),
            Contribution::Duplicate
        )));
    }
}
