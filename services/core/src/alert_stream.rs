//! 111-diversion alerts over an endless stream, in bounded memory.
//!
//! [`AlertTracker`] keeps every outcome it is shown. An episode never
//! outlives its core-hours day (it is resolved at 18:30 at the latest), so
//! a stream needs only the current London days: one tracker per day, fed
//! that day's events plus the practice's latest diversion switch from
//! before the day (a diversion switched on days ago still opens an episode
//! at 08:00). Each day's tracker reports only the alerts that started on
//! its day; a day's tracker is dropped once the horizon is `keep_ms` past
//! its end.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rustc_hash::FxHashMap;

use crate::alert::{Alert, AlertTracker};
use crate::calendar::CoreHours;
use crate::event::{CallEvent, EventKind};
use crate::time::{london_midnight, Timestamp};

pub struct StreamingAlerts {
    core_hours: CoreHours,
    keep_ms: i64,
    days: BTreeMap<NaiveDate, AlertTracker>,
    /// Each practice's latest diversion switch (by time), to seed new days.
    last_switch: FxHashMap<String, CallEvent>,
    horizon: Option<Timestamp>,
    /// Last states of days forgotten since the last drain.
    pending: Vec<Alert>,
    /// The latest day forgotten: never opened again.
    forgotten_through: Option<NaiveDate>,
}

impl StreamingAlerts {
    /// `keep_ms`: how long after a day ends its events may still arrive
    /// (the processor's allowed lateness).
    pub fn new(core_hours: CoreHours, keep_ms: i64) -> Self {
        StreamingAlerts {
            core_hours,
            keep_ms,
            days: BTreeMap::new(),
            last_switch: FxHashMap::default(),
            horizon: None,
            pending: Vec::new(),
            forgotten_through: None,
        }
    }

    pub fn observe(&mut self, event: &CallEvent) {
        let date = event.at.london_date();
        if self
            .forgotten_through
            .is_some_and(|through| date <= through)
            || self.is_dropped(date)
        {
            self.advance_to(event.at);
            return; // its day is over and forgotten, as its windows are final
        }
        // Days this event moves past are opened with the switches in force
        // before it, not after (an "off" must not hide Monday's episode).
        if self.horizon.is_none_or(|h| event.at > h) {
            self.open_days_under_diversion(event.at);
        }
        if matches!(event.kind, EventKind::Divert111On | EventKind::Divert111Off) {
            // The day's tracker is seeded with the switches from before the
            // day first, then takes this one.
            self.day(date);
            // The switch in force: the latest, except that a repeated "on"
            // keeps the earlier "on" (the diversion has been on since then).
            // At one instant an "off" is applied after an "on", as the
            // batch rule does (alert.rs), whatever the event ids.
            let order = |switch: &CallEvent| {
                (
                    switch.at,
                    switch.kind == EventKind::Divert111Off,
                    switch.event_id.clone(),
                )
            };
            let replaces = self.last_switch.get(&event.practice).is_none_or(|held| {
                order(held) < order(event)
                    && !(held.kind == EventKind::Divert111On
                        && event.kind == EventKind::Divert111On)
            });
            if replaces {
                self.last_switch
                    .insert(event.practice.clone(), event.clone());
            }
            // A switch also shapes every later day already open.
            for (_, tracker) in self.days.range_mut(date.succ_opt().unwrap_or(date)..) {
                tracker.observe(event);
            }
        } else if !event.kind.is_outcome() {
            self.advance_to(event.at);
            return;
        }
        self.day(date).observe(event);
        self.advance_to(event.at);
    }

    /// Moves the horizon (e.g. to the watermark) and forgets finished days.
    pub fn advance_to(&mut self, to: Timestamp) {
        if self.horizon.is_some_and(|h| h >= to) {
            return;
        }
        self.horizon = Some(to);
        self.open_days_under_diversion(to);
        for tracker in self.days.values_mut() {
            tracker.advance_to(to);
        }
        while let Some((&date, _)) = self.days.first_key_value() {
            if !self.is_dropped(date) {
                break;
            }
            // Its last states (resolutions at 18:30) go out before it is forgotten.
            let (_, mut tracker) = self.days.pop_first().expect("checked non-empty");
            self.forgotten_through = self.forgotten_through.max(Some(date));
            self.pending.extend(started_on(date, tracker.drain()));
        }
    }

    /// Alert states that changed since the last drain (see [`AlertTracker::drain`]).
    pub fn drain(&mut self) -> Vec<Alert> {
        let mut out = std::mem::take(&mut self.pending);
        for (date, tracker) in self.days.iter_mut() {
            out.extend(started_on(*date, tracker.drain()));
        }
        out
    }

    /// A diversion left on opens an episode every core-hours day, even a
    /// day with no events of its own: such days need a tracker too.
    fn open_days_under_diversion(&mut self, horizon: Timestamp) {
        let Some(first_on) = self
            .last_switch
            .values()
            .filter(|switch| switch.kind == EventKind::Divert111On)
            .map(|switch| switch.at.london_date())
            .min()
        else {
            return;
        };
        let last = horizon.london_date();
        // Days already forgotten stay forgotten.
        let recent =
            Timestamp(horizon.0.saturating_sub(self.keep_ms + 2 * 86_400_000)).london_date();
        let mut date = first_on.max(recent);
        while date <= last {
            // A day the horizon jumped over still gets its episode (it is
            // forgotten, with its last states, right after).
            if self.forgotten_through.is_none_or(|through| date > through) {
                self.day(date);
            }
            date = date.succ_opt().expect("dates before 2100");
        }
    }

    fn is_dropped(&self, date: NaiveDate) -> bool {
        let (_, end) = day_bounds(date);
        self.horizon
            .is_some_and(|h| h.0 > end.0.saturating_add(self.keep_ms))
    }

    /// The tracker of `date`, created with every practice's latest switch
    /// from before the day.
    fn day(&mut self, date: NaiveDate) -> &mut AlertTracker {
        let (start, _) = day_bounds(date);
        let core_hours = &self.core_hours;
        let last_switch = &self.last_switch;
        let horizon = self.horizon;
        self.days.entry(date).or_insert_with(|| {
            let mut tracker = AlertTracker::new(core_hours.clone());
            for switch in last_switch.values().filter(|s| s.at < start) {
                tracker.observe(switch);
            }
            if let Some(h) = horizon {
                tracker.advance_to(h);
            }
            tracker
        })
    }
}

/// The alerts of a day's tracker that belong to that day.
fn started_on(date: NaiveDate, alerts: Vec<Alert>) -> impl Iterator<Item = Alert> {
    let (start, end) = day_bounds(date);
    alerts
        .into_iter()
        .filter(move |alert| alert.started_at >= start && alert.started_at < end)
}

fn day_bounds(date: NaiveDate) -> (Timestamp, Timestamp) {
    let next = date.succ_opt().expect("dates before 2100");
    (london_midnight(date), london_midnight(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{diversion_alerts, AlertState};

    fn event(id: &str, call: Option<&str>, kind: EventKind, at: &str) -> CallEvent {
        CallEvent {
            event_id: id.into(),
            call_id: call.map(str::to_string),
            vendor: "generic".into(),
            practice: "A81001".into(),
            kind,
            at: Timestamp::parse_rfc3339(at).unwrap(),
            caller: None,
            queue_position: None,
        }
    }

    fn latest(alerts: Vec<Alert>) -> BTreeMap<String, (AlertState, u64)> {
        let mut out = BTreeMap::new();
        for alert in alerts {
            out.insert(
                alert.id.clone(),
                (alert.state, alert.diverted_calls.unwrap_or(0)),
            );
        }
        out
    }

    #[test]
    fn a_diversion_left_on_for_days_alerts_each_core_day_and_old_days_are_forgotten() {
        let events = vec![
            // Switched on Friday afternoon, never off: Friday's episode, then Monday's, Tuesday's.
            event("on", None, EventKind::Divert111On, "2026-11-20T15:00:00Z"),
            event(
                "c1",
                Some("c1"),
                EventKind::Diverted111,
                "2026-11-20T15:05:00Z",
            ),
            event(
                "c2",
                Some("c2"),
                EventKind::Diverted111,
                "2026-11-23T09:00:00Z",
            ),
            event("x", Some("x"), EventKind::Answered, "2026-11-24T12:00:00Z"),
        ];
        let expected = latest(diversion_alerts(&events, &CoreHours::shipped()));
        assert_eq!(expected.len(), 3, "{expected:?}");

        let mut stream = StreamingAlerts::new(CoreHours::shipped(), 5 * 60_000);
        let mut got = Vec::new();
        for e in &events {
            stream.observe(e);
            got.extend(stream.drain());
        }
        assert_eq!(latest(got), expected);
        // Friday's and the weekend's trackers are gone; Monday's too (it ended a day ago).
        assert_eq!(
            stream.days.len(),
            1,
            "{:?}",
            stream.days.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn events_for_forgotten_days_are_ignored() {
        let mut stream = StreamingAlerts::new(CoreHours::shipped(), 60_000);
        stream.observe(&event(
            "a",
            Some("a"),
            EventKind::Answered,
            "2026-11-25T12:00:00Z",
        ));
        stream.observe(&event(
            "d",
            Some("d"),
            EventKind::Diverted111,
            "2026-11-23T09:00:00Z",
        ));
        assert!(stream.drain().is_empty());
    }

    proptest::proptest! {
        /// In time order, the stream ends with the batch rule's last states.
        #[test]
        fn the_stream_agrees_with_the_batch_rule(
            items in proptest::collection::vec((0u8..4, 0i64..(4 * 24 * 60)), 1..40)
        ) {
            let mut events: Vec<CallEvent> = items
                .iter()
                .enumerate()
                .map(|(i, (kind, minute))| {
                    let kind = [EventKind::Divert111On, EventKind::Divert111Off, EventKind::Diverted111, EventKind::Answered][*kind as usize];
                    let call = (!kind.is_practice_level()).then(|| format!("c{i}"));
                    CallEvent {
                        event_id: format!("e{i}"),
                        call_id: call,
                        vendor: "generic".into(),
                        practice: "A81001".into(),
                        kind,
                        // From Friday 2026-11-20 00:00 UTC, four days.
                        at: Timestamp(1_795_564_800_000 - 3 * 86_400_000 + minute * 60_000),
                        caller: None,
                        queue_position: None,
                    }
                })
                .collect();
            events.sort_by(|a, b| (a.at, &a.event_id).cmp(&(b.at, &b.event_id)));
            let expected = latest(diversion_alerts(&events, &CoreHours::shipped()));
            let mut stream = StreamingAlerts::new(CoreHours::shipped(), 5 * 60_000);
            let mut got = Vec::new();
            for e in &events {
                stream.observe(e);
                got.extend(stream.drain());
            }
            proptest::prop_assert_eq!(latest(got), expected);
        }
    }
}
