//! `--faults` in vendor-native records (docs/simulator.md, "Faults"), pure.
//!
//! The renderers need each call's events in order, so [`NativeStream`]
//! gets the model's fault-free deliveries, and the faults are applied
//! afterwards, to the records, as a real feed would get them wrong:
//!
//! - `duplicates`: about 2% of records are sent a second time, identical,
//!   up to a minute later (a webhook retried, a CDR line re-sent);
//! - `late`: about 3% are delayed by 1-60 s and 0.5% by 6-30 minutes;
//! - `silence`: the practices and the interval of
//!   [`Scenario::silent_practices`]: their records due in it never come.
//!
//! The proportions are the canonical faults' (the same draws, per record
//! instead of per event). Deterministic for the seed.
//!
//! [`NativeStream`]: super::NativeStream

use rand::rngs::StdRng;
use rand::SeedableRng;

use callpulse_core::Timestamp;

use super::{Held, NativeRecord, Stage};
use crate::model::{duplicate_delay, late_delay, Faults, Scenario};
use crate::practices::splitmix;

/// The faults of a scenario, to apply to its native records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFaults {
    faults: Faults,
    seed: u64,
    /// Silent practices' codes, and from when until when (exclusive).
    silent: Vec<(String, Timestamp, Timestamp)>,
}

impl NativeFaults {
    /// `scenario.faults`, with its seed and its silent practices.
    pub fn of(scenario: &Scenario) -> NativeFaults {
        NativeFaults {
            faults: scenario.faults,
            seed: scenario.seed,
            silent: scenario
                .silent_practices()
                .into_iter()
                .map(|(i, from, to)| (scenario.practices[i].code.clone(), from, to))
                .collect(),
        }
    }

    /// The scenario's faults, and the scenario without them: what the
    /// vendors' records are rendered from.
    pub fn split(scenario: Scenario) -> (NativeFaults, Scenario) {
        let faults = NativeFaults::of(&scenario);
        let clean = Scenario {
            faults: Faults::default(),
            ..scenario
        };
        (faults, clean)
    }

    /// Whether there is nothing to do (the records pass unchanged).
    pub fn is_none(&self) -> bool {
        self.faults == Faults::default()
    }

    /// The records, in delivery order, with the faults: `records` must be in
    /// delivery order (as [`NativeStream`](super::NativeStream) gives them).
    pub fn apply<I: Iterator<Item = NativeRecord>>(self, records: I) -> FaultyRecords<I> {
        FaultyRecords {
            inner: records,
            rng: StdRng::seed_from_u64(splitmix(self.seed ^ 0xfa17_5eed)),
            spec: self,
            held: Held::new(),
        }
    }

    fn muted(&self, record: &NativeRecord) -> bool {
        self.silent.iter().any(|(code, from, to)| {
            *code == record.practice && *from <= record.deliver_at && record.deliver_at < *to
        })
    }
}

/// Native records with faults, in their new delivery order.
pub struct FaultyRecords<I> {
    inner: I,
    spec: NativeFaults,
    rng: StdRng,
    /// Delayed records and copies (delays only add).
    held: Held,
}

impl<I> FaultyRecords<I> {
    fn take(&mut self, mut record: NativeRecord) {
        self.held.advance(record.deliver_at);
        let faults = self.spec.faults;
        if faults.silence && self.spec.muted(&record) {
            return;
        }
        if faults.late {
            if let Some(delay) = late_delay(&mut self.rng) {
                record.deliver_at = Timestamp(record.deliver_at.0 + delay);
            }
        }
        let copy_delay = if faults.duplicates {
            duplicate_delay(&mut self.rng)
        } else {
            None
        };
        if let Some(delay) = copy_delay {
            let mut copy = record.clone();
            copy.deliver_at = Timestamp(record.deliver_at.0 + delay);
            self.held.push(record);
            self.held.push(copy);
        } else {
            self.held.push(record);
        }
    }
}

impl<I: Iterator<Item = NativeRecord>> Stage for FaultyRecords<I> {
    fn pull(&mut self) -> bool {
        let record = self.inner.next();
        record.map(|r| self.take(r)).is_some()
    }

    fn held(&mut self) -> &mut Held {
        &mut self.held
    }
}

impl<I: Iterator<Item = NativeRecord>> Iterator for FaultyRecords<I> {
    type Item = NativeRecord;

    fn next(&mut self) -> Option<NativeRecord> {
        self.next_record()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use callpulse_core::CoreHours;

    use super::*;
    use crate::practices::synthetic_practices;
    use crate::vendors::{Body, Channel, NativeStream, VendorMix};

    /// 50 practices, a Monday morning: one silent practice with `silence`.
    fn scenario(faults: &str) -> Scenario {
        Scenario {
            practices: synthetic_practices(50),
            seed: 42,
            start: crate::parse_start("2026-11-23T07:00", Timestamp(0)).unwrap(),
            duration_ms: 6 * 3_600_000,
            demand: 1.0,
            faults: Faults::parse(faults).unwrap(),
            calendar: CoreHours::shipped(),
        }
    }

    /// The scenario's records without faults (the same for every fault set).
    fn clean() -> &'static [NativeRecord] {
        static CLEAN: OnceLock<Vec<NativeRecord>> = OnceLock::new();
        CLEAN.get_or_init(|| {
            let s = scenario("");
            NativeStream::new(s.stream(), VendorMix::Mix, s.seed).collect()
        })
    }

    fn faulty(faults: &str) -> Vec<NativeRecord> {
        NativeFaults::of(&scenario(faults))
            .apply(clean().iter().cloned())
            .collect()
    }

    /// What a record says, wherever and whenever it is delivered.
    type Content<'a> = (&'a str, Channel, &'a Body);

    fn content(r: &NativeRecord) -> Content<'_> {
        (&r.practice, r.channel, &r.body)
    }

    /// Delivery times of each content, in delivery order.
    fn deliveries(records: &[NativeRecord]) -> HashMap<Content<'_>, Vec<i64>> {
        let mut out: HashMap<Content<'_>, Vec<i64>> = HashMap::new();
        for r in records {
            out.entry(content(r)).or_default().push(r.deliver_at.0);
        }
        out
    }

    fn assert_in_delivery_order(records: &[NativeRecord]) {
        assert!(records
            .windows(2)
            .all(|w| w[0].deliver_at <= w[1].deliver_at));
    }

    #[test]
    fn no_faults_is_the_identity() {
        let records = clean();
        assert!(records.len() > 10_000, "{}", records.len());
        let none = NativeFaults::of(&scenario("none"));
        assert!(none.is_none());
        let out: Vec<NativeRecord> = none.apply(records.iter().cloned()).collect();
        assert_eq!(out, records);
    }

    #[test]
    fn duplicates_are_identical_records_up_to_a_minute_later() {
        let (records, out) = (clean(), faulty("duplicates"));
        assert_in_delivery_order(&out);
        let before = deliveries(records);
        assert!(
            before.values().all(|times| times.len() == 1),
            "every clean record says something of its own"
        );
        let mut copies = 0;
        for (content, times) in deliveries(&out) {
            let original = before[&content][0];
            assert_eq!(times[0], original, "the first is on time: {content:?}");
            match times[..] {
                [_] => {}
                [_, copy] => {
                    assert!((0..60_000).contains(&(copy - original)), "{content:?}");
                    copies += 1;
                }
                _ => panic!("sent {} times: {content:?}", times.len()),
            }
        }
        assert_eq!(copies, out.len() - records.len());
        let rate = copies as f64 / records.len() as f64;
        assert!((0.015..0.025).contains(&rate), "duplicate rate {rate}");
    }

    #[test]
    fn late_records_are_delayed_and_the_output_stays_in_delivery_order() {
        let (records, out) = (clean(), faulty("late"));
        assert_in_delivery_order(&out);
        assert_eq!(out.len(), records.len());
        let before = deliveries(records);
        let (mut out_of_order, mut past_lateness) = (0, 0);
        for (content, times) in deliveries(&out) {
            let delay = times[0] - before[&content][0];
            match delay {
                0 => {}
                1_000..60_000 => out_of_order += 1,
                360_000..1_800_000 => past_lateness += 1,
                _ => panic!("delayed by {delay} ms: {content:?}"),
            }
        }
        let share = |n: usize| n as f64 / records.len() as f64;
        assert!(
            (0.025..0.035).contains(&share(out_of_order)),
            "{out_of_order} delayed 1-60 s"
        );
        assert!(
            (0.003..0.007).contains(&share(past_lateness)),
            "{past_lateness} delayed 6-30 minutes"
        );
        // Delivery order is no longer the vendors' record order.
        assert!(out.iter().zip(records).any(|(a, b)| a != b));
    }

    #[test]
    fn a_silent_practice_sends_nothing_in_its_interval() {
        let s = scenario("silence");
        let silent = s.silent_practices();
        assert_eq!(silent.len(), 1);
        let (index, from, to) = silent[0];
        let code = &s.practices[index].code;
        let out = faulty("silence");
        let during = |r: &&NativeRecord| from <= r.deliver_at && r.deliver_at < to;
        let theirs = |records: &[NativeRecord]| -> Vec<NativeRecord> {
            records
                .iter()
                .filter(|r| &r.practice == code)
                .cloned()
                .collect()
        };
        let (before, after) = (theirs(clean()), theirs(&out));
        assert!(before.iter().filter(during).count() >= 10);
        assert_eq!(after.iter().filter(during).count(), 0);
        // Outside the interval, theirs are all there, and so is every other practice's.
        let outside: Vec<NativeRecord> = before.into_iter().filter(|r| !during(&r)).collect();
        assert!(outside.iter().any(|r| r.deliver_at < from));
        assert!(outside.iter().any(|r| r.deliver_at >= to));
        assert_eq!(after, outside);
        let others = |records: &[NativeRecord]| -> Vec<NativeRecord> {
            records
                .iter()
                .filter(|r| &r.practice != code)
                .cloned()
                .collect()
        };
        assert_eq!(others(&out), others(clean()));
    }

    #[test]
    fn faults_are_deterministic_for_a_seed() {
        let all = faulty("all");
        assert_eq!(all, faulty("all"));
        let mut other = scenario("all");
        other.seed = 43;
        let reseeded: Vec<NativeRecord> = NativeFaults::of(&other)
            .apply(clean().iter().cloned())
            .collect();
        assert_ne!(all, reseeded);
    }
}
