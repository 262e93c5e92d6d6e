//! When was an item stored? Meta commands report it (`mg … l`, `me`'s
//! `la`), but the item header has no room for a time. Every item has a
//! store sequence number (its cas), and sequence numbers grow with time,
//! so a short table of (first sequence number of a second, that second)
//! pairs, written once a second by the clock, dates any item from its
//! sequence number alone.
//!
//! The table keeps [`CAPACITY`] entries. When it is full, every other entry
//! of its older half goes: recent items keep one-second precision, old ones
//! get coarser dates, never later than the real one.

use parking_lot::Mutex;

/// Entries kept (16 bytes each).
pub const CAPACITY: usize = 4096;

pub struct Stamps {
    /// (first sequence number, time), both increasing.
    table: Mutex<Vec<(u64, u32)>>,
}

impl Stamps {
    /// Items from sequence `first` on are dated `time` until the next record.
    pub fn new(first: u64, time: u32) -> Stamps {
        let mut table = Vec::with_capacity(CAPACITY);
        table.push((first, time));
        Stamps {
            table: Mutex::new(table),
        }
    }

    /// From now on, items with sequence numbers from `next` on were stored
    /// at `time` or later.
    pub fn record(&self, next: u64, time: u32) {
        let mut t = self.table.lock();
        match t.last_mut() {
            // Nothing stored since the last record: move it forward instead.
            Some(last) if last.0 >= next => last.1 = last.1.max(time),
            _ => {
                if t.len() >= CAPACITY {
                    thin(&mut t);
                }
                t.push((next, time));
            }
        }
    }

    /// When the item with sequence number `seq` was stored.
    pub fn time_of(&self, seq: u64) -> u32 {
        let t = self.table.lock();
        let i = t.partition_point(|&(first, _)| first <= seq);
        t[i.saturating_sub(1)].1
    }
}

/// Drops every other entry of the older half (keeping the very first).
fn thin(t: &mut Vec<(u64, u32)>) {
    let half = t.len() / 2;
    let mut i = 0;
    t.retain(|_| {
        i += 1;
        i > half || i % 2 == 1
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_items_by_sequence() {
        let s = Stamps::new(1, 2);
        assert_eq!(s.time_of(1), 2);
        s.record(10, 3); // items 1..10 stored in second 2
        s.record(10, 5); // nothing stored in seconds 3 and 4
        s.record(12, 6);
        assert_eq!(s.time_of(9), 2);
        assert_eq!(s.time_of(10), 5);
        assert_eq!(s.time_of(11), 5);
        assert_eq!(s.time_of(12), 6);
        assert_eq!(s.time_of(1000), 6);
        assert_eq!(s.time_of(0), 2, "older than the table: its oldest time");
    }

    #[test]
    fn stays_bounded_and_coarsens_only_the_past() {
        let s = Stamps::new(0, 0);
        for i in 1..(3 * CAPACITY as u64) {
            s.record(i * 10, i as u32);
        }
        assert!(s.table.lock().len() <= CAPACITY);
        // Recent seconds are exact.
        let last = 3 * CAPACITY as u64 - 1;
        for i in last - 100..=last {
            assert_eq!(s.time_of(i * 10 + 5), i as u32);
        }
        // Old ones are never dated later than they were stored.
        for i in (0..last).step_by(97) {
            assert!(s.time_of(i * 10 + 5) <= i as u32);
        }
        assert_eq!(s.time_of(5), 0);
    }
}
