//! Alert rules, decided in the core so that streaming, replay and the tests
//! agree (issue #7). The record, [`Alert`], is shared by every rule; rules 2
//! and 3 (thresholds, feed silence) are in [`crate::thresholds`] and
//! [`crate::feed_silence`]. Rule 1, 111 diversions in core hours (metrics.md §5):
//!
//! A practice diverting its phones to NHS 111 in GP core hours raises one
//! alert per episode. An episode opens when, in core hours,
//!
//! - a `divert_111_on` arrives (`opened_by: divert_111_on`),
//! - core hours start while a diversion switched on earlier is still on
//!   (`opened_by: core_hours_started`): switched on at 07:30 and not off by
//!   08:00 raises at 08:00; a diversion left on overnight, over a weekend or
//!   a bank holiday opens a new episode at the next core-hours start,
//! - or a call's outcome is `diverted_111` while no episode is open
//!   (`opened_by: diverted_111`, no diversion switched on).
//!
//! It counts the calls whose counted outcome (metrics.md §1: earliest `at`,
//! ties by the smaller `event_id`; duplicates once) is `diverted_111` in core
//! hours, exactly the calls in `diverted_111_core`. It is resolved by a
//! `divert_111_off` or by the end of core hours (18:30 London time), whichever
//! comes first. Nothing outside core hours raises an alert.
//!
//! Results depend on the set of events only: per call the tracker keeps the
//! winning outcome (a minimum, so any order gives the same one), per practice
//! the switches deduplicated by event id, and the alert history is derived
//! from those by a sweep in time order. See docs/core.md, "Alerts: 111
//! diversions".

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::{Europe::London, Tz};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::calendar::CoreHours;
use crate::event::{CallEvent, EventKind};
use crate::time::{Timestamp, MINUTE_MS};

/// Which rule raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlertKind {
    /// Rule 1: a 111 diversion in core hours.
    #[serde(rename = "diversion_111")]
    Diversion111,
    /// Rule 2: abandoned calls, % of offered over the rolling period.
    #[serde(rename = "abandoned_rate")]
    AbandonedRate,
    /// Rule 2: mean wait of answered calls over the rolling period, seconds.
    #[serde(rename = "wait_mean")]
    WaitMean,
    /// Rule 2: 90th-percentile wait (histogram bucket upper bound), seconds.
    #[serde(rename = "wait_p90")]
    WaitP90,
    /// Rule 2: the most calls waiting at once in the rolling period.
    #[serde(rename = "peak_waiting")]
    PeakWaiting,
    /// Rule 3: a practice's events stopped arriving (for operators).
    #[serde(rename = "feed_silence")]
    FeedSilence,
}

impl AlertKind {
    /// The kind as the record spells it (e.g. `abandoned_rate`); also the
    /// prefix of the ids of rules 2 and 3.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Diversion111 => "diversion_111",
            AlertKind::AbandonedRate => "abandoned_rate",
            AlertKind::WaitMean => "wait_mean",
            AlertKind::WaitP90 => "wait_p90",
            AlertKind::PeakWaiting => "peak_waiting",
            AlertKind::FeedSilence => "feed_silence",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlertState {
    #[serde(rename = "firing")]
    Firing,
    #[serde(rename = "resolved")]
    Resolved,
}

/// What opened a diversion episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Opening {
    /// A `divert_111_on` in core hours.
    #[serde(rename = "divert_111_on")]
    DivertOn,
    /// Core hours started with a diversion still switched on.
    #[serde(rename = "core_hours_started")]
    CoreHoursStarted,
    /// A call diverted to 111 in core hours with no diversion switched on.
    #[serde(rename = "diverted_111")]
    DivertedCall,
}

/// Why an alert was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resolution {
    /// A `divert_111_off`.
    #[serde(rename = "divert_111_off")]
    DivertOff,
    /// 18:30 London time (or the start of a non-core period).
    #[serde(rename = "core_hours_ended")]
    CoreHoursEnded,
    /// Streaming only ([`AlertTracker::drain`]): events that arrived late
    /// moved the episode's start, so this id no longer exists; the episode
    /// continues under its new id.
    #[serde(rename = "superseded")]
    Superseded,
    /// Thresholds: the value fell to or below the resolve level.
    #[serde(rename = "below_resolve_level")]
    BelowResolveLevel,
    /// Thresholds: too few calls to judge for a whole rolling period.
    #[serde(rename = "low_volume")]
    LowVolume,
    /// Feed silence: an event of the practice arrived.
    #[serde(rename = "traffic_resumed")]
    TrafficResumed,
    /// Feed silence: silent so long that the practice is no longer watched.
    #[serde(rename = "expired")]
    Expired,
}

/// One state of one alert: a JSON line of `callpulse replay --alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable: `div111:<practice>:<started_at>`, e.g.
    /// `div111:A81001:2026-11-23T08:00:00.000Z`; rules 2 and 3:
    /// `<kind>:<practice>:<started_at>`.
    pub id: String,
    pub kind: AlertKind,
    pub state: AlertState,
    /// 1 for the first state of an alert, one more for each change.
    pub revision: u64,
    pub practice: String,
    /// The practice's PCN and ICB: filled in from the organisations data (#6);
    /// `null` until then.
    pub pcn: Option<String>,
    pub icb: Option<String>,
    /// The start of the episode (diversions: in core hours; thresholds: the
    /// end of the first rolling period above the fire level; feed silence:
    /// when the silence reached its limit).
    pub started_at: Timestamp,
    /// The event time of this change.
    pub updated_at: Timestamp,
    /// Diversions only (`null` for other kinds).
    #[serde(default)]
    pub opened_by: Option<Opening>,
    /// When the diversion in force during the episode was switched on, which
    /// may be before the episode (before core hours, an earlier day); `null`
    /// when calls were diverted with no diversion switched on.
    #[serde(default)]
    pub switched_on_at: Option<Timestamp>,
    /// Calls diverted to 111 in the episode so far (diversions only).
    #[serde(default)]
    pub diverted_calls: Option<u64>,
    /// Thresholds: the value at this state, in the rule's unit (percent for
    /// `abandoned_rate`, seconds for `wait_mean` and `wait_p90`, calls for
    /// `peak_waiting`); feed silence: minutes of core hours without events.
    #[serde(default)]
    pub value: Option<u64>,
    /// Thresholds: the levels in force (fire above `fire_level`, resolve at
    /// or below `resolve_level`); feed silence: the limit in minutes.
    #[serde(default)]
    pub fire_level: Option<u64>,
    #[serde(default)]
    pub resolve_level: Option<u64>,
    /// Thresholds: the highest value seen during the episode.
    #[serde(default)]
    pub worst_value: Option<u64>,
    /// Thresholds: calls offered and abandoned (`abandoned_rate`), or calls
    /// answered (waits), over the rolling period at this state.
    #[serde(default)]
    pub offered: Option<u64>,
    #[serde(default)]
    pub abandoned: Option<u64>,
    #[serde(default)]
    pub answered: Option<u64>,
    /// Thresholds: the length of the rolling period.
    #[serde(default)]
    pub period_minutes: Option<u64>,
    /// Feed silence: the practice's latest event time.
    #[serde(default)]
    pub last_event_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub duration_ms: Option<u64>,
    pub resolution: Option<Resolution>,
    /// One line for a clinical director's phone.
    pub summary: String,
}

impl Alert {
    /// A firing record of `kind` with every kind-specific field `null`, for
    /// the rules to fill in.
    pub fn blank(kind: AlertKind, id: String, practice: &str, started_at: Timestamp) -> Alert {
        Alert {
            id,
            kind,
            state: AlertState::Firing,
            revision: 1,
            practice: practice.to_string(),
            pcn: None,
            icb: None,
            started_at,
            updated_at: started_at,
            opened_by: None,
            switched_on_at: None,
            diverted_calls: None,
            value: None,
            fire_level: None,
            resolve_level: None,
            worst_value: None,
            offered: None,
            abandoned: None,
            answered: None,
            period_minutes: None,
            last_event_at: None,
            resolved_at: None,
            duration_ms: None,
            resolution: None,
            summary: String::new(),
        }
    }

    /// The same record without its revision, for comparing states.
    fn without_revision(&self) -> Alert {
        Alert {
            revision: 0,
            ..self.clone()
        }
    }
}

/// The id of the diversion episode of `practice` that started at `started_at`.
pub fn diversion_alert_id(practice: &str, started_at: Timestamp) -> String {
    format!("div111:{practice}:{}", started_at.to_rfc3339_millis())
}

/// Every state change of every 111-diversion alert in `events`, as of the
/// latest event time in them: firing, updates, resolved; ordered by
/// `updated_at`, then id, then revision. Depends on the set of events only.
/// Events of any kind may be passed (all advance the horizon); they are
/// expected to be validated.
pub fn diversion_alerts(events: &[CallEvent], core_hours: &CoreHours) -> Vec<Alert> {
    let mut tracker = AlertTracker::new(core_hours.clone());
    for event in events {
        tracker.observe(event);
    }
    tracker.alerts()
}

/// The winning outcome of a call so far: the minimum, so order does not matter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Outcome {
    at: Timestamp,
    event_id: Box<str>,
    kind: EventKind,
}

/// What one practice's alerts are derived from.
#[derive(Debug, Default)]
struct PracticeInputs {
    /// `divert_111_on`/`off` by (vendor, event_id): the copy that counts.
    switches: FxHashMap<(Box<str>, Box<str>), (Timestamp, EventKind)>,
    /// The counted outcome of every call, by (vendor, call_id).
    calls: FxHashMap<(Box<str>, Box<str>), Outcome>,
}

/// Last emitted states of one practice's alerts, for [`AlertTracker::drain`].
#[derive(Debug, Default)]
struct Emitted {
    by_id: BTreeMap<String, Alert>,
    /// A diversion was on or an alert firing at the last drain: moving the
    /// horizon may change something.
    live: bool,
}

/// Alerts over events that arrive in any order. It keeps, per practice, the
/// diversion switches and the counted outcome of each call (one small entry
/// per call), and derives a practice's alerts again when asked.
#[derive(Debug)]
pub struct AlertTracker {
    core_hours: CoreHours,
    practices: FxHashMap<String, PracticeInputs>,
    horizon: Option<Timestamp>,
    dirty: FxHashSet<String>,
    emitted: FxHashMap<String, Emitted>,
}

impl AlertTracker {
    pub fn new(core_hours: CoreHours) -> Self {
        AlertTracker {
            core_hours,
            practices: FxHashMap::default(),
            horizon: None,
            dirty: FxHashSet::default(),
            emitted: FxHashMap::default(),
        }
    }

    /// The instant alerts are computed up to: the latest event time observed
    /// or advanced to. Core hours that end after it leave alerts firing.
    pub fn horizon(&self) -> Option<Timestamp> {
        self.horizon
    }

    /// Moves the horizon forward (never back), e.g. with the processor's watermark.
    pub fn advance_to(&mut self, to: Timestamp) {
        if self.horizon.is_none_or(|h| to > h) {
            self.horizon = Some(to);
        }
    }

    /// Takes one validated event of any kind; only switches and outcomes are kept.
    pub fn observe(&mut self, event: &CallEvent) {
        self.advance_to(event.at);
        let changed = if event.kind.is_practice_level() {
            let inputs = self.practices.entry(event.practice.clone()).or_default();
            let key = (event.vendor.as_str().into(), event.event_id.as_str().into());
            let copy = (event.at, event.kind);
            match inputs.switches.get_mut(&key) {
                Some(held) if *held <= copy => false,
                Some(held) => {
                    *held = copy;
                    true
                }
                None => {
                    inputs.switches.insert(key, copy);
                    true
                }
            }
        } else if event.kind.is_outcome() {
            let Some(call_id) = event.call_id.as_deref() else {
                return;
            };
            let inputs = self.practices.entry(event.practice.clone()).or_default();
            let key = (event.vendor.as_str().into(), call_id.into());
            let outcome = Outcome {
                at: event.at,
                event_id: event.event_id.as_str().into(),
                kind: event.kind,
            };
            match inputs.calls.get_mut(&key) {
                Some(held) if *held <= outcome => false,
                Some(held) => {
                    *held = outcome;
                    true
                }
                None => {
                    inputs.calls.insert(key, outcome);
                    true
                }
            }
        } else {
            false
        };
        if changed && !self.dirty.contains(&event.practice) {
            self.dirty.insert(event.practice.clone());
        }
    }

    fn derive(&self, practice: &str, horizon: Timestamp) -> (Vec<Alert>, bool) {
        let Some(inputs) = self.practices.get(practice) else {
            return (Vec::new(), false);
        };
        let mut steps: Vec<(Timestamp, Step)> = inputs
            .switches
            .values()
            .map(|&(at, kind)| {
                let step = if kind == EventKind::Divert111On {
                    Step::On
                } else {
                    Step::Off
                };
                (at, step)
            })
            .chain(
                inputs
                    .calls
                    .values()
                    .filter(|outcome| {
                        outcome.kind == EventKind::Diverted111
                            && self.core_hours.is_core(outcome.at)
                    })
                    .map(|outcome| (outcome.at, Step::Call)),
            )
            .collect();
        steps.sort_unstable();
        sweep(practice, &steps, horizon, &self.core_hours)
    }

    /// Every state change of every alert as of the horizon, as
    /// [`diversion_alerts`] gives it for the same set of events.
    pub fn alerts(&self) -> Vec<Alert> {
        let Some(horizon) = self.horizon else {
            return Vec::new();
        };
        let mut all: Vec<Alert> = self
            .practices
            .keys()
            .flat_map(|practice| self.derive(practice, horizon).0)
            .collect();
        sort_changes(&mut all);
        all
    }

    /// The latest state of every alert, by practice and start.
    pub fn current(&self) -> Vec<Alert> {
        let mut latest = latest_by_id(self.alerts());
        latest.sort_by(|a, b| (&a.practice, a.started_at).cmp(&(&b.practice, b.started_at)));
        latest
    }

    /// The alert states that changed since the last drain, for streaming:
    /// the current state of each changed alert (not every intermediate
    /// change), with a revision that grows with each emission of that id.
    /// An alert whose id no longer exists after late events moved its
    /// episode's start is emitted once more, resolved as `superseded`.
    pub fn drain(&mut self) -> Vec<Alert> {
        let Some(horizon) = self.horizon else {
            return Vec::new();
        };
        let mut practices: Vec<String> = self.dirty.drain().collect();
        practices.extend(
            self.emitted
                .iter()
                .filter(|(_, emitted)| emitted.live)
                .map(|(practice, _)| practice.clone()),
        );
        practices.sort_unstable();
        practices.dedup();
        let mut out = Vec::new();
        for practice in practices {
            let (changes, switched_on) = self.derive(&practice, horizon);
            let latest = latest_by_id(changes);
            let emitted = self.emitted.entry(practice).or_default();
            emitted.live = switched_on || latest.iter().any(|a| a.state == AlertState::Firing);
            let mut seen = FxHashSet::default();
            for alert in latest {
                seen.insert(alert.id.clone());
                let revision = match emitted.by_id.get(&alert.id) {
                    Some(held) if held.without_revision() == alert.without_revision() => continue,
                    Some(held) => held.revision + 1,
                    None => 1,
                };
                let alert = Alert { revision, ..alert };
                emitted.by_id.insert(alert.id.clone(), alert.clone());
                out.push(alert);
            }
            for held in emitted.by_id.values_mut() {
                if seen.contains(&held.id) || held.resolution == Some(Resolution::Superseded) {
                    continue;
                }
                let superseded = Alert {
                    state: AlertState::Resolved,
                    revision: held.revision + 1,
                    updated_at: horizon,
                    resolved_at: Some(horizon),
                    duration_ms: Some(ms_between(held.started_at, horizon)),
                    resolution: Some(Resolution::Superseded),
                    summary: format!(
                        "Withdrawn: later data changed when {}'s 111 diversion started (was {} on {}); see the newer alert",
                        held.practice,
                        london_hm(held.started_at),
                        london_day(held.started_at)
                    ),
                    ..held.clone()
                };
                *held = superseded.clone();
                out.push(superseded);
            }
        }
        sort_changes(&mut out);
        out
    }
}

fn sort_changes(alerts: &mut [Alert]) {
    alerts
        .sort_by(|a, b| (a.updated_at, &a.id, a.revision).cmp(&(b.updated_at, &b.id, b.revision)));
}

/// The last state of each alert id.
fn latest_by_id(changes: Vec<Alert>) -> Vec<Alert> {
    let mut latest: BTreeMap<String, Alert> = BTreeMap::new();
    for alert in changes {
        match latest.get(&alert.id) {
            Some(held) if held.revision >= alert.revision => {}
            _ => {
                latest.insert(alert.id.clone(), alert);
            }
        }
    }
    latest.into_values().collect()
}

/// What happens at one instant, in the order it is applied when several
/// things happen at the same instant: switches on, then diverted calls, then
/// switches off (so on, a call and off at one instant make one episode with
/// that call in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    On,
    Call,
    Off,
}

#[derive(Debug)]
struct Episode {
    id: String,
    start: Timestamp,
    /// The end of its core-hours period.
    end: Timestamp,
    opened_by: Opening,
    switched_on_at: Option<Timestamp>,
    calls: u64,
    revision: u64,
}

struct Sweep<'a> {
    practice: &'a str,
    core_hours: &'a CoreHours,
    /// When the diversion in force was switched on.
    switched_on: Option<Timestamp>,
    /// Where to look for the next core-hours start for a diversion still on.
    cursor: Timestamp,
    episode: Option<Episode>,
    out: Vec<Alert>,
}

/// The alert history of one practice from its sorted steps, up to `horizon`;
/// also whether a diversion is still switched on at the horizon.
fn sweep(
    practice: &str,
    steps: &[(Timestamp, Step)],
    horizon: Timestamp,
    core_hours: &CoreHours,
) -> (Vec<Alert>, bool) {
    let mut sweep = Sweep {
        practice,
        core_hours,
        switched_on: None,
        cursor: Timestamp(i64::MIN),
        episode: None,
        out: Vec::new(),
    };
    for &(at, step) in steps {
        sweep.advance(at);
        sweep.apply(at, step);
    }
    sweep.advance(horizon);
    (sweep.out, sweep.switched_on.is_some())
}

impl Sweep<'_> {
    /// Core-hours boundaries up to and including `to`: episodes end at 18:30,
    /// and a diversion still on opens one at the next 08:00.
    fn advance(&mut self, to: Timestamp) {
        loop {
            match (&self.episode, self.switched_on) {
                (Some(episode), _) if episode.end <= to => {
                    let end = episode.end;
                    self.resolve(end, Resolution::CoreHoursEnded);
                    self.cursor = end;
                }
                (None, Some(on_at)) => {
                    let start = next_core_start(self.core_hours, self.cursor);
                    if start > to {
                        break;
                    }
                    self.open(start, Opening::CoreHoursStarted, Some(on_at));
                }
                _ => break,
            }
        }
    }

    fn apply(&mut self, at: Timestamp, step: Step) {
        match step {
            Step::On => {
                if self.switched_on.is_some() {
                    return; // already on: another vendor's or a repeated switch
                }
                self.switched_on = Some(at);
                if !self.core_hours.is_core(at) {
                    self.cursor = at;
                    return;
                }
                match &mut self.episode {
                    None => self.open(at, Opening::DivertOn, Some(at)),
                    Some(episode) => {
                        // An episode opened by calls: the switch joins it.
                        episode.switched_on_at.get_or_insert(at);
                        self.changed(at);
                    }
                }
            }
            Step::Call => {
                if self.episode.is_none() {
                    self.open(at, Opening::DivertedCall, self.switched_on);
                }
                if let Some(episode) = &mut self.episode {
                    episode.calls += 1;
                }
                self.changed(at);
            }
            Step::Off => {
                self.switched_on = None;
                if self.episode.is_some() {
                    self.resolve(at, Resolution::DivertOff);
                }
            }
        }
    }

    fn open(&mut self, at: Timestamp, opened_by: Opening, switched_on_at: Option<Timestamp>) {
        debug_assert!(self.core_hours.is_core(at));
        self.episode = Some(Episode {
            id: diversion_alert_id(self.practice, at),
            start: at,
            end: core_end(self.core_hours, at),
            opened_by,
            switched_on_at,
            calls: 0,
            revision: 1,
        });
        let alert = self.record(at, None);
        self.out.push(alert);
    }

    /// The open episode changed at `at`: changes at one instant make one state.
    fn changed(&mut self, at: Timestamp) {
        let Some(episode) = &self.episode else {
            return;
        };
        let coalesce = self.out.last().is_some_and(|last| {
            last.id == episode.id && last.updated_at == at && last.state == AlertState::Firing
        });
        if !coalesce {
            self.episode.as_mut().expect("open").revision += 1;
        }
        let alert = self.record(at, None);
        if coalesce {
            *self.out.last_mut().expect("checked") = alert;
        } else {
            self.out.push(alert);
        }
    }

    fn resolve(&mut self, at: Timestamp, resolution: Resolution) {
        if let Some(episode) = &mut self.episode {
            episode.revision += 1;
        }
        let alert = self.record(at, Some(resolution));
        self.out.push(alert);
        self.episode = None;
    }

    fn record(&self, at: Timestamp, resolution: Option<Resolution>) -> Alert {
        let episode = self.episode.as_ref().expect("an open episode");
        let duration_ms = resolution.map(|_| ms_between(episode.start, at));
        Alert {
            state: if resolution.is_some() {
                AlertState::Resolved
            } else {
                AlertState::Firing
            },
            revision: episode.revision,
            updated_at: at,
            opened_by: Some(episode.opened_by),
            switched_on_at: episode.switched_on_at,
            diverted_calls: Some(episode.calls),
            resolved_at: resolution.map(|_| at),
            duration_ms,
            resolution,
            summary: summary(self.practice, episode, at, resolution),
            ..Alert::blank(
                AlertKind::Diversion111,
                episode.id.clone(),
                self.practice,
                episode.start,
            )
        }
    }
}

pub(crate) fn ms_between(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(to.0.saturating_sub(from.0)).unwrap_or(0)
}

// ---- core-hours periods ----

fn london_instant(date: NaiveDate, hour: u32, minute: u32) -> Timestamp {
    let naive = date
        .and_hms_opt(hour, minute, 0)
        .expect("a valid time of day");
    let local = London
        .from_local_datetime(&naive)
        .earliest()
        .expect("08:00 and 18:30 always exist in London");
    Timestamp(local.timestamp_millis())
}

fn is_core_day(core_hours: &CoreHours, date: NaiveDate) -> bool {
    date.weekday().num_days_from_monday() < 5 && !core_hours.is_bank_holiday(date)
}

/// The end (18:30 London) of the core-hours period containing `at`.
fn core_end(core_hours: &CoreHours, at: Timestamp) -> Timestamp {
    core_hours.core_end_on_day_of(at)
}

/// The first core-hours start (08:00 London on a core day) at or after `from`.
fn next_core_start(core_hours: &CoreHours, from: Timestamp) -> Timestamp {
    let from = from.max(crate::time::EARLIEST);
    let mut date = from.london_date();
    // A calendar that made every day a holiday would otherwise never end.
    for _ in 0..366 * 2 {
        if is_core_day(core_hours, date) {
            let start = london_instant(date, 8, 0);
            if start >= from {
                return start;
            }
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    Timestamp(i64::MAX)
}

// ---- the one-line summary ----

fn london(ts: Timestamp) -> DateTime<Tz> {
    DateTime::<Utc>::from_timestamp_millis(ts.0)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .with_timezone(&London)
}

pub(crate) fn london_hm(ts: Timestamp) -> String {
    london(ts).format("%H:%M").to_string()
}

pub(crate) fn london_day(ts: Timestamp) -> String {
    london(ts).format("%a %-d %b").to_string()
}

fn calls_text(calls: u64) -> String {
    match calls {
        1 => "1 call".to_string(),
        n => format!("{n} calls"),
    }
}

pub(crate) fn duration_text(ms: u64) -> String {
    let minutes = ms / MINUTE_MS as u64;
    match (minutes / 60, minutes % 60) {
        (0, 0) => "under 1 min".to_string(),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn switch_text(episode: &Episode) -> String {
    match episode.switched_on_at {
        None => "no diversion switched on".to_string(),
        Some(on) if on.london_date() == episode.start.london_date() => {
            format!("switched on at {}", london_hm(on))
        }
        Some(on) => format!("switched on at {} on {}", london_hm(on), london_day(on)),
    }
}

fn summary(
    practice: &str,
    episode: &Episode,
    at: Timestamp,
    resolution: Option<Resolution>,
) -> String {
    let start = london_hm(episode.start);
    let day = london_day(episode.start);
    let switch = switch_text(episode);
    let calls = calls_text(episode.calls);
    match resolution {
        None if episode.calls == 0 => format!(
            "{practice} has diverted its phones to NHS 111 in core hours since {start} on {day} ({switch}); no calls diverted yet"
        ),
        None => format!(
            "{practice} diverted {calls} to NHS 111 in core hours since {start} on {day} ({switch})"
        ),
        Some(reason) => {
            let ended = match reason {
                Resolution::DivertOff => "switched back",
                Resolution::CoreHoursEnded => "core hours ended",
                Resolution::Superseded => "superseded",
                // Not reasons a diversion ends; spelled out all the same.
                Resolution::BelowResolveLevel => "below the resolve level",
                Resolution::LowVolume => "too few calls",
                Resolution::TrafficResumed => "traffic resumed",
                Resolution::Expired => "expired",
            };
            format!(
                "Resolved: {practice} diverted {calls} to NHS 111 in core hours, {start} to {} on {day} ({}; {switch}); {ended}",
                london_hm(at),
                duration_text(ms_between(episode.start, at)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn ev(id: &str, kind: EventKind, when: &str) -> CallEvent {
        CallEvent {
            event_id: id.into(),
            call_id: (!kind.is_practice_level()).then(|| format!("call-{id}")),
            vendor: "generic".into(),
            practice: "A81001".into(),
            kind,
            at: at(when),
            caller: None,
            queue_position: None,
        }
    }

    fn on(id: &str, when: &str) -> CallEvent {
        ev(id, EventKind::Divert111On, when)
    }

    fn off(id: &str, when: &str) -> CallEvent {
        ev(id, EventKind::Divert111Off, when)
    }

    fn diverted(id: &str, when: &str) -> CallEvent {
        ev(id, EventKind::Diverted111, when)
    }

    /// Moves the horizon without touching alerts.
    fn tick(when: &str) -> CallEvent {
        ev(&format!("tick-{when}"), EventKind::Offered, when)
    }

    fn alerts(events: &[CallEvent]) -> Vec<Alert> {
        diversion_alerts(events, &CoreHours::shipped())
    }

    fn latest(events: &[CallEvent]) -> Vec<Alert> {
        let mut tracker = AlertTracker::new(CoreHours::shipped());
        for event in events {
            tracker.observe(event);
        }
        tracker.current()
    }

    /// (started_at, state, diverted_calls, resolved_at, resolution) of each alert's latest state.
    type Brief = (String, AlertState, u64, Option<String>, Option<Resolution>);

    fn brief(events: &[CallEvent]) -> Vec<Brief> {
        latest(events)
            .into_iter()
            .map(|a| {
                (
                    a.started_at.to_rfc3339_seconds(),
                    a.state,
                    a.diverted_calls.unwrap_or(0),
                    a.resolved_at.map(|t| t.to_rfc3339_seconds()),
                    a.resolution,
                )
            })
            .collect()
    }

    fn resolved(start: &str, calls: u64, end: &str, reason: Resolution) -> Brief {
        (
            start.into(),
            AlertState::Resolved,
            calls,
            Some(end.into()),
            Some(reason),
        )
    }

    fn firing(start: &str, calls: u64) -> Brief {
        (start.into(), AlertState::Firing, calls, None, None)
    }

    use Resolution::{CoreHoursEnded as Ended, DivertOff as Off};

    #[test]
    fn core_start_boundary_in_winter() {
        // Monday 23 November 2026, GMT.
        let early = [
            on("s1", "2026-11-23T07:59:59Z"),
            off("s2", "2026-11-23T07:59:59.500Z"),
            diverted("c1", "2026-11-23T07:59:59.999Z"),
        ];
        assert!(alerts(&early).is_empty());
        assert_eq!(
            brief(&[diverted("c1", "2026-11-23T08:00:00Z")]),
            vec![firing("2026-11-23T08:00:00Z", 1)]
        );
        assert_eq!(
            brief(&[on("s1", "2026-11-23T08:00:00Z")]),
            vec![firing("2026-11-23T08:00:00Z", 0)]
        );
    }

    #[test]
    fn core_end_boundary_in_winter() {
        let events = [
            diverted("c1", "2026-11-23T18:29:59Z"),
            diverted("c2", "2026-11-23T18:30:00Z"),
            on("s1", "2026-11-23T18:30:00Z"),
            tick("2026-11-23T19:00:00Z"),
        ];
        assert_eq!(
            brief(&events),
            vec![resolved(
                "2026-11-23T18:29:59Z",
                1,
                "2026-11-23T18:30:00Z",
                Ended
            )]
        );
        // Nothing at or after 18:30 raises an alert.
        assert!(alerts(&events[1..]).is_empty());
    }

    #[test]
    fn boundaries_follow_london_time_in_summer() {
        // Wednesday 1 July 2026, BST: 08:00 is 07:00 UTC and 18:30 is 17:30 UTC.
        assert!(alerts(&[diverted("c0", "2026-07-01T06:59:59Z")]).is_empty());
        assert!(alerts(&[on("s0", "2026-07-01T17:30:00Z")]).is_empty());
        let events = [
            on("s1", "2026-07-01T06:30:00Z"),
            diverted("c1", "2026-07-01T07:00:00Z"),
            diverted("c2", "2026-07-01T17:29:59Z"),
            diverted("c3", "2026-07-01T17:30:00Z"),
            tick("2026-07-01T18:00:00Z"),
        ];
        let all = alerts(&events);
        assert_eq!(
            brief(&events),
            vec![resolved(
                "2026-07-01T07:00:00Z",
                2,
                "2026-07-01T17:30:00Z",
                Ended
            )]
        );
        assert_eq!(all[0].opened_by, Some(Opening::CoreHoursStarted));
        assert_eq!(
            all[0].diverted_calls,
            Some(1),
            "the 08:00 call joins the opening state"
        );
        assert_eq!(
            all[0].summary,
            "A81001 diverted 1 call to NHS 111 in core hours since 08:00 on Wed 1 Jul (switched on at 07:30)"
        );
        assert_eq!(
            all.last().unwrap().summary,
            "Resolved: A81001 diverted 2 calls to NHS 111 in core hours, 08:00 to 18:30 on Wed 1 Jul (10 h 30 min; switched on at 07:30); core hours ended"
        );
    }

    #[test]
    fn switched_on_before_core_hours_raises_at_0800() {
        let events = [
            on("s1", "2026-11-23T07:30:00Z"),
            tick("2026-11-23T08:05:00Z"),
        ];
        let all = alerts(&events);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, "div111:A81001:2026-11-23T08:00:00.000Z");
        assert_eq!(all[0].started_at, at("2026-11-23T08:00:00Z"));
        assert_eq!(all[0].opened_by, Some(Opening::CoreHoursStarted));
        assert_eq!(all[0].switched_on_at, Some(at("2026-11-23T07:30:00Z")));
        // Not yet 08:00: nothing.
        assert!(alerts(&[
            on("s1", "2026-11-23T07:30:00Z"),
            tick("2026-11-23T07:59:59Z")
        ])
        .is_empty());
        // Switched off before 08:00: nothing.
        assert!(alerts(&[
            on("s1", "2026-11-23T07:30:00Z"),
            off("s2", "2026-11-23T07:45:00Z"),
            tick("2026-11-23T12:00:00Z"),
        ])
        .is_empty());
    }

    #[test]
    fn on_then_off_with_calls_counted() {
        let events = [
            on("s1", "2026-11-23T08:12:00Z"),
            diverted("c1", "2026-11-23T08:20:00Z"),
            ev("x1", EventKind::Answered, "2026-11-23T08:25:00Z"),
            diverted("c2", "2026-11-23T09:00:00Z"),
            diverted("c3", "2026-11-23T10:40:00Z"),
            off("s2", "2026-11-23T10:40:00Z"),
            diverted("c4", "2026-11-23T10:41:00Z"),
        ];
        let all = alerts(&events);
        let states: Vec<(u64, AlertState, u64, String)> = all
            .iter()
            .map(|a| {
                (
                    a.revision,
                    a.state,
                    a.diverted_calls.unwrap_or(0),
                    a.updated_at.to_rfc3339_seconds(),
                )
            })
            .collect();
        let id1 = "div111:A81001:2026-11-23T08:12:00.000Z";
        let id2 = "div111:A81001:2026-11-23T10:41:00.000Z";
        assert_eq!(
            states,
            vec![
                (1, AlertState::Firing, 0, "2026-11-23T08:12:00Z".into()),
                (2, AlertState::Firing, 1, "2026-11-23T08:20:00Z".into()),
                (3, AlertState::Firing, 2, "2026-11-23T09:00:00Z".into()),
                (4, AlertState::Firing, 3, "2026-11-23T10:40:00Z".into()),
                (5, AlertState::Resolved, 3, "2026-11-23T10:40:00Z".into()),
                (1, AlertState::Firing, 1, "2026-11-23T10:41:00Z".into()),
            ]
        );
        assert!(all[..5].iter().all(|a| a.id == id1));
        assert_eq!(all[5].id, id2);
        assert_eq!(all[5].opened_by, Some(Opening::DivertedCall));
        assert_eq!(all[5].switched_on_at, None);
        let done = &all[4];
        assert_eq!(done.resolution, Some(Resolution::DivertOff));
        assert_eq!(done.duration_ms, Some((2 * 60 + 28) * 60_000));
        assert_eq!(done.resolved_at, Some(at("2026-11-23T10:40:00Z")));
        assert_eq!(
            all[0].summary,
            "A81001 has diverted its phones to NHS 111 in core hours since 08:12 on Mon 23 Nov (switched on at 08:12); no calls diverted yet"
        );
        assert_eq!(
            all[3].summary,
            "A81001 diverted 3 calls to NHS 111 in core hours since 08:12 on Mon 23 Nov (switched on at 08:12)"
        );
        assert_eq!(
            done.summary,
            "Resolved: A81001 diverted 3 calls to NHS 111 in core hours, 08:12 to 10:40 on Mon 23 Nov (2 h 28 min; switched on at 08:12); switched back"
        );
        assert_eq!(
            all[5].summary,
            "A81001 diverted 1 call to NHS 111 in core hours since 10:41 on Mon 23 Nov (no diversion switched on)"
        );
    }

    #[test]
    fn calls_with_no_switch_open_an_episode_until_core_hours_end_or_off() {
        let events = [
            diverted("c1", "2026-11-24T09:00:00Z"),
            diverted("c2", "2026-11-24T11:00:00Z"),
            tick("2026-11-24T20:00:00Z"),
        ];
        assert_eq!(
            brief(&events),
            vec![resolved(
                "2026-11-24T09:00:00Z",
                2,
                "2026-11-24T18:30:00Z",
                Ended
            )]
        );
        // A switch turned on later joins the open episode; off resolves it.
        let events = [
            diverted("c1", "2026-11-24T09:00:00Z"),
            on("s1", "2026-11-24T09:30:00Z"),
            diverted("c2", "2026-11-24T10:00:00Z"),
            off("s2", "2026-11-24T10:30:00Z"),
        ];
        let all = alerts(&events);
        assert_eq!(all.len(), 4);
        assert!(all
            .iter()
            .all(|a| a.id == "div111:A81001:2026-11-24T09:00:00.000Z"));
        assert_eq!(all[1].switched_on_at, Some(at("2026-11-24T09:30:00Z")));
        assert_eq!(all[1].opened_by, Some(Opening::DivertedCall));
        assert_eq!(
            (all[3].diverted_calls, all[3].resolution),
            (Some(2), Some(Resolution::DivertOff))
        );
        // An off with no switch on still ends an episode opened by calls.
        assert_eq!(
            brief(&[
                diverted("c1", "2026-11-24T09:00:00Z"),
                off("s", "2026-11-24T09:05:00Z")
            ]),
            vec![resolved(
                "2026-11-24T09:00:00Z",
                1,
                "2026-11-24T09:05:00Z",
                Off
            )]
        );
    }

    #[test]
    fn firing_until_the_data_reaches_the_end_of_core_hours() {
        let events = [
            on("s1", "2026-11-23T09:00:00Z"),
            tick("2026-11-23T18:29:59Z"),
        ];
        assert_eq!(brief(&events), vec![firing("2026-11-23T09:00:00Z", 0)]);
        let events = [
            on("s1", "2026-11-23T09:00:00Z"),
            tick("2026-11-23T18:30:00Z"),
        ];
        assert_eq!(
            brief(&events),
            vec![resolved(
                "2026-11-23T09:00:00Z",
                0,
                "2026-11-23T18:30:00Z",
                Ended
            )]
        );
    }

    #[test]
    fn an_episode_across_midnight_is_two_episodes() {
        let events = [
            on("s1", "2026-11-23T18:00:00Z"),
            diverted("c1", "2026-11-23T18:10:00Z"),
            diverted("c2", "2026-11-23T20:00:00Z"), // out of core hours: not counted
            diverted("c3", "2026-11-24T03:00:00Z"),
            diverted("c4", "2026-11-24T08:15:00Z"),
            off("s2", "2026-11-24T08:30:00Z"),
        ];
        assert_eq!(
            brief(&events),
            vec![
                resolved("2026-11-23T18:00:00Z", 1, "2026-11-23T18:30:00Z", Ended),
                resolved("2026-11-24T08:00:00Z", 1, "2026-11-24T08:30:00Z", Off),
            ]
        );
        let all = alerts(&events);
        let second = all
            .iter()
            .find(|a| a.started_at == at("2026-11-24T08:00:00Z"))
            .unwrap();
        assert_eq!(second.opened_by, Some(Opening::CoreHoursStarted));
        assert_eq!(second.switched_on_at, Some(at("2026-11-23T18:00:00Z")));
        assert_eq!(
            second.summary,
            "A81001 has diverted its phones to NHS 111 in core hours since 08:00 on Tue 24 Nov (switched on at 18:00 on Mon 23 Nov); no calls diverted yet"
        );
    }

    #[test]
    fn weekends_are_not_core_hours() {
        // Friday 27 November 2026 to Monday 30 November.
        let events = [
            on("s1", "2026-11-27T17:00:00Z"),
            diverted("c1", "2026-11-28T10:00:00Z"), // Saturday
            diverted("c2", "2026-11-29T10:00:00Z"), // Sunday
            off("s2", "2026-11-30T09:00:00Z"),
        ];
        assert_eq!(
            brief(&events),
            vec![
                resolved("2026-11-27T17:00:00Z", 0, "2026-11-27T18:30:00Z", Ended),
                resolved("2026-11-30T08:00:00Z", 0, "2026-11-30T09:00:00Z", Off),
            ]
        );
        assert!(alerts(&[
            on("s1", "2026-11-28T09:00:00Z"),
            off("s2", "2026-11-29T20:00:00Z")
        ])
        .is_empty());
    }

    #[test]
    fn bank_holidays_are_not_core_hours() {
        // Christmas Day 2026 is a Friday, Boxing Day's substitute Monday 28th.
        assert!(alerts(&[
            on("s1", "2026-12-25T09:00:00Z"),
            diverted("c1", "2026-12-25T10:00:00Z"),
            diverted("c2", "2026-12-28T10:00:00Z"),
            off("s2", "2026-12-28T12:00:00Z"),
        ])
        .is_empty());
        let events = [
            on("s1", "2026-12-24T17:00:00Z"),
            diverted("c1", "2026-12-28T11:00:00Z"),
            diverted("c2", "2026-12-29T08:30:00Z"),
            tick("2026-12-29T10:00:00Z"),
        ];
        assert_eq!(
            brief(&events),
            vec![
                resolved("2026-12-24T17:00:00Z", 0, "2026-12-24T18:30:00Z", Ended),
                firing("2026-12-29T08:00:00Z", 1),
            ]
        );
    }

    #[test]
    fn duplicates_and_conflicts_count_once() {
        let mut late_copy = diverted("c1", "2026-11-23T09:30:00Z");
        late_copy.event_id = "c1".into();
        let mut second_outcome = diverted("c9", "2026-11-23T09:40:00Z");
        second_outcome.call_id = Some("call-c1".into());
        let mut answered_first = ev("a2", EventKind::Answered, "2026-11-23T09:10:00Z");
        answered_first.call_id = Some("call-c2".into());
        let events = [
            on("s1", "2026-11-23T09:00:00Z"),
            on("s1", "2026-11-23T09:00:00Z"),
            on("s1", "2026-11-23T09:05:00Z"), // a later copy of s1
            diverted("c1", "2026-11-23T09:20:00Z"),
            diverted("c1", "2026-11-23T09:20:00Z"),
            late_copy,
            second_outcome,                         // the same call again, another id
            diverted("c2", "2026-11-23T09:15:00Z"), // lost to the earlier answer
            answered_first,
            off("s2", "2026-11-23T10:00:00Z"),
            off("s2", "2026-11-23T10:00:00Z"),
        ];
        let all = alerts(&events);
        assert_eq!(
            brief(&events),
            vec![resolved(
                "2026-11-23T09:00:00Z",
                1,
                "2026-11-23T10:00:00Z",
                Off
            )]
        );
        assert_eq!(all.len(), 3, "{all:#?}");
        assert_eq!(all[1].updated_at, at("2026-11-23T09:20:00Z"));
        // A duplicate switch with an earlier copy moves the start: earliest copy counts.
        let mut earlier = events.to_vec();
        earlier.push(on("s1", "2026-11-23T08:50:00Z"));
        assert_eq!(alerts(&earlier)[0].started_at, at("2026-11-23T08:50:00Z"));
    }

    #[test]
    fn second_switch_on_while_on_is_the_same_episode() {
        let mut other_vendor = on("t1", "2026-11-23T09:10:00Z");
        other_vendor.vendor = "twilio".into();
        let events = [
            on("s1", "2026-11-23T09:00:00Z"),
            other_vendor,
            off("s2", "2026-11-23T09:30:00Z"),
        ];
        assert_eq!(
            brief(&events),
            vec![resolved(
                "2026-11-23T09:00:00Z",
                0,
                "2026-11-23T09:30:00Z",
                Off
            )]
        );
    }

    #[test]
    fn practices_are_independent() {
        let mut other = on("s1", "2026-11-23T09:00:00Z");
        other.practice = "B82002".into();
        let all = alerts(&[on("s1", "2026-11-23T09:00:00Z"), other]);
        let practices: Vec<&str> = all.iter().map(|a| a.practice.as_str()).collect();
        assert_eq!(practices, ["A81001", "B82002"]);
        assert_eq!(all[1].id, "div111:B82002:2026-11-23T09:00:00.000Z");
    }

    #[test]
    fn record_fields_are_the_contract() {
        let all = alerts(&[
            on("s1", "2026-11-23T09:00:00Z"),
            off("s2", "2026-11-23T09:45:00Z"),
        ]);
        let json = serde_json::to_value(&all[1]).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let mut expected: Vec<&str> = "id kind state revision practice pcn icb started_at updated_at opened_by switched_on_at diverted_calls value fire_level resolve_level worst_value offered abandoned answered period_minutes last_event_at resolved_at duration_ms resolution summary".split(' ').collect();
        expected.sort_unstable();
        assert_eq!(names, expected);
        assert_eq!(json["kind"], "diversion_111");
        assert_eq!(json["state"], "resolved");
        assert_eq!(json["resolution"], "divert_111_off");
        assert_eq!(json["opened_by"], "divert_111_on");
        assert_eq!(json["duration_ms"], 45 * 60_000);
        assert_eq!(json["started_at"], "2026-11-23T09:00:00.000Z");
        assert!(json["pcn"].is_null() && json["icb"].is_null());
        assert!(json["value"].is_null() && json["last_event_at"].is_null());
        let back: Alert = serde_json::from_value(json).unwrap();
        assert_eq!(back, all[1]);
    }

    #[test]
    fn drain_emits_changes_with_growing_revisions() {
        let mut tracker = AlertTracker::new(CoreHours::shipped());
        tracker.observe(&on("s1", "2026-11-23T09:00:00Z"));
        let first = tracker.drain();
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].revision, first[0].state), (1, AlertState::Firing));
        assert!(tracker.drain().is_empty(), "nothing changed");
        tracker.observe(&diverted("c1", "2026-11-23T09:10:00Z"));
        tracker.observe(&diverted("c2", "2026-11-23T09:20:00Z"));
        let update = tracker.drain();
        assert_eq!(update.len(), 1, "the current state, not every step");
        assert_eq!((update[0].revision, update[0].diverted_calls), (2, Some(2)));
        // The horizon passing 18:30 resolves a live alert with no new event for it.
        tracker.advance_to(at("2026-11-23T18:30:00Z"));
        let ended = tracker.drain();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].resolution, Some(Resolution::CoreHoursEnded));
        assert_eq!(ended[0].revision, 3);
        // Still switched on: the next morning opens a new episode.
        tracker.advance_to(at("2026-11-24T08:00:00Z"));
        let next = tracker.drain();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, "div111:A81001:2026-11-24T08:00:00.000Z");
    }

    #[test]
    fn drain_supersedes_an_alert_whose_start_moved() {
        let mut tracker = AlertTracker::new(CoreHours::shipped());
        tracker.observe(&on("s1", "2026-11-23T09:10:00Z"));
        assert_eq!(tracker.drain().len(), 1);
        // A call diverted earlier arrives late: the episode started at 09:05.
        tracker.observe(&diverted("c1", "2026-11-23T09:05:00Z"));
        let changes = tracker.drain();
        assert_eq!(changes.len(), 2, "{changes:#?}");
        let old = changes
            .iter()
            .find(|a| a.id == "div111:A81001:2026-11-23T09:10:00.000Z")
            .unwrap();
        assert_eq!(
            (old.state, old.resolution, old.revision),
            (AlertState::Resolved, Some(Resolution::Superseded), 2)
        );
        let new = changes
            .iter()
            .find(|a| a.id == "div111:A81001:2026-11-23T09:05:00.000Z")
            .unwrap();
        assert_eq!(
            (new.state, new.diverted_calls),
            (AlertState::Firing, Some(1))
        );
        assert!(tracker.drain().is_empty());
    }

    // ---- order independence ----

    fn arbitrary_events() -> impl Strategy<Value = Vec<CallEvent>> {
        let kinds = prop::sample::select(vec![
            EventKind::Divert111On,
            EventKind::Divert111Off,
            EventKind::Diverted111,
            EventKind::Diverted111,
            EventKind::Answered,
            EventKind::Offered,
        ]);
        // Minutes from Friday 2026-12-24 07:00Z to past Tuesday 29th: core
        // hours, evenings, a weekend and two bank holidays.
        let one = (0u8..10, 0u8..12, kinds, 0i64..(6 * 24 * 60), 0u8..2, 0u8..2);
        prop::collection::vec(one, 1..50).prop_map(|items| {
            items
                .into_iter()
                .map(|(call, id, kind, minute, practice, vendor)| {
                    // Coarse times make ties; few ids make duplicates.
                    let minute = if minute % 3 == 0 {
                        minute - minute % 30
                    } else {
                        minute
                    };
                    CallEvent {
                        event_id: format!("e{call}-{id}"),
                        call_id: (!kind.is_practice_level()).then(|| format!("c{call}")),
                        vendor: ["generic", "twilio"][usize::from(vendor)].into(),
                        practice: format!("A8100{practice}"),
                        kind,
                        at: Timestamp(at("2026-12-24T07:00:00Z").0 + minute * MINUTE_MS),
                        caller: None,
                        queue_position: None,
                    }
                })
                .collect()
        })
    }

    fn shuffled(events: &[CallEvent], seed: u64) -> Vec<CallEvent> {
        let mut out = events.to_vec();
        let mut state = seed | 1;
        for i in (1..out.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.swap(i, (state % (i as u64 + 1)) as usize);
        }
        out
    }

    proptest! {
        #[test]
        fn any_order_gives_the_same_alerts(events in arbitrary_events(), seed in any::<u64>()) {
            let hours = CoreHours::shipped();
            let expected = diversion_alerts(&events, &hours);
            let actual = diversion_alerts(&shuffled(&events, seed), &hours);
            prop_assert_eq!(&actual, &expected);
            // Each alert: revisions 1, 2, 3, ...; at most one resolved state, last.
            for alert in latest_by_id(expected.clone()) {
                let states: Vec<&Alert> = expected.iter().filter(|a| a.id == alert.id).collect();
                for (i, state) in states.iter().enumerate() {
                    prop_assert_eq!(state.revision, i as u64 + 1);
                    prop_assert!(hours.is_core(state.started_at));
                    prop_assert_eq!(state.state == AlertState::Resolved, i + 1 == states.len() && alert.state == AlertState::Resolved);
                }
            }
        }

        #[test]
        fn streaming_ends_where_the_batch_does(events in arbitrary_events(), seed in any::<u64>(), every in 1usize..8) {
            let hours = CoreHours::shipped();
            let mut tracker = AlertTracker::new(hours.clone());
            let mut last: BTreeMap<String, Alert> = BTreeMap::new();
            for (i, event) in shuffled(&events, seed).iter().enumerate() {
                tracker.observe(event);
                if i % every == 0 {
                    for alert in tracker.drain() {
                        if let Some(held) = last.get(&alert.id) {
                            prop_assert!(alert.revision > held.revision);
                        }
                        last.insert(alert.id.clone(), alert);
                    }
                }
            }
            for alert in tracker.drain() {
                last.insert(alert.id.clone(), alert);
            }
            let streamed: Vec<Alert> = last
                .into_values()
                .filter(|a| a.resolution != Some(Resolution::Superseded))
                .map(|a| a.without_revision())
                .collect();
            let batch: Vec<Alert> = latest_by_id(diversion_alerts(&events, &hours))
                .iter()
                .map(Alert::without_revision)
                .collect();
            prop_assert_eq!(streamed, batch);
        }
    }
}
