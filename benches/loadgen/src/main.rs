//! loadgen: a verifying load generator for memcached-text-protocol servers.
//!
//! Every value written is derived from (key, version, length) (see
//! `value.rs`), so every value read back is checked. Misses, protocol/server
//! errors and wrong values are counted separately; a run with any error or
//! wrong value prints `INVALID` and exits 1. Latencies go into HDR
//! histograms; the last line of output is a one-line JSON summary.

mod dist;
mod proto;
mod value;

use std::fmt::Write as _;
use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Semaphore, mpsc};

use dist::{KeyDist, Rng, Zipf};
use proto::Reader;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadgen",
    about = "Verifying load generator for memcached text-protocol servers",
    after_help = "Exit status: 0 valid run, 1 INVALID (errors or wrong values), 2 setup failure.\n\
                  The last line of stdout is a JSON summary."
)]
struct Args {
    /// Server address
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    server: String,
    /// Tokio worker threads
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// Number of connections
    #[arg(short = 'c', long, default_value_t = 50)]
    conns: usize,
    /// Requests in flight per connection (pipeline depth)
    #[arg(short = 'p', long, default_value_t = 1)]
    pipeline: usize,
    /// Key space size
    #[arg(short = 'k', long, default_value_t = 100_000)]
    keys: u64,
    /// Key distribution: uniform, zipf, or zipf:<exponent>
    #[arg(long, default_value = "uniform")]
    dist: String,
    /// Zipf exponent (when --dist zipf)
    #[arg(long, default_value_t = 0.99)]
    zipf_s: f64,
    /// Key prefix
    #[arg(long, default_value = "key:")]
    key_prefix: String,
    /// Total key length (the index is zero-padded); 0 = no padding
    #[arg(long, default_value_t = 0)]
    key_len: usize,
    /// Value size in bytes: N or MIN-MAX (uniformly random)
    #[arg(short = 'v', long, default_value = "100")]
    value_size: String,
    /// get:set ratio, e.g. 9:1, 1:0 (get only), 0:1 (set only)
    #[arg(short = 'r', long, default_value = "9:1")]
    ratio: String,
    /// Keys per get request (multi-get width)
    #[arg(short = 'm', long, default_value_t = 1)]
    multiget: usize,
    /// Measured duration in seconds (default 5; with --requests it is a cap, default 600)
    #[arg(short = 'd', long)]
    duration: Option<f64>,
    /// Stop after this many measured requests
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Warm-up seconds before measuring (not counted in ops or latency)
    #[arg(short = 'w', long, default_value_t = 0.0)]
    warmup: f64,
    /// Set every key of the key space before the run
    #[arg(long)]
    preload: bool,
    /// Only preload, then exit
    #[arg(long)]
    preload_only: bool,
    /// Request rate limit per connection (requests/s, 0 = unlimited)
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Per-response timeout in seconds
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Count get misses as failures (for runs where every key must be present)
    #[arg(long)]
    strict_hits: bool,
    /// Every connection gets its turn: the runtime takes woken tasks from
    /// its shared queue on every tick. By default (every 61st tick) tasks
    /// that overflow a worker's local queue, as with 1000 busy connections,
    /// can wait 100+ ms, and that, not the server, becomes the p99. Fairer
    /// costs throughput.
    #[arg(long)]
    fair: bool,
    /// RNG seed
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print only the JSON summary line
    #[arg(short = 'q', long)]
    quiet: bool,
}

struct Config {
    args: Args,
    dist: KeyDist,
    dist_name: String,
    vmin: usize,
    vmax: usize,
    get_w: u64,
    set_w: u64,
    key_width: usize,
    timeout: Duration,
    duration: Duration,
}

fn parse_config(args: Args) -> Result<Config, String> {
    let (vmin, vmax) = match args.value_size.split_once('-') {
        Some((a, b)) => (
            a.trim()
                .parse::<usize>()
                .map_err(|e| format!("--value-size: {e}"))?,
            b.trim()
                .parse::<usize>()
                .map_err(|e| format!("--value-size: {e}"))?,
        ),
        None => {
            let v = args
                .value_size
                .trim()
                .parse::<usize>()
                .map_err(|e| format!("--value-size: {e}"))?;
            (v, v)
        }
    };
    if vmin > vmax {
        return Err("--value-size: MIN > MAX".into());
    }
    let (g, s) = args
        .ratio
        .split_once(':')
        .ok_or("--ratio must look like GET:SET")?;
    let get_w: u64 = g.trim().parse().map_err(|e| format!("--ratio: {e}"))?;
    let set_w: u64 = s.trim().parse().map_err(|e| format!("--ratio: {e}"))?;
    if get_w + set_w == 0 {
        return Err("--ratio: both sides are 0".into());
    }
    if args.keys == 0 {
        return Err("--keys must be > 0".into());
    }
    if args.conns == 0 || args.pipeline == 0 || args.threads == 0 || args.multiget == 0 {
        return Err("--conns, --pipeline, --threads and --multiget must be > 0".into());
    }
    if args.multiget as u64 > args.keys {
        return Err("--multiget is wider than the key space".into());
    }
    let (dist, dist_name) = match args.dist.as_str() {
        "uniform" => (KeyDist::Uniform(args.keys), "uniform".to_string()),
        d if d == "zipf" || d.starts_with("zipf:") => {
            let s = match d.strip_prefix("zipf:") {
                Some(x) => x.parse::<f64>().map_err(|e| format!("--dist: {e}"))?,
                None => args.zipf_s,
            };
            if s.is_nan() || s <= 0.0 {
                return Err("zipf exponent must be > 0".into());
            }
            (KeyDist::Zipf(Zipf::new(args.keys, s)), format!("zipf:{s}"))
        }
        other => return Err(format!("unknown --dist {other:?}")),
    };
    let digits = (args.keys - 1).to_string().len();
    let key_width = args
        .key_len
        .saturating_sub(args.key_prefix.len())
        .max(digits);
    if args.key_prefix.len() + key_width > 250 {
        return Err("keys would be longer than 250 bytes".into());
    }
    if args.key_prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("--key-prefix must not contain spaces or control characters".into());
    }
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => d,
        (None, Some(_)) => 600.0,
        (None, None) => 5.0,
    };
    if duration.is_nan()
        || duration <= 0.0
        || args.timeout.is_nan()
        || args.timeout <= 0.0
        || args.warmup.is_nan()
        || args.warmup < 0.0
        || args.rate.is_nan()
        || args.rate < 0.0
    {
        return Err("durations, timeout and rate must be positive".into());
    }
    Ok(Config {
        timeout: Duration::from_secs_f64(args.timeout),
        duration: Duration::from_secs_f64(duration),
        args,
        dist,
        dist_name,
        vmin,
        vmax,
        get_w,
        set_w,
        key_width,
    })
}

impl Config {
    fn key_into(&self, out: &mut Vec<u8>, idx: u64) {
        out.extend_from_slice(self.args.key_prefix.as_bytes());
        let mut digits = [b'0'; 24];
        let mut n = idx;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = digits.len() - i;
        for _ in len..self.key_width {
            out.push(b'0');
        }
        out.extend_from_slice(&digits[i..]);
    }

    /// Index of a key we generated, if `key` is one.
    fn key_index(&self, key: &[u8]) -> Option<u64> {
        let tail = key.strip_prefix(self.args.key_prefix.as_bytes())?;
        if tail.is_empty() || tail.len() > 20 || !tail.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let idx = tail.iter().try_fold(0u64, |a, &d| {
            a.checked_mul(10)?.checked_add((d - b'0') as u64)
        })?;
        let mut canon = Vec::with_capacity(key.len());
        self.key_into(&mut canon, idx);
        (canon == key).then_some(idx)
    }

    fn value_len(&self, rng: &mut Rng) -> usize {
        rng.range(self.vmin as u64, self.vmax as u64) as usize
    }
}

// ---------------------------------------------------------------------------
// statistics

#[derive(Default, Clone, Copy)]
struct Counters {
    requests_total: u64, // including warm-up
    gets: u64,
    sets: u64,
    get_keys: u64,
    hits: u64,
    misses: u64,
    misses_total: u64, // including warm-up
    errors: u64,
    wrong: u64,
    conn_errors: u64,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.requests_total += o.requests_total;
        self.gets += o.gets;
        self.sets += o.sets;
        self.get_keys += o.get_keys;
        self.hits += o.hits;
        self.misses += o.misses;
        self.misses_total += o.misses_total;
        self.errors += o.errors;
        self.wrong += o.wrong;
        self.conn_errors += o.conn_errors;
    }
}

fn new_hist() -> Histogram<u64> {
    // nanoseconds, 1 ns .. 100 s, 3 significant digits
    #[allow(clippy::unwrap_used)]
    Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap()
}

struct HistPair {
    get: Histogram<u64>,
    set: Histogram<u64>,
}

/// Latencies are buffered per connection and flushed into one of a few
/// mutex-protected histogram shards, so 1000 connections do not need 1000
/// histograms.
struct Shared {
    cfg: Arc<Config>,
    t0: Instant,
    measure_start: Instant,
    end: Instant,
    stop: AtomicBool,
    stop_ns: AtomicU64,
    measured_issued: AtomicU64,
    shards: Vec<Mutex<HistPair>>,
    samples: Mutex<Vec<String>>,
}

impl Shared {
    fn request_stop(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            let ns = self.t0.elapsed().as_nanos() as u64;
            self.stop_ns.store(ns, Ordering::SeqCst);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn sample(&self, msg: String) {
        if let Ok(mut s) = self.samples.lock()
            && s.len() < 10
        {
            s.push(msg);
        }
    }
}

struct LatBuf {
    shard: usize,
    get: Vec<u64>,
    set: Vec<u64>,
}

impl LatBuf {
    fn flush(&mut self, sh: &Shared) {
        if self.get.is_empty() && self.set.is_empty() {
            return;
        }
        if let Ok(mut h) = sh.shards[self.shard].lock() {
            for &v in &self.get {
                h.get.saturating_record(v);
            }
            for &v in &self.set {
                h.set.saturating_record(v);
            }
        }
        self.get.clear();
        self.set.clear();
    }
}

// ---------------------------------------------------------------------------
// connections

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Get,
    Set,
}

struct Pending {
    op: Op,
    keys: Vec<u64>,
    start: Instant,
    measured: bool,
}

fn build_set(cfg: &Config, out: &mut Vec<u8>, idx: u64, version: u64, len: usize) {
    let key_start = out.len() + 4;
    out.extend_from_slice(b"set ");
    cfg.key_into(out, idx);
    let kh = value::key_hash(&out[key_start..]);
    let _ = write!(Vec8(out), " 0 0 {len}\r\n");
    value::fill_value(out, kh, version, len);
    out.extend_from_slice(b"\r\n");
}

/// `fmt::Write` adapter for a byte vector.
struct Vec8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Vec8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

async fn write_timeout(wr: &mut OwnedWriteHalf, buf: &[u8], t: Duration) -> io::Result<()> {
    match tokio::time::timeout(t, wr.write_all(buf)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

async fn writer(
    mut wr: OwnedWriteHalf,
    tx: mpsc::UnboundedSender<Pending>,
    sem: Arc<Semaphore>,
    sh: Arc<Shared>,
    mut rng: Rng,
) -> (OwnedWriteHalf, io::Result<()>) {
    let cfg = &sh.cfg;
    let mut buf = Vec::with_capacity(64 * 1024);
    let interval = if cfg.args.rate > 0.0 {
        Some(Duration::from_secs_f64(1.0 / cfg.args.rate))
    } else {
        None
    };
    // random phase so rate-limited connections do not fire in lockstep
    let mut next = match interval {
        Some(iv) => sh.t0 + iv.mul_f64(rng.f64()),
        None => sh.t0,
    };
    let total = cfg.get_w + cfg.set_w;
    let limit = cfg.args.requests;
    'outer: loop {
        if sh.stopped() {
            break;
        }
        match sem.clone().acquire_owned().await {
            Ok(p) => p.forget(),
            Err(_) => break, // reader gave up
        }
        let mut permit_held = true;
        loop {
            if !permit_held {
                match sem.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
            }
            permit_held = false;
            let start = match interval {
                Some(iv) => {
                    if next >= sh.end {
                        sh.request_stop();
                        break 'outer;
                    }
                    if !buf.is_empty() {
                        // Rate-limited: send what we have before sleeping.
                        sem.add_permits(1);
                        break;
                    }
                    let now = Instant::now();
                    if next > now {
                        tokio::time::sleep_until(next.into()).await;
                    }
                    let s = next; // scheduled time: no coordinated omission
                    next += iv;
                    s
                }
                None => Instant::now(),
            };
            if sh.stopped() {
                sem.add_permits(1);
                break 'outer;
            }
            let measured = start >= sh.measure_start;
            if measured && let Some(n) = limit {
                let i = sh.measured_issued.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    sh.request_stop();
                    sem.add_permits(1);
                    break 'outer;
                }
                if i + 1 == n {
                    sh.request_stop();
                }
            }
            let op = if rng.below(total) < cfg.get_w {
                Op::Get
            } else {
                Op::Set
            };
            let keys = match op {
                Op::Set => {
                    let idx = cfg.dist.sample(&mut rng);
                    let len = cfg.value_len(&mut rng);
                    build_set(cfg, &mut buf, idx, rng.next_u64(), len);
                    vec![idx]
                }
                Op::Get => {
                    let w = cfg.args.multiget;
                    let mut keys: Vec<u64> = Vec::with_capacity(w);
                    while keys.len() < w {
                        let idx = cfg.dist.sample(&mut rng);
                        if w == 1 || !keys.contains(&idx) {
                            keys.push(idx);
                        }
                    }
                    buf.extend_from_slice(b"get");
                    for &k in &keys {
                        buf.push(b' ');
                        cfg.key_into(&mut buf, k);
                    }
                    buf.extend_from_slice(b"\r\n");
                    keys
                }
            };
            if tx
                .send(Pending {
                    op,
                    keys,
                    start,
                    measured,
                })
                .is_err()
            {
                break 'outer;
            }
            if buf.len() >= 64 * 1024 {
                break;
            }
        }
        if !buf.is_empty() {
            if let Err(e) = write_timeout(&mut wr, &buf, cfg.timeout).await {
                return (wr, Err(e));
            }
            buf.clear();
        }
    }
    if !buf.is_empty()
        && let Err(e) = write_timeout(&mut wr, &buf, cfg.timeout).await
    {
        return (wr, Err(e));
    }
    (wr, Ok(()))
}

fn is_error_line(line: &[u8]) -> bool {
    line.starts_with(b"ERROR")
        || line.starts_with(b"CLIENT_ERROR")
        || line.starts_with(b"SERVER_ERROR")
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(120)]);
    s.into_owned()
}

enum Outcome {
    Ok,
    /// Server answered with an error line; the connection is still usable.
    ServerError(String),
}

/// Read and verify the response to one request.
async fn handle_response(
    r: &mut Reader,
    sh: &Shared,
    p: &Pending,
    c: &mut Counters,
    keybuf: &mut Vec<u8>,
) -> io::Result<Outcome> {
    let cfg = &sh.cfg;
    match p.op {
        Op::Set => {
            let line = r.line().await?;
            let line = &r.buf()[line];
            if line == b"STORED" {
                Ok(Outcome::Ok)
            } else if is_error_line(line) || line == b"NOT_STORED" {
                Ok(Outcome::ServerError(format!("set: {}", show(line))))
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected reply to set: {:?}", show(line)),
                ))
            }
        }
        Op::Get => {
            let mut seen = vec![false; p.keys.len()];
            let mut found = 0usize;
            loop {
                let lr = r.line().await?;
                let line = &r.buf()[lr];
                if line == b"END" {
                    break;
                }
                if is_error_line(line) {
                    return Ok(Outcome::ServerError(format!("get: {}", show(line))));
                }
                let mut parts = line.split(|&b| b == b' ');
                let (Some(b"VALUE"), Some(key), Some(_flags), Some(len)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected reply to get: {:?}", show(line)),
                    ));
                };
                let Some(len) = std::str::from_utf8(len)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad VALUE line: {:?}", show(line)),
                    ));
                };
                keybuf.clear();
                keybuf.extend_from_slice(key);
                let dr = r.exact(len + 2).await?;
                let data = &r.buf()[dr];
                if &data[len..] != b"\r\n" {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "value not terminated by \\r\\n",
                    ));
                }
                let data = &data[..len];
                let pos = cfg
                    .key_index(keybuf)
                    .and_then(|idx| p.keys.iter().position(|&k| k == idx));
                match pos {
                    Some(i) if !seen[i] => {
                        seen[i] = true;
                        found += 1;
                        let kh = value::key_hash(keybuf);
                        if let Some(why) = value::check_value(data, kh, cfg.vmin, cfg.vmax) {
                            c.wrong += 1;
                            sh.sample(format!(
                                "WRONG value for key {} (len {len}): {why}",
                                show(keybuf)
                            ));
                        } else if p.measured {
                            c.hits += 1;
                        }
                    }
                    _ => {
                        c.wrong += 1;
                        sh.sample(format!(
                            "WRONG: unrequested or repeated key {}",
                            show(keybuf)
                        ));
                    }
                }
            }
            let missed = (p.keys.len() - found) as u64;
            c.misses_total += missed;
            if p.measured {
                c.misses += missed;
                c.get_keys += p.keys.len() as u64;
            }
            Ok(Outcome::Ok)
        }
    }
}

async fn reader(
    mut r: Reader,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    sem: Arc<Semaphore>,
    sh: Arc<Shared>,
    shard: usize,
) -> Counters {
    let mut c = Counters::default();
    let mut lat = LatBuf {
        shard,
        get: Vec::with_capacity(1024),
        set: Vec::with_capacity(1024),
    };
    let mut keybuf = Vec::with_capacity(256);
    while let Some(p) = rx.recv().await {
        match handle_response(&mut r, &sh, &p, &mut c, &mut keybuf).await {
            Ok(outcome) => {
                c.requests_total += 1;
                if let Outcome::ServerError(msg) = outcome {
                    c.errors += 1;
                    sh.sample(msg);
                }
                if p.measured {
                    let ns = p.start.elapsed().as_nanos() as u64;
                    match p.op {
                        Op::Get => {
                            c.gets += 1;
                            lat.get.push(ns);
                        }
                        Op::Set => {
                            c.sets += 1;
                            lat.set.push(ns);
                        }
                    }
                    if lat.get.len() + lat.set.len() >= 1024 {
                        lat.flush(&sh);
                    }
                }
            }
            Err(e) => {
                c.conn_errors += 1;
                sh.sample(format!("connection error: {e}"));
                break;
            }
        }
        sem.add_permits(1);
    }
    sem.close();
    lat.flush(&sh);
    c
}

async fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let s = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(r) => r?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    s.set_nodelay(true)?;
    Ok(s)
}

// ---------------------------------------------------------------------------
// preload

async fn preload_conn(
    cfg: Arc<Config>,
    conn_no: u64,
    nconns: u64,
) -> io::Result<(u64, u64, Vec<String>)> {
    let s = connect(&cfg.args.server, cfg.timeout).await?;
    let (rd, mut wr) = s.into_split();
    let mut r = Reader::new(rd, cfg.timeout);
    let mut buf = Vec::with_capacity(256 * 1024);
    let (mut stored, mut errors) = (0u64, 0u64);
    let mut samples = Vec::new();
    let mut idx = conn_no;
    while idx < cfg.args.keys {
        let mut n = 0;
        while idx < cfg.args.keys && n < 256 && buf.len() < 256 * 1024 {
            let mut rng = Rng::new(cfg.args.seed ^ value::mix(idx));
            let len = cfg.value_len(&mut rng);
            build_set(&cfg, &mut buf, idx, 0, len);
            idx += nconns;
            n += 1;
        }
        write_timeout(&mut wr, &buf, cfg.timeout).await?;
        buf.clear();
        for _ in 0..n {
            let l = r.line().await?;
            let line = &r.buf()[l];
            if line == b"STORED" {
                stored += 1;
            } else {
                errors += 1;
                if samples.len() < 5 {
                    samples.push(format!("preload set: {}", show(line)));
                }
                if !is_error_line(line) && line != b"NOT_STORED" {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected reply to set: {:?}", show(line)),
                    ));
                }
            }
        }
    }
    Ok((stored, errors, samples))
}

async fn preload(cfg: Arc<Config>) -> (u64, u64, Vec<String>) {
    let n = cfg.args.conns.clamp(1, 8) as u64;
    let mut tasks = Vec::new();
    for i in 0..n {
        tasks.push(tokio::spawn(preload_conn(cfg.clone(), i, n)));
    }
    let (mut stored, mut errors, mut samples) = (0, 0, Vec::new());
    for t in tasks {
        match t.await {
            Ok(Ok((s, e, smp))) => {
                stored += s;
                errors += e;
                samples.extend(smp);
            }
            Ok(Err(e)) => {
                errors += 1;
                samples.push(format!("preload connection error: {e}"));
            }
            Err(e) => {
                errors += 1;
                samples.push(format!("preload task failed: {e}"));
            }
        }
    }
    (stored, errors, samples)
}

// ---------------------------------------------------------------------------
// main run

struct Summary {
    c: Counters,
    preload_sets: u64,
    preload_errors: u64,
    connect_failures: usize,
    measured_secs: f64,
    get: Histogram<u64>,
    set: Histogram<u64>,
    all: Histogram<u64>,
    samples: Vec<String>,
}

async fn run(cfg: Config) -> Result<Summary, String> {
    let cfg = Arc::new(cfg);
    let (mut preload_sets, mut preload_errors, mut samples) = (0, 0, Vec::new());
    if cfg.args.preload || cfg.args.preload_only {
        let t = Instant::now();
        let (s, e, smp) = preload(cfg.clone()).await;
        preload_sets = s;
        preload_errors = e;
        samples = smp;
        if !cfg.args.quiet {
            println!(
                "preload: {s} keys stored, {e} errors in {:.2} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    let empty = Summary {
        c: Counters::default(),
        preload_sets,
        preload_errors,
        connect_failures: 0,
        measured_secs: 0.0,
        get: new_hist(),
        set: new_hist(),
        all: new_hist(),
        samples: samples.clone(),
    };
    if cfg.args.preload_only {
        return Ok(empty);
    }

    // Connect everything first, then start the clock.
    let mut streams = Vec::with_capacity(cfg.args.conns);
    let mut connect_failures = 0;
    let mut first_err = None;
    for _ in 0..cfg.args.conns {
        match connect(&cfg.args.server, cfg.timeout).await {
            Ok(s) => streams.push(s),
            Err(e) => {
                connect_failures += 1;
                first_err.get_or_insert(e);
            }
        }
    }
    if streams.is_empty() {
        return Err(format!(
            "could not connect to {}: {}",
            cfg.args.server,
            first_err.map(|e| e.to_string()).unwrap_or_default()
        ));
    }
    if let Some(e) = first_err {
        samples.push(format!("{connect_failures} connections failed: {e}"));
    }

    let nshards = (cfg.args.threads * 2).clamp(1, 16);
    let t0 = Instant::now();
    let measure_start = t0 + Duration::from_secs_f64(cfg.args.warmup);
    let end = measure_start + cfg.duration;
    let sh = Arc::new(Shared {
        cfg,
        t0,
        measure_start,
        end,
        stop: AtomicBool::new(false),
        stop_ns: AtomicU64::new(0),
        measured_issued: AtomicU64::new(0),
        shards: (0..nshards)
            .map(|_| {
                Mutex::new(HistPair {
                    get: new_hist(),
                    set: new_hist(),
                })
            })
            .collect(),
        samples: Mutex::new(samples),
    });

    let mut tasks = Vec::with_capacity(streams.len());
    for (i, s) in streams.into_iter().enumerate() {
        let sh = sh.clone();
        let rng = Rng::new(sh.cfg.args.seed.wrapping_mul(1_000_003) ^ value::mix(i as u64 + 1));
        tasks.push(tokio::spawn(async move {
            let (rd, wr) = s.into_split();
            let (tx, rx) = mpsc::unbounded_channel();
            let sem = Arc::new(Semaphore::new(sh.cfg.args.pipeline));
            let r = Reader::new(rd, sh.cfg.timeout);
            let w = writer(wr, tx, sem.clone(), sh.clone(), rng);
            let rd = reader(r, rx, sem, sh.clone(), i % nshards);
            let ((_wr, wres), mut c) = tokio::join!(w, rd);
            if let Err(e) = wres {
                c.conn_errors += 1;
                sh.sample(format!("write error: {e}"));
            }
            c
        }));
    }

    // Stop at the deadline (or earlier when --requests is reached).
    {
        let sh = sh.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(sh.end.into()).await;
            sh.request_stop();
        });
    }

    let mut c = Counters::default();
    for t in tasks {
        match t.await {
            Ok(x) => c.add(&x),
            Err(e) => {
                c.conn_errors += 1;
                sh.sample(format!("connection task failed: {e}"));
            }
        }
    }
    if !sh.stopped() {
        sh.request_stop(); // every connection died early
    }
    let stop_at = t0 + Duration::from_nanos(sh.stop_ns.load(Ordering::SeqCst));
    let measured_secs = stop_at
        .saturating_duration_since(measure_start)
        .as_secs_f64();

    let (mut get, mut set) = (new_hist(), new_hist());
    for shard in &sh.shards {
        if let Ok(h) = shard.lock() {
            let _ = get.add(&h.get);
            let _ = set.add(&h.set);
        }
    }
    let mut all = new_hist();
    let _ = all.add(&get);
    let _ = all.add(&set);
    let samples = sh.samples.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(Summary {
        c,
        preload_sets,
        preload_errors,
        connect_failures,
        measured_secs,
        get,
        set,
        all,
        samples,
    })
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn lat_json(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "null".into();
    }
    format!(
        "{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"p999\":{:.1},\"max\":{:.1},\"mean\":{:.1}}}",
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.9)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
        h.mean() / 1000.0
    )
}

fn lat_line(name: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("  {name:<4} (none)");
    }
    format!(
        "  {name:<4} p50 {:>9.1}  p90 {:>9.1}  p99 {:>9.1}  p99.9 {:>9.1}  max {:>10.1}  mean {:>9.1}  (n={})",
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.9)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
        h.mean() / 1000.0,
        h.len()
    )
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
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

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match parse_config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    raise_nofile(cfg.args.conns as u64 + 256);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(cfg.args.threads).enable_all();
    if cfg.args.fair {
        builder.global_queue_interval(1);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let a = cfg.args.clone();
    let (vmin, vmax, dist_name) = (cfg.vmin, cfg.vmax, cfg.dist_name.clone());
    let quiet = a.quiet;
    if !quiet {
        println!(
            "loadgen: server {} conns {} pipeline {} threads {} keys {} dist {} value {} ratio {} mget {} rate/conn {} warmup {}s {}",
            a.server,
            a.conns,
            a.pipeline,
            a.threads,
            a.keys,
            dist_name,
            a.value_size,
            a.ratio,
            a.multiget,
            a.rate,
            a.warmup,
            match (a.duration, a.requests) {
                (_, Some(n)) => format!("requests {n}"),
                (Some(d), None) => format!("duration {d}s"),
                _ => "duration 5s".into(),
            }
        );
    }
    let s = match rt.block_on(run(cfg)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen: {e}");
            println!(
                "{{\"valid\":false,\"error\":{},\"server\":{}}}",
                json_str(&e),
                json_str(&a.server)
            );
            return ExitCode::from(2);
        }
    };
    rt.shutdown_timeout(Duration::from_secs(1));

    let c = &s.c;
    let requests = c.gets + c.sets;
    let secs = s.measured_secs.max(1e-9);
    let ops = requests as f64 / secs;
    let keys_ps = (c.get_keys + c.sets) as f64 / secs;
    let strict_miss = a.strict_hits && c.misses_total > 0;
    let preload_missing = (a.preload || a.preload_only) && s.preload_sets != a.keys;
    let valid = c.errors == 0
        && c.wrong == 0
        && c.conn_errors == 0
        && s.connect_failures == 0
        && s.preload_errors == 0
        && !preload_missing
        && !strict_miss
        && (a.preload_only || requests > 0);
    let mut why = Vec::new();
    if c.errors > 0 {
        why.push(format!("{} server errors", c.errors));
    }
    if c.wrong > 0 {
        why.push(format!("{} wrong values", c.wrong));
    }
    if c.conn_errors > 0 {
        why.push(format!("{} connection errors", c.conn_errors));
    }
    if s.connect_failures > 0 {
        why.push(format!("{} failed connects", s.connect_failures));
    }
    if s.preload_errors > 0 || preload_missing {
        why.push(format!(
            "preload stored {} of {} keys",
            s.preload_sets, a.keys
        ));
    }
    if strict_miss {
        why.push(format!("{} misses with --strict-hits", c.misses_total));
    }
    if !a.preload_only && requests == 0 {
        why.push("no request completed".into());
    }

    if !quiet {
        if !a.preload_only {
            println!(
                "measured {:.2} s: {} requests ({} gets, {} sets), {:.0} ops/s, {:.0} keys/s",
                secs, requests, c.gets, c.sets, ops, keys_ps
            );
            let hit_pct = if c.get_keys > 0 {
                100.0 * c.hits as f64 / c.get_keys as f64
            } else {
                0.0
            };
            println!(
                "get keys {} hits {} ({hit_pct:.2}%) misses {} | errors {} wrong {} conn_errors {} (all phases)",
                c.get_keys, c.hits, c.misses, c.errors, c.wrong, c.conn_errors
            );
            println!("latency (us):");
            println!("{}", lat_line("all", &s.all));
            if !s.get.is_empty() && !s.set.is_empty() {
                println!("{}", lat_line("get", &s.get));
                println!("{}", lat_line("set", &s.set));
            }
        }
        for m in &s.samples {
            println!("  ! {m}");
        }
        if valid {
            println!("RESULT: VALID");
        } else {
            println!("RESULT: INVALID ({})", why.join(", "));
        }
    }
    println!(
        "{{\"valid\":{valid},\"server\":{},\"conns\":{},\"pipeline\":{},\"threads\":{},\"keys\":{},\"dist\":{},\
\"value_min\":{vmin},\"value_max\":{vmax},\"ratio\":{},\"multiget\":{},\"rate_per_conn\":{},\"warmup_s\":{},\
\"duration_s\":{:.3},\"requests\":{requests},\"requests_total\":{},\"gets\":{},\"sets\":{},\"get_keys\":{},\
\"hits\":{},\"misses\":{},\"misses_total\":{},\"errors\":{},\"wrong\":{},\"conn_errors\":{},\"connect_failures\":{},\
\"preload_sets\":{},\"preload_errors\":{},\"ops_per_sec\":{:.1},\"keys_per_sec\":{:.1},\
\"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"lat_us\":{},\"get_lat_us\":{},\"set_lat_us\":{},\"invalid_reasons\":[{}]}}",
        json_str(&a.server),
        a.conns,
        a.pipeline,
        a.threads,
        a.keys,
        json_str(&dist_name),
        json_str(&a.ratio),
        a.multiget,
        a.rate,
        a.warmup,
        secs,
        c.requests_total,
        c.gets,
        c.sets,
        c.get_keys,
        c.hits,
        c.misses,
        c.misses_total,
        c.errors,
        c.wrong,
        c.conn_errors,
        s.connect_failures,
        s.preload_sets,
        s.preload_errors,
        ops,
        keys_ps,
        us(s.all.value_at_quantile(0.5)),
        us(s.all.value_at_quantile(0.99)),
        us(s.all.value_at_quantile(0.999)),
        lat_json(&s.all),
        lat_json(&s.get),
        lat_json(&s.set),
        why.iter()
            .map(|w| json_str(w))
            .collect::<Vec<_>>()
            .join(",")
    );
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
