//! Per-recipient queues: grouping, rate limiting and one message in flight
//! per recipient. Pure: time is passed in (milliseconds).
//!
//! - Grouping (Teams, Slack, email): the first alert for a recipient opens
//!   a group; everything for that recipient arriving within the grouping
//!   window joins it, and the group goes out as one message. Thirty
//!   practices of one PCN raising at 08:00 make one message to its
//!   clinical director, not thirty.
//! - One state per alert: a newer revision of an alert already waiting
//!   replaces it (the message says what holds now); both Kafka offsets
//!   settle with the message.
//! - Rate limit (grouping channels): a token bucket per recipient. A group
//!   that is due while the bucket is empty waits for a token, and keeps
//!   collecting alerts meanwhile. Nothing is dropped.
//! - One message in flight per recipient, so a recipient sees an alert's
//!   states in order even while retries are under way. Webhooks get one
//!   request per alert state, in order, without rate limit.

use std::collections::BTreeMap;

use crate::offsets::Source;
use crate::render::Entry;

/// One alert state waiting for a recipient, with the Kafka offsets it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub entry: Entry,
    pub sources: Vec<Source>,
}

/// A message to send: one recipient, one or more alert states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub recipient: String,
    pub items: Vec<Item>,
}

impl Batch {
    pub fn entries(&self) -> Vec<Entry> {
        self.items.iter().map(|i| i.entry.clone()).collect()
    }

    pub fn sources(&self) -> impl Iterator<Item = Source> + '_ {
        self.items.iter().flat_map(|i| i.sources.iter().copied())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchPolicy {
    pub group_window_ms: i64,
    pub rate_burst: u32,
    pub rate_per_minute: u32,
}

#[derive(Debug)]
struct Queue {
    groups: bool,
    pending: Vec<Item>,
    opened_at: i64,
    in_flight: bool,
    bucket: crate::policy::TokenBucket,
}

#[derive(Debug)]
pub struct Dispatcher {
    policy: DispatchPolicy,
    queues: BTreeMap<String, Queue>,
}

impl Dispatcher {
    pub fn new(policy: DispatchPolicy) -> Dispatcher {
        Dispatcher {
            policy,
            queues: BTreeMap::new(),
        }
    }

    /// Queues an alert state for `recipient`; `groups`: the recipient's
    /// channel is read by people (see [`crate::contacts::ChannelKind::groups`]).
    pub fn push(&mut self, recipient: &str, groups: bool, item: Item, now_ms: i64) {
        let policy = self.policy;
        let queue = self
            .queues
            .entry(recipient.to_string())
            .or_insert_with(|| Queue {
                groups,
                pending: Vec::new(),
                opened_at: now_ms,
                in_flight: false,
                bucket: crate::policy::TokenBucket::new(
                    policy.rate_burst,
                    policy.rate_per_minute,
                    now_ms,
                ),
            });
        if queue.pending.is_empty() {
            queue.opened_at = now_ms;
        }
        // Grouping channels carry the latest state of an alert; webhooks
        // get every state, in order.
        if queue.groups {
            if let Some(held) = queue
                .pending
                .iter_mut()
                .find(|held| held.entry.alert.id == item.entry.alert.id)
            {
                held.sources.extend(item.sources);
                if item.entry.alert.revision >= held.entry.alert.revision {
                    held.entry = item.entry;
                }
                return;
            }
        }
        queue.pending.push(item);
    }

    /// The messages to send now. Each recipient returned is in flight until
    /// [`Self::finished`].
    pub fn due(&mut self, now_ms: i64) -> Vec<Batch> {
        let window = self.policy.group_window_ms;
        let mut out = Vec::new();
        for (recipient, queue) in &mut self.queues {
            if queue.in_flight || queue.pending.is_empty() {
                continue;
            }
            let items = if queue.groups {
                if now_ms < queue.opened_at + window || !queue.bucket.try_take(now_ms) {
                    continue;
                }
                std::mem::take(&mut queue.pending)
            } else {
                vec![queue.pending.remove(0)]
            };
            queue.opened_at = now_ms;
            queue.in_flight = true;
            out.push(Batch {
                recipient: recipient.clone(),
                items,
            });
        }
        out
    }

    /// The message to `recipient` settled: the next one may go.
    pub fn finished(&mut self, recipient: &str) {
        if let Some(queue) = self.queues.get_mut(recipient) {
            queue.in_flight = false;
        }
    }

    /// When [`Self::due`] may next have something (`None`: only after a
    /// push or a finished message).
    pub fn next_due(&mut self, now_ms: i64) -> Option<i64> {
        let window = self.policy.group_window_ms;
        self.queues
            .values_mut()
            .filter(|q| !q.in_flight && !q.pending.is_empty())
            .filter_map(|q| {
                if !q.groups {
                    return Some(now_ms);
                }
                let token = q.bucket.next_token_at(now_ms)?;
                Some(token.max(q.opened_at + window))
            })
            .min()
    }

    /// Alert states waiting (not in flight).
    pub fn waiting(&self) -> usize {
        self.queues.values().map(|q| q.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callpulse_core::alert::{Alert, AlertKind, AlertState, Opening};
    use callpulse_core::Timestamp;

    fn item(practice: &str, revision: u64, offset: i64) -> Item {
        Item {
            entry: Entry {
                alert: Alert {
                    id: format!("div111:{practice}:2026-11-23T08:00:00.000Z"),
                    kind: AlertKind::Diversion111,
                    state: AlertState::Firing,
                    revision,
                    practice: practice.into(),
                    pcn: None,
                    icb: None,
                    started_at: Timestamp(0),
                    updated_at: Timestamp(0),
                    opened_by: Some(Opening::CoreHoursStarted),
                    switched_on_at: None,
                    diverted_calls: Some(0),
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
                },
                fallback: None,
            },
            sources: vec![(0, offset)],
        }
    }

    const POLICY: DispatchPolicy = DispatchPolicy {
        group_window_ms: 1000,
        rate_burst: 2,
        rate_per_minute: 6,
    };

    fn practices(batch: &Batch) -> Vec<&str> {
        batch
            .items
            .iter()
            .map(|i| i.entry.alert.practice.as_str())
            .collect()
    }

    #[test]
    fn thirty_practices_at_eight_make_one_message() {
        let mut d = Dispatcher::new(POLICY);
        for i in 0..30 {
            d.push("cd", true, item(&format!("A810{i:02}"), 1, i), i);
        }
        assert!(d.due(999).is_empty(), "the window is still open");
        assert_eq!(d.next_due(999), Some(1000));
        let batches = d.due(1000);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].items.len(), 30);
        assert_eq!(batches[0].sources().count(), 30);
        assert_eq!(d.waiting(), 0);
    }

    #[test]
    fn a_newer_revision_replaces_the_waiting_one() {
        let mut d = Dispatcher::new(POLICY);
        d.push("cd", true, item("A81001", 1, 1), 0);
        d.push("cd", true, item("A81001", 3, 3), 10);
        d.push("cd", true, item("A81001", 2, 2), 20); // late, older: sources only
        let batch = d.due(1000).remove(0);
        assert_eq!(batch.items.len(), 1);
        assert_eq!(batch.items[0].entry.alert.revision, 3);
        assert_eq!(
            batch.sources().collect::<Vec<_>>(),
            [(0, 1), (0, 3), (0, 2)]
        );
    }

    #[test]
    fn one_message_in_flight_and_the_rate_limit_make_later_alerts_wait_and_group() {
        let mut d = Dispatcher::new(POLICY);
        d.push("cd", true, item("A81001", 1, 1), 0);
        assert_eq!(practices(&d.due(1000)[0]), ["A81001"]);
        d.push("cd", true, item("A81002", 1, 2), 1100);
        assert!(d.due(5000).is_empty(), "in flight");
        d.finished("cd");
        assert_eq!(practices(&d.due(5000)[0]), ["A81002"]);
        d.finished("cd");
        // The burst of 2 is spent (0.4 tokens left at 5 s, one more every
        // 10 s): the next message may go at 11 s, with both alerts.
        d.push("cd", true, item("A81003", 1, 3), 6000);
        assert!(d.due(7000).is_empty());
        d.push("cd", true, item("A81004", 1, 4), 8000);
        let at = d.next_due(8000).unwrap();
        assert!((11_000..=11_001).contains(&at), "{at}");
        assert!(d.due(at - 2).is_empty());
        assert_eq!(practices(&d.due(at)[0]), ["A81003", "A81004"]);
    }

    #[test]
    fn recipients_are_independent_and_webhooks_get_every_state_in_order() {
        let mut d = Dispatcher::new(POLICY);
        d.push("hook", false, item("A81001", 1, 1), 0);
        d.push("hook", false, item("A81001", 2, 2), 0);
        d.push("cd", true, item("A81001", 1, 1), 0);
        let now = d.due(0);
        assert_eq!(now.len(), 1, "webhooks do not wait for a window");
        assert_eq!(now[0].recipient, "hook");
        assert_eq!(now[0].items[0].entry.alert.revision, 1);
        d.finished("hook");
        let next = d.due(1000);
        assert_eq!(next.len(), 2);
        assert_eq!(next[1].recipient, "hook");
        assert_eq!(next[1].items[0].entry.alert.revision, 2);
        // Webhooks are not rate limited.
        for i in 0..10 {
            d.finished("hook");
            d.push("hook", false, item("A81002", i, 10 + i as i64), 2000);
            assert_eq!(d.due(2000).len(), 1);
        }
    }
}
