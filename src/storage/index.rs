//! The key index: a hash table of 32-bit item references, split into shards
//! that each have their own lock, so operations on different keys run in
//! parallel. Keys are not stored twice: an entry is the item's [`Ref`] and 32
//! bits of its hash; the key itself is compared in the item.
//!
//! Each shard's table is open addressing over 64-byte buckets of eight
//! entries: a lookup reads one cache line of the index (then the item), where
//! a table with a separate control array reads two. Deleted entries leave
//! tombstones until the next rebuild.

use std::hash::BuildHasher;

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};

use super::chunk::Ref;

/// An entry: the hash in the high half, the item reference in the low half.
const EMPTY: u64 = u64::MAX;
const DELETED: u64 = u64::MAX - 1;
const SLOTS: usize = 8;

#[derive(Clone, Copy)]
#[repr(align(64))]
struct Bucket([u64; SLOTS]);

const EMPTY_BUCKET: Bucket = Bucket([EMPTY; SLOTS]);

fn entry(hash: u32, item: Ref) -> u64 {
    (hash as u64) << 32 | item.raw() as u64
}

fn tag(e: u64) -> u32 {
    (e >> 32) as u32
}

fn item(e: u64) -> Ref {
    Ref::from_raw(e as u32)
}

/// One shard: its table and the counters of what it holds.
#[derive(Default)]
pub struct Shard {
    buckets: Vec<Bucket>,
    /// Live entries and tombstones in `buckets`.
    used: usize,
    tombstones: usize,
    /// Items linked here and the bytes they take (memcached's `bytes`).
    pub items: u64,
    pub bytes: u64,
    pub total_items: u64,
}

impl Shard {
    fn with_capacity(items: usize) -> Shard {
        let buckets = (items * 8 / 7).div_ceil(SLOTS).next_power_of_two().max(1);
        Shard {
            buckets: vec![EMPTY_BUCKET; buckets],
            ..Shard::default()
        }
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// Slot positions in probe order for `hash`: bucket by bucket from the
    /// hash's home bucket, until a bucket with an empty slot ends the chain.
    fn probe(&self, hash: u32, mut f: impl FnMut(usize, usize, u64) -> bool) {
        if self.buckets.is_empty() {
            return;
        }
        let mut b = hash as usize & self.mask();
        for _ in 0..self.buckets.len() {
            let mut ends = false;
            for (s, &e) in self.buckets[b].0.iter().enumerate() {
                if f(b, s, e) {
                    return;
                }
                ends |= e == EMPTY;
            }
            if ends {
                return;
            }
            b = (b + 1) & self.mask();
        }
    }

    /// Starts loading `hash`'s home bucket.
    pub fn prefetch(&self, hash: u32) {
        if let Some(b) = self
            .buckets
            .get(hash as usize & self.buckets.len().wrapping_sub(1))
        {
            super::chunk::prefetch(b.0.as_ptr().cast());
        }
    }

    /// Every item whose entry carries `hash` (its key unchecked).
    pub fn candidates(&self, hash: u32, mut f: impl FnMut(Ref)) {
        self.probe(hash, |_, _, e| {
            if e < DELETED && tag(e) == hash {
                f(item(e));
            }
            false
        });
    }

    /// The item with this hash whose key `matches`.
    pub fn find(&self, hash: u32, mut matches: impl FnMut(Ref) -> bool) -> Option<Ref> {
        let mut found = None;
        self.probe(hash, |_, _, e| {
            if e < DELETED && tag(e) == hash && matches(item(e)) {
                found = Some(item(e));
                return true;
            }
            false
        });
        found
    }

    /// Where `item` sits under `hash`.
    fn position(&self, hash: u32, it: Ref) -> Option<(usize, usize)> {
        let want = entry(hash, it);
        let mut at = None;
        self.probe(hash, |b, s, e| {
            if e == want {
                at = Some((b, s));
                return true;
            }
            false
        });
        at
    }

    /// Whether `item` is linked here under `hash`.
    pub fn contains(&self, hash: u32, it: Ref) -> bool {
        self.position(hash, it).is_some()
    }

    /// Adds an entry; the caller knows the key is not here yet.
    pub fn insert(&mut self, hash: u32, it: Ref) {
        if (self.used + 1) * 8 > self.buckets.len() * SLOTS * 7 {
            self.rebuild();
        }
        let mut slot = None;
        self.probe(hash, |b, s, e| {
            if e >= DELETED {
                slot = Some((b, s, e));
                return true;
            }
            false
        });
        let Some((b, s, old)) = slot else {
            // Unreachable: the load limit keeps an empty slot in every chain.
            self.rebuild();
            return self.insert(hash, it);
        };
        if old == DELETED {
            self.tombstones -= 1;
        } else {
            self.used += 1;
        }
        self.buckets[b].0[s] = entry(hash, it);
    }

    /// Points the entry for `old` at `new` (same key, so same hash).
    pub fn replace(&mut self, hash: u32, old: Ref, new: Ref) -> bool {
        match self.position(hash, old) {
            Some((b, s)) => {
                self.buckets[b].0[s] = entry(hash, new);
                true
            }
            None => false,
        }
    }

    pub fn remove(&mut self, hash: u32, it: Ref) -> bool {
        let Some((b, s)) = self.position(hash, it) else {
            return false;
        };
        // A bucket with an empty slot ends every chain through it, so the
        // entry can simply go; otherwise a tombstone keeps the chain going.
        if self.buckets[b].0.contains(&EMPTY) {
            self.buckets[b].0[s] = EMPTY;
            self.used -= 1;
        } else {
            self.buckets[b].0[s] = DELETED;
            self.tombstones += 1;
        }
        // Rebuild when tombstones pile up, or to shrink a table that
        // emptied (after evictions moved to other shards, or a flush).
        let slots = self.buckets.len() * SLOTS;
        if self.tombstones * 4 > slots || (self.buckets.len() > 1 && self.used * 16 < slots) {
            self.rebuild();
        }
        true
    }

    /// Rebuilds the table without tombstones, doubling it if it is full of
    /// live entries (and halving it if mostly empty).
    fn rebuild(&mut self) {
        let live = self.used - self.tombstones;
        let mut buckets = self.buckets.len().max(1);
        while (live + 1) * 8 > buckets * SLOTS * 7 / 2 {
            buckets *= 2;
        }
        while buckets > 1 && live * 8 < buckets * SLOTS {
            buckets /= 2;
        }
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY_BUCKET; buckets]);
        self.used = 0;
        self.tombstones = 0;
        for e in old.iter().flat_map(|b| b.0) {
            if e < DELETED {
                self.insert(tag(e), item(e));
            }
        }
    }

    /// Every (hash, item) in the shard.
    pub fn entries(&self) -> impl Iterator<Item = (u32, Ref)> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.0)
            .filter(|&e| e < DELETED)
            .map(|e| (tag(e), item(e)))
    }

    /// Bytes the table takes.
    pub fn table_bytes(&self) -> usize {
        self.buckets.len() * size_of::<Bucket>()
    }
}

pub struct Index {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    shift: u32,
    hasher: foldhash::fast::RandomState,
}

/// A key's 32-bit hash and the shard its top bits pick. Continuation chunks
/// store the hash, so the shard must follow from it alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHash {
    pub shard: usize,
    pub hash: u32,
}

impl Index {
    /// `shards` is rounded up to a power of two; `capacity` items are
    /// pre-sized across them (memcached's `-o hashpower`).
    pub fn new(shards: usize, capacity: usize) -> Index {
        let shards = shards.next_power_of_two().clamp(2, 1 << 16);
        let per_shard = capacity / shards;
        Index {
            shards: (0..shards)
                .map(|_| CachePadded::new(Mutex::new(Shard::with_capacity(per_shard))))
                .collect(),
            shift: 32 - shards.trailing_zeros(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    pub fn hash(&self, key: &[u8]) -> KeyHash {
        self.key_hash(self.hasher.hash_one(key) as u32)
    }

    pub fn key_hash(&self, hash: u32) -> KeyHash {
        KeyHash {
            shard: (hash >> self.shift) as usize,
            hash,
        }
    }

    pub fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard].lock()
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_replace_remove() {
        let index = Index::new(4, 0);
        let h = index.hash(b"key");
        let mut shard = index.lock(h.shard);
        let a = Ref::new(1, 2);
        let b = Ref::new(3, 4);
        assert_eq!(shard.find(h.hash, |_| true), None);
        shard.insert(h.hash, a);
        assert_eq!(shard.find(h.hash, |r| r == a), Some(a));
        assert!(shard.replace(h.hash, a, b));
        assert!(!shard.contains(h.hash, a));
        assert!(shard.contains(h.hash, b));
        assert!(shard.remove(h.hash, b));
        assert!(!shard.remove(h.hash, b));
    }

    #[test]
    fn same_hash_different_keys() {
        let index = Index::new(1, 16);
        let mut shard = index.lock(0);
        shard.insert(7, Ref::new(0, 1));
        shard.insert(7, Ref::new(0, 2));
        assert_eq!(shard.find(7, |r| r.index() == 2), Some(Ref::new(0, 2)));
        assert_eq!(shard.entries().count(), 2);
    }

    /// Random inserts, replaces and removes with colliding hashes against a
    /// plain map: every entry stays findable through tombstones, growth
    /// and shrinking.
    #[test]
    fn churn_matches_a_model() {
        let mut shard = Shard::default();
        let mut model = std::collections::HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..200_000u32 {
            let key = (next() % 5000) as u32;
            // Few distinct hashes: long chains, many equal tags.
            let hash = key % 700;
            let r = Ref::new(step % 1000, key % 30000);
            match (next() % 3, model.get(&key).copied()) {
                (0, None) => {
                    shard.insert(hash, r);
                    model.insert(key, r);
                }
                (1, Some(old)) => {
                    assert!(shard.replace(hash, old, r));
                    model.insert(key, r);
                }
                (2, Some(old)) => {
                    assert!(shard.remove(hash, old));
                    model.remove(&key);
                }
                _ => {}
            }
            if step % 1000 == 0 {
                for (&k, &r) in &model {
                    assert!(shard.contains(k % 700, r), "step {step}: key {k} lost");
                }
                assert_eq!(shard.entries().count(), model.len());
            }
        }
        for (&k, &r) in &model {
            assert!(shard.remove(k % 700, r));
        }
        assert_eq!(shard.entries().count(), 0);
        assert!(shard.table_bytes() <= 64 * 8, "an empty shard shrinks back");
    }

    #[test]
    fn shards_spread_keys() {
        let index = Index::new(16, 0);
        let mut seen = vec![0; index.shard_count()];
        for i in 0..1600 {
            seen[index.hash(format!("key{i}").as_bytes()).shard] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
