//! Rule 3 of issue #7: feed silence. A practice that has sent events, then
//! sends none for `silence_minutes` of GP core hours (30 by default), raises
//! a `feed_silence` alert: its data is missing, which is for the operators
//! (the alerter routes `feed_*` kinds to them only), not the clinicians.
//!
//! Event time only: the silence is the core-hours time between the
//! practice's latest event (`at`) and the horizon (the partition's
//! watermark). Time outside core hours does not count, so a practice last
//! heard at 18:10 on Friday raises at 08:10 on Monday, not overnight; an
//! alert raised stays open overnight. It resolves when an event of the
//! practice later than its latest one arrives (`traffic_resumed`), or, after
//! `forget_after_days` without any event, as `expired`, and the practice is
//! no longer watched until it sends again (a practice that closed).
//!
//! The episode is the silence: it starts at the practice's latest event
//! (`started_at` = `last_event_at`); the firing state's `updated_at` is
//! the instant the silence reached its limit, and `duration_ms` of the
//! resolved state is the whole silence. The id is
//! `feed_silence:<practice>:<started_at>`: derived from event times only, so
//! the same events give the same id whenever the check runs, and a later
//! silence of the same practice always has a later start.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::alert::{
    duration_text, london_day, london_hm, ms_between, Alert, AlertKind, AlertState, Resolution,
};
use crate::calendar::CoreHours;
use crate::event::CallEvent;
use crate::thresholds::{AlertRules, FeedSilenceRule, PracticeIcbs};
use crate::time::{Timestamp, DAY_MS, MINUTE_MS};

/// How far ahead [`core_time_after`] looks for enough core hours.
const SEARCH_DAYS: usize = 2 * 366;

/// The instant by which `ms` of core hours have passed since `from`, or
/// `None` if the calendar has not that many core hours in two years.
pub fn core_time_after(core_hours: &CoreHours, from: Timestamp, ms: i64) -> Option<Timestamp> {
    let mut remaining = ms;
    let mut t = from;
    for _ in 0..SEARCH_DAYS {
        let day = core_hours.core_day_of(t);
        if let Some((start, end)) = day.core {
            let from = t.max(start);
            if from < end {
                let available = end.0 - from.0;
                if remaining <= available {
                    return Some(Timestamp(from.0 + remaining));
                }
                remaining -= available;
            }
        }
        t = day.end;
    }
    None
}

/// The core-hours time in `[from, to)`, in milliseconds.
pub fn core_time_between(core_hours: &CoreHours, from: Timestamp, to: Timestamp) -> i64 {
    let mut total = 0;
    let mut t = from;
    while t < to {
        let day = core_hours.core_day_of(t);
        if let Some((start, end)) = day.core {
            let (a, b) = (t.max(start), to.min(end));
            if a < b {
                total += b.0 - a.0;
            }
        }
        t = day.end;
    }
    total
}

#[derive(Debug)]
struct Feed {
    rule: FeedSilenceRule,
    last: Timestamp,
    /// When the silence since `last` reaches its limit (cached).
    fires_at: Option<Option<Timestamp>>,
    /// The open alert: its id, when it fired, and the latest event time
    /// then (the start of the silence).
    open: Option<(String, Timestamp, Timestamp)>,
}

/// Rule 3 over a stream of events (one per partition in the processor):
/// [`observe`](Self::observe) every event, [`advance_to`](Self::advance_to)
/// the watermark, [`drain`](Self::drain) the alert states.
#[derive(Debug)]
pub struct FeedSilence {
    rules: Arc<AlertRules>,
    icbs: Arc<PracticeIcbs>,
    core_hours: CoreHours,
    practices: BTreeMap<String, Feed>,
    horizon: Option<Timestamp>,
    out: Vec<Alert>,
}

impl FeedSilence {
    pub fn new(rules: Arc<AlertRules>, icbs: Arc<PracticeIcbs>, core_hours: CoreHours) -> Self {
        FeedSilence {
            rules,
            icbs,
            core_hours,
            practices: BTreeMap::new(),
            horizon: None,
            out: Vec::new(),
        }
    }

    /// Takes any event of a practice (late and duplicate ones too: they
    /// show the feed works). An event later than the practice's latest
    /// resolves its open alert. Does not judge silences: see `advance_to`.
    pub fn observe(&mut self, event: &CallEvent) {
        if let Some(feed) = self.practices.get_mut(&event.practice) {
            if event.at <= feed.last {
                return;
            }
            feed.last = event.at;
            feed.fires_at = None;
            if let Some(open) = feed.open.take() {
                // Not before it fired, even if the event is older.
                let at = event.at.max(open.1);
                let alert = resolved(
                    &event.practice,
                    &feed.rule,
                    &self.core_hours,
                    open,
                    at,
                    Resolution::TrafficResumed,
                );
                self.out.push(alert);
            }
            return;
        }
        let rule = self
            .rules
            .for_practice(&event.practice, &self.icbs)
            .feed_silence;
        if rule.enabled {
            self.practices.insert(
                event.practice.clone(),
                Feed {
                    rule,
                    last: event.at,
                    fires_at: None,
                    open: None,
                },
            );
        }
    }

    /// Moves the horizon (never back) and raises the silences it reaches.
    pub fn advance_to(&mut self, to: Timestamp) {
        if self.horizon.is_some_and(|h| h >= to) {
            return;
        }
        self.horizon = Some(to);
        let mut forget = Vec::new();
        for (practice, feed) in self.practices.iter_mut() {
            if feed.open.is_none() {
                let limit = feed.rule.silence_minutes as i64 * MINUTE_MS;
                let fires_at = *feed
                    .fires_at
                    .get_or_insert_with(|| core_time_after(&self.core_hours, feed.last, limit));
                if let Some(fired_at) = fires_at.filter(|&t| t <= to) {
                    let id = format!(
                        "{}:{practice}:{}",
                        AlertKind::FeedSilence.as_str(),
                        feed.last.to_rfc3339_millis()
                    );
                    let minutes = feed.rule.silence_minutes;
                    self.out.push(Alert {
                        value: Some(minutes),
                        fire_level: Some(minutes),
                        last_event_at: Some(feed.last),
                        summary: format!(
                            "{practice}: no call data since {} on {} ({} of core hours); check the practice's telephony feed",
                            london_hm(feed.last),
                            london_day(feed.last),
                            duration_text(minutes * MINUTE_MS as u64)
                        ),
                        updated_at: fired_at,
                        ..Alert::blank(AlertKind::FeedSilence, id.clone(), practice, feed.last)
                    });
                    feed.open = Some((id, fired_at, feed.last));
                }
            }
            let expires = Timestamp(
                feed.last
                    .0
                    .saturating_add(feed.rule.forget_after_days as i64 * DAY_MS),
            );
            if expires <= to {
                if let Some(open) = feed.open.take() {
                    let at = expires.max(open.1);
                    self.out.push(resolved(
                        practice,
                        &feed.rule,
                        &self.core_hours,
                        open,
                        at,
                        Resolution::Expired,
                    ));
                }
                forget.push(practice.clone());
            }
        }
        for practice in forget {
            self.practices.remove(&practice);
        }
    }

    /// The alert states produced since the last drain, ordered by
    /// `updated_at`, then id, then revision.
    pub fn drain(&mut self) -> Vec<Alert> {
        let mut out = std::mem::take(&mut self.out);
        out.sort_by(|a, b| {
            (a.updated_at, &a.id, a.revision).cmp(&(b.updated_at, &b.id, b.revision))
        });
        out
    }

    /// Practices watched (for memory figures).
    pub fn practices(&self) -> usize {
        self.practices.len()
    }
}

fn resolved(
    practice: &str,
    rule: &FeedSilenceRule,
    core_hours: &CoreHours,
    (id, _fired_at, last): (String, Timestamp, Timestamp),
    at: Timestamp,
    resolution: Resolution,
) -> Alert {
    let silent_ms = core_time_between(core_hours, last, at).max(0) as u64;
    let since = format!("{} on {}", london_hm(last), london_day(last));
    let summary = match resolution {
        Resolution::Expired => format!(
            "Resolved: {practice}: no call data for {} days (since {since}); no longer watched until it sends again",
            rule.forget_after_days
        ),
        _ => format!(
            "Resolved: {practice}: call data arriving again at {} (silent since {since}, {} of core hours)",
            london_hm(at),
            duration_text(silent_ms)
        ),
    };
    Alert {
        state: AlertState::Resolved,
        revision: 2,
        updated_at: at,
        value: Some(silent_ms / MINUTE_MS as u64),
        fire_level: Some(rule.silence_minutes),
        last_event_at: Some(last),
        resolved_at: Some(at),
        duration_ms: Some(ms_between(last, at)),
        resolution: Some(resolution),
        summary,
        ..Alert::blank(AlertKind::FeedSilence, id, practice, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn event(practice: &str, when: &str) -> CallEvent {
        CallEvent {
            event_id: format!("{practice}-{when}"),
            call_id: Some(format!("{practice}-{when}")),
            vendor: "generic".into(),
            practice: practice.into(),
            kind: EventKind::Offered,
            at: at(when),
            caller: None,
            queue_position: None,
        }
    }

    fn feed(rules: AlertRules) -> FeedSilence {
        FeedSilence::new(
            Arc::new(rules),
            Arc::new(PracticeIcbs::from_pairs([("B82001", "QOQ")])),
            CoreHours::shipped(),
        )
    }

    #[test]
    fn silence_in_core_hours_alerts_the_operators_and_traffic_resolves_it() {
        let mut f = feed(AlertRules::default());
        f.observe(&event("A81001", "2026-11-23T09:12:00Z"));
        f.observe(&event("A81002", "2026-11-23T09:12:00Z"));
        f.advance_to(at("2026-11-23T09:41:59Z"));
        assert!(f.drain().is_empty(), "29 minutes: not yet");
        // A81002 keeps sending.
        f.observe(&event("A81002", "2026-11-23T09:40:00Z"));
        f.advance_to(at("2026-11-23T09:45:00Z"));
        let fired = f.drain();
        assert_eq!(fired.len(), 1, "{fired:#?}");
        let alert = &fired[0];
        assert_eq!(alert.kind, AlertKind::FeedSilence);
        assert_eq!(
            serde_json::to_value(alert.kind).unwrap(),
            "feed_silence",
            "feed_*: the alerter sends it to the operators only"
        );
        assert_eq!(alert.id, "feed_silence:A81001:2026-11-23T09:12:00.000Z");
        assert_eq!(alert.started_at, at("2026-11-23T09:12:00Z"));
        assert_eq!(alert.updated_at, at("2026-11-23T09:42:00Z"));
        assert_eq!((alert.state, alert.revision), (AlertState::Firing, 1));
        assert_eq!(alert.last_event_at, Some(at("2026-11-23T09:12:00Z")));
        assert_eq!(
            alert.summary,
            "A81001: no call data since 09:12 on Mon 23 Nov (30 min of core hours); check the practice's telephony feed"
        );
        // The horizon moving on raises nothing more for A81001 (A81002,
        // silent since 09:40, is raised at 10:10).
        f.advance_to(at("2026-11-23T11:00:00Z"));
        let more = f.drain();
        assert_eq!(more.len(), 1);
        assert_eq!(more[0].id, "feed_silence:A81002:2026-11-23T09:40:00.000Z");
        // An old (late) event does not resolve it; a new one does.
        f.observe(&event("A81001", "2026-11-23T09:00:00Z"));
        assert!(f.drain().is_empty());
        f.observe(&event("A81001", "2026-11-23T11:05:00Z"));
        let resolved = f.drain();
        assert_eq!(resolved.len(), 1);
        let r = &resolved[0];
        assert_eq!((r.id.as_str(), r.revision), (alert.id.as_str(), 2));
        assert_eq!(r.resolution, Some(Resolution::TrafficResumed));
        assert_eq!(r.resolved_at, Some(at("2026-11-23T11:05:00Z")));
        assert_eq!(r.duration_ms, Some(113 * 60_000), "the whole silence");
        assert_eq!(r.value, Some(113));
        assert_eq!(
            r.summary,
            "Resolved: A81001: call data arriving again at 11:05 (silent since 09:12 on Mon 23 Nov, 1 h 53 min of core hours)"
        );
    }

    #[test]
    fn only_core_hours_count() {
        let mut f = feed(AlertRules::default());
        // Friday 18:10: 20 minutes of core hours left; the weekend does not count.
        f.observe(&event("A81001", "2026-11-20T18:10:00Z"));
        f.advance_to(at("2026-11-23T08:09:59Z"));
        assert!(f.drain().is_empty());
        f.advance_to(at("2026-11-23T08:10:00Z"));
        let fired = f.drain();
        assert_eq!(fired[0].id, "feed_silence:A81001:2026-11-20T18:10:00.000Z");
        assert_eq!(fired[0].updated_at, at("2026-11-23T08:10:00Z"));
        // Silent on a Saturday from the morning: nothing until Monday 08:30.
        let mut f = feed(AlertRules::default());
        f.observe(&event("A81001", "2026-11-21T09:00:00Z"));
        f.advance_to(at("2026-11-22T23:00:00Z"));
        assert!(f.drain().is_empty());
        f.advance_to(at("2026-11-23T09:00:00Z"));
        assert_eq!(f.drain()[0].updated_at, at("2026-11-23T08:30:00Z"));
        // Christmas Day 2026 (Friday) and the substitute Boxing Day (Monday 28th).
        assert_eq!(
            core_time_after(
                &CoreHours::shipped(),
                at("2026-12-24T18:20:00Z"),
                30 * MINUTE_MS
            ),
            Some(at("2026-12-29T08:20:00Z"))
        );
        assert_eq!(
            core_time_between(
                &CoreHours::shipped(),
                at("2026-11-20T18:10:00Z"),
                at("2026-11-23T08:10:00Z")
            ),
            30 * MINUTE_MS
        );
    }

    #[test]
    fn per_icb_limits_and_expiry() {
        let rules = AlertRules::from_toml(
            "[icb.QOQ.feed_silence]\nsilence_minutes = 60\n[icb.QHM.feed_silence]\nenabled = false\n",
        )
        .unwrap();
        let mut f = FeedSilence::new(
            Arc::new(rules),
            Arc::new(PracticeIcbs::from_pairs([
                ("B82001", "QOQ"),
                ("C83001", "QHM"),
            ])),
            CoreHours::shipped(),
        );
        for practice in ["A81001", "B82001", "C83001"] {
            f.observe(&event(practice, "2026-11-23T09:00:00Z"));
        }
        f.advance_to(at("2026-11-23T09:45:00Z"));
        let ids: Vec<String> = f.drain().into_iter().map(|a| a.id).collect();
        assert_eq!(ids, ["feed_silence:A81001:2026-11-23T09:00:00.000Z"]);
        f.advance_to(at("2026-11-23T10:00:00Z"));
        let ids: Vec<String> = f.drain().into_iter().map(|a| a.id).collect();
        assert_eq!(ids, ["feed_silence:B82001:2026-11-23T09:00:00.000Z"]);
        // A week later both expire and are forgotten.
        f.advance_to(at("2026-11-30T09:00:00Z"));
        let expired = f.drain();
        assert_eq!(expired.len(), 2);
        assert!(expired
            .iter()
            .all(|a| a.resolution == Some(Resolution::Expired)));
        assert_eq!(expired[0].updated_at, at("2026-11-30T09:00:00Z"));
        assert_eq!(f.practices(), 0);
        // Silent practices are not raised again; a new event starts over.
        f.advance_to(at("2026-12-01T12:00:00Z"));
        assert!(f.drain().is_empty());
    }

    proptest::proptest! {
        /// Each practice alternates: firing, then resolved; ids are unique;
        /// a firing state's silence reached the limit in core hours.
        #[test]
        fn alternates_and_is_deterministic(
            steps in proptest::collection::vec((0u8..3, 0i64..(3 * 24 * 60), proptest::bool::ANY), 1..60)
        ) {
            let base = at("2026-11-23T00:00:00Z").0;
            let run = || {
                let mut f = feed(AlertRules::default());
                let mut out = Vec::new();
                let mut horizon = base;
                for &(practice, minute, advance) in &steps {
                    let when = Timestamp(base + minute * MINUTE_MS);
                    if advance {
                        horizon = horizon.max(when.0);
                        f.advance_to(Timestamp(horizon));
                    } else {
                        let mut e = event(["A81001", "A81002", "B82001"][practice as usize], "2026-11-23T00:00:00Z");
                        e.at = when;
                        f.observe(&e);
                    }
                    out.extend(f.drain());
                }
                out
            };
            let out = run();
            proptest::prop_assert_eq!(&out, &run());
            let mut open: BTreeMap<String, Alert> = BTreeMap::new();
            let mut ids = std::collections::BTreeSet::new();
            for alert in out {
                match alert.state {
                    AlertState::Firing => {
                        proptest::prop_assert!(!open.contains_key(&alert.practice));
                        proptest::prop_assert!(ids.insert(alert.id.clone()));
                        let last = alert.last_event_at.unwrap();
                        proptest::prop_assert_eq!(last, alert.started_at);
                        proptest::prop_assert_eq!(
                            core_time_between(&CoreHours::shipped(), last, alert.updated_at),
                            30 * MINUTE_MS
                        );
                        open.insert(alert.practice.clone(), alert);
                    }
                    AlertState::Resolved => {
                        let fired = open.remove(&alert.practice);
                        proptest::prop_assert_eq!(fired.as_ref().map(|a| &a.id), Some(&alert.id));
                        proptest::prop_assert!(alert.resolved_at.unwrap() >= fired.as_ref().unwrap().updated_at);
                    }
                }
            }
        }
    }
}
