//! memcached's UDP protocol (`-U`), as memcached 1.6.18 speaks it.
//!
//! Every datagram starts with an 8-byte frame header: request id, sequence
//! number, datagram count, reserved (big-endian u16s). A request must fit one
//! datagram: memcached drops datagrams of 8 bytes or less and those whose
//! count is not 1, silently. The text protocol follows the header and runs
//! through [`text::process`] unchanged.
//!
//! memcached treats a UDP socket as one long-lived connection per worker
//! thread, and its quirks are visible on the wire; memcrab serves each socket
//! with one such connection (memcached with `-t 1`) and reproduces them:
//!
//! * Each command gets its own response object, and each key of a multi-get
//!   one more. Every response is sent as its own run of datagrams of at most
//!   1400 bytes (header included), numbered 0.., all carrying the request id
//!   and the run's length. An empty response (a multi-get whose first key
//!   missed, `quit`) goes out as a bare header with a count of 0 when it is
//!   the first of a flush; after something was sent it is dropped.
//! * Responses are flushed, as over TCP, at the end of the datagram, after a
//!   get or `mn`, and every `-R` commands (`conn_yields`). A get whose key is
//!   too long, an `HTTP/` line, `shutdown` and more than 2048 bytes without a
//!   newline (other than a get) close the "connection": responses not yet
//!   sent and the rest of the datagram are dropped. An incomplete last line
//!   is dropped.
//! * A storage command whose data block does not fit its datagram reads the
//!   next datagrams *raw*, headers included and from any sender, as its data
//!   (each one cut at what is still missing), like a rejected block that is
//!   swallowed; the answer then goes to the original sender. A zero-length
//!   datagram aborts it.
//! * After `quit` the connection closes after every flush: the rest of a
//!   datagram after a flush point is dropped from then on.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;

use memchr::memchr;
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::Shared;
use crate::config::Config;
use crate::protocol::text::tokens::{KEY_MAX_LENGTH, Tokens, strtol};
use crate::protocol::text::{self, Session};
use crate::stats::{ThreadStats, add, bump};

/// The frame header: request id, sequence number, datagram count, reserved.
const HEADER: usize = 8;
/// The largest datagram memcached sends, header included (UDP_MAX_PAYLOAD_SIZE).
const MAX_DATAGRAM: usize = 1400;
/// Reply bytes per datagram (UDP_DATA_SIZE).
const DATA_SIZE: usize = MAX_DATAGRAM - HEADER;
/// memcached's UDP read buffer (UDP_READ_BUFFER_SIZE): one datagram per read.
const READ_BUFFER: usize = 64 * 1024;
/// memcached raises SO_SNDBUF towards this (MAX_SENDBUF_SIZE); the kernel caps it.
const MAX_SENDBUF: usize = 256 * 1024 * 1024;
/// Fed to [`text::process`] to learn how much of a rejected data block it
/// still means to swallow: no newline, and not longer than a line may be
/// without one, so it only ever consumes the swallowed bytes.
static PROBE: [u8; text::MAX_LINE] = [b' '; text::MAX_LINE];

/// One bound UDP socket.
pub struct Bound {
    socket: std::net::UdpSocket,
    /// memcached serves each UDP socket from `num_threads_per_udp` threads,
    /// each with its own dup()ed descriptor and connection (counted in
    /// `curr_connections` and listed by `stats conns`). memcrab keeps the
    /// descriptors so that the counts and listings agree.
    dups: Vec<std::net::UdpSocket>,
}

impl Bound {
    /// The descriptors this socket holds, its dups included.
    pub fn fds(&self) -> usize {
        1 + self.dups.len()
    }
}

/// Binds the UDP sockets `-U` asks for: each `-l` address (its `:port`
/// overrides `-U`), or 0.0.0.0 and :: without `-l`. None with `-s` or `-U 0`.
pub fn bind(config: &Config) -> io::Result<Vec<Bound>> {
    let Some(port) = config.udp_bind_port() else {
        return Ok(Vec::new());
    };
    let addrs = config.udp_listen_addrs().map_err(io::Error::other)?;
    // memcached: one thread per UDP socket when -l names several interfaces.
    let per_socket = if config.listen.join(",").contains(',') {
        1
    } else {
        config.threads.max(1)
    };
    let mut bound = Vec::new();
    for addr in addrs {
        match bind_one(addr) {
            Ok(socket) => {
                let dups = (1..per_socket)
                    .map(|_| socket.try_clone())
                    .collect::<io::Result<_>>()?;
                bound.push(Bound { socket, dups });
            }
            // As for TCP: an IPv6 wildcard the host cannot bind is skipped.
            Err(e) if addr.is_ipv6() && config.listen.is_empty() => warn!("udp {addr}: {e}"),
            Err(e) => {
                // memcached's vperror() after server_sockets() failed.
                let what = if config.listen.is_empty() {
                    let port = if config.udp_ephemeral {
                        -1
                    } else {
                        i32::from(port)
                    };
                    format!("UDP port {port}")
                } else {
                    format!("one of interface(s) {}", config.listen.join(","))
                };
                let reason = e
                    .raw_os_error()
                    .map(|code| nix::errno::Errno::from_raw(code).desc().to_owned())
                    .unwrap_or_else(|| e.to_string());
                return Err(io::Error::new(
                    e.kind(),
                    format!("failed to listen on {what}: {reason}"),
                ));
            }
        }
    }
    Ok(bound)
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use nix::sys::socket::{SockType, setsockopt, sockopt};
    let fd = super::bound_socket(addr, SockType::Datagram, |fd| {
        // memcached's maximize_sndbuf(): a large reply is sent in one go.
        let _ = setsockopt(fd, sockopt::SndBuf, &MAX_SENDBUF);
    })?;
    Ok(std::net::UdpSocket::from(fd))
}

/// The bound addresses, for `MEMCACHED_PORT_FILENAME` (ephemeral ports resolved).
pub fn local_addrs(bound: &[Bound]) -> Vec<SocketAddr> {
    bound
        .iter()
        .filter_map(|b| b.socket.local_addr().ok())
        .collect()
}

/// Registers the sockets as memcached's UDP connections and serves them on
/// one thread until shutdown. None when there is nothing to serve.
pub fn spawn(shared: Arc<Shared>, bound: Vec<Bound>) -> io::Result<Option<thread::JoinHandle<()>>> {
    if bound.is_empty() {
        return Ok(None);
    }
    let mut served = Vec::new();
    for b in bound {
        let local = b.socket.local_addr()?;
        // memcached's get_conn_text(): udp:1.2.3.4:port, udp6:[::1]:port.
        let name = match local {
            SocketAddr::V4(_) => format!("udp:{local}"),
            SocketAddr::V6(_) => format!("udp6:{local}"),
        };
        let (_, last) = shared.conn_open(b.socket.as_raw_fd(), name.clone(), None);
        for d in &b.dups {
            shared.conn_open(d.as_raw_fd(), name.clone(), None);
        }
        served.push((b, last));
    }
    let handle = thread::Builder::new()
        .name("udp".into())
        .spawn(move || serve_all(shared, served))?;
    Ok(Some(handle))
}

fn serve_all(shared: Arc<Shared>, served: Vec<(Bound, Arc<AtomicU32>)>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!("udp: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut tasks = tokio::task::JoinSet::new();
        for (b, last) in served {
            let fd = b.socket.as_raw_fd();
            match UdpSocket::from_std(b.socket) {
                Ok(socket) => {
                    // The dup()ed descriptors stay open as long as the socket is served.
                    let dups = b.dups;
                    let shared = shared.clone();
                    tasks.spawn_local(async move {
                        serve(&shared, &socket, fd, &last).await;
                        drop(dups);
                    });
                }
                Err(e) => warn!("udp: {e}"),
            }
        }
        while tasks.join_next().await.is_some() {}
    });
}

/// Reads datagrams one at a time and answers them, until shutdown.
async fn serve(shared: &Shared, socket: &UdpSocket, fd: i32, last: &AtomicU32) {
    // The slot after the workers' is this thread's alone.
    let stats = &shared.threads[shared.config.threads];
    let mut conn = UdpConn::new(shared, stats, socket, fd, last);
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    debug!("udp recv: {e}");
                    continue;
                }
            },
            _ = shared.stopped() => return,
        };
        conn.datagram(&buf[..n], from).await;
        if shared.is_stopping() {
            return;
        }
    }
}

/// One response object: memcached sends each as its own run of datagrams.
enum Resp {
    /// `noreply`: never sent.
    Skip,
    /// Nothing to say; a bare header if it comes first in a flush.
    Empty,
    Data(Vec<u8>),
}

/// What the connection waits for between datagrams.
enum Wait {
    /// A new request.
    Request,
    /// The rest of a storage command: everything read so far (request line
    /// and data) and how many bytes are missing.
    Data { buf: Vec<u8>, missing: usize },
    /// The rest of a rejected data block, to throw away.
    Swallow { left: usize },
}

/// Where the state machine goes after a command.
enum Then {
    /// The next command (memcached's conn_new_cmd).
    NewCmd,
    /// Flush first (conn_mwrite).
    Flush,
    /// Drop unsent responses and the rest of the datagram (conn_closing).
    Close,
    /// Wait for more datagrams (conn_nread, conn_swallow).
    Wait,
}

/// The state machine of memcached's drive_machine(), for a UDP connection.
enum Next {
    Parse,
    NewCmd,
    Flush,
}

struct UdpConn<'a> {
    shared: &'a Shared,
    stats: &'a ThreadStats,
    socket: &'a UdpSocket,
    last: &'a AtomicU32,
    fd: i32,
    sess: Session,
    wait: Wait,
    /// Responses not sent yet.
    batch: Vec<Resp>,
    /// Something was sent in the flush under way.
    sent: bool,
    /// Who asked, and the request id to answer with.
    peer: Option<SocketAddr>,
    request_id: u16,
    /// Commands left before a forced flush (memcached's nreqs).
    nreqs: isize,
    /// Set by `quit` and never cleared, as memcached's close_after_write.
    close_after_write: bool,
    out: Vec<u8>,
    frame: Vec<u8>,
}

/// Which flush rules a command follows.
enum Kind {
    /// get, bget, gets, gat, gats: keys from this token on.
    Get(usize),
    /// set, add, replace, append, prepend, cas: a data block follows.
    Storage,
    Other,
}

fn kind(t: &Tokens<'_>) -> Kind {
    let n = t.ntokens();
    match t.get(0) {
        b"get" | b"bget" | b"gets" if n >= 3 => Kind::Get(1),
        b"gat" | b"gats" if n >= 3 => Kind::Get(2),
        b"set" | b"add" | b"replace" | b"append" | b"prepend" if n == 6 || n == 7 => Kind::Storage,
        b"cas" if n == 7 || n == 8 => Kind::Storage,
        _ => Kind::Other,
    }
}

/// The keys of a get, as memcached walks them (lines of more than 23 tokens
/// are tokenized again piece by piece).
struct Keys<'a> {
    first: Option<&'a [u8]>,
    last: Option<&'a [u8]>,
    count: usize,
    too_long: bool,
}

impl<'a> Keys<'a> {
    fn scan(t: &Tokens<'a>, from: usize) -> Keys<'a> {
        let mut keys = Keys {
            first: None,
            last: None,
            count: 0,
            too_long: false,
        };
        for key in t.keys_from(from) {
            keys.first.get_or_insert(key);
            keys.last = Some(key);
            keys.count += 1;
            keys.too_long |= key.len() > KEY_MAX_LENGTH;
        }
        keys
    }
}

/// Where the `VALUE` block starting at `at` ends, and its key.
fn value_block(buf: &[u8], at: usize) -> Option<(usize, &[u8])> {
    let rest = buf.get(at..)?;
    let nl = memchr(b'\n', rest)?;
    let header = rest.get(..nl)?.strip_suffix(b"\r")?;
    let mut fields = header.split(|&b| b == b' ');
    if fields.next()? != b"VALUE" {
        return None;
    }
    let key = fields.next()?;
    let _flags = fields.next()?;
    let bytes: usize = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let end = at + nl + 1 + bytes + 2;
    (end <= buf.len()).then_some((end, key))
}

/// Whether a get's output starts with a hit on `key`.
fn starts_with_hit(out: &[u8], key: &[u8]) -> bool {
    value_block(out, 0).is_some_and(|(_, k)| k == key)
}

impl<'a> UdpConn<'a> {
    fn new(
        shared: &'a Shared,
        stats: &'a ThreadStats,
        socket: &'a UdpSocket,
        fd: i32,
        last: &'a AtomicU32,
    ) -> UdpConn<'a> {
        UdpConn {
            shared,
            stats,
            socket,
            last,
            fd,
            sess: Self::session(fd),
            wait: Wait::Request,
            batch: Vec::new(),
            sent: false,
            peer: None,
            request_id: 0,
            nreqs: 0,
            close_after_write: false,
            out: Vec::new(),
            frame: Vec::with_capacity(MAX_DATAGRAM),
        }
    }

    fn session(fd: i32) -> Session {
        let mut sess = Session::default();
        sess.fd = fd;
        sess
    }

    fn reqs_per_event(&self) -> isize {
        self.shared.config.reqs_per_event.min(isize::MAX as usize) as isize
    }

    fn process(&mut self, input: &[u8]) -> usize {
        let n = text::process(
            self.shared,
            self.stats,
            &mut self.sess,
            input,
            &mut self.out,
        );
        self.sess.yielded = false;
        n
    }

    /// One datagram arrived.
    async fn datagram(&mut self, dg: &[u8], from: SocketAddr) {
        match mem::replace(&mut self.wait, Wait::Request) {
            // memcached read()s the socket for the rest of the data block:
            // the next datagram, whatever it is, cut to what is missing.
            Wait::Data { mut buf, missing } => {
                if dg.is_empty() {
                    // read() returned 0: the "connection" closes.
                    self.close();
                    return;
                }
                let take = dg.len().min(missing);
                add(&self.stats.c.bytes_read, take as u64);
                buf.extend_from_slice(&dg[..take]);
                if take < missing {
                    self.wait = Wait::Data {
                        buf,
                        missing: missing - take,
                    };
                    return;
                }
                self.nreqs = self.reqs_per_event();
                self.out.clear();
                self.process(&buf);
                self.push_output();
                self.run(&[], Next::NewCmd).await;
            }
            Wait::Swallow { left } => {
                if dg.is_empty() {
                    self.close();
                    return;
                }
                let take = dg.len().min(left).min(READ_BUFFER);
                add(&self.stats.c.bytes_read, take as u64);
                if take < left {
                    self.wait = Wait::Swallow { left: left - take };
                    return;
                }
                self.nreqs = self.reqs_per_event();
                self.run(&[], Next::NewCmd).await;
            }
            Wait::Request => {
                if dg.len() <= HEADER {
                    return;
                }
                add(&self.stats.c.bytes_read, dg.len() as u64);
                // A request spread over several datagrams is dropped.
                if dg[4] != 0 || dg[5] != 1 {
                    return;
                }
                self.request_id = u16::from_be_bytes([dg[0], dg[1]]);
                self.peer = Some(from);
                self.nreqs = self.reqs_per_event();
                self.last
                    .store(self.shared.store.clock.now(), Ordering::Relaxed);
                self.run(&dg[HEADER..], Next::Parse).await;
            }
        }
    }

    /// memcached's drive_machine() over the request bytes `rbuf`.
    async fn run(&mut self, rbuf: &[u8], mut next: Next) {
        let mut pos = 0;
        loop {
            match next {
                Next::Parse => {
                    let rest = &rbuf[pos..];
                    let Some(nl) = memchr(b'\n', rest) else {
                        // An incomplete line: dropped when the next datagram
                        // is read, unless it is too long to be anything.
                        if !rest.is_empty() {
                            self.out.clear();
                            self.process(rest);
                        }
                        if mem::take(&mut self.sess.close) {
                            self.close();
                            return;
                        }
                        if self.batch.is_empty() {
                            return;
                        }
                        next = Next::Flush;
                        continue;
                    };
                    let (used, then) = self.command(rest, nl).await;
                    pos += used;
                    next = match then {
                        Then::NewCmd => Next::NewCmd,
                        Then::Flush => Next::Flush,
                        Then::Close => {
                            self.close();
                            return;
                        }
                        Then::Wait => return,
                    };
                }
                Next::Flush => {
                    self.flush().await;
                    if self.close_after_write {
                        self.close();
                        return;
                    }
                    next = Next::NewCmd;
                }
                Next::NewCmd => {
                    self.nreqs -= 1;
                    if self.nreqs >= 0 {
                        if pos < rbuf.len() {
                            next = Next::Parse;
                        } else if !self.batch.is_empty() {
                            next = Next::Flush;
                        } else {
                            return;
                        }
                    } else if !self.batch.is_empty() {
                        next = Next::Flush;
                    } else {
                        // Yield; memcached comes back with a fresh allowance.
                        bump(&self.stats.c.conn_yields);
                        if pos >= rbuf.len() {
                            return;
                        }
                        self.nreqs = self.reqs_per_event();
                    }
                }
            }
        }
    }

    /// Runs the command whose line ends at `rest[nl]`; returns the bytes it
    /// consumed and what comes next.
    async fn command(&mut self, rest: &[u8], nl: usize) -> (usize, Then) {
        let line = &rest[..=nl];
        let bare = &line[..nl];
        // memcached strips a "\r" before the "\n" only from lines of 2+ bytes.
        let bare = if nl > 1 && bare.ends_with(b"\r") {
            &bare[..nl - 1]
        } else {
            bare
        };
        let t = Tokens::new(bare);
        match kind(&t) {
            Kind::Get(from) => (line.len(), self.get(line, &t, from).await),
            Kind::Storage => self.storage(rest, line.len(), &t),
            Kind::Other => {
                self.out.clear();
                let used = self.process(line);
                if mem::take(&mut self.sess.close) {
                    if t.get(0) == b"quit" {
                        // An empty response, flushed; then the connection
                        // closes after every write.
                        self.batch.push(Resp::Empty);
                        self.close_after_write = true;
                        return (used, Then::Flush);
                    }
                    return (used, Then::Close);
                }
                if used == 0 {
                    // Not expected: process() always ends other commands.
                    return (rest.len(), Then::Close);
                }
                self.push_output();
                let then = if t.get(0) == b"mn" {
                    Then::Flush
                } else {
                    Then::NewCmd
                };
                (used, then)
            }
        }
    }

    /// A get: one response per key (a miss leaves it empty), `END` added to
    /// the last one; then a flush. A key that is too long drops every
    /// response not sent yet and answers an error, without a flush.
    async fn get(&mut self, line: &[u8], t: &Tokens<'_>, from: usize) -> Then {
        let keys = Keys::scan(t, from);
        // The first key's response is empty when it missed (and is not the last).
        let mut first_empty = None;
        // Output not sent yet, from the start of a VALUE block.
        let mut acc: Vec<u8> = Vec::new();
        loop {
            self.out.clear();
            let used = self.process(line);
            if used > 0 || self.sess.close {
                break;
            }
            // A large reply in parts. With a key too long it is all dropped.
            if keys.too_long {
                continue;
            }
            if first_empty.is_none() {
                first_empty = Some(self.first_missed(&keys));
                if first_empty == Some(true) {
                    self.batch.push(Resp::Empty);
                }
            }
            acc.extend_from_slice(&self.out);
            // Send the blocks before the last one: END may join that one.
            let mut at = 0;
            let mut blocks = Vec::new();
            while let Some((end, _)) = value_block(&acc, at) {
                blocks.push(at..end);
                at = end;
            }
            if let Some(keep) = blocks.pop() {
                for b in blocks {
                    self.batch.push(Resp::Data(acc[b].to_vec()));
                }
                acc.drain(..keep.start);
            }
            self.send_batch().await;
        }
        if mem::take(&mut self.sess.close) {
            return Then::Close;
        }
        if self.out.starts_with(b"CLIENT_ERROR") {
            if self
                .out
                .starts_with(b"CLIENT_ERROR bad command line format")
            {
                self.batch.clear();
            }
            self.push_output();
            return Then::NewCmd;
        }
        if first_empty.is_none() && self.first_missed(&keys) {
            self.batch.push(Resp::Empty);
        }
        acc.extend_from_slice(&self.out);
        let mut at = 0;
        let mut blocks = Vec::new();
        while let Some((end, key)) = value_block(&acc, at) {
            blocks.push((at..end, key));
            at = end;
        }
        // END goes with the last key's response: its VALUE block if it hit.
        let joined = match blocks.last() {
            Some((_, key)) if Some(*key) == keys.last => blocks.pop().map(|(r, _)| r.start),
            _ => None,
        };
        for (b, _) in blocks {
            self.batch.push(Resp::Data(acc[b].to_vec()));
        }
        let tail = joined.unwrap_or(at);
        self.batch.push(Resp::Data(acc[tail..].to_vec()));
        Then::Flush
    }

    fn first_missed(&self, keys: &Keys<'_>) -> bool {
        keys.count > 1 && !keys.first.is_some_and(|k| starts_with_hit(&self.out, k))
    }

    /// A storage command: its data block may be in this datagram, in the
    /// next ones, or be swallowed.
    fn storage(&mut self, rest: &[u8], line_len: usize, t: &Tokens<'_>) -> (usize, Then) {
        self.out.clear();
        let used = self.process(&rest[..line_len]);
        if mem::take(&mut self.sess.close) {
            return (used, Then::Close);
        }
        if used == 0 {
            // Accepted; waiting for <bytes>\r\n.
            let Some(vlen) = strtol(t.get(4)).and_then(|v| usize::try_from(v).ok()) else {
                return (rest.len(), Then::Close);
            };
            let need = vlen + 2;
            let avail = rest.len() - line_len;
            if avail >= need {
                self.out.clear();
                let used = self.process(&rest[..line_len + need]);
                self.push_output();
                return (used, Then::NewCmd);
            }
            self.wait = Wait::Data {
                buf: rest.to_vec(),
                missing: need - avail,
            };
            return (rest.len(), Then::Wait);
        }
        self.push_output();
        let left = self.take_swallow();
        if left == 0 {
            return (used, Then::NewCmd);
        }
        // Rejected: its data block is swallowed, here and then from the
        // next datagrams.
        let avail = rest.len() - used;
        if avail >= left {
            return (used + left, Then::NewCmd);
        }
        self.wait = Wait::Swallow { left: left - avail };
        (rest.len(), Then::Wait)
    }

    /// How many bytes the session still means to swallow; they become ours.
    fn take_swallow(&mut self) -> usize {
        let mut scratch = Vec::new();
        let mut total = 0;
        loop {
            let n = text::process(
                self.shared,
                self.stats,
                &mut self.sess,
                &PROBE,
                &mut scratch,
            );
            total += n;
            if n < PROBE.len() {
                return total;
            }
        }
    }

    /// The output of the last command becomes one response.
    fn push_output(&mut self) {
        if self.out.is_empty() {
            self.batch.push(Resp::Skip);
        } else {
            self.batch.push(Resp::Data(mem::take(&mut self.out)));
        }
    }

    /// memcached's conn_closing for UDP (conn_cleanup): responses not sent
    /// and any half-read command are dropped.
    fn close(&mut self) {
        self.batch.clear();
        self.wait = Wait::Request;
        self.sess = Self::session(self.fd);
    }

    async fn flush(&mut self) {
        self.send_batch().await;
        self.sent = false;
    }

    /// memcached's transmit_udp() loop: one response at a time; after a
    /// datagram, the responses it finished and any skipped or empty ones
    /// right after it are done.
    async fn send_batch(&mut self) {
        for resp in mem::take(&mut self.batch) {
            match resp {
                Resp::Skip => {}
                Resp::Empty if self.sent => {}
                Resp::Empty => self.send_resp(&[]).await,
                Resp::Data(d) => self.send_resp(&d).await,
            }
        }
    }

    /// One response as datagrams of at most 1400 bytes; the count is
    /// capped at 65535 and the sequence number wraps, as in memcached.
    async fn send_resp(&mut self, data: &[u8]) {
        self.sent = true;
        let Some(peer) = self.peer else {
            return;
        };
        let chunks = data.len().div_ceil(DATA_SIZE);
        let total = chunks.min(usize::from(u16::MAX)) as u16;
        for seq in 0..chunks.max(1) {
            let start = (seq * DATA_SIZE).min(data.len());
            let end = (start + DATA_SIZE).min(data.len());
            self.frame.clear();
            self.frame.extend_from_slice(&self.request_id.to_be_bytes());
            self.frame.extend_from_slice(&(seq as u16).to_be_bytes());
            self.frame.extend_from_slice(&total.to_be_bytes());
            self.frame.extend_from_slice(&[0, 0]);
            self.frame.extend_from_slice(&data[start..end]);
            match self.socket.send_to(&self.frame, peer).await {
                Ok(n) => add(&self.stats.c.bytes_written, n as u64),
                Err(e) => {
                    debug!("udp send to {peer}: {e}");
                    return;
                }
            }
        }
    }
}
