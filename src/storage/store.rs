//! The cache operations: what each command does to the index and the slabs.
//!
//! Concurrency: a key's shard lock guards its entry and its item. Memory is
//! allocated before that lock is taken (allocation may evict, and eviction
//! takes other shards' locks), so commands that build a new item from an old
//! one (append, touch that adds an expiry, incr that grows) copy the old item,
//! build the new one unlocked, and swap it in only if the old one is still
//! there unchanged, retrying otherwise.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};

use super::chunk::{
    ACTIVE, ALLOC, CHAINED, CONT_HEADER, Chunk, FETCHED, HAS_EXP, Header, LINKED, MARK_STALE,
    MARK_WON, Ref, SEQ_BITS, STATE_MASK, header_len,
};
use super::classes::{Classes, MEMCACHED_ITEM_HEADER};
use super::clock::Clock;
use super::index::{Index, KeyHash, Shard};
use super::slabs::{ClassCounters, Slabs, Victim};
use super::stamps::Stamps;

mod meta;
pub use meta::{After, DeleteError};

/// How far the eviction hand may look for a victim per try.
const SWEEP_BUDGET: usize = usize::MAX; // capped at two laps by sweep()
/// `stats sizes` groups items by size in steps of this many bytes.
const SIZE_BUCKET: u64 = 32;
/// Tries at allocating before giving up with "out of memory".
const ALLOC_TRIES: usize = 32;
/// The store sequence as items keep it without CAS.
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Keys a multi-key get looks ahead at (see [`Store::prefetch`]).
pub const PREFETCH_KEYS: usize = 16;

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub max_bytes: usize,
    pub item_size_max: usize,
    pub chunk_size: usize,
    pub growth_factor: f64,
    pub slab_chunk_max: usize,
    pub use_cas: bool,
    pub evict: bool,
    pub shards: usize,
    pub hash_capacity: usize,
    pub track_sizes: bool,
}

impl StoreConfig {
    pub fn from_config(c: &crate::config::Config) -> StoreConfig {
        StoreConfig {
            max_bytes: c.max_bytes,
            item_size_max: c.item_size_max,
            chunk_size: c.chunk_size,
            growth_factor: c.growth_factor,
            slab_chunk_max: c.slab_chunk_max,
            use_cas: c.use_cas,
            evict: !c.no_evict,
            shards: (c.threads * 64).max(256),
            track_sizes: c.track_sizes,
            hash_capacity: if c.hashpower > 0 {
                1 << c.hashpower.min(32)
            } else {
                0
            },
        }
    }
}

/// A stored item as a command sees it, valid while its shard is locked.
pub struct ItemView<'a> {
    pub key: &'a [u8],
    pub flags: u32,
    pub cas: u64,
    pub class: usize,
    /// Relative expiry time, 0 for never.
    pub exptime: u32,
    /// Meta-command marks (`MARK_*` in [`super::chunk`]).
    pub marks: u8,
    /// Whether the item was read before this command.
    pub fetched: bool,
    /// Its store sequence: the cas (with -C, the 29 bits items keep).
    seq: u64,
    /// Bytes it takes in its chunks (header, key, value).
    size: usize,
    value_len: usize,
    first: &'a [u8],
    next: Ref,
    slabs: &'a Slabs,
}

impl<'a> ItemView<'a> {
    pub fn value_len(&self) -> usize {
        self.value_len
    }

    /// Bytes the item takes in slab memory (memcrab's header, key, value).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Calls `f` with each piece of the value, in order.
    pub fn value(&self, mut f: impl FnMut(&'a [u8])) {
        f(self.first);
        let mut left = self.value_len - self.first.len();
        let mut r = self.next;
        while left > 0 && !r.is_none() {
            let c = self.slabs.chunk(r);
            let n = left.min(c.size() - CONT_HEADER);
            f(c.bytes(CONT_HEADER, n));
            left -= n;
            r = c.cont_next();
        }
    }

    pub fn value_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.value_len);
        self.value(|p| v.extend_from_slice(p));
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
    Expired,
    Flushed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreResult {
    Stored,
    NotStored,
    Exists,
    NotFound,
    NoMemory,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delta {
    Value(u64),
    NotFound,
    NonNumeric,
    NoMemory,
    /// The item's cas is not the one the request named.
    Exists,
}

/// What a store touched, for per-class statistics, and the cas of what it
/// stored (0 if nothing, or without CAS).
#[derive(Clone, Copy, Debug)]
pub struct Outcome<T> {
    pub result: T,
    pub class: usize,
    pub cas: u64,
}

/// A store as memcached's `do_store_item` sees it: the command and the new
/// item. The meta and binary protocols use the options beyond the classic
/// ones.
#[derive(Clone, Copy, Debug)]
pub struct StoreReq<'a> {
    pub mode: Mode,
    pub key: &'a [u8],
    pub flags: u32,
    pub exptime: u32,
    pub value: &'a [u8],
    /// Append/prepend only if the item's cas is this one (0: any).
    pub append_cas: u64,
    /// Cas mode: a cas older than the item's stores anyway, and the new
    /// item keeps the old one's expiry and win token and is marked stale
    /// (meta `ms … I`).
    pub stale_ok: bool,
    /// Marks the new item starts with (meta `b`: `MARK_BINARY_KEY`).
    pub marks: u8,
}

impl<'a> StoreReq<'a> {
    pub fn new(mode: Mode, key: &'a [u8], flags: u32, exptime: u32, value: &'a [u8]) -> Self {
        StoreReq {
            mode,
            key,
            flags,
            exptime,
            value,
            append_cas: 0,
            stale_ok: false,
            marks: 0,
        }
    }
}

/// An incr/decr as the meta and binary protocols ask for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeltaReq {
    pub incr: bool,
    pub delta: u64,
    /// Only if the item's cas is this one (0: any).
    pub cas: u64,
    /// On a miss, create the item with this value and expiry time.
    pub vivify: Option<(u64, u32)>,
    /// Then set this expiry time (meta `T`).
    pub exptime: Option<u32>,
    /// The requester still holds the item (memcached: a reply not yet
    /// written refers to it), so the new value goes in a new item rather
    /// than in place.
    pub held: bool,
}

/// The result of a [`DeltaReq`].
#[derive(Clone, Debug)]
pub struct DeltaOutcome {
    pub result: Delta,
    pub class: usize,
    /// The item's cas afterwards (0 without CAS).
    pub cas: u64,
    /// Its expiry time before the request's `exptime` applied.
    pub exptime: u32,
    /// The item was created (`vivify`): its value is the initial one.
    pub created: bool,
}

/// Totals behind `stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    pub curr_items: u64,
    pub total_items: u64,
    pub bytes: u64,
    pub evictions: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
    pub moves_within_lru: u64,
    pub hash_bytes: u64,
    pub malloced: u64,
    pub pool_pages: u64,
}

/// One class's line of `stats slabs` / `stats items`.
#[derive(Clone, Copy, Debug)]
pub struct ClassStats {
    pub id: usize,
    pub chunk_size: usize,
    pub perslab: usize,
    pub pages: usize,
    pub used: usize,
    pub free: usize,
    pub items: u64,
    pub requested: u64,
    pub age: u32,
    pub counters: ClassCounters,
}

pub struct Store {
    pub slabs: Slabs,
    index: Index,
    pub clock: Clock,
    use_cas: bool,
    evict: bool,
    item_size_max: usize,
    next_cas: AtomicU64,
    /// Items whose cas (store sequence) is below this were flushed; 0 = none.
    flush_seq: AtomicU64,
    /// A delayed flush_all: the relative time it takes effect; 0 = none.
    flush_at: AtomicU32,
    /// What `stats settings` shows as `oldest`.
    pub oldest_live: AtomicU32,
    /// One page move at a time (it holds two class locks at its end).
    mover: Mutex<()>,
    pub slabs_moved: AtomicU64,
    pub reassign_evictions: AtomicU64,
    /// Items per size bucket, with `-o track_sizes`.
    sizes: Option<Box<[AtomicU64]>>,
    /// When items were stored, by their sequence numbers.
    stamps: Stamps,
}

/// Where a new item's memory came from, before it is linked.
struct NewItem {
    head: Ref,
    class: usize,
}

/// An item allocated but not linked, its value being written: by
/// [`Store::store`] from a buffer, or from the network ([`Store::begin`]).
/// Its chunks are `ALLOC`, owned by whoever holds this; it must end in
/// [`Store::commit`] or [`Store::abandon`], or its memory is lost.
#[derive(Debug)]
pub struct Pending {
    head: Ref,
    class: usize,
    kh: KeyHash,
    /// A chained item's continuation chunks, in order.
    rest: Vec<Ref>,
    /// The chunk being written (0: the head, i: `rest[i - 1]`), the offset
    /// of the next value byte in it, and the value bytes still to come.
    chunk: usize,
    at: usize,
    left: usize,
}

impl Pending {
    fn current(&self) -> Ref {
        match self.chunk {
            0 => self.head,
            i => self.rest.get(i - 1).copied().unwrap_or(Ref::NONE),
        }
    }

    /// Whether the whole value has been written.
    pub fn is_complete(&self) -> bool {
        self.left == 0
    }
}

impl Store {
    pub fn new(cfg: &StoreConfig) -> Store {
        let classes = Classes::new(cfg.chunk_size, cfg.growth_factor, cfg.slab_chunk_max);
        let clock = Clock::new();
        Store {
            slabs: Slabs::new(classes, cfg.max_bytes),
            index: Index::new(cfg.shards, cfg.hash_capacity),
            stamps: Stamps::new(1, clock.now()),
            clock,
            use_cas: cfg.use_cas,
            evict: cfg.evict,
            item_size_max: cfg.item_size_max,
            next_cas: AtomicU64::new(1),
            flush_seq: AtomicU64::new(0),
            flush_at: AtomicU32::new(0),
            oldest_live: AtomicU32::new(0),
            mover: Mutex::new(()),
            slabs_moved: AtomicU64::new(0),
            reassign_evictions: AtomicU64::new(0),
            sizes: cfg.track_sizes.then(|| {
                let buckets = cfg.item_size_max.div_ceil(SIZE_BUCKET as usize) + 2;
                (0..buckets).map(|_| AtomicU64::new(0)).collect()
            }),
        }
    }

    pub fn classes(&self) -> &Classes {
        &self.slabs.classes
    }

    pub fn use_cas(&self) -> bool {
        self.use_cas
    }

    /// memcached's test for "object too large for cache": its own item size
    /// (48-byte header, key + NUL, flags suffix, value + CRLF, cas) over `-I`.
    pub fn too_large(&self, key_len: usize, flags: u32, value_len: usize) -> bool {
        let suffix = if flags != 0 { 4 } else { 0 };
        let cas = if self.use_cas { 8 } else { 0 };
        MEMCACHED_ITEM_HEADER + key_len + 1 + suffix + value_len + 2 + cas > self.item_size_max
    }

    // ----- reading -----

    fn view<'a>(&'a self, r: Ref, c: Chunk<'a>, state: u8) -> ItemView<'a> {
        let hl = header_len(self.use_cas, state);
        let nkey = c.key_len();
        let value_len = c.value_len(self.use_cas, state);
        let first = value_len.min(c.size() - hl - nkey);
        let seq = c.cas(self.use_cas);
        ItemView {
            key: c.bytes(hl, nkey),
            flags: c.client_flags(self.use_cas, state),
            cas: if self.use_cas { seq } else { 0 },
            class: self.slabs.class_of(r),
            exptime: c.exptime(self.use_cas, state),
            marks: c.marks(self.use_cas),
            fetched: state & FETCHED != 0,
            seq,
            size: hl + nkey + value_len,
            value_len,
            first: c.bytes(hl + nkey, first),
            next: c.next(self.use_cas, state),
            slabs: &self.slabs,
        }
    }

    fn key_of<'a>(&self, c: &Chunk<'a>, state: u8) -> &'a [u8] {
        c.bytes(header_len(self.use_cas, state), c.key_len())
    }

    /// Why a linked item is dead, if it is.
    fn dead(&self, c: &Chunk<'_>, state: u8, now: u32) -> Option<Lookup> {
        let exp = c.exptime(self.use_cas, state);
        if exp != 0 && exp <= now {
            return Some(Lookup::Expired);
        }
        let flush = self.flush_seq.load(Ordering::Acquire);
        if flush != 0 {
            let seq = c.cas(self.use_cas);
            // Without CAS only the low SEQ_BITS of the sequence are kept.
            let flushed = if self.use_cas {
                seq < flush
            } else {
                seq.wrapping_sub(flush) & SEQ_MASK > SEQ_MASK >> 1
            };
            if flushed {
                return Some(Lookup::Flushed);
            }
        }
        None
    }

    /// Finds `key` in a locked shard; a dead item found on the way is unlinked.
    fn find_live(
        &self,
        shard: &mut Shard,
        kh: KeyHash,
        key: &[u8],
        now: u32,
    ) -> Result<Ref, Lookup> {
        let found = shard.find(kh.hash, |r| {
            let c = self.slabs.chunk(r);
            self.key_of(&c, c.state()) == key
        });
        let Some(r) = found else {
            return Err(Lookup::Miss);
        };
        let c = self.slabs.chunk(r);
        match self.dead(&c, c.state(), now) {
            Some(why) => {
                self.unlink(shard, kh.hash, r);
                Err(why)
            }
            None => Ok(r),
        }
    }

    /// Starts loading what looking `keys` up will read, so that a multi-key
    /// get waits for memory about once instead of twice per key: first
    /// every key's index bucket, then (those having arrived) every
    /// candidate item's header and key.
    pub fn prefetch(&self, keys: &[&[u8]]) {
        let mut hashes = [KeyHash::default(); PREFETCH_KEYS];
        for (kh, key) in hashes.iter_mut().zip(keys) {
            *kh = self.index.hash(key);
            self.index.lock(kh.shard).prefetch(kh.hash);
        }
        for kh in &hashes[..keys.len().min(PREFETCH_KEYS)] {
            let shard = self.index.lock(kh.shard);
            shard.candidates(kh.hash, |r| self.slabs.chunk(r).prefetch());
        }
    }

    /// Looks `key` up and hands the item to `f` while its shard is locked.
    /// With `touch`, also sets a new expiry time (gat/gats).
    pub fn get<R>(
        &self,
        key: &[u8],
        touch: Option<u32>,
        f: impl FnOnce(&ItemView<'_>) -> R,
    ) -> Result<R, Lookup> {
        let now = self.clock.now();
        let kh = self.index.hash(key);
        let mut shard = self.index.lock(kh.shard);
        let r = self.find_live(&mut shard, kh, key, now)?;
        let c = self.slabs.chunk(r);
        let state = c.state();
        if state & (ACTIVE | FETCHED) != ACTIVE | FETCHED {
            c.set_bits(ACTIVE | FETCHED);
        }
        // The reply shows the item as it was; then the new expiry applies.
        let result = f(&self.view(r, c, state));
        if let Some(exptime) = touch
            && !self.touch_in_place(&c, state, exptime)
        {
            drop(shard);
            let _ = self.relayout_exptime(key, kh, exptime);
        }
        Ok(result)
    }

    fn touch_in_place(&self, c: &Chunk<'_>, state: u8, exptime: u32) -> bool {
        if state & HAS_EXP != 0 {
            c.set_exptime(self.use_cas, state, exptime);
            true
        } else {
            exptime == 0
        }
    }

    /// Sets a new expiry time; false if the key is not there.
    pub fn touch(&self, key: &[u8], exptime: u32) -> Result<usize, Lookup> {
        self.get(key, Some(exptime), |v| v.class)
    }

    /// An item stored without an expiry field needs one: copy it into a new
    /// item that has it, keeping its cas.
    fn relayout_exptime(&self, key: &[u8], kh: KeyHash, exptime: u32) -> Result<(), Lookup> {
        loop {
            let (old, flags, cas, value) = {
                let mut shard = self.index.lock(kh.shard);
                let r = self.find_live(&mut shard, kh, key, self.clock.now())?;
                let c = self.slabs.chunk(r);
                let v = self.view(r, c, c.state());
                (r, v.flags, c.cas(self.use_cas), v.value_vec())
            };
            let Ok(new) = self.alloc_item(key, kh, flags, exptime, &[&value]) else {
                return Err(Lookup::Miss);
            };
            let mut shard = self.index.lock(kh.shard);
            if self.still_there(&shard, kh, old, cas) {
                // The same item to clients: same marks, same use bits.
                let oc = self.slabs.chunk(old);
                let (marks, used) = (oc.marks(self.use_cas), oc.state() & (ACTIVE | FETCHED));
                let nc = self.slabs.chunk(new.head);
                nc.set_marks(self.use_cas, marks);
                self.publish(&mut shard, kh, new, Some(old), Some(cas));
                nc.set_bits(used);
                return Ok(());
            }
            drop(shard);
            self.free_item(new.head);
        }
    }

    // ----- writing -----

    /// Stores `value` under `key` as `mode` says.
    pub fn store(
        &self,
        mode: Mode,
        key: &[u8],
        flags: u32,
        exptime: u32,
        value: &[u8],
    ) -> Outcome<StoreResult> {
        self.store_item(&StoreReq::new(mode, key, flags, exptime, value))
    }

    /// Allocates an item for a value of `value_len` bytes that will arrive
    /// later (set/add/replace/cas of a large value, read straight from the
    /// network into [`Store::spare`]); [`Store::commit`] links it when full.
    /// On failure the result is what [`Store::store`] would have answered.
    pub fn begin(
        &self,
        mode: Mode,
        key: &[u8],
        flags: u32,
        exptime: u32,
        value_len: usize,
    ) -> Result<Pending, Outcome<StoreResult>> {
        debug_assert!(!matches!(mode, Mode::Append | Mode::Prepend));
        let kh = self.index.hash(key);
        self.alloc_pending(key, kh, flags, exptime, value_len)
            .map_err(|class| self.no_memory(mode, key, class))
    }

    /// Where the next value bytes of `p` go: a slice of its chunk memory,
    /// empty once the value is complete. Write into it, then call
    /// [`Store::filled`] with how many bytes were written.
    pub fn spare<'p>(&'p self, p: &'p mut Pending) -> &'p mut [u8] {
        if p.left == 0 {
            return &mut [];
        }
        let mut c = self.slabs.chunk(p.current());
        if p.at == c.size() {
            p.chunk += 1;
            p.at = CONT_HEADER;
            c = self.slabs.chunk(p.current());
        }
        let n = p.left.min(c.size() - p.at);
        c.bytes_mut(p.at, n)
    }

    /// `n` bytes were written into the slice [`Store::spare`] returned.
    pub fn filled(&self, p: &mut Pending, n: usize) {
        let n = n.min(p.left);
        p.at += n;
        p.left -= n;
    }

    /// Copies as much of `data` as the value of `p` still needs; returns
    /// how many bytes it took.
    pub fn fill(&self, p: &mut Pending, mut data: &[u8]) -> usize {
        let mut took = 0;
        while !data.is_empty() {
            let spare = self.spare(p);
            let n = spare.len().min(data.len());
            if n == 0 {
                break;
            }
            spare[..n].copy_from_slice(&data[..n]);
            self.filled(p, n);
            took += n;
            data = &data[n..];
        }
        took
    }

    /// The key of an item being filled.
    pub fn pending_key(&self, p: &Pending) -> &[u8] {
        let c = self.slabs.chunk(p.head);
        self.key_of(&c, c.state())
    }

    /// Links a filled item as `mode` says (set, add, replace or cas).
    pub fn commit(&self, mode: Mode, p: Pending) -> Outcome<StoreResult> {
        debug_assert!(p.is_complete());
        let c = self.slabs.chunk(p.head);
        let key = self.key_of(&c, c.state());
        let new = NewItem {
            head: p.head,
            class: p.class,
        };
        let req = StoreReq::new(mode, key, 0, 0, &[]);
        // Only a stale cas store (meta `ms … I`) asks to be made again.
        self.link(&req, p.kh, new).unwrap_or(Outcome {
            result: StoreResult::Exists,
            class: p.class,
            cas: 0,
        })
    }

    /// Gives back the memory of an item that will not be linked.
    pub fn abandon(&self, p: Pending) {
        self.free_item(p.head);
    }

    /// What a store that found no memory answers: memcached drops the old
    /// value when a set cannot be stored.
    fn no_memory(&self, mode: Mode, key: &[u8], class: usize) -> Outcome<StoreResult> {
        if mode == Mode::Set {
            let _ = self.delete(key);
        }
        Outcome {
            result: StoreResult::NoMemory,
            class,
            cas: 0,
        }
    }

    /// Stores as `req` says (memcached's `do_store_item`).
    pub fn store_item(&self, req: &StoreReq<'_>) -> Outcome<StoreResult> {
        let kh = self.index.hash(req.key);
        if matches!(req.mode, Mode::Append | Mode::Prepend) {
            return self.concat(req, kh);
        }
        let mut exptime = req.exptime;
        loop {
            let new = match self.alloc_item(req.key, kh, req.flags, exptime, &[req.value]) {
                Ok(new) => new,
                Err(class) => return self.no_memory(req.mode, req.key, class),
            };
            match self.link(req, kh, new) {
                Ok(outcome) => return outcome,
                Err(old_exptime) => exptime = old_exptime,
            }
        }
    }

    /// Links `new`, its value written, under `req.key` if `req.mode`
    /// allows, else frees it. `Err(exptime)`: a stale cas store wants the
    /// item made again with the old item's expiry time.
    fn link(
        &self,
        req: &StoreReq<'_>,
        kh: KeyHash,
        new: NewItem,
    ) -> Result<Outcome<StoreResult>, u32> {
        let class = new.class;
        let c = self.slabs.chunk(new.head);
        let mut marks = req.marks;
        let mut shard = self.index.lock(kh.shard);
        let old = self
            .find_live(&mut shard, kh, req.key, self.clock.now())
            .ok();
        let result = match (req.mode, old) {
            (Mode::Set, _) | (Mode::Add, None) | (Mode::Replace, Some(_)) => StoreResult::Stored,
            (Mode::Cas(cas), Some(r)) if self.use_cas => {
                let oc = self.slabs.chunk(r);
                let current = oc.cas(true);
                if current == cas {
                    StoreResult::Stored
                } else if req.stale_ok && cas < current {
                    // A stale value: it keeps the item's expiry and win token.
                    let old_exp = oc.exptime(true, oc.state());
                    if !self.touch_in_place(&c, c.state(), old_exp) {
                        // The new item has no expiry field: make it again.
                        drop(shard);
                        self.free_item(new.head);
                        return Err(old_exp);
                    }
                    marks |= MARK_STALE | (oc.marks(true) & MARK_WON);
                    StoreResult::Stored
                } else {
                    StoreResult::Exists
                }
            }
            (Mode::Cas(_), Some(_)) => StoreResult::Exists,
            (Mode::Cas(_), None) => StoreResult::NotFound,
            _ => StoreResult::NotStored,
        };
        let mut cas = 0;
        if result == StoreResult::Stored {
            c.set_marks(self.use_cas, marks);
            self.publish(&mut shard, kh, new, old, None);
            cas = self.reported_cas(&c);
        } else {
            if let (Mode::Add, Some(r)) = (req.mode, old) {
                // A failed add still counts as a use of the existing item.
                self.slabs.chunk(r).set_bits(ACTIVE);
            }
            drop(shard);
            self.free_item(new.head);
        }
        Ok(Outcome { result, class, cas })
    }

    /// The cas clients see for an item: 0 without CAS.
    fn reported_cas(&self, c: &Chunk<'_>) -> u64 {
        if self.use_cas { c.cas(true) } else { 0 }
    }

    fn concat(&self, req: &StoreReq<'_>, kh: KeyHash) -> Outcome<StoreResult> {
        let (key, data) = (req.key, req.value);
        let not = |result, class| Outcome {
            result,
            class,
            cas: 0,
        };
        loop {
            let (old, flags, exptime, cas, value, class) = {
                let mut shard = self.index.lock(kh.shard);
                let Ok(r) = self.find_live(&mut shard, kh, key, self.clock.now()) else {
                    let class = self.classes().for_size(key.len() + data.len()).unwrap_or(0);
                    return not(StoreResult::NotStored, class);
                };
                let c = self.slabs.chunk(r);
                let state = c.state();
                let v = self.view(r, c, state);
                // memcached compares a cas given with append only with CAS on.
                if req.append_cas != 0 && self.use_cas && v.cas != req.append_cas {
                    return not(StoreResult::Exists, v.class);
                }
                (r, v.flags, v.exptime, v.seq, v.value_vec(), v.class)
            };
            // memcached answers NOT_STORED when the combined item cannot be made.
            if self.too_large(key.len(), flags, value.len() + data.len()) {
                return not(StoreResult::NotStored, class);
            }
            let parts: [&[u8]; 2] = if req.mode == Mode::Append {
                [&value, data]
            } else {
                [data, &value]
            };
            let new = match self.alloc_item(key, kh, flags, exptime, &parts) {
                Ok(new) => new,
                Err(class) => return not(StoreResult::NotStored, class),
            };
            let mut shard = self.index.lock(kh.shard);
            if self.still_there(&shard, kh, old, cas) {
                let class = new.class;
                let c = self.slabs.chunk(new.head);
                self.publish(&mut shard, kh, new, Some(old), None);
                return Outcome {
                    result: StoreResult::Stored,
                    class,
                    cas: self.reported_cas(&c),
                };
            }
            drop(shard);
            self.free_item(new.head);
        }
    }

    /// incr (`incr` true) or decr by `delta`, as memcached does it: in place,
    /// padded with spaces, when the new number is not longer than the value.
    pub fn delta(&self, key: &[u8], incr: bool, delta: u64) -> Outcome<Delta> {
        let o = self.delta_item(
            key,
            &DeltaReq {
                incr,
                delta,
                ..DeltaReq::default()
            },
        );
        Outcome {
            result: o.result,
            class: o.class,
            cas: o.cas,
        }
    }

    /// incr/decr with the meta and binary protocols' options.
    pub fn delta_item(&self, key: &[u8], req: &DeltaReq) -> DeltaOutcome {
        let kh = self.index.hash(key);
        let done = |result, class| DeltaOutcome {
            result,
            class,
            cas: 0,
            exptime: 0,
            created: false,
        };
        let mut stub: Option<NewItem> = None;
        loop {
            let mut shard = self.index.lock(kh.shard);
            let r = match self.find_live(&mut shard, kh, key, self.clock.now()) {
                Ok(r) => r,
                Err(_) => {
                    let Some((initial, exptime)) = req.vivify else {
                        return done(Delta::NotFound, 0);
                    };
                    if let Some(new) = stub.take() {
                        let (class, c) = (new.class, self.slabs.chunk(new.head));
                        self.publish(&mut shard, kh, new, None, None);
                        return DeltaOutcome {
                            result: Delta::Value(initial),
                            class,
                            cas: self.reported_cas(&c),
                            exptime,
                            created: true,
                        };
                    }
                    drop(shard);
                    let digits = initial.to_string();
                    match self.alloc_item(key, kh, 0, exptime, &[digits.as_bytes()]) {
                        Ok(new) => stub = Some(new),
                        Err(class) => return done(Delta::NoMemory, class),
                    }
                    continue;
                }
            };
            if let Some(new) = stub.take() {
                // Someone else stored the key meanwhile: count on theirs.
                drop(shard);
                self.free_item(new.head);
                continue;
            }
            let c = self.slabs.chunk(r);
            let state = c.state();
            let v = self.view(r, c, state);
            let class = v.class;
            if req.cas != 0 && v.cas != req.cas {
                return done(Delta::Exists, class);
            }
            let current = if state & CHAINED != 0 || v.value_len == 0 {
                None
            } else {
                super::cnum::strtoull(v.first)
            };
            let Some(current) = current else {
                return done(Delta::NonNumeric, class);
            };
            let value = if req.incr {
                current.wrapping_add(req.delta)
            } else {
                current.saturating_sub(req.delta)
            };
            let digits = value.to_string();
            c.set_bits(ACTIVE);
            let old_exp = v.exptime;
            if digits.len() <= v.value_len && !req.held {
                let at = header_len(self.use_cas, state) + v.key.len();
                let mut padded = vec![b' '; v.value_len];
                padded[..digits.len()].copy_from_slice(digits.as_bytes());
                c.write(at, &padded);
                c.set_cas(self.use_cas, self.next_cas.fetch_add(1, Ordering::Relaxed));
                let cas = self.reported_cas(&c);
                if let Some(exptime) = req.exptime
                    && !self.touch_in_place(&c, state, exptime)
                {
                    drop(shard);
                    let _ = self.relayout_exptime(key, kh, exptime);
                }
                return DeltaOutcome {
                    result: Delta::Value(value),
                    class,
                    cas,
                    exptime: old_exp,
                    created: false,
                };
            }
            let (flags, cas) = (v.flags, v.seq);
            drop(shard);
            let exptime = req.exptime.unwrap_or(old_exp);
            let new = match self.alloc_item(key, kh, flags, exptime, &[digits.as_bytes()]) {
                Ok(new) => new,
                Err(class) => return done(Delta::NoMemory, class),
            };
            let mut shard = self.index.lock(kh.shard);
            if self.still_there(&shard, kh, r, cas) {
                let nc = self.slabs.chunk(new.head);
                self.publish(&mut shard, kh, new, Some(r), None);
                return DeltaOutcome {
                    result: Delta::Value(value),
                    class,
                    cas: self.reported_cas(&nc),
                    exptime: old_exp,
                    created: false,
                };
            }
            drop(shard);
            self.free_item(new.head);
        }
    }

    /// Removes `key`; the class it was in, or why not.
    pub fn delete(&self, key: &[u8]) -> Result<usize, Lookup> {
        let kh = self.index.hash(key);
        let mut shard = self.index.lock(kh.shard);
        let r = self.find_live(&mut shard, kh, key, self.clock.now())?;
        let class = self.slabs.class_of(r);
        self.unlink(&mut shard, kh.hash, r);
        Ok(class)
    }

    /// `flush_all [delay]`: `delay` is a relative time (0 = now).
    pub fn flush(&self, at: u32) {
        let now = self.clock.now();
        if at == 0 || at <= now {
            self.flush_at.store(0, Ordering::Release);
            // memcached takes a fresh cas id as the flush point.
            let id = self.next_cas.fetch_add(1, Ordering::AcqRel);
            self.flush_seq.store(id + 1, Ordering::Release);
            self.oldest_live
                .store(now.saturating_sub(1), Ordering::Relaxed);
        } else {
            self.flush_at.store(at, Ordering::Release);
            self.oldest_live.store(at - 1, Ordering::Relaxed);
        }
    }

    /// Whether `old` is still the linked item for this key with this cas.
    fn still_there(&self, shard: &Shard, kh: KeyHash, old: Ref, cas: u64) -> bool {
        shard.contains(kh.hash, old) && self.slabs.chunk(old).cas(self.use_cas) == cas
    }

    /// Links a filled item, replacing `old`; gives it a new cas unless `keep_cas`.
    fn publish(
        &self,
        shard: &mut Shard,
        kh: KeyHash,
        new: NewItem,
        old: Option<Ref>,
        keep_cas: Option<u64>,
    ) {
        let c = self.slabs.chunk(new.head);
        let cas = keep_cas.unwrap_or_else(|| self.next_cas.fetch_add(1, Ordering::Relaxed));
        c.set_cas(self.use_cas, cas);
        let state = c.state();
        let mut cont = c.next(self.use_cas, state);
        while !cont.is_none() {
            let cc = self.slabs.chunk(cont);
            cc.set_state(super::chunk::CONT);
            cont = cc.cont_next();
        }
        c.set_state((state & !STATE_MASK) | LINKED);
        match old {
            Some(old) if shard.replace(kh.hash, old, new.head) => {
                self.account(shard, old, false);
                self.free_item(old);
            }
            _ => shard.insert(kh.hash, new.head),
        }
        self.account(shard, new.head, true);
        // A relayout for touch is the same item to memcached: not a new one.
        if keep_cas.is_none() {
            shard.total_items += 1;
        }
    }

    /// Counts an item in or out of its shard's totals (and `stats sizes`).
    fn account(&self, shard: &mut Shard, r: Ref, linked: bool) {
        let size = self.item_size(r) as u64;
        if linked {
            shard.items += 1;
            shard.bytes += size;
        } else {
            shard.items -= 1;
            shard.bytes -= size;
        }
        if let Some(sizes) = &self.sizes {
            let bucket = (size.div_ceil(SIZE_BUCKET) as usize).min(sizes.len() - 1);
            if linked {
                sizes[bucket].fetch_add(1, Ordering::Relaxed);
            } else {
                sizes[bucket].fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// `stats sizes` (`-o track_sizes`): (bucket upper bound, items) pairs.
    pub fn sizes(&self) -> Option<Vec<(u64, u64)>> {
        let sizes = self.sizes.as_ref()?;
        Some(
            sizes
                .iter()
                .enumerate()
                .map(|(i, n)| (i as u64 * SIZE_BUCKET, n.load(Ordering::Relaxed)))
                .filter(|&(_, n)| n > 0)
                .collect(),
        )
    }

    /// Unlinks a linked item from its (locked) shard and frees its memory.
    fn unlink(&self, shard: &mut Shard, hash: u32, r: Ref) {
        if shard.remove(hash, r) {
            self.account(shard, r, false);
            self.free_item(r);
        }
    }

    /// Bytes an item takes: header, key and value.
    fn item_size(&self, r: Ref) -> usize {
        let c = self.slabs.chunk(r);
        let state = c.state();
        header_len(self.use_cas, state) + c.key_len() + c.value_len(self.use_cas, state)
    }

    // ----- memory -----

    /// Allocates and fills a new item (in `ALLOC` state, not yet linked).
    /// On failure, the class that had no memory.
    /// Allocates and fills an item (header, key, value parts).
    fn alloc_item(
        &self,
        key: &[u8],
        kh: KeyHash,
        flags: u32,
        exptime: u32,
        parts: &[&[u8]],
    ) -> Result<NewItem, usize> {
        let value_len: usize = parts.iter().map(|p| p.len()).sum();
        let mut p = self.alloc_pending(key, kh, flags, exptime, value_len)?;
        for part in parts {
            self.fill(&mut p, part);
        }
        Ok(NewItem {
            head: p.head,
            class: p.class,
        })
    }

    /// Allocates an item's chunks and writes its header and key; the value
    /// is left to fill.
    fn alloc_pending(
        &self,
        key: &[u8],
        kh: KeyHash,
        flags: u32,
        exptime: u32,
        value_len: usize,
    ) -> Result<Pending, usize> {
        let mut header = Header {
            key_len: key.len() as u8,
            value_len,
            flags,
            exptime,
            cas: 0,
            next: Ref::NONE,
        };
        let total = header_len(self.use_cas, header.bits()) + key.len() + value_len;
        let (class, refs) = if let Some(class) = self.classes().for_size(total) {
            (
                class,
                vec![self.alloc_chunk(class, total, true).ok_or(class)?],
            )
        } else {
            // Too big for one chunk: a head from the largest class, then
            // continuation chunks, the last one from the class that fits the rest.
            let largest = self.classes().largest();
            let max = self.classes().get(largest).size;
            header.next = Ref::from_raw(0); // any non-NONE value: reserves the field
            let total = header_len(self.use_cas, header.bits()) + key.len() + value_len;
            let mut left = total - max;
            let mut plan = vec![(largest, max)];
            while left > 0 {
                let n = left.min(max - CONT_HEADER);
                let class = self.classes().for_size(n + CONT_HEADER).unwrap_or(largest);
                plan.push((class, n + CONT_HEADER));
                left -= n;
            }
            let refs = self.alloc_chain(&plan)?;
            header.next = refs[1];
            for (i, &r) in refs.iter().enumerate().skip(1) {
                let next = refs.get(i + 1).copied().unwrap_or(Ref::NONE);
                self.slabs
                    .chunk(r)
                    .write_cont_header(refs[0], next, kh.hash);
            }
            (largest, refs)
        };
        let head = self.slabs.chunk(refs[0]);
        head.write_header(&header, self.use_cas);
        let at = header_len(self.use_cas, head.state());
        head.write(at, key);
        let mut refs = refs.into_iter();
        let head_ref = refs.next().unwrap_or(Ref::NONE);
        Ok(Pending {
            head: head_ref,
            class,
            kh,
            rest: refs.collect(),
            chunk: 0,
            at: at + key.len(),
            left: value_len,
        })
    }

    /// The chunks of a chained item. Two writers of large values can each
    /// hold part of the few chunks a class has; whoever fails gives its
    /// chunks back and tries again a few times before "out of memory".
    fn alloc_chain(&self, plan: &[(usize, usize)]) -> Result<Vec<Ref>, usize> {
        let mut refs = Vec::with_capacity(plan.len());
        for attempt in 0..4 {
            refs.clear();
            let mut failed = None;
            for (i, &(class, bytes)) in plan.iter().enumerate() {
                match self.alloc_chunk(class, bytes, i == 0) {
                    Some(r) => refs.push(r),
                    None => {
                        failed = Some(class);
                        break;
                    }
                }
            }
            let Some(class) = failed else {
                return Ok(refs);
            };
            for (i, (&r, &(c, b))) in refs.iter().zip(plan).enumerate() {
                let mut cs = self.slabs.lock(c);
                cs.items -= (i == 0) as u64;
                self.slabs.free(&mut cs, r, b);
            }
            if attempt == 3 {
                return Err(class);
            }
            std::thread::yield_now();
        }
        Err(plan[0].0)
    }

    /// A chunk of `class`, evicting if memory is full (and `-M` is off).
    fn alloc_chunk(&self, class: usize, bytes: usize, head: bool) -> Option<Ref> {
        for _ in 0..ALLOC_TRIES {
            let victim = {
                let mut cs = self.slabs.lock(class);
                if let Some(r) = self.slabs.take(&mut cs, bytes) {
                    if head {
                        cs.items += 1;
                    }
                    return Some(r);
                }
                let now = self.clock.now();
                let found = if self.evict {
                    self.slabs.sweep(&mut cs, now, SWEEP_BUDGET, |c, s| {
                        self.dead(c, s, now).is_some()
                    })
                } else {
                    None
                };
                match found {
                    Some(Victim::Item(r)) => {
                        let c = self.slabs.chunk(r);
                        (r, self.index.hash(self.key_of(&c, c.state())))
                    }
                    Some(Victim::Cont { head, hash }) => (head, self.index.key_hash(hash)),
                    None => {
                        cs.counters.outofmemory += 1;
                        return None;
                    }
                }
            };
            if let Some(r) = self.evict(victim.0, victim.1, (class, bytes, head)) {
                return Some(r);
            }
        }
        self.slabs.lock(class).counters.outofmemory += 1;
        None
    }

    /// Evicts (or reclaims, if it is dead) the item `r` if it is still linked.
    /// When its chunk is what `want` asks for (`class`, `bytes`, whether it
    /// will be an item head), the evictor keeps the chunk instead of freeing
    /// it, so a competing allocation cannot take it first.
    fn evict(&self, r: Ref, kh: KeyHash, want: (usize, usize, bool)) -> Option<Ref> {
        let mut shard = self.index.lock(kh.shard);
        if !shard.contains(kh.hash, r) {
            return None;
        }
        let c = self.slabs.chunk(r);
        let state = c.state();
        let now = self.clock.now();
        let dead = self.dead(&c, state, now).is_some();
        let old_size = self.item_size(r);
        let (class, bytes, head) = want;
        let claim = self.slabs.class_of(r) == class && state & CHAINED == 0;
        {
            let mut cs = self.slabs.lock(self.slabs.class_of(r));
            let last_lap = cs.last_lap;
            let k = &mut cs.counters;
            let unfetched = state & FETCHED == 0;
            if dead {
                k.reclaimed += 1;
                k.expired_unfetched += unfetched as u64;
            } else {
                k.evicted += 1;
                k.evicted_nonzero += (c.exptime(self.use_cas, state) != 0) as u64;
                k.evicted_unfetched += unfetched as u64;
                k.evicted_active += (state & ACTIVE != 0) as u64;
                k.evicted_time = last_lap;
            }
            if claim {
                shard.remove(kh.hash, r);
                self.account(&mut shard, r, false);
                cs.requested = cs.requested - old_size as u64 + bytes as u64;
                if !head {
                    cs.items -= 1;
                }
                c.set_state(ALLOC);
                return Some(r);
            }
        }
        self.unlink(&mut shard, kh.hash, r);
        None
    }

    /// Returns every chunk of an unlinked (or never linked) item.
    fn free_item(&self, head: Ref) {
        let c = self.slabs.chunk(head);
        let state = c.state();
        let total =
            header_len(self.use_cas, state) + c.key_len() + c.value_len(self.use_cas, state);
        let mut next = c.next(self.use_cas, state);
        let head_bytes = total.min(c.size());
        let mut left = total - head_bytes;
        {
            let mut cs = self.slabs.lock(self.slabs.class_of(head));
            cs.items -= 1;
            self.slabs.free(&mut cs, head, head_bytes);
        }
        while left > 0 && !next.is_none() {
            let c = self.slabs.chunk(next);
            let after = c.cont_next();
            let n = left.min(c.size() - CONT_HEADER);
            let mut cs = self.slabs.lock(self.slabs.class_of(next));
            self.slabs.free(&mut cs, next, n + CONT_HEADER);
            left -= n;
            next = after;
        }
    }

    // ----- background work -----

    /// Advances the server clock (the maintenance thread, every tick). A
    /// new second is recorded with the next store sequence number first, so
    /// that items stored from then on are dated no earlier than it.
    pub fn tick_clock(&self) {
        let due = self.clock.due();
        if due != self.clock.now() {
            self.stamps
                .record(self.next_cas.load(Ordering::Acquire), due);
        }
        self.clock.tick_to(due);
    }

    /// When an item was stored, or last given a new cas (by the server
    /// clock): what meta commands report as its last access.
    pub fn stored_at(&self, item: &ItemView<'_>) -> u32 {
        let seq = if self.use_cas {
            item.seq
        } else {
            // Items keep SEQ_BITS of the sequence: the latest one that fits.
            let next = self.next_cas.load(Ordering::Relaxed);
            next.saturating_sub(next.wrapping_sub(item.seq) & SEQ_MASK)
        };
        self.stamps.time_of(seq)
    }

    /// Applies a delayed flush_all whose time has come. Called by the clock.
    pub fn tick(&self) {
        let at = self.flush_at.load(Ordering::Acquire);
        if at != 0 && at <= self.clock.now() + 1 {
            self.flush(0);
        }
        self.retire_flush();
    }

    /// Moves the store sequence forward (tests of its wrap-around).
    #[cfg(test)]
    pub fn advance_sequence(&self, n: u64) {
        self.next_cas.fetch_add(n, Ordering::Relaxed);
    }

    /// Without CAS items keep SEQ_BITS (29) of their sequence, compared
    /// with wrap-around, which stays right for 2^28 stores after a flush.
    /// Long before that, reclaim every flushed item and forget the flush
    /// point.
    fn retire_flush(&self) {
        let flush = self.flush_seq.load(Ordering::Acquire);
        let limit = 1 << (SEQ_BITS - 2);
        if self.use_cas || flush == 0 || self.next_cas.load(Ordering::Relaxed) - flush < limit {
            return;
        }
        for class in 0..self.classes().len() {
            let chunks = self.slabs.lock(class).total_chunks();
            self.crawl(class, chunks);
        }
        self.flush_seq.store(0, Ordering::Release);
    }

    /// Crawls up to `budget` chunks of `class`, reclaiming dead items.
    pub fn crawl(&self, class: usize, budget: usize) -> usize {
        let now = self.clock.now();
        let mut dead = Vec::new();
        {
            let mut cs = self.slabs.lock(class);
            let total = cs.total_chunks();
            for _ in 0..budget.min(total) {
                if cs.crawl_pos >= total {
                    cs.crawl_pos = 0;
                }
                let pos = cs.crawl_pos;
                cs.crawl_pos += 1;
                let Some(r) = cs.chunk_at(pos) else { continue };
                let c = self.slabs.chunk(r);
                let state = c.state();
                if state & STATE_MASK != LINKED {
                    continue;
                }
                cs.counters.crawler_items_checked += 1;
                if self.dead(&c, state, now).is_some() {
                    dead.push((r, self.index.hash(self.key_of(&c, state))));
                }
            }
        }
        let mut reclaimed = 0;
        for (r, kh) in dead {
            let mut shard = self.index.lock(kh.shard);
            if shard.contains(kh.hash, r) {
                let c = self.slabs.chunk(r);
                if self.dead(&c, c.state(), now).is_some() {
                    self.slabs.lock(class).counters.crawler_reclaimed += 1;
                    self.unlink(&mut shard, kh.hash, r);
                    reclaimed += 1;
                }
            }
        }
        reclaimed
    }

    /// Moves one page from class `src` to class `dst` (or to the global pool),
    /// evicting what the page holds. memcached's `slabs reassign`.
    pub fn move_page(&self, src: usize, dst: Option<usize>) -> Result<(), MoveError> {
        let n = self.classes().len();
        if src >= n || dst.is_some_and(|d| d >= n) {
            return Err(MoveError::BadClass);
        }
        if dst == Some(src) {
            return Err(MoveError::Same);
        }
        let Some(_mover) = self.mover.try_lock() else {
            return Err(MoveError::Busy);
        };
        let page = {
            let mut cs = self.slabs.lock(src);
            if cs.pages.len() < 2 {
                return Err(MoveError::NoSpare);
            }
            self.slabs
                .begin_reclaim(&mut cs)
                .ok_or(MoveError::NoSpare)?
        };
        for pass in 0.. {
            let occupied = {
                let cs = self.slabs.lock(src);
                self.slabs.occupied(&cs, page)
            };
            if occupied.is_empty() {
                break;
            }
            if pass == 1000 {
                let mut cs = self.slabs.lock(src);
                self.slabs.abort_reclaim(&mut cs, page);
                return Err(MoveError::Busy);
            }
            let mut busy = false;
            for (r, state) in occupied {
                let target = {
                    let _cs = self.slabs.lock(src);
                    let c = self.slabs.chunk(r);
                    match c.state() & STATE_MASK {
                        LINKED => Some((r, self.index.hash(self.key_of(&c, state)))),
                        super::chunk::CONT => {
                            Some((c.cont_head(), self.index.key_hash(c.cont_hash())))
                        }
                        super::chunk::FREE => None,
                        _ => {
                            busy = true;
                            None
                        }
                    }
                };
                if let Some((r, kh)) = target {
                    let mut shard = self.index.lock(kh.shard);
                    if shard.contains(kh.hash, r) {
                        self.reassign_evictions.fetch_add(1, Ordering::Relaxed);
                        self.unlink(&mut shard, kh.hash, r);
                    }
                }
            }
            if busy {
                std::thread::yield_now();
            }
        }
        let mut cs = self.slabs.lock(src);
        match dst {
            Some(d) => {
                let mut to = self.slabs.lock(d);
                self.slabs.finish_reclaim(&mut cs, page, Some(&mut to));
            }
            None => self.slabs.finish_reclaim(&mut cs, page, None),
        }
        self.slabs_moved.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    // ----- statistics -----

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for i in 0..self.index.shard_count() {
            let s = self.index.lock(i);
            t.curr_items += s.items;
            t.total_items += s.total_items;
            t.bytes += s.bytes;
            t.hash_bytes += s.table_bytes() as u64;
        }
        for c in self.class_stats() {
            t.evictions += c.counters.evicted;
            t.reclaimed += c.counters.reclaimed;
            t.expired_unfetched += c.counters.expired_unfetched;
            t.evicted_unfetched += c.counters.evicted_unfetched;
            t.evicted_active += c.counters.evicted_active;
            t.crawler_reclaimed += c.counters.crawler_reclaimed;
            t.crawler_items_checked += c.counters.crawler_items_checked;
            t.moves_within_lru += c.counters.moves_within_lru;
        }
        let (allocated, pool) = self.slabs.page_counts();
        t.malloced = (allocated * super::classes::PAGE_SIZE) as u64;
        t.pool_pages = pool as u64;
        t
    }

    /// Every class that holds pages, as `stats slabs` lists them.
    pub fn class_stats(&self) -> Vec<ClassStats> {
        let now = self.clock.now();
        (0..self.classes().len())
            .map(|id| {
                let cs = self.slabs.lock(id);
                ClassStats {
                    id,
                    chunk_size: cs.size,
                    perslab: cs.perslab,
                    pages: cs.pages.len(),
                    used: cs.used,
                    free: cs.free_count + cs.free_end(),
                    items: cs.items,
                    requested: cs.requested,
                    age: now.saturating_sub(cs.lap_started).max(cs.last_lap),
                    counters: cs.counters,
                }
            })
            .filter(|c| c.pages > 0)
            .collect()
    }

    /// Clears the counters `stats reset` clears.
    pub fn reset_counters(&self) {
        for id in 0..self.classes().len() {
            self.slabs.lock(id).counters = ClassCounters::default();
        }
        for i in 0..self.index.shard_count() {
            self.index.lock(i).total_items = 0;
        }
    }

    pub fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.index.lock(i)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveError {
    BadClass,
    Same,
    NoSpare,
    Busy,
}
