//! `stats` and its sub-commands: field names, order and values.

use protocol_tests::*;

/// A workload touching every command counter.
const WORKLOAD: &[u8] = b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nset c 0 0 2\r\ncc\r\n\
get a\r\nget a b missing\r\ngets c\r\nget nope\r\n\
add a 0 0 1\r\nx\r\nadd d 0 0 1\r\nd\r\nreplace e 0 0 1\r\ne\r\nreplace d 0 0 1\r\nD\r\n\
append a 0 0 1\r\nx\r\nprepend zz 0 0 1\r\nx\r\n\
incr a 5\r\nincr missing 1\r\ndecr a 1\r\ndecr missing 1\r\nincr c 1\r\n\
set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 3\r\n\
cas a 0 0 1 999\r\nz\r\ncas missing 0 0 1 1\r\nz\r\ncas b 0 0 1 2\r\nB\r\n\
touch a 100\r\ntouch missing 100\r\ngat 100 b missing\r\ngats 0 c\r\n\
delete d\r\ndelete d\r\ndelete never\r\n\
set big 0 0 2000000\r\n";

fn run_workload(c: &mut Conn) -> Reply {
    let mut w = WORKLOAD.to_vec();
    w.extend(vec![b'x'; 2_000_000]);
    w.extend(b"\r\nset e 0 -1 1\r\ne\r\nget e\r\nflush_all\r\nget a\r\n");
    c.send(&w)
}

#[test]
fn stats_after_workload() {
    // memcached's LRU maintainer and crawler threads reclaim flushed and
    // expired items and move items between LRU segments at times of their
    // own; with them off, every counter is deterministic.
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let w = run_workload(&mut c);
        (w, c.stats(""))
    });
    assert_same("workload", &r.0, &s.0);
    assert_reference(
        "workload",
        &r.0,
        b"STORED\r\nSTORED\r\nSTORED\r\n\
VALUE a 0 1\r\n1\r\nEND\r\nVALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nEND\r\nVALUE c 0 2 3\r\ncc\r\nEND\r\nEND\r\n\
NOT_STORED\r\nSTORED\r\nNOT_STORED\r\nSTORED\r\n\
STORED\r\nNOT_STORED\r\n\
CLIENT_ERROR cannot increment or decrement non-numeric value\r\nNOT_FOUND\r\n\
CLIENT_ERROR cannot increment or decrement non-numeric value\r\nNOT_FOUND\r\n\
CLIENT_ERROR cannot increment or decrement non-numeric value\r\n\
STORED\r\n15\r\n12\r\n\
EXISTS\r\nNOT_FOUND\r\nSTORED\r\n\
TOUCHED\r\nNOT_FOUND\r\nVALUE b 0 1\r\nB\r\nEND\r\nVALUE c 0 2 3\r\ncc\r\nEND\r\n\
DELETED\r\nNOT_FOUND\r\nNOT_FOUND\r\n\
SERVER_ERROR object too large for cache\r\nSTORED\r\nEND\r\nOK\r\nEND\r\n",
    );
    let (rs, ss) = (r.1, s.1);
    // values that must be exactly these on memcached 1.6.18 (and memcrab)
    for (name, want) in [
        // keys requested by get/gets (gat/gats count as touches)
        ("cmd_get", 8),
        ("get_hits", 4),
        ("get_misses", 4),
        ("get_expired", 1),
        ("get_flushed", 1),
        // every storage command that got as far as reading its data,
        // successful or not, except the too-large one
        ("cmd_set", 14),
        ("cmd_flush", 1),
        ("cmd_touch", 5),
        ("delete_hits", 1),
        ("delete_misses", 2),
        ("incr_hits", 1),
        ("incr_misses", 1),
        ("decr_hits", 1),
        ("decr_misses", 1),
        ("cas_hits", 1),
        ("cas_misses", 1),
        ("cas_badval", 1),
        ("touch_hits", 3),
        ("touch_misses", 2),
        ("store_too_large", 1),
        // flushed items stay counted until something touches them
        ("curr_items", 3),
        ("total_items", 9),
        ("curr_connections", 1),
        ("total_connections", 2),
        // more than -R 20 commands arrived in one read
        ("conn_yields", 1),
    ] {
        assert_eq!(stat_u64(&rs, name), want, "reference {name}");
    }
    let ignored: Vec<&str> = IGNORED_STATS.iter().copied().chain(["bytes"]).collect();
    assert_stats_eq("stats after workload", &rs, &ss, &ignored);
}

/// The same workload with memcached's background threads on: names and
/// order of everything, values of everything the background threads do not
/// touch.
#[test]
fn stats_after_workload_default_flags() {
    let p = pair!();
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let w = run_workload(&mut c);
        (w, c.stats(""))
    });
    assert_same("workload", &r.0, &s.0);
    let ignored: Vec<&str> = IGNORED_STATS
        .iter()
        .chain(BACKGROUND_STATS)
        .copied()
        .chain(["bytes"])
        .collect();
    assert_stats_eq("stats after workload", &r.1, &s.1, &ignored);
    assert_eq!(stat_u64(&r.1, "cmd_get"), 8);
}

#[test]
fn stats_on_fresh_server() {
    let p = pair!();
    let (r, s) = p.run(|srv| srv.connect().stats(""));
    assert_stats_eq("fresh stats", &r, &s, IGNORED_STATS);
    let names: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..6],
        &[
            "pid",
            "uptime",
            "time",
            "version",
            "libevent",
            "pointer_size"
        ]
    );
    assert_eq!(names.last(), Some(&"lru_bumps_dropped"));
}

fn settings_for(args: &[&str]) {
    let Some(p) = Pair::start(args) else { return };
    let (r, s) = p.run(|srv| srv.connect().stats("settings"));
    assert_stats_eq(&format!("stats settings {args:?}"), &r, &s, IGNORED_STATS);
}

#[test]
fn stats_settings_defaults() {
    settings_for(&[]);
}

#[test]
fn stats_settings_memory_and_slabs() {
    settings_for(&["-m", "128", "-f", "1.5", "-n", "64", "-I", "2m"]);
    settings_for(&["-m", "1024", "-I", "4m", "-o", "slab_chunk_max=1048576"]);
}

#[test]
fn stats_settings_connections_and_threads() {
    settings_for(&[
        "-c", "500", "-t", "2", "-R", "7", "-b", "128", "-B", "ascii",
    ]);
}

#[test]
fn stats_settings_flags() {
    settings_for(&["-C", "-F", "-X", "-W", "-M", "-A", "-D", "/", "-v"]);
}

#[test]
fn stats_settings_extended_options() {
    settings_for(&[
        "-o",
        "idle_timeout=30,hot_lru_pct=10,warm_lru_pct=30,hot_max_factor=0.5,\
         warm_max_factor=3.0,temporary_ttl=30,hash_algorithm=jenkins,track_sizes,\
         lru_crawler_sleep=50,lru_crawler_tocrawl=10,tail_repair_time=100",
    ]);
    settings_for(&[
        "-o",
        "no_lru_crawler,no_lru_maintainer,no_hashexpand,hashpower=20",
    ]);
    settings_for(&["-o", "modern"]);
    settings_for(&["-o", "no_modern"]);
    settings_for(&[
        "-o",
        "no_maxconns_fast,slab_automove=2,slab_automove_freeratio=0.05",
    ]);
}

/// LRU-segment fields of `stats items`: memcached's LRU maintainer thread
/// moves items between HOT/WARM/COLD in the background, so with it enabled
/// these vary between two runs of memcached itself.
const LRU_SEGMENT_FIELDS: &[&str] = &[
    "number_hot",
    "number_warm",
    "number_cold",
    "age_hot",
    "age_warm",
    "age",
    "moves_to_cold",
    "moves_to_warm",
    "moves_within_lru",
    "hits_to_hot",
    "hits_to_warm",
    "hits_to_cold",
    "hits_to_temp",
    "lrutail_reflocked",
];

/// With the LRU maintainer off (deterministic): layout and totals.
#[test]
fn stats_items_and_slabs_after_sets() {
    items_and_slabs(&["-o", "no_lru_maintainer"], &["mem_requested", "age"]);
}

/// Default flags: everything but the LRU-segment fields.
#[test]
fn stats_items_and_slabs_after_sets_default_flags() {
    let ignored: Vec<&str> = LRU_SEGMENT_FIELDS
        .iter()
        .copied()
        .chain(["mem_requested"])
        .collect();
    items_and_slabs(&[], &ignored);
}

fn items_and_slabs(args: &[&str], ignored_items: &[&str]) {
    let Some(p) = Pair::start(args) else { return };
    let mut conv = Vec::new();
    for (i, len) in [20usize, 45, 72, 108, 152, 208, 280, 368, 1000]
        .into_iter()
        .enumerate()
    {
        for j in 0..=i {
            conv.extend(set_cmd(&format!("k{i}_{j}"), 0, 0, &vec![b'v'; len]));
        }
    }
    conv.extend(b"get k0_0 k1_1 k8_3\r\ndelete k2_0\r\nincr k0_0 1\r\ntouch k3_1 100\r\n");
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let w = c.send(&conv);
        (w, c.stats("items"), c.stats("slabs"))
    });
    assert_same("sets", &r.0, &s.0);
    // memcrab's items are smaller (12-byte header instead of 56), so the same
    // values sit in smaller classes: compare each class's layout (the same
    // fields in the same order) and the totals over all classes.
    assert_eq!(
        class_layouts(&r.1, "items:"),
        class_layouts(&s.1, "items:"),
        "stats items layout"
    );
    assert_eq!(
        class_layouts(&r.2, ""),
        class_layouts(&s.2, ""),
        "stats slabs layout"
    );
    for (field, stats, prefix) in [
        ("number", &(&r.1, &s.1), "items:"),
        ("used_chunks", &(&r.2, &s.2), ""),
        ("get_hits", &(&r.2, &s.2), ""),
        ("cmd_set", &(&r.2, &s.2), ""),
        ("delete_hits", &(&r.2, &s.2), ""),
        ("incr_hits", &(&r.2, &s.2), ""),
        ("touch_hits", &(&r.2, &s.2), ""),
    ] {
        if ignored_items.contains(&field) {
            continue;
        }
        let (a, b) = (
            class_sum(stats.0, prefix, field),
            class_sum(stats.1, prefix, field),
        );
        assert_eq!(a, b, "sum of {prefix}N:{field}: memcached {a}, memcrab {b}");
    }
    assert!(stat(&s.2, "active_slabs").is_some());
    assert!(stat(&s.2, "total_malloced").is_some());
}

/// The field names of one class block (all blocks must agree), and the
/// names of the lines after the class blocks.
fn class_layouts(stats: &Stats, prefix: &str) -> (Vec<String>, Vec<String>) {
    let mut fields: Vec<String> = Vec::new();
    let mut first_class = None;
    let mut tail = Vec::new();
    for (name, _) in stats {
        let Some(rest) = name.strip_prefix(prefix) else {
            tail.push(name.clone());
            continue;
        };
        match rest.split_once(':') {
            Some((class, field)) if class.parse::<u32>().is_ok() => {
                let class = class.to_string();
                if first_class.is_none() {
                    first_class = Some(class.clone());
                }
                if first_class.as_deref() == Some(class.as_str()) {
                    fields.push(field.to_string());
                }
            }
            _ => tail.push(name.clone()),
        }
    }
    (fields, tail)
}

fn class_sum(stats: &Stats, prefix: &str, field: &str) -> u64 {
    stats
        .iter()
        .filter(|(name, _)| {
            name.strip_prefix(prefix)
                .and_then(|r| r.split_once(':'))
                .is_some_and(|(c, f)| c.parse::<u32>().is_ok() && f == field)
        })
        .map(|(_, v)| v.parse::<u64>().unwrap_or(0))
        .sum()
}

#[test]
fn stats_items_and_slabs_empty() {
    let p = pair!();
    p.check(b"stats items\r\n", b"END\r\n");
    p.check(
        b"stats slabs\r\n",
        b"STAT active_slabs 0\r\nSTAT total_malloced 0\r\nEND\r\n",
    );
}

#[test]
fn stats_sizes() {
    let p = pair!();
    p.check(b"stats sizes\r\n", b"STAT sizes_status disabled\r\nEND\r\n");
    let p = pair!("-o", "track_sizes");
    p.check(b"stats sizes\r\n", b"END\r\n");
    // the histogram buckets depend on the item header size: compare the
    // total count only
    let conv = cat(&[
        &set_cmd("a", 0, 0, b"x"),
        &set_cmd("b", 0, 0, &[b'y'; 500]),
        &set_cmd("c", 0, 0, &[b'z'; 510]),
        b"stats sizes\r\n",
    ]);
    let (r, s) = p.run(|srv| srv.converse(&conv));
    let total = |r: &Reply| -> u64 {
        parse_stats(&r.bytes)
            .iter()
            .filter_map(|(_, v)| v.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(total(&r), 3);
    assert_eq!(total(&s), 3);
    assert_reference(
        "stats sizes",
        &r,
        b"STORED\r\nSTORED\r\nSTORED\r\nSTAT 64 1\r\nSTAT 576 2\r\nEND\r\n",
    );
}

#[test]
fn stats_detail() {
    let p = pair!();
    p.steps(&[
        (b"stats detail dump\r\n", b"END\r\n"),
        (b"stats detail on\r\n", b"OK\r\n"),
        (
            b"set user:1 0 0 1\r\na\r\nset user:2 0 0 1\r\nb\r\nset sess:1 0 0 1\r\nc\r\nset plain 0 0 1\r\nd\r\n",
            b"STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n",
        ),
        (
            b"get user:1 user:3 sess:1 plain\r\ndelete user:2\r\ndelete sess:9\r\n",
            b"VALUE user:1 0 1\r\na\r\nVALUE sess:1 0 1\r\nc\r\nVALUE plain 0 1\r\nd\r\nEND\r\nDELETED\r\nNOT_FOUND\r\n",
        ),
        (b"stats detail dump\r\n", b"PREFIX user get 2 hit 1 set 2 del 1\r\nPREFIX sess get 1 hit 1 set 1 del 1\r\nEND\r\n"),
        (b"stats detail off\r\n", b"OK\r\n"),
        (b"get user:1\r\n", b"VALUE user:1 0 1\r\na\r\nEND\r\n"),
        (b"stats detail dump\r\n", b"PREFIX user get 2 hit 1 set 2 del 1\r\nPREFIX sess get 1 hit 1 set 1 del 1\r\nEND\r\n"),
        (b"stats detail\r\n", b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
        (b"stats detail foo\r\n", b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
    ]);
    let (r, s) = p.stats("settings");
    assert_eq!(stat(&r, "detail_enabled"), Some("no"));
    assert_stats_eq("settings", &r, &s, IGNORED_STATS);
}

#[test]
fn stats_detail_with_delimiter_flag() {
    let p = pair!("-D", "/");
    p.steps(&[
        (
            b"set a/1 0 0 1\r\na\r\nset a:2 0 0 1\r\nb\r\nget a/1 a:2\r\n",
            b"STORED\r\nSTORED\r\nVALUE a/1 0 1\r\na\r\nVALUE a:2 0 1\r\nb\r\nEND\r\n",
        ),
        (
            b"stats detail dump\r\n",
            b"PREFIX a get 1 hit 1 set 1 del 0\r\nEND\r\n",
        ),
    ]);
}

#[test]
fn stats_reset() {
    let p = pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        run_workload(&mut c);
        let reset = c.send(b"stats reset\r\n");
        (reset, c.stats(""), c.stats("items"), c.stats("slabs"))
    });
    assert_same("stats reset", &r.0, &s.0);
    assert_reference("stats reset", &r.0, b"RESET\r\n");
    let ignored: Vec<&str> = IGNORED_STATS.iter().copied().chain(["bytes"]).collect();
    assert_stats_eq("stats after reset", &r.1, &s.1, &ignored);
    assert_eq!(stat_u64(&r.1, "cmd_get"), 0);
    assert_eq!(stat_u64(&r.1, "total_items"), 0);
    assert_eq!(stat_u64(&r.1, "total_connections"), 0);
    assert_stats_eq(
        "stats items after reset",
        &r.2,
        &s.2,
        &LRU_SEGMENT_FIELDS
            .iter()
            .copied()
            .chain(["mem_requested"])
            .collect::<Vec<_>>(),
    );
    assert_stats_eq("stats slabs after reset", &r.3, &s.3, &[]);
    p.check(b"stats reset extra\r\n", b"RESET\r\n");
    p.check(b"stats reset noreply\r\n", b"RESET\r\n");
}

#[test]
fn stats_unknown_and_odd_subcommands() {
    let p = pair!();
    p.steps(&[
        (b"stats foo\r\n", b"ERROR\r\n"),
        (b"stats foo bar\r\n", b"ERROR\r\n"),
        (b"STATS\r\n", b"ERROR\r\n"),
        (b"stats cachedump\r\n", b"CLIENT_ERROR bad command line\r\n"),
        (
            b"stats cachedump x\r\n",
            b"CLIENT_ERROR bad command line\r\n",
        ),
        (
            b"stats cachedump 99 1\r\n",
            b"CLIENT_ERROR Illegal slab id\r\n",
        ),
        (b"stats cachedump 1 1\r\n", b"END\r\n"),
        (b"stats cachedump 0 1\r\n", b"END\r\n"),
        (
            b"stats cachedump 1\r\n",
            b"CLIENT_ERROR bad command line\r\n",
        ),
        (b"stats extstore\r\n", b"END\r\n"),
        (
            b"stats sizes extra\r\n",
            b"STAT sizes_status disabled\r\nEND\r\n",
        ),
        (
            b"stats slabs extra\r\n",
            b"STAT active_slabs 0\r\nSTAT total_malloced 0\r\nEND\r\n",
        ),
        (b"stats items extra\r\n", b"END\r\n"),
        // (`stats cachedump` of a class holding items is not compared: the
        // result depends on when memcached's LRU maintainer thread moves
        // them to COLD)
    ]);
    // sub-commands ignore extra arguments
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let settings = parse_stats(&c.send(b"stats settings extra\r\n").bytes);
        let conns = c.send(b"stats conns extra\r\n");
        (settings, conns)
    });
    assert_stats_eq("stats settings extra", &r.0, &s.0, IGNORED_STATS);
    assert!(stat(&r.0, "maxbytes").is_some());
    assert!(r.1.text().starts_with("STAT ") && s.1.text().starts_with("STAT "));
}

/// `stats` followed by blanks is plain `stats`.
#[test]
fn stats_with_trailing_blanks() {
    let p = pair!();
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        parse_stats(&c.send(b"stats   \r\n").bytes)
    });
    assert_stats_eq("stats with blanks", &r, &s, IGNORED_STATS);
    assert!(stat(&r, "cmd_get").is_some());
}

#[test]
fn stats_cachedump_disabled_with_capital_x() {
    let p = pair!("-X");
    p.steps(&[
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (
            b"stats cachedump 1 1\r\n",
            b"CLIENT_ERROR stats cachedump not allowed\r\n",
        ),
    ]);
}

/// `stats conns`: one block per connection (listener included) keyed by fd.
/// File descriptor numbers and ports differ between servers, so fds are
/// renumbered in order of appearance and addresses have their port masked.
#[test]
fn stats_conns_structure() {
    let p = pair!();
    let normalize = |stats: Stats| -> Vec<(String, String)> {
        let mut fds: Vec<String> = Vec::new();
        stats
            .into_iter()
            .map(|(name, value)| {
                let (fd, field) = name.split_once(':').unwrap_or(("", &name));
                let idx = match fds.iter().position(|f| f == fd) {
                    Some(i) => i,
                    None => {
                        fds.push(fd.to_string());
                        fds.len() - 1
                    }
                };
                let value = if field.ends_with("addr") {
                    match value.rsplit_once(':') {
                        Some((head, _port)) => format!("{head}:<port>"),
                        None => value,
                    }
                } else {
                    value
                };
                (format!("{idx}:{field}"), value)
            })
            .collect()
    };
    let (r, s) = p.run(|srv| {
        let mut idle = srv.connect();
        idle.send(b"get x\r\n");
        let mut c = srv.connect();
        normalize(c.stats("conns"))
    });
    assert_stats_eq("stats conns", &r, &s, &["secs_since_last_cmd"]);
    let fields: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        fields,
        [
            "0:addr",
            "0:state",
            "0:secs_since_last_cmd",
            "1:addr",
            "1:listen_addr",
            "1:state",
            "1:secs_since_last_cmd",
            "2:addr",
            "2:listen_addr",
            "2:state",
            "2:secs_since_last_cmd",
        ]
    );
}
