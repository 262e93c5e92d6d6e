//! Adversarial clients: malformed sizes, oversized values, over-long lines,
//! bad keys, clients that never read, trickle a byte at a time, half-close
//! or vanish, too many connections, and readers that stall on large values.
//!
//! Every case checks three things:
//!
//! * the answer is memcached's, byte for byte, where memcached's answer is
//!   deterministic (otherwise: the connection is closed, as memcached does);
//! * other clients are unaffected: a second connection still stores and
//!   reads a value ([`assert_serving`]);
//! * memcrab's memory stays bounded: its peak RSS (`VmHWM` in
//!   `/proc/PID/status`) grows by less than the bound the case documents.
//!
//! Memory bounds come from the connection code (`src/server/connection.rs`,
//! `src/protocol/text/mod.rs`, `src/protocol/text/storage.rs`): a
//! connection holds one read buffer (16 KiB, or what its pending command
//! needs: its line, and a data block under 16 KiB or of an
//! `append`/`prepend`; larger blocks are read straight into their item,
//! inside `-m`), and stops reading while more than `OUT_HIGH_WATER`
//! (1 MiB) of output waits for the client, so its output buffer holds at
//! most 1 MiB plus one reply (one value of at most `-I`). A client that
//! does not read therefore costs at most about `-I` + 1 MiB + 64 KiB; the
//! rest waits in the kernel's socket buffers (not in RSS) and at the
//! client. docs/security.md lists every limit.
//!
//! Wall time: ~7 s on the 2-core machine (the slowloris case trickles for
//! ~3 s; both servers run each case at the same time).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use protocol_tests::*;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// Helpers

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Current RSS in bytes.
fn rss(srv: &Server) -> u64 {
    status_kib(srv.pid(), "VmRSS") * KIB
}

/// Peak RSS in bytes since the server started.
fn peak_rss(srv: &Server) -> u64 {
    status_kib(srv.pid(), "VmHWM") * KIB
}

/// Assert memcrab's peak RSS grew by at most `bound` bytes over `base`
/// (for the reference, only print it: memcached's memory is not ours to
/// bound).
fn assert_peak_within(srv: &Server, base: u64, bound: u64, what: &str) {
    let peak = peak_rss(srv);
    let grew = peak.saturating_sub(base);
    eprintln!(
        "{what}: {} peak RSS {} KiB, {} KiB over the {} KiB before the case (bound {} KiB)",
        srv.side.name(),
        peak / KIB,
        grew / KIB,
        base / KIB,
        bound / KIB
    );
    if srv.side == Side::Subject {
        assert!(
            grew <= bound,
            "{what}: memcrab's peak RSS grew by {} KiB (bound {} KiB)",
            grew / KIB,
            bound / KIB
        );
    }
}

static PROBES: AtomicUsize = AtomicUsize::new(0);

/// Another client is unaffected: a fresh connection stores a value and
/// reads it back, byte for byte.
fn assert_serving(srv: &Server, what: &str) {
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let key = format!("probe-{n}");
    let value = format!("value-{n}");
    let mut c = srv.connect();
    let r = c.send(&cat(&[
        &set_cmd(&key, 7, 0, value.as_bytes()),
        format!("get {key}\r\n").as_bytes(),
    ]));
    let expected = format!(
        "STORED\r\nVALUE {key} 7 {}\r\n{value}\r\nEND\r\n",
        value.len()
    );
    assert!(
        !r.closed && !r.timed_out && r.bytes == expected.as_bytes(),
        "{what}: {} stopped serving other clients: {}",
        srv.side.name(),
        r.render()
    );
}

/// A raw TCP connection with generous timeouts (for clients that do not
/// follow the request/reply rhythm of [`Conn`]).
fn raw(srv: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", srv.port()))
        .unwrap_or_else(|e| panic!("connect {}: {e}", srv.side.name()));
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Read exactly `expected.len()` bytes and compare them with `expected`
/// as they arrive (without keeping them): the number of bytes that
/// matched before a difference, EOF or `timeout`.
fn read_matching(s: &mut TcpStream, expected: &[u8], timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = 0;
    while at < expected.len() && Instant::now() < deadline {
        let want = buf.len().min(expected.len() - at);
        match s.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => {
                if buf[..n] != expected[at..at + n] {
                    let off = buf[..n]
                        .iter()
                        .zip(&expected[at..])
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    return at + off;
                }
                at += n;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    at
}

/// `curr_connections` seen from a fresh connection (which counts itself).
fn curr_connections(srv: &Server) -> u64 {
    stat_u64(&srv.stats(""), "curr_connections")
}

/// `curr_connections` once earlier clients' closes have been noticed
/// (two equal readings 100 ms apart).
fn settled_connections(srv: &Server) -> u64 {
    let mut last = curr_connections(srv);
    for _ in 0..50 {
        sleep(Duration::from_millis(100));
        let now = curr_connections(srv);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// Wait until `curr_connections` is back to `want` or below (bounded).
fn wait_connections(srv: &Server, want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = curr_connections(srv);
        if now <= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} still has {now} connections, expected {want}",
            srv.side.name()
        );
        sleep(Duration::from_millis(50));
    }
}

/// `VALUE <key> <flags> <len>\r\n<data>\r\n`
fn value_reply(key: &str, flags: u32, data: &[u8]) -> Vec<u8> {
    let mut v = format!("VALUE {key} {flags} {}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

/// A value whose every byte depends on its position (so shifted or
/// spliced replies are caught).
fn patterned(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i / 7 + seed as usize) % 26) as u8)
        .collect()
}

// ---------------------------------------------------------------------------
// Declared sizes and numbers

/// Declared data sizes of 2^32, 2^64, negative and non-numeric: memcached's
/// answer byte for byte (its 64-bit `strtol` cut to the 32-bit length, so
/// 2^32 + 1 reads as 1), then the data block parsed as commands or
/// swallowed exactly as memcached does.
#[test]
fn declared_sizes_out_of_range() {
    let p = pair!();
    let base = rss(&p.subject);
    let sizes = [
        "4294967296",           // 2^32: reads as 0
        "4294967297",           // 2^32 + 1: reads as 1
        "4294967301",           // 2^32 + 5: reads as 5
        "18446744073709551615", // 2^64 - 1
        "18446744073709551616", // 2^64
        "36893488147419103232", // 2^65
        "9223372036854775807",  // 2^63 - 1
        "9223372036854775808",  // 2^63
        "-9223372036854775808",
        "-4294967291", // -(2^32) + 5: reads as 5
        "-1",
        "-0",
        "-2147483648",
        "2147483647", // INT_MAX: + 2 would overflow
        "2147483646",
        "abc",
        "5x",
        "0x5",
        "5.0",
        "+5",
        " 5",
        "05",
        "",
    ];
    for size in sizes {
        for cmd in ["set", "add", "append", "cas"] {
            let cas = if cmd == "cas" { " 1" } else { "" };
            let conv = format!("{cmd} k 0 0 {size}{cas}\r\nhello\r\nget k\r\n");
            p.diff(conv.as_bytes());
        }
        // noreply: nothing but what the data block parses as
        p.diff(format!("set k 0 0 {size} noreply\r\nhello\r\nget k\r\n").as_bytes());
    }
    // Sizes just below 2^31 pass the length check but are "too large":
    // both servers swallow the next 2^31 bytes, so what follows the line
    // disappears. (Timing differs, not bytes: memcached sends the error
    // line once the whole block has been swallowed, memcrab at once; the
    // byte streams are the same.)
    for size in ["2147483645", "2147483000", "1073741824"] {
        let conv = format!("set k 0 0 {size}\r\nhello\r\nget k\r\n");
        let (r, s) = p.run(|srv| {
            let mut c = srv.connect();
            c.write_raw(conv.as_bytes());
            let first = c.read_until_suffix(b"\r\n", Duration::from_millis(1500));
            // Nothing else comes: the rest is being swallowed.
            c.write_raw(b"get k\r\n");
            let more = c.read_until_suffix(b"END\r\n", Duration::from_millis(300));
            (first, more)
        });
        assert!(
            r.0.bytes.is_empty() && r.0.timed_out,
            "{conv}: {}",
            r.0.render()
        );
        assert!(
            s.0.bytes == b"SERVER_ERROR object too large for cache\r\n"
                || (s.0.bytes.is_empty() && s.0.timed_out),
            "{conv}: {}",
            s.0.render()
        );
        assert!(
            r.1.bytes.is_empty() && s.1.bytes.is_empty(),
            "{conv}: not swallowed"
        );
    }
    // Other numbers: flags, exptime, cas unique, deltas, touch and gat times.
    let numbers = [
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "-4294967296",
        "abc",
        "1e3",
    ];
    for n in numbers {
        p.diff(format!("set k {n} 0 1\r\nx\r\ngets k\r\n").as_bytes());
        p.diff(format!("set k 0 {n} 1\r\nx\r\nget k\r\n").as_bytes());
        p.diff(format!("set k 0 0 1\r\n5\r\ncas k 0 0 1 {n}\r\ny\r\nget k\r\n").as_bytes());
        p.diff(format!("set k 0 0 1\r\n5\r\nincr k {n}\r\ndecr k {n}\r\n").as_bytes());
        p.diff(format!("set k 0 0 1\r\nx\r\ntouch k {n}\r\ngat {n} k\r\n").as_bytes());
        p.diff(format!("verbosity {n}\r\nflush_all {n}\r\nget k\r\n").as_bytes());
    }
    for srv in p.servers() {
        assert_serving(srv, "after out-of-range numbers");
    }
    // Memory does not follow the declared sizes.
    assert_peak_within(&p.subject, base, 16 * MIB, "declared sizes");
}

/// Values around `-I`: the largest value that fits is stored, one byte
/// more is `SERVER_ERROR object too large for cache` (and `set` drops the
/// old value); both for -I 1m (the default) and -I 64k.
#[test]
fn values_around_item_size_max() {
    for (args, max) in [
        (&[][..], 1024 * 1024),
        (&["-I", "64k", "-o", "slab_chunk_max=32768"][..], 64 * 1024),
    ] {
        let Some(p) = Pair::start(args) else {
            return;
        };
        let base = rss(&p.subject);
        // memcached's item size: 48-byte header, key + NUL, value + CRLF,
        // 8-byte CAS; for key "k" and flags 0, the largest value is max - 60.
        let largest = max - 60;
        for len in [largest - 1, largest, largest + 1, max - 1, max, max + 1] {
            let value = patterned(len, len as u8);
            let mut conv = set_cmd("k", 0, 0, b"old");
            conv.extend(set_cmd("k", 0, 0, &value));
            conv.extend(b"get k\r\n");
            let r = p.diff(&conv);
            let ok = cat(&[
                b"STORED\r\nSTORED\r\n",
                &value_reply("k", 0, &value),
                b"END\r\n",
            ]);
            let too_large = b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n";
            let expected: &[u8] = if len <= largest { &ok } else { too_large };
            assert_reference(&format!("{len}-byte value with -I {max}"), &r, expected);
            // The same with add / append: error, old value kept.
            let mut conv = set_cmd("k", 0, 0, b"old");
            conv.extend(storage_cmd("append", "k", 0, 0, &value));
            conv.extend(b"get k\r\n");
            p.diff(&conv);
        }
        // One byte over -I, trickled in 4 KiB pieces: the data is
        // swallowed as it comes, never buffered whole.
        let value = patterned(max + 1, 3);
        let conv = cat(&[&set_cmd("k", 0, 0, &value), b"get k\r\n"]);
        let r = p.diff_with(&conv, Delivery::Chunks(16 * 1024));
        assert_reference(
            "-I + 1 in pieces",
            &r,
            b"SERVER_ERROR object too large for cache\r\nEND\r\n",
        );
        for srv in p.servers() {
            assert_serving(srv, "after values around -I");
        }
        // a few -I sized buffers at most (the value travels once in
        // each direction)
        assert_peak_within(
            &p.subject,
            base,
            4 * max as u64 + 8 * MIB,
            "values around -I",
        );
    }
}

// ---------------------------------------------------------------------------
// Lines

/// Lines past 2048 bytes: without a newline a non-get line closes the
/// connection as soon as more than 2048 bytes are buffered, also when it
/// trickles in; a line over 16 KiB closes even with its newline; a get
/// line of any length up to memcrab's 4 MiB is served.
#[test]
fn long_lines() {
    let p = pair!();
    let base = rss(&p.subject);
    // without a newline, in 256-byte pieces: closed once past 2048 bytes
    for line in [
        vec![b'x'; 3000],
        cat(&[b"set k 0 0 1 ", &[b'1'; 3000]]),
        cat(&[b"delete ", &[b'k'; 3000]]),
        cat(&[b"gat 0 ", &[b'k'; 3000]]),
    ] {
        let (r, s) = p.run(|srv| {
            let mut c = srv.connect();
            for piece in line.chunks(256) {
                c.write_raw(piece);
                sleep(Duration::from_millis(5));
            }
            let end = c.read_to_eof(REPLY_TIMEOUT);
            assert_serving(srv, "after a long line");
            end
        });
        let what = describe(&line);
        assert_same(&what, &r, &s);
        assert!(r.closed && r.bytes.is_empty(), "{what}: {}", r.render());
    }
    // with the newline, in one write
    for n in [2049, 8192, 16 * 1024 - 2, 16 * 1024 + 1, 64 * 1024] {
        let line = cat(&[&vec![b'x'; n], b"\r\n"]);
        let r = p.diff(&line);
        assert!(
            r.bytes == b"ERROR\r\n" || (r.closed && r.bytes.is_empty()),
            "{n}-byte line: {}",
            r.render()
        );
    }
    // get lines: many keys, 256 KiB, answered as memcached answers
    let keys: String = (0..20_000).map(|i| format!(" key-{i}")).collect();
    let conv = cat(&[
        &set_cmd("key-19999", 3, 0, b"last"),
        b"get",
        keys.as_bytes(),
        b"\r\n",
    ]);
    let r = p.diff(&conv);
    assert_reference(
        "20000-key get",
        &r,
        b"STORED\r\nVALUE key-19999 3 4\r\nlast\r\nEND\r\n",
    );
    for srv in p.servers() {
        assert_serving(srv, "after long lines");
    }
    assert_peak_within(&p.subject, base, 16 * MIB, "long lines");
}

/// memcrab bounds a multi-get line at 4 MiB (memcached does not): a get
/// line that keeps growing without a newline is closed once past 4 MiB,
/// and memcrab's memory does not follow it.
#[test]
fn endless_get_line_is_cut_at_4_mib() {
    let Some((_, subject)) = binaries() else {
        return;
    };
    let srv = Server::start(&subject, Side::Subject, &[]);
    let base = rss(&srv);
    let mut s = raw(&srv);
    let chunk: Vec<u8> = b" k".repeat(32 * 1024);
    s.write_all(b"get").unwrap();
    let mut sent = 3usize;
    let mut closed = false;
    // up to 16 MiB: memcrab must have closed long before
    while sent < 16 * MIB as usize {
        match s.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            // not reading any more, but not closed either
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    if !closed {
        // the writes may all have fit the socket buffers: look for EOF
        let mut buf = [0u8; 64];
        closed = match s.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        };
    }
    assert!(closed, "a {sent}-byte get line without newline was not cut");
    assert!(
        sent >= 4 * MIB as usize,
        "closed after only {sent} bytes (limit 4 MiB)"
    );
    assert_serving(&srv, "after an endless get line");
    assert_peak_within(&srv, base, 24 * MIB, "endless get line");
}

// ---------------------------------------------------------------------------
// Keys

/// 250- and 251-byte keys with every command, and keys with control
/// characters and high bytes: memcached's answers byte for byte. Only the
/// space and `\n` (and a `\r` before it) separate tokens; every other byte
/// is part of the key.
#[test]
fn long_keys_and_control_characters() {
    let p = pair!();
    let base = rss(&p.subject);
    for len in [250, 251, 300, 2000] {
        let k = "k".repeat(len);
        let conv = [
            set_cmd(&k, 0, 0, b"v"),
            storage_cmd("add", &k, 0, 0, b"v"),
            storage_cmd("replace", &k, 0, 0, b"w"),
            storage_cmd("append", &k, 0, 0, b"a"),
            storage_cmd("prepend", &k, 0, 0, b"p"),
            format!("cas {k} 0 0 1 1\r\nc\r\n").into_bytes(),
            format!("get {k}\r\ngets {k}\r\ngat 0 {k}\r\ngats 0 {k}\r\n").into_bytes(),
            format!("get a {k} b\r\n").into_bytes(),
            format!("touch {k} 0\r\nincr {k} 1\r\ndecr {k} 1\r\ndelete {k}\r\n").into_bytes(),
        ]
        .concat();
        p.diff(&conv);
    }
    let specials: Vec<u8> = [0x01, 0x07, 0x08, b'\t', 0x0b, 0x0c, b'\r', 0x1b, 0x7f]
        .into_iter()
        .chain([0x80, 0xc3, 0xfe, 0xff])
        .collect();
    for &c in &specials {
        let key = [b'a', c, b'b'];
        let conv = cat(&[
            b"set ",
            &key,
            b" 0 0 1\r\nx\r\nget ",
            &key,
            b"\r\nget a\r\nget ab\r\ngets ",
            &key,
            b" a",
            &key,
            b"\r\ndelete ",
            &key,
            b"\r\nget ",
            &key,
            b"\r\n",
        ]);
        p.diff(&conv);
        // the byte at the end of the key (just before "\r\n")
        let conv = cat(&[
            b"set z",
            &[c],
            b" 0 0 1\r\nx\r\nget z",
            &[c],
            b"\r\nget z\r\n",
        ]);
        p.diff(&conv);
        // and as the whole key
        let conv = cat(&[b"set ", &[c], b" 0 0 1\r\nx\r\nget ", &[c], b"\r\n"]);
        p.diff(&conv);
    }
    // a 250-byte key made of control characters and high bytes
    let key: Vec<u8> = (0..250u32)
        .map(|i| [0x01, 0x7f, 0x80, 0xff, b'\t'][i as usize % 5])
        .collect();
    p.diff(&cat(&[
        b"set ",
        &key,
        b" 0 0 2\r\nhi\r\nget ",
        &key,
        b"\r\n",
    ]));
    for srv in p.servers() {
        assert_serving(srv, "after odd keys");
    }
    assert_peak_within(&p.subject, base, 8 * MIB, "odd keys");
}

/// memcached reads a command line as a C string: a NUL byte ends it (the
/// rest of the line, up to the newline, is ignored; a data block still
/// follows the newline). memcrab keeps the NUL inside the token, so it
/// stores keys memcached can never store and rejects lines memcached
/// accepts. Recorded replies are memcached 1.6.18's.
#[test]
fn nul_ends_a_command_line() {
    let p = pair!();
    let base = rss(&p.subject);
    p.steps(&[
        // the key "a\0b": memcached sees "set a" (ERROR), then "x" (ERROR)
        (
            b"set a\x00b 0 0 1\r\nx\r\nget a\r\n",
            b"ERROR\r\nERROR\r\nEND\r\n",
        ),
        // junk after a NUL is ignored
        (
            b"set k 0 0 1\x00junk\r\nx\r\nget k\r\n",
            b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n",
        ),
        (b"get k\x00 zzz\r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n"),
        (b"get zzz \x00k\r\n", b"END\r\n"),
        (b"\x00set k 0 0 1\r\nx\r\n", b"ERROR\r\nERROR\r\n"),
        (b"delete k\x00\r\nget k\r\n", b"DELETED\r\nEND\r\n"),
        // a binary key (base64 in meta commands) that starts with a NUL:
        // classic get cannot name it in memcached
        (b"ms AAEC 2 b\r\nhi\r\n", b"HD\r\n"),
        (b"get \x00\x01\x02\r\n", b"ERROR\r\n"),
        // "noreply\0" is noreply
        (
            b"set q 0 0 1 noreply\x00\r\nx\r\nget q\r\n",
            b"VALUE q 0 1\r\nx\r\nEND\r\n",
        ),
    ]);
    assert_peak_within(&p.subject, base, 8 * MIB, "NUL bytes");
}

/// `stats detail on` is open to every client, and then every command on a
/// key with a prefix (`prefix:rest`) updates that prefix's counters. The
/// cost of that update must not grow with the number of prefixes: a client
/// that creates many distinct prefixes must not slow every other command
/// down (memcached hashes prefixes: ~2 us per set with 50,000 prefixes).
/// memcrab scans a list under one global lock: 658 us per set with 50,000
/// prefixes, and creating them is quadratic (31 s against memcached's 3 s).
/// Measured as a ratio of the same work with 10 and with 20,000 prefixes,
/// each the best of 3 runs of 5,000 sets.
#[test]
fn many_detail_prefixes_stay_cheap() {
    let p = pair!();
    p.run(|srv| {
        let mut c = srv.connect();
        assert_eq!(c.send(b"stats detail on\r\n").bytes, b"OK\r\n");
        // sets on the most recently created prefix: the worst case for a
        // list searched in creation order
        let sets = |c: &mut Conn, prefix: &str, n: usize| -> Duration {
            let batch = format!("set {prefix}:k 0 0 1 noreply\r\nx\r\n").repeat(n);
            let t = Instant::now();
            let r = c.send(batch.as_bytes());
            assert!(
                !r.closed && !r.timed_out && r.bytes.is_empty(),
                "{}",
                r.render()
            );
            t.elapsed()
        };
        let best = |c: &mut Conn, prefix: &str| -> Duration {
            (0..3).map(|_| sets(c, prefix, 5000)).min().unwrap()
        };
        for i in 0..10 {
            sets(&mut c, &format!("p{i}"), 1);
        }
        let few = best(&mut c, "p9");
        // 20,000 more distinct prefixes, 1,000 per write
        for chunk in 0..20 {
            let batch: String = (chunk * 1000..(chunk + 1) * 1000)
                .map(|i| format!("set q{i}:k 0 0 1 noreply\r\nx\r\n"))
                .collect();
            let r = c.send(batch.as_bytes());
            assert!(!r.closed, "{}", r.render());
        }
        let many = best(&mut c, "q19999");
        eprintln!(
            "{}: 5,000 sets with 10 prefixes {few:?}, with 20,010 prefixes {many:?}",
            srv.side.name()
        );
        assert!(
            many < few * 5 + Duration::from_millis(200),
            "{}: 5,000 sets take {many:?} with 20,010 prefixes, {few:?} with 10",
            srv.side.name()
        );
        assert_serving(srv, "after 20,000 detail prefixes");
    });
}

/// The meta commands with hostile input: out-of-range sizes and numbers,
/// long and binary (base64) keys, too many flags, long opaques, values
/// over `-I`: memcached's answers byte for byte.
#[test]
fn meta_commands_with_hostile_input() {
    let p = pair!("-I", "64k", "-o", "slab_chunk_max=32768");
    let base = rss(&p.subject);
    let k250 = "k".repeat(250);
    let k251 = "k".repeat(251);
    let flags50 = " v".repeat(50);
    let opaque = format!("O{}", "9".repeat(40));
    let convs: Vec<Vec<u8>> = vec![
        b"ms k 4294967296\r\nhello\r\nmg k v\r\n".to_vec(),
        b"ms k 4294967297\r\nx\r\nmg k v\r\n".to_vec(),
        b"ms k 18446744073709551616\r\nhello\r\nmg k v\r\n".to_vec(),
        b"ms k -1\r\nhello\r\nmg k v\r\n".to_vec(),
        b"ms k abc\r\nhello\r\nmg k v\r\n".to_vec(),
        b"ms k 2147483647\r\nhello\r\nmg k v\r\n".to_vec(),
        b"ms k 5 F4294967296 T-1\r\nhello\r\nmg k v f t\r\n".to_vec(),
        b"ms k 5 F-1 T18446744073709551616\r\nhello\r\nmg k v f t\r\n".to_vec(),
        b"ms k 5 C18446744073709551616\r\nhello\r\nmg k v c\r\n".to_vec(),
        b"ms k 5 MZ\r\nhello\r\nms k 5 M\r\nhello\r\nmg k v\r\n".to_vec(),
        format!("ms {k250} 1\r\nx\r\nmg {k250} v k\r\nms {k251} 1\r\nx\r\nmg {k251} v\r\n")
            .into_bytes(),
        format!("mg k{flags50}\r\nms k 1{flags50}\r\nx\r\nmd k{flags50}\r\n").into_bytes(),
        format!("mg k {opaque} v\r\nms k 1 {opaque}\r\nx\r\nmd k {opaque}\r\n").into_bytes(),
        // base64 keys: invalid, empty, decoding to control characters (a
        // NUL is another story: see nul_ends_a_command_line)
        b"ms !!!! 1 b\r\nx\r\nmg ==== b v\r\nmg Zg b v k\r\n".to_vec(),
        b"ms AQID 2 b\r\nhi\r\nmg AQID b v k\r\nget \x01\x02\x03\r\nmd AQID b\r\n".to_vec(),
        // arithmetic extremes
        b"ma n N0 J18446744073709551615 v\r\nma n D1 v\r\nma n MD D18446744073709551615 v\r\n"
            .to_vec(),
        b"ma n D18446744073709551616\r\nma n Dabc\r\nma n MX\r\nma\r\nma n q\r\n".to_vec(),
        // values around -I (64k)
        cat(&[
            b"ms big 65536 T0\r\n",
            &vec![b'b'; 65536],
            b"\r\nmg big s\r\n",
        ]),
        cat(&[b"ms big 65400\r\n", &vec![b'b'; 65400], b"\r\nmg big s\r\n"]),
        b"me k\r\nme\r\nme k k k\r\nmn extra\r\nmg\r\nms\r\nmd\r\n".to_vec(),
    ];
    for conv in &convs {
        p.diff(conv);
    }
    for srv in p.servers() {
        assert_serving(srv, "after hostile meta commands");
    }
    assert_peak_within(&p.subject, base, 16 * MIB, "hostile meta commands");
}

// ---------------------------------------------------------------------------
// Clients that do not read

/// 100,000 pipelined gets of a 1 KiB value from a client that does not read
/// its answers (100 MiB of replies): the server stops reading from it once
/// its output is full, keeps serving others, and memcrab's RSS grows by
/// less than 16 MiB (measured: ~1 MiB). When the client finally reads, it
/// gets every reply, byte for byte.
#[test]
fn pipelined_flood_without_reading() {
    const N: usize = 100_000;
    let p = pair!();
    let value = patterned(1024, 1);
    for srv in p.servers() {
        let r = srv.converse(&set_cmd("k", 0, 0, &value));
        assert_eq!(r.bytes, b"STORED\r\n");
    }
    let reply = cat(&[&value_reply("k", 0, &value), b"END\r\n"]);
    p.run(|srv| {
        let base = rss(srv);
        let s = raw(srv);
        let mut w = s.try_clone().unwrap();
        w.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let writer = {
            let written = written.clone();
            thread::spawn(move || {
                let batch = b"get k\r\n".repeat(1000);
                for _ in 0..N / 1000 {
                    if w.write_all(&batch).is_err() {
                        return false;
                    }
                    written.fetch_add(1000, Ordering::Relaxed);
                }
                true
            })
        };
        // Wait until the writer is blocked (the server stopped reading) or
        // done, at most 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = usize::MAX;
        loop {
            sleep(Duration::from_millis(300));
            let now = written.load(Ordering::Relaxed);
            if now == last || now == N || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        let blocked_at = written.load(Ordering::Relaxed);
        assert_serving(srv, "during a pipelined flood");
        assert_peak_within(srv, base, 16 * MIB, "100k pipelined gets, not read");
        // Now read everything: 100k identical replies.
        let expected = reply.repeat(N);
        let mut s = s;
        let got = read_matching(&mut s, &expected, Duration::from_secs(60));
        assert!(writer.join().unwrap(), "{}: writes failed", srv.side.name());
        assert_eq!(
            got,
            expected.len(),
            "{}: replies differ or stop after {got} of {} bytes (writer blocked after {blocked_at} gets)",
            srv.side.name(),
            expected.len()
        );
        assert_serving(srv, "after a pipelined flood");
    });
}

/// Readers that stall while large values are sent to them: four clients
/// each ask for a 512 KiB value 100 times (50 MiB each) and do not read.
/// Another client keeps storing and reading, a 512 KiB value included;
/// memcrab holds at most ~1.5 MiB per stalled client (bound: 4 MiB each
/// plus 8 MiB). Then one stalled reader reads all its replies (byte for
/// byte), and the others vanish with unread data (reset): the server
/// closes them and its connection count returns to where it was.
#[test]
fn stalled_readers_of_large_values() {
    const STALLED: usize = 4;
    const GETS: usize = 100;
    let p = pair!();
    let big = patterned(512 * 1024, 9);
    p.run(|srv| {
        let r = srv.converse(&set_cmd("big", 5, 0, &big));
        assert_eq!(r.bytes, b"STORED\r\n");
        let conns_before = settled_connections(srv);
        let base = rss(srv);
        let mut stalled: Vec<TcpStream> = (0..STALLED).map(|_| raw(srv)).collect();
        let requests = b"get big\r\n".repeat(GETS);
        for s in &mut stalled {
            s.write_all(&requests).unwrap();
        }
        sleep(Duration::from_millis(500));
        // Another client: 50 round trips and a large value.
        let mut c = srv.connect();
        for i in 0..50 {
            let v = format!("v{i}");
            let r = c.send(
                &[
                    set_cmd(&format!("other{i}"), 0, 0, v.as_bytes()),
                    format!("get other{i}\r\n").into_bytes(),
                ]
                .concat(),
            );
            assert_eq!(
                r.bytes,
                cat(&[
                    b"STORED\r\n",
                    &value_reply(&format!("other{i}"), 0, v.as_bytes()),
                    b"END\r\n"
                ]),
                "{}: round trip {i} while readers stall: {}",
                srv.side.name(),
                r.render()
            );
        }
        let r = c.send(b"get big\r\n");
        assert!(
            r.bytes == cat(&[&value_reply("big", 5, &big), b"END\r\n"]),
            "{}: large value while readers stall",
            srv.side.name()
        );
        drop(c);
        assert_peak_within(
            srv,
            base,
            STALLED as u64 * 4 * MIB + 8 * MIB,
            "4 stalled readers of 512 KiB values",
        );
        // One stalled reader reads everything.
        let expected = cat(&[&value_reply("big", 5, &big), b"END\r\n"]).repeat(GETS);
        let got = read_matching(&mut stalled[0], &expected, Duration::from_secs(60));
        assert_eq!(
            got,
            expected.len(),
            "{}: stalled reader's replies",
            srv.side.name()
        );
        // The others vanish: closing with unread data sends a reset.
        drop(stalled);
        wait_connections(srv, conns_before, "after stalled readers vanished");
        assert_serving(srv, "after stalled readers vanished");
    });
}

/// Many connections that each fetched a large value and then went idle:
/// an idle connection holds no read or output buffer (they return to a
/// per-worker pool of at most 1 MiB), so memory does not grow with the
/// number of connections times the largest reply each ever had.
/// Bound: 4 KiB per connection (its task and state) plus 8 MiB (without
/// the pool, 400 connections kept ~84 MiB).
#[test]
fn idle_connections_after_large_replies() {
    const CONNS: usize = 400;
    let p = pair!("-c", "2048");
    let big = patterned(200 * 1024, 3);
    p.run(|srv| {
        let r = srv.converse(&set_cmd("big", 1, 0, &big));
        assert_eq!(r.bytes, b"STORED\r\n");
        let base = rss(srv);
        let expected = cat(&[&value_reply("big", 1, &big), b"END\r\n"]);
        let mut idle = Vec::with_capacity(CONNS);
        for i in 0..CONNS {
            let mut s = raw(srv);
            s.write_all(b"get big\r\n").unwrap();
            let got = read_matching(&mut s, &expected, Duration::from_secs(10));
            assert_eq!(got, expected.len(), "{}: reply {i}", srv.side.name());
            idle.push(s);
        }
        assert_peak_within(
            srv,
            base,
            CONNS as u64 * 4 * KIB + 8 * MIB,
            "400 idle connections after 200 KiB replies",
        );
        assert_serving(srv, "with 400 idle connections");
        drop(idle);
    });
}

/// Clients that send most of a large data block and then stall: memcrab
/// buffers a pending data block in the connection (memcached reads it into
/// the item, inside `-m`), so each such client costs up to `-I` of memory
/// outside `-m`, and no more (bound: 2 x `-I` each plus 8 MiB). When the
/// blocks are completed, every value is stored, as in memcached.
#[test]
fn stalled_large_data_blocks() {
    const CLIENTS: usize = 16;
    let p = pair!();
    let values: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|i| patterned(1024 * 1024 - 100, i as u8))
        .collect();
    let (r, s) = p.run(|srv| {
        let base = rss(srv);
        let mut conns: Vec<Conn> = (0..CLIENTS).map(|_| srv.connect()).collect();
        let convs: Vec<Vec<u8>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                cat(&[
                    &set_cmd(&format!("part{i}"), 0, 0, v),
                    format!("get part{i}\r\n").as_bytes(),
                ])
            })
            .collect();
        // all but the last 1000 bytes of the data block
        for (c, conv) in conns.iter_mut().zip(&convs) {
            c.write_raw(&conv[..conv.len() - 1000 - 13]);
        }
        sleep(Duration::from_millis(500));
        assert_serving(srv, "while large data blocks stall");
        assert_peak_within(
            srv,
            base,
            CLIENTS as u64 * 2 * MIB + 8 * MIB,
            "16 stalled 1 MiB data blocks",
        );
        conns
            .iter_mut()
            .zip(&convs)
            .map(|(c, conv)| c.send(&conv[conv.len() - 1000 - 13..]))
            .collect::<Vec<Reply>>()
    });
    for (i, (r, s)) in r.iter().zip(&s).enumerate() {
        let what = format!("stalled data block {i}");
        assert_same(&what, r, s);
        let expected = cat(&[
            b"STORED\r\n",
            &value_reply(&format!("part{i}"), 0, &values[i]),
            b"END\r\n",
        ]);
        assert_reference(&what, r, &expected);
    }
}

// ---------------------------------------------------------------------------
// Slow and broken clients

/// Slowloris: 20 clients send their commands one byte every 100 ms (~3 s);
/// meanwhile other clients are served at full speed, and in the end each
/// slow client gets memcached's answers.
#[test]
fn slowloris() {
    const SLOW: usize = 20;
    let p = pair!();
    let base = rss(&p.subject);
    let (r, s) = p.run(|srv| {
        let convs: Vec<Vec<u8>> = (0..SLOW)
            .map(|i| {
                cat(&[
                    &set_cmd(&format!("slow{i}"), 0, 0, b"hello"),
                    format!("get slow{i}\r\n").as_bytes(),
                ])
            })
            .collect();
        let mut conns: Vec<Conn> = (0..SLOW).map(|_| srv.connect()).collect();
        let rounds = convs.iter().map(Vec::len).max().unwrap_or(0);
        for round in 0..rounds {
            for (c, conv) in conns.iter_mut().zip(&convs) {
                if let Some(b) = conv.get(round) {
                    c.write_raw(std::slice::from_ref(b));
                }
            }
            if round % 8 == 0 {
                assert_serving(srv, "during slowloris");
            }
            sleep(Duration::from_millis(100));
        }
        conns
            .iter_mut()
            .map(|c| c.send(b""))
            .collect::<Vec<Reply>>()
    });
    for (i, (r, s)) in r.iter().zip(&s).enumerate() {
        assert_same(&format!("slow client {i}"), r, s);
        assert_reference(
            &format!("slow client {i}"),
            r,
            format!("STORED\r\nVALUE slow{i} 0 5\r\nhello\r\nEND\r\n").as_bytes(),
        );
    }
    assert_peak_within(&p.subject, base, 8 * MIB, "slowloris");
}

/// Half-open sockets: a client that shuts down its write side gets the
/// answers to its complete commands (a 512 KiB value included), then EOF;
/// a command cut by the shutdown is dropped, its partial data not stored.
#[test]
fn half_closed_clients() {
    let p = pair!();
    let base = rss(&p.subject);
    let big = patterned(512 * 1024, 4);
    for srv in p.servers() {
        assert_eq!(
            srv.converse(&set_cmd("big", 0, 0, &big)).bytes,
            b"STORED\r\n"
        );
        assert_eq!(srv.converse(&set_cmd("k", 1, 0, b"v")).bytes, b"STORED\r\n");
    }
    let cases: Vec<Vec<u8>> = vec![
        b"get k\r\nset h 0 0 5\r\nhel".to_vec(),
        b"get k".to_vec(),
        b"get k\r\nget".to_vec(),
        b"set h 0 0 5\r\nhello\r\nget h\r\n".to_vec(),
        b"set h2 0 0 5\r\nhello".to_vec(),
        b"set h3 0 0 5\r\nhello\r".to_vec(),
        b"get big\r\nget big\r\nget k\r\n".to_vec(),
        b"get big k big\r\ndelete h\r\n".to_vec(),
        b"".to_vec(),
        b"\r\n".to_vec(),
    ];
    for conv in &cases {
        let (r, s) = p.run(|srv| {
            let mut c = srv.connect();
            c.write_raw(conv);
            c.shutdown_write();
            c.read_to_eof(REPLY_TIMEOUT)
        });
        assert_same(&format!("{} then shutdown(WR)", describe(conv)), &r, &s);
        assert!(r.closed && s.closed, "{}: not closed", describe(conv));
    }
    // nothing of the cut commands was stored
    let r = p.diff(b"get h2 h3\r\n");
    assert_eq!(r.bytes, b"END\r\n");
    for srv in p.servers() {
        assert_serving(srv, "after half-closed clients");
    }
    assert_peak_within(&p.subject, base, 8 * MIB, "half-closed clients");
}

/// Clients that vanish: mid-command, mid-data block, and while a large
/// reply is being sent to them (a reset, as a crashed client's kernel
/// sends). Nothing partial is stored, the connections are released, and
/// the server keeps serving.
#[test]
fn vanishing_clients() {
    let p = pair!();
    let big = patterned(512 * 1024, 2);
    p.run(|srv| {
        assert_eq!(
            srv.converse(&set_cmd("big", 0, 0, &big)).bytes,
            b"STORED\r\n"
        );
        let before = settled_connections(srv);
        let base = rss(srv);
        for round in 0..20 {
            let mut s = raw(srv);
            // a reply arrives and is left unread, so closing sends a reset
            let partial: &[u8] = match round % 4 {
                0 => b"get big\r\nset gone 0 0 100\r\n0123456789",
                1 => b"get big\r\nset gone 0 0 10",
                2 => b"get big\r\nget big\r\nget big\r\nget big\r\n",
                _ => b"get big\r\nappend big 0 0 1000000\r\nxyz",
            };
            s.write_all(partial).unwrap();
            sleep(Duration::from_millis(20));
            if round % 2 == 1 {
                // half of them close without a reset first: FIN, then RST
                let _ = s.shutdown(Shutdown::Write);
            }
            drop(s);
        }
        wait_connections(srv, before, "after vanished clients");
        let r = srv.converse(b"get gone\r\n");
        assert_eq!(
            r.bytes,
            b"END\r\n",
            "{}: partial data stored",
            srv.side.name()
        );
        let r = srv.converse(b"get big\r\n");
        assert!(
            r.bytes == cat(&[&value_reply("big", 0, &big), b"END\r\n"]),
            "{}: big value changed",
            srv.side.name()
        );
        assert_serving(srv, "after vanished clients");
        assert_peak_within(srv, base, 16 * MIB, "20 vanishing clients");
    });
}

/// More clients than `-c`: the excess get `ERROR Too many open connections`
/// and are closed, a burst of 200 of them changes nothing for the admitted
/// clients (each still answers), and once those leave new clients are
/// admitted again.
#[test]
fn more_clients_than_max_connections() {
    let p = pair!("-c", "40");
    p.run(|srv| {
        let base = rss(srv);
        let mut admitted = Vec::new();
        for _ in 0..40 {
            let mut c = srv.connect();
            let r = c.send(b"");
            if r.closed {
                assert!(
                    r.bytes.is_empty() || r.bytes == b"ERROR Too many open connections\r\n",
                    "{}: {}",
                    srv.side.name(),
                    r.render()
                );
                break;
            }
            admitted.push(c);
        }
        assert!(
            admitted.len() >= 10,
            "{}: only {} admitted",
            srv.side.name(),
            admitted.len()
        );
        // a burst of excess clients
        let mut told = 0;
        for _ in 0..200 {
            let mut c = srv.connect();
            let r = c.read_to_eof(REPLY_TIMEOUT);
            assert!(
                r.closed
                    && (r.bytes.is_empty() || r.bytes == b"ERROR Too many open connections\r\n"),
                "{}: excess client got {}",
                srv.side.name(),
                r.render()
            );
            told += usize::from(!r.bytes.is_empty());
        }
        assert!(
            told > 0,
            "{}: no excess client was told why",
            srv.side.name()
        );
        for (i, c) in admitted.iter_mut().enumerate() {
            let key = format!("c{i}");
            let r = c.send(&cat(&[
                &set_cmd(&key, 0, 0, b"x"),
                format!("get {key}\r\n").as_bytes(),
            ]));
            assert_eq!(
                r.bytes,
                cat(&[b"STORED\r\n", &value_reply(&key, 0, b"x"), b"END\r\n"]),
                "{}: admitted client {i}",
                srv.side.name()
            );
        }
        drop(admitted);
        // the slots are freed (as soon as the server notices the closes)
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut c = srv.connect();
            let r = c.send(b"");
            if !r.closed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: slots not freed",
                srv.side.name()
            );
            sleep(Duration::from_millis(50));
        }
        assert_serving(srv, "after too many clients");
        assert_peak_within(srv, base, 16 * MIB, "200 excess clients");
    });
}

// ---------------------------------------------------------------------------
// The binary protocol

/// Binary-protocol clients with hostile headers and habits: a `set`
/// declaring a 4 GiB body (answered and closed as memcached does, nothing
/// buffered), 100,000 pipelined `getk`s of a 1 KiB value from
/// a client that does not read (then every response arrives), and 16
/// clients that send all but the last 1000 bytes of a 1 MiB value and
/// stall (binary values go through the read buffer: up to `-I` each, bound
/// 2 x `-I` each plus 8 MiB). Others are served throughout, as memcached
/// serves them.
#[test]
fn binary_protocol_hostile_clients() {
    const GETS: usize = 100_000;
    const STALLED: usize = 16;
    let p = pair!();
    let value = patterned(1024, 7);
    let big: Vec<Vec<u8>> = (0..STALLED)
        .map(|i| patterned(1024 * 1024 - 200, i as u8))
        .collect();
    let both = p.run(|srv| {
        let name = srv.side.name();
        let mut c = srv.connect();
        let r = c.send_binary(&bin::store(bin::SET, b"k", 3, 0, &value, 0, 1));
        assert_eq!(bin::parse(&r.bytes).0[0].status, bin::OK, "{name}");
        // the exact response to one getk of k (its cas is the server's own)
        let one = c.send_binary(&bin::req(bin::GETK, b"k", 0)).bytes;
        assert_eq!(bin::parse(&one).0.len(), 1, "{name}: {}", bin::render(&one));
        drop(c);
        let base = rss(srv);

        // 1. a 4 GiB body: memcached refuses it and closes
        let mut huge = raw(srv);
        let extras = [0u8; 8];
        let header = bin::Req {
            opcode: bin::SET,
            key: b"huge",
            extras: &extras,
            body_len: Some(0xFFFF_FFF0),
            opaque: 77,
            ..bin::Req::default()
        }
        .bytes();
        let _ = huge.write_all(&header);
        let junk = vec![b'j'; 256 * 1024];
        for _ in 0..16 {
            if huge.write_all(&junk).is_err() {
                break;
            }
        }
        let mut huge_reply = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let huge_closed = loop {
            match huge.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => huge_reply.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() > deadline {
                        break false;
                    }
                }
                Err(_) => break true,
            }
        };
        assert_serving(srv, "after a 4 GiB binary body");

        // 2. 100,000 pipelined getk, not read
        let s = raw(srv);
        let mut w = s.try_clone().unwrap();
        w.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let writer = {
            let written = written.clone();
            thread::spawn(move || {
                let batch = bin::req(bin::GETK, b"k", 0).repeat(1000);
                for _ in 0..GETS / 1000 {
                    if w.write_all(&batch).is_err() {
                        return false;
                    }
                    written.fetch_add(1000, Ordering::Relaxed);
                }
                true
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = usize::MAX;
        loop {
            sleep(Duration::from_millis(300));
            let now = written.load(Ordering::Relaxed);
            if now == last || now == GETS || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        assert_serving(srv, "during a binary pipelined flood");

        // 3. stalled 1 MiB values
        let mut stalled: Vec<TcpStream> = (0..STALLED).map(|_| raw(srv)).collect();
        let sets: Vec<Vec<u8>> = big
            .iter()
            .enumerate()
            .map(|(i, v)| bin::store(bin::SET, format!("big{i}").as_bytes(), 0, 0, v, 0, i as u32))
            .collect();
        for (c, set) in stalled.iter_mut().zip(&sets) {
            c.write_all(&set[..set.len() - 1000]).unwrap();
        }
        sleep(Duration::from_millis(500));
        assert_serving(srv, "while binary values stall");
        assert_peak_within(
            srv,
            base,
            STALLED as u64 * 2 * MIB + 16 * MIB,
            "binary: 4 GiB body, 100k unread getk, 16 stalled 1 MiB values",
        );

        // the flood's responses, all of them
        let expected = one.repeat(GETS);
        let mut s = s;
        let got = read_matching(&mut s, &expected, Duration::from_secs(60));
        assert!(writer.join().unwrap(), "{name}: writes failed");
        assert_eq!(
            got,
            expected.len(),
            "{name}: getk responses differ or stop at byte {got}"
        );
        // the stalled values complete and are stored
        for (i, (c, set)) in stalled.iter_mut().zip(&sets).enumerate() {
            c.write_all(&set[set.len() - 1000..]).unwrap();
            c.write_all(&bin::req(bin::NOOP, b"", 0)).unwrap();
            let mut resp = Vec::new();
            let deadline = Instant::now() + REPLY_TIMEOUT;
            while bin::parse(&resp).0.len() < 2 && Instant::now() < deadline {
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => resp.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
            let packets = bin::parse(&resp).0;
            assert!(
                packets.len() == 2 && packets[0].status == bin::OK,
                "{name}: stalled value {i}: {}",
                bin::render(&resp)
            );
        }
        let mut c = srv.connect();
        let r = c.send_binary(&bin::req(bin::GETK, b"big15", 0));
        assert_eq!(bin::parse(&r.bytes).0[0].value, big[15], "{name}: big15");
        assert_serving(srv, "after hostile binary clients");
        (huge_reply, huge_closed)
    });
    // memcached answers "Too large." (opaque 77) and closes once the body
    // keeps coming; the reply can be lost to the reset a close with unread
    // bytes sends, so an empty reply is accepted too.
    for (side, (reply, _closed)) in [("memcached", &both.0), ("memcrab", &both.1)] {
        let (packets, rest) = bin::parse(reply);
        assert!(
            rest.is_empty()
                && (packets.is_empty()
                    || (packets.len() == 1
                        && packets[0].status == bin::TOO_LARGE
                        && packets[0].opaque == 77)),
            "{side}: reply to a set declaring a 4 GiB body: {}",
            bin::render(reply)
        );
    }
}
