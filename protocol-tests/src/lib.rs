//! Differential protocol tests: memcrab against memcached, byte for byte.
//!
//! The harness starts the *subject* (memcrab) and the *reference* (memcached,
//! Debian's 1.6.18) with identical command lines on free loopback ports, runs
//! the same conversation against both over plain sockets, and compares the
//! replies byte for byte after a deliberately tiny normalization (see
//! [`normalize`] and [`IGNORED_STATS`]).
//!
//! Binaries:
//! * subject: `$MEMCRAB_BIN`, else `<workspace>/target/release/memcrab`, else
//!   `<workspace>/target/debug/memcrab`;
//! * reference: `$MEMCACHED_BIN`, else `/usr/bin/memcached`. When it is missing
//!   every test prints a notice and passes vacuously, unless
//!   `MEMCRAB_REQUIRE_REFERENCE=1`, in which case the tests fail.
//!
//! Completion of a conversation is detected without timing guesses: the
//! harness appends a sentinel `version\r\n` and reads until the reply to it
//! (the last `VERSION ...` line, counted structurally so that `VALUE` data
//! blocks are skipped) has arrived, then strips it. Conversations that end
//! with the server closing the connection are read to EOF.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The sentinel appended to every conversation.
pub const SENTINEL: &[u8] = b"version\r\n";

/// How long to wait for a reply before giving up on a conversation.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for a server to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Fields of `stats` (and `stats settings`) whose *values* are not compared.
/// Names and order are always compared. Keep this list small and justified:
///
/// * `pid`, `uptime`, `time`: process id and clock, differ by nature.
/// * `version`, `libevent`: build identity (memcrab has no libevent).
/// * `rusage_user`, `rusage_system`: CPU time consumed, non-deterministic.
/// * `bytes_written`: every conversation's sentinel is answered with the
///   version string, whose length differs (`VERSION 1.6.18` vs memcrab's
///   own), and `stats` replies themselves contain the fields above.
/// * `lru_crawler_starts`, `lru_maintainer_juggles`: counters of memcached's
///   background threads; they tick with wall-clock time and differ between two
///   runs of memcached itself.
/// * `connection_structures`: connection objects allocated so far; depends on
///   how quickly the server noticed earlier clients closing (differs between
///   two runs of memcached itself).
/// * `tcpport` (`stats settings`): each server listens on its own free port.
/// * `domain_socket` (`stats settings`): each server has its own socket path.
pub const IGNORED_STATS: &[&str] = &[
    // memcached's buffer-pool internals; memcrab's buffers differ by design.
    "response_obj_count",
    "response_obj_bytes",
    "read_buf_count",
    "read_buf_bytes",
    "read_buf_bytes_free",
    "pid",
    "uptime",
    "time",
    "version",
    "libevent",
    "rusage_user",
    "rusage_system",
    "bytes_written",
    "lru_crawler_starts",
    "lru_maintainer_juggles",
    "connection_structures",
    "tcpport",
    "domain_socket",
];

/// Counters driven by memcached's LRU maintainer and LRU crawler threads
/// (reclaiming expired/flushed items, moving items between HOT/WARM/COLD):
/// with those threads running their values depend on timing, even between
/// two runs of memcached. (`total_items` too: incr/decr rewrite a counter in
/// place, or link a new item that `total_items` counts when one of those
/// threads holds a reference to the old one.) Tests that compare them exactly start both servers
/// with `-o no_lru_maintainer,no_lru_crawler`; others skip these.
pub const BACKGROUND_STATS: &[&str] = &[
    "curr_items",
    "get_expired",
    "get_flushed",
    "expired_unfetched",
    "evicted_unfetched",
    "evicted_active",
    "evictions",
    "reclaimed",
    "crawler_reclaimed",
    "crawler_items_checked",
    "lrutail_reflocked",
    "moves_to_cold",
    "moves_to_warm",
    "moves_within_lru",
    "direct_reclaims",
    "lru_bumps_dropped",
    "lru_crawler_running",
    "total_items",
];

/// Item-layout dependent fields: memcrab may store items with a smaller
/// header than memcached's 48-byte `item` struct, so the amount of memory
/// accounted to items legitimately differs. Only skipped where a test says so
/// (`bytes` in `stats`, `mem_requested` in `stats items`, per-class chunk usage
/// in `stats slabs`).
pub const LAYOUT_STATS: &[&str] = &[
    "bytes",
    "mem_requested",
    "total_malloced",
    "used_chunks",
    "free_chunks",
    "free_chunks_end",
    "total_chunks",
    "total_pages",
];

// ---------------------------------------------------------------------------
// Binaries

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The memcrab binary under test. Panics with instructions if it is missing.
pub fn subject_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MEMCRAB_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "MEMCRAB_BIN={} does not exist; run `cargo build --release` first \
             or point MEMCRAB_BIN at a memcrab binary",
            p.display()
        );
        return p;
    }
    let root = workspace_root();
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("memcrab");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "memcrab binary not found (looked at $MEMCRAB_BIN, {0}/target/release/memcrab, \
         {0}/target/debug/memcrab): run `cargo build --release` first",
        root.display()
    );
}

/// The reference memcached, or `None` (after printing a notice) when it is
/// missing. Panics instead when `MEMCRAB_REQUIRE_REFERENCE=1`.
pub fn reference_bin() -> Option<PathBuf> {
    let p = std::env::var_os("MEMCACHED_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/memcached"));
    if p.is_file() {
        return Some(p);
    }
    let required = std::env::var("MEMCRAB_REQUIRE_REFERENCE").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "reference memcached not found at {} and MEMCRAB_REQUIRE_REFERENCE=1 \
         (install Debian's memcached 1.6.18 or set MEMCACHED_BIN)",
        p.display()
    );
    eprintln!(
        "NOTICE: reference memcached not found at {}; differential test skipped \
         (set MEMCACHED_BIN, or MEMCRAB_REQUIRE_REFERENCE=1 to make this fatal)",
        p.display()
    );
    None
}

/// Both binaries, or `None` when the test must be skipped.
pub fn binaries() -> Option<(PathBuf, PathBuf)> {
    let reference = reference_bin()?;
    let subject = subject_bin();
    Some((reference, subject))
}

/// Which side of the comparison a server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Reference,
    Subject,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Reference => "memcached (reference)",
            Side::Subject => "memcrab (subject)",
        }
    }
}

// ---------------------------------------------------------------------------
// Servers

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A unique path in the temp directory (not created).
pub fn temp_path(tag: &str) -> PathBuf {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("memcrab-ptest-{}-{n}-{tag}", std::process::id()))
}

/// A free loopback TCP port (bind 127.0.0.1:0, read the port, release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Is something listening on 127.0.0.1:`port`? Uses /proc/net/tcp so that the
/// check does not open a connection (which would show up in `stats`).
fn is_listening(port: u16) -> bool {
    listening_inodes(port).is_some_and(|inodes| !inodes.is_empty())
        || (!std::path::Path::new("/proc/net/tcp").exists()
            && TcpStream::connect(("127.0.0.1", port)).is_ok())
}

/// Socket inodes listening on 127.0.0.1:`port` (`None` without procfs).
fn listening_inodes(port: u16) -> Option<Vec<String>> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let needle = format!("0100007F:{port:04X}");
    Some(
        table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f.get(1) == Some(&needle.as_str()) && f.get(3) == Some(&"0A"))
                    .then(|| f.get(9).map(|i| i.to_string()))
                    .flatten()
            })
            .collect(),
    )
}

/// Whether process `pid` itself listens on 127.0.0.1:`port`: another
/// test's server may have been handed the same free port meanwhile.
fn listens_itself(pid: u32, port: u16) -> bool {
    let Some(inodes) = listening_inodes(port) else {
        return is_listening(port);
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let t = target.to_string_lossy();
            inodes.iter().any(|i| t == format!("socket:[{i}]"))
        })
    })
}

/// Where a server listens.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp(u16),
    Unix(PathBuf),
}

/// A running server process, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub side: Side,
    pub endpoint: Endpoint,
    pub args: Vec<String>,
    stderr_path: PathBuf,
    exit: Option<ExitStatus>,
}

/// The standard arguments every server gets: `-u root -U 0 -l 127.0.0.1 -p PORT`.
pub fn standard_args(port: u16) -> Vec<String> {
    ["-u", "root", "-U", "0", "-l", "127.0.0.1", "-p"]
        .iter()
        .map(|s| s.to_string())
        .chain([port.to_string()])
        .collect()
}

impl Server {
    /// Start `bin` with the standard arguments plus `args` on a free port and
    /// wait until it listens. If `args` contain `-s PATH` the server is reached
    /// through that unix socket instead. Panics if it does not come up.
    pub fn start(bin: &Path, side: Side, args: &[&str]) -> Server {
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut full = standard_args(port);
            full.extend(args.iter().map(|s| s.to_string()));
            let unix = args
                .iter()
                .position(|a| *a == "-s")
                .and_then(|i| args.get(i + 1))
                .map(PathBuf::from);
            let endpoint = match unix {
                Some(p) => Endpoint::Unix(p),
                None => Endpoint::Tcp(port),
            };
            let mut server = Server::spawn(bin, side, &full, endpoint, &[]);
            match server.wait_ready(START_TIMEOUT) {
                Ok(()) => return server,
                Err(e) => {
                    last_err = e;
                    // A port collision with a parallel test makes the bind
                    // fail: retry on another port.
                }
            }
        }
        panic!(
            "{} ({}) did not start with args {:?}: {last_err}",
            side.name(),
            bin.display(),
            args
        );
    }

    /// Spawn `bin` with exactly `args` (no standard arguments added) and the
    /// given extra environment. Does not wait for anything.
    pub fn spawn(
        bin: &Path,
        side: Side,
        args: &[String],
        endpoint: Endpoint,
        env: &[(&str, OsString)],
    ) -> Server {
        let stderr_path = temp_path("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr file");
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
        Server {
            child: Some(child),
            side,
            endpoint,
            args: args.to_vec(),
            stderr_path,
            exit: None,
        }
    }

    /// Wait until the server accepts connections (or exits).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Err(format!(
                    "exited with {status} before listening; stderr: {}",
                    self.stderr()
                ));
            }
            let ready = match &self.endpoint {
                // Its own socket: a parallel test's server may hold the port.
                Endpoint::Tcp(port) => listens_itself(self.pid(), *port),
                Endpoint::Unix(path) => UnixStream::connect(path).is_ok(),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not listening after {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn port(&self) -> u16 {
        match &self.endpoint {
            Endpoint::Tcp(p) => *p,
            Endpoint::Unix(p) => panic!("server listens on unix socket {}", p.display()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Exit status if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_some() {
            return self.exit;
        }
        let child = self.child.as_mut()?;
        if let Ok(Some(status)) = child.try_wait() {
            self.exit = Some(status);
        }
        self.exit
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send a signal by name (`TERM`, `INT`, ...) with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Open a client connection.
    pub fn connect(&self) -> Conn {
        Conn::open(&self.endpoint)
    }

    /// Run one conversation on a fresh connection.
    pub fn converse(&self, bytes: &[u8]) -> Reply {
        self.connect().send(bytes)
    }

    /// `stats` (or `stats ARGS`) parsed into ordered (name, value) pairs.
    pub fn stats(&self, args: &str) -> Vec<(String, String)> {
        let cmd = if args.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {args}\r\n")
        };
        let r = self.converse(cmd.as_bytes());
        parse_stats(&r.bytes)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exit.is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.stderr_path);
        if let Endpoint::Unix(p) = &self.endpoint {
            let _ = std::fs::remove_file(p);
        }
    }
}

// ---------------------------------------------------------------------------
// Connections

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, d: Option<Duration>) {
        let _ = match self {
            Stream::Tcp(s) => s.set_read_timeout(d),
            Stream::Unix(s) => s.set_read_timeout(d),
        };
    }
    fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The outcome of one conversation.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Reply {
    /// Reply bytes, without the sentinel's reply.
    pub bytes: Vec<u8>,
    /// The server closed the connection (EOF or reset) before answering the
    /// sentinel.
    pub closed: bool,
    /// Neither the sentinel reply nor EOF arrived within [`REPLY_TIMEOUT`].
    pub timed_out: bool,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
    /// Readable rendering with \r, \n and non-printables escaped.
    pub fn render(&self) -> String {
        let mut s = escape(&self.bytes);
        if self.closed {
            s.push_str("<connection closed>");
        }
        if self.timed_out {
            s.push_str("<timed out>");
        }
        s
    }
}

/// How the payload is written.
#[derive(Clone, Copy, Debug)]
pub enum Delivery {
    /// One write.
    Whole,
    /// One byte per write, with a short pause between writes.
    Bytewise,
    /// Two writes, split at the given offset, with a pause in between.
    SplitAt(usize),
    /// Writes of the given size with a short pause in between.
    Chunks(usize),
}

/// A client connection.
pub struct Conn {
    stream: Stream,
    closed: bool,
    /// Bytes received after the last sentinel reply (kept for the next read).
    pending: Vec<u8>,
}

impl Conn {
    pub fn open(endpoint: &Endpoint) -> Conn {
        let stream = match endpoint {
            Endpoint::Tcp(port) => {
                let s = TcpStream::connect(("127.0.0.1", *port))
                    .unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
            Endpoint::Unix(path) => Stream::Unix(
                UnixStream::connect(path)
                    .unwrap_or_else(|e| panic!("connect {}: {e}", path.display())),
            ),
        };
        Conn {
            stream,
            closed: false,
            pending: Vec::new(),
        }
    }

    /// Write raw bytes; errors (peer closed) are remembered, not raised.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        if self.stream.write_all(bytes).is_err() {
            self.closed = true;
        }
    }

    /// Half-close the connection (no more requests).
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown_write();
    }

    /// Send `payload` followed by the sentinel in one write and read the replies.
    pub fn send(&mut self, payload: &[u8]) -> Reply {
        self.send_with(payload, Delivery::Whole)
    }

    /// Send `payload` (delivered as requested) followed by the sentinel, then
    /// read until the sentinel's reply, EOF, or timeout. The number of
    /// `VERSION` replies expected is one more than the number of payload lines
    /// that are exactly `version`.
    pub fn send_with(&mut self, payload: &[u8], how: Delivery) -> Reply {
        let expected = 1 + count_version_commands(payload);
        self.send_expecting(payload, how, expected)
    }

    /// Like [`Conn::send_with`] with an explicit count of `VERSION` replies
    /// (including the sentinel's).
    pub fn send_expecting(&mut self, payload: &[u8], how: Delivery, versions: usize) -> Reply {
        let mut all = payload.to_vec();
        all.extend_from_slice(SENTINEL);
        match how {
            Delivery::Whole => self.write_raw(&all),
            Delivery::Bytewise => {
                for b in payload {
                    self.write_raw(std::slice::from_ref(b));
                    thread::sleep(Duration::from_micros(300));
                }
                self.write_raw(SENTINEL);
            }
            Delivery::SplitAt(at) => {
                let at = at.min(payload.len());
                self.write_raw(&all[..at]);
                thread::sleep(Duration::from_millis(2));
                self.write_raw(&all[at..]);
            }
            Delivery::Chunks(n) => {
                for piece in all.chunks(n.max(1)) {
                    self.write_raw(piece);
                    thread::sleep(Duration::from_micros(500));
                }
            }
        }
        self.read_reply(versions, REPLY_TIMEOUT)
    }

    /// Read until `versions` top-level `VERSION` lines arrived (then strip the
    /// last one), EOF, or `timeout`.
    pub fn read_reply(&mut self, versions: usize, timeout: Duration) -> Reply {
        self.read_until(timeout, |buf| sentinel_position(buf, versions))
    }

    /// Reads until `end` finds where the reply ends in what arrived (the
    /// reply is `buf[..start]`; bytes from `end` on are kept for the next
    /// read), EOF, or `timeout`.
    fn read_until(
        &mut self,
        timeout: Duration,
        mut end: impl FnMut(&[u8]) -> Option<(usize, usize)>,
    ) -> Reply {
        let deadline = Instant::now() + timeout;
        let mut buf = std::mem::take(&mut self.pending);
        let mut chunk = vec![0u8; 64 * 1024];
        let (closed, timed_out) = loop {
            if let Some((start, stop)) = end(&buf) {
                self.pending = buf.split_off(stop);
                buf.truncate(start);
                break (false, false);
            }
            let now = Instant::now();
            if now >= deadline {
                break (false, true);
            }
            self.stream.set_read_timeout(Some(deadline - now));
            match self.stream.read(&mut chunk) {
                Ok(0) => break (true, false),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                    ) => {}
                // Reset by peer and the like: the server closed.
                Err(_) => break (true, false),
            }
        };
        self.closed |= closed;
        Reply {
            bytes: buf,
            closed,
            timed_out,
        }
    }

    /// `stats ARGS` on this connection, parsed.
    pub fn stats(&mut self, args: &str) -> Stats {
        let cmd = if args.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {args}\r\n")
        };
        let r = self.send(cmd.as_bytes());
        assert!(!r.closed && !r.timed_out, "{cmd:?} failed: {}", r.render());
        parse_stats(&r.bytes)
    }

    /// Whether bytes arrived after the last sentinel reply (a sign that a
    /// conversation produced more `VERSION` lines than expected).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Read until the received bytes end with `suffix`, EOF, or `timeout`
    /// (for replies that must not be followed by a pipelined sentinel).
    pub fn read_until_suffix(&mut self, suffix: &[u8], timeout: Duration) -> Reply {
        self.read_until(timeout, |buf| {
            buf.ends_with(suffix).then_some((buf.len(), buf.len()))
        })
    }

    /// Read whatever arrives until EOF or `timeout` (no sentinel involved).
    pub fn read_to_eof(&mut self, timeout: Duration) -> Reply {
        self.read_reply(usize::MAX, timeout)
    }
}

/// Connect to 127.0.0.1:`port`, send `bytes` (plus the sentinel) and return
/// the replies (without the sentinel's). If the server closes the
/// connection, everything up to EOF is returned.
pub fn converse(port: u16, bytes: &[u8]) -> Vec<u8> {
    Conn::open(&Endpoint::Tcp(port)).send(bytes).bytes
}

/// Count payload lines that are `version` commands (first space-separated
/// token `version`), so that the sentinel's reply count includes theirs.
/// Lines inside data blocks are not told apart: use
/// [`Conn::send_expecting`] for payloads whose data looks like a command.
pub fn count_version_commands(payload: &[u8]) -> usize {
    payload
        .split(|&b| b == b'\n')
        .filter(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l.split(|&b| b == b' ').find(|t| !t.is_empty()) == Some(b"version")
        })
        .count()
}

/// Walk the reply stream line by line, skipping `VALUE` data blocks, and
/// return the offsets where the `n`-th top-level `VERSION` line starts and
/// ends, if that line is complete.
fn sentinel_position(buf: &[u8], n: usize) -> Option<(usize, usize)> {
    let mut pos = 0;
    let mut seen = 0;
    while pos < buf.len() {
        let nl = buf[pos..].iter().position(|&b| b == b'\n')?;
        let line = &buf[pos..pos + nl + 1];
        let start = pos;
        pos += nl + 1;
        if line.starts_with(b"VERSION ") {
            seen += 1;
            if seen == n {
                return Some((start, pos));
            }
        } else if let Some(len) = value_data_len(line) {
            pos += len + 2;
        }
    }
    None
}

/// For a `VALUE key flags bytes [cas]\r\n` line, or a meta `VA bytes
/// <flags>*\r\n` line, the data length.
fn value_data_len(line: &[u8]) -> Option<usize> {
    if let Some(rest) = line.strip_prefix(b"VA ") {
        let text = std::str::from_utf8(rest).ok()?;
        return text.split_whitespace().next()?.parse().ok();
    }
    let rest = line.strip_prefix(b"VALUE ")?;
    let text = std::str::from_utf8(rest).ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

// ---------------------------------------------------------------------------
// Normalization and display

/// Replace the text after `VERSION ` on top-level reply lines with
/// `<version>`: the only normalization applied to plain conversations.
pub fn normalize(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            out.extend_from_slice(&bytes[pos..]);
            break;
        };
        let line = &bytes[pos..pos + nl + 1];
        pos += nl + 1;
        if line.starts_with(b"VERSION ") && line.ends_with(b"\r\n") {
            out.extend_from_slice(b"VERSION <version>\r\n");
        } else {
            out.extend_from_slice(line);
            if let Some(len) = value_data_len(line) {
                let end = (pos + len + 2).min(bytes.len());
                out.extend_from_slice(&bytes[pos..end]);
                pos = end;
            }
        }
    }
    out
}

/// Escape bytes for display: printable ASCII as is, `\r` `\n` `\t` `\\` and
/// `\xNN` escapes otherwise; a real newline follows every `\n`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

/// Short one-line description of a conversation for failure messages.
pub fn describe(bytes: &[u8]) -> String {
    const MAX: usize = 160;
    let head = literal(&bytes[..bytes.len().min(MAX)]);
    if bytes.len() > MAX {
        format!("\"{head}\"... ({} bytes)", bytes.len())
    } else {
        format!("\"{head}\"")
    }
}

/// Escape bytes as a Rust byte-string literal body (single line).
pub fn literal(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

fn truncate_for_display(s: String) -> String {
    const MAX: usize = 6000;
    if s.len() <= MAX {
        return s;
    }
    let mut cut = MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... [{} more bytes]", &s[..cut], s.len() - cut)
}

/// Assert two replies are equal after [`normalize`], with a readable report.
pub fn assert_same(context: &str, reference: &Reply, subject: &Reply) {
    let r = Reply {
        bytes: normalize(&reference.bytes),
        ..reference.clone()
    };
    let s = Reply {
        bytes: normalize(&subject.bytes),
        ..subject.clone()
    };
    if r == s {
        return;
    }
    let first = r
        .bytes
        .iter()
        .zip(&s.bytes)
        .position(|(a, b)| a != b)
        .unwrap_or(r.bytes.len().min(s.bytes.len()));
    panic!(
        "\n=== {context}: memcrab differs from memcached (first difference at byte {first}) ===\n\
         --- memcached (reference) ---\n{}\n--- memcrab (subject) ---\n{}\n",
        truncate_for_display(r.render()),
        truncate_for_display(s.render()),
    );
}

/// Assert the reference's (normalized) reply is the recorded 1.6.18 reply.
pub fn assert_reference(context: &str, reference: &Reply, expected: &[u8]) {
    let got = normalize(&reference.bytes);
    if got == expected && !reference.timed_out {
        return;
    }
    if std::env::var_os("PTESTS_RECORD").is_some() {
        // Development aid: print the literal instead of failing.
        let test = thread::current().name().unwrap_or("?").to_string();
        eprintln!("RECORD {test} {context}\n    b\"{}\"", literal(&got));
        return;
    }
    panic!(
        "\n=== {context}: the reference memcached no longer behaves as recorded for 1.6.18 ===\n\
         --- recorded ---\n{}\n--- reference now ---\n{}\n--- as literal ---\nb\"{}\"\n",
        truncate_for_display(escape(expected)),
        truncate_for_display(reference.render()),
        literal(&got),
    );
}

// ---------------------------------------------------------------------------
// Meta replies

/// Whether two meta-protocol reply streams are the same but for what the
/// clocks of two processes legitimately differ on: times in seconds (`t`
/// and `l` flags of `VA`/`HD` lines, `exp=` and `la=` of `ME` lines) may be
/// one apart, as each server's clock ticks at its own moment. `ME` lines'
/// `cls=` and `size=` describe the item layout, which differs by design
/// (docs/compatibility.md), and are not compared. Everything else, data
/// blocks included, must be equal byte for byte.
pub fn meta_equivalent(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (normalize(a), normalize(b));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (Some(na), Some(nb)) = (
            a[i..].iter().position(|&c| c == b'\n'),
            b[j..].iter().position(|&c| c == b'\n'),
        ) else {
            return a[i..] == b[j..];
        };
        let (la, lb) = (&a[i..i + na + 1], &b[j..j + nb + 1]);
        if !meta_lines_match(la, lb) {
            return false;
        }
        i += na + 1;
        j += nb + 1;
        if let Some(len) = value_data_len(la) {
            let (ea, eb) = ((i + len + 2).min(a.len()), (j + len + 2).min(b.len()));
            if a[i..ea] != b[j..eb] {
                return false;
            }
            (i, j) = (ea, eb);
        }
    }
    a.len() - i == b.len() - j && a[i..] == b[j..]
}

fn meta_lines_match(a: &[u8], b: &[u8]) -> bool {
    let timed = [&b"VA "[..], b"HD", b"ME "];
    if a == b || !timed.iter().any(|p| a.starts_with(p)) {
        return a == b;
    }
    let (Ok(a), Ok(b)) = (std::str::from_utf8(a), std::str::from_utf8(b)) else {
        return false;
    };
    let (ta, tb): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
    // The code, and the length of `VA` or the key of `ME`, are exact.
    let fixed = if a.starts_with("HD") { 1 } else { 2 };
    ta.len() == tb.len()
        && ta.iter().zip(&tb).enumerate().all(|(n, (x, y))| {
            if x == y || n < fixed {
                return x == y;
            }
            let me = a.starts_with("ME ");
            let ignored = me && ["cls=", "size="].iter().any(|p| x.starts_with(p));
            let timed = if me {
                &["exp=", "la="][..]
            } else {
                &["t", "l"][..]
            };
            let close = timed.iter().any(|p| {
                let (Some(u), Some(v)) = (x.strip_prefix(p), y.strip_prefix(p)) else {
                    return false;
                };
                let (u, v) = (u.trim_end(), v.trim_end());
                matches!((u.parse::<i64>(), v.parse::<i64>()), (Ok(u), Ok(v)) if (u - v).abs() <= 1)
            });
            ignored && x.split('=').next() == y.split('=').next() || close
        })
}

/// Assert two meta reply streams are [`meta_equivalent`].
pub fn assert_meta_same(context: &str, reference: &Reply, subject: &Reply) {
    if meta_equivalent(&reference.bytes, &subject.bytes)
        && (reference.closed, reference.timed_out) == (subject.closed, subject.timed_out)
    {
        return;
    }
    panic!(
        "\n=== {context}: memcrab differs from memcached ===\n\
         --- memcached (reference) ---\n{}\n--- memcrab (subject) ---\n{}\n",
        truncate_for_display(reference.render()),
        truncate_for_display(subject.render()),
    );
}

/// Assert the reference's meta reply is (up to the clock, see
/// [`meta_equivalent`]) the recorded 1.6.18 reply.
pub fn assert_meta_reference(context: &str, reference: &Reply, expected: &[u8]) {
    if meta_equivalent(&reference.bytes, expected) && !reference.timed_out {
        return;
    }
    assert_reference(context, reference, expected);
}

// ---------------------------------------------------------------------------
// Binary protocol

/// Building and reading binary-protocol packets.
pub mod bin {
    /// Opcodes.
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCR: u8 = 0x05;
    pub const DECR: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCRQ: u8 = 0x15;
    pub const DECRQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;

    /// Statuses.
    pub const OK: u16 = 0x00;
    pub const NOT_FOUND: u16 = 0x01;
    pub const EXISTS: u16 = 0x02;
    pub const TOO_LARGE: u16 = 0x03;
    pub const INVALID: u16 = 0x04;
    pub const NOT_STORED: u16 = 0x05;
    pub const NON_NUMERIC: u16 = 0x06;
    pub const AUTH_ERROR: u16 = 0x20;
    pub const UNKNOWN: u16 = 0x81;

    /// The opaque of the sentinel `noop` that ends every conversation.
    pub const SENTINEL_OPAQUE: u32 = 0x5e47_1e7f;

    /// A request packet; `body_len` overrides the computed body length.
    #[derive(Clone, Debug, Default)]
    pub struct Req<'a> {
        pub magic: Option<u8>,
        pub opcode: u8,
        pub key: &'a [u8],
        pub extras: &'a [u8],
        pub value: &'a [u8],
        pub opaque: u32,
        pub cas: u64,
        pub body_len: Option<u32>,
    }

    impl Req<'_> {
        pub fn bytes(&self) -> Vec<u8> {
            let body = self.extras.len() + self.key.len() + self.value.len();
            let mut b = vec![self.magic.unwrap_or(0x80), self.opcode];
            b.extend_from_slice(&(self.key.len() as u16).to_be_bytes());
            b.push(self.extras.len() as u8);
            b.extend_from_slice(&[0, 0, 0]);
            b.extend_from_slice(&self.body_len.unwrap_or(body as u32).to_be_bytes());
            b.extend_from_slice(&self.opaque.to_be_bytes());
            b.extend_from_slice(&self.cas.to_be_bytes());
            b.extend_from_slice(self.extras);
            b.extend_from_slice(self.key);
            b.extend_from_slice(self.value);
            b
        }
    }

    /// A request with just an opcode, key and opaque.
    pub fn req(opcode: u8, key: &[u8], opaque: u32) -> Vec<u8> {
        Req {
            opcode,
            key,
            opaque,
            ..Req::default()
        }
        .bytes()
    }

    /// set/add/replace (and quiet forms): flags and expiry as extras.
    pub fn store(
        opcode: u8,
        key: &[u8],
        flags: u32,
        exptime: u32,
        value: &[u8],
        cas: u64,
        opaque: u32,
    ) -> Vec<u8> {
        let mut extras = flags.to_be_bytes().to_vec();
        extras.extend_from_slice(&exptime.to_be_bytes());
        Req {
            opcode,
            key,
            extras: &extras,
            value,
            opaque,
            cas,
            ..Req::default()
        }
        .bytes()
    }

    /// incr/decr (and quiet forms): delta, initial, expiry as extras.
    pub fn delta(
        opcode: u8,
        key: &[u8],
        delta: u64,
        initial: u64,
        exptime: u32,
        cas: u64,
        opaque: u32,
    ) -> Vec<u8> {
        let mut extras = delta.to_be_bytes().to_vec();
        extras.extend_from_slice(&initial.to_be_bytes());
        extras.extend_from_slice(&exptime.to_be_bytes());
        Req {
            opcode,
            key,
            extras: &extras,
            opaque,
            cas,
            ..Req::default()
        }
        .bytes()
    }

    /// touch/gat family: the expiry as extras.
    pub fn touch(opcode: u8, key: &[u8], exptime: u32, opaque: u32) -> Vec<u8> {
        Req {
            opcode,
            key,
            extras: &exptime.to_be_bytes(),
            opaque,
            ..Req::default()
        }
        .bytes()
    }

    /// A response packet.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Packet {
        pub magic: u8,
        pub opcode: u8,
        pub data_type: u8,
        pub status: u16,
        pub opaque: u32,
        pub cas: u64,
        pub extras: Vec<u8>,
        pub key: Vec<u8>,
        pub value: Vec<u8>,
    }

    /// The complete packets at the start of `b`, and the bytes left over.
    pub fn parse(mut b: &[u8]) -> (Vec<Packet>, &[u8]) {
        let mut out = Vec::new();
        while b.len() >= 24 {
            let key_len = u16::from_be_bytes([b[2], b[3]]) as usize;
            let extras_len = b[4] as usize;
            let body = u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize;
            if b.len() < 24 + body || extras_len + key_len > body {
                break;
            }
            let rest = &b[24..24 + body];
            out.push(Packet {
                magic: b[0],
                opcode: b[1],
                data_type: b[5],
                status: u16::from_be_bytes([b[6], b[7]]),
                opaque: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
                cas: u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
                extras: rest[..extras_len].to_vec(),
                key: rest[extras_len..extras_len + key_len].to_vec(),
                value: rest[extras_len + key_len..].to_vec(),
            });
            b = &b[24 + body..];
        }
        (out, b)
    }

    /// Where the reply to the sentinel noop ends, if it has arrived.
    pub fn sentinel_end(b: &[u8]) -> Option<(usize, usize)> {
        let mut at = 0;
        let (packets, _) = parse(b);
        for p in packets {
            let len = 24 + p.extras.len() + p.key.len() + p.value.len();
            if p.opcode == NOOP && p.opaque == SENTINEL_OPAQUE {
                return Some((at, at + len));
            }
            at += len;
        }
        None
    }

    /// One line per packet, for failure messages.
    pub fn render(b: &[u8]) -> String {
        let (packets, rest) = parse(b);
        let mut s = String::new();
        for p in packets {
            s.push_str(&format!(
                "{:#04x} op={:#04x} status={:#06x} opaque={:#x} cas={} extras={} key=\"{}\" value=\"{}\"\n",
                p.magic,
                p.opcode,
                p.status,
                p.opaque,
                p.cas,
                super::literal(&p.extras),
                super::literal(&p.key),
                super::literal(&super::truncate_bytes(&p.value, 200)),
            ));
        }
        if !rest.is_empty() {
            s.push_str(&format!(
                "+ {} bytes: \"{}\"\n",
                rest.len(),
                super::literal(&super::truncate_bytes(rest, 200))
            ));
        }
        s
    }

    /// The statistics of a stat reply, as [`super::Stats`] (the terminating
    /// empty packet ends them).
    pub fn stats(b: &[u8]) -> super::Stats {
        parse(b)
            .0
            .into_iter()
            .take_while(|p| !p.key.is_empty())
            .map(|p| {
                (
                    String::from_utf8_lossy(&p.key).into_owned(),
                    String::from_utf8_lossy(&p.value).into_owned(),
                )
            })
            .collect()
    }
}

fn truncate_bytes(b: &[u8], max: usize) -> Vec<u8> {
    b[..b.len().min(max)].to_vec()
}

impl Conn {
    /// Sends binary `payload` followed by a sentinel `noop`, and reads until
    /// the sentinel's reply (stripped), EOF or timeout.
    pub fn send_binary(&mut self, payload: &[u8]) -> Reply {
        let mut all = payload.to_vec();
        all.extend(bin::req(bin::NOOP, b"", bin::SENTINEL_OPAQUE));
        self.write_raw(&all);
        self.read_binary_reply(REPLY_TIMEOUT)
    }

    /// Reads until the sentinel noop's reply, EOF, or `timeout`.
    pub fn read_binary_reply(&mut self, timeout: Duration) -> Reply {
        self.read_until(timeout, bin::sentinel_end)
    }
}

/// Assert two binary reply streams are equal byte for byte.
pub fn assert_binary_same(context: &str, reference: &Reply, subject: &Reply) {
    if reference == subject {
        return;
    }
    let flags = |r: &Reply| {
        format!(
            "{}{}",
            if r.closed { "<connection closed>" } else { "" },
            if r.timed_out { "<timed out>" } else { "" }
        )
    };
    panic!(
        "\n=== {context}: memcrab differs from memcached ===\n\
         --- memcached (reference) ---\n{}{}\n--- memcrab (subject) ---\n{}{}\n",
        bin::render(&reference.bytes),
        flags(reference),
        bin::render(&subject.bytes),
        flags(subject),
    );
}

// ---------------------------------------------------------------------------
// Pairs of servers

/// The reference and the subject started with the same arguments.
pub struct Pair {
    pub reference: Server,
    pub subject: Server,
}

impl Pair {
    /// Start both servers with `args` (plus the standard arguments), or
    /// `None` when the reference is missing (test skipped).
    pub fn start(args: &[&str]) -> Option<Pair> {
        let (reference, subject) = binaries()?;
        let (r, s) = thread::scope(|scope| {
            let r = scope.spawn(|| Server::start(&reference, Side::Reference, args));
            let s = Server::start(&subject, Side::Subject, args);
            (r.join(), s)
        });
        let r = r.unwrap_or_else(|e| std::panic::resume_unwind(e));
        Some(Pair {
            reference: r,
            subject: s,
        })
    }

    /// Both servers, reference first.
    pub fn servers(&self) -> [&Server; 2] {
        [&self.reference, &self.subject]
    }

    /// Run `f` against both servers concurrently (useful for tests that sleep).
    pub fn run<T: Send>(&self, f: impl Fn(&Server) -> T + Sync) -> (T, T) {
        thread::scope(|scope| {
            let r = scope.spawn(|| f(&self.reference));
            let s = f(&self.subject);
            (r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), s)
        })
    }

    /// Mutable variant of [`Pair::run`] (sequential).
    pub fn run_mut<T>(&mut self, mut f: impl FnMut(&mut Server) -> T) -> (T, T) {
        let r = f(&mut self.reference);
        let s = f(&mut self.subject);
        (r, s)
    }

    /// One conversation on a fresh connection to each server; asserts equal
    /// replies and returns the reference's.
    pub fn diff(&self, conversation: &[u8]) -> Reply {
        self.diff_with(conversation, Delivery::Whole)
    }

    pub fn diff_with(&self, conversation: &[u8], how: Delivery) -> Reply {
        let (r, s) = self.run(|srv| srv.connect().send_with(conversation, how));
        let context = format!("conversation {} delivered {how:?}", describe(conversation));
        assert_same(&context, &r, &s);
        r
    }

    /// [`Pair::diff`] and assert the reference said exactly `expected`
    /// (normalized; the reply must not have closed the connection).
    pub fn check(&self, conversation: &[u8], expected: &[u8]) {
        let r = self.diff(conversation);
        assert_reference(&describe(conversation), &r, expected);
        assert!(!r.closed, "reference closed the connection");
    }

    /// Send each step on one persistent connection per server, comparing the
    /// replies step by step and checking the reference against the recorded
    /// reply.
    pub fn steps(&self, steps: &[(&[u8], &[u8])]) {
        let mut rc = self.reference.connect();
        let mut sc = self.subject.connect();
        for (i, (send, expected)) in steps.iter().enumerate() {
            let r = rc.send(send);
            let s = sc.send(send);
            let context = format!("step {i} {}", describe(send));
            assert_reference(&context, &r, expected);
            assert_same(&context, &r, &s);
            assert!(
                !rc.has_pending(),
                "{context}: more VERSION replies than expected; use Conn::send_expecting"
            );
        }
    }

    /// [`Pair::steps`] for meta commands: times may differ by a second, and
    /// `me`'s item layout is not compared (see [`meta_equivalent`]).
    pub fn meta_steps(&self, steps: &[(&[u8], &[u8])]) {
        let mut rc = self.reference.connect();
        let mut sc = self.subject.connect();
        for (i, (send, expected)) in steps.iter().enumerate() {
            let (r, s) = thread::scope(|scope| {
                let r = scope.spawn(|| rc.send(send));
                (
                    r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                    sc.send(send),
                )
            });
            let context = format!("step {i} {}", describe(send));
            assert_meta_reference(&context, &r, expected);
            assert_meta_same(&context, &r, &s);
            assert!(
                !rc.has_pending(),
                "{context}: more VERSION replies than expected; use Conn::send_expecting"
            );
        }
    }

    /// Binary conversations, one step after another on one connection per
    /// server: replies must be equal byte for byte. Returns the reference's
    /// replies, for the test to check what memcached said.
    pub fn binary_steps(&self, steps: &[&[u8]]) -> Vec<Reply> {
        let mut rc = self.reference.connect();
        let mut sc = self.subject.connect();
        let mut replies = Vec::new();
        for (i, send) in steps.iter().enumerate() {
            let (r, s) = thread::scope(|scope| {
                let r = scope.spawn(|| rc.send_binary(send));
                (
                    r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                    sc.send_binary(send),
                )
            });
            let context = format!("step {i}:\n{}", bin::render(send));
            assert!(!r.timed_out, "{context}: the reference did not answer");
            assert_binary_same(&context, &r, &s);
            replies.push(r);
        }
        replies
    }

    /// Like [`Pair::steps`] without recorded replies.
    pub fn diff_steps(&self, steps: &[&[u8]]) -> Vec<Reply> {
        let mut rc = self.reference.connect();
        let mut sc = self.subject.connect();
        steps
            .iter()
            .enumerate()
            .map(|(i, send)| {
                let r = rc.send(send);
                let s = sc.send(send);
                assert_same(&format!("step {i} {}", describe(send)), &r, &s);
                r
            })
            .collect()
    }

    /// The binary protocol's stat listing from both servers.
    pub fn stats_binary(&self) -> (Stats, Stats) {
        self.run(|srv| {
            bin::stats(
                &srv.connect()
                    .send_binary(&bin::req(bin::STAT, b"", 0))
                    .bytes,
            )
        })
    }

    /// `stats ARGS` from both servers.
    pub fn stats(&self, args: &str) -> (Stats, Stats) {
        (self.reference.stats(args), self.subject.stats(args))
    }
}

/// One-shot: start both servers with `args`, run `conversation`, compare,
/// return the reference's reply (`None` when skipped).
pub fn diff(args: &[&str], conversation: &[u8]) -> Option<Reply> {
    let pair = Pair::start(args)?;
    Some(pair.diff(conversation))
}

/// One-shot: like [`diff`] and assert the reference's reply is `expected`.
pub fn check(args: &[&str], conversation: &[u8], expected: &[u8]) {
    if let Some(pair) = Pair::start(args) {
        pair.check(conversation, expected);
    }
}

/// Start a [`Pair`] or return from the calling test (reference missing).
#[macro_export]
macro_rules! pair {
    ($($arg:expr),* $(,)?) => {
        match $crate::Pair::start(&[$($arg),*]) {
            Some(p) => p,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------
// Stats

/// Ordered `(name, value)` pairs.
pub type Stats = Vec<(String, String)>;

/// Parse `STAT name value\r\n ... END\r\n` (any other line is kept as a
/// pair with an empty name, so that it shows up in comparisons).
pub fn parse_stats(bytes: &[u8]) -> Stats {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for line in text.split("\r\n") {
        if line.is_empty() || line == "END" {
            continue;
        }
        match line.strip_prefix("STAT ") {
            Some(rest) => {
                let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push((name.to_string(), value.to_string()));
            }
            None => out.push((String::new(), line.to_string())),
        }
    }
    out
}

/// Look a stat up by name.
pub fn stat<'a>(stats: &'a Stats, name: &str) -> Option<&'a str> {
    stats
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Look a numeric stat up by name (panics if missing or not a number).
pub fn stat_u64(stats: &Stats, name: &str) -> u64 {
    let v = stat(stats, name).unwrap_or_else(|| panic!("no stat {name:?} in {stats:?}"));
    v.parse()
        .unwrap_or_else(|_| panic!("stat {name} = {v:?} is not a number"))
}

fn render_stats(stats: &Stats) -> String {
    stats
        .iter()
        .map(|(n, v)| format!("{n} {v}\n"))
        .collect::<String>()
}

/// Assert the field names and their order are identical, and the values too
/// except for fields whose name (or the part after the last `:`, for
/// per-class stats like `items:1:number`) is in `ignored`.
pub fn assert_stats_eq(context: &str, reference: &Stats, subject: &Stats, ignored: &[&str]) {
    let ignored: HashSet<&str> = ignored.iter().copied().collect();
    let names = |s: &Stats| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(reference) != names(subject) {
        panic!(
            "\n=== {context}: stats field names/order differ ===\n--- memcached ---\n{}--- memcrab ---\n{}",
            render_stats(reference),
            render_stats(subject)
        );
    }
    let mut diffs = String::new();
    for ((n, rv), (_, sv)) in reference.iter().zip(subject) {
        let short = n.rsplit(':').next().unwrap_or(n);
        if ignored.contains(n.as_str()) || ignored.contains(short) {
            continue;
        }
        if rv != sv {
            let _ = writeln!(diffs, "{n}: memcached {rv:?} vs memcrab {sv:?}");
        }
    }
    assert!(
        diffs.is_empty(),
        "\n=== {context}: stats values differ ===\n{diffs}--- memcached ---\n{}--- memcrab ---\n{}",
        render_stats(reference),
        render_stats(subject)
    );
}

/// Keep only the fields whose short name (after the last `:`) is in `keep`.
pub fn filter_stats(stats: &Stats, keep: &[&str]) -> Stats {
    stats
        .iter()
        .filter(|(n, _)| keep.contains(&n.rsplit(':').next().unwrap_or(n)))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------
// Running a binary to completion (command-line tests)

/// Outcome of running a binary that is expected to exit by itself.
#[derive(Debug)]
pub struct Run {
    /// `None` if it did not exit within the timeout (it was then killed).
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether the port passed with `-p` was listening at any point while
    /// it ran (checked by polling).
    pub listened: bool,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

/// Run `bin` with exactly `args`, wait up to `timeout` for it to exit, and
/// watch `port` for listening sockets meanwhile.
pub fn run_to_exit(bin: &Path, args: &[String], port: Option<u16>, timeout: Duration) -> Run {
    let out_path = temp_path("stdout");
    let err_path = temp_path("stderr");
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("create stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
    let deadline = Instant::now() + timeout;
    let mut listened = false;
    let status = loop {
        if let Some(p) = port {
            listened |= listens_itself(child.id(), p);
        }
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let stdout = std::fs::read(&out_path).unwrap_or_default();
    let stderr = std::fs::read(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    Run {
        status,
        stdout,
        stderr,
        listened,
    }
}

// ---------------------------------------------------------------------------
// Small helpers for building conversations

/// `set KEY FLAGS EXPTIME LEN\r\nVALUE\r\n`
pub fn set_cmd(key: &str, flags: u32, exptime: i64, value: &[u8]) -> Vec<u8> {
    storage_cmd("set", key, flags, exptime, value)
}

/// `CMD KEY FLAGS EXPTIME LEN\r\nVALUE\r\n`
pub fn storage_cmd(cmd: &str, key: &str, flags: u32, exptime: i64, value: &[u8]) -> Vec<u8> {
    let mut v = format!("{cmd} {key} {flags} {exptime} {}\r\n", value.len()).into_bytes();
    v.extend_from_slice(value);
    v.extend_from_slice(b"\r\n");
    v
}

/// Concatenate byte pieces.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_skips_value_blocks() {
        let buf = b"VALUE k 0 16\r\nVERSION 1.2.3\r\n\r\nEND\r\nVERSION 1.6.18\r\n";
        assert_eq!(sentinel_position(buf, 1), Some((buf.len() - 16, buf.len())));
        assert_eq!(
            sentinel_position(b"VERSION 1\r\nVERSION 2\r\n", 2),
            Some((11, 22))
        );
        assert_eq!(sentinel_position(b"VERSION 1\r\nVERSION 2", 2), None);
    }

    #[test]
    fn normalizes_version_only_at_top_level() {
        let buf = b"VALUE k 0 11\r\nVERSION 1\r\n\r\nVERSION 1.6.18\r\n";
        assert_eq!(
            normalize(buf),
            b"VALUE k 0 11\r\nVERSION 1\r\n\r\nVERSION <version>\r\n".to_vec()
        );
    }

    #[test]
    fn counts_version_commands() {
        assert_eq!(count_version_commands(b"version\r\nget a\r\nversion\n"), 2);
        assert_eq!(count_version_commands(b"versions\r\n"), 0);
        assert_eq!(count_version_commands(b"  version extra\r\n"), 1);
    }

    #[test]
    fn meta_replies_compare_up_to_the_clock() {
        assert!(meta_equivalent(b"HD t29 c3\r\n", b"HD t30 c3\r\n"));
        assert!(!meta_equivalent(b"HD t28 c3\r\n", b"HD t30 c3\r\n"));
        assert!(!meta_equivalent(b"HD t29 c3\r\n", b"HD t29 c4\r\n"));
        assert!(meta_equivalent(b"VA 2 l1\r\nt1\r\n", b"VA 2 l0\r\nt1\r\n"));
        assert!(!meta_equivalent(b"VA 2 l1\r\nt1\r\n", b"VA 2 l1\r\nt2\r\n"));
        assert!(meta_equivalent(
            b"ME a exp=-29 la=1 cas=3 fetch=yes cls=1 size=66\r\n",
            b"ME a exp=-30 la=1 cas=3 fetch=yes cls=2 size=23\r\n"
        ));
        assert!(!meta_equivalent(
            b"ME a exp=-1 la=1 cas=3 fetch=no cls=1 size=66\r\n",
            b"ME a exp=-1 la=1 cas=3 fetch=yes cls=1 size=66\r\n"
        ));
        assert!(!meta_equivalent(b"HD\r\n", b"HD\r\nHD\r\n"));
        // Data that looks like a sentinel is skipped.
        assert_eq!(
            sentinel_position(b"VA 15 t1\r\nVERSION 1.2.3\r\n\r\nVERSION 1\r\n", 1),
            Some((27, 38))
        );
    }

    #[test]
    fn parses_stats() {
        let s = parse_stats(b"STAT pid 1\r\nSTAT libevent 2.1 x\r\nEND\r\n");
        assert_eq!(
            s,
            vec![
                ("pid".into(), "1".into()),
                ("libevent".into(), "2.1 x".into())
            ]
        );
    }
}
