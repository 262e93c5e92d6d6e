//! Store operations of the meta commands (and the binary protocol's
//! cas-checked delete): a get whose effects the command decides under the
//! item's lock, a get that creates a stub on a miss, cas-checked deletes
//! and invalidation (stale items).

use std::sync::atomic::Ordering;

use super::super::chunk::{ACTIVE, FETCHED, MARK_STALE, MARK_WON};
use super::{ItemView, Lookup, NewItem, Store};

/// What a meta get does to the item it found, decided by the command.
#[derive(Clone, Copy, Debug, Default)]
pub struct After {
    /// A new expiry time (`T`).
    pub exptime: Option<u32>,
    /// Hand out the item's win token: later requests see `Z`.
    pub win: bool,
    /// Count the request as a use of the item (CLOCK and `h`).
    pub bump: bool,
}

/// Why a cas-checked delete did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteError {
    Missing(Lookup),
    /// The item's cas is not the one given.
    Exists,
}

impl Store {
    /// Looks `key` up and hands the item to `f` under its shard lock; what
    /// `f` returns in [`After`] is then applied (nothing is bumped unless it
    /// asks). With `vivify`, a miss first creates an empty item with that
    /// expiry time (memcached's `mg … N`), and `f` is told it was created;
    /// if memory runs out the miss stands.
    pub fn get_meta<R>(
        &self,
        key: &[u8],
        vivify: Option<u32>,
        f: impl FnOnce(&ItemView<'_>, bool) -> (R, After),
    ) -> Result<R, Lookup> {
        let kh = self.index.hash(key);
        let mut stub: Option<NewItem> = None;
        loop {
            let mut shard = self.index.lock(kh.shard);
            let (r, created) = match self.find_live(&mut shard, kh, key, self.clock.now()) {
                Ok(r) => (r, false),
                Err(why) => match (vivify, stub.take()) {
                    (None, _) => return Err(why),
                    (Some(_), Some(new)) => {
                        let r = new.head;
                        self.publish(&mut shard, kh, new, None, None);
                        (r, true)
                    }
                    (Some(exptime), None) => {
                        // Memory first, then the lock (allocating may evict).
                        drop(shard);
                        stub = Some(self.alloc_item(key, kh, 0, exptime, &[]).map_err(|_| why)?);
                        continue;
                    }
                },
            };
            let c = self.slabs.chunk(r);
            let state = c.state();
            let (result, after) = f(&self.view(r, c, state), created);
            if after.win {
                c.set_marks(self.use_cas, c.marks(self.use_cas) | MARK_WON);
            }
            if after.bump && state & (ACTIVE | FETCHED) != ACTIVE | FETCHED {
                c.set_bits(ACTIVE | FETCHED);
            }
            if let Some(exptime) = after.exptime
                && !self.touch_in_place(&c, state, exptime)
            {
                drop(shard);
                let _ = self.relayout_exptime(key, kh, exptime);
            } else {
                drop(shard);
            }
            if let Some(new) = stub {
                // The key appeared while the stub was being made.
                self.free_item(new.head);
            }
            return Ok(result);
        }
    }

    /// Removes `key` if its cas (as clients see it: 0 without CAS) is
    /// `cas`, when one is given.
    pub fn delete_if(&self, key: &[u8], cas: Option<u64>) -> Result<usize, DeleteError> {
        let kh = self.index.hash(key);
        let mut shard = self.index.lock(kh.shard);
        let r = self
            .find_live(&mut shard, kh, key, self.clock.now())
            .map_err(DeleteError::Missing)?;
        let c = self.slabs.chunk(r);
        if cas.is_some_and(|cas| self.reported_cas(&c) != cas) {
            return Err(DeleteError::Exists);
        }
        let class = self.slabs.class_of(r);
        self.unlink(&mut shard, kh.hash, r);
        Ok(class)
    }

    /// `md … I`: instead of removing the item, marks it stale, takes its
    /// win token back (so the next reader wins the recache), gives it a new
    /// cas and, with `exptime`, a new expiry time.
    pub fn invalidate(
        &self,
        key: &[u8],
        cas: Option<u64>,
        exptime: Option<u32>,
    ) -> Result<usize, DeleteError> {
        let kh = self.index.hash(key);
        let mut shard = self.index.lock(kh.shard);
        let r = self
            .find_live(&mut shard, kh, key, self.clock.now())
            .map_err(DeleteError::Missing)?;
        let c = self.slabs.chunk(r);
        if cas.is_some_and(|cas| self.reported_cas(&c) != cas) {
            return Err(DeleteError::Exists);
        }
        let class = self.slabs.class_of(r);
        let marks = c.marks(self.use_cas);
        c.set_marks(self.use_cas, (marks | MARK_STALE) & !MARK_WON);
        c.set_cas(self.use_cas, self.next_cas.fetch_add(1, Ordering::Relaxed));
        if let Some(exptime) = exptime
            && !self.touch_in_place(&c, c.state(), exptime)
        {
            drop(shard);
            let _ = self.relayout_exptime(key, kh, exptime);
        }
        Ok(class)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DeltaReq, Mode, StoreConfig, StoreReq, StoreResult};
    use super::*;
    use crate::storage::chunk::MARK_BINARY_KEY;

    fn store(use_cas: bool) -> Store {
        Store::new(&StoreConfig {
            max_bytes: 8 << 20,
            item_size_max: 1 << 20,
            chunk_size: 48,
            growth_factor: 1.25,
            slab_chunk_max: 512 * 1024,
            use_cas,
            evict: true,
            shards: 16,
            hash_capacity: 0,
            track_sizes: false,
        })
    }

    /// (value, exptime, marks, fetched) without bumping.
    fn peek(s: &Store, key: &[u8]) -> Option<(Vec<u8>, u32, u8, bool)> {
        s.get_meta(key, None, |v, _| {
            let r = (v.value_vec(), v.exptime, v.marks, v.fetched);
            (r, After::default())
        })
        .ok()
    }

    #[test]
    fn bumps_and_expiry_only_when_asked() {
        for use_cas in [true, false] {
            let s = store(use_cas);
            s.store(Mode::Set, b"k", 0, 0, b"v");
            assert_eq!(peek(&s, b"k"), Some((b"v".to_vec(), 0, 0, false)));
            let bump = After {
                bump: true,
                ..After::default()
            };
            assert_eq!(
                s.get_meta(b"k", None, |_, created| (created, bump)),
                Ok(false)
            );
            assert!(peek(&s, b"k").is_some_and(|p| p.3), "fetched after a bump");
            // An item stored without an expiry gets one (a new layout).
            let cas = s.get_meta(b"k", None, |v, _| (v.cas, After::default()));
            let touch = After {
                exptime: Some(500),
                ..After::default()
            };
            let _ = s.get_meta(b"k", None, |_, _| ((), touch));
            assert_eq!(peek(&s, b"k"), Some((b"v".to_vec(), 500, 0, true)));
            let cas2 = s.get_meta(b"k", None, |v, _| (v.cas, After::default()));
            assert_eq!(cas, cas2, "a new expiry keeps the cas");
        }
    }

    #[test]
    fn vivify_creates_an_empty_item_once() {
        let s = store(true);
        let first = s.get_meta(b"k", Some(100), |v, created| {
            ((created, v.value_len(), v.exptime), After::default())
        });
        assert_eq!(first, Ok((true, 0, 100)));
        let again = s.get_meta(b"k", Some(100), |_, created| (created, After::default()));
        assert_eq!(again, Ok(false));
        assert_eq!(
            s.get_meta(b"x", None, |_, _| ((), After::default())),
            Err(Lookup::Miss)
        );
    }

    #[test]
    fn win_token_and_invalidation() {
        for use_cas in [true, false] {
            let s = store(use_cas);
            s.store(Mode::Set, b"k", 0, 0, b"v");
            let win = After {
                win: true,
                ..After::default()
            };
            let _ = s.get_meta(b"k", None, |_, _| ((), win));
            assert_eq!(peek(&s, b"k").map(|p| p.2), Some(MARK_WON));
            let before = s.get_meta(b"k", None, |v, _| (v.seq, After::default()));
            assert!(s.invalidate(b"k", None, Some(900)).is_ok());
            let p = peek(&s, b"k");
            assert_eq!(p.as_ref().map(|p| (p.1, p.2)), Some((900, MARK_STALE)));
            let after = s.get_meta(b"k", None, |v, _| (v.seq, After::default()));
            assert_ne!(before, after, "invalidation gives a new cas");
            assert_eq!(
                s.invalidate(b"nope", None, None),
                Err(DeleteError::Missing(Lookup::Miss))
            );
        }
    }

    #[test]
    fn cas_checked_deletes() {
        let s = store(true);
        let cas = s.store(Mode::Set, b"k", 0, 0, b"v").cas;
        assert_eq!(s.delete_if(b"k", Some(cas + 1)), Err(DeleteError::Exists));
        assert_eq!(
            s.invalidate(b"k", Some(cas + 1), None),
            Err(DeleteError::Exists)
        );
        assert!(s.delete_if(b"k", Some(cas)).is_ok());
        assert_eq!(
            s.delete_if(b"k", None),
            Err(DeleteError::Missing(Lookup::Miss))
        );
        // Without CAS items report cas 0, so only 0 matches.
        let s = store(false);
        s.store(Mode::Set, b"k", 0, 0, b"v");
        assert_eq!(s.delete_if(b"k", Some(1)), Err(DeleteError::Exists));
        assert!(s.delete_if(b"k", Some(0)).is_ok());
    }

    #[test]
    fn stale_store_keeps_expiry_and_token() {
        let s = store(true);
        let first = s.store(Mode::Set, b"k", 0, 300, b"v").cas;
        let win = After {
            win: true,
            ..After::default()
        };
        let _ = s.get_meta(b"k", None, |_, _| ((), win));
        let second = s.store(Mode::Set, b"k", 0, 300, b"w").cas;
        let mut req = StoreReq::new(Mode::Cas(first), b"k", 0, 0, b"x");
        assert_eq!(s.store_item(&req).result, StoreResult::Exists);
        req.stale_ok = true;
        let o = s.store_item(&req);
        assert_eq!(o.result, StoreResult::Stored);
        assert!(o.cas > second);
        // The win token went with the replaced item (a plain set drops it).
        assert_eq!(
            peek(&s, b"k"),
            Some((b"x".to_vec(), 300, MARK_STALE, false))
        );
        // A newer cas than the item's is not stale, just wrong.
        req.mode = Mode::Cas(o.cas + 5);
        assert_eq!(s.store_item(&req).result, StoreResult::Exists);
        // A binary key is remembered.
        let mut req = StoreReq::new(Mode::Set, b"b", 0, 0, b"x");
        req.marks = MARK_BINARY_KEY;
        s.store_item(&req);
        assert_eq!(peek(&s, b"b").map(|p| p.2), Some(MARK_BINARY_KEY));
    }

    #[test]
    fn append_with_cas() {
        let s = store(true);
        let cas = s.store(Mode::Set, b"k", 0, 0, b"a").cas;
        let mut req = StoreReq::new(Mode::Append, b"k", 0, 0, b"b");
        req.append_cas = cas + 1;
        assert_eq!(s.store_item(&req).result, StoreResult::Exists);
        req.append_cas = cas;
        let o = s.store_item(&req);
        assert_eq!(o.result, StoreResult::Stored);
        assert!(o.cas > cas);
        assert_eq!(peek(&s, b"k").map(|p| p.0), Some(b"ab".to_vec()));
    }

    #[test]
    fn delta_with_cas_vivify_and_expiry() {
        let s = store(true);
        let req = DeltaReq {
            incr: true,
            delta: 5,
            vivify: Some((40, 700)),
            ..DeltaReq::default()
        };
        let o = s.delta_item(b"n", &req);
        assert_eq!(
            (o.result, o.created, o.exptime),
            (crate::storage::Delta::Value(40), true, 700)
        );
        let o2 = s.delta_item(b"n", &req);
        assert_eq!(
            (o2.result, o2.created),
            (crate::storage::Delta::Value(45), false)
        );
        assert!(o2.cas > o.cas);
        let bad = DeltaReq {
            cas: o2.cas + 1,
            ..req
        };
        assert_eq!(
            s.delta_item(b"n", &bad).result,
            crate::storage::Delta::Exists
        );
        let touch = DeltaReq {
            cas: o2.cas,
            exptime: Some(0),
            ..req
        };
        let o3 = s.delta_item(b"n", &touch);
        assert_eq!(
            (o3.result, o3.exptime),
            (crate::storage::Delta::Value(50), 700)
        );
        assert_eq!(
            peek(&s, b"n").map(|p| (p.0, p.1)),
            Some((b"50".to_vec(), 0))
        );
    }

    #[test]
    fn items_are_dated_by_the_clock() {
        let s = store(false);
        s.store(Mode::Set, b"a", 0, 0, b"v");
        let now = s.clock.now();
        for _ in 0..3 {
            s.clock.advance(1);
            s.stamps
                .record(s.next_cas.load(Ordering::Relaxed), s.clock.now());
        }
        s.store(Mode::Set, b"b", 0, 0, b"v");
        let at = |k: &[u8]| s.get_meta(k, None, |v, _| (s.stored_at(v), After::default()));
        assert_eq!(at(b"a"), Ok(now));
        assert_eq!(at(b"b"), Ok(now + 3));
    }
}
