//! The national model, pure: practice-days of calls through menus, queues
//! staffed by the hour, abandons, redials, callbacks, voicemail and 111
//! diversions, shaped like English general practice and calibrated against
//! NHS England's published volumes (docs/simulator.md). No I/O: a
//! [`Scenario`] yields events in delivery order, deterministic for a seed.

use std::collections::{BinaryHeap, VecDeque};

use anyhow::{bail, Result};
use callpulse_core::{CallEvent, CoreHours, EventKind, Timestamp};
use chrono::{Datelike, NaiveDate, Offset, TimeZone};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::practices::{fnv1a, splitmix, unit, Practice};

/// Calls per 1,000 registered patients per working day (domain.md), redials included.
pub const CALLS_PER_1000_PER_WORKING_DAY: f64 = 25.0;

/// Share of a working day's first attempts in each stretch of London local
/// time, from the minute given to the next entry's (percentages, sum 100):
/// the 8 am surge, a lunchtime dip, quiet evenings. 08:00-10:00 holds 30%
/// of first attempts; redials after abandoned calls add to it.
const WORKING_SHAPE: [(u32, f64); 19] = [
    (0, 0.3),
    (6 * 60, 1.2),
    (7 * 60 + 30, 0.8),
    (8 * 60, 7.0),
    (8 * 60 + 15, 5.0),
    (8 * 60 + 30, 7.0),
    (9 * 60, 6.0),
    (9 * 60 + 30, 5.0),
    (10 * 60, 10.0),
    (11 * 60, 9.0),
    (12 * 60, 6.0),
    (13 * 60, 6.5),
    (14 * 60, 8.5),
    (15 * 60, 8.5),
    (16 * 60, 7.5),
    (17 * 60, 6.0),
    (18 * 60, 2.5),
    (18 * 60 + 30, 2.2),
    (20 * 60, 1.0),
];

/// Weekends and bank holidays: the few calls that come arrive in the daytime.
const CLOSED_SHAPE: [(u32, f64); 4] = [
    (0, 2.0),
    (8 * 60, 60.0),
    (13 * 60, 30.0),
    (18 * 60 + 30, 8.0),
];

/// A weekday's calls relative to the average working day, Monday first
/// (Monday highest, Friday lowest; the five sum to 5).
const WEEKDAY_FACTOR: [f64; 5] = [1.24, 1.02, 0.96, 0.92, 0.86];
/// The first working day after a bank holiday is busier than a Monday.
const AFTER_BANK_HOLIDAY_FACTOR: f64 = 1.3;
/// A weekend day or bank holiday, relative to the average working day.
const CLOSED_DAY_FACTOR: f64 = 0.04;
/// Redials add about this share to first attempts (measured, see tests).
const REDIAL_INFLATION: f64 = 1.12;

const CORE_START: u32 = 8 * 60;
const CORE_END: u32 = 18 * 60 + 30;

/// Faults to inject into the delivered stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// About 2% of events are delivered twice (same `event_id`), the copy up to a minute later.
    pub duplicates: bool,
    /// About 3% of events arrive out of order (1-60 s after later events) and
    /// 0.5% late, 6-30 minutes after their time (past the processor's allowed lateness).
    pub late: bool,
    /// One practice in 50 (at least one) delivers nothing for the middle half of the run.
    pub silence: bool,
}

impl Faults {
    /// `duplicates,late,silence` (any subset, comma separated; `all`; `none` or empty).
    pub fn parse(text: &str) -> Result<Faults> {
        let mut faults = Faults::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "duplicates" => faults.duplicates = true,
                "late" | "out-of-order" => faults.late = true,
                "silence" => faults.silence = true,
                "all" => {
                    faults = Faults {
                        duplicates: true,
                        late: true,
                        silence: true,
                    }
                }
                "none" => {}
                other => bail!(
                    "unknown fault `{other}`: expected duplicates, late, silence (comma separated)"
                ),
            }
        }
        Ok(faults)
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub practices: Vec<Practice>,
    pub seed: u64,
    /// Calls offered from here (event time) ...
    pub start: Timestamp,
    /// ... for this long. Their later events (answers, callbacks) follow.
    pub duration_ms: i64,
    /// Multiplier on the national calibration (1 = domain.md volumes).
    pub demand: f64,
    pub faults: Faults,
    pub calendar: CoreHours,
}

/// One event and when the feed delivers it (later than `event.at` only with faults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub deliver_at: Timestamp,
    pub event: CallEvent,
}

/// The mean calls per practice per minute in core hours on an average
/// working day at `demand` 1: `--rate` divided by this gives the demand.
pub fn national_core_rate() -> f64 {
    let mean_list = 10_100.0;
    let core_share: f64 = segments(&WORKING_SHAPE)
        .filter(|(from, to, _)| *from >= CORE_START && *to <= CORE_END)
        .map(|(_, _, w)| w)
        .sum::<f64>()
        / 100.0;
    mean_list * CALLS_PER_1000_PER_WORKING_DAY / 1000.0 * core_share
        / f64::from(CORE_END - CORE_START)
}

fn segments(shape: &[(u32, f64)]) -> impl Iterator<Item = (u32, u32, f64)> + '_ {
    shape.iter().enumerate().map(|(i, &(from, weight))| {
        let to = shape.get(i + 1).map_or(24 * 60, |next| next.0);
        (from, to, weight)
    })
}

/// A compact event while the stream is built (a national day holds millions).
#[derive(Debug, Clone, Copy)]
struct SimEvent {
    at: i64,
    deliver: i64,
    practice: u32,
    /// yyyymmdd of the practice-day that made it.
    day: u32,
    /// Call number within the practice-day; `u32::MAX - n` for the n-th switch.
    call: u32,
    /// Caller index within the practice's list; `u32::MAX`: withheld.
    caller: u32,
    kind: EventKind,
    /// Event number within the call (or switch).
    index: u8,
    /// 0: none; else queue position + 1.
    queue_position: u16,
}

const WITHHELD: u32 = u32::MAX;

impl Scenario {
    /// Every delivery, in delivery order (for tests and small runs; the
    /// stream holds at most about a day of events at a time).
    pub fn generate(&self) -> Vec<Delivery> {
        self.stream().collect()
    }

    /// The deliveries in delivery order, built a London day at a time.
    pub fn stream(&self) -> Stream<'_> {
        let end = Timestamp(self.start.0 + self.duration_ms.max(0));
        let first = self.start.london_date();
        let last = Timestamp(end.0 - 1).london_date();
        Stream {
            scenario: self,
            next_day: (self.duration_ms > 0).then_some(first),
            last_day: last,
            end,
            pending: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    /// The practices whose feed is silent, and when (with `faults.silence`).
    pub fn silent_practices(&self) -> Vec<(usize, Timestamp, Timestamp)> {
        if !self.faults.silence || self.practices.is_empty() {
            return Vec::new();
        }
        let n = (self.practices.len() / 50).max(1);
        let mut ranked: Vec<(u64, usize)> = self
            .practices
            .iter()
            .enumerate()
            .map(|(i, p)| (splitmix(self.seed ^ fnv1a(p.code.as_bytes()) ^ 0x511e), i))
            .collect();
        ranked.sort_unstable();
        let from = Timestamp(self.start.0 + self.duration_ms / 4);
        let to = Timestamp(self.start.0 + self.duration_ms * 3 / 4);
        ranked
            .into_iter()
            .take(n)
            .map(|(_, i)| (i, from, to))
            .collect()
    }

    fn to_delivery(&self, e: &SimEvent) -> Delivery {
        let practice = &self.practices[e.practice as usize].code;
        let (call_id, event_id) = if e.kind.is_practice_level() {
            let n = u32::MAX - e.call;
            (
                None,
                format!("sim-{practice}-{}-switch{n}-{}", e.day, e.index),
            )
        } else {
            let call_id = format!("sim-{practice}-{}-{}", e.day, e.call);
            let event_id = format!("{call_id}-{}", e.index);
            (Some(call_id), event_id)
        };
        Delivery {
            deliver_at: Timestamp(e.deliver),
            event: CallEvent {
                event_id,
                call_id,
                vendor: "generic".into(),
                practice: practice.clone(),
                kind: e.kind,
                at: Timestamp(e.at),
                caller: (e.kind == EventKind::Offered && e.caller != WITHHELD)
                    .then(|| format!("sim-{practice}-p{:x}", e.caller)),
                queue_position: (e.queue_position > 0).then(|| u32::from(e.queue_position - 1)),
            },
        }
    }

    /// One practice's events for one London day: calls offered within the
    /// scenario's range, every event of theirs, and the day's 111 switches.
    fn practice_day(&self, index: usize, date: NaiveDate, out: &mut Vec<SimEvent>) {
        let practice = &self.practices[index];
        let day = Day::new(date, &self.calendar);
        let ymd = date.year() as u32 * 10_000 + date.month() * 100 + date.day();
        let code_hash = fnv1a(practice.code.as_bytes());
        let mut rng =
            StdRng::seed_from_u64(splitmix(self.seed ^ splitmix(code_hash ^ u64::from(ymd))));
        let profile = Profile::of(practice, code_hash);
        let range = (self.start.0, self.start.0 + self.duration_ms);
        let first = out.len();
        let mut day_sim = PracticeDay {
            day: &day,
            profile: &profile,
            practice: index as u32,
            ymd,
            out,
            calls: 0,
            switches: 0,
            queue: VecDeque::new(),
            agents_free: vec![0; profile.peak_staff as usize],
            diversions: Vec::new(),
        };
        day_sim.switches(&mut rng, range);

        // First attempts: a Poisson process, piecewise constant over the shape.
        let factor = day.factor(&self.calendar);
        let daily = f64::from(practice.list_size) * CALLS_PER_1000_PER_WORKING_DAY / 1000.0
            * self.demand
            * factor
            / REDIAL_INFLATION;
        let shape: &[(u32, f64)] = if day.working {
            &WORKING_SHAPE
        } else {
            &CLOSED_SHAPE
        };
        let total: f64 = shape.iter().map(|s| s.1).sum();
        let mut attempts = BinaryHeap::new();
        for (from, to, weight) in segments(shape) {
            let (t0, t1) = (day.instant(from), day.instant(to));
            let rate_per_ms = daily * weight / total / (t1 - t0) as f64;
            if rate_per_ms <= 0.0 {
                continue;
            }
            let mut t = t0 as f64;
            loop {
                t += exponential(&mut rng, 1.0 / rate_per_ms);
                if t >= t1 as f64 {
                    break;
                }
                let at = t as i64;
                if at < range.0 || at >= range.1 {
                    continue;
                }
                let caller = if rng.random::<f64>() < 0.05 {
                    WITHHELD
                } else {
                    rng.random_range(0..practice.list_size)
                };
                attempts.push(std::cmp::Reverse((at, caller, 1u8)));
            }
        }
        // Each attempt in time order; redials join the heap.
        while let Some(std::cmp::Reverse((at, caller, attempt))) = attempts.pop() {
            if let Some(redial_at) = day_sim.call(&mut rng, at, caller, attempt) {
                if redial_at < day.end && redial_at < range.1 && caller != WITHHELD {
                    attempts.push(std::cmp::Reverse((redial_at, caller, attempt + 1)));
                }
            }
        }
        self.apply_faults(&mut rng, &mut out[first..]);
    }

    /// Delivery times for the practice-day's events: duplicates are pushed
    /// by the caller of this function (they need the vector).
    fn apply_faults(&self, rng: &mut StdRng, events: &mut [SimEvent]) {
        if !self.faults.late {
            return;
        }
        for e in events {
            if let Some(delay) = late_delay(rng) {
                e.deliver = e.at + delay;
            }
        }
    }
}

/// With `late`: how late one delivery is, if it is: 3% 1-60 s (out of
/// order), 0.5% 6-30 minutes (past the processor's allowed lateness).
pub(crate) fn late_delay(rng: &mut StdRng) -> Option<i64> {
    let roll: f64 = rng.random();
    if roll < 0.005 {
        Some(rng.random_range(360_000..1_800_000))
    } else if roll < 0.035 {
        Some(rng.random_range(1_000..60_000))
    } else {
        None
    }
}

/// With `duplicates`: whether one delivery is made twice (2%), and how
/// much later the copy comes (up to a minute).
pub(crate) fn duplicate_delay(rng: &mut StdRng) -> Option<i64> {
    (rng.random::<f64>() < 0.02).then(|| rng.random_range(0..60_000))
}

/// How a practice runs its phones: staffing, callbacks, 111 out of hours.
struct Profile {
    peak_staff: u32,
    offers_callbacks: bool,
    /// Expected wait from which a callback is offered.
    callback_from_ms: i64,
    /// Diverts to 111 when closed (evenings, weekends), switching each working day.
    ooh_divert: bool,
    /// Queue timeout, after which the call goes to voicemail (missed).
    max_wait_ms: i64,
}

impl Profile {
    fn of(practice: &Practice, code_hash: u64) -> Profile {
        let u = |salt: u64| unit(code_hash ^ salt);
        Profile {
            peak_staff: ((f64::from(practice.list_size) / 4_500.0).round() as u32).max(1),
            offers_callbacks: u(1) < 0.7,
            callback_from_ms: 45_000 + (u(2) * 135_000.0) as i64,
            ooh_divert: u(3) < 0.25,
            max_wait_ms: 900_000 + (u(4) * 1_200_000.0) as i64,
        }
    }

    /// Call handlers on the phones at a local minute of a working day.
    fn staff_at(&self, minute: u32) -> u32 {
        let share = match minute {
            m if !(CORE_START..CORE_END).contains(&m) => return 0,
            m if m < 10 * 60 => 1.0,
            m if m < 12 * 60 + 30 => 0.6,
            m if m < 14 * 60 => 0.4,
            _ => 0.5,
        };
        ((f64::from(self.peak_staff) * share).ceil() as u32).max(1)
    }
}

/// A London day: its instants by local minute, whether the practice is open.
struct Day {
    date: NaiveDate,
    /// UTC instant of local 00:00 as if the whole day had noon's offset.
    base: i64,
    end: i64,
    weekday: u32,
    working: bool,
}

impl Day {
    fn new(date: NaiveDate, calendar: &CoreHours) -> Day {
        let noon = date.and_hms_opt(12, 0, 0).expect("noon exists");
        let offset_ms = i64::from(
            chrono_tz::Europe::London
                .offset_from_utc_datetime(&noon)
                .fix()
                .local_minus_utc(),
        ) * 1000;
        let midnight_utc = noon.and_utc().timestamp_millis() - 12 * 3_600_000;
        let weekday = date.weekday().num_days_from_monday();
        Day {
            date,
            base: midnight_utc - offset_ms,
            end: midnight_utc - offset_ms + 86_400_000,
            weekday,
            working: weekday < 5 && !calendar.is_bank_holiday(date),
        }
    }

    fn instant(&self, minute: u32) -> i64 {
        self.base + i64::from(minute) * 60_000
    }

    fn minute(&self, at: i64) -> u32 {
        ((at - self.base).clamp(0, 86_399_999) / 60_000) as u32
    }

    fn is_open(&self, at: i64) -> bool {
        self.working && (CORE_START..CORE_END).contains(&self.minute(at))
    }

    fn factor(&self, calendar: &CoreHours) -> f64 {
        if !self.working {
            return CLOSED_DAY_FACTOR;
        }
        let previous = self.date.pred_opt().expect("a date after 2000");
        let after_holiday = calendar.is_bank_holiday(previous)
            || (self.weekday == 0
                && (1..=3).any(|back| {
                    self.date
                        .checked_sub_days(chrono::Days::new(back))
                        .is_some_and(|d| calendar.is_bank_holiday(d))
                }));
        if after_holiday {
            AFTER_BANK_HOLIDAY_FACTOR
        } else {
            WEEKDAY_FACTOR[self.weekday as usize]
        }
    }
}

/// The state of one practice-day while its calls are simulated.
struct PracticeDay<'a> {
    day: &'a Day,
    profile: &'a Profile,
    practice: u32,
    ymd: u32,
    out: &'a mut Vec<SimEvent>,
    calls: u32,
    switches: u32,
    /// (joined, left) of callers in the queue, for positions.
    queue: VecDeque<(i64, i64)>,
    /// When each call handler is next free (event time).
    agents_free: Vec<i64>,
    /// The day's 111 diversions, [on, off).
    diversions: Vec<(i64, i64)>,
}

impl PracticeDay<'_> {
    fn push(&mut self, call: u32, caller: u32, kind: EventKind, at: i64, index: u8, position: u16) {
        self.out.push(SimEvent {
            at,
            deliver: at,
            practice: self.practice,
            day: self.ymd,
            call,
            caller,
            kind,
            index,
            queue_position: position,
        });
    }

    fn switch(&mut self, kind: EventKind, at: i64) {
        self.switches += 1;
        let n = self.switches;
        self.push(u32::MAX - n, WITHHELD, kind, at, 0, 0);
    }

    /// The day's 111 switches: practices that divert out of hours switch
    /// off just before 08:00 and on just after 18:30; about one working
    /// practice-day in 80 also diverts in core hours (usually over lunch).
    fn switches(&mut self, rng: &mut StdRng, range: (i64, i64)) {
        self.diversions.clear();
        let in_range = |at: i64| at >= range.0 && at < range.1;
        if !self.day.working {
            if self.profile.ooh_divert {
                self.diversions.push((self.day.base, self.day.end));
            }
            return;
        }
        let mut core_divert = None;
        if rng.random::<f64>() < 0.0125 {
            let on = if rng.random::<f64>() < 0.5 {
                self.day.instant(12 * 60 + 15) + rng.random_range(0..1_800_000)
            } else {
                self.day.instant(CORE_START) + rng.random_range(0..32_400_000)
            };
            let off = (on + rng.random_range(1_200_000..7_200_000)).min(self.day.instant(CORE_END));
            core_divert = Some((on, off));
        }
        if self.profile.ooh_divert {
            let off = self.day.instant(CORE_START) - rng.random_range(60_000..300_000);
            let on = self.day.instant(CORE_END) + rng.random_range(30_000..300_000);
            self.diversions.push((self.day.base, off));
            self.diversions.push((on, self.day.end));
            if in_range(off) {
                self.switch(EventKind::Divert111Off, off);
            }
            if in_range(on) {
                self.switch(EventKind::Divert111On, on);
            }
        }
        if let Some((on, off)) = core_divert {
            self.diversions.push((on, off));
            if in_range(on) {
                self.switch(EventKind::Divert111On, on);
            }
            if in_range(off) {
                self.switch(EventKind::Divert111Off, off);
            }
        }
    }

    fn diverting(&self, at: i64) -> bool {
        self.diversions
            .iter()
            .any(|&(on, off)| on <= at && at < off)
    }

    /// When call handler `agent` can next take a call at or after `at`
    /// (`i64::MAX`: not again today).
    fn on_shift_from(&self, agent: u32, at: i64) -> i64 {
        let mut t = at;
        while t < self.day.instant(CORE_END) {
            let minute = self.day.minute(t);
            if self.day.working && agent < self.profile.staff_at(minute) {
                return t;
            }
            // Jump to the next quarter hour, where staffing may change.
            t = self.day.instant((minute / 15 + 1) * 15).max(t + 1);
        }
        i64::MAX
    }

    /// Simulates one attempt; returns when the caller tries again, if they do.
    fn call(&mut self, rng: &mut StdRng, t0: i64, caller: u32, attempt: u8) -> Option<i64> {
        self.calls += 1;
        let call = self.calls;
        let mut index = 0u8;
        let mut emit = |s: &mut Self, kind: EventKind, at: i64, position: u16| {
            s.push(call, caller, kind, at, index, position);
            index += 1;
        };
        emit(self, EventKind::Offered, t0, 0);
        if self.diverting(t0) {
            emit(
                self,
                EventKind::Diverted111,
                t0 + rng.random_range(5_000..25_000),
                0,
            );
            return None;
        }
        let menu = rng.random_range(15_000..75_000);
        if !self.day.is_open(t0) {
            // Lines closed: the message, then the caller hangs up or it rings out.
            if rng.random::<f64>() < 0.7 {
                emit(self, EventKind::IvrEnded, t0 + menu, 0);
            } else {
                emit(self, EventKind::Missed, t0 + menu + 30_000, 0);
            }
            return None;
        }
        if rng.random::<f64>() < 0.21 {
            emit(self, EventKind::IvrEnded, t0 + menu, 0);
            return (rng.random::<f64>() < 0.08).then(|| t0 + rng.random_range(120_000..1_800_000));
        }
        let joined = t0 + menu;
        self.queue.retain(|&(_, left)| left > joined);
        let position = self.queue.len();
        emit(
            self,
            EventKind::Queued,
            joined,
            position.min(u16::MAX as usize - 1) as u16 + 1,
        );
        let scramble = self.day.minute(t0) < 10 * 60;

        // Who picks up, and when: the first handler free and on shift.
        let (agent, start) = (0..self.agents_free.len() as u32)
            .map(|a| {
                (
                    a,
                    self.on_shift_from(a, self.agents_free[a as usize].max(joined)),
                )
            })
            .min_by_key(|&(_, t)| t)
            .unwrap_or((0, i64::MAX));
        // Told the expected wait and offered a callback when it is long;
        // the longer the wait, the likelier the caller takes it.
        let wait = start.saturating_sub(joined);
        if self.profile.offers_callbacks
            && wait >= self.profile.callback_from_ms
            && start < self.day.instant(CORE_END)
            && rng.random::<f64>() < (0.45 + wait as f64 / 1_200_000.0).min(0.85)
        {
            let booked = joined + rng.random_range(15_000..45_000);
            self.queue.push_back((joined, booked));
            emit(self, EventKind::CallbackRequested, booked, 0);
            emit(self, EventKind::Ended, booked + 2_000, 0);
            let close = self.day.instant(CORE_END);
            let mut at = (booked + rng.random_range(600_000..10_800_000))
                .min(close - rng.random_range(0..1_200_000));
            at = at.max(booked + 300_000);
            emit(self, EventKind::CallbackMade, at, 0);
            if rng.random::<f64>() < 0.1 {
                emit(
                    self,
                    EventKind::CallbackMade,
                    at + rng.random_range(900_000..3_600_000),
                    0,
                );
            }
            return None;
        }

        // Patience: most wait a few minutes; the chance of giving up grows with the wait.
        let patience =
            20_000 + exponential(rng, if scramble { 240_000.0 } else { 330_000.0 }) as i64;
        let close = self.day.instant(CORE_END);
        let timeout = joined + self.profile.max_wait_ms;
        if wait > patience && joined + patience < timeout.min(close) {
            let left = joined + patience;
            self.queue.push_back((joined, left));
            emit(self, EventKind::Abandoned, left, 0);
            emit(self, EventKind::Ended, left, 0);
            let p = if scramble { 0.8 } else { 0.55 };
            return (attempt < 8 && rng.random::<f64>() < p).then(|| {
                left + rng.random_range(10_000..if scramble { 180_000 } else { 900_000 })
            });
        }
        if start >= timeout.min(close) {
            // Queue timeout or lines closing: voicemail, counted as missed.
            let left = timeout.min(close).max(joined + 1_000);
            self.queue.push_back((joined, left));
            emit(self, EventKind::Missed, left, 0);
            emit(
                self,
                EventKind::Ended,
                left + rng.random_range(0..60_000),
                0,
            );
            return (attempt < 8 && rng.random::<f64>() < 0.4)
                .then(|| left + rng.random_range(60_000..1_200_000));
        }
        self.queue.push_back((joined, start));
        if rng.random::<f64>() < 0.03 {
            // Put through to a phone that rang out.
            let left = start + rng.random_range(20_000..60_000);
            emit(self, EventKind::Missed, left, 0);
            emit(self, EventKind::Ended, left, 0);
            return (attempt < 8 && rng.random::<f64>() < 0.6)
                .then(|| left + rng.random_range(30_000..600_000));
        }
        let talk = 45_000 + exponential(rng, 150_000.0).min(1_800_000.0) as i64;
        let wrap = rng.random_range(20_000..90_000);
        self.agents_free[agent as usize] = start + talk + wrap;
        emit(self, EventKind::Answered, start, 0);
        emit(self, EventKind::Ended, start + talk, 0);
        None
    }
}

fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// The deliveries of a [`Scenario`], in delivery order.
pub struct Stream<'a> {
    scenario: &'a Scenario,
    next_day: Option<NaiveDate>,
    last_day: NaiveDate,
    end: Timestamp,
    /// Generated, not yet released: may still be preceded by a later day's.
    pending: Vec<SimEvent>,
    ready: VecDeque<SimEvent>,
}

impl Stream<'_> {
    /// Generates the next day and releases what no later day can precede.
    fn advance(&mut self) -> bool {
        let Some(date) = self.next_day else {
            if self.pending.is_empty() {
                return false;
            }
            self.ready.extend(self.pending.drain(..));
            return true;
        };
        let s = self.scenario;
        let before = self.pending.len();
        for index in 0..s.practices.len() {
            s.practice_day(index, date, &mut self.pending);
        }
        let silent = s.silent_practices();
        let mut rng = StdRng::seed_from_u64(splitmix(
            s.seed ^ 0xd0b1e ^ u64::from(date.num_days_from_ce() as u32),
        ));
        let mut copies = Vec::new();
        let mut i = before;
        while i < self.pending.len() {
            let e = self.pending[i];
            let muted = silent
                .iter()
                .any(|&(p, from, to)| p == e.practice as usize && from.0 <= e.at && e.at < to.0);
            if muted {
                self.pending.swap_remove(i);
                continue;
            }
            let copy_delay = if s.faults.duplicates {
                duplicate_delay(&mut rng)
            } else {
                None
            };
            if let Some(delay) = copy_delay {
                let mut copy = e;
                copy.deliver = e.deliver + delay;
                copies.push(copy);
            }
            i += 1;
        }
        self.pending.extend(copies);
        self.pending
            .sort_unstable_by_key(|e| (e.deliver, e.at, e.practice, e.day, e.call, e.index));
        // Everything of later days happens from the next local midnight on.
        let boundary = Day::new(date.succ_opt().expect("a date before 2100"), &s.calendar).base;
        let cut = self.pending.partition_point(|e| e.deliver < boundary);
        self.ready.extend(self.pending.drain(..cut));
        self.next_day = (date < self.last_day && self.end.0 > boundary)
            .then(|| date.succ_opt().expect("a date before 2100"));
        true
    }
}

impl Iterator for Stream<'_> {
    type Item = Delivery;

    fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(self.scenario.to_delivery(&e));
            }
            if !self.advance() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::practices::synthetic_practices;

    fn scenario(practices: usize, start: &str, duration_ms: i64) -> Scenario {
        Scenario {
            practices: synthetic_practices(practices),
            seed: 42,
            start: crate::parse_start(start, Timestamp(0)).unwrap(),
            duration_ms,
            demand: 1.0,
            faults: Faults::default(),
            calendar: CoreHours::shipped(),
        }
    }

    const DAY: i64 = 86_400_000;

    /// Offered calls per (London date, local hour), and outcome counts.
    #[derive(Default)]
    struct Tally {
        offered: HashMap<(NaiveDate, u32), u64>,
        outcomes: HashMap<EventKind, u64>,
        events: u64,
    }

    fn tally(s: &Scenario) -> Tally {
        let mut t = Tally::default();
        let mut last = i64::MIN;
        for d in s.stream() {
            assert!(d.deliver_at.0 >= last, "delivery order");
            last = d.deliver_at.0;
            t.events += 1;
            if d.event.kind == EventKind::Offered {
                let (date, minute, _) =
                    callpulse_core::time::london_minute_of_day_and_weekday(d.event.at);
                *t.offered.entry((date, minute / 60)).or_default() += 1;
            }
            if d.event.kind.is_outcome() {
                *t.outcomes.entry(d.event.kind).or_default() += 1;
            }
        }
        t
    }

    fn day_total(t: &Tally, date: NaiveDate) -> u64 {
        t.offered
            .iter()
            .filter(|((d, _), _)| *d == date)
            .map(|(_, n)| n)
            .sum()
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_week_has_the_shape_and_volume_of_general_practice() {
        // Monday 16 to Sunday 22 November 2026: no bank holiday.
        let s = scenario(120, "2026-11-16", 7 * DAY);
        let t = tally(&s);
        let week: u64 = t.offered.values().sum();
        let monday = date("2026-11-16");
        let monday_8_to_10 =
            t.offered.get(&(monday, 8)).unwrap() + t.offered.get(&(monday, 9)).unwrap();
        let share = monday_8_to_10 as f64 / week as f64;
        // domain.md: Monday 08:00-10:00 is 7.5% of the month (~ of a week).
        assert!((0.06..0.095).contains(&share), "Monday 08-10 share {share}");
        let days: Vec<u64> = (0..7)
            .map(|i| day_total(&t, monday + chrono::Days::new(i)))
            .collect();
        assert!(
            days[0] > days[1] && days[1] > days[4],
            "Monday highest, Friday lowest: {days:?}"
        );
        assert!(
            days[5] * 10 < days[4] && days[6] * 10 < days[4],
            "weekends quiet: {days:?}"
        );
        // About 25 calls per 1,000 patients per working day.
        let patients: f64 = s.practices.iter().map(|p| f64::from(p.list_size)).sum();
        let per_1000 = days[..5].iter().sum::<u64>() as f64 / 5.0 / patients * 1000.0;
        assert!(
            (20.0..30.0).contains(&per_1000),
            "{per_1000} calls per 1,000 patients per working day"
        );
        // The 8 am surge, a lunchtime dip, quiet evenings.
        let tuesday = monday + chrono::Days::new(1);
        let hour = |h: u32| *t.offered.get(&(tuesday, h)).unwrap_or(&0);
        assert!(hour(8) > hour(10) && hour(8) > 2 * hour(15), "8 am surge");
        assert!(hour(12) < hour(11) && hour(12) < hour(14), "lunchtime dip");
        assert!(hour(20) * 10 < hour(8), "quiet evening");
        assert!(hour(3) * 50 < hour(8), "quiet night");
    }

    #[test]
    fn outcomes_are_near_the_national_mix() {
        let s = scenario(150, "2026-11-16", 5 * DAY);
        let t = tally(&s);
        let total: u64 = t.outcomes.values().sum();
        let pct = |kinds: &[EventKind]| {
            100.0
                * kinds
                    .iter()
                    .map(|k| t.outcomes.get(k).copied().unwrap_or(0))
                    .sum::<u64>() as f64
                / total as f64
        };
        let answered = pct(&[EventKind::Answered]);
        let menu = pct(&[EventKind::IvrEnded, EventKind::Diverted111]);
        let callback = pct(&[EventKind::CallbackRequested]);
        let missed = pct(&[EventKind::Abandoned, EventKind::Missed]);
        let mix = format!(
            "answered {answered:.1}, menu {menu:.1}, callback {callback:.1}, missed {missed:.1}"
        );
        // domain.md, August 2026: 57.7, 25.3, 6.6, 10.4.
        println!("{mix}");
        assert!((50.0..66.0).contains(&answered), "{mix}");
        assert!((19.0..31.0).contains(&menu), "{mix}");
        assert!((3.5..11.0).contains(&callback), "{mix}");
        assert!((6.0..16.0).contains(&missed), "{mix}");
        assert!(t.outcomes[&EventKind::Abandoned] > 0 && t.outcomes[&EventKind::Missed] > 0);
    }

    #[test]
    fn bank_holidays_are_quiet() {
        // Friday 25 December 2026 (Christmas Day) against Friday 18 December.
        let s = scenario(60, "2026-12-18", 8 * DAY);
        let t = tally(&s);
        let normal = day_total(&t, date("2026-12-18"));
        let christmas = day_total(&t, date("2026-12-25"));
        let boxing_substitute = day_total(&t, date("2026-12-28"));
        assert!(christmas * 10 < normal, "{christmas} vs {normal}");
        assert!(
            boxing_substitute * 10 < normal,
            "{boxing_substitute} vs {normal}"
        );
    }

    #[test]
    fn deterministic_valid_and_independent_of_other_practices() {
        let s = scenario(8, "2026-11-23T07:00", 4 * 3_600_000);
        let a = s.generate();
        assert_eq!(a, s.generate());
        assert!(a.len() > 1_000, "{}", a.len());
        assert!(a.iter().all(|d| d.event.validate().is_ok()));
        assert!(
            a.iter().all(|d| d.deliver_at == d.event.at),
            "no faults: delivered on time"
        );
        let ids: HashSet<&str> = a.iter().map(|d| d.event.event_id.as_str()).collect();
        assert_eq!(ids.len(), a.len(), "unique event ids");
        let mut other = s.clone();
        other.seed = 43;
        assert_ne!(a, other.generate());
        // A practice's calls do not depend on which others are simulated.
        let mut fewer = s.clone();
        fewer.practices.truncate(3);
        let first: Vec<_> = a.iter().filter(|d| d.event.practice == "A81001").collect();
        let alone: Vec<_> = fewer
            .generate()
            .into_iter()
            .filter(|d| d.event.practice == "A81001")
            .collect();
        assert_eq!(first.len(), alone.len());
        assert!(first.iter().zip(&alone).all(|(x, y)| *x == y));
    }

    #[test]
    fn callers_redial_callbacks_follow_and_queues_have_positions() {
        let s = scenario(30, "2026-11-23", DAY);
        let events: Vec<CallEvent> = s.generate().into_iter().map(|d| d.event).collect();
        let mut calls_per_caller: HashMap<&str, u32> = HashMap::new();
        for e in events.iter().filter(|e| e.kind == EventKind::Offered) {
            if let Some(caller) = &e.caller {
                *calls_per_caller.entry(caller).or_default() += 1;
                assert!(
                    caller.starts_with("sim-") && caller.bytes().any(|b| b.is_ascii_alphabetic())
                );
            }
        }
        let redialled = calls_per_caller.values().filter(|&&n| n >= 3).count();
        assert!(
            redialled > 10,
            "{redialled} callers rang three times or more"
        );
        let requested: HashMap<&str, Timestamp> = events
            .iter()
            .filter(|e| e.kind == EventKind::CallbackRequested)
            .map(|e| (e.call_id.as_deref().unwrap(), e.at))
            .collect();
        let made: Vec<&CallEvent> = events
            .iter()
            .filter(|e| e.kind == EventKind::CallbackMade)
            .collect();
        assert!(!requested.is_empty() && made.len() >= requested.len());
        assert!(made
            .iter()
            .all(|e| requested[e.call_id.as_deref().unwrap()] < e.at));
        assert!(events.iter().any(|e| e.queue_position.unwrap_or(0) >= 5));
    }

    #[test]
    fn some_practices_divert_to_111_some_in_core_hours() {
        let s = scenario(200, "2026-11-16", 5 * DAY);
        let calendar = CoreHours::shipped();
        let (mut on_core, mut on_evening, mut diverted) = (0, 0, 0);
        for d in s.stream() {
            match d.event.kind {
                EventKind::Divert111On if calendar.is_core(d.event.at) => on_core += 1,
                EventKind::Divert111On => on_evening += 1,
                EventKind::Diverted111 => diverted += 1,
                _ => {}
            }
        }
        assert!(on_core >= 3, "{on_core} switched on in core hours");
        assert!(on_evening > 100, "{on_evening} switched on for the evening");
        assert!(diverted > 50, "{diverted} calls diverted");
    }

    #[test]
    fn faults_are_injected_when_asked() {
        let mut s = scenario(50, "2026-11-23T07:00", 6 * 3_600_000);
        s.faults = Faults::parse("duplicates,late,silence").unwrap();
        let all = s.generate();
        let clean = {
            let mut c = s.clone();
            c.faults = Faults::default();
            c.generate()
        };
        let mut seen = HashSet::new();
        let duplicates = all
            .iter()
            .filter(|d| !seen.insert(d.event.event_id.clone()))
            .count();
        let rate = duplicates as f64 / all.len() as f64;
        assert!((0.01..0.03).contains(&rate), "duplicate rate {rate}");
        let late = all
            .iter()
            .filter(|d| d.deliver_at.0 - d.event.at.0 > 300_000)
            .count();
        assert!(late > 20, "{late} delivered after the allowed lateness");
        let out_of_order = all
            .windows(2)
            .filter(|w| w[1].event.at < w[0].event.at)
            .count();
        assert!(out_of_order > 100, "{out_of_order} out of order");
        let silent = s.silent_practices();
        assert_eq!(silent.len(), 1);
        let (index, from, to) = silent[0];
        let code = &s.practices[index].code;
        let during = |ds: &[Delivery]| {
            ds.iter()
                .filter(|d| &d.event.practice == code && from <= d.event.at && d.event.at < to)
                .count()
        };
        assert_eq!(
            during(&all),
            0,
            "silent practice delivered nothing in its gap"
        );
        assert!(during(&clean) > 50);
        assert!(all
            .iter()
            .any(|d| &d.event.practice == code && d.event.at < from));
        assert!(Faults::parse("bogus").is_err());
    }
}
