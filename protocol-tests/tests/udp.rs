//! The UDP protocol (`-U`): datagrams compared byte for byte, frame headers
//! included, against memcached 1.6.18.
//!
//! Both servers start with `-p -1 -U -1 -l 127.0.0.1` and report their ports
//! in MEMCACHED_PORT_FILENAME. Tests that depend on the order in which
//! datagrams are handled run with `-t 1`: memcached serves a UDP socket from
//! every worker thread, each with its own state, and which thread reads a
//! datagram is a race.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use protocol_tests::*;

/// Request id of the sentinel `version` that ends an exchange.
const SENTINEL_ID: u16 = 0x5e5e;
/// Silence that ends an exchange that cannot use the sentinel.
const QUIET: Duration = Duration::from_millis(300);

/// A server and its UDP port.
struct UdpServer {
    server: Server,
    udp: u16,
    /// The MEMCACHED_PORT_FILENAME contents, port numbers replaced by `<port>`.
    port_file: String,
}

fn read_port_file(path: &std::path::Path, srv: &mut Server) -> String {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            return s;
        }
        assert!(
            srv.try_wait().is_none(),
            "{} exited: {}",
            srv.side.name(),
            srv.stderr()
        );
        assert!(
            Instant::now() < deadline,
            "{}: no port file; stderr {}",
            srv.side.name(),
            srv.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Port of the first `<proto> INET: <port>` line.
fn port_of(file: &str, proto: &str) -> Option<u16> {
    file.lines()
        .find_map(|l| l.strip_prefix(&format!("{proto} INET: ")))
        .and_then(|p| p.parse().ok())
}

/// Start `bin` with `args` (complete command line) and the port file.
fn start_with(bin: &std::path::Path, side: Side, args: &[&str]) -> UdpServer {
    let file = temp_path("portfile");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env = [("MEMCACHED_PORT_FILENAME", OsString::from(&file))];
    let mut server = Server::spawn(bin, side, &args, Endpoint::Tcp(0), &env);
    let content = read_port_file(&file, &mut server);
    let _ = std::fs::remove_file(&file);
    let udp = port_of(&content, "UDP")
        .unwrap_or_else(|| panic!("{}: no UDP port in {content:?}", side.name()));
    let port_file = content
        .lines()
        .map(|l| match l.split_once(": ") {
            Some((what, _)) => format!("{what}: <port>\n"),
            None => format!("{l}\n"),
        })
        .collect();
    if let Some(tcp) = port_of(&content, "TCP") {
        server.endpoint = Endpoint::Tcp(tcp);
        server
            .wait_ready(START_TIMEOUT)
            .unwrap_or_else(|e| panic!("{}: {e}", side.name()));
    }
    UdpServer {
        server,
        udp,
        port_file,
    }
}

struct UdpPair {
    reference: UdpServer,
    subject: UdpServer,
}

/// Both servers with `-u root -l 127.0.0.1 -p -1 -U -1` plus `extra`.
fn udp_pair(extra: &[&str]) -> Option<UdpPair> {
    let (reference, subject) = binaries()?;
    let mut args = vec!["-u", "root", "-l", "127.0.0.1", "-p", "-1", "-U", "-1"];
    args.extend_from_slice(extra);
    Some(UdpPair {
        reference: start_with(&reference, Side::Reference, &args),
        subject: start_with(&subject, Side::Subject, &args),
    })
}

macro_rules! udp_pair {
    ($($arg:expr),* $(,)?) => {
        match udp_pair(&[$($arg),*]) {
            Some(p) => p,
            None => return,
        }
    };
}

/// A datagram: frame header, then `payload`.
fn frame(id: u16, seq: u16, total: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    for v in [id, seq, total, 0] {
        d.extend_from_slice(&v.to_be_bytes());
    }
    d.extend_from_slice(payload);
    d
}

/// One request datagram.
fn req(id: u16, payload: &[u8]) -> Vec<u8> {
    frame(id, 0, 1, payload)
}

fn header(d: &[u8]) -> [u16; 4] {
    let f = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
    [f(0), f(2), f(4), f(6)]
}

/// Datagrams for failure reports: `[id seq total reserved] payload`.
fn render(dgs: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for d in dgs {
        if d.len() < 8 {
            let _ = writeln!(s, "<short datagram {}>", escape(d));
            continue;
        }
        let p = &d[8..];
        let body = if p.len() > 200 {
            format!("{}... ({} bytes)", literal(&p[..200]), p.len())
        } else {
            literal(p)
        };
        let _ = writeln!(s, "{:?} ({} bytes) \"{body}\"", header(d), d.len());
    }
    s
}

fn assert_same_datagrams(context: &str, r: &[Vec<u8>], s: &[Vec<u8>]) {
    assert!(
        r == s,
        "\n=== {context}: memcrab's datagrams differ from memcached's ===\n\
         --- memcached (reference) ---\n{}--- memcrab (subject) ---\n{}",
        render(r),
        render(s)
    );
}

fn assert_reference_datagrams(context: &str, r: &[Vec<u8>], expected: &[Vec<u8>]) {
    assert!(
        r == expected,
        "\n=== {context}: memcached no longer answers as recorded for 1.6.18 ===\n\
         --- recorded ---\n{}--- reference now ---\n{}",
        render(expected),
        render(r)
    );
}

/// A client socket on 127.0.0.1.
struct Client {
    sock: UdpSocket,
}

impl Client {
    fn new() -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP client socket");
        Client { sock }
    }

    fn send(&self, port: u16, d: &[u8]) {
        self.sock
            .send_to(d, ("127.0.0.1", port))
            .expect("send a datagram");
    }

    /// One datagram, or None after `wait`.
    fn recv(&self, wait: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 70000];
        self.sock
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .expect("set a read timeout");
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    /// Everything that arrives until `QUIET` passes without a datagram.
    fn recv_quiet(&self) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            match self.recv(QUIET) {
                Some(d) => got.push(d),
                None => break,
            }
        }
        got
    }

    /// Send `d`, then a `version` datagram, and return what arrived before
    /// the answer to the latter (needs `-t 1`: datagrams handled in order).
    fn exchange(&self, port: u16, d: &[u8]) -> Vec<Vec<u8>> {
        self.send(port, d);
        self.send(port, &req(SENTINEL_ID, b"version\r\n"));
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut got = Vec::new();
        loop {
            let now = Instant::now();
            assert!(
                now < deadline,
                "no answer to the sentinel after {}",
                render(&got)
            );
            let Some(dg) = self.recv(deadline - now) else {
                continue;
            };
            if dg.len() >= 8 && header(&dg)[0] == SENTINEL_ID {
                assert!(dg[8..].starts_with(b"VERSION "), "{}", render(&[dg]));
                return got;
            }
            got.push(dg);
        }
    }

    /// Send `d` and wait for exactly `n` datagrams.
    fn exchange_n(&self, port: u16, d: &[u8], n: usize) -> Vec<Vec<u8>> {
        self.send(port, d);
        let mut got = Vec::new();
        let deadline = Instant::now() + REPLY_TIMEOUT;
        while got.len() < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "expected {n} datagrams, got {}",
                render(&got)
            );
            if let Some(dg) = self.recv(deadline - now) {
                got.push(dg);
            }
        }
        got
    }
}

impl UdpPair {
    /// The same datagram to both servers (one client each); equal answers
    /// required; returns the reference's.
    fn diff(&self, rc: &Client, sc: &Client, d: &[u8]) -> Vec<Vec<u8>> {
        let r = rc.exchange(self.reference.udp, d);
        let s = sc.exchange(self.subject.udp, d);
        assert_same_datagrams(&describe(d), &r, &s);
        r
    }

    /// [`UdpPair::diff`], and the reference must answer `expected`.
    fn check(&self, rc: &Client, sc: &Client, d: &[u8], expected: &[Vec<u8>]) {
        let r = self.diff(rc, sc, d);
        assert_reference_datagrams(&describe(d), &r, expected);
    }

    /// Send without the sentinel; compare what arrives before silence.
    fn diff_quiet(&self, rc: &Client, sc: &Client, d: &[u8]) -> Vec<Vec<u8>> {
        rc.send(self.reference.udp, d);
        sc.send(self.subject.udp, d);
        let (r, s) = quiet_both(rc, sc);
        assert_same_datagrams(&describe(d), &r, &s);
        r
    }

    fn stats(&self, args: &str) -> (Stats, Stats) {
        (
            self.reference.server.stats(args),
            self.subject.server.stats(args),
        )
    }
}

/// What both clients receive until silence, waiting for both at once.
fn quiet_both(rc: &Client, sc: &Client) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    std::thread::scope(|scope| {
        let r = scope.spawn(|| rc.recv_quiet());
        let s = sc.recv_quiet();
        (r.join().expect("receiving thread"), s)
    })
}

fn clients() -> (Client, Client) {
    (Client::new(), Client::new())
}

/// Reassembles one reply run: checks sizes, numbering and count.
fn reassemble(run: &[Vec<u8>], id: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, d) in run.iter().enumerate() {
        assert!(d.len() <= 1400, "datagram of {} bytes", d.len());
        assert_eq!(header(d), [id, i as u16, run.len() as u16, 0]);
        out.extend_from_slice(&d[8..]);
    }
    out
}

#[test]
fn storage_retrieval_and_arithmetic() {
    let p = udp_pair!("-t", "1");
    let (rc, sc) = clients();
    p.check(
        &rc,
        &sc,
        &req(1, b"set a 5 0 3\r\nabc\r\n"),
        &[req(1, b"STORED\r\n")],
    );
    p.check(
        &rc,
        &sc,
        &req(0xabcd, b"get a\r\n"),
        &[req(0xabcd, b"VALUE a 5 3\r\nabc\r\nEND\r\n")],
    );
    p.check(&rc, &sc, &req(0, b"get nope\r\n"), &[req(0, b"END\r\n")]);
    p.check(
        &rc,
        &sc,
        &req(0xffff, b"delete a\r\n"),
        &[req(0xffff, b"DELETED\r\n")],
    );
    p.check(
        &rc,
        &sc,
        &req(2, b"delete a\r\n"),
        &[req(2, b"NOT_FOUND\r\n")],
    );
    p.check(
        &rc,
        &sc,
        &req(3, b"set n 0 0 2\r\n41\r\n"),
        &[req(3, b"STORED\r\n")],
    );
    p.check(&rc, &sc, &req(4, b"incr n 1\r\n"), &[req(4, b"42\r\n")]);
    p.check(&rc, &sc, &req(5, b"decr n 50\r\n"), &[req(5, b"0\r\n")]);
    p.check(
        &rc,
        &sc,
        &req(6, b"incr a 1\r\n"),
        &[req(6, b"NOT_FOUND\r\n")],
    );
    for (id, d) in [
        (7, &b"gets n\r\n"[..]),
        (8, b"append n 0 0 1\r\n7\r\n"),
        (9, b"prepend n 0 0 1\r\n1\r\n"),
        (10, b"touch n 100\r\n"),
        (11, b"gat 0 n\r\n"),
        (12, b"cas n 0 0 1 1\r\nx\r\n"),
        (13, b"add n 0 0 1\r\nx\r\n"),
        (14, b"replace nope 0 0 1\r\nx\r\n"),
        (15, b"bogus\r\n"),
        (16, b"\r\n"),
        (17, b"flush_all 0\r\n"),
        (18, b"get n\r\n"),
    ] {
        let r = p.diff(&rc, &sc, &req(id, d));
        assert!(
            r.iter().all(|d| header(d)[0] == id),
            "request id not echoed: {}",
            render(&r)
        );
    }
}

#[test]
fn several_commands_in_one_datagram() {
    let p = udp_pair!("-t", "1");
    let (rc, sc) = clients();
    // Each command's response is a run of its own.
    p.check(
        &rc,
        &sc,
        &req(
            7,
            b"set a 0 0 1\r\nx\r\nset b 0 0 1 noreply\r\ny\r\nincr a 1\r\ndelete b\r\n",
        ),
        &[
            req(7, b"STORED\r\n"),
            req(
                7,
                b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            ),
            req(7, b"DELETED\r\n"),
        ],
    );
    // One response per key; END goes with the last. A first key that
    // missed leaves an empty response: a bare header with a count of 0.
    p.check(
        &rc,
        &sc,
        &req(8, b"get a nope a\r\n"),
        &[
            req(8, b"VALUE a 0 1\r\nx\r\n"),
            req(8, b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        ],
    );
    p.check(
        &rc,
        &sc,
        &req(9, b"get nope1 nope2\r\n"),
        &[frame(9, 0, 0, b""), req(9, b"END\r\n")],
    );
    p.check(
        &rc,
        &sc,
        &req(10, b"touch a 0\r\nget nope a\r\n"),
        &[
            req(10, b"TOUCHED\r\n"),
            req(10, b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        ],
    );
    // noreply responses are never sent, so an empty one can come first.
    p.check(
        &rc,
        &sc,
        &req(11, b"set c 0 0 1 noreply\r\nz\r\nget nope c\r\n"),
        &[
            frame(11, 0, 0, b""),
            req(11, b"VALUE c 0 1\r\nz\r\nEND\r\n"),
        ],
    );
    // `mn` and gets flush; an incomplete last line is dropped.
    p.check(
        &rc,
        &sc,
        &req(12, b"mn\r\nget nope c\r\ndelete c\r\nget"),
        &[
            req(12, b"MN\r\n"),
            frame(12, 0, 0, b""),
            req(12, b"VALUE c 0 1\r\nz\r\nEND\r\n"),
            req(12, b"DELETED\r\n"),
        ],
    );
    p.check(&rc, &sc, &req(13, b" c\r\n"), &[req(13, b"ERROR\r\n")]);
    for d in [
        &b"gets a b c\r\nset d 0 0 2\r\nab\r\nappend d 0 0 1\r\nc\r\nget d d\r\n"[..],
        b"gat 0 a nope\r\ngats 0 nope a\r\ngat x a\r\n",
        b"set e 0 0 3\r\nab\r\nget e\r\n",
        b"set e 0 0 -1\r\nget e\r\nget e\r\n",
    ] {
        p.diff(&rc, &sc, &req(14, d));
    }
}

#[test]
fn reply_spanning_several_datagrams() {
    let p = udp_pair!("-t", "1");
    let (rc, sc) = clients();
    let value: Vec<u8> = (0..20000u32).map(|i| b'a' + (i % 26) as u8).collect();
    p.diff(&rc, &sc, &req(1, &set_cmd("big", 3, 0, &value)));
    let r = p.diff(&rc, &sc, &req(0x1234, b"get big\r\n"));
    // 20028 bytes in runs of 1392: 15 datagrams of at most 1400 bytes.
    assert_eq!(r.len(), 15, "{}", render(&r));
    let expected = cat(&[b"VALUE big 3 20000\r\n", &value, b"\r\nEND\r\n"]);
    assert_eq!(reassemble(&r, 0x1234), expected);
    // Two keys: two runs, each numbered from 0, END with the second.
    let r = p.diff(&rc, &sc, &req(2, b"get big big\r\n"));
    assert_eq!(r.len(), 30, "{}", render(&r));
    assert_eq!(
        reassemble(&r[..15], 2),
        cat(&[b"VALUE big 3 20000\r\n", &value, b"\r\n"])
    );
    assert_eq!(reassemble(&r[15..], 2), expected);
    // A run that fills whole datagrams exactly, and one byte more.
    for len in [2761, 2762] {
        p.diff(&rc, &sc, &req(3, &set_cmd("k", 0, 0, &vec![b'v'; len])));
        p.diff(&rc, &sc, &req(4, b"get k\r\nget k k\r\n"));
    }
    // A large reply (stats) is one run too.
    let (r, s) = (
        rc.exchange(p.reference.udp, &req(5, b"stats settings\r\n")),
        sc.exchange(p.subject.udp, &req(5, b"stats settings\r\n")),
    );
    assert!(r.len() > 1 && s.len() == r.len(), "{}", render(&s));
    let text = reassemble(&s, 5);
    assert!(text.starts_with(b"STAT maxbytes ") && text.ends_with(b"END\r\n"));
}

#[test]
fn bad_frames_are_dropped() {
    let p = udp_pair!("-t", "1");
    let (rc, sc) = clients();
    for d in [
        &b""[..],
        b"\x00\x01\x00\x00\x00",
        // a bare header: nothing to run
        &frame(2, 0, 1, b""),
        // requests spread over several datagrams are not supported
        &frame(3, 0, 2, b"version\r\n"),
        &frame(4, 1, 2, b"version\r\n"),
        &frame(5, 0, 0, b"version\r\n"),
        &frame(6, 0, 0x0101, b"version\r\n"),
    ] {
        p.check(&rc, &sc, d, &[]);
    }
    // The sequence number and the reserved field are not looked at.
    let mut d = frame(7, 3, 1, b"get x\r\n");
    d[6] = 0x12;
    d[7] = 0x34;
    p.check(&rc, &sc, &d, &[req(7, b"END\r\n")]);
    p.check(&rc, &sc, &req(8, b"x"), &[]);
    p.check(&rc, &sc, &req(9, b"\n"), &[req(9, b"ERROR\r\n")]);
    let (r, s) = p.stats("");
    let keep = ["bytes_read", "cmd_get", "get_misses", "conn_yields"];
    assert_stats_eq(
        "stats after bad frames",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
}

/// Responses are flushed every `-R` commands (memcached checks after 21
/// commands, then every 20): an empty response starting a flush is sent.
#[test]
fn flushes_every_reqs_per_event_commands() {
    let p = udp_pair!("-t", "1", "-o", "no_lru_maintainer,no_lru_crawler");
    let (rc, sc) = clients();
    for n in [19, 20, 21, 22, 40, 41] {
        let mut d = b"touch nope 0\r\n".repeat(n);
        d.extend_from_slice(b"get m1 m2\r\n");
        p.diff(&rc, &sc, &req(n as u16, &d));
    }
    let mut d = b"touch nope 0\r\n".repeat(20);
    d.extend_from_slice(b"get m1 m2\r\ntouch nope 0\r\n");
    p.diff(&rc, &sc, &req(100, &d));
    let (r, s) = p.stats("");
    let keep = ["bytes_read", "cmd_get", "cmd_touch", "conn_yields"];
    assert_stats_eq(
        "conn_yields",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
}

/// A data block that does not fit its datagram is read from the next
/// datagrams, raw (their headers included), whoever sends them; the answer
/// goes to the first sender with its request id.
#[test]
fn incomplete_storage_command_reads_next_datagrams() {
    let p = udp_pair!("-t", "1");
    let (ra, sa) = clients();
    let (rb, sb) = clients();
    p.diff_quiet(&ra, &sa, &req(1, b"touch k 0\r\nset k 0 0 30\r\nabc"));
    p.diff_quiet(&rb, &sb, &req(2, b"defg\r\n"));
    // 30 + 2 bytes wanted: 3 + 14 so far; 15 more, the rest is dropped.
    p.diff_quiet(&rb, &sb, &req(3, b"hijkl\r\nversion\r\n"));
    let (r, s) = quiet_both(&ra, &sa);
    assert_same_datagrams("answer to the first sender", &r, &s);
    assert_reference_datagrams(
        "answer to the first sender",
        &r,
        &[req(1, b"NOT_FOUND\r\n"), req(1, b"STORED\r\n")],
    );
    let data = cat(&[b"abc", &req(2, b"defg\r\n"), &req(3, b"hijkl\r\n")]);
    assert_eq!(data.len(), 32);
    p.check(
        &ra,
        &sa,
        &req(4, b"get k\r\n"),
        &[req(4, &cat(&[b"VALUE k 0 30\r\n", &data, b"END\r\n"]))],
    );
    // Not ending in \r\n: a bad data chunk.
    p.diff_quiet(&ra, &sa, &req(5, b"set k 0 0 4\r\nab"));
    p.diff_quiet(&rb, &sb, &req(6, b"cd\r\n"));
    let (r, s) = quiet_both(&ra, &sa);
    assert_same_datagrams("bad data chunk", &r, &s);
    assert_reference_datagrams(
        "bad data chunk",
        &r,
        &[req(5, b"CLIENT_ERROR bad data chunk\r\n")],
    );
    // A zero-length datagram abandons the command and its pending answers.
    p.diff_quiet(&ra, &sa, &req(7, b"delete k\r\nset k 0 0 10\r\nab"));
    p.diff_quiet(&rb, &sb, b"");
    p.check(&ra, &sa, &req(8, b"get k\r\n"), &[req(8, b"END\r\n")]);
    p.check(
        &rb,
        &sb,
        &req(9, b"set k 0 0 1\r\nz\r\n"),
        &[req(9, b"STORED\r\n")],
    );
}

/// A data block refused before it is read is swallowed the same way; the
/// error is sent once it is gone.
#[test]
fn refused_data_block_is_swallowed() {
    let p = udp_pair!("-t", "1", "-I", "1k", "-o", "slab_chunk_max=512");
    let (ra, sa) = clients();
    let (rb, sb) = clients();
    let head = cat(&[b"set c 0 0 1\r\nx\r\nset big 0 0 2000\r\n", &[b'a'; 100]]);
    p.diff_quiet(&ra, &sa, &req(1, &head));
    p.diff_quiet(&rb, &sb, &req(2, &[b'b'; 1000]));
    // 2002 - 100 - 1008 = 894 more bytes; the rest of this one is dropped.
    p.diff_quiet(&rb, &sb, &req(3, &cat(&[&[b'c'; 886], b"delete c\r\n"])));
    let (r, s) = quiet_both(&ra, &sa);
    assert_same_datagrams("answers after the swallow", &r, &s);
    assert_reference_datagrams(
        "answers after the swallow",
        &r,
        &[
            req(1, b"STORED\r\n"),
            req(1, b"SERVER_ERROR object too large for cache\r\n"),
        ],
    );
    p.check(
        &rb,
        &sb,
        &req(4, b"get c\r\n"),
        &[req(4, b"VALUE c 0 1\r\nx\r\nEND\r\n")],
    );
    // Swallowed within the datagram: the next command runs.
    let d = cat(&[
        b"set big 0 0 1500 noreply\r\n",
        &[b'a'; 1502],
        b"delete c\r\n",
    ]);
    p.check(&rb, &sb, &req(5, &d), &[req(5, b"DELETED\r\n")]);
}

/// What ends a datagram early: a get with a key too long drops every
/// response not sent yet; an `HTTP/` line and more than 2048 bytes without a
/// newline drop them and the rest; after `quit` every flush ends the
/// datagram (memcached never clears its close-after-write flag).
#[test]
fn closing_and_quit() {
    let p = udp_pair!("-t", "1");
    let (rc, sc) = clients();
    let long = "k".repeat(251);
    p.check(
        &rc,
        &sc,
        &req(
            1,
            format!("set a 0 0 1\r\nx\r\nget a {long}\r\ntouch a 0\r\n").as_bytes(),
        ),
        &[
            req(1, b"CLIENT_ERROR bad command line format\r\n"),
            req(1, b"TOUCHED\r\n"),
        ],
    );
    p.check(
        &rc,
        &sc,
        &req(2, b"touch a 0\r\nGET / HTTP/1.1\r\ntouch a 0\r\n"),
        &[],
    );
    p.check(
        &rc,
        &sc,
        &cat(&[&req(3, b"touch a 0\r\n"), &[b'z'; 3000]]),
        &[],
    );
    p.check(
        &rc,
        &sc,
        &cat(&[&req(4, b"touch a 0\r\nget "), &[b'z'; 3000]]),
        &[req(4, b"TOUCHED\r\n")],
    );
    p.check(&rc, &sc, &req(5, b"quit\r\n"), &[frame(5, 0, 0, b"")]);
    p.check(
        &rc,
        &sc,
        &req(6, b"touch a 0\r\nget a\r\ntouch a 0\r\n"),
        &[
            req(6, b"TOUCHED\r\n"),
            req(6, b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        ],
    );
    p.check(
        &rc,
        &sc,
        &req(7, b"touch a 0\r\ntouch a 0\r\n"),
        &[req(7, b"TOUCHED\r\n"), req(7, b"TOUCHED\r\n")],
    );
}

/// TCP keeps working next to UDP, on the same data; the UDP connections
/// count in `curr_connections` as in memcached (one per worker thread).
#[test]
fn tcp_alongside_udp() {
    let p = udp_pair!("-o", "no_lru_maintainer,no_lru_crawler");
    let (rc, sc) = clients();
    let mut conns = [p.reference.server.connect(), p.subject.server.connect()];
    for (c, client, udp) in [(0, &rc, p.reference.udp), (1, &sc, p.subject.udp)] {
        let r = client.exchange_n(udp, &req(1, b"set u 0 0 3\r\nudp\r\n"), 1);
        assert_eq!(r, [req(1, b"STORED\r\n")]);
        let r = conns[c].send(b"get u\r\nset t 0 0 3\r\ntcp\r\n");
        assert_eq!(r.bytes, b"VALUE u 0 3\r\nudp\r\nEND\r\nSTORED\r\n");
        let r = client.exchange_n(udp, &req(2, b"get t\r\n"), 1);
        assert_eq!(r, [req(2, b"VALUE t 0 3\r\ntcp\r\nEND\r\n")]);
    }
    let (r, s) = p.stats("");
    let keep = [
        "curr_connections",
        "total_connections",
        "cmd_get",
        "cmd_set",
        "get_hits",
        "get_misses",
        "bytes_read",
        "conn_yields",
    ];
    assert_stats_eq(
        "stats with UDP",
        &filter_stats(&r, &keep),
        &filter_stats(&s, &keep),
        &[],
    );
    let (r, s) = p.stats("settings");
    let keep = ["tcpport", "udpport", "num_threads_per_udp"];
    let (r, s) = (filter_stats(&r, &keep), filter_stats(&s, &keep));
    assert_stats_eq("stats settings", &r, &s, &[]);
    assert_eq!(stat(&r, "udpport"), Some("-1"));
}

/// The port file lists TCP first, then UDP; `-p 0` serves UDP only.
#[test]
fn port_file_and_udp_only() {
    let p = udp_pair!();
    assert_eq!(
        p.reference.port_file,
        "TCP INET: <port>\nUDP INET: <port>\n"
    );
    assert_eq!(p.subject.port_file, p.reference.port_file);
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let args = [
        "-u",
        "root",
        "-l",
        "127.0.0.1",
        "-p",
        "0",
        "-U",
        "-1",
        "-t",
        "1",
    ];
    let mut r = start_with(&reference, Side::Reference, &args);
    let mut s = start_with(&subject, Side::Subject, &args);
    assert_eq!(r.port_file, "UDP INET: <port>\n");
    assert_eq!(s.port_file, r.port_file);
    let (rc, sc) = clients();
    let d = req(1, b"set a 0 0 1\r\nx\r\nget a\r\n");
    let (rr, sr) = (rc.exchange(r.udp, &d), sc.exchange(s.udp, &d));
    assert_same_datagrams("UDP only", &rr, &sr);
    assert!(r.server.try_wait().is_none() && s.server.try_wait().is_none());
}

/// `-U <port>` given after `-U 0` wins, with an explicit `-p`; `stats
/// settings` reports it.
#[test]
fn explicit_udp_port() {
    let Some((reference, subject)) = binaries() else {
        return;
    };
    let (rc, sc) = clients();
    let mut replies = Vec::new();
    for (bin, side, client) in [
        (&reference, Side::Reference, &rc),
        (&subject, Side::Subject, &sc),
    ] {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        let port_arg = port.to_string();
        let server = Server::start(bin, side, &["-U", &port_arg, "-t", "1"]);
        let settings = server.stats("settings");
        assert_eq!(stat(&settings, "udpport"), Some(port_arg.as_str()));
        replies.push(client.exchange(port, &req(42, b"get nope\r\n")));
    }
    assert_same_datagrams("explicit -U", &replies[0], &replies[1]);
    assert_eq!(replies[0], [req(42, b"END\r\n")]);
}
