//! Rule 2 of issue #7: thresholds over a practice's 1-minute window records
//! (metrics.md §4, as the engine emits them, provisional or final), with
//! hysteresis. Also the rules' configuration (a TOML file over built-in
//! defaults, with per-ICB overrides) shared with feed silence
//! ([`crate::feed_silence`]), and a reader of the practice → ICB columns of
//! the organisations CSV.
//!
//! Rules, each over the *rolling period* (the last `rolling_minutes`
//! 1-minute windows, 15 by default), evaluated once per minute, when the
//! horizon (the processor's watermark) passes the minute's end:
//!
//! | kind | value | volume (minimum to judge) |
//! |---|---|---|
//! | `abandoned_rate` | `abandoned` as % of `offered` | `offered` |
//! | `wait_mean` | `wait_ms_sum / wait_count`, seconds | `wait_count` (answered) |
//! | `wait_p90` | 90th-percentile wait: the upper bound of the summed `wait_hist` bucket holding it, seconds | `wait_count` |
//! | `peak_waiting` | the largest `peak_waiting` of the period's windows | `offered` |
//!
//! An episode *fires* when the volume is at least `min_volume` and the value
//! is above `fire`; it *resolves* only when the value is at or below the
//! lower `resolve` level (with enough volume), or when the volume has been
//! below the minimum at every evaluation for a whole rolling period, or (by
//! default) when core hours end. A value between the two levels changes
//! nothing, so an alert fires once and resolves once. Each episode has two
//! states: `firing` (revision 1) and `resolved` (revision 2).
//!
//! Deterministic: the alerts depend on the window records and the horizons
//! the tracker is advanced to, in that order. A window record replaces an
//! earlier one of the same minute when it is newer (`final`, then
//! `revision`), so the records fed between two advances may come in any
//! order. A minute is judged with what is known when the horizon passes it;
//! later revisions of it count in later minutes' periods.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::alert::{
    duration_text, london_hm, ms_between, Alert, AlertKind, AlertState, Resolution,
};
use crate::calendar::CoreHours;
use crate::record::{Histogram, WindowMetrics, HISTOGRAM_BOUNDS_SECONDS, HISTOGRAM_BUCKETS};
use crate::time::{Timestamp, MINUTE_MS};
use crate::window::WindowSize;

// ---- configuration ----

/// One threshold rule's levels. Units: percent (`abandoned_rate`), seconds
/// (`wait_mean`, `wait_p90`), calls waiting (`peak_waiting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub enabled: bool,
    /// Fires when the value is above this.
    pub fire: u64,
    /// Resolves when the value is at or below this (less than `fire`).
    pub resolve: u64,
    /// The volume (see the module documentation) needed to judge.
    pub min_volume: u64,
}

/// Rule 3's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSilenceRule {
    pub enabled: bool,
    /// Minutes of core hours without any event of the practice.
    pub silence_minutes: u64,
    /// A practice silent this long (event time) is no longer watched: its
    /// alert resolves as `expired` (e.g. a practice that closed).
    pub forget_after_days: u64,
}

/// The rules that apply to one practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSet {
    pub abandoned_rate: Rule,
    pub wait_mean: Rule,
    pub wait_p90: Rule,
    pub peak_waiting: Rule,
    pub feed_silence: FeedSilenceRule,
}

impl RuleSet {
    pub fn rule(&self, kind: AlertKind) -> Option<&Rule> {
        match kind {
            AlertKind::AbandonedRate => Some(&self.abandoned_rate),
            AlertKind::WaitMean => Some(&self.wait_mean),
            AlertKind::WaitP90 => Some(&self.wait_p90),
            AlertKind::PeakWaiting => Some(&self.peak_waiting),
            AlertKind::Diversion111 | AlertKind::FeedSilence => None,
        }
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            abandoned_rate: Rule {
                enabled: true,
                fire: 30,
                resolve: 20,
                min_volume: 20,
            },
            wait_mean: Rule {
                enabled: false,
                fire: 600,
                resolve: 300,
                min_volume: 10,
            },
            wait_p90: Rule {
                enabled: true,
                fire: 1200,
                resolve: 600,
                min_volume: 10,
            },
            peak_waiting: Rule {
                enabled: true,
                fire: 20,
                resolve: 10,
                min_volume: 0,
            },
            feed_silence: FeedSilenceRule {
                enabled: true,
                silence_minutes: 30,
                forget_after_days: 7,
            },
        }
    }
}

/// Rules 2 and 3's configuration: defaults and per-ICB rule sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRules {
    /// The rolling period of the thresholds, in minutes.
    pub rolling_minutes: u64,
    /// Thresholds judge (and alerts stay open) only in GP core hours.
    pub core_hours_only: bool,
    /// For practices whose ICB has no overrides (or is unknown).
    pub defaults: RuleSet,
    /// By ICB ODS code (upper case): the defaults with the ICB's overrides.
    pub icb: BTreeMap<String, RuleSet>,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            rolling_minutes: 15,
            core_hours_only: true,
            defaults: RuleSet::default(),
            icb: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RulesError {
    #[error("alert rules: {0}")]
    Toml(String),
    #[error("alert rules: {0}")]
    Invalid(String),
    #[error("organisations CSV: {0}")]
    Organisations(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    rolling_minutes: Option<u64>,
    core_hours_only: Option<bool>,
    abandoned_rate: Option<RawRule>,
    wait_mean: Option<RawRule>,
    wait_p90: Option<RawRule>,
    peak_waiting: Option<RawRule>,
    feed_silence: Option<RawFeedSilence>,
    #[serde(default)]
    icb: BTreeMap<String, RawRuleSet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleSet {
    abandoned_rate: Option<RawRule>,
    wait_mean: Option<RawRule>,
    wait_p90: Option<RawRule>,
    peak_waiting: Option<RawRule>,
    feed_silence: Option<RawFeedSilence>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    enabled: Option<bool>,
    fire: Option<u64>,
    resolve: Option<u64>,
    min_volume: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeedSilence {
    enabled: Option<bool>,
    silence_minutes: Option<u64>,
    forget_after_days: Option<u64>,
}

impl Rule {
    fn apply(self, raw: Option<RawRule>) -> Rule {
        let Some(raw) = raw else { return self };
        Rule {
            enabled: raw.enabled.unwrap_or(self.enabled),
            fire: raw.fire.unwrap_or(self.fire),
            resolve: raw.resolve.unwrap_or(self.resolve),
            min_volume: raw.min_volume.unwrap_or(self.min_volume),
        }
    }
}

impl RuleSet {
    fn apply(self, raw: &RawRuleSet) -> RuleSet {
        let feed = raw.feed_silence.unwrap_or_default();
        RuleSet {
            abandoned_rate: self.abandoned_rate.apply(raw.abandoned_rate),
            wait_mean: self.wait_mean.apply(raw.wait_mean),
            wait_p90: self.wait_p90.apply(raw.wait_p90),
            peak_waiting: self.peak_waiting.apply(raw.peak_waiting),
            feed_silence: FeedSilenceRule {
                enabled: feed.enabled.unwrap_or(self.feed_silence.enabled),
                silence_minutes: feed
                    .silence_minutes
                    .unwrap_or(self.feed_silence.silence_minutes),
                forget_after_days: feed
                    .forget_after_days
                    .unwrap_or(self.feed_silence.forget_after_days),
            },
        }
    }

    fn check(&self, scope: &str) -> Result<(), RulesError> {
        let invalid = |what: String| Err(RulesError::Invalid(format!("{scope}{what}")));
        for kind in THRESHOLD_KINDS {
            let rule = self.rule(kind).expect("a threshold kind");
            if rule.resolve >= rule.fire {
                return invalid(format!(
                    "{}: resolve ({}) must be below fire ({})",
                    kind.as_str(),
                    rule.resolve,
                    rule.fire
                ));
            }
        }
        if self.abandoned_rate.fire >= 100 {
            return invalid("abandoned_rate: fire is a percentage below 100".into());
        }
        if self.feed_silence.silence_minutes == 0 || self.feed_silence.forget_after_days == 0 {
            return invalid(
                "feed_silence: silence_minutes and forget_after_days must be at least 1".into(),
            );
        }
        Ok(())
    }
}

impl AlertRules {
    /// A rules file (docs/alerts.md, "Thresholds and feed silence"): every
    /// setting is optional and falls back to the built-in default; an
    /// `[icb.<code>.<rule>]` table overrides settings for that ICB's practices.
    /// Unknown keys and inconsistent levels are errors.
    pub fn from_toml(text: &str) -> Result<AlertRules, RulesError> {
        let raw: RawFile = toml::from_str(text).map_err(|err| RulesError::Toml(err.to_string()))?;
        let base = AlertRules::default();
        let rolling_minutes = raw.rolling_minutes.unwrap_or(base.rolling_minutes);
        if !(1..=24 * 60).contains(&rolling_minutes) {
            return Err(RulesError::Invalid(
                "rolling_minutes must be between 1 and 1440".into(),
            ));
        }
        let defaults = base.defaults.apply(&RawRuleSet {
            abandoned_rate: raw.abandoned_rate,
            wait_mean: raw.wait_mean,
            wait_p90: raw.wait_p90,
            peak_waiting: raw.peak_waiting,
            feed_silence: raw.feed_silence,
        });
        defaults.check("")?;
        let mut icb = BTreeMap::new();
        for (code, overrides) in &raw.icb {
            let rules = defaults.apply(overrides);
            let code = code.trim().to_ascii_uppercase();
            rules.check(&format!("icb.{code}."))?;
            icb.insert(code, rules);
        }
        Ok(AlertRules {
            rolling_minutes,
            core_hours_only: raw.core_hours_only.unwrap_or(base.core_hours_only),
            defaults,
            icb,
        })
    }

    /// The rules for a practice: its ICB's, else the defaults.
    pub fn for_practice(&self, practice: &str, icbs: &PracticeIcbs) -> &RuleSet {
        icbs.icb_of(practice)
            .and_then(|icb| self.icb.get(icb))
            .unwrap_or(&self.defaults)
    }
}

/// Practice ODS code → ICB code, for per-ICB rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PracticeIcbs {
    by_practice: FxHashMap<String, String>,
}

impl PracticeIcbs {
    /// From `(practice, icb)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> PracticeIcbs {
        PracticeIcbs {
            by_practice: pairs
                .into_iter()
                .map(|(p, i)| (p.trim().to_ascii_uppercase(), i.trim().to_ascii_uppercase()))
                .collect(),
        }
    }

    /// The `PRACTICE_CODE` and `ICB_CODE` columns of an organisations CSV
    /// (docs/organisations.md; either header; names case-insensitive, quoted
    /// fields allowed). Other columns are not checked: the organisations
    /// loader does that. Rows with an empty code are skipped.
    pub fn from_csv(text: &str) -> Result<PracticeIcbs, RulesError> {
        let mut rows = csv_rows(text.strip_prefix('\u{feff}').unwrap_or(text));
        let header = rows
            .next()
            .ok_or_else(|| RulesError::Organisations("empty file".into()))?;
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
                .ok_or_else(|| RulesError::Organisations(format!("no {name} column")))
        };
        let (practice, icb) = (column("PRACTICE_CODE")?, column("ICB_CODE")?);
        let mut by_practice = FxHashMap::default();
        for row in rows {
            let (Some(p), Some(i)) = (row.get(practice), row.get(icb)) else {
                continue;
            };
            let (p, i) = (p.trim(), i.trim());
            if !p.is_empty() && !i.is_empty() {
                by_practice.insert(p.to_ascii_uppercase(), i.to_ascii_uppercase());
            }
        }
        Ok(PracticeIcbs { by_practice })
    }

    pub fn icb_of(&self, practice: &str) -> Option<&str> {
        if self.by_practice.is_empty() {
            return None;
        }
        match self.by_practice.get(practice) {
            Some(icb) => Some(icb),
            None => self
                .by_practice
                .get(&practice.to_ascii_uppercase())
                .map(String::as_str),
        }
    }

    pub fn len(&self) -> usize {
        self.by_practice.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_practice.is_empty()
    }
}

/// RFC 4180 records: fields separated by commas, optionally in double
/// quotes (which may hold commas, newlines and doubled quotes); blank lines
/// are skipped.
fn csv_rows(text: &str) -> impl Iterator<Item = Vec<String>> + '_ {
    let mut chars = text.chars().peekable();
    std::iter::from_fn(move || loop {
        chars.peek()?;
        let mut row = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\r') => {}
                (false, '\n') => break,
                (false, c) => field.push(c),
            }
        }
        row.push(field);
        if row.len() == 1 && row[0].trim().is_empty() {
            continue; // a blank line
        }
        return Some(row);
    })
}

// ---- the tracker ----

/// The threshold kinds, in the order they are judged.
pub const THRESHOLD_KINDS: [AlertKind; 4] = [
    AlertKind::AbandonedRate,
    AlertKind::WaitMean,
    AlertKind::WaitP90,
    AlertKind::PeakWaiting,
];

/// The `wait_p90` value when the 90th percentile is in the last bucket
/// (over an hour): one second more than the last bound.
pub const P90_OVER_LAST_BOUND: u64 =
    HISTOGRAM_BOUNDS_SECONDS[HISTOGRAM_BOUNDS_SECONDS.len() - 1] + 1;

/// What one 1-minute window contributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Minute {
    is_final: bool,
    revision: u64,
    offered: u64,
    abandoned: u64,
    wait_count: u64,
    wait_ms_sum: u64,
    wait_hist: Histogram,
    peak_waiting: u64,
}

/// Sums over a rolling period.
#[derive(Debug, Clone, Copy, Default)]
struct Period {
    offered: u64,
    abandoned: u64,
    wait_count: u64,
    wait_ms_sum: u64,
    wait_hist: Histogram,
    peak_waiting: u64,
}

impl Period {
    fn add(&mut self, m: &Minute) {
        self.offered += m.offered;
        self.abandoned += m.abandoned;
        self.wait_count += m.wait_count;
        self.wait_ms_sum += m.wait_ms_sum;
        for (sum, n) in self.wait_hist.iter_mut().zip(m.wait_hist) {
            *sum += n;
        }
        self.peak_waiting = self.peak_waiting.max(m.peak_waiting);
    }
}

/// The 90th percentile of a histogram (nearest rank), as the upper bound of
/// its bucket in seconds ([`P90_OVER_LAST_BOUND`] for the last bucket); 0
/// for an empty one.
pub fn p90_seconds(hist: &Histogram) -> u64 {
    let count: u64 = hist.iter().sum();
    if count == 0 {
        return 0;
    }
    let rank = (9 * count).div_ceil(10);
    let mut seen = 0;
    for (bucket, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return HISTOGRAM_BOUNDS_SECONDS
                .get(bucket)
                .copied()
                .unwrap_or(P90_OVER_LAST_BOUND);
        }
    }
    debug_assert_eq!(HISTOGRAM_BUCKETS, HISTOGRAM_BOUNDS_SECONDS.len() + 1);
    P90_OVER_LAST_BOUND
}

/// One rule's judgement of one period.
#[derive(Debug, Clone, Copy)]
struct Reading {
    value: u64,
    enough: bool,
    above_fire: bool,
    at_or_below_resolve: bool,
    offered: Option<u64>,
    abandoned: Option<u64>,
    answered: Option<u64>,
}

fn read(kind: AlertKind, p: &Period, rule: &Rule) -> Reading {
    let wide = |x: u64| u128::from(x);
    let (value, volume, above_fire, at_or_below_resolve) = match kind {
        AlertKind::AbandonedRate => {
            // Exact: abandoned / offered > fire % without rounding.
            let (a, o) = (wide(p.abandoned), wide(p.offered));
            let value = (p.abandoned * 100 + p.offered / 2)
                .checked_div(p.offered)
                .unwrap_or(0);
            (
                value,
                p.offered,
                o > 0 && a * 100 > wide(rule.fire) * o,
                a * 100 <= wide(rule.resolve) * o,
            )
        }
        AlertKind::WaitMean => {
            let (sum, n) = (wide(p.wait_ms_sum), wide(p.wait_count));
            let value = (p.wait_ms_sum + p.wait_count * 500)
                .checked_div(p.wait_count * 1000)
                .unwrap_or(0);
            (
                value,
                p.wait_count,
                n > 0 && sum > wide(rule.fire) * 1000 * n,
                sum <= wide(rule.resolve) * 1000 * n,
            )
        }
        AlertKind::WaitP90 => {
            let value = p90_seconds(&p.wait_hist);
            (
                value,
                p.wait_count,
                value > rule.fire,
                value <= rule.resolve,
            )
        }
        _ => {
            let value = p.peak_waiting;
            (value, p.offered, value > rule.fire, value <= rule.resolve)
        }
    };
    let (offered, abandoned, answered) = match kind {
        AlertKind::AbandonedRate => (Some(p.offered), Some(p.abandoned), None),
        AlertKind::WaitMean | AlertKind::WaitP90 => (None, None, Some(p.wait_count)),
        _ => (None, None, None),
    };
    Reading {
        value,
        enough: volume >= rule.min_volume,
        above_fire,
        at_or_below_resolve,
        offered,
        abandoned,
        answered,
    }
}

#[derive(Debug, Clone)]
struct Episode {
    id: String,
    started_at: Timestamp,
    worst: u64,
    /// Consecutive evaluations with too little volume.
    low_volume: u64,
}

#[derive(Debug)]
struct PracticeState {
    rules: RuleSet,
    minutes: BTreeMap<Timestamp, Minute>,
    /// The start of the next minute to judge.
    next: Timestamp,
    open: [Option<Episode>; 4],
}

/// Rule 2 over a stream of window records (one per partition in the
/// processor). Feed records with [`observe_window`](Self::observe_window),
/// move the horizon with [`advance_to`](Self::advance_to), and take the
/// alert states with [`drain`](Self::drain).
#[derive(Debug)]
pub struct ThresholdTracker {
    rules: Arc<AlertRules>,
    icbs: Arc<PracticeIcbs>,
    core_hours: CoreHours,
    practices: BTreeMap<String, PracticeState>,
    horizon: Option<Timestamp>,
    /// Minutes starting before this have been judged for every practice.
    judged_to: Option<Timestamp>,
    out: Vec<Alert>,
}

impl ThresholdTracker {
    pub fn new(rules: Arc<AlertRules>, icbs: Arc<PracticeIcbs>, core_hours: CoreHours) -> Self {
        ThresholdTracker {
            rules,
            icbs,
            core_hours,
            practices: BTreeMap::new(),
            horizon: None,
            judged_to: None,
            out: Vec::new(),
        }
    }

    fn period_ms(&self) -> i64 {
        self.rules.rolling_minutes as i64 * MINUTE_MS
    }

    /// Takes a window record; only 1-minute windows are used. A record
    /// replaces the one held for its minute if it is newer (final, then a
    /// higher revision); records too old to count in any period still to
    /// be judged are ignored.
    pub fn observe_window(&mut self, window: &WindowMetrics) {
        if window.window != WindowSize::Minute {
            return;
        }
        let period_ms = self.period_ms();
        if let Some(judged_to) = self.judged_to {
            if window.start.0 <= judged_to.0 - period_ms {
                return;
            }
        }
        let minute = Minute {
            is_final: window.is_final,
            revision: window.revision,
            offered: window.offered,
            abandoned: window.abandoned,
            wait_count: window.wait_count,
            wait_ms_sum: window.wait_ms_sum,
            wait_hist: window.wait_hist,
            peak_waiting: window.peak_waiting,
        };
        let next = self.judged_to.map_or(window.start, |j| j.max(window.start));
        let (rules, icbs) = (&self.rules, &self.icbs);
        let state = self
            .practices
            .entry(window.practice.clone())
            .or_insert_with(|| PracticeState {
                rules: *rules.for_practice(&window.practice, icbs),
                minutes: BTreeMap::new(),
                next,
                open: Default::default(),
            });
        // A record for a minute not judged yet, earlier than the next one
        // to judge (records may come in any order): judge from there.
        state.next = state.next.min(next);
        match state.minutes.get_mut(&window.start) {
            Some(held) if (held.is_final, held.revision) >= (minute.is_final, minute.revision) => {}
            Some(held) => *held = minute,
            None => {
                state.minutes.insert(window.start, minute);
            }
        }
    }

    /// Moves the horizon (never back) and judges every minute that ends at
    /// or before it.
    pub fn advance_to(&mut self, to: Timestamp) {
        if self.horizon.is_some_and(|h| h >= to) {
            return;
        }
        self.horizon = Some(to);
        let period_ms = self.period_ms();
        let boundary = to.floor_to(MINUTE_MS);
        let mut forget = Vec::new();
        for (practice, state) in self.practices.iter_mut() {
            while state.next.0 + MINUTE_MS <= to.0 {
                let s = state.next;
                let first = Timestamp(s.0 - period_ms + MINUTE_MS);
                let open = state.open.iter().any(Option::is_some);
                if !open && state.minutes.range(first..=s).next().is_none() {
                    // Nothing to judge until the next window.
                    match state.minutes.range(s..).next() {
                        Some((&start, _)) => state.next = start,
                        None => {
                            state.next = state.next.max(boundary);
                            break;
                        }
                    }
                    continue;
                }
                judge(
                    practice,
                    state,
                    s,
                    &self.rules,
                    &self.core_hours,
                    &mut self.out,
                );
                state.next = Timestamp(s.0 + MINUTE_MS);
            }
            let keep_from = Timestamp(state.next.0 - period_ms + MINUTE_MS);
            state.minutes = state.minutes.split_off(&keep_from);
            if state.minutes.is_empty() && state.open.iter().all(Option::is_none) {
                forget.push(practice.clone());
            }
        }
        for practice in forget {
            self.practices.remove(&practice);
        }
        self.judged_to = Some(self.judged_to.map_or(boundary, |j| j.max(boundary)));
    }

    pub fn horizon(&self) -> Option<Timestamp> {
        self.horizon
    }

    /// The alert states produced since the last drain, every one (firing
    /// and resolved), ordered by `updated_at`, then id, then revision.
    pub fn drain(&mut self) -> Vec<Alert> {
        let mut out = std::mem::take(&mut self.out);
        out.sort_by(|a, b| {
            (a.updated_at, &a.id, a.revision).cmp(&(b.updated_at, &b.id, b.revision))
        });
        out
    }

    /// The alerts firing now.
    pub fn firing(&self) -> Vec<(String, AlertKind, Timestamp)> {
        let mut out = Vec::new();
        for (practice, state) in &self.practices {
            for (kind, episode) in THRESHOLD_KINDS.iter().zip(&state.open) {
                if let Some(episode) = episode {
                    out.push((practice.clone(), *kind, episode.started_at));
                }
            }
        }
        out
    }

    /// Practices held (for memory figures).
    pub fn practices(&self) -> usize {
        self.practices.len()
    }
}

/// Every alert state of rule 2 for a set of window records, judged up to
/// `horizon` (e.g. the end of the latest window).
pub fn threshold_alerts<'a>(
    windows: impl IntoIterator<Item = &'a WindowMetrics>,
    rules: Arc<AlertRules>,
    icbs: Arc<PracticeIcbs>,
    core_hours: &CoreHours,
    horizon: Timestamp,
) -> Vec<Alert> {
    let mut tracker = ThresholdTracker::new(rules, icbs, core_hours.clone());
    for window in windows {
        tracker.observe_window(window);
    }
    tracker.advance_to(horizon);
    tracker.drain()
}

/// Judges the minute starting at `s` for one practice.
fn judge(
    practice: &str,
    state: &mut PracticeState,
    s: Timestamp,
    rules: &AlertRules,
    core_hours: &CoreHours,
    out: &mut Vec<Alert>,
) {
    let at = Timestamp(s.0 + MINUTE_MS);
    let period_minutes = rules.rolling_minutes;
    let first = Timestamp(s.0 - period_minutes as i64 * MINUTE_MS + MINUTE_MS);
    let mut period = Period::default();
    for minute in state.minutes.range(first..=s).map(|(_, m)| m) {
        period.add(minute);
    }
    let in_core = !rules.core_hours_only || core_hours.is_core(s);
    for (index, kind) in THRESHOLD_KINDS.into_iter().enumerate() {
        let rule = *state.rules.rule(kind).expect("a threshold kind");
        let reading = read(kind, &period, &rule);
        let context = Context {
            practice,
            kind,
            rule,
            period_minutes,
        };
        let slot = &mut state.open[index];
        match slot {
            _ if !in_core => {
                // Core hours ended at the start of this minute.
                if let Some(episode) = slot.take() {
                    out.push(context.record(
                        &episode,
                        &reading,
                        s,
                        Some(Resolution::CoreHoursEnded),
                    ));
                }
            }
            None => {
                if rule.enabled && reading.enough && reading.above_fire {
                    let episode = Episode {
                        id: format!("{}:{practice}:{}", kind.as_str(), at.to_rfc3339_millis()),
                        started_at: at,
                        worst: reading.value,
                        low_volume: 0,
                    };
                    out.push(context.record(&episode, &reading, at, None));
                    *slot = Some(episode);
                }
            }
            Some(episode) => {
                let resolution = if !reading.enough {
                    episode.low_volume += 1;
                    (episode.low_volume >= period_minutes).then_some(Resolution::LowVolume)
                } else {
                    episode.low_volume = 0;
                    episode.worst = episode.worst.max(reading.value);
                    reading
                        .at_or_below_resolve
                        .then_some(Resolution::BelowResolveLevel)
                };
                if let Some(resolution) = resolution {
                    let episode = slot.take().expect("open");
                    out.push(context.record(&episode, &reading, at, Some(resolution)));
                }
            }
        }
    }
}

struct Context<'a> {
    practice: &'a str,
    kind: AlertKind,
    rule: Rule,
    period_minutes: u64,
}

impl Context<'_> {
    fn record(
        &self,
        episode: &Episode,
        reading: &Reading,
        at: Timestamp,
        resolution: Option<Resolution>,
    ) -> Alert {
        let resolved = resolution.is_some();
        Alert {
            state: if resolved {
                AlertState::Resolved
            } else {
                AlertState::Firing
            },
            revision: if resolved { 2 } else { 1 },
            updated_at: at,
            value: Some(reading.value),
            fire_level: Some(self.rule.fire),
            resolve_level: Some(self.rule.resolve),
            worst_value: Some(episode.worst),
            offered: reading.offered,
            abandoned: reading.abandoned,
            answered: reading.answered,
            period_minutes: Some(self.period_minutes),
            resolved_at: resolution.map(|_| at),
            duration_ms: resolution.map(|_| ms_between(episode.started_at, at)),
            resolution,
            summary: self.summary(episode, reading, at, resolution),
            ..Alert::blank(
                self.kind,
                episode.id.clone(),
                self.practice,
                episode.started_at,
            )
        }
    }

    /// What the period shows, e.g. `34% of calls abandoned in the last 15
    /// minutes (12 of 35)`.
    fn reading_text(&self, reading: &Reading) -> String {
        let period = format!("in the last {} minutes", self.period_minutes);
        let answered = reading.answered.unwrap_or(0);
        match self.kind {
            AlertKind::AbandonedRate => format!(
                "{}% of calls abandoned {period} ({} of {})",
                reading.value,
                reading.abandoned.unwrap_or(0),
                reading.offered.unwrap_or(0)
            ),
            AlertKind::WaitMean => format!(
                "average wait {} {period} ({answered} answered)",
                seconds_text(reading.value)
            ),
            AlertKind::WaitP90 => format!(
                "90th-percentile wait {} {period} ({answered} answered)",
                p90_text(reading.value)
            ),
            _ => format!("{} waiting at once {period}", callers_text(reading.value)),
        }
    }

    fn value_text(&self, value: u64) -> String {
        match self.kind {
            AlertKind::AbandonedRate => format!("{value}%"),
            AlertKind::WaitMean => seconds_text(value),
            AlertKind::WaitP90 => p90_text(value),
            _ => format!("{value} waiting"),
        }
    }

    fn summary(
        &self,
        episode: &Episode,
        reading: &Reading,
        at: Timestamp,
        resolution: Option<Resolution>,
    ) -> String {
        let practice = self.practice;
        let since = london_hm(episode.started_at);
        let Some(resolution) = resolution else {
            return format!("{practice}: {}, since {since}", self.reading_text(reading));
        };
        let now = match resolution {
            Resolution::LowVolume => {
                let volume = match self.kind {
                    AlertKind::WaitMean | AlertKind::WaitP90 => "answered calls",
                    _ => "calls",
                };
                format!(
                    "too few calls to judge (fewer than {} {volume} in {} minutes)",
                    self.rule.min_volume, self.period_minutes
                )
            }
            Resolution::CoreHoursEnded => "core hours ended".to_string(),
            _ => self.reading_text(reading),
        };
        format!(
            "Resolved: {practice}: {now} at {}; alert since {since} ({}, worst {})",
            london_hm(at),
            duration_text(ms_between(episode.started_at, at)),
            self.value_text(episode.worst)
        )
    }
}

fn callers_text(n: u64) -> String {
    match n {
        1 => "1 caller".into(),
        n => format!("{n} callers"),
    }
}

/// `45 s`, `6 min`, `6 min 20 s`.
fn seconds_text(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

/// The bucket of a p90 value: `10–20 min`, `over 60 min`, `up to 10 s`.
fn p90_text(upper: u64) -> String {
    if upper >= P90_OVER_LAST_BOUND {
        return format!("over {}", seconds_text(P90_OVER_LAST_BOUND - 1));
    }
    let lower = HISTOGRAM_BOUNDS_SECONDS
        .iter()
        .rev()
        .find(|&&b| b < upper)
        .copied();
    match lower {
        None => format!("up to {}", seconds_text(upper)),
        Some(lower) if lower % 60 == 0 && upper % 60 == 0 => {
            format!("{}–{} min", lower / 60, upper / 60)
        }
        Some(lower) => format!("{}–{}", seconds_text(lower), seconds_text(upper)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn minute(practice: &str, start: Timestamp, offered: u64, abandoned: u64) -> WindowMetrics {
        WindowMetrics {
            practice: practice.into(),
            window: WindowSize::Minute,
            start,
            end: Timestamp(start.0 + MINUTE_MS),
            revision: 1,
            is_final: true,
            offered,
            abandoned,
            abandon_count: abandoned,
            ..Default::default()
        }
    }

    fn tracker(rules: AlertRules) -> ThresholdTracker {
        ThresholdTracker::new(
            Arc::new(rules),
            Arc::new(PracticeIcbs::from_pairs([
                ("A81001", "QHM"),
                ("B82001", "QOQ"),
            ])),
            CoreHours::shipped(),
        )
    }

    /// Only the abandoned-rate rule, 30% / 20%, at least 20 offered.
    fn abandoned_only() -> AlertRules {
        AlertRules::from_toml(
            "[wait_p90]\nenabled = false\n[peak_waiting]\nenabled = false\n[abandoned_rate]\nfire = 30\nresolve = 20\nmin_volume = 20\n",
        )
        .unwrap()
    }

    /// Monday 23 November 2026 (GMT): `minute` minutes after 08:00.
    fn monday(minute: i64) -> Timestamp {
        Timestamp(at("2026-11-23T08:00:00Z").0 + minute * MINUTE_MS)
    }

    /// Feeds one window per minute (offered, abandoned) from 08:00 and
    /// advances minute by minute; returns every alert state.
    fn run(tracker: &mut ThresholdTracker, minutes: &[(u64, u64)]) -> Vec<Alert> {
        let mut out = Vec::new();
        for (i, &(offered, abandoned)) in minutes.iter().enumerate() {
            let start = monday(i as i64);
            if offered > 0 || abandoned > 0 {
                tracker.observe_window(&minute("A81001", start, offered, abandoned));
            }
            tracker.advance_to(Timestamp(start.0 + MINUTE_MS));
            out.extend(tracker.drain());
        }
        out
    }

    #[test]
    fn fires_once_with_a_phone_summary_and_stays_between_the_levels() {
        let mut t = tracker(abandoned_only());
        // 2 offered a minute; from 08:10 one of them abandoned (50%) for
        // 10 minutes, then 1 in 4 (25%: between the levels), then none.
        let mut minutes = vec![(2, 0); 10];
        minutes.extend(vec![(2, 1); 10]);
        minutes.extend(vec![(4, 1); 30]);
        minutes.extend(vec![(4, 0); 15]);
        let alerts = run(&mut t, &minutes);
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        let (fired, resolved) = (&alerts[0], &alerts[1]);
        // Period 08:05-08:20 at 08:20: 30 offered... the first period above
        // 30% with at least 20 offered: 08:01..08:15 holds 30 offered and 6
        // abandoned (20%); 08:05..08:19 (ends 08:20) 30 offered, 10 abandoned.
        assert_eq!(fired.state, AlertState::Firing);
        assert_eq!(fired.revision, 1);
        assert_eq!(fired.kind, AlertKind::AbandonedRate);
        let expected_start = fired.started_at;
        assert_eq!(
            fired.id,
            format!(
                "abandoned_rate:A81001:{}",
                expected_start.to_rfc3339_millis()
            )
        );
        assert!(fired.value.unwrap() > 30);
        assert_eq!(
            fired.summary,
            format!(
                "A81001: {}% of calls abandoned in the last 15 minutes ({} of {}), since {}",
                fired.value.unwrap(),
                fired.abandoned.unwrap(),
                fired.offered.unwrap(),
                london_hm(expected_start)
            )
        );
        assert_eq!(
            (fired.fire_level, fired.resolve_level),
            (Some(30), Some(20))
        );
        assert!(fired.diverted_calls.is_none() && fired.opened_by.is_none());
        assert_eq!(resolved.id, fired.id);
        assert_eq!(resolved.revision, 2);
        assert_eq!(resolved.resolution, Some(Resolution::BelowResolveLevel));
        assert!(resolved.value.unwrap() <= 20);
        // The worst period: 08:10-08:25, 10 * (2, 1) + 5 * (4, 1) = 15 of 40.
        assert_eq!(resolved.worst_value, Some(38));
        assert!(
            resolved.summary.starts_with("Resolved: A81001: "),
            "{}",
            resolved.summary
        );
        assert!(
            resolved.summary.contains("worst 38%"),
            "{}",
            resolved.summary
        );
    }

    #[test]
    fn the_first_period_above_the_level_is_the_start() {
        let mut t = tracker(abandoned_only());
        // 08:00-08:14: 2 offered a minute, 1 abandoned each: 50% from the
        // start, but 20 offered only from the period ending 08:10.
        let alerts = run(&mut t, &[(2, 1); 15]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].started_at, monday(10));
        assert_eq!(
            alerts[0].summary,
            "A81001: 50% of calls abandoned in the last 15 minutes (10 of 20), since 08:10"
        );
    }

    #[test]
    fn no_flapping_around_the_fire_level() {
        let mut t = tracker(abandoned_only());
        // Alternating 29% and 36% over the period would flap on one level.
        let mut minutes = vec![(2, 0); 5];
        for i in 0..60 {
            minutes.push(if i % 2 == 0 { (3, 2) } else { (3, 0) });
        }
        let alerts = run(&mut t, &minutes);
        let fired = alerts
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .count();
        let resolved = alerts
            .iter()
            .filter(|a| a.state == AlertState::Resolved)
            .count();
        assert_eq!((fired, resolved), (1, 0), "{alerts:#?}");
    }

    #[test]
    fn too_little_volume_never_fires_and_resolves_after_a_whole_period() {
        let mut t = tracker(abandoned_only());
        // 1 offered a minute, all abandoned: 15 in the period, under 20.
        assert!(run(&mut t, &[(1, 1); 40]).is_empty());

        let mut t = tracker(abandoned_only());
        let mut minutes = vec![(4, 2); 10]; // fires
        minutes.extend(vec![(0, 0); 40]); // then silence
        let alerts = run(&mut t, &minutes);
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        let resolved = &alerts[1];
        assert_eq!(resolved.resolution, Some(Resolution::LowVolume));
        // Volume drops below 20 once the period holds fewer than 5 busy
        // minutes: the period ending 08:16 (08:02-08:10: 8 minutes * 4 = 32)...
        // low from the period ending at 08:21 (08:07..08:09 = 12 offered);
        // resolved 15 evaluations later, at 08:35.
        assert_eq!(resolved.updated_at, monday(35));
        assert!(
            resolved
                .summary
                .contains("too few calls to judge (fewer than 20 calls in 15 minutes)"),
            "{}",
            resolved.summary
        );
    }

    #[test]
    fn the_rolling_period_is_configurable() {
        let rules = AlertRules::from_toml(
            "rolling_minutes = 5\n[wait_p90]\nenabled = false\n[peak_waiting]\nenabled = false\n[abandoned_rate]\nmin_volume = 10\n",
        )
        .unwrap();
        let mut t = tracker(rules);
        // 2 a minute, all abandoned: 10 offered after 5 minutes.
        let alerts = run(&mut t, &[(2, 2); 6]);
        assert_eq!(alerts[0].started_at, monday(5));
        assert_eq!(alerts[0].period_minutes, Some(5));
        assert!(alerts[0]
            .summary
            .contains("in the last 5 minutes (10 of 10)"));
    }

    #[test]
    fn core_hours_end_resolves_and_nothing_fires_outside_them() {
        let mut t = tracker(abandoned_only());
        let start = at("2026-11-23T18:00:00Z");
        let mut out = Vec::new();
        for i in 0..60 {
            let s = Timestamp(start.0 + i * MINUTE_MS);
            t.observe_window(&minute("A81001", s, 4, 4));
            t.advance_to(Timestamp(s.0 + MINUTE_MS));
            out.extend(t.drain());
        }
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[1].resolution, Some(Resolution::CoreHoursEnded));
        assert_eq!(out[1].updated_at, at("2026-11-23T18:30:00Z"));
        // Saturday: nothing.
        let mut t = tracker(abandoned_only());
        for i in 0..60 {
            let s = Timestamp(at("2026-11-28T10:00:00Z").0 + i * MINUTE_MS);
            t.observe_window(&minute("A81001", s, 4, 4));
        }
        t.advance_to(at("2026-11-28T12:00:00Z"));
        assert!(t.drain().is_empty());
        // Unless the rules say every hour counts.
        let rules = AlertRules::from_toml("core_hours_only = false").unwrap();
        let mut t = tracker(rules);
        for i in 0..60 {
            let s = Timestamp(at("2026-11-28T10:00:00Z").0 + i * MINUTE_MS);
            t.observe_window(&minute("A81001", s, 4, 4));
        }
        t.advance_to(at("2026-11-28T12:00:00Z"));
        let alerts = t.drain();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].started_at, at("2026-11-28T10:05:00Z"));
        assert_eq!(alerts[1].resolution, Some(Resolution::LowVolume));
    }

    #[test]
    fn per_icb_overrides_apply_to_that_icbs_practices() {
        let rules = AlertRules::from_toml(
            r#"
            [wait_p90]
            enabled = false
            [peak_waiting]
            enabled = false
            [icb.qhm.abandoned_rate]
            fire = 60
            resolve = 40
            "#,
        )
        .unwrap();
        assert_eq!(rules.icb["QHM"].abandoned_rate.fire, 60);
        assert_eq!(
            rules.icb["QHM"].abandoned_rate.min_volume, 20,
            "the rest from the defaults"
        );
        assert!(
            !rules.icb["QHM"].wait_p90.enabled,
            "the file's defaults, not the built-in ones"
        );
        let mut t = tracker(rules);
        // 50%: above the default 30, below QHM's 60.
        for i in 0..20 {
            for practice in ["A81001", "B82001", "C83001"] {
                t.observe_window(&minute(practice, monday(i), 2, 1));
            }
        }
        t.advance_to(monday(20));
        let practices: Vec<String> = t.drain().into_iter().map(|a| a.practice).collect();
        assert_eq!(practices, ["B82001", "C83001"]);
    }

    #[test]
    fn waits_and_peaks() {
        let rules = AlertRules::from_toml(
            "[abandoned_rate]\nenabled = false\n[wait_mean]\nenabled = true\nfire = 300\nresolve = 120\nmin_volume = 5\n[wait_p90]\nfire = 600\nresolve = 300\nmin_volume = 5\n[peak_waiting]\nfire = 10\nresolve = 5\n",
        )
        .unwrap();
        let mut t = tracker(rules);
        for i in 0..15 {
            let mut w = minute("A81001", monday(i), 3, 0);
            // One answered call a minute after 15 min (bucket 600-1200 s).
            w.wait_count = 1;
            w.wait_ms_sum = 900_000;
            w.wait_hist[histogram_bucket_for(900)] = 1;
            w.peak_waiting = if i == 7 { 12 } else { 3 };
            t.observe_window(&w);
        }
        t.advance_to(monday(15));
        let alerts = t.drain();
        let by_kind: BTreeMap<&str, &Alert> = alerts.iter().map(|a| (a.kind.as_str(), a)).collect();
        assert_eq!(by_kind.len(), 3, "{alerts:#?}");
        assert_eq!(by_kind["wait_mean"].value, Some(900));
        assert_eq!(by_kind["wait_mean"].started_at, monday(5), "5 answered");
        assert_eq!(
            by_kind["wait_mean"].summary,
            "A81001: average wait 15 min in the last 15 minutes (5 answered), since 08:05"
        );
        assert_eq!(by_kind["wait_p90"].value, Some(1200));
        assert!(by_kind["wait_p90"]
            .summary
            .contains("90th-percentile wait 10–20 min"));
        assert_eq!(by_kind["peak_waiting"].started_at, monday(8));
        assert_eq!(
            by_kind["peak_waiting"].summary,
            "A81001: 12 callers waiting at once in the last 15 minutes, since 08:08"
        );
        // The peak leaves the period 15 minutes later: resolved at 08:23.
        t.advance_to(monday(30));
        let later = t.drain();
        let peak = later
            .iter()
            .find(|a| a.kind == AlertKind::PeakWaiting)
            .unwrap();
        assert_eq!(peak.updated_at, monday(23));
        assert_eq!(peak.resolution, Some(Resolution::BelowResolveLevel));
    }

    fn histogram_bucket_for(seconds: u64) -> usize {
        crate::record::histogram_bucket(seconds * 1000)
    }

    #[test]
    fn p90_is_the_upper_bound_of_its_bucket() {
        let mut h = [0u64; HISTOGRAM_BUCKETS];
        assert_eq!(p90_seconds(&h), 0);
        h[0] = 9;
        h[4] = 1;
        assert_eq!(p90_seconds(&h), 10, "9 of 10 within 10 s");
        h[4] = 2;
        assert_eq!(p90_seconds(&h), 300);
        h[9] = 5;
        assert_eq!(p90_seconds(&h), P90_OVER_LAST_BOUND);
        assert_eq!(p90_text(P90_OVER_LAST_BOUND), "over 60 min");
        assert_eq!(p90_text(10), "up to 10 s");
        assert_eq!(p90_text(60), "30 s–1 min");
        assert_eq!(p90_text(1200), "10–20 min");
    }

    #[test]
    fn newer_records_replace_older_ones_in_any_order() {
        let mut a = tracker(abandoned_only());
        let mut b = tracker(abandoned_only());
        let mut records = Vec::new();
        for i in 0..15 {
            let mut provisional = minute("A81001", monday(i), 1, 0);
            provisional.is_final = false;
            records.push(provisional);
            records.push(minute("A81001", monday(i), 2, 1));
        }
        for r in &records {
            a.observe_window(r);
        }
        for r in records.iter().rev() {
            b.observe_window(r);
        }
        a.advance_to(monday(15));
        b.advance_to(monday(15));
        let (a, b) = (a.drain(), b.drain());
        assert_eq!(a, b);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn the_rules_file() {
        let example = include_str!("../../../deploy/alerts/thresholds.example.toml");
        assert_eq!(
            AlertRules::from_toml(example).unwrap(),
            AlertRules::default()
        );
        assert_eq!(AlertRules::from_toml("").unwrap(), AlertRules::default());
        for bad in [
            "[abandoned_rate]\nfire = 20\nresolve = 20",
            "[abandoned_rate]\nfire = 100\nresolve = 20",
            "[icb.QHM.wait_p90]\nresolve = 5000",
            "[abandoned_rate]\nfires = 20",
            "rolling_minutes = 0",
            "[feed_silence]\nsilence_minutes = 0",
            "[icb.QHM]\nrolling_minutes = 5",
        ] {
            assert!(AlertRules::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn practice_icbs_from_the_organisations_csv() {
        let csv = "\u{feff}PRACTICE_CODE,PRACTICE_NAME,icb_code\r\nA81001,\"Smith, Jones and \"\"Partners\"\"\",qhm\n\n\"A81002\",\"Two\nlines\",QOQ\nA81003,,\n";
        let icbs = PracticeIcbs::from_csv(csv).unwrap();
        assert_eq!(icbs.len(), 2);
        assert_eq!(icbs.icb_of("A81001"), Some("QHM"));
        assert_eq!(icbs.icb_of("a81002"), Some("QOQ"));
        assert_eq!(icbs.icb_of("A81003"), None);
        assert!(PracticeIcbs::from_csv("PRACTICE_CODE,NAME\n").is_err());
        let shipped = include_str!("../../../data/organisations.csv");
        let icbs = PracticeIcbs::from_csv(shipped).unwrap();
        assert_eq!(icbs.icb_of("A81001"), Some("QHM"));
    }

    proptest! {
        /// Minute by minute or all at once, the same alerts; each episode
        /// fires once (above the fire level, with volume) and resolves at
        /// most once (at or below the resolve level, or for low volume).
        #[test]
        fn episodes_fire_once_and_resolve_once(
            minutes in proptest::collection::vec((0u64..6, 0u64..6), 1..120),
        ) {
            let minutes: Vec<(u64, u64)> = minutes.into_iter().map(|(o, a)| (o, a.min(o))).collect();
            let mut stepwise = tracker(abandoned_only());
            let streamed = run(&mut stepwise, &minutes);
            let windows: Vec<WindowMetrics> = minutes
                .iter()
                .enumerate()
                .filter(|(_, (o, a))| *o > 0 || *a > 0)
                .map(|(i, &(o, a))| minute("A81001", monday(i as i64), o, a))
                .collect();
            let batch = threshold_alerts(
                &windows,
                Arc::new(abandoned_only()),
                Arc::new(PracticeIcbs::default()),
                &CoreHours::shipped(),
                monday(minutes.len() as i64),
            );
            prop_assert_eq!(&streamed, &batch);
            let mut open: Option<&Alert> = None;
            for alert in &streamed {
                match alert.state {
                    AlertState::Firing => {
                        prop_assert!(open.is_none());
                        prop_assert_eq!(alert.revision, 1);
                        prop_assert!(alert.offered.unwrap() >= 20);
                        prop_assert!(alert.abandoned.unwrap() * 100 > 30 * alert.offered.unwrap());
                        open = Some(alert);
                    }
                    AlertState::Resolved => {
                        let fired = open.take();
                        prop_assert_eq!(fired.map(|a| &a.id), Some(&alert.id));
                        prop_assert_eq!(alert.revision, 2);
                        if alert.resolution == Some(Resolution::BelowResolveLevel) {
                            prop_assert!(alert.abandoned.unwrap() * 100 <= 20 * alert.offered.unwrap());
                        } else {
                            prop_assert_eq!(alert.resolution, Some(Resolution::LowVolume));
                        }
                    }
                }
            }
        }
    }
}
