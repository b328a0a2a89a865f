//! Which Kafka offsets may be committed: an alert's offset is done once
//! every delivery it feeds has settled (delivered, or recorded as failed);
//! a partition's position moves to just past its longest settled prefix.
//! Pure.

use std::collections::{BTreeMap, HashMap};

/// Where an alert came from.
pub type Source = (i32, i64);

#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// Per partition: offset -> deliveries still to settle.
    open: HashMap<i32, BTreeMap<i64, usize>>,
    /// Per partition: the next offset to read after the settled prefix.
    settled_to: HashMap<i32, i64>,
    /// Per partition: the position last handed out by [`Self::committable`].
    committed: HashMap<i32, i64>,
}

impl OffsetTracker {
    /// An alert read at `source`, feeding `deliveries` deliveries (0: done already).
    pub fn read(&mut self, source: Source, deliveries: usize) {
        let (partition, offset) = source;
        let open = self.open.entry(partition).or_default();
        open.insert(offset, deliveries);
        self.advance(partition);
    }

    /// One delivery fed by `source` settled.
    pub fn settle(&mut self, source: Source) {
        let (partition, offset) = source;
        if let Some(count) = self
            .open
            .get_mut(&partition)
            .and_then(|open| open.get_mut(&offset))
        {
            *count = count.saturating_sub(1);
        }
        self.advance(partition);
    }

    fn advance(&mut self, partition: i32) {
        let Some(open) = self.open.get_mut(&partition) else {
            return;
        };
        while let Some((&first, &count)) = open.iter().next() {
            if count > 0 {
                break;
            }
            open.remove(&first);
            self.settled_to.insert(partition, first + 1);
        }
    }

    /// Alerts read and not settled.
    pub fn in_flight(&self) -> usize {
        self.open.values().map(BTreeMap::len).sum()
    }

    /// The (partition, next offset) pairs that moved since the last call.
    pub fn committable(&mut self) -> Vec<(i32, i64)> {
        let mut out: Vec<(i32, i64)> = self
            .settled_to
            .iter()
            .filter(|(p, next)| self.committed.get(p) != Some(next))
            .map(|(&p, &next)| (p, next))
            .collect();
        out.sort_unstable();
        for &(p, next) in &out {
            self.committed.insert(p, next);
        }
        out
    }

    /// Partitions taken away by a rebalance: forget them (their alerts
    /// may still be delivered; the new owner may deliver them again).
    pub fn forget(&mut self, partition: i32) {
        self.open.remove(&partition);
        self.settled_to.remove(&partition);
        self.committed.remove(&partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_move_past_the_settled_prefix_only() {
        let mut t = OffsetTracker::default();
        t.read((0, 10), 2);
        t.read((0, 11), 1);
        t.read((0, 12), 0);
        t.read((1, 5), 0);
        assert_eq!(t.committable(), [(1, 6)]);
        t.settle((0, 11));
        assert_eq!(t.committable(), [], "10 is still open");
        t.settle((0, 10));
        assert_eq!(t.committable(), []);
        assert_eq!(t.in_flight(), 3);
        t.settle((0, 10));
        assert_eq!(t.committable(), [(0, 13)]);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.committable(), [], "nothing new");
        t.settle((0, 10)); // a stray settle changes nothing
        assert_eq!(t.committable(), []);
    }
}
