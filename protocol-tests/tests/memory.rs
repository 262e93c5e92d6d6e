//! Memory: `-m` is a promise. Filled far past its limit, memcrab's RSS
//! stays near `-m` plus its index, it keeps more items than memcached in
//! the same memory, and memory follows a change in item sizes.

use std::time::{Duration, Instant};

use protocol_tests::*;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A key of 10 to 40 bytes, unique for `i`.
fn key(i: usize) -> String {
    let base = format!("key:{i}:");
    let len = 10 + (i * 7919) % 31;
    format!("{base:x<len$}")
}

/// Writes `count` items of `value_len` bytes with `noreply`, pipelined.
fn fill(srv: &Server, prefix: &str, start: usize, count: usize, value_len: usize) {
    let mut c = srv.connect();
    let value = vec![b'v'; value_len];
    let mut batch = Vec::new();
    for i in start..start + count {
        batch.extend(format!("set {prefix}{} 0 0 {value_len} noreply\r\n", key(i)).as_bytes());
        batch.extend(&value);
        batch.extend(b"\r\n");
        if batch.len() > 256 * 1024 {
            let r = c.send(&batch);
            assert!(r.bytes.is_empty(), "{}", r.render());
            batch.clear();
        }
    }
    let r = c.send(&batch);
    assert!(r.bytes.is_empty(), "{}", r.render());
}

fn stat_of(stats: &Stats, name: &str) -> u64 {
    stat(stats, name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `-m 32` overfilled threefold with 100-byte values: RSS stays within the
/// limit plus the index and a few MiB, and memcrab keeps ≥ 1.25× the items.
#[test]
fn overfill_keeps_rss_near_the_limit() {
    let p = pair!("-m", "32");
    let idle = p.run(|srv| rss_kib(srv.pid()));
    let items = 3 * 32 * 1024 * 1024 / 160;
    let (r, s) = p.run(|srv| {
        fill(srv, "", 0, items, 100);
        let stats = srv.stats("");
        (
            stat_of(&stats, "curr_items"),
            stat_of(&stats, "evictions"),
            rss_kib(srv.pid()),
        )
    });
    eprintln!(
        "memcached: {} items, {} evictions, RSS {} KiB (idle {} KiB)",
        r.0, r.1, r.2, idle.0
    );
    eprintln!(
        "memcrab:   {} items, {} evictions, RSS {} KiB (idle {} KiB)",
        s.0, s.1, s.2, idle.1
    );
    assert!(r.1 > 0 && s.1 > 0, "both must have evicted");
    assert!(
        s.0 as f64 >= 1.25 * r.0 as f64,
        "memcrab keeps {} items, memcached {}: less than 1.25x",
        s.0,
        r.0
    );
    // The index: hashbrown buckets of 9 bytes at a load of at least 7/16.
    let index_kib = s.0 * 9 * 16 / 7 / 1024;
    let limit_kib = 32 * 1024 + index_kib + idle.1 + 4 * 1024;
    assert!(
        s.2 <= limit_kib,
        "memcrab RSS {} KiB over {} KiB",
        s.2,
        limit_kib
    );
}

/// Memory moves to the class that needs it: fill `-m 16` with 100-byte
/// items, then write only 10 KiB items for a few seconds. Most of the large
/// items that fit must stay readable (memcached keeps a few percent).
/// Wall clock: ~10 s.
#[test]
fn memory_follows_a_shift_to_large_items() {
    let Some(s) = subject_only(&["-m", "16"]) else {
        return;
    };
    fill(&s, "small", 0, 16 * 1024 * 1024 / 120, 100);
    let large = 10 * 1024;
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut written = 0;
    while Instant::now() < deadline {
        fill(&s, "large", written, 200, large);
        written += 200;
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    // What fits: all 16 pages of the class the large items live in.
    let slabs = s.stats("slabs");
    let class = slabs
        .iter()
        .filter_map(|(k, v)| Some((k.strip_suffix(":chunk_size")?, v.parse::<usize>().ok()?)))
        .find(|&(_, size)| size >= large)
        .map(|(class, _)| class.to_string())
        .expect("a class holds the large items");
    let per_page = stat_of(&slabs, &format!("{class}:chunks_per_page")) as usize;
    let check = (16 * per_page).min(written);
    let mut c = s.connect();
    let mut kept = 0;
    for i in written - check..written {
        let r = c.send(format!("get large{}\r\n", key(i)).as_bytes());
        if r.bytes.starts_with(b"VALUE") {
            kept += 1;
        }
    }
    let stats = s.stats("");
    eprintln!(
        "large items written {written}; of the newest {check} (16 pages of class {class}) readable {kept}; slabs_moved {}",
        stat_of(&stats, "slabs_moved")
    );
    assert!(
        kept * 100 >= check * 80,
        "kept {kept} of {check} large items that fit"
    );
}

/// memcrab alone (no reference needed for a property of its own).
fn subject_only(args: &[&str]) -> Option<Server> {
    binaries()?;
    Some(Server::start(&subject_bin(), Side::Subject, args))
}
