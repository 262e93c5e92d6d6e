//! Tests of the storage engine through the [`Store`] façade: command
//! semantics, expiry, flush, chained values, eviction, page moves, the memory
//! target, concurrency, and a model-based property test.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::chunk::CONT_HEADER;
use super::classes::PAGE_SIZE;
use super::cnum::strtoull as parse_c_u64;
use super::store::{ClassStats, MoveError};
use super::{Delta, Lookup, Mode, Store, StoreConfig, StoreResult};

const MIB: usize = 1024 * 1024;
const CHUNK_MAX: usize = 512 * 1024;

fn config(max_bytes: usize) -> StoreConfig {
    StoreConfig {
        max_bytes,
        item_size_max: MIB,
        chunk_size: 48,
        growth_factor: 1.25,
        slab_chunk_max: CHUNK_MAX,
        use_cas: true,
        evict: true,
        shards: 64,
        hash_capacity: 0,
        track_sizes: false,
    }
}

fn new_store(max_bytes: usize) -> Store {
    Store::new(&config(max_bytes))
}

/// A live item as (value, flags, cas).
fn get(s: &Store, key: &[u8]) -> Option<(Vec<u8>, u32, u64)> {
    s.get(key, None, |v| (v.value_vec(), v.flags, v.cas)).ok()
}

fn value_of(s: &Store, key: &[u8]) -> Option<Vec<u8>> {
    s.get(key, None, |v| v.value_vec()).ok()
}

fn cas_of(s: &Store, key: &[u8]) -> u64 {
    s.get(key, None, |v| v.cas).expect("item present")
}

fn set(s: &Store, key: &[u8], value: &[u8]) -> StoreResult {
    s.store(Mode::Set, key, 0, 0, value).result
}

fn set_exp(s: &Store, key: &[u8], value: &[u8], exptime: u32) -> StoreResult {
    s.store(Mode::Set, key, 0, exptime, value).result
}

/// A byte pattern that differs by position and seed (period 251).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed as usize * 7) % 251) as u8)
        .collect()
}

fn class_stat(s: &Store, id: usize) -> Option<ClassStats> {
    s.class_stats().into_iter().find(|c| c.id == id)
}

fn pages_of(s: &Store, id: usize) -> usize {
    class_stat(s, id).map_or(0, |c| c.pages)
}

/// Every class holds nothing: no chunk in use, no item, no requested bytes.
fn assert_slabs_empty(s: &Store) {
    for c in s.class_stats() {
        assert_eq!(c.used, 0, "class {} still has chunks in use", c.id);
        assert_eq!(c.items, 0, "class {} still counts items", c.id);
        assert_eq!(
            c.requested, 0,
            "class {} still counts requested bytes",
            c.id
        );
        assert_eq!(c.free, c.pages * c.perslab, "class {} free count", c.id);
    }
    let t = s.totals();
    assert_eq!(t.curr_items, 0);
    assert_eq!(t.bytes, 0);
}

/// Small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Keys of 10 bytes: with a 100-byte value the item takes a 152-byte chunk.
fn small_key(i: usize) -> Vec<u8> {
    format!("key{i:07}").into_bytes()
}

/// A 100-byte value that encodes `i`.
fn small_value(i: usize) -> Vec<u8> {
    let mut v = format!("value-of-{i:07}-").into_bytes().repeat(6);
    v.resize(100, b'.');
    v
}

// ----- 1. storage commands -----

#[test]
fn set_get_round_trip_with_flags() {
    let s = new_store(64 * MIB);
    for (i, flags) in [0u32, 1, 0x8000_0000, u32::MAX].into_iter().enumerate() {
        let key = format!("flags{i}");
        let value = format!("value {flags}");
        assert_eq!(
            s.store(Mode::Set, key.as_bytes(), flags, 0, value.as_bytes())
                .result,
            StoreResult::Stored
        );
        let (v, f, cas) = get(&s, key.as_bytes()).expect("stored");
        assert_eq!(v, value.as_bytes());
        assert_eq!(f, flags);
        assert_ne!(cas, 0);
    }
    assert_eq!(s.get(b"missing", None, |_| ()), Err(Lookup::Miss));
    assert_eq!(s.totals().curr_items, 4);
}

#[test]
fn empty_and_binary_values() {
    let s = new_store(64 * MIB);
    assert_eq!(set(&s, b"empty", b""), StoreResult::Stored);
    assert_eq!(value_of(&s, b"empty"), Some(Vec::new()));
    assert_eq!(s.get(b"empty", None, |v| v.value_len()), Ok(0));

    let binary: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    assert_eq!(set(&s, b"bin", &binary), StoreResult::Stored);
    assert_eq!(value_of(&s, b"bin"), Some(binary));

    let crlf = b"line\r\nEND\r\n\0\0\r\n".to_vec();
    assert_eq!(
        s.store(Mode::Set, b"crlf", 3, 0, &crlf).result,
        StoreResult::Stored
    );
    assert_eq!(get(&s, b"crlf").map(|g| (g.0, g.1)), Some((crlf, 3)));
}

#[test]
fn keys_of_1_and_250_bytes() {
    let s = new_store(64 * MIB);
    let short = b"k".to_vec();
    let long = vec![b'x'; 250];
    let mut long2 = long.clone();
    long2[249] = b'y';
    assert_eq!(set(&s, &short, b"one"), StoreResult::Stored);
    assert_eq!(set(&s, &long, b"two-fifty"), StoreResult::Stored);
    assert_eq!(
        s.store(Mode::Set, &long2, 9, 0, &[7u8; 1000]).result,
        StoreResult::Stored
    );
    assert_eq!(value_of(&s, &short), Some(b"one".to_vec()));
    assert_eq!(value_of(&s, &long), Some(b"two-fifty".to_vec()));
    assert_eq!(
        get(&s, &long2).map(|g| (g.0, g.1)),
        Some((vec![7u8; 1000], 9))
    );
    assert_eq!(s.get(&long, None, |v| v.key.to_vec()), Ok(long.clone()));
    assert_eq!(value_of(&s, &long[..249]), None, "a prefix is another key");
    assert_eq!(s.delete(&long).map(|_| ()), Ok(()));
    assert_eq!(value_of(&s, &long), None);
    assert_eq!(value_of(&s, &long2), Some(vec![7u8; 1000]));
}

/// Fills `p` through `spare`/`filled` in pieces of `step` bytes, as a
/// connection reading from the network does.
fn fill_in_pieces(s: &Store, p: &mut super::Pending, value: &[u8], step: usize) {
    let mut at = 0;
    while !p.is_complete() {
        let spare = s.spare(p);
        let n = spare.len().min(step).min(value.len() - at);
        spare[..n].copy_from_slice(&value[at..at + n]);
        s.filled(p, n);
        at += n;
    }
    assert_eq!(at, value.len());
    assert!(s.spare(p).is_empty());
}

#[test]
fn values_filled_in_place_single_and_chained() {
    let s = new_store(64 * MIB);
    for (i, len) in [0usize, 1, 100, 20_000, CHUNK_MAX, 600_000, MIB - 300]
        .into_iter()
        .enumerate()
    {
        let key = format!("big{i}");
        let value = pattern(len, i as u8);
        let mut p = s
            .begin(Mode::Set, key.as_bytes(), 7, 0, len)
            .expect("memory for the item");
        assert_eq!(s.pending_key(&p), key.as_bytes());
        assert_eq!(p.is_complete(), len == 0);
        // Not visible before it is committed.
        assert_eq!(value_of(&s, key.as_bytes()), None);
        fill_in_pieces(&s, &mut p, &value, 4093);
        assert_eq!(s.commit(Mode::Set, p).result, StoreResult::Stored);
        assert_eq!(
            get(&s, key.as_bytes()).map(|g| (g.0, g.1)),
            Some((value, 7))
        );
    }
}

#[test]
fn values_filled_in_place_obey_the_mode_and_free_what_is_not_linked() {
    let s = new_store(64 * MIB);
    let value = pattern(700_000, 3);
    let begin = |mode| s.begin(mode, b"k", 0, 0, value.len()).expect("memory");
    // add of a missing key, then add and cas mismatch on the present one
    let mut p = begin(Mode::Add);
    assert_eq!(s.fill(&mut p, &value), value.len());
    assert_eq!(s.commit(Mode::Add, p).result, StoreResult::Stored);
    let used = s.class_stats().iter().map(|c| c.used).sum::<usize>();
    for (mode, want) in [
        (Mode::Add, StoreResult::NotStored),
        (Mode::Cas(cas_of(&s, b"k") + 1), StoreResult::Exists),
    ] {
        let mut p = begin(mode);
        s.fill(&mut p, &value);
        assert_eq!(s.commit(mode, p).result, want);
        assert_eq!(s.class_stats().iter().map(|c| c.used).sum::<usize>(), used);
    }
    // A client that goes away mid-value: the chunks come back.
    let mut p = begin(Mode::Set);
    s.fill(&mut p, &value[..1000]);
    assert!(!p.is_complete());
    s.abandon(p);
    assert_eq!(s.class_stats().iter().map(|c| c.used).sum::<usize>(), used);
    assert_eq!(value_of(&s, b"k"), Some(value.clone()));
    assert!(s.delete(b"k").is_ok());
    assert_slabs_empty(&s);
}

#[test]
fn begin_without_memory_answers_as_store_does() {
    let s = Store::new(&StoreConfig {
        evict: false,
        ..config(2 * MIB)
    });
    assert_eq!(set(&s, b"old", b"v"), StoreResult::Stored);
    let mut held = Vec::new();
    let failure = loop {
        match s.begin(Mode::Set, b"old", 0, 0, 400_000) {
            Ok(p) => held.push(p),
            Err(o) => break o,
        }
        assert!(held.len() < 100, "-m 2 never runs out");
    };
    assert_eq!(failure.result, StoreResult::NoMemory);
    // memcached drops the old value of a set it cannot store
    assert_eq!(value_of(&s, b"old"), None);
    for p in held {
        s.abandon(p);
    }
}

#[test]
fn add_and_replace() {
    let s = new_store(64 * MIB);
    assert_eq!(
        s.store(Mode::Replace, b"k", 0, 0, b"r").result,
        StoreResult::NotStored
    );
    assert_eq!(value_of(&s, b"k"), None);
    assert_eq!(
        s.store(Mode::Add, b"k", 1, 0, b"a").result,
        StoreResult::Stored
    );
    assert_eq!(
        s.store(Mode::Add, b"k", 2, 0, b"b").result,
        StoreResult::NotStored
    );
    assert_eq!(get(&s, b"k").map(|g| (g.0, g.1)), Some((b"a".to_vec(), 1)));
    assert_eq!(
        s.store(Mode::Replace, b"k", 3, 0, b"c").result,
        StoreResult::Stored
    );
    assert_eq!(get(&s, b"k").map(|g| (g.0, g.1)), Some((b"c".to_vec(), 3)));
    // An expired item counts as absent for add and replace.
    let exp = s.clock.realtime(5);
    assert_eq!(set_exp(&s, b"e", b"x", exp), StoreResult::Stored);
    s.clock.advance(5);
    assert_eq!(
        s.store(Mode::Replace, b"e", 0, 0, b"y").result,
        StoreResult::NotStored
    );
    assert_eq!(
        s.store(Mode::Add, b"e", 0, 0, b"z").result,
        StoreResult::Stored
    );
    assert_eq!(value_of(&s, b"e"), Some(b"z".to_vec()));
    assert_eq!(s.totals().curr_items, 2);
}

#[test]
fn cas_semantics() {
    let s = new_store(64 * MIB);
    assert_eq!(
        s.store(Mode::Cas(1), b"k", 0, 0, b"v").result,
        StoreResult::NotFound
    );
    assert_eq!(set(&s, b"k", b"v1"), StoreResult::Stored);
    let c1 = cas_of(&s, b"k");
    assert_eq!(
        s.store(Mode::Cas(c1 + 1), b"k", 0, 0, b"bad").result,
        StoreResult::Exists
    );
    assert_eq!(
        s.store(Mode::Cas(0), b"k", 0, 0, b"bad").result,
        StoreResult::Exists
    );
    assert_eq!(value_of(&s, b"k"), Some(b"v1".to_vec()));
    assert_eq!(
        s.store(Mode::Cas(c1), b"k", 5, 0, b"v2").result,
        StoreResult::Stored
    );
    let (v, f, c2) = get(&s, b"k").expect("present");
    assert_eq!((v, f), (b"v2".to_vec(), 5));
    assert!(c2 > c1);
    // The old cas is stale now.
    assert_eq!(
        s.store(Mode::Cas(c1), b"k", 0, 0, b"v3").result,
        StoreResult::Exists
    );
    assert_eq!(s.delete(b"k").map(|_| ()), Ok(()));
    assert_eq!(
        s.store(Mode::Cas(c2), b"k", 0, 0, b"v4").result,
        StoreResult::NotFound
    );
}

#[test]
fn cas_values_are_unique_and_increase() {
    let s = new_store(64 * MIB);
    let mut last = 0;
    let mut seen = std::collections::HashSet::new();
    let mut check = |cas: u64| {
        assert!(cas > last, "cas {cas} after {last}");
        assert!(seen.insert(cas));
        last = cas;
    };
    for i in 0..200 {
        let key = format!("k{}", i % 50);
        assert_eq!(set(&s, key.as_bytes(), b"1"), StoreResult::Stored);
        check(cas_of(&s, key.as_bytes()));
    }
    assert_eq!(
        s.store(Mode::Append, b"k1", 0, 0, b"0").result,
        StoreResult::Stored
    );
    check(cas_of(&s, b"k1"));
    assert_eq!(
        s.store(Mode::Prepend, b"k1", 0, 0, b"0").result,
        StoreResult::Stored
    );
    check(cas_of(&s, b"k1"));
    assert_eq!(s.delta(b"k1", true, 1).result, Delta::Value(11)); // "010" → "11 " in place
    check(cas_of(&s, b"k1"));
    assert_eq!(s.delta(b"k2", true, 99).result, Delta::Value(100)); // grows
    check(cas_of(&s, b"k2"));
    let c = cas_of(&s, b"k3");
    assert_eq!(
        s.store(Mode::Cas(c), b"k3", 0, 0, b"x").result,
        StoreResult::Stored
    );
    check(cas_of(&s, b"k3"));
    // A failed store does not change an item's cas.
    let c = cas_of(&s, b"k4");
    assert_eq!(
        s.store(Mode::Add, b"k4", 0, 0, b"x").result,
        StoreResult::NotStored
    );
    assert_eq!(cas_of(&s, b"k4"), c);
}

#[test]
fn without_cas_gets_report_zero() {
    let s = Store::new(&StoreConfig {
        use_cas: false,
        ..config(64 * MIB)
    });
    assert!(!s.use_cas());
    assert_eq!(
        s.store(Mode::Set, b"k", 7, 0, b"v").result,
        StoreResult::Stored
    );
    assert_eq!(get(&s, b"k"), Some((b"v".to_vec(), 7, 0)));
    assert_eq!(
        s.store(Mode::Append, b"k", 0, 0, b"w").result,
        StoreResult::Stored
    );
    assert_eq!(get(&s, b"k"), Some((b"vw".to_vec(), 7, 0)));
    // memcached -C: a cas command never matches (its cas_in 0 means "none").
    assert_eq!(
        s.store(Mode::Cas(0), b"k", 0, 0, b"x").result,
        StoreResult::Exists
    );
    assert_eq!(
        s.store(Mode::Cas(1), b"k", 0, 0, b"x").result,
        StoreResult::Exists
    );
    assert_eq!(
        s.store(Mode::Cas(1), b"nope", 0, 0, b"x").result,
        StoreResult::NotFound
    );
    assert_eq!(s.delta(b"n", true, 1).result, Delta::NotFound);
    assert_eq!(set(&s, b"n", b"41"), StoreResult::Stored);
    assert_eq!(s.delta(b"n", true, 1).result, Delta::Value(42));
    assert_eq!(get(&s, b"n"), Some((b"42".to_vec(), 0, 0)));
}

#[test]
fn append_and_prepend_keep_flags_and_exptime() {
    for use_cas in [true, false] {
        let s = Store::new(&StoreConfig {
            use_cas,
            ..config(64 * MIB)
        });
        let exp = s.clock.realtime(10);
        assert_eq!(
            s.store(Mode::Set, b"k", 77, exp, b"mid").result,
            StoreResult::Stored
        );
        // The flags and exptime given with append/prepend are ignored.
        assert_eq!(
            s.store(Mode::Append, b"k", 1, 0, b"-end").result,
            StoreResult::Stored
        );
        assert_eq!(
            s.store(Mode::Prepend, b"k", 2, 0, b"start-").result,
            StoreResult::Stored
        );
        assert_eq!(
            get(&s, b"k").map(|g| (g.0, g.1)),
            Some((b"start-mid-end".to_vec(), 77))
        );
        s.clock.advance(9);
        assert!(value_of(&s, b"k").is_some());
        s.clock.advance(1);
        assert_eq!(s.get(b"k", None, |_| ()), Err(Lookup::Expired));

        // Without an expiry, the result has none either.
        assert_eq!(
            s.store(Mode::Set, b"p", 0, 0, b"b").result,
            StoreResult::Stored
        );
        assert_eq!(
            s.store(Mode::Prepend, b"p", 0, 0, b"a").result,
            StoreResult::Stored
        );
        s.clock.advance(1_000_000);
        assert_eq!(value_of(&s, b"p"), Some(b"ab".to_vec()));
        // Appending an empty string still stores.
        assert_eq!(
            s.store(Mode::Append, b"p", 0, 0, b"").result,
            StoreResult::Stored
        );
        assert_eq!(value_of(&s, b"p"), Some(b"ab".to_vec()));
    }
}

#[test]
fn append_and_prepend_need_an_item() {
    let s = new_store(64 * MIB);
    assert_eq!(
        s.store(Mode::Append, b"k", 0, 0, b"x").result,
        StoreResult::NotStored
    );
    assert_eq!(
        s.store(Mode::Prepend, b"k", 0, 0, b"x").result,
        StoreResult::NotStored
    );
    assert_eq!(value_of(&s, b"k"), None);
    let exp = s.clock.realtime(1);
    assert_eq!(set_exp(&s, b"k", b"v", exp), StoreResult::Stored);
    s.clock.advance(1);
    assert_eq!(
        s.store(Mode::Append, b"k", 0, 0, b"x").result,
        StoreResult::NotStored
    );
    assert_eq!(s.totals().curr_items, 0);
}

#[test]
fn append_moves_an_item_across_classes() {
    let s = new_store(64 * MIB);
    let first = s.store(Mode::Set, b"grow", 3, 0, b"x").class;
    let mut expect = b"x".to_vec();
    for i in 0..40 {
        let piece = pattern(97 + i, i as u8);
        assert_eq!(
            s.store(Mode::Append, b"grow", 0, 0, &piece).result,
            StoreResult::Stored
        );
        expect.extend_from_slice(&piece);
    }
    let (v, flags, _) = get(&s, b"grow").expect("present");
    assert_eq!(v, expect);
    assert_eq!(flags, 3);
    assert!(s.get(b"grow", None, |v| v.class).expect("present") > first);
    // Only the newest copy holds a chunk.
    let used: usize = s.class_stats().iter().map(|c| c.used).sum();
    assert_eq!(used, 1);
}

// ----- 2. incr / decr -----

fn delta_value(s: &Store, key: &[u8], incr: bool, by: u64) -> Delta {
    s.delta(key, incr, by).result
}

#[test]
fn incr_wraps_at_2_64() {
    let s = new_store(64 * MIB);
    assert_eq!(set(&s, b"n", b"18446744073709551615"), StoreResult::Stored);
    assert_eq!(delta_value(&s, b"n", true, 1), Delta::Value(0));
    let mut expect = b"0".to_vec();
    expect.resize(20, b' ');
    assert_eq!(value_of(&s, b"n"), Some(expect));
    assert_eq!(set(&s, b"m", b"18446744073709551610"), StoreResult::Stored);
    assert_eq!(delta_value(&s, b"m", true, 10), Delta::Value(4));
    assert_eq!(delta_value(&s, b"m", true, u64::MAX), Delta::Value(3));
}

#[test]
fn decr_floors_at_zero() {
    let s = new_store(64 * MIB);
    assert_eq!(set(&s, b"n", b"5"), StoreResult::Stored);
    assert_eq!(delta_value(&s, b"n", false, 3), Delta::Value(2));
    assert_eq!(delta_value(&s, b"n", false, 3), Delta::Value(0));
    assert_eq!(delta_value(&s, b"n", false, u64::MAX), Delta::Value(0));
    assert_eq!(value_of(&s, b"n"), Some(b"0".to_vec()));
    assert_eq!(delta_value(&s, b"n", false, 0), Delta::Value(0));
    assert_eq!(delta_value(&s, b"n", true, 0), Delta::Value(0));
}

#[test]
fn decr_shrinks_in_place_with_space_padding() {
    let s = new_store(64 * MIB);
    let exp = s.clock.realtime(100);
    assert_eq!(
        s.store(Mode::Set, b"n", 9, exp, b"100").result,
        StoreResult::Stored
    );
    let cas = cas_of(&s, b"n");
    assert_eq!(delta_value(&s, b"n", false, 1), Delta::Value(99));
    let (v, flags, cas2) = get(&s, b"n").expect("present");
    assert_eq!(v, b"99 ");
    assert_eq!(flags, 9);
    assert!(cas2 > cas, "in-place incr/decr gives a new cas");
    assert_eq!(delta_value(&s, b"n", false, 90), Delta::Value(9));
    assert_eq!(value_of(&s, b"n"), Some(b"9  ".to_vec()));
    // Growing past the value's length makes a new item.
    assert_eq!(delta_value(&s, b"n", true, 991), Delta::Value(1000));
    assert_eq!(value_of(&s, b"n"), Some(b"1000".to_vec()));
    // The expiry survives both paths.
    s.clock.advance(100);
    assert_eq!(s.get(b"n", None, |_| ()), Err(Lookup::Expired));
}

#[test]
fn incr_that_grows_makes_a_new_item() {
    let s = new_store(64 * MIB);
    let exp = s.clock.realtime(50);
    assert_eq!(
        s.store(Mode::Set, b"n", 4, exp, b"99").result,
        StoreResult::Stored
    );
    let cas = cas_of(&s, b"n");
    assert_eq!(delta_value(&s, b"n", true, 1), Delta::Value(100));
    let (v, flags, cas2) = get(&s, b"n").expect("present");
    assert_eq!(v, b"100");
    assert_eq!(flags, 4);
    assert!(cas2 > cas);
    assert_eq!(s.totals().curr_items, 1);
    let used: usize = s.class_stats().iter().map(|c| c.used).sum();
    assert_eq!(used, 1, "the old item was freed");
    assert_eq!(set(&s, b"big", b"9"), StoreResult::Stored);
    assert_eq!(
        delta_value(&s, b"big", true, u64::MAX - 9),
        Delta::Value(u64::MAX)
    );
    assert_eq!(
        value_of(&s, b"big"),
        Some(u64::MAX.to_string().into_bytes())
    );
    s.clock.advance(50);
    assert_eq!(
        s.get(b"n", None, |_| ()),
        Err(Lookup::Expired),
        "exptime kept"
    );
}

#[test]
fn incr_of_what_is_not_a_number() {
    let s = new_store(64 * MIB);
    assert_eq!(delta_value(&s, b"missing", true, 1), Delta::NotFound);
    let cases: [(&[u8], Option<u64>); 16] = [
        (b"", None),
        (b"abc", None),
        (b"12abc", None),
        (b"1.5", None),
        (b"0x10", None),
        (b"-5", None),
        (b"-1", None),
        (b" ", None),
        (b"123456789012345678901", None), // 21 digits
        (b"99999999999999999999999999", None),
        (b"18446744073709551616", None),
        (b"  42", Some(43)),
        (b"\t7", Some(8)),
        (b"+5", Some(6)),
        (b"-0", Some(1)),
        (b"00000000000000000000000041", Some(42)), // > 20 digits but in range
    ];
    for (i, (value, expect)) in cases.iter().enumerate() {
        let key = format!("v{i}");
        assert_eq!(set(&s, key.as_bytes(), value), StoreResult::Stored);
        let got = delta_value(&s, key.as_bytes(), true, 1);
        match expect {
            None => {
                assert_eq!(
                    got,
                    Delta::NonNumeric,
                    "value {:?}",
                    String::from_utf8_lossy(value)
                );
                assert_eq!(
                    value_of(&s, key.as_bytes()).as_deref(),
                    Some(*value),
                    "unchanged"
                );
            }
            Some(n) => assert_eq!(
                got,
                Delta::Value(*n),
                "value {:?}",
                String::from_utf8_lossy(value)
            ),
        }
    }
    // Leading spaces: the number is rewritten from the start, padded after.
    assert_eq!(value_of(&s, b"v11"), Some(b"43  ".to_vec()));
    // A trailing space ends the number.
    assert_eq!(set(&s, b"t", b"12 junk"), StoreResult::Stored);
    assert_eq!(delta_value(&s, b"t", false, 2), Delta::Value(10));
    assert_eq!(value_of(&s, b"t"), Some(b"10     ".to_vec()));
}

#[test]
fn parse_c_u64_cases() {
    let cases: [(&[u8], Option<u64>); 26] = [
        (b"0", Some(0)),
        (b"1", Some(1)),
        (b"42", Some(42)),
        (b"18446744073709551615", Some(u64::MAX)),
        (b"18446744073709551616", None),
        (b"99999999999999999999", None),
        (
            b"000000000000000000000000018446744073709551615",
            Some(u64::MAX),
        ),
        (b"  7", Some(7)),
        (b"\t\n\x0b\x0c\r 7", Some(7)),
        (b"7 ", Some(7)),
        (b"7\r\n", Some(7)),
        (b"7 8", Some(7)),
        (b"7x", None),
        (b"x7", None),
        (b"", None),
        (b"   ", None),
        (b"+", None),
        (b"-", None),
        (b"+9", Some(9)),
        (b"-0", Some(0)),
        (b"-5", None),
        (b"-9223372036854775808", None),
        // strtoull negates; what does not look negative as an i64 passes.
        (b"-18446744073709551615", Some(1)),
        (b"-9223372036854775809", Some(9223372036854775807)),
        (b"9223372036854775808", Some(9223372036854775808)),
        (b"--1", None),
    ];
    for (s, expect) in cases {
        assert_eq!(parse_c_u64(s), expect, "{:?}", String::from_utf8_lossy(s));
    }
}

// ----- 3. expiry, touch, gat -----

#[test]
fn relative_expiry() {
    let s = new_store(64 * MIB);
    let exp = s.clock.realtime(10);
    assert_eq!(exp, s.clock.now() + 10);
    assert_eq!(set_exp(&s, b"k", b"v", exp), StoreResult::Stored);
    assert_eq!(set(&s, b"forever", b"v"), StoreResult::Stored);
    s.clock.advance(9);
    assert_eq!(value_of(&s, b"k"), Some(b"v".to_vec()));
    s.clock.advance(1);
    assert_eq!(s.get(b"k", None, |_| ()), Err(Lookup::Expired));
    assert_eq!(
        s.get(b"k", None, |_| ()),
        Err(Lookup::Miss),
        "unlinked when found dead"
    );
    assert_eq!(s.delete(b"k"), Err(Lookup::Miss));
    s.clock.advance(3600 * 24 * 365);
    assert_eq!(value_of(&s, b"forever"), Some(b"v".to_vec()));
    assert_eq!(s.totals().curr_items, 1);
}

#[test]
fn exptime_one_is_already_expired() {
    let s = new_store(64 * MIB);
    assert_eq!(s.clock.realtime(-1), 1);
    assert_eq!(set_exp(&s, b"k", b"v", 1), StoreResult::Stored);
    assert_eq!(s.get(b"k", None, |_| ()), Err(Lookup::Expired));
    assert_eq!(set(&s, b"k2", b"v"), StoreResult::Stored);
    assert_eq!(
        set_exp(&s, b"k2", b"w", 1),
        StoreResult::Stored,
        "set with a past time removes"
    );
    assert_eq!(value_of(&s, b"k2"), None);
    assert_eq!(s.delete(b"k2"), Err(Lookup::Miss));
    assert_eq!(delta_value(&s, b"k2", true, 1), Delta::NotFound);
}

#[test]
fn touch_changes_and_clears_expiry() {
    let s = new_store(64 * MIB);
    assert_eq!(s.touch(b"nope", 0), Err(Lookup::Miss));
    let exp = s.clock.realtime(5);
    assert_eq!(
        s.store(Mode::Set, b"k", 3, exp, b"value").result,
        StoreResult::Stored
    );
    let cas = cas_of(&s, b"k");
    let later = s.clock.realtime(20);
    assert!(s.touch(b"k", later).is_ok());
    s.clock.advance(10);
    assert_eq!(
        get(&s, b"k"),
        Some((b"value".to_vec(), 3, cas)),
        "touch keeps value, flags and cas"
    );
    assert!(s.touch(b"k", 0).is_ok(), "0 clears the expiry");
    s.clock.advance(1_000_000);
    assert_eq!(value_of(&s, b"k"), Some(b"value".to_vec()));
    let soon = s.clock.realtime(1);
    assert!(s.touch(b"k", soon).is_ok());
    s.clock.advance(1);
    assert_eq!(s.touch(b"k", 0), Err(Lookup::Expired));
}

/// Runs `f` on another thread; `None` if it has not returned in `secs`
/// (the thread is left behind: this turns a livelock into a failure).
fn within<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

/// Touch and gat with an expiry on an item laid out without one re-lay the
/// item out; value, flags and cas stay.
fn check_touch_relayout(use_cas: bool) {
    let s = Arc::new(Store::new(&StoreConfig {
        use_cas,
        ..config(64 * MIB)
    }));
    let value = pattern(300, 1);
    assert_eq!(
        s.store(Mode::Set, b"k", 0xDEAD, 0, &value).result,
        StoreResult::Stored
    );
    assert_eq!(
        s.store(Mode::Set, b"g", 0, 0, b"gat").result,
        StoreResult::Stored
    );
    assert_eq!(set(&s, b"other", b"o"), StoreResult::Stored);
    let cas = get(&s, b"k").expect("present").2;
    // Touching to "never" needs no change at all.
    assert!(s.touch(b"k", 0).is_ok());
    let exp = s.clock.realtime(30);
    let touched = {
        let s = s.clone();
        within(10, move || s.touch(b"k", exp).is_ok())
    };
    assert_eq!(
        touched,
        Some(true),
        "touch adding an expiry returns TOUCHED (None: it never returned)"
    );
    let gat = {
        let s = s.clone();
        within(10, move || s.get(b"g", Some(exp), |v| v.value_vec()))
    };
    assert_eq!(
        gat,
        Some(Ok(b"gat".to_vec())),
        "gat adding an expiry (None: it never returned)"
    );
    assert_eq!(
        get(&s, b"k"),
        Some((value.clone(), 0xDEAD, cas)),
        "re-laid out item keeps all"
    );
    assert_eq!(s.totals().curr_items, 3);
    let used: usize = s.class_stats().iter().map(|c| c.used).sum();
    assert_eq!(used, 3, "the old layouts were freed");
    s.clock.advance(29);
    assert!(value_of(&s, b"k").is_some());
    assert!(value_of(&s, b"g").is_some());
    s.clock.advance(1);
    assert_eq!(s.get(b"k", None, |_| ()), Err(Lookup::Expired));
    assert_eq!(s.get(b"g", None, |_| ()), Err(Lookup::Expired));
    assert_eq!(value_of(&s, b"other"), Some(b"o".to_vec()));
}

#[test]
fn touch_adds_expiry_to_an_item_stored_without_one() {
    check_touch_relayout(true);
}

#[test]
fn touch_adds_expiry_to_an_item_stored_without_one_without_cas() {
    check_touch_relayout(false);
}

/// memcached's touch/gat with a past time (exptime 1) answers TOUCHED / the
/// value, then the item is gone. The store must answer the same whether or
/// not the item was laid out with an expiry field.
#[test]
fn touch_to_the_past_answers_the_same_for_both_layouts() {
    let s = new_store(64 * MIB);
    let exp = s.clock.realtime(100);
    assert_eq!(set_exp(&s, b"with", b"v", exp), StoreResult::Stored);
    assert_eq!(set(&s, b"without", b"v"), StoreResult::Stored);
    let with = s.touch(b"with", 1).is_ok();
    let without = s.touch(b"without", 1).is_ok();
    assert_eq!(value_of(&s, b"with"), None);
    assert_eq!(value_of(&s, b"without"), None);
    assert!(with, "touch of an item with an expiry answers TOUCHED");
    assert_eq!(
        without, with,
        "touch of an item stored without expiry must answer the same"
    );

    assert_eq!(set_exp(&s, b"with", b"v", exp), StoreResult::Stored);
    assert_eq!(set(&s, b"without", b"v"), StoreResult::Stored);
    let with = s.get(b"with", Some(1), |v| v.value_vec());
    let without = s.get(b"without", Some(1), |v| v.value_vec());
    assert_eq!(with, Ok(b"v".to_vec()));
    assert_eq!(without, with, "gat must answer the same for both layouts");
}

#[test]
fn gat_returns_the_value_and_sets_the_expiry() {
    let s = new_store(64 * MIB);
    assert_eq!(s.get(b"none", Some(0), |_| ()), Err(Lookup::Miss));
    let exp = s.clock.realtime(5);
    assert_eq!(
        s.store(Mode::Set, b"a", 1, exp, b"alpha").result,
        StoreResult::Stored
    );
    assert_eq!(
        s.store(Mode::Set, b"b", 2, 0, b"beta").result,
        StoreResult::Stored
    );
    let later = s.clock.realtime(60);
    let got = s.get(b"a", Some(later), |v| (v.value_vec(), v.flags));
    assert_eq!(got, Ok((b"alpha".to_vec(), 1)));
    let got = s.get(b"b", Some(later), |v| (v.value_vec(), v.flags));
    assert_eq!(got, Ok((b"beta".to_vec(), 2)));
    s.clock.advance(59);
    assert!(value_of(&s, b"a").is_some());
    assert!(value_of(&s, b"b").is_some());
    // gat 0 makes them permanent.
    assert!(s.get(b"a", Some(0), |_| ()).is_ok());
    s.clock.advance(1);
    assert!(value_of(&s, b"a").is_some());
    assert_eq!(s.get(b"b", None, |_| ()), Err(Lookup::Expired));
}

// ----- 4. flush -----

#[test]
fn flush_now_hides_earlier_items_only() {
    for use_cas in [true, false] {
        let s = Store::new(&StoreConfig {
            use_cas,
            ..config(64 * MIB)
        });
        for i in 0..100 {
            assert_eq!(
                set(&s, format!("old{i}").as_bytes(), b"v"),
                StoreResult::Stored
            );
        }
        s.flush(0);
        for i in 0..100 {
            assert_eq!(value_of(&s, format!("old{i}").as_bytes()), None);
        }
        assert_eq!(s.get(b"old0", None, |_| ()), Err(Lookup::Miss));
        assert_eq!(s.get(b"old1", None, |_| ()).err(), Some(Lookup::Miss));
        assert_eq!(set(&s, b"new", b"n"), StoreResult::Stored);
        assert_eq!(value_of(&s, b"new"), Some(b"n".to_vec()));
        assert_eq!(
            s.store(Mode::Add, b"old5", 0, 0, b"again").result,
            StoreResult::Stored
        );
        assert_eq!(value_of(&s, b"old5"), Some(b"again".to_vec()));
        assert_eq!(
            s.store(Mode::Replace, b"old6", 0, 0, b"x").result,
            StoreResult::NotStored
        );
        assert_eq!(
            s.store(Mode::Append, b"old7", 0, 0, b"x").result,
            StoreResult::NotStored
        );
        assert_eq!(delta_value(&s, b"old8", true, 1), Delta::NotFound);
        // A second flush hides the later items too.
        s.flush(0);
        assert_eq!(value_of(&s, b"new"), None);
        assert_eq!(value_of(&s, b"old5"), None);
        assert_eq!(set(&s, b"after", b"a"), StoreResult::Stored);
        assert_eq!(value_of(&s, b"after"), Some(b"a".to_vec()));
    }
}

/// Without CAS the flush point is compared on 29 bits with wrap-around;
/// long before the sequence wraps, the clock tick reclaims what the flush
/// hid and forgets the flush, so later items never read as flushed.
#[test]
fn flush_without_cas_survives_the_sequence_wrapping() {
    let s = Store::new(&StoreConfig {
        use_cas: false,
        ..config(4 * MIB)
    });
    assert_eq!(
        s.store(Mode::Set, b"old", 0, 0, b"1").result,
        StoreResult::Stored
    );
    s.flush(0);
    s.advance_sequence((1 << 31) + 10);
    s.tick();
    assert_eq!(s.totals().curr_items, 0, "the flushed item was reclaimed");
    assert_eq!(
        s.store(Mode::Set, b"new", 0, 0, b"2").result,
        StoreResult::Stored
    );
    assert_eq!(value_of(&s, b"new"), Some(b"2".to_vec()));
    assert_eq!(value_of(&s, b"old"), None);
}

#[test]
fn delayed_flush_waits_for_its_time_and_a_tick() {
    for use_cas in [true, false] {
        let s = Store::new(&StoreConfig {
            use_cas,
            ..config(64 * MIB)
        });
        assert_eq!(set(&s, b"a", b"1"), StoreResult::Stored);
        s.flush(s.clock.now() + 10);
        assert_eq!(set(&s, b"b", b"2"), StoreResult::Stored);
        s.tick();
        assert_eq!(value_of(&s, b"a"), Some(b"1".to_vec()));
        s.clock.advance(5);
        s.tick();
        assert_eq!(value_of(&s, b"a"), Some(b"1".to_vec()));
        assert_eq!(value_of(&s, b"b"), Some(b"2".to_vec()));
        s.clock.advance(5);
        s.tick();
        assert_eq!(value_of(&s, b"a"), None);
        assert_eq!(value_of(&s, b"b"), None);
        assert_eq!(set(&s, b"c", b"3"), StoreResult::Stored);
        s.clock.advance(100);
        s.tick();
        assert_eq!(
            value_of(&s, b"c"),
            Some(b"3".to_vec()),
            "a delayed flush applies once"
        );
        // A flush "now" cancels a pending one.
        s.flush(s.clock.now() + 5);
        s.flush(0);
        assert_eq!(value_of(&s, b"c"), None);
        assert_eq!(set(&s, b"d", b"4"), StoreResult::Stored);
        s.clock.advance(10);
        s.tick();
        assert_eq!(value_of(&s, b"d"), Some(b"4".to_vec()));
    }
}

// ----- 5. values larger than a chunk -----

fn large_config(item_size_max: usize, max_bytes: usize) -> StoreConfig {
    StoreConfig {
        item_size_max,
        ..config(max_bytes)
    }
}

/// Sets, reads back byte-exact, and checks the chunks the value takes.
fn round_trip(s: &Store, key: &[u8], len: usize, seed: u8) {
    let value = pattern(len, seed);
    let out = s.store(Mode::Set, key, 0, 0, &value);
    assert_eq!(out.result, StoreResult::Stored, "len {len}");
    let (got, flags, _) = get(s, key).expect("present");
    assert_eq!(got.len(), len, "length of a {len}-byte value");
    assert!(got == value, "contents of a {len}-byte value");
    assert_eq!(flags, 0);
    assert_eq!(s.get(key, None, |v| v.value_len()), Ok(len));
}

#[test]
fn large_values_round_trip() {
    let s = Store::new(&large_config(MIB, 64 * MIB));
    let largest = s.classes().largest();
    let sizes = [
        CHUNK_MAX - 100,
        600_000,
        MIB - 100,
        100_000,
        70_000,
        65_535,
        65_536,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let key = format!("large{i}");
        assert!(!s.too_large(key.len(), 0, len), "{len} fits -I 1m");
        round_trip(&s, key.as_bytes(), len, i as u8);
    }
    assert!(s.too_large(1, 0, MIB));
    // Everything is still there and intact afterwards.
    for (i, &len) in sizes.iter().enumerate() {
        let key = format!("large{i}");
        assert_eq!(value_of(&s, key.as_bytes()), Some(pattern(len, i as u8)));
    }
    assert_eq!(s.get(b"large0", None, |v| v.class), Ok(largest));
    assert_eq!(s.get(b"large1", None, |v| v.class), Ok(largest));
}

#[test]
fn three_megabyte_value() {
    let s = Store::new(&large_config(4 * MIB, 32 * MIB));
    let len = 3_000_000;
    assert!(!s.too_large(3, 0, len));
    round_trip(&s, b"big", len, 9);
    let exp = s.clock.realtime(100);
    let value = pattern(len, 10);
    assert_eq!(
        s.store(Mode::Set, b"big2", u32::MAX, exp, &value).result,
        StoreResult::Stored
    );
    assert_eq!(
        get(&s, b"big2").map(|g| (g.0 == value, g.1)),
        Some((true, u32::MAX))
    );
    assert_eq!(value_of(&s, b"big"), Some(pattern(len, 9)));
    assert_eq!(s.totals().curr_items, 2);
    assert!(s.totals().malloced <= 32 * MIB as u64);
}

/// Value lengths at which the item exactly fills, or just overflows, its
/// head chunk, one full continuation chunk, or a continuation class.
#[test]
fn chained_value_boundaries_round_trip() {
    let key = b"boundary";
    // Single chunk: 12-byte header + 4-byte long length.
    let single = CHUNK_MAX - 16 - key.len();
    // Chained: + 4-byte next field; continuation chunks carry 16 bytes of header.
    let head = CHUNK_MAX - 20 - key.len();
    let full_cont = CHUNK_MAX - CONT_HEADER;
    let probe = new_store(64 * MIB);
    let classes = probe.classes().clone();
    let mut lens = Vec::new();
    for d in 0..4 {
        lens.push(single - 1 + d);
        lens.push(head + full_cont - 2 + d);
    }
    for class in [0, 1, 10, 20, 30, 37] {
        let tail = classes.get(class).size - CONT_HEADER;
        for d in 0..6 {
            lens.push(head + tail - 1 + d);
        }
    }
    for len in lens {
        let s = Store::new(&large_config(4 * MIB, 64 * MIB));
        round_trip(&s, key, len, (len % 200) as u8);
    }
}

#[test]
fn chained_values_with_flags_and_expiry() {
    let s = Store::new(&large_config(4 * MIB, 64 * MIB));
    let exp = s.clock.realtime(10);
    for (i, len) in [524_270usize, 524_300, 600_000, 1_048_532, 1_048_600]
        .into_iter()
        .enumerate()
    {
        let key = format!("fe{i}");
        let value = pattern(len, i as u8);
        assert_eq!(
            s.store(Mode::Set, key.as_bytes(), 0xABCD, exp, &value)
                .result,
            StoreResult::Stored
        );
        let got = get(&s, key.as_bytes()).expect("present");
        assert!(got.0 == value, "value of {len} bytes");
        assert_eq!(got.1, 0xABCD);
    }
    s.clock.advance(10);
    assert_eq!(s.get(b"fe2", None, |_| ()), Err(Lookup::Expired));
}

#[test]
fn deleting_chained_values_frees_every_chunk() {
    let s = Store::new(&large_config(4 * MIB, 64 * MIB));
    let lens = [CHUNK_MAX - 100, 600_000, MIB - 100, 3_000_000, 1000];
    for (i, &len) in lens.iter().enumerate() {
        round_trip(&s, format!("d{i}").as_bytes(), len, i as u8);
    }
    assert!(s.class_stats().iter().map(|c| c.used).sum::<usize>() > lens.len());
    for i in 0..lens.len() {
        assert!(s.delete(format!("d{i}").as_bytes()).is_ok());
    }
    assert_slabs_empty(&s);
}

#[test]
fn overwriting_a_chained_value_frees_the_old_chain() {
    let s = Store::new(&large_config(4 * MIB, 64 * MIB));
    round_trip(&s, b"k", 3_000_000, 1);
    let used_once: usize = s.class_stats().iter().map(|c| c.used).sum();
    for seed in 2..6 {
        round_trip(&s, b"k", 3_000_000, seed);
        let used: usize = s.class_stats().iter().map(|c| c.used).sum();
        assert_eq!(
            used, used_once,
            "a rewrite takes as many chunks as the first write"
        );
    }
    round_trip(&s, b"k", 600_000, 7);
    assert_eq!(
        s.store(Mode::Append, b"k", 0, 0, &pattern(1000, 8)).result,
        StoreResult::Stored
    );
    let mut expect = pattern(600_000, 7);
    expect.extend_from_slice(&pattern(1000, 8));
    assert!(value_of(&s, b"k") == Some(expect));
    assert_eq!(set(&s, b"k", b"small"), StoreResult::Stored);
    let used: usize = s.class_stats().iter().map(|c| c.used).sum();
    assert_eq!(used, 1);
    assert!(s.delete(b"k").is_ok());
    assert_slabs_empty(&s);
}

/// An item that exactly fills a chunk of the largest class is a normal
/// (unchained) item and must be counted like one.
#[test]
fn item_filling_a_largest_chunk_is_counted() {
    let s = new_store(64 * MIB);
    let largest = s.classes().largest();
    let len = CHUNK_MAX - 16 - 1;
    round_trip(&s, b"x", len, 3);
    assert_eq!(
        class_stat(&s, largest).map(|c| (c.used, c.items)),
        Some((1, 1))
    );
    assert!(s.delete(b"x").is_ok());
    assert_slabs_empty(&s);
}

#[test]
fn incr_on_a_chained_value_is_non_numeric() {
    let s = new_store(64 * MIB);
    let mut v = vec![b'1'; 10];
    v.resize(600_000, b' ');
    assert_eq!(set(&s, b"n", &v), StoreResult::Stored);
    assert_eq!(delta_value(&s, b"n", true, 1), Delta::NonNumeric);
}

/// Continuation chunks must be reclaimable: a class holding only the tails
/// of chained values has to evict (through the heads) like any other.
#[test]
fn chained_values_are_evicted_when_memory_is_full() {
    let s = Store::new(&large_config(MIB, 8 * MIB));
    let mut stored = 0;
    for i in 0..60 {
        let out = s.store(
            Mode::Set,
            format!("big{i}").as_bytes(),
            0,
            0,
            &pattern(600_000, i as u8),
        );
        assert_eq!(out.result, StoreResult::Stored, "value {i} of 600000 bytes");
        stored += 1;
    }
    assert_eq!(stored, 60);
    assert!(s.totals().evictions > 0);
    assert_eq!(value_of(&s, b"big59"), Some(pattern(600_000, 59)));
    assert!(s.totals().malloced <= 9 * MIB as u64);
}

/// A page holding continuation chunks can be moved: their items are evicted.
#[test]
fn a_page_of_continuation_chunks_can_be_moved() {
    let s = Store::new(&large_config(MIB, 64 * MIB));
    for i in 0..30 {
        let out = s.store(
            Mode::Set,
            format!("big{i}").as_bytes(),
            0,
            0,
            &pattern(600_000, i as u8),
        );
        assert_eq!(out.result, StoreResult::Stored);
    }
    // The tails (75 KB) live in class 30, twelve to a page.
    let tails = s
        .class_stats()
        .into_iter()
        .find(|c| c.id != s.classes().largest())
        .expect("a class for the tails");
    assert_eq!(tails.used, 30);
    assert!(tails.pages >= 2);
    assert_eq!(s.move_page(tails.id, None), Ok(()));
    assert_eq!(pages_of(&s, tails.id), tails.pages - 1);
    let left = (0..30)
        .filter(|i| {
            value_of(&s, format!("big{i}").as_bytes())
                .is_some_and(|v| v == pattern(600_000, *i as u8))
        })
        .count();
    assert_eq!(
        left,
        30 - tails.perslab,
        "the items whose tails were in the page are gone"
    );
}

// ----- 6. memory limit and eviction -----

#[test]
fn eviction_keeps_the_newest_items_within_the_limit() {
    let s = new_store(2 * MIB);
    let class = s
        .store(Mode::Set, &small_key(0), 0, 0, &small_value(0))
        .class;
    let capacity = 2 * s.classes().get(class).perslab;
    let n = 100_000;
    for i in 1..n {
        let out = s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i));
        assert_eq!(out.result, StoreResult::Stored, "item {i}");
        assert_eq!(out.class, class);
        if i % 997 == 0 {
            let stats = s.class_stats();
            let pages: usize = stats.iter().map(|c| c.pages).sum();
            assert!(pages <= 2, "{pages} pages in use");
            assert!(s.totals().malloced <= 2 * MIB as u64);
        }
    }
    let t = s.totals();
    assert!(t.evictions > 0);
    assert_eq!(t.evictions as usize, n - capacity);
    assert_eq!(t.curr_items as usize, capacity);
    assert_eq!(t.malloced, 2 * MIB as u64);
    assert_eq!(t.evicted_unfetched, t.evictions, "nothing was read");
    for i in n - capacity..n {
        assert_eq!(
            value_of(&s, &small_key(i)),
            Some(small_value(i)),
            "recent item {i}"
        );
    }
    assert_eq!(value_of(&s, &small_key(0)), None);
}

/// Under the limit, each other class may still take its first page, and
/// then evicts within it.
#[test]
fn other_classes_take_one_page_beyond_the_limit() {
    let s = new_store(2 * MIB);
    let class = s
        .store(Mode::Set, &small_key(0), 0, 0, &small_value(0))
        .class;
    for i in 1..50_000 {
        assert_eq!(
            s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i))
                .result,
            StoreResult::Stored
        );
    }
    assert_eq!(pages_of(&s, class), 2);
    for i in 0..20_000 {
        let len = 100 + (i * 37) % 3000;
        assert_eq!(
            set(&s, format!("other{i}").as_bytes(), &pattern(len, 1)),
            StoreResult::Stored,
            "other{i}"
        );
    }
    let stats = s.class_stats();
    assert!(stats.len() > 10);
    assert!(
        stats
            .iter()
            .all(|c| c.pages == if c.id == class { 2 } else { 1 }),
        "{stats:?}"
    );
    assert!(
        stats
            .iter()
            .any(|c| c.id != class && c.counters.evicted > 0)
    );
    assert_eq!(s.totals().malloced as usize, (stats.len() + 1) * PAGE_SIZE);
}

/// CLOCK gives every read item a second chance, but when every item has been
/// read, the hand must still find a victim (after clearing the bits), however
/// many items the class holds: a full class never answers "out of memory"
/// while eviction is on.
#[test]
fn eviction_works_when_every_item_was_read() {
    let s = new_store(2 * MIB);
    let class = s
        .store(Mode::Set, &small_key(0), 0, 0, &small_value(0))
        .class;
    let capacity = 2 * s.classes().get(class).perslab;
    for i in 1..capacity {
        assert_eq!(
            s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i))
                .result,
            StoreResult::Stored
        );
    }
    for i in 0..capacity {
        assert!(value_of(&s, &small_key(i)).is_some());
    }
    for i in capacity..capacity + 100 {
        let out = s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i));
        assert_eq!(
            out.result,
            StoreResult::Stored,
            "item {i} with all {capacity} items active"
        );
    }
    let t = s.totals();
    assert_eq!(t.evictions, 100);
    assert_eq!(
        class_stat(&s, class).map(|c| c.counters.outofmemory),
        Some(0)
    );
}

/// CLOCK: items read since the hand last passed survive the first sweep;
/// never-read items after them are evicted in their place.
#[test]
fn clock_gives_read_items_a_second_chance() {
    let s = new_store(2 * MIB);
    let class = s
        .store(Mode::Set, &small_key(0), 0, 0, &small_value(0))
        .class;
    let capacity = 2 * s.classes().get(class).perslab;
    for i in 1..capacity {
        assert_eq!(
            s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i))
                .result,
            StoreResult::Stored
        );
    }
    assert_eq!(s.totals().evictions, 0);
    assert_eq!(s.totals().curr_items as usize, capacity);
    // Read the oldest items: plain FIFO would evict exactly these first.
    let read = 1000;
    for i in 0..read {
        assert!(value_of(&s, &small_key(i)).is_some());
    }
    let fresh = 2000;
    for i in capacity..capacity + fresh {
        assert_eq!(
            s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i))
                .result,
            StoreResult::Stored
        );
    }
    let t = s.totals();
    assert_eq!(t.evictions as usize, fresh);
    assert_eq!(t.evicted_active, 0);
    assert!(t.moves_within_lru >= read as u64);
    let survived_read = (0..read)
        .filter(|&i| value_of(&s, &small_key(i)).is_some())
        .count();
    assert_eq!(survived_read, read, "every item read survives");
    let survived_unread = (read..capacity)
        .filter(|&i| value_of(&s, &small_key(i)).is_some())
        .count();
    assert_eq!(survived_unread, capacity - read - fresh);
    // The unread ones that went are the oldest of them.
    assert!((read..read + fresh).all(|i| value_of(&s, &small_key(i)).is_none()));
    assert!(
        (capacity..capacity + fresh).all(|i| value_of(&s, &small_key(i)) == Some(small_value(i)))
    );
}

#[test]
fn without_eviction_a_full_cache_answers_no_memory() {
    let s = Store::new(&StoreConfig {
        evict: false,
        ..config(2 * MIB)
    });
    let class = s
        .store(Mode::Set, &small_key(0), 0, 0, &small_value(0))
        .class;
    let capacity = 2 * s.classes().get(class).perslab;
    let mut stored = 1;
    let mut failed = 0;
    for i in 1..capacity + 500 {
        match s
            .store(Mode::Set, &small_key(i), 0, 0, &small_value(i))
            .result
        {
            StoreResult::Stored => stored += 1,
            StoreResult::NoMemory => failed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stored, capacity);
    assert_eq!(failed, 500);
    let stat = class_stat(&s, class).expect("class in use");
    assert_eq!(stat.counters.outofmemory, 500);
    assert_eq!(s.totals().evictions, 0);
    for i in 0..capacity {
        assert_eq!(value_of(&s, &small_key(i)), Some(small_value(i)));
    }
    // Other commands that need memory fail too.
    assert_eq!(
        s.store(Mode::Add, b"new-key-01", 0, 0, &small_value(1))
            .result,
        StoreResult::NoMemory
    );
    // memcached's do_store_item answers NOT_STORED when append cannot
    // allocate the combined item.
    assert_eq!(
        s.store(Mode::Append, &small_key(3), 0, 0, b"more").result,
        StoreResult::NotStored
    );
    assert_eq!(
        value_of(&s, &small_key(3)),
        Some(small_value(3)),
        "a failed append keeps the item"
    );
    // A set that cannot be stored drops the old value (as memcached does).
    assert_eq!(
        s.store(Mode::Set, &small_key(5), 0, 0, &small_value(6))
            .result,
        StoreResult::NoMemory
    );
    assert_eq!(value_of(&s, &small_key(5)), None);
    // Freed memory is used again.
    assert_eq!(
        s.store(Mode::Set, &small_key(5), 0, 0, &small_value(5))
            .result,
        StoreResult::Stored
    );
    assert!(s.delete(&small_key(7)).is_ok());
    assert_eq!(
        s.store(Mode::Set, b"key-again1", 0, 0, &small_value(7))
            .result,
        StoreResult::Stored
    );
}

// ----- 7. reclaiming expired items -----

#[test]
fn expired_items_are_reclaimed_before_live_ones_are_evicted() {
    let s = new_store(2 * MIB);
    let exp = s.clock.realtime(5);
    let class = s
        .store(Mode::Set, &small_key(0), 0, exp, &small_value(0))
        .class;
    let capacity = 2 * s.classes().get(class).perslab;
    for i in 1..capacity {
        let e = if i % 2 == 0 { exp } else { 0 };
        let out = s.store(Mode::Set, &small_key(i), 0, e, &small_value(i));
        assert_eq!((out.result, out.class), (StoreResult::Stored, class));
    }
    assert_eq!(s.totals().curr_items as usize, capacity);
    // Every item is read: none is a preferred victim by CLOCK alone.
    for i in 0..capacity {
        assert!(value_of(&s, &small_key(i)).is_some());
    }
    s.clock.advance(10);
    let fresh = capacity / 2 - 10;
    for i in 0..fresh {
        let key = format!("fresh{i:05}");
        assert_eq!(
            s.store(Mode::Set, key.as_bytes(), 0, 0, &small_value(i))
                .result,
            StoreResult::Stored
        );
    }
    let t = s.totals();
    assert_eq!(
        t.evictions, 0,
        "no live item is evicted while expired ones remain"
    );
    assert_eq!(t.reclaimed as usize, fresh);
    for i in (1..capacity).step_by(2) {
        assert_eq!(value_of(&s, &small_key(i)), Some(small_value(i)));
    }
}

#[test]
fn crawler_reclaims_expired_items_without_access() {
    let s = new_store(8 * MIB);
    let exp = s.clock.realtime(5);
    let mut class = 0;
    for i in 0..3000 {
        let e = if i % 3 == 0 { 0 } else { exp };
        class = s
            .store(Mode::Set, &small_key(i), 0, e, &small_value(i))
            .class;
    }
    assert_eq!(s.crawl(class, 1_000_000), 0, "nothing has expired yet");
    s.clock.advance(5);
    let before = s.totals();
    assert_eq!(before.curr_items, 3000);
    let mut reclaimed = 0;
    // A small budget crawls part of the class per call and goes on from there.
    for _ in 0..20 {
        reclaimed += s.crawl(class, 1000);
    }
    assert_eq!(reclaimed, 2000);
    let t = s.totals();
    assert_eq!(t.crawler_reclaimed, 2000);
    assert!(t.crawler_items_checked >= 3000);
    assert_eq!(t.curr_items, 1000);
    assert_eq!(t.reclaimed, 0, "the crawler counts separately");
    assert_eq!(class_stat(&s, class).map(|c| c.used), Some(1000));
    for i in (0..3000).step_by(3) {
        assert_eq!(value_of(&s, &small_key(i)), Some(small_value(i)));
    }
    assert_eq!(s.crawl(class, 1_000_000), 0);
}

// ----- 8. page moves -----

/// A 4 MiB store whose four pages hold 100-byte items of one class.
fn full_small_store() -> (Store, usize, usize) {
    let s = new_store(4 * MIB);
    let class = s
        .store(Mode::Set, &small_key(0), 0, 0, &small_value(0))
        .class;
    let per = s.classes().get(class).perslab;
    for i in 1..4 * per {
        assert_eq!(
            s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i))
                .result,
            StoreResult::Stored
        );
    }
    assert_eq!(pages_of(&s, class), 4);
    assert_eq!(s.totals().evictions, 0);
    assert_eq!(s.totals().malloced, 4 * MIB as u64);
    (s, class, per)
}

#[test]
fn move_page_to_another_class() {
    let (s, src, per) = full_small_store();
    let big = pattern(100_000, 5);
    let dst = s.classes().for_size(100_000 + 32).expect("a class");
    assert_eq!(s.move_page(src, Some(dst)), Ok(()));
    assert_eq!(pages_of(&s, src), 3);
    assert_eq!(pages_of(&s, dst), 1);
    assert_eq!(s.slabs_moved.load(Ordering::Relaxed), 1);
    assert_eq!(s.reassign_evictions.load(Ordering::Relaxed), per as u64);
    assert_eq!(s.totals().curr_items as usize, 3 * per);
    assert_eq!(s.totals().evictions, 0, "page moves are counted apart");
    let src_stat = class_stat(&s, src).expect("src");
    assert_eq!((src_stat.used, src_stat.items as usize), (3 * per, 3 * per));
    // The moved page serves the big class without new memory or evictions.
    let dst_per = s.classes().get(dst).perslab;
    for j in 0..dst_per {
        let out = s.store(Mode::Set, format!("big{j}").as_bytes(), 0, 0, &big);
        assert_eq!((out.result, out.class), (StoreResult::Stored, dst));
    }
    assert_eq!(s.totals().malloced, 4 * MIB as u64);
    assert_eq!(s.totals().evictions, 0);
    assert_eq!(
        class_stat(&s, dst).map(|c| (c.used, c.items)),
        Some((dst_per, dst_per as u64))
    );
    // The small class refills by evicting within its three pages.
    let fresh = 1000;
    for i in 4 * per..4 * per + fresh {
        assert_eq!(
            s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i))
                .result,
            StoreResult::Stored
        );
    }
    assert_eq!(pages_of(&s, src), 3);
    assert_eq!(s.totals().evictions as usize, fresh);
    assert_eq!(s.totals().malloced, 4 * MIB as u64);
    // What is left is intact: one page moved away, `fresh` items evicted.
    let mut alive = 0;
    for i in 0..4 * per {
        if let Some(v) = value_of(&s, &small_key(i)) {
            assert_eq!(v, small_value(i), "item {i} intact");
            alive += 1;
        }
    }
    assert_eq!(alive, 3 * per - fresh);
    for i in 4 * per..4 * per + fresh {
        assert_eq!(value_of(&s, &small_key(i)), Some(small_value(i)));
    }
    for j in 0..dst_per {
        assert!(value_of(&s, format!("big{j}").as_bytes()) == Some(big.clone()));
    }
}

#[test]
fn move_page_to_the_pool_then_to_a_new_class() {
    let (s, src, per) = full_small_store();
    assert_eq!(s.move_page(src, None), Ok(()));
    assert_eq!(pages_of(&s, src), 3);
    assert_eq!(s.totals().pool_pages, 1);
    assert_eq!(s.totals().curr_items as usize, 3 * per);
    let out = s.store(Mode::Set, b"medium", 0, 0, &pattern(5000, 1));
    assert_eq!(out.result, StoreResult::Stored);
    assert_ne!(out.class, src);
    assert_eq!(pages_of(&s, out.class), 1);
    assert_eq!(
        s.totals().pool_pages,
        0,
        "the new class took the pooled page"
    );
    assert_eq!(s.totals().malloced, 4 * MIB as u64);
    assert_eq!(value_of(&s, b"medium"), Some(pattern(5000, 1)));
    // Another page to the pool: the small class takes it back when it needs
    // room, instead of evicting.
    assert_eq!(s.move_page(src, None), Ok(()));
    assert_eq!(pages_of(&s, src), 2);
    assert_eq!(s.totals().pool_pages, 1);
    assert_eq!(s.totals().curr_items as usize, 2 * per + 1);
    for i in 4 * per..5 * per {
        assert_eq!(
            s.store(Mode::Set, &small_key(i), 0, 0, &small_value(i))
                .result,
            StoreResult::Stored
        );
    }
    assert_eq!(pages_of(&s, src), 3);
    assert_eq!(s.totals().pool_pages, 0);
    assert_eq!(s.totals().evictions, 0);
    assert_eq!(s.totals().malloced, 4 * MIB as u64);
    assert_eq!(s.totals().curr_items as usize, 3 * per + 1);
}

/// memcached refuses to take a class's last page, whatever the destination
/// (`slabs reassign N 0` answers NOSPARE when class N has one page).
#[test]
fn a_class_keeps_its_last_page() {
    let s = new_store(8 * MIB);
    let class = s.store(Mode::Set, b"medium", 0, 0, &pattern(5000, 1)).class;
    assert_eq!(pages_of(&s, class), 1);
    assert_eq!(s.move_page(class, Some(0)), Err(MoveError::NoSpare));
    assert_eq!(s.move_page(class, None), Err(MoveError::NoSpare));
    assert_eq!(pages_of(&s, class), 1);
    assert_eq!(value_of(&s, b"medium"), Some(pattern(5000, 1)));
}

#[test]
fn move_page_errors() {
    let s = new_store(8 * MIB);
    let n = s.classes().len();
    assert_eq!(s.move_page(n, None), Err(MoveError::BadClass));
    assert_eq!(s.move_page(0, Some(n)), Err(MoveError::BadClass));
    assert_eq!(s.move_page(n + 5, Some(0)), Err(MoveError::BadClass));
    assert_eq!(s.move_page(3, Some(3)), Err(MoveError::Same));
    assert_eq!(
        s.move_page(3, Some(4)),
        Err(MoveError::NoSpare),
        "no pages at all"
    );
    assert_eq!(
        s.move_page(3, None),
        Err(MoveError::NoSpare),
        "no pages at all"
    );
    let class = s
        .store(Mode::Set, &small_key(0), 0, 0, &small_value(0))
        .class;
    assert_eq!(
        s.move_page(class, Some(0)),
        Err(MoveError::NoSpare),
        "a single page stays"
    );
    assert_eq!(value_of(&s, &small_key(0)), Some(small_value(0)));
    assert_eq!(s.slabs_moved.load(Ordering::Relaxed), 0);
}

#[test]
fn move_page_keeps_a_class_working_after_many_moves() {
    let s = new_store(6 * MIB);
    let classes = [2usize, 5, 9, 14];
    let len_for = |c: usize| s.classes().get(c).size - 12 - 10 - 8;
    let mut rng = Rng::new(7);
    let mut ok = 0;
    for round in 0..200 {
        for _ in 0..500 {
            let c = classes[rng.below(4) as usize];
            let i = rng.below(5000) as usize;
            let key = format!("m{c:02}-{i:05}");
            let value = pattern(len_for(c), (i % 250) as u8);
            assert_eq!(
                s.store(Mode::Set, key.as_bytes(), c as u32, 0, &value)
                    .result,
                StoreResult::Stored
            );
        }
        let src = classes[round % 4];
        let dst = classes[(round + 1 + rng.below(3) as usize) % 4];
        if s.move_page(src, Some(dst)).is_ok() {
            ok += 1;
        }
    }
    assert!(ok > 50, "{ok} moves");
    let mut live = 0;
    for c in classes {
        for i in 0..5000 {
            let key = format!("m{c:02}-{i:05}");
            if let Ok((v, flags)) = s.get(key.as_bytes(), None, |v| (v.value_vec(), v.flags)) {
                assert_eq!(flags as usize, c);
                assert!(v == pattern(len_for(c), (i % 250) as u8), "{key}");
                live += 1;
            }
        }
    }
    let t = s.totals();
    assert_eq!(t.curr_items, live);
    let used: usize = s.class_stats().iter().map(|c| c.used).sum();
    assert_eq!(used as u64, live, "no chunk leaked by the moves");
    let pages: usize = s.class_stats().iter().map(|c| c.pages).sum();
    assert!(pages + t.pool_pages as usize <= 6 + classes.len());
}

// ----- 9. the memory target -----

/// memcached 1.6.18 -m 64 keeps 330,940 items of 100-byte values with keys of
/// 10 to 40 bytes; memcrab must keep at least 25 % more.
/// About 8 s in a debug build, under 2 s in release.
#[test]
fn memory_target_64_mib() {
    let s = new_store(64 * MIB);
    let value = pattern(100, 3);
    let mut rng = Rng::new(42);
    let n = 1_200_000;
    let started = Instant::now();
    for i in 0..n {
        let len = 10 + rng.below(31) as usize;
        let key = format!("{i:0>len$}");
        assert_eq!(
            s.store(Mode::Set, key.as_bytes(), 0, 0, &value).result,
            StoreResult::Stored
        );
    }
    let t = s.totals();
    let kept = t.curr_items;
    eprintln!(
        "memory target: kept {kept} of {n} items in 64 MiB ({:?})",
        started.elapsed()
    );
    assert!(kept as f64 >= 1.25 * 330_940.0, "kept {kept}");
    assert!(t.malloced <= 64 * MIB as u64 + (s.class_stats().len() * PAGE_SIZE) as u64);
    // The newest items are all readable.
    let mut rng = Rng::new(42);
    let lens: Vec<usize> = (0..n).map(|_| 10 + rng.below(31) as usize).collect();
    for (i, &len) in lens.iter().enumerate().skip(n - 100_000) {
        let key = format!("{i:0>len$}");
        assert!(
            value_of(&s, key.as_bytes()).is_some_and(|v| v == value),
            "recent key {i}"
        );
    }
}

// ----- 10. concurrency -----

/// How many chunks an item without expiry takes (with CAS, default classes).
fn chunks_of(key_len: usize, flags: u32, value_len: usize) -> usize {
    let mut header = 12 + 4 * (flags != 0) as usize + 4 * (value_len > u16::MAX as usize) as usize;
    if header + key_len + value_len <= CHUNK_MAX {
        return 1;
    }
    header += 4; // the next-chunk field
    1 + (header + key_len + value_len - CHUNK_MAX).div_ceil(CHUNK_MAX - CONT_HEADER)
}

fn segment(key: usize) -> Vec<u8> {
    format!("<{key:04}>").into_bytes()
}

/// Whether `value` is made only of `key`'s segment.
fn well_formed(value: &[u8], key: usize) -> bool {
    let seg = segment(key);
    !value.is_empty()
        && value.len().is_multiple_of(seg.len())
        && value.chunks(seg.len()).all(|c| c == seg)
}

#[test]
fn concurrent_commands_never_see_foreign_or_torn_values() {
    let s = Arc::new(Store::new(&StoreConfig {
        shards: 16,
        ..config(16 * MIB)
    }));
    let keys = 6000;
    let deadline = Instant::now() + Duration::from_secs(2);
    let wrong = Arc::new(AtomicU64::new(0));
    let ops = Arc::new(AtomicU64::new(0));
    // Stores that found no memory: plain sets of single-chunk values, and the
    // rest (a 600 KB value may find the largest class's two chunks both
    // being filled by other threads, as memcached may find its tail locked).
    let no_memory = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    // Page moves tried so far: everyone runs until the mover has tried a
    // few, however slowly threads are scheduled (Valgrind runs one at a time).
    const MIN_MOVES: u64 = 20;
    let moves_tried = Arc::new(AtomicU64::new(0));
    let running = {
        let moves_tried = moves_tried.clone();
        move || Instant::now() < deadline || moves_tried.load(Ordering::Relaxed) < MIN_MOVES
    };
    let mut handles = Vec::new();
    for t in 0..4u64 {
        let (s, wrong, ops, no_memory) = (s.clone(), wrong.clone(), ops.clone(), no_memory.clone());
        let running = running.clone();
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(t + 1);
            let mut n = 0u64;
            while running() {
                for _ in 0..64 {
                    let k = rng.below(keys) as usize;
                    let key = format!("ck{k}");
                    // A few sizes (12 B to 12 KB), mostly large: the classes
                    // of the large ones take several pages, which can move.
                    // Now and then a value chained over several chunks (600 KB).
                    let reps = match rng.below(400) {
                        0 => 100_000,
                        r => [2usize, 50, 300, 2000, 2000][r as usize % 5],
                    };
                    let op = rng.below(10);
                    let result = match op {
                        0..=3 => {
                            s.store(
                                Mode::Set,
                                key.as_bytes(),
                                k as u32,
                                0,
                                &segment(k).repeat(reps),
                            )
                            .result
                        }
                        4 => {
                            s.store(
                                Mode::Append,
                                key.as_bytes(),
                                0,
                                0,
                                &segment(k).repeat(1 + reps % 3),
                            )
                            .result
                        }
                        5 => {
                            s.store(
                                Mode::Prepend,
                                key.as_bytes(),
                                0,
                                0,
                                &segment(k).repeat(1 + reps % 3),
                            )
                            .result
                        }
                        6 => {
                            let _ = s.delete(key.as_bytes());
                            StoreResult::Stored
                        }
                        _ => {
                            if let Ok(ok) = s.get(key.as_bytes(), None, |v| {
                                v.key == key.as_bytes()
                                    && v.flags == k as u32
                                    && well_formed(&v.value_vec(), k)
                            }) && !ok
                            {
                                wrong.fetch_add(1, Ordering::Relaxed);
                            }
                            StoreResult::Stored
                        }
                    };
                    if result == StoreResult::NoMemory {
                        let plain = op <= 3 && reps < 100_000;
                        no_memory[usize::from(!plain)].fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            }
            ops.fetch_add(n, Ordering::Relaxed);
        }));
    }
    let mover = {
        let s = s.clone();
        std::thread::spawn(move || {
            let mut rng = Rng::new(99);
            let (mut moved, mut tries) = (0u64, 0u64);
            while running() {
                // Like memcached's automover: a page from a class that has
                // more than one, to another class in use or to the pool.
                let stats = s.class_stats();
                let pick = |rng: &mut Rng, ids: &[usize]| ids[rng.below(ids.len() as u64) as usize];
                let spare: Vec<usize> =
                    stats.iter().filter(|c| c.pages > 1).map(|c| c.id).collect();
                let used: Vec<usize> = stats.iter().map(|c| c.id).collect();
                let src = if spare.is_empty() {
                    rng.below(30) as usize
                } else {
                    pick(&mut rng, &spare)
                };
                let dst = if used.is_empty() {
                    0
                } else {
                    pick(&mut rng, &used)
                };
                let dst = (dst != src && rng.below(8) != 0).then_some(dst);
                tries += 1;
                moves_tried.fetch_add(1, Ordering::Relaxed);
                if s.move_page(src, dst).is_ok() {
                    moved += 1;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            (moved, tries)
        })
    };
    for h in handles {
        h.join().expect("worker");
    }
    let (moved, tries) = mover.join().expect("mover");
    let ops = ops.load(Ordering::Relaxed);
    let t = s.totals();
    eprintln!(
        "concurrency: {ops} ops, {moved}/{tries} page moves, {} evictions, no memory {}+{}",
        t.evictions,
        no_memory[0].load(Ordering::Relaxed),
        no_memory[1].load(Ordering::Relaxed),
    );
    assert_eq!(wrong.load(Ordering::Relaxed), 0, "wrong values seen");
    assert_eq!(
        no_memory[0].load(Ordering::Relaxed),
        0,
        "with eviction on, a set of a small value never runs out of memory"
    );
    assert!(t.evictions > 0, "memory was small enough to evict");
    assert!(moved > 0, "pages moved");
    // Quiescent: what is linked is what can be read, and every chunk in use
    // belongs to a linked item.
    let (mut live, mut chunks) = (0u64, 0usize);
    for k in 0..keys as usize {
        let key = format!("ck{k}");
        if let Ok((ok, len)) = s.get(key.as_bytes(), None, |v| {
            (
                v.flags == k as u32 && well_formed(&v.value_vec(), k),
                v.value_len(),
            )
        }) {
            assert!(ok, "{key} holds a wrong value");
            live += 1;
            chunks += chunks_of(key.len(), k as u32, len);
        }
    }
    let t = s.totals();
    assert_eq!(t.curr_items, live);
    let stats = s.class_stats();
    assert_eq!(
        stats.iter().map(|c| c.used).sum::<usize>(),
        chunks,
        "chunks leaked"
    );
    assert_eq!(stats.iter().map(|c| c.items).sum::<u64>(), live);
    let pages: usize = stats.iter().map(|c| c.pages).sum();
    assert!(pages + t.pool_pages as usize <= 16 + s.classes().len());
}

// ----- 11. model-based property test -----

const MODEL_KEYS: u8 = 4;

#[derive(Clone, Copy, Debug)]
enum Exp {
    Never,
    Past,
    In(u32),
}

#[derive(Clone, Debug)]
enum Op {
    Set {
        key: u8,
        value: Vec<u8>,
        flags: u32,
        exp: Exp,
    },
    Add {
        key: u8,
        value: Vec<u8>,
        flags: u32,
        exp: Exp,
    },
    Replace {
        key: u8,
        value: Vec<u8>,
        flags: u32,
        exp: Exp,
    },
    Cas {
        key: u8,
        value: Vec<u8>,
        flags: u32,
        exp: Exp,
        right: bool,
    },
    Append {
        key: u8,
        value: Vec<u8>,
    },
    Prepend {
        key: u8,
        value: Vec<u8>,
    },
    Incr {
        key: u8,
        by: u64,
    },
    Decr {
        key: u8,
        by: u64,
    },
    Delete {
        key: u8,
    },
    /// `exp`: see [`touch_exptime`].
    Touch {
        key: u8,
        exp: u32,
    },
    Gat {
        key: u8,
        exp: u32,
    },
    Get {
        key: u8,
    },
    Flush {
        delay: u32,
    },
    Advance {
        secs: u32,
    },
}

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    let numbers = prop::sample::select(vec![
        "0",
        "1",
        "9",
        "99",
        "100",
        " 42",
        "7 ",
        "-5",
        "-0",
        "+3",
        "",
        "18446744073709551615",
        "18446744073709551616",
        "abc",
        "12abc",
        "000000000000000000000012",
    ]);
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..24),
        2 => (0u64..200).prop_map(|n| n.to_string().into_bytes()),
        1 => any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        2 => numbers.prop_map(|s| s.as_bytes().to_vec()),
    ]
}

fn exp_strategy() -> impl Strategy<Value = Exp> {
    prop_oneof![3 => Just(Exp::Never), 1 => Just(Exp::Past), 2 => (1u32..6).prop_map(Exp::In)]
}

fn flags_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let key = 0..MODEL_KEYS;
    let by = prop_oneof![0u64..4, any::<u64>()];
    prop_oneof![
        4 => (key.clone(), value_strategy(), flags_strategy(), exp_strategy())
            .prop_map(|(key, value, flags, exp)| Op::Set { key, value, flags, exp }),
        2 => (key.clone(), value_strategy(), flags_strategy(), exp_strategy())
            .prop_map(|(key, value, flags, exp)| Op::Add { key, value, flags, exp }),
        2 => (key.clone(), value_strategy(), flags_strategy(), exp_strategy())
            .prop_map(|(key, value, flags, exp)| Op::Replace { key, value, flags, exp }),
        2 => (key.clone(), value_strategy(), flags_strategy(), exp_strategy(), any::<bool>())
            .prop_map(|(key, value, flags, exp, right)| Op::Cas { key, value, flags, exp, right }),
        2 => (key.clone(), value_strategy()).prop_map(|(key, value)| Op::Append { key, value }),
        2 => (key.clone(), value_strategy()).prop_map(|(key, value)| Op::Prepend { key, value }),
        2 => (key.clone(), by.clone()).prop_map(|(key, by)| Op::Incr { key, by }),
        2 => (key.clone(), by).prop_map(|(key, by)| Op::Decr { key, by }),
        1 => key.clone().prop_map(|key| Op::Delete { key }),
        2 => (key.clone(), 0u32..7).prop_map(|(key, exp)| Op::Touch { key, exp }),
        1 => (key.clone(), 0u32..7).prop_map(|(key, exp)| Op::Gat { key, exp }),
        1 => key.prop_map(|key| Op::Get { key }),
        1 => (0u32..4).prop_map(|delay| Op::Flush { delay }),
        2 => (0u32..4).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// C's strtoull as `safe_strtoull` uses it, written independently of the
/// store's parser: one token of optional sign and digits, then white space.
fn reference_strtoull(v: &[u8]) -> Option<u64> {
    let ws = |b: &u8| b" \t\n\x0b\x0c\r".contains(b);
    let start = v.iter().position(|b| !ws(b)).unwrap_or(v.len());
    let rest = &v[start..];
    let end = rest.iter().position(ws).unwrap_or(rest.len());
    let token = std::str::from_utf8(&rest[..end]).ok()?;
    let (negative, digits) = match token.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, token.strip_prefix('+').unwrap_or(token)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    if !negative {
        return Some(n);
    }
    let r = n.wrapping_neg();
    if (r as i64) < 0 { None } else { Some(r) }
}

#[derive(Clone, Debug)]
struct ModelItem {
    value: Vec<u8>,
    flags: u32,
    exp: u32,
    /// Which write made this item: cas values must follow this order.
    version: u64,
}

struct Model {
    items: HashMap<u8, ModelItem>,
    now: u32,
    flush_at: Option<u32>,
    version: u64,
    /// The cas seen for each version.
    cas_of: BTreeMap<u64, u64>,
}

impl Model {
    fn live(&mut self, key: u8) -> Option<&mut ModelItem> {
        let now = self.now;
        if self
            .items
            .get(&key)
            .is_some_and(|it| it.exp != 0 && it.exp <= now)
        {
            self.items.remove(&key);
        }
        self.items.get_mut(&key)
    }

    fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    fn put(&mut self, key: u8, value: Vec<u8>, flags: u32, exp: u32) {
        let version = self.next_version();
        self.items.insert(
            key,
            ModelItem {
                value,
                flags,
                exp,
                version,
            },
        );
    }

    /// Cas values are unique per write and increase with the writes.
    fn check_cas(&mut self, version: u64, cas: u64, use_cas: bool) {
        if !use_cas {
            assert_eq!(cas, 0, "cas without -C");
            return;
        }
        if let Some(&seen) = self.cas_of.get(&version) {
            assert_eq!(cas, seen, "cas of version {version} changed");
            return;
        }
        if let Some((v, &c)) = self.cas_of.range(..version).next_back() {
            assert!(
                cas > c,
                "cas {cas} of version {version} not above {c} of version {v}"
            );
        }
        if let Some((v, &c)) = self.cas_of.range(version + 1..).next() {
            assert!(
                cas < c,
                "cas {cas} of version {version} not below {c} of version {v}"
            );
        }
        self.cas_of.insert(version, cas);
    }
}

fn model_key(k: u8) -> Vec<u8> {
    format!("model-key-{k}").into_bytes()
}

fn exptime(s: &Store, exp: Exp) -> u32 {
    match exp {
        Exp::Never => 0,
        Exp::Past => s.clock.realtime(-1),
        Exp::In(secs) => s.clock.realtime(secs as i64),
    }
}

/// A touch/gat expiry: 0 clears it, 6 is in the past (a negative client
/// exptime), others are seconds from now.
fn touch_exptime(s: &Store, exp: u32) -> u32 {
    match exp {
        0 => 0,
        6 => s.clock.realtime(-1),
        secs => s.clock.realtime(secs as i64),
    }
}

fn run_model(use_cas: bool, ops: &[Op]) {
    let s = Store::new(&StoreConfig {
        use_cas,
        shards: 8,
        ..config(64 * MIB)
    });
    let mut m = Model {
        items: HashMap::new(),
        now: s.clock.now(),
        flush_at: None,
        version: 0,
        cas_of: BTreeMap::new(),
    };
    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        match op.clone() {
            Op::Set {
                key,
                value,
                flags,
                exp,
            } => {
                let e = exptime(&s, exp);
                assert_eq!(
                    s.store(Mode::Set, &model_key(key), flags, e, &value).result,
                    StoreResult::Stored,
                    "{ctx}"
                );
                m.put(key, value, flags, e);
            }
            Op::Add {
                key,
                value,
                flags,
                exp,
            } => {
                let e = exptime(&s, exp);
                let got = s.store(Mode::Add, &model_key(key), flags, e, &value).result;
                if m.live(key).is_some() {
                    assert_eq!(got, StoreResult::NotStored, "{ctx}");
                } else {
                    assert_eq!(got, StoreResult::Stored, "{ctx}");
                    m.put(key, value, flags, e);
                }
            }
            Op::Replace {
                key,
                value,
                flags,
                exp,
            } => {
                let e = exptime(&s, exp);
                let got = s
                    .store(Mode::Replace, &model_key(key), flags, e, &value)
                    .result;
                if m.live(key).is_some() {
                    assert_eq!(got, StoreResult::Stored, "{ctx}");
                    m.put(key, value, flags, e);
                } else {
                    assert_eq!(got, StoreResult::NotStored, "{ctx}");
                }
            }
            Op::Cas {
                key,
                value,
                flags,
                exp,
                right,
            } => {
                let e = exptime(&s, exp);
                let current = match m.live(key).map(|it| it.version) {
                    Some(version) => {
                        let cas = s.get(&model_key(key), None, |v| v.cas);
                        let cas = cas.unwrap_or_else(|e| panic!("{ctx}: live item missing: {e:?}"));
                        m.check_cas(version, cas, use_cas);
                        Some(cas)
                    }
                    None => None,
                };
                let given = match current {
                    Some(c) if right => c,
                    Some(c) => c.wrapping_add(1 + (flags as u64 % 7)),
                    None => 1 + flags as u64,
                };
                let got = s
                    .store(Mode::Cas(given), &model_key(key), flags, e, &value)
                    .result;
                match current {
                    None => assert_eq!(got, StoreResult::NotFound, "{ctx}"),
                    Some(_) if right && use_cas => {
                        assert_eq!(got, StoreResult::Stored, "{ctx}");
                        m.put(key, value, flags, e);
                    }
                    Some(_) => assert_eq!(got, StoreResult::Exists, "{ctx}"),
                }
            }
            Op::Append { key, value } | Op::Prepend { key, value } => {
                let append = matches!(op, Op::Append { .. });
                let mode = if append { Mode::Append } else { Mode::Prepend };
                let got = s.store(mode, &model_key(key), 0, 0, &value).result;
                let version = m.next_version();
                match m.live(key) {
                    Some(it) => {
                        assert_eq!(got, StoreResult::Stored, "{ctx}");
                        if append {
                            it.value.extend_from_slice(&value);
                        } else {
                            it.value.splice(0..0, value);
                        }
                        it.version = version;
                    }
                    None => assert_eq!(got, StoreResult::NotStored, "{ctx}"),
                }
            }
            Op::Incr { key, by } | Op::Decr { key, by } => {
                let incr = matches!(op, Op::Incr { .. });
                let got = s.delta(&model_key(key), incr, by).result;
                let version = m.next_version();
                match m.live(key) {
                    None => assert_eq!(got, Delta::NotFound, "{ctx}"),
                    Some(it) => {
                        match reference_strtoull(&it.value).filter(|_| !it.value.is_empty()) {
                            None => assert_eq!(got, Delta::NonNumeric, "{ctx}"),
                            Some(n) => {
                                let new = if incr {
                                    n.wrapping_add(by)
                                } else {
                                    n.saturating_sub(by)
                                };
                                assert_eq!(got, Delta::Value(new), "{ctx}");
                                let mut digits = new.to_string().into_bytes();
                                if digits.len() <= it.value.len() {
                                    digits.resize(it.value.len(), b' ');
                                }
                                it.value = digits;
                                it.version = version;
                            }
                        }
                    }
                }
            }
            Op::Delete { key } => {
                let got = s.delete(&model_key(key)).is_ok();
                let expect = m.live(key).is_some();
                assert_eq!(got, expect, "{ctx}");
                m.items.remove(&key);
            }
            Op::Touch { key, exp } => {
                let e = touch_exptime(&s, exp);
                let got = s.touch(&model_key(key), e).is_ok();
                match m.live(key) {
                    Some(it) => {
                        assert!(got, "{ctx}");
                        it.exp = e;
                    }
                    None => assert!(!got, "{ctx}"),
                }
            }
            Op::Gat { key, exp } => {
                let e = touch_exptime(&s, exp);
                let got = s.get(&model_key(key), Some(e), |v| {
                    (v.value_vec(), v.flags, v.cas)
                });
                match m.live(key).cloned() {
                    Some(it) => {
                        let (value, flags, cas) = got.unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
                        assert_eq!((value, flags), (it.value.clone(), it.flags), "{ctx}");
                        m.check_cas(it.version, cas, use_cas);
                        if let Some(it) = m.live(key) {
                            it.exp = e;
                        }
                    }
                    None => assert!(got.is_err(), "{ctx}"),
                }
            }
            Op::Get { key } => {
                // Every key is also read after every step; this read comes first.
                let got = s.get(&model_key(key), None, |v| (v.value_vec(), v.flags));
                let expect = m.live(key).map(|it| (it.value.clone(), it.flags));
                assert_eq!(got.ok(), expect, "{ctx}");
            }
            Op::Flush { delay } => {
                if delay == 0 {
                    s.flush(0);
                    m.items.clear();
                    m.flush_at = None;
                } else {
                    s.flush(s.clock.now() + delay);
                    m.flush_at = Some(m.now + delay);
                }
            }
            Op::Advance { secs } => {
                s.clock.advance(secs);
                s.tick();
                m.now += secs;
                if m.flush_at.is_some_and(|at| at <= m.now + 1) {
                    m.items.clear();
                    m.flush_at = None;
                }
            }
        }
        assert_eq!(s.clock.now(), m.now);
        for k in 0..MODEL_KEYS {
            let got = s.get(&model_key(k), None, |v| (v.value_vec(), v.flags, v.cas));
            match m.live(k).cloned() {
                Some(it) => {
                    let (value, flags, cas) =
                        got.unwrap_or_else(|e| panic!("{ctx}: key {k} missing: {e:?}"));
                    assert_eq!(value, it.value, "{ctx}: value of key {k}");
                    assert_eq!(flags, it.flags, "{ctx}: flags of key {k}");
                    m.check_cas(it.version, cas, use_cas);
                }
                None => assert!(got.is_err(), "{ctx}: key {k} should be absent, got {got:?}"),
            }
        }
        // Every dead item was just found and unlinked: the counts agree.
        let t = s.totals();
        assert_eq!(t.curr_items as usize, m.items.len(), "{ctx}: curr_items");
        let used: usize = s.class_stats().iter().map(|c| c.used).sum();
        assert_eq!(used, m.items.len(), "{ctx}: chunks in use");
    }
}

/// How many random operation sequences the property test runs (the
/// environment variable PROPTEST_CASES overrides it).
const MODEL_CASES: u32 = 1000;

fn model_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MODEL_CASES)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: model_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_matches_a_hashmap_model(use_cas in any::<bool>(), ops in prop::collection::vec(op_strategy(), 1..120)) {
        run_model(use_cas, &ops);
    }
}

#[test]
fn reference_parser_agrees_with_parse_c_u64() {
    let samples: [&[u8]; 14] = [
        b"0",
        b" 12 ",
        b"+7",
        b"-0",
        b"-5",
        b"abc",
        b"",
        b"18446744073709551615",
        b"18446744073709551616",
        b"-18446744073709551615",
        b"7x",
        b"\t9\n",
        b"000000000000000000000000000001",
        b"-9223372036854775809",
    ];
    for v in samples {
        assert_eq!(
            reference_strtoull(v),
            parse_c_u64(v),
            "{:?}",
            String::from_utf8_lossy(v)
        );
    }
}
