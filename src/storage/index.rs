//! The key index: a hash table of 32-bit item references, split into shards
//! that each have their own lock, so operations on different keys run in
//! parallel. Keys are not stored twice: an entry is the item's [`Ref`] and 32
//! bits of its hash; the key itself is compared in the item.

use std::hash::BuildHasher;

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};

use super::chunk::Ref;

#[derive(Clone, Copy, Debug)]
struct Entry {
    item: u32,
    hash: u32,
}

/// Spreads a 32-bit hash over 64 bits: hashbrown takes the bucket from the
/// low bits and its 7-bit tag from the top ones.
fn spread(hash: u32) -> u64 {
    (hash as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | hash as u64
}

/// One shard: its table and the counters of what it holds.
#[derive(Default)]
pub struct Shard {
    table: HashTable<Entry>,
    /// Items linked here and the bytes they take (memcached's `bytes`).
    pub items: u64,
    pub bytes: u64,
    pub total_items: u64,
}

impl Shard {
    /// The item with this hash whose key `matches`.
    pub fn find(&self, hash: u32, mut matches: impl FnMut(Ref) -> bool) -> Option<Ref> {
        self.table
            .find(spread(hash), |e| {
                e.hash == hash && matches(Ref::from_raw(e.item))
            })
            .map(|e| Ref::from_raw(e.item))
    }

    /// Whether `item` is linked here under `hash`.
    pub fn contains(&self, hash: u32, item: Ref) -> bool {
        self.find(hash, |r| r == item).is_some()
    }

    pub fn insert(&mut self, hash: u32, item: Ref) {
        self.table.insert_unique(
            spread(hash),
            Entry {
                item: item.raw(),
                hash,
            },
            |e| spread(e.hash),
        );
    }

    /// Points the entry for `old` at `new` (same key, so same hash).
    pub fn replace(&mut self, hash: u32, old: Ref, new: Ref) -> bool {
        match self
            .table
            .find_mut(spread(hash), |e| e.hash == hash && e.item == old.raw())
        {
            Some(e) => {
                e.item = new.raw();
                true
            }
            None => false,
        }
    }

    pub fn remove(&mut self, hash: u32, item: Ref) -> bool {
        match self
            .table
            .find_entry(spread(hash), |e| e.hash == hash && e.item == item.raw())
        {
            Ok(e) => {
                e.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Every (hash, item) in the shard.
    pub fn entries(&self) -> impl Iterator<Item = (u32, Ref)> + '_ {
        self.table.iter().map(|e| (e.hash, Ref::from_raw(e.item)))
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    pub fn shrink(&mut self) {
        self.table.shrink_to_fit(|e| spread(e.hash));
    }
}

pub struct Index {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    shift: u32,
    hasher: foldhash::fast::RandomState,
}

/// A key's 32-bit hash and the shard its top bits pick. Continuation chunks
/// store the hash, so the shard must follow from it alone.
#[derive(Clone, Copy, Debug)]
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
                .map(|_| {
                    CachePadded::new(Mutex::new(Shard {
                        table: HashTable::with_capacity(per_shard),
                        ..Shard::default()
                    }))
                })
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
