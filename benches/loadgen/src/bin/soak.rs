//! soak: a long-running verifying workload for memcached text-protocol
//! servers under constant eviction (see `scripts/soak.sh`).
//!
//! Every connection ("slot") owns its own keys, so it knows the last value
//! it wrote to each of them: every reply is checked against that model. A
//! `get` must return exactly the last value written (key, version, length
//! and flags; values are self-checking, see `value.rs`) or a miss (the key
//! may have been evicted), never an older or foreign value; `add`,
//! `replace`, `delete`, `touch`, `incr`/`decr` and `append` must answer
//! consistently with the model (e.g. `add` of a key the model says is
//! absent must store it). Reads of other slots' keys are checked for
//! self-consistency (the value belongs to that key).
//!
//! Some clients are killed on purpose: in the middle of a data block, in
//! the middle of a command line, or with requests whose answers they never
//! read; half of them reset the connection (SO_LINGER 0), the others send
//! FIN. A killed client's partial command must have no effect; the slot
//! reconnects and goes on with the same model.
//!
//! With `--pid`, the server's RSS is sampled every second (min/max are
//! reported, `--rss-limit-mib` asserts the maximum). With `--sigterm`, at
//! the end of `--duration` the server gets SIGTERM while the load is still
//! running, and every connection must be closed by the server within
//! `--shutdown-within` seconds.
//!
//! Exit status: 0 pass, 1 fail (wrong values, errors, RSS over the limit,
//! no shutdown), 2 setup failure. The last line of stdout is a JSON summary.

#[allow(dead_code)]
#[path = "../dist.rs"]
mod dist;
#[allow(dead_code)]
#[path = "../proto.rs"]
mod proto;
#[allow(dead_code)]
#[path = "../value.rs"]
mod value;

use std::fmt::Write as _;
use std::io;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use dist::Rng;
use proto::Reader;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "soak",
    about = "Verifying soak workload: per-connection models, killed clients, RSS sampling, SIGTERM under load",
    after_help = "Exit status: 0 pass, 1 fail, 2 setup failure. The last line of stdout is a JSON summary."
)]
struct Args {
    /// Server address
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    server: String,
    /// Connections (slots), each with its own keys
    #[arg(short = 'c', long, default_value_t = 500)]
    conns: usize,
    /// Seconds of load before the end (and the SIGTERM with --sigterm)
    #[arg(short = 'd', long, default_value_t = 60.0)]
    duration: f64,
    /// Value keys per slot
    #[arg(long, default_value_t = 40)]
    keys: usize,
    /// Counter keys (incr/decr) per slot
    #[arg(long, default_value_t = 4)]
    counters: usize,
    /// Append keys per slot
    #[arg(long, default_value_t = 4)]
    appends: usize,
    /// Most requests a slot sends in one write (1 to this many)
    #[arg(short = 'p', long, default_value_t = 4)]
    pipeline: usize,
    /// Largest value in bytes (rare; most values are up to 4 KiB)
    #[arg(long, default_value_t = 256 * 1024)]
    max_value: usize,
    /// A slot kills its connection on average once per this many batches
    #[arg(long, default_value_t = 2000)]
    abort_every: u64,
    /// Server process id: sample its RSS every second (and --sigterm it)
    #[arg(long)]
    pid: Option<u32>,
    /// Fail if the server's sampled RSS ever exceeds this many MiB
    #[arg(long)]
    rss_limit_mib: Option<u64>,
    /// At the end send SIGTERM to --pid under load and expect every
    /// connection closed by the server
    #[arg(long)]
    sigterm: bool,
    /// Seconds the server has to close every connection after SIGTERM
    #[arg(long, default_value_t = 5.0)]
    shutdown_within: f64,
    /// Per-reply timeout in seconds
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// RNG seed
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

// ---------------------------------------------------------------------------
// Shared state

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    ops: AtomicU64,
    gets: AtomicU64,
    get_keys: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    cross_hits: AtomicU64,
    stores: AtomicU64,
    stored: AtomicU64,
    deletes: AtomicU64,
    touches: AtomicU64,
    arith: AtomicU64,
    appends: AtomicU64,
    checked: AtomicU64,
    wrong: AtomicU64,
    errors: AtomicU64,
    aborts: AtomicU64,
    reconnects: AtomicU64,
    closed_by_shutdown: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

struct Shared {
    args: Args,
    timeout: Duration,
    c: Counters,
    /// Stop issuing requests (normal end, or a hard stop after SIGTERM).
    stop: AtomicBool,
    /// SIGTERM was sent: connection failures are expected from now on.
    terminating: AtomicBool,
    t0: Instant,
    samples: Mutex<Vec<String>>,
}

impl Shared {
    fn sample(&self, msg: String) {
        if let Ok(mut s) = self.samples.lock()
            && s.len() < 20
        {
            s.push(msg);
        }
    }
    fn wrong(&self, slot: usize, msg: String) {
        inc(&self.c.wrong);
        self.sample(format!("WRONG slot {slot}: {msg}"));
    }
    fn error(&self, slot: usize, msg: String) {
        inc(&self.c.errors);
        self.sample(format!("ERROR slot {slot}: {msg}"));
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    fn terminating(&self) -> bool {
        self.terminating.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------
// The model of one slot's keys

#[derive(Clone, Debug, PartialEq)]
enum V {
    Absent,
    /// (version, length); flags are `version & 0xffff`.
    Present(u32, usize),
    /// A request's outcome is unknown (its connection failed): any value of
    /// this key, or a miss.
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
enum N {
    Absent,
    Present(u64),
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
enum A {
    Absent,
    Present(Vec<u8>),
    Unknown,
}

struct Model {
    vals: Vec<V>,
    nums: Vec<N>,
    apps: Vec<A>,
    version: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Val(usize),
    Num(usize),
    App(usize),
    /// Another slot's value key (self-consistency only).
    Cross(usize, usize),
}

/// One request of a batch and what its reply must satisfy.
enum Op {
    Get(Vec<Kind>),
    /// set / add / replace of a value key.
    Store {
        cmd: &'static str,
        j: usize,
        version: u32,
        len: usize,
    },
    SetNum(usize, u64),
    SetApp(usize, Vec<u8>),
    Append(usize, Vec<u8>),
    Delete(usize),
    Touch(usize),
    Arith {
        j: usize,
        incr: bool,
        delta: u64,
    },
}

fn key_of(out: &mut Vec<u8>, slot: usize, k: Kind) {
    let _ = match k {
        Kind::Val(j) => write!(V8(out), "soak:{slot}:v{j}"),
        Kind::Num(j) => write!(V8(out), "soak:{slot}:n{j}"),
        Kind::App(j) => write!(V8(out), "soak:{slot}:a{j}"),
        Kind::Cross(s, j) => write!(V8(out), "soak:{s}:v{j}"),
    };
}

fn key_string(slot: usize, k: Kind) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    key_of(&mut v, slot, k);
    v
}

struct V8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for V8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn value_len(rng: &mut Rng, max: usize) -> usize {
    let r = rng.below(1000);
    let len = if r < 970 {
        rng.range(16, 4096)
    } else if r < 995 {
        rng.range(4096, 64 * 1024)
    } else {
        rng.range(64 * 1024, max.max(64 * 1024) as u64)
    };
    (len as usize).clamp(16, max.max(16))
}

/// The bytes of an append piece: unique per (slot, version).
fn piece(version: u32) -> Vec<u8> {
    format!("<{version}>").into_bytes()
}

impl Op {
    fn encode(&self, out: &mut Vec<u8>, slot: usize) {
        match self {
            Op::Get(keys) => {
                out.extend_from_slice(b"get");
                for &k in keys {
                    out.push(b' ');
                    key_of(out, slot, k);
                }
                out.extend_from_slice(b"\r\n");
            }
            Op::Store {
                cmd,
                j,
                version,
                len,
            } => {
                let key = key_string(slot, Kind::Val(*j));
                let _ = write!(
                    V8(out),
                    "{cmd} {} {} 0 {len}\r\n",
                    String::from_utf8_lossy(&key),
                    version & 0xffff
                );
                value::fill_value(out, value::key_hash(&key), *version as u64, *len);
                out.extend_from_slice(b"\r\n");
            }
            Op::SetNum(j, n) => {
                let s = n.to_string();
                out.extend_from_slice(b"set ");
                key_of(out, slot, Kind::Num(*j));
                let _ = write!(V8(out), " 0 0 {}\r\n{s}\r\n", s.len());
            }
            Op::SetApp(j, bytes) | Op::Append(j, bytes) => {
                out.extend_from_slice(if matches!(self, Op::SetApp(..)) {
                    b"set "
                } else {
                    b"append "
                });
                key_of(out, slot, Kind::App(*j));
                let _ = write!(V8(out), " 0 0 {}\r\n", bytes.len());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Op::Delete(j) => {
                out.extend_from_slice(b"delete ");
                key_of(out, slot, Kind::Val(*j));
                out.extend_from_slice(b"\r\n");
            }
            Op::Touch(j) => {
                out.extend_from_slice(b"touch ");
                key_of(out, slot, Kind::Val(*j));
                out.extend_from_slice(b" 0\r\n");
            }
            Op::Arith { j, incr, delta } => {
                out.extend_from_slice(if *incr { b"incr " } else { b"decr " });
                key_of(out, slot, Kind::Num(*j));
                let _ = write!(V8(out), " {delta}\r\n");
            }
        }
    }

    /// Keys whose state becomes unknown if this request's reply is lost.
    fn mark_unknown(&self, m: &mut Model) {
        match self {
            Op::Get(_) => {}
            Op::Store { j, .. } | Op::Delete(j) | Op::Touch(j) => m.vals[*j] = V::Unknown,
            Op::SetNum(j, _) | Op::Arith { j, .. } => m.nums[*j] = N::Unknown,
            Op::SetApp(j, _) | Op::Append(j, _) => m.apps[*j] = A::Unknown,
        }
    }
}

impl Model {
    fn new(a: &Args) -> Model {
        Model {
            vals: vec![V::Absent; a.keys],
            nums: vec![N::Absent; a.counters],
            apps: vec![A::Absent; a.appends],
            version: 0,
        }
    }

    fn next_version(&mut self) -> u32 {
        self.version = self.version.wrapping_add(1);
        self.version
    }

    /// A random request.
    fn pick(&mut self, rng: &mut Rng, slot: usize, a: &Args) -> Op {
        let r = rng.below(100);
        let val = |rng: &mut Rng| rng.below(a.keys as u64) as usize;
        match r {
            0..=29 => Op::Get(vec![Kind::Val(val(rng))]),
            30..=37 => {
                let n = rng.range(2, 8) as usize;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = match rng.below(10) {
                        0 if a.counters > 0 => Kind::Num(rng.below(a.counters as u64) as usize),
                        1 if a.appends > 0 => Kind::App(rng.below(a.appends as u64) as usize),
                        _ => Kind::Val(val(rng)),
                    };
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                Op::Get(keys)
            }
            38..=42 if a.conns > 1 => {
                let mut other = rng.below(a.conns as u64) as usize;
                if other == slot {
                    other = (other + 1) % a.conns;
                }
                Op::Get(vec![Kind::Cross(other, val(rng))])
            }
            43..=77 => {
                let j = val(rng);
                let cmd = match r {
                    43..=69 => "set",
                    70..=73 => "add",
                    _ => "replace",
                };
                self.store(rng, cmd, j, a)
            }
            78..=81 => Op::Delete(val(rng)),
            82..=84 => Op::Touch(val(rng)),
            85..=92 if a.counters > 0 => {
                let j = rng.below(a.counters as u64) as usize;
                match self.nums[j] {
                    N::Present(_) if rng.below(20) > 0 => Op::Arith {
                        j,
                        incr: rng.below(3) > 0,
                        delta: if rng.below(50) == 0 {
                            u64::MAX - rng.below(1000)
                        } else {
                            rng.below(1000)
                        },
                    },
                    _ => Op::SetNum(j, rng.below(1_000_000)),
                }
            }
            93..=99 if a.appends > 0 => {
                let j = rng.below(a.appends as u64) as usize;
                let v = self.next_version();
                match &self.apps[j] {
                    A::Present(cur) if cur.len() < 2000 && rng.below(10) > 0 => {
                        Op::Append(j, piece(v))
                    }
                    _ => Op::SetApp(j, piece(v)),
                }
            }
            _ => Op::Get(vec![Kind::Val(val(rng))]),
        }
    }

    fn store(&mut self, rng: &mut Rng, cmd: &'static str, j: usize, a: &Args) -> Op {
        Op::Store {
            cmd,
            j,
            version: self.next_version(),
            len: value_len(rng, a.max_value),
        }
    }
}

// ---------------------------------------------------------------------------
// Checking replies

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(100)]).into_owned()
}

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses `VALUE <key> <flags> <bytes>[ <cas>]`.
fn parse_value_line(line: &[u8]) -> Option<(Vec<u8>, u32, usize)> {
    let rest = line.strip_prefix(b"VALUE ")?;
    let mut it = rest.split(|&b| b == b' ');
    let key = it.next()?.to_vec();
    let flags = std::str::from_utf8(it.next()?).ok()?.parse().ok()?;
    let len = std::str::from_utf8(it.next()?).ok()?.parse().ok()?;
    if let Some(cas) = it.next() {
        std::str::from_utf8(cas).ok()?.parse::<u64>().ok()?;
    }
    it.next().is_none().then_some((key, flags, len))
}

/// Reads one reply line as an owned vector.
async fn line(r: &mut Reader) -> io::Result<Vec<u8>> {
    let range = r.line().await?;
    Ok(r.buf()[range].to_vec())
}

/// Checks a self-checking value for `key`; returns its version.
fn check_self(key: &[u8], flags: u32, data: &[u8]) -> Result<u32, String> {
    if let Some(why) = value::check_value(data, value::key_hash(key), 16, usize::MAX) {
        return Err(format!("{why} ({} bytes)", data.len()));
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&data[..8]);
    let version = (u64::from_le_bytes(w) & 0xffff_ffff) as u32;
    if flags != version & 0xffff {
        return Err(format!("flags {flags} for version {version}"));
    }
    Ok(version)
}

/// Reads and checks the reply to `op`, updating the model.
async fn check_reply(
    r: &mut Reader,
    sh: &Shared,
    slot: usize,
    m: &mut Model,
    op: &Op,
) -> io::Result<()> {
    let c = &sh.c;
    inc(&c.ops);
    match op {
        Op::Get(keys) => {
            inc(&c.gets);
            c.get_keys.fetch_add(keys.len() as u64, Ordering::Relaxed);
            let mut next = 0; // replies come in request order
            let mut hits = vec![false; keys.len()];
            loop {
                let l = line(r).await?;
                if l == b"END" {
                    break;
                }
                let Some((key, flags, len)) = parse_value_line(&l) else {
                    sh.error(slot, format!("get: unexpected line {:?}", show(&l)));
                    return Err(bad_data("unexpected reply".into()));
                };
                let range = r.exact(len + 2).await?;
                let block = &r.buf()[range];
                if &block[len..] != b"\r\n" {
                    sh.error(
                        slot,
                        format!("get {}: data block not ended by CRLF", show(&key)),
                    );
                    return Err(bad_data("bad data block".into()));
                }
                let data = block[..len].to_vec();
                let Some(pos) = (next..keys.len()).find(|&i| key_string(slot, keys[i]) == key)
                else {
                    sh.wrong(
                        slot,
                        format!(
                            "VALUE for {:?}, not requested (or out of order)",
                            show(&key)
                        ),
                    );
                    continue;
                };
                next = pos + 1;
                hits[pos] = true;
                inc(&c.hits);
                inc(&c.checked);
                check_value_for(sh, slot, m, keys[pos], &key, flags, &data);
            }
            for (i, &k) in keys.iter().enumerate() {
                if !hits[i] {
                    inc(&c.misses);
                    inc(&c.checked);
                    // a miss is always allowed (eviction); it is news for the model
                    match k {
                        Kind::Val(j) => m.vals[j] = V::Absent,
                        Kind::Num(j) => m.nums[j] = N::Absent,
                        Kind::App(j) => m.apps[j] = A::Absent,
                        Kind::Cross(..) => {}
                    }
                }
            }
        }
        Op::Store {
            cmd,
            j,
            version,
            len,
        } => {
            inc(&c.stores);
            let l = line(r).await?;
            let before = m.vals[*j].clone();
            let new = V::Present(*version, *len);
            match (l.as_slice(), *cmd) {
                (b"STORED", "set") => m.vals[*j] = new,
                (b"STORED", "add") => m.vals[*j] = new, // absent, or evicted meanwhile
                (b"STORED", _) if before == V::Absent => {
                    sh.wrong(slot, format!("{cmd} v{j} stored on an absent key"));
                    m.vals[*j] = new;
                }
                (b"STORED", _) => m.vals[*j] = new,
                (b"NOT_STORED", "add") if before == V::Absent => {
                    sh.wrong(slot, format!("add v{j} not stored on an absent key"));
                    m.vals[*j] = V::Unknown;
                }
                (b"NOT_STORED", "add") => {
                    if before == V::Unknown {
                        m.vals[*j] = V::Unknown;
                    }
                }
                (b"NOT_STORED", "replace") => m.vals[*j] = V::Absent,
                _ => {
                    sh.error(slot, format!("{cmd} v{j} ({len} bytes): {:?}", show(&l)));
                    m.vals[*j] = V::Unknown;
                }
            }
            if l == b"STORED" {
                inc(&c.stored);
            }
        }
        Op::SetNum(j, n) => {
            inc(&c.stores);
            let l = line(r).await?;
            if l == b"STORED" {
                inc(&c.stored);
                m.nums[*j] = N::Present(*n);
            } else {
                sh.error(slot, format!("set n{j}: {:?}", show(&l)));
                m.nums[*j] = N::Unknown;
            }
        }
        Op::SetApp(j, bytes) => {
            inc(&c.stores);
            let l = line(r).await?;
            if l == b"STORED" {
                inc(&c.stored);
                m.apps[*j] = A::Present(bytes.clone());
            } else {
                sh.error(slot, format!("set a{j}: {:?}", show(&l)));
                m.apps[*j] = A::Unknown;
            }
        }
        Op::Append(j, bytes) => {
            inc(&c.appends);
            let l = line(r).await?;
            match (l.as_slice(), &mut m.apps[*j]) {
                (b"STORED", A::Present(cur)) => cur.extend_from_slice(bytes),
                (b"STORED", A::Absent) => {
                    sh.wrong(slot, format!("append a{j} stored on an absent key"));
                    m.apps[*j] = A::Unknown;
                }
                (b"STORED", A::Unknown) => {}
                (b"NOT_STORED", _) => m.apps[*j] = A::Absent,
                _ => {
                    sh.error(slot, format!("append a{j}: {:?}", show(&l)));
                    m.apps[*j] = A::Unknown;
                }
            }
        }
        Op::Delete(j) => {
            inc(&c.deletes);
            let l = line(r).await?;
            match l.as_slice() {
                b"DELETED" if m.vals[*j] == V::Absent => {
                    sh.wrong(slot, format!("delete v{j} deleted an absent key"))
                }
                b"DELETED" | b"NOT_FOUND" => {}
                _ => sh.error(slot, format!("delete v{j}: {:?}", show(&l))),
            }
            m.vals[*j] = V::Absent;
        }
        Op::Touch(j) => {
            inc(&c.touches);
            let l = line(r).await?;
            match l.as_slice() {
                b"TOUCHED" if m.vals[*j] == V::Absent => {
                    sh.wrong(slot, format!("touch v{j} touched an absent key"))
                }
                b"TOUCHED" => {}
                b"NOT_FOUND" => m.vals[*j] = V::Absent,
                _ => {
                    sh.error(slot, format!("touch v{j}: {:?}", show(&l)));
                    m.vals[*j] = V::Unknown;
                }
            }
        }
        Op::Arith { j, incr, delta } => {
            inc(&c.arith);
            let l = line(r).await?;
            let got = std::str::from_utf8(&l)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            match (got, &m.nums[*j]) {
                (Some(n), N::Present(cur)) => {
                    let want = if *incr {
                        cur.wrapping_add(*delta)
                    } else {
                        cur.saturating_sub(*delta)
                    };
                    if n != want {
                        sh.wrong(slot, format!("incr/decr n{j}: {n}, expected {want}"));
                    }
                    m.nums[*j] = N::Present(n);
                }
                (Some(n), N::Unknown) => m.nums[*j] = N::Present(n),
                (Some(n), N::Absent) => {
                    sh.wrong(slot, format!("incr/decr n{j} of an absent key: {n}"));
                    m.nums[*j] = N::Present(n);
                }
                (None, _) if l == b"NOT_FOUND" => m.nums[*j] = N::Absent,
                (None, _) => {
                    sh.error(slot, format!("incr/decr n{j}: {:?}", show(&l)));
                    m.nums[*j] = N::Unknown;
                }
            }
        }
    }
    Ok(())
}

fn check_value_for(
    sh: &Shared,
    slot: usize,
    m: &mut Model,
    k: Kind,
    key: &[u8],
    flags: u32,
    data: &[u8],
) {
    match k {
        Kind::Val(j) => match check_self(key, flags, data) {
            Err(why) => {
                sh.wrong(slot, format!("v{j}: {why}"));
                m.vals[j] = V::Unknown;
            }
            Ok(version) => {
                let got = V::Present(version, data.len());
                match &m.vals[j] {
                    V::Unknown => m.vals[j] = got,
                    want if *want == got => {}
                    want => {
                        sh.wrong(
                            slot,
                            format!("v{j}: got {got:?}, expected {want:?} or a miss"),
                        );
                        m.vals[j] = got;
                    }
                }
            }
        },
        Kind::Cross(other, j) => match check_self(key, flags, data) {
            Ok(_) => inc(&sh.c.cross_hits),
            Err(why) => sh.wrong(slot, format!("slot {other}'s v{j}: {why}")),
        },
        Kind::Num(j) => {
            // incr/decr pad a shorter result with spaces, as memcached does
            let text = std::str::from_utf8(data).unwrap_or("");
            let n = text.trim_end_matches(' ').parse::<u64>().ok();
            match (n, &m.nums[j]) {
                (Some(n), N::Present(want)) if n == *want && flags == 0 => {}
                (Some(n), N::Unknown) if flags == 0 => m.nums[j] = N::Present(n),
                _ => {
                    sh.wrong(
                        slot,
                        format!(
                            "n{j}: got {:?} flags {flags}, expected {:?}",
                            show(data),
                            m.nums[j]
                        ),
                    );
                    m.nums[j] = N::Unknown;
                }
            }
        }
        Kind::App(j) => match &m.apps[j] {
            A::Present(want) if want.as_slice() == data && flags == 0 => {}
            A::Unknown if flags == 0 => m.apps[j] = A::Present(data.to_vec()),
            want => {
                sh.wrong(
                    slot,
                    format!(
                        "a{j}: got {:?}, expected {:?}",
                        show(data),
                        match want {
                            A::Present(w) => show(w),
                            other => format!("{other:?}"),
                        }
                    ),
                );
                m.apps[j] = A::Unknown;
            }
        },
    }
}

// ---------------------------------------------------------------------------
// Connections

async fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let s = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(r) => r?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    s.set_nodelay(true)?;
    Ok(s)
}

/// Makes the coming close send a reset instead of a FIN.
fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket this process owns, with a valid
    // pointer to a local struct of the size passed.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

async fn write_timeout(wr: &mut OwnedWriteHalf, buf: &[u8], t: Duration) -> io::Result<()> {
    match tokio::time::timeout(t, wr.write_all(buf)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// Kills the connection on purpose, in one of several ways. The model is
/// not touched: nothing a killed client sent partially may take effect.
async fn abort(mut wr: OwnedWriteHalf, rng: &mut Rng, slot: usize, m: &mut Model, a: &Args) {
    let mut buf = Vec::new();
    let j = rng.below(a.keys as u64) as usize;
    match rng.below(3) {
        0 => {
            // in the middle of a data block
            let op = Op::Store {
                cmd: "set",
                j,
                version: m.next_version(),
                len: value_len(rng, a.max_value).max(64),
            };
            op.encode(&mut buf, slot);
            let cut = buf.len() - 2 - rng.range(1, (buf.len() / 2) as u64) as usize;
            buf.truncate(cut);
        }
        1 => {
            // in the middle of a command line
            buf.extend_from_slice(b"set ");
            key_of(&mut buf, slot, Kind::Val(j));
            buf.extend_from_slice(b" 0 0");
        }
        _ => {
            // requests whose answers are never read
            Op::Get((0..a.keys.min(8)).map(Kind::Val).collect()).encode(&mut buf, slot);
        }
    }
    let _ = wr.write_all(&buf).await;
    if rng.below(2) == 0 {
        reset_on_close(wr.as_ref());
    } else {
        let _ = wr.shutdown().await;
    }
    drop(wr);
}

/// One slot: a connection (re-opened after kills) and its model.
async fn slot(sh: Arc<Shared>, slot: usize, mut stream: Option<TcpStream>) {
    let a = &sh.args;
    let mut rng = Rng::new(a.seed.wrapping_mul(0x9E37_79B9) ^ value::mix(slot as u64 + 1));
    let mut m = Model::new(a);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut ops: Vec<Op> = Vec::new();
    'conn: while !sh.stopped() {
        let s = match stream.take() {
            Some(s) => s,
            None => match connect(&a.server, sh.timeout).await {
                Ok(s) => {
                    inc(&sh.c.reconnects);
                    s
                }
                Err(e) => {
                    if sh.terminating() {
                        inc(&sh.c.closed_by_shutdown);
                        return;
                    }
                    sh.error(slot, format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let (rd, mut wr) = s.into_split();
        let mut r = Reader::new(rd, sh.timeout);
        loop {
            if sh.stopped() {
                return;
            }
            if rng.below(a.abort_every.max(1)) == 0 && !sh.terminating() {
                inc(&sh.c.aborts);
                abort(wr, &mut rng, slot, &mut m, a).await;
                continue 'conn;
            }
            ops.clear();
            buf.clear();
            let n = rng.range(1, a.pipeline.max(1) as u64);
            for _ in 0..n {
                let op = m.pick(&mut rng, slot, a);
                op.encode(&mut buf, slot);
                ops.push(op);
            }
            inc(&sh.c.batches);
            let mut result = write_timeout(&mut wr, &buf, sh.timeout).await;
            let mut done = 0;
            if result.is_ok() {
                for op in &ops {
                    result = check_reply(&mut r, &sh, slot, &mut m, op).await;
                    if result.is_err() {
                        break;
                    }
                    done += 1;
                }
            }
            if let Err(e) = result {
                if sh.terminating() {
                    // the server is shutting down: closing is expected
                    inc(&sh.c.closed_by_shutdown);
                    return;
                }
                if e.kind() != io::ErrorKind::InvalidData {
                    sh.error(slot, format!("connection: {e}"));
                }
                // what happened to unanswered requests is unknown
                for op in &ops[done..] {
                    op.mark_unknown(&mut m);
                }
                continue 'conn;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// RSS sampling

fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[derive(Default, Clone, Copy)]
struct Rss {
    samples: u64,
    min: u64,
    max: u64,
    last: u64,
}

fn raise_nofile(want: u64) {
    #[allow(clippy::unnecessary_cast)]
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && (rl.rlim_cur as u64) < want {
            rl.rlim_cur = (want as libc::rlim_t).min(rl.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

// ---------------------------------------------------------------------------
// main

struct Outcome {
    rss: Rss,
    connect_failures: usize,
    /// Seconds from SIGTERM until the server had closed every connection.
    shutdown_secs: Option<f64>,
    /// Connections still open when the shutdown deadline passed.
    left_open: usize,
    secs: f64,
}

async fn run(sh: Arc<Shared>) -> Result<Outcome, String> {
    let a = sh.args.clone();
    // Connect everything first.
    let mut streams = Vec::with_capacity(a.conns);
    let mut connect_failures = 0;
    for _ in 0..a.conns {
        match connect(&a.server, sh.timeout).await {
            Ok(s) => streams.push(Some(s)),
            Err(e) => {
                if connect_failures == 0 {
                    sh.sample(format!("connect: {e}"));
                }
                connect_failures += 1;
                streams.push(None);
            }
        }
    }
    if connect_failures == a.conns {
        return Err(format!("could not connect to {}", a.server));
    }
    let rss = Arc::new(Mutex::new(Rss::default()));
    if let Some(pid) = a.pid {
        let rss = rss.clone();
        let sh = sh.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0u64;
            loop {
                tick.tick().await;
                if sh.terminating() || sh.stopped() {
                    return;
                }
                let Some(kib) = rss_kib(pid) else { return };
                if let Ok(mut r) = rss.lock() {
                    r.min = if r.samples == 0 { kib } else { r.min.min(kib) };
                    r.max = r.max.max(kib);
                    r.last = kib;
                    r.samples += 1;
                }
                n += 1;
                if n.is_multiple_of(10) {
                    let c = &sh.c;
                    println!(
                        "t={:>4}s ops {:>10} checked {:>10} wrong {} errors {} aborts {} rss {} KiB",
                        sh.t0.elapsed().as_secs(),
                        get(&c.ops),
                        get(&c.checked),
                        get(&c.wrong),
                        get(&c.errors),
                        get(&c.aborts),
                        kib
                    );
                }
            }
        });
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in streams.into_iter().enumerate() {
        tasks.spawn(slot(sh.clone(), i, s));
    }
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    let secs = start.elapsed().as_secs_f64();
    let mut shutdown_secs = None;
    let mut left_open = 0;
    match (a.sigterm, a.pid) {
        (true, Some(pid)) => {
            sh.terminating.store(true, Ordering::SeqCst);
            let t = Instant::now();
            // SAFETY: kill(2) with a pid given on the command line.
            let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            if rc != 0 {
                return Err(format!("kill -TERM {pid}: {}", io::Error::last_os_error()));
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(a.shutdown_within);
            loop {
                tokio::select! {
                    r = tasks.join_next() => if r.is_none() { break },
                    _ = tokio::time::sleep_until(deadline) => {
                        left_open = tasks.len();
                        break;
                    }
                }
            }
            if left_open == 0 {
                shutdown_secs = Some(t.elapsed().as_secs_f64());
            }
            sh.stop.store(true, Ordering::SeqCst);
            tasks.abort_all();
        }
        _ => {
            sh.stop.store(true, Ordering::SeqCst);
            let deadline = tokio::time::Instant::now() + sh.timeout * 2;
            loop {
                tokio::select! {
                    r = tasks.join_next() => if r.is_none() { break },
                    _ = tokio::time::sleep_until(deadline) => {
                        sh.error(usize::MAX, format!("{} slots did not finish", tasks.len()));
                        tasks.abort_all();
                        break;
                    }
                }
            }
        }
    }
    let rss = rss.lock().map(|r| *r).unwrap_or_default();
    Ok(Outcome {
        rss,
        connect_failures,
        shutdown_secs,
        left_open,
        secs,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.conns == 0 || args.keys == 0 || args.duration.is_nan() || args.duration <= 0.0 {
        eprintln!("soak: --conns, --keys and --duration must be positive");
        return ExitCode::from(2);
    }
    if args.sigterm && args.pid.is_none() {
        eprintln!("soak: --sigterm needs --pid");
        return ExitCode::from(2);
    }
    raise_nofile(args.conns as u64 * 2 + 256);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "soak: server {} conns {} keys/conn {}+{}+{} pipeline <= {} values 16 B..{} KiB, kill 1/{} batches, {} s{}",
        args.server,
        args.conns,
        args.keys,
        args.counters,
        args.appends,
        args.pipeline,
        args.max_value / 1024,
        args.abort_every,
        args.duration,
        if args.sigterm {
            ", then SIGTERM under load"
        } else {
            ""
        }
    );
    let sh = Arc::new(Shared {
        timeout: Duration::from_secs_f64(args.timeout),
        args: args.clone(),
        c: Counters::default(),
        stop: AtomicBool::new(false),
        terminating: AtomicBool::new(false),
        t0: Instant::now(),
        samples: Mutex::new(Vec::new()),
    });
    let o = match rt.block_on(run(sh.clone())) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            println!("{{\"pass\":false,\"error\":{:?}}}", e);
            return ExitCode::from(2);
        }
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    let c = &sh.c;
    let mut why = Vec::new();
    if get(&c.wrong) > 0 {
        why.push(format!("{} wrong values/answers", get(&c.wrong)));
    }
    if get(&c.errors) > 0 {
        why.push(format!("{} errors", get(&c.errors)));
    }
    if o.connect_failures > 0 {
        why.push(format!("{} initial connects failed", o.connect_failures));
    }
    if get(&c.checked) == 0 {
        why.push("nothing checked".into());
    }
    if let (Some(limit), true) = (args.rss_limit_mib, o.rss.samples > 0)
        && o.rss.max > limit * 1024
    {
        why.push(format!(
            "RSS reached {} KiB, over the {} MiB limit",
            o.rss.max, limit
        ));
    }
    if args.pid.is_some() && o.rss.samples == 0 {
        why.push("no RSS sample".into());
    }
    if args.sigterm && o.shutdown_secs.is_none() {
        why.push(format!(
            "{} connections still open {} s after SIGTERM",
            o.left_open, args.shutdown_within
        ));
    }
    let pass = why.is_empty();
    println!(
        "ran {:.1} s: {} batches, {} requests ({} gets of {} keys: {} hits, {} misses; {} stores, {} stored; \
         {} deletes, {} touches, {} incr/decr, {} appends; {} foreign values checked)",
        o.secs,
        get(&c.batches),
        get(&c.ops),
        get(&c.gets),
        get(&c.get_keys),
        get(&c.hits),
        get(&c.misses),
        get(&c.stores),
        get(&c.stored),
        get(&c.deletes),
        get(&c.touches),
        get(&c.arith),
        get(&c.appends),
        get(&c.cross_hits),
    );
    println!(
        "checked {} reads: {} wrong; {} errors; {} clients killed mid-request, {} reconnects",
        get(&c.checked),
        get(&c.wrong),
        get(&c.errors),
        get(&c.aborts),
        get(&c.reconnects)
    );
    if o.rss.samples > 0 {
        println!(
            "server RSS over {} samples: min {} KiB, max {} KiB, last {} KiB{}",
            o.rss.samples,
            o.rss.min,
            o.rss.max,
            o.rss.last,
            args.rss_limit_mib
                .map(|l| format!(" (limit {} KiB)", l * 1024))
                .unwrap_or_default()
        );
    }
    if args.sigterm {
        match o.shutdown_secs {
            Some(s) => println!(
                "SIGTERM under load: server closed all {} connections in {s:.2} s",
                get(&c.closed_by_shutdown)
            ),
            None => println!(
                "SIGTERM under load: {} connections still open after {} s",
                o.left_open, args.shutdown_within
            ),
        }
    }
    if let Ok(s) = sh.samples.lock() {
        for m in s.iter() {
            println!("  ! {m}");
        }
    }
    println!(
        "RESULT: {}",
        if pass {
            "PASS".to_string()
        } else {
            format!("FAIL ({})", why.join(", "))
        }
    );
    println!(
        "{{\"pass\":{pass},\"seconds\":{:.1},\"conns\":{},\"batches\":{},\"requests\":{},\"checked\":{},\"hits\":{},\"misses\":{},\
\"wrong\":{},\"errors\":{},\"aborts\":{},\"reconnects\":{},\"rss_min_kib\":{},\"rss_max_kib\":{},\"rss_samples\":{},\
\"shutdown_secs\":{}}}",
        o.secs,
        args.conns,
        get(&c.batches),
        get(&c.ops),
        get(&c.checked),
        get(&c.hits),
        get(&c.misses),
        get(&c.wrong),
        get(&c.errors),
        get(&c.aborts),
        get(&c.reconnects),
        o.rss.min,
        o.rss.max,
        o.rss.samples,
        o.shutdown_secs
            .map(|s| format!("{s:.3}"))
            .unwrap_or_else(|| "null".into())
    );
    if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
