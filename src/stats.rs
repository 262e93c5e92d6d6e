//! Request counters. Each worker thread owns a [`ThreadStats`] and is its only
//! writer, so an increment is a plain load and store (no locked
//! instruction on the request path); `stats` sums them, and `stats reset`
//! records a baseline rather than writing another thread's counters.
//! Relaxed atomics: no ordering is promised between counters, as in
//! memcached.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($name:ident { $($field:ident),* $(,)? }) => {
        #[derive(Default, Debug)]
        pub struct $name { $(pub $field: AtomicU64,)* }

        impl $name {
            /// Adds every counter of `self` into `into`.
            pub fn add_to(&self, into: &mut [u64]) {
                let mut i = 0;
                $(into[i] += self.$field.load(Ordering::Relaxed); i += 1;)*
                let _ = i;
            }
            /// Subtracts every counter of `self` from `from`.
            pub fn sub_from(&self, from: &mut [u64]) {
                let mut i = 0;
                $(from[i] = from[i].wrapping_sub(self.$field.load(Ordering::Relaxed)); i += 1;)*
                let _ = i;
            }
            /// Makes `self` a copy of `other`.
            pub fn copy_from(&self, other: &Self) {
                $(self.$field.store(other.$field.load(Ordering::Relaxed), Ordering::Relaxed);)*
            }
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
        }
    };
}

counters!(Counters {
    cmd_get,
    cmd_set,
    cmd_flush,
    cmd_touch,
    cmd_meta,
    get_hits,
    get_misses,
    get_expired,
    get_flushed,
    delete_misses,
    delete_hits,
    incr_misses,
    incr_hits,
    decr_misses,
    decr_hits,
    cas_misses,
    cas_hits,
    cas_badval,
    touch_hits,
    touch_misses,
    store_too_large,
    store_no_memory,
    auth_cmds,
    auth_errors,
    idle_kicks,
    bytes_read,
    bytes_written,
    conn_yields,
});

counters!(ClassHits {
    get_hits,
    cmd_set,
    delete_hits,
    incr_hits,
    decr_hits,
    cas_hits,
    cas_badval,
    touch_hits,
});

/// memcached's MAX_NUMBER_OF_SLAB_CLASSES.
pub const MAX_CLASSES: usize = 64;

/// One worker's counters, and their values at the last `stats reset`.
pub struct ThreadStats {
    pub c: Counters,
    pub class: Box<[ClassHits]>,
    base: Counters,
    base_class: Box<[ClassHits]>,
}

impl Default for ThreadStats {
    fn default() -> Self {
        let classes = || (0..MAX_CLASSES).map(|_| ClassHits::default()).collect();
        ThreadStats {
            c: Counters::default(),
            class: classes(),
            base: Counters::default(),
            base_class: classes(),
        }
    }
}

/// Increments a counter. Only the owning thread writes it, so a relaxed
/// load and store suffice.
#[inline]
pub fn bump(c: &AtomicU64) {
    add(c, 1);
}

#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl ThreadStats {
    /// `stats reset`: from now on, count from the current values.
    pub fn reset(&self) {
        self.base.copy_from(&self.c);
        for (b, k) in self.base_class.iter().zip(self.class.iter()) {
            b.copy_from(k);
        }
    }
}

/// The sum over all workers.
pub struct Summed {
    pub c: Vec<u64>,
    pub class: Vec<Vec<u64>>,
}

impl Summed {
    pub fn of<'a>(threads: impl Iterator<Item = &'a ThreadStats>) -> Summed {
        let mut s = Summed {
            c: vec![0; Counters::NAMES.len()],
            class: vec![vec![0; ClassHits::NAMES.len()]; MAX_CLASSES],
        };
        for t in threads {
            t.c.add_to(&mut s.c);
            t.base.sub_from(&mut s.c);
            for (i, (k, b)) in t.class.iter().zip(t.base_class.iter()).enumerate() {
                k.add_to(&mut s.class[i]);
                b.sub_from(&mut s.class[i]);
            }
        }
        s
    }

    pub fn get(&self, name: &str) -> u64 {
        Counters::NAMES
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| self.c[i])
    }

    pub fn class(&self, id: usize, name: &str) -> u64 {
        ClassHits::NAMES
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| self.class[id][i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_threads() {
        let a = ThreadStats::default();
        let b = ThreadStats::default();
        bump(&a.c.get_hits);
        add(&b.c.get_hits, 2);
        bump(&b.class[3].touch_hits);
        let s = Summed::of([&a, &b].into_iter());
        assert_eq!(s.get("get_hits"), 3);
        assert_eq!(s.class(3, "touch_hits"), 1);
        a.reset();
        assert_eq!(Summed::of([&a].into_iter()).get("get_hits"), 0);
    }
}
