//! Connection handling and administrative commands: -c limit, idle
//! timeout, shutdown, cache_memlimit, slabs reassign/automove, lru_crawler.

use std::thread::sleep;
use std::time::{Duration, Instant};

use protocol_tests::*;

/// How many concurrent connections the server accepts, and the bytes a
/// rejected one receives.
fn accepted_connections(srv: &Server, attempts: usize) -> (usize, Vec<Reply>, Vec<Conn>) {
    let mut open = Vec::new();
    let mut rejected = Vec::new();
    for _ in 0..attempts {
        let mut c = srv.connect();
        let r = c.send(b"");
        if !r.closed && !r.timed_out {
            open.push(c);
        } else {
            rejected.push(r);
        }
    }
    (open.len(), rejected, open)
}

/// memcached 1.6.18 refuses a client whose descriptor number would be
/// -c - 1 or more, so how many it admits depends on the descriptors it
/// opened itself (3 + 4 per thread + listeners) and on those it inherited
/// (16 with -c 40 and 4 threads when nothing is inherited, 15 when the
/// environment leaves one more open below 39). memcrab counts the same way,
/// so the test measures memcached's number and requires memcrab's to match.
#[test]
fn connection_limit() {
    let p = pair!("-c", "40");
    let (r, s) = p.run(|srv| {
        let (n, rejected, mut open) = accepted_connections(srv, 30);
        // freeing one slot lets a new client in again
        drop(open.pop());
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut again = loop {
            let mut c = srv.connect();
            let r = c.send(b"");
            if !r.closed || Instant::now() > deadline {
                break (r, c);
            }
            sleep(Duration::from_millis(50));
        };
        let stats = again.1.stats("");
        drop(open);
        (n, rejected, again.0, stats)
    });
    assert!(
        (14..=17).contains(&r.0),
        "memcached 1.6.18 with -c 40 accepted {} clients",
        r.0
    );
    assert_eq!(s.0, r.0, "accepted connections with -c 40");
    for (side, rejected) in [("memcached", &r.1), ("memcrab", &s.1)] {
        assert_eq!(rejected.len(), 30 - r.0, "{side}");
        for rep in rejected {
            // the message may be lost if the reset overtakes it, never wrong
            assert!(
                rep.closed
                    && (rep.bytes.is_empty()
                        || rep.bytes == b"ERROR Too many open connections\r\n"),
                "{side}: {}",
                rep.render()
            );
        }
        assert!(
            rejected
                .iter()
                .any(|r| r.bytes == b"ERROR Too many open connections\r\n"),
            "{side}: no rejected client got the error line"
        );
    }
    assert!(
        !r.2.closed && !s.2.closed,
        "{} / {}",
        r.2.render(),
        s.2.render()
    );
    for name in ["max_connections", "curr_connections"] {
        assert_eq!(stat(&s.3, name), stat(&r.3, name), "{name}");
    }
    // (retries while the freed slot is being noticed may add rejections)
    for (side, st) in [("memcached", &r.3), ("memcrab", &s.3)] {
        assert!(
            stat_u64(st, "rejected_connections") >= (30 - r.0) as u64,
            "{side}"
        );
    }
    assert_eq!(stat(&r.3, "max_connections"), Some("40"));
}

/// Wall clock: ~5 s. -o idle_timeout=2 closes clients idle for more than
/// 2 s (memcached checks about once a second), without a message.
#[test]
fn idle_timeout_closes_idle_clients() {
    let p = pair!("-o", "idle_timeout=2");
    let (r, s) = p.run(|srv| {
        let mut idle = srv.connect();
        let first = idle.send(b"");
        let mut busy = srv.connect();
        let mut busy_replies = Vec::new();
        for _ in 0..10 {
            sleep(Duration::from_millis(500));
            busy_replies.push(busy.send(b"get k\r\n"));
        }
        let idle_end = idle.read_to_eof(Duration::from_secs(2));
        let stats = busy.stats("");
        (first, busy_replies, idle_end, stats)
    });
    for (side, (first, busy, idle_end, stats)) in [("memcached", &r), ("memcrab", &s)] {
        assert!(!first.closed, "{side}");
        for b in busy {
            assert_eq!(b.bytes, b"END\r\n", "{side}: busy client: {}", b.render());
            assert!(!b.closed, "{side}: busy client closed");
        }
        assert!(
            idle_end.closed && idle_end.bytes.is_empty(),
            "{side}: idle client: {}",
            idle_end.render()
        );
        assert_eq!(stat_u64(stats, "idle_kicks"), 1, "{side}");
    }
    assert_stats_eq(
        "stats with idle_timeout",
        &r.3,
        &s.3,
        &IGNORED_STATS
            .iter()
            .chain(BACKGROUND_STATS)
            .copied()
            .collect::<Vec<_>>(),
    );
}

#[test]
fn shutdown_not_enabled() {
    let p = pair!();
    p.steps(&[
        (b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n"),
        (b"shutdown graceful\r\n", b"ERROR: shutdown not enabled\r\n"),
        (b"shutdown foo\r\n", b"ERROR: shutdown not enabled\r\n"),
        (b"shutdown noreply\r\n", b"ERROR: shutdown not enabled\r\n"),
        (b"SHUTDOWN\r\n", b"ERROR\r\n"),
    ]);
}

#[test]
fn shutdown_with_capital_a() {
    for cmd in [&b"shutdown\r\n"[..], b"shutdown graceful\r\n"] {
        let Some(mut p) = Pair::start(&["-A"]) else {
            return;
        };
        p.steps(&[
            (
                b"shutdown foo\r\n",
                b"CLIENT_ERROR invalid shutdown mode\r\n",
            ),
            (
                b"shutdown noreply\r\n",
                b"CLIENT_ERROR invalid shutdown mode\r\n",
            ),
            (
                b"shutdown graceful x\r\n",
                b"CLIENT_ERROR invalid shutdown mode\r\n",
            ),
        ]);
        let r = p.diff(cmd);
        assert!(r.closed && r.bytes.is_empty(), "{}", r.render());
        let (rs, ss) = p.run_mut(|srv| {
            let status = srv.wait_exit(Duration::from_secs(5));
            (status.and_then(|s| s.code()), srv.port())
        });
        assert_eq!(
            rs.0,
            Some(0),
            "memcached exit status after {}",
            describe(cmd)
        );
        assert_eq!(ss.0, rs.0, "memcrab exit status after {}", describe(cmd));
        for port in [rs.1, ss.1] {
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
                "port {port} still open after shutdown"
            );
        }
    }
}

#[test]
fn cache_memlimit() {
    let p = pair!();
    p.steps(&[
        (b"cache_memlimit 100\r\n", b"OK\r\n"),
        (b"cache_memlimit 100 noreply\r\n", b""),
        (b"cache_memlimit\r\n", b"ERROR\r\n"),
        (b"cache_memlimit abc\r\n", b"ERROR\r\n"),
        (
            b"cache_memlimit 0\r\n",
            b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
        ),
        (
            b"cache_memlimit 1\r\n",
            b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
        ),
        (
            b"cache_memlimit 7\r\n",
            b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
        ),
        (b"cache_memlimit 8\r\n", b"OK\r\n"),
        (b"cache_memlimit -5\r\n", b"ERROR\r\n"),
        (b"cache_memlimit 100 200\r\n", b"OK\r\n"),
        (b"cache_memlimit 4096\r\n", b"OK\r\n"),
    ]);
    let (r, s) = p.stats("");
    assert_eq!(stat(&r, "limit_maxbytes"), Some("4294967296"));
    assert_eq!(stat(&s, "limit_maxbytes"), stat(&r, "limit_maxbytes"));
    let (r, s) = p.stats("settings");
    assert_stats_eq("settings after cache_memlimit", &r, &s, IGNORED_STATS);
}

#[test]
fn slabs_reassign_and_automove() {
    let p = pair!();
    p.steps(&[
        (
            b"slabs reassign 1 2\r\n",
            b"NOSPARE source class has no spare pages\r\n",
        ),
        (
            b"slabs reassign 99 2\r\n",
            b"BADCLASS invalid src or dst class id\r\n",
        ),
        (
            b"slabs reassign -1 1\r\n",
            b"BADCLASS invalid src or dst class id\r\n",
        ),
        (
            b"slabs reassign 1 1\r\n",
            b"SAME src and dst class are identical\r\n",
        ),
        (
            b"slabs reassign 0 1\r\n",
            b"NOSPARE source class has no spare pages\r\n",
        ),
        (
            b"slabs reassign a b\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"slabs reassign 1\r\n", b"ERROR\r\n"),
        (b"slabs reassign 1 2 noreply\r\n", b"ERROR\r\n"),
        (b"slabs automove 0\r\n", b"OK\r\n"),
        (b"slabs automove 1\r\n", b"OK\r\n"),
        (b"slabs automove 2\r\n", b"OK\r\n"),
        (b"slabs automove 3\r\n", b"ERROR\r\n"),
        (
            b"slabs automove x\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"slabs automove 1 noreply\r\n", b""),
        (b"slabs automove\r\n", b"ERROR\r\n"),
        (b"slabs\r\n", b"ERROR\r\n"),
        (b"slabs foo\r\n", b"ERROR\r\n"),
    ]);
    let (r, s) = p.stats("settings");
    assert_stats_eq("settings after slabs automove", &r, &s, IGNORED_STATS);
}

#[test]
fn lru_crawler_commands() {
    let p = pair!();
    // one command per round trip: the crawler runs in the background and a
    // second `crawl` while the first runs answers BUSY
    p.steps(&[
        (b"lru_crawler\r\n", b"ERROR\r\n"),
        (b"lru_crawler foo\r\n", b"ERROR\r\n"),
        (b"lru_crawler crawl\r\n", b"ERROR\r\n"),
        (b"lru_crawler crawl 0\r\n", b"BADCLASS invalid class id\r\n"),
        (
            b"lru_crawler crawl 64\r\n",
            b"BADCLASS invalid class id\r\n",
        ),
        (b"lru_crawler crawl x\r\n", b"BADCLASS invalid class id\r\n"),
        (b"lru_crawler crawl 1 2\r\n", b"ERROR\r\n"),
        (b"lru_crawler tocrawl 10\r\n", b"OK\r\n"),
        (
            b"lru_crawler tocrawl x\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"lru_crawler sleep 100\r\n", b"OK\r\n"),
        (
            b"lru_crawler sleep 2000000\r\n",
            b"CLIENT_ERROR sleep must be one second or less\r\n",
        ),
        (
            b"lru_crawler sleep x\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"lru_crawler mgdump 1\r\n", b"ERROR\r\n"),
        (b"lru_crawler metadump\r\n", b"ERROR\r\n"),
    ]);
    let (r, s) = p.stats("settings");
    assert_stats_eq("settings after lru_crawler", &r, &s, IGNORED_STATS);
    assert_eq!(stat(&r, "lru_crawler_tocrawl"), Some("10"));
}

#[test]
fn lru_crawler_crawl_and_toggle() {
    let p = pair!();
    p.steps(&[(b"lru_crawler crawl 1\r\n", b"OK\r\n")]);
    sleep(Duration::from_millis(300));
    p.steps(&[(b"lru_crawler crawl 1,2\r\n", b"OK\r\n")]);
    sleep(Duration::from_millis(300));
    p.steps(&[(b"lru_crawler crawl all\r\n", b"OK\r\n")]);
    sleep(Duration::from_millis(300));
    p.steps(&[
        (b"lru_crawler disable\r\n", b"OK\r\n"),
        (b"lru_crawler disable\r\n", b"OK\r\n"),
    ]);
    let (r, s) = p.stats("settings");
    assert_eq!(stat(&r, "lru_crawler"), Some("no"));
    assert_stats_eq("settings, crawler disabled", &r, &s, IGNORED_STATS);
    sleep(Duration::from_millis(300));
    p.steps(&[
        (b"lru_crawler enable\r\n", b"OK\r\n"),
        (
            b"lru_crawler enable\r\n",
            b"ERROR failed to start lru crawler thread\r\n",
        ),
    ]);
}

/// `lru_crawler metadump` streams until END and must not be pipelined with
/// other commands, so it is sent alone.
#[test]
fn lru_crawler_metadump_empty_cache() {
    let p = pair!();
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        c.write_raw(b"lru_crawler metadump all\r\n");
        let dump = c.read_until_suffix(b"END\r\n", REPLY_TIMEOUT);
        let after = c.send(b"get a\r\n");
        (dump, after)
    });
    assert_same("metadump", &r.0, &s.0);
    assert_reference("metadump", &r.0, b"END\r\n");
    assert_same("after metadump", &r.1, &s.1);
    assert_reference("after metadump", &r.1, b"END\r\n");
}
