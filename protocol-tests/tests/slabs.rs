//! Slab tables (storage engine acceptance): for several flag sets, every
//! slab class's `chunk_size` and `chunks_per_page` in `stats slabs` must equal
//! memcached's.
//!
//! `stats slabs` only lists classes that hold pages, so a range of value
//! sizes growing by 2% at a time (every class is at least ~5% wider than the
//! previous one for the factors used here) is stored first: every class then
//! gets a page on both servers, whatever their item header size. Only
//! layout-independent fields are compared (not used/free chunk counts).

use protocol_tests::*;

fn value_sizes(max: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut s = 1usize;
    while s <= max {
        sizes.push(s);
        s += (s / 50).max(4);
    }
    sizes.push(max);
    sizes
}

fn check_slab_table(args: &[&str]) {
    // -m 1024: one page per class must fit even with ~60 classes (memcached
    // allocates pages lazily, so this costs nothing)
    let mut full: Vec<&str> = vec!["-m", "1024"];
    full.extend(args);
    let Some(p) = Pair::start(&full) else { return };
    let (rset, sset) = p.stats("settings");
    for name in [
        "item_size_max",
        "slab_chunk_max",
        "growth_factor",
        "chunk_size",
    ] {
        assert_eq!(stat(&sset, name), stat(&rset, name), "{name} for {args:?}");
    }
    let item_max = stat_u64(&rset, "item_size_max") as usize;
    let chunk_max = stat_u64(&rset, "slab_chunk_max") as usize;
    // up to a bit past the largest chunk (so chunked items are exercised
    // too), staying clear of the item size limit
    let max = (chunk_max + chunk_max / 4).min(item_max - 2048);
    let mut conv = Vec::new();
    let sizes = value_sizes(max);
    for (i, len) in sizes.iter().enumerate() {
        conv.extend(format!("set s{i} 0 0 {len} noreply\r\n").as_bytes());
        conv.extend(std::iter::repeat_n(b'v', *len));
        conv.extend(b"\r\n");
    }
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let w = c.send(&conv);
        (w, c.stats("slabs"))
    });
    assert_same(
        &format!("storing {} values for {args:?}", sizes.len()),
        &r.0,
        &s.0,
    );
    assert!(r.0.bytes.is_empty(), "reference: {}", r.0.render());
    let table =
        |stats: &Stats| -> Stats { filter_stats(stats, &["chunk_size", "chunks_per_page"]) };
    let (rt, st) = (table(&r.1), table(&s.1));
    // sanity: the reference lists a contiguous run of classes 1..=N
    let classes: Vec<u64> = rt
        .iter()
        .filter(|(n, _)| n.ends_with(":chunk_size"))
        .map(|(n, _)| n.split(':').next().unwrap_or("").parse().unwrap_or(0))
        .collect();
    let expected: Vec<u64> = (1..=classes.len() as u64).collect();
    assert_eq!(classes, expected, "reference classes for {args:?}");
    assert!(
        classes.len() >= 5,
        "{args:?}: only {} classes",
        classes.len()
    );
    assert_stats_eq(&format!("slab table for {args:?}"), &rt, &st, &[]);
    assert_eq!(stat(&s.1, "active_slabs"), stat(&r.1, "active_slabs"));
}

#[test]
fn slab_table_defaults() {
    check_slab_table(&[]);
}

#[test]
fn slab_table_growth_factor_2() {
    check_slab_table(&["-f", "2"]);
}

#[test]
fn slab_table_min_size_100_factor_1_1() {
    check_slab_table(&["-n", "100", "-f", "1.1"]);
}

#[test]
fn slab_table_item_max_4m() {
    check_slab_table(&["-I", "4m"]);
}

#[test]
fn slab_table_chunk_max_256k() {
    // 1.6.18 reads slab_chunk_max in bytes
    check_slab_table(&["-o", "slab_chunk_max=262144"]);
}

#[test]
fn slab_table_small_items() {
    check_slab_table(&["-I", "64k", "-o", "slab_chunk_max=16384", "-f", "1.5"]);
}

#[test]
fn slab_table_min_size_and_item_max() {
    check_slab_table(&["-n", "64", "-f", "1.05", "-I", "2m"]);
}

/// The default table, recorded: class 1 is 96 bytes, factor 1.25, 8-byte
/// aligned, up to slab_chunk_max = 512 KiB in class 39.
#[test]
fn slab_table_defaults_recorded() {
    let Some(p) = Pair::start(&["-m", "1024"]) else {
        return;
    };
    let mut conv = Vec::new();
    for (i, len) in value_sizes(600_000).iter().enumerate() {
        conv.extend(format!("set s{i} 0 0 {len} noreply\r\n").as_bytes());
        conv.extend(std::iter::repeat_n(b'v', *len));
        conv.extend(b"\r\n");
    }
    let r = p.reference.connect().send(&conv);
    assert!(r.bytes.is_empty());
    let stats = p.reference.stats("slabs");
    let sizes: Vec<u64> = filter_stats(&stats, &["chunk_size"])
        .iter()
        .map(|(_, v)| v.parse().unwrap_or(0))
        .collect();
    assert_eq!(
        sizes,
        [
            96, 120, 152, 192, 240, 304, 384, 480, 600, 752, 944, 1184, 1480, 1856, 2320, 2904,
            3632, 4544, 5680, 7104, 8880, 11104, 13880, 17352, 21696, 27120, 33904, 42384, 52984,
            66232, 82792, 103496, 129376, 161720, 202152, 252696, 315872, 394840, 524288
        ]
    );
}
