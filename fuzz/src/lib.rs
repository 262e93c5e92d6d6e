//! The fuzz harness shared by the targets in `fuzz_targets/`.
//!
//! [`run`] drives memcrab's text protocol ([`memcrab::protocol::text::process`])
//! the way the connection loop in `src/server/connection.rs` does: bytes
//! arrive in chunks, unconsumed bytes are kept for the next read, a large
//! data block still arriving is read straight into its item
//! (`direct_buf`/`direct_filled`, given back with `abandon` if the input
//! ends first), `process` is called again after a `-R` yield or a full
//! output buffer, and nothing more is read once the session is closed. Against a small store made
//! fresh for every input (`-m 1`, one of a few configurations), it checks,
//! beyond "no panic":
//!
//! * **well-formed output**: each batch of output is whole lines ending in
//!   `\r\n`, each starting with a reply memcached sends (or an `incr`
//!   result); a `VALUE <key> <flags> <bytes>[ <cas>]` line is followed by
//!   exactly `<bytes>` bytes and `\r\n`;
//! * **no invented data**: a `VALUE` for key K holds bytes that were stored
//!   for K by this input: one data block of a storage command for K, or, if
//!   the input appends/prepends to K or increments K, a concatenation of
//!   such blocks and decimal numbers. Its flags were given for K. The model
//!   over-approximates what was stored (every line of the input is read as
//!   a possible command, with and without its `\r`, cut at a NUL or not), so
//!   it never needs memcrab's exact framing;
//! * **size limit**: no value read back is larger than `-I` allows;
//! * **no stall**: `process` always makes progress when it asks to be
//!   called again.
//!
//! After the input, a fresh session reads every key the input could have
//! stored, so values stored but never read by the input are checked too.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use memcrab::config::{Action, Config, Protocol, parse_args};
use memcrab::protocol::SendNow;
use memcrab::protocol::binary;
use memcrab::protocol::text::tokens::{strtol, strtoul};
use memcrab::protocol::text::{
    OUT_HIGH_WATER, Session, abandon, direct_buf, direct_filled, process, process_sending,
};
use memcrab::server::Shared;

/// The configurations an input can choose with its first byte.
#[rustfmt::skip]
const CONFIGS: &[&[&str]] = &[
    // small items and a small store: "too large" and eviction are reachable
    &["-m", "1", "-I", "64k", "-o", "slab_chunk_max=32768"],
    // tiny -I: values of a few KiB are too large
    &["-m", "1", "-I", "2k", "-o", "slab_chunk_max=1024", "-n", "16", "-f", "1.5"],
    // no CAS, one request per batch (the -R yield path)
    &["-m", "1", "-I", "64k", "-o", "slab_chunk_max=32768", "-C", "-R", "1"],
    // ascii authentication (-Y): credentials user:pass
    &["-m", "1", "-I", "64k", "-o", "slab_chunk_max=32768", "-Y", "/nonexistent-fuzz-auth"],
    // -M: out of memory instead of eviction; flush_all disabled
    &["-m", "1", "-I", "64k", "-o", "slab_chunk_max=32768", "-M", "-F", "-R", "3"],
];

fn configs() -> &'static [Config] {
    static C: OnceLock<Vec<Config>> = OnceLock::new();
    C.get_or_init(|| {
        CONFIGS
            .iter()
            .map(|args| {
                let argv = std::iter::once("memcrab").chain(args.iter().copied());
                match parse_args(argv) {
                    Ok(Action::Run(c)) => c,
                    Ok(_) => panic!("fuzz configuration {args:?} does not run"),
                    Err(e) => panic!("fuzz configuration {args:?}: {}", e.message),
                }
            })
            .collect()
    })
}

/// A fresh server state for configuration `choice` (any byte).
pub fn new_shared(choice: u8) -> Shared {
    let configs = configs();
    let config = configs[choice as usize % configs.len()].clone();
    let creds = if config.auth_file.is_some() {
        vec![(b"user".to_vec(), b"pass".to_vec())]
    } else {
        Vec::new()
    };
    Shared::new(config, creds)
}

// ---------------------------------------------------------------------------
// The model: what the input could have stored, per key

#[derive(Default)]
struct KeyModel {
    /// Data blocks of storage commands for this key.
    blocks: HashSet<Vec<u8>>,
    /// Flags given by set/add/replace/cas for this key.
    flags: HashSet<u32>,
    /// append/prepend seen: a value may be a concatenation of blocks.
    composed: bool,
    /// incr/decr seen: a value may contain a decimal number (padded with
    /// spaces when a shorter result is written in place).
    numeric: bool,
}

#[derive(Default)]
pub struct Model {
    keys: HashMap<Vec<u8>, KeyModel>,
}

const STORAGE: &[&[u8]] = &[b"set", b"add", b"replace", b"append", b"prepend", b"cas"];
/// Other commands that create or change values (meta: set, arithmetic,
/// get with autovivify).
const OTHER: &[&[u8]] = &[b"incr", b"decr", b"ms", b"ma", b"mg"];

/// What a meta command's base64 key (`b` flag) may decode to. memcached's
/// decoder (and memcrab's) skips bytes outside the base64 alphabet, so
/// besides the strict reading the key is also read with those bytes
/// removed, and with `=` removed too (padding restored).
fn base64_readings(key: &[u8]) -> Vec<Vec<u8>> {
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    let kept: Vec<u8> = key
        .iter()
        .copied()
        .filter(|c| alphabet(c) || *c == b'=')
        .collect();
    let mut bare: Vec<u8> = key.iter().copied().filter(alphabet).collect();
    while !bare.len().is_multiple_of(4) {
        bare.push(b'=');
    }
    [key, &kept, &bare]
        .into_iter()
        .filter_map(base64_decode)
        .collect()
}

/// Standard base64 with padding; `None` if `s` is not valid base64.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, q) in s.chunks(4).enumerate() {
        let last = i == s.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// Where `needle` (not empty) first occurs in `hay`. Compares whole
/// slices only where the first byte matches: every comparison of the
/// harness is traced by the fuzzer's instrumentation too.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == needle[0]) {
        let at = from + i;
        if hay.len() - at < needle.len() {
            return None;
        }
        if &hay[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Numbers a length or flags token may be read as: memcrab's own parsers
/// and a plain decimal reading (64-bit, cut to 32 bits).
fn numbers(token: &[u8], signed: bool) -> Vec<u64> {
    let mut out = Vec::new();
    if signed {
        if let Some(v) = strtol(token)
            && v >= 0
        {
            out.push(v as u64);
        }
    } else if let Some(v) = strtoul(token) {
        out.push(v as u64);
    }
    let digits = token.strip_prefix(b"+").unwrap_or(token);
    if !digits.is_empty()
        && digits.len() <= 20
        && digits.iter().all(u8::is_ascii_digit)
        && let Ok(v) = std::str::from_utf8(digits).unwrap_or("x").parse::<u64>()
    {
        out.push(v);
        out.push(v & 0xffff_ffff);
    }
    out
}

impl Model {
    /// Every command line the input could hold, read in every way memcrab
    /// (or memcached) could read it. A command does not always start after
    /// a newline (a rejected data block is skipped by its declared length,
    /// a swallowed one too), so every occurrence of a storage or
    /// arithmetic command word starts a candidate line, up to the next
    /// newline.
    pub fn from_input(input: &[u8]) -> Model {
        let mut m = Model::default();
        for word in STORAGE.iter().chain(OTHER) {
            let mut from = 0;
            while let Some(at) = find(&input[from..], word) {
                let start = from + at;
                from = start + 1;
                if input.get(start + word.len()) != Some(&b' ') {
                    continue;
                }
                let Some(nl) = input[start..].iter().position(|&b| b == b'\n') else {
                    break; // no complete line from here on
                };
                let end = start + nl;
                let raw = &input[start..end];
                let data = &input[end + 1..];
                let stripped = raw.strip_suffix(b"\r").unwrap_or(raw);
                for line in [raw, stripped] {
                    m.line(line, data);
                    if let Some(z) = line.iter().position(|&b| b == 0) {
                        m.line(&line[..z], data);
                    }
                }
            }
        }
        m.binary_requests(input);
        m
    }

    /// Every binary-protocol request the input could hold: each `0x80`
    /// byte is read as the start of a request header.
    fn binary_requests(&mut self, input: &[u8]) {
        for p in 0..input.len().saturating_sub(binary::HEADER - 1) {
            if input[p] != binary::REQUEST {
                continue;
            }
            let h = &input[p..p + binary::HEADER];
            let opcode = h[1];
            let kl = u16::from_be_bytes([h[2], h[3]]) as usize;
            let el = h[4] as usize;
            let bl = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
            let head = p + binary::HEADER + el + kl;
            if head > input.len() || kl == 0 {
                continue;
            }
            let extras = &input[p + binary::HEADER..p + binary::HEADER + el];
            let key = &input[head - kl..head];
            let value = (bl >= el + kl)
                .then(|| input.get(head..p + binary::HEADER + bl))
                .flatten();
            let k = self.keys.entry(key.to_vec()).or_default();
            match opcode {
                // set, add, replace and their quiet forms
                0x01..=0x03 | 0x11..=0x13 => {
                    if el >= 4 {
                        k.flags.insert(u32::from_be_bytes([
                            extras[0], extras[1], extras[2], extras[3],
                        ]));
                    }
                    if let Some(v) = value {
                        k.blocks.insert(v.to_vec());
                    }
                }
                // append, prepend
                0x0e | 0x0f | 0x19 | 0x1a => {
                    k.composed = true;
                    if let Some(v) = value {
                        k.blocks.insert(v.to_vec());
                    }
                }
                // incr, decr: may create the number, with flags 0
                0x05 | 0x06 | 0x15 | 0x16 => {
                    k.numeric = true;
                    k.flags.insert(0);
                }
                _ => {}
            }
        }
    }

    /// The models of `key` and, if it reads as base64 (meta commands' `b`
    /// flag), of the key it decodes to.
    fn models(&mut self, key: &[u8]) -> Vec<&mut KeyModel> {
        let mut keys = vec![key.to_vec()];
        for k in base64_readings(key) {
            if !k.is_empty() && !keys.contains(&k) {
                keys.push(k);
            }
        }
        // two distinct entries: take them one at a time
        for k in &keys {
            self.keys.entry(k.clone()).or_default();
        }
        self.keys
            .iter_mut()
            .filter(|(k, _)| keys.contains(k))
            .map(|(_, v)| v)
            .collect()
    }

    /// A meta command line: `ms <key> <datalen> <flags>*` stores a data
    /// block (`F` flags, `M` mode), `ma` does arithmetic (and creates a
    /// number with `N`), `mg` with `N` creates an empty item.
    fn meta_line(&mut self, tokens: &[&[u8]], data: &[u8]) {
        let (cmd, key) = (tokens[0], tokens[1]);
        match cmd {
            b"ms" => {
                let Some(&len) = tokens.get(2) else { return };
                let lens = numbers(len, true);
                let flags: Vec<u32> = tokens[3..]
                    .iter()
                    .filter(|t| t.first() == Some(&b'F'))
                    .flat_map(|t| numbers(&t[1..], false))
                    .map(|f| f as u32)
                    .chain([0])
                    .collect();
                let composed = tokens[3..].iter().any(|t| t.first() == Some(&b'M'));
                for k in self.models(key) {
                    k.flags.extend(&flags);
                    k.composed |= composed;
                    for &len in &lens {
                        if let Some(block) = usize::try_from(len).ok().and_then(|l| data.get(..l)) {
                            k.blocks.insert(block.to_vec());
                        }
                    }
                }
            }
            b"ma" => {
                for k in self.models(key) {
                    k.numeric = true;
                    k.flags.insert(0);
                }
            }
            b"mg" => {
                for k in self.models(key) {
                    k.blocks.insert(Vec::new());
                    k.flags.insert(0);
                }
            }
            _ => {}
        }
    }

    fn line(&mut self, line: &[u8], data: &[u8]) {
        let tokens: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty())
            .collect();
        let (Some(&cmd), Some(&key)) = (tokens.first(), tokens.get(1)) else {
            return;
        };
        if cmd == b"incr" || cmd == b"decr" {
            self.keys.entry(key.to_vec()).or_default().numeric = true;
            return;
        }
        if OTHER.contains(&cmd) {
            self.meta_line(&tokens, data);
            return;
        }
        if !STORAGE.contains(&cmd) || tokens.len() < 5 {
            return;
        }
        let k = self.keys.entry(key.to_vec()).or_default();
        if cmd == b"append" || cmd == b"prepend" {
            k.composed = true;
        } else {
            k.flags
                .extend(numbers(tokens[2], false).into_iter().map(|f| f as u32));
        }
        for len in numbers(tokens[4], true) {
            if let Some(block) = usize::try_from(len).ok().and_then(|l| data.get(..l)) {
                k.blocks.insert(block.to_vec());
            }
        }
    }

    /// Keys the input could have stored.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.keys().map(Vec::as_slice)
    }

    /// Whether `data` with `flags` (if known) could have been stored
    /// under `key`.
    pub fn explains(&self, key: &[u8], flags: Option<u32>, data: &[u8]) -> Result<(), String> {
        let Some(k) = self.keys.get(key) else {
            return Err("no storage command for this key in the input".into());
        };
        if let Some(flags) = flags
            && !k.flags.contains(&flags)
        {
            return Err(format!("flags {flags} never given for this key"));
        }
        if k.blocks.contains(data) {
            return Ok(());
        }
        if (k.composed || k.numeric) && decomposes(data, &k.blocks, k.numeric) {
            return Ok(());
        }
        Err("bytes never stored for this key".into())
    }
}

/// Whether `data` is a concatenation of `blocks` (and, if `numeric`, of
/// decimal numbers followed by spaces).
fn decomposes(data: &[u8], blocks: &HashSet<Vec<u8>>, numeric: bool) -> bool {
    let n = data.len();
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for i in 0..n {
        if !reach[i] {
            continue;
        }
        let rest = &data[i..];
        for b in blocks {
            if !b.is_empty() && rest.starts_with(b) {
                reach[i + b.len()] = true;
            }
        }
        if numeric {
            let digits = rest
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
                .min(20);
            if digits > 0 {
                let spaces = rest[digits..].iter().take_while(|&&b| b == b' ').count();
                for s in 0..=spaces {
                    reach[i + digits + s] = true;
                }
            }
        }
    }
    reach[n]
}

// ---------------------------------------------------------------------------
// Checking output

/// First words of reply lines memcrab may send (memcached's replies).
const REPLIES: &[&[u8]] = &[
    b"END",
    b"STORED",
    b"NOT_STORED",
    b"EXISTS",
    b"NOT_FOUND",
    b"DELETED",
    b"TOUCHED",
    b"OK",
    b"ERROR",
    b"ERROR:",
    b"CLIENT_ERROR",
    b"SERVER_ERROR",
    b"STAT",
    b"VERSION",
    b"RESET",
    b"MN",
    b"PREFIX",
    b"BUSY",
    b"BADCLASS",
    b"NOSPARE",
    b"SAME",
    b"MEMLIMIT_TOO_SMALL",
    b"MEMLIMIT_ADJUST_FAILED",
    // meta commands
    b"HD",
    b"EN",
    b"NF",
    b"NS",
    b"EX",
    b"ME",
];

fn show(b: &[u8]) -> String {
    let cut = &b[..b.len().min(200)];
    format!("{:?}", String::from_utf8_lossy(cut))
}

/// Checks one batch of output (what the connection writes in one go) and
/// every value in it.
fn check_output(out: &[u8], shared: &Shared, model: &Model) {
    let limit = shared.config.item_size_max;
    let mut pos = 0;
    while pos < out.len() {
        let Some(nl) = out[pos..].iter().position(|&b| b == b'\n') else {
            panic!("output ends inside a line: {}", show(&out[pos..]));
        };
        let line = &out[pos..pos + nl];
        pos += nl + 1;
        let Some(line) = line.strip_suffix(b"\r") else {
            panic!("reply line not ended by \\r\\n: {}", show(line));
        };
        if let Some(rest) = line.strip_prefix(b"VALUE ") {
            let t: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
            assert!(
                (3..=4).contains(&t.len()) && t.iter().all(|x| !x.is_empty()),
                "malformed VALUE line: {}",
                show(line)
            );
            let num = |x: &[u8]| -> u64 {
                assert!(
                    !x.is_empty() && x.len() <= 20 && x.iter().all(u8::is_ascii_digit),
                    "non-numeric field in VALUE line: {}",
                    show(line)
                );
                std::str::from_utf8(x)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("number out of range in {}", show(line)))
            };
            let (key, flags, len) = (t[0], num(t[1]), num(t[2]) as usize);
            if t.len() == 4 {
                num(t[3]);
            }
            let flags = u32::try_from(flags)
                .unwrap_or_else(|_| panic!("flags over 32 bits: {}", show(line)));
            assert!(
                out.len() - pos >= len + 2,
                "VALUE block of {len} bytes cut short ({} bytes follow): {}",
                out.len() - pos,
                show(line)
            );
            let data = &out[pos..pos + len];
            assert_eq!(
                &out[pos + len..pos + len + 2],
                b"\r\n",
                "VALUE block not followed by \\r\\n: {}",
                show(line)
            );
            pos += len + 2;
            assert!(
                len <= limit && !shared.store.too_large(key.len(), flags, len),
                "a {len}-byte value under a {}-byte key is stored, larger than -I {limit}",
                key.len()
            );
            assert!(key.len() <= 250, "VALUE for a {}-byte key", key.len());
            if let Err(why) = model.explains(key, Some(flags), data) {
                panic!(
                    "get returned data the input never stored: key {} flags {flags} value {} ({len} bytes): {why}",
                    show(key),
                    show(data)
                );
            }
        } else if line == b"VA" || line.starts_with(b"VA ") {
            // mg: VA <len> <flags>*, then the data
            let t: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let len = t
                .get(1)
                .filter(|x| !x.is_empty() && x.len() <= 10 && x.iter().all(u8::is_ascii_digit))
                .and_then(|x| std::str::from_utf8(x).ok()?.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("malformed VA line: {}", show(line)));
            assert!(
                out.len() - pos >= len + 2,
                "VA block of {len} bytes cut short: {}",
                show(line)
            );
            let data = &out[pos..pos + len];
            assert_eq!(
                &out[pos + len..pos + len + 2],
                b"\r\n",
                "VA block not followed by \r\n: {}",
                show(line)
            );
            pos += len + 2;
            assert!(
                len <= limit,
                "mg returned a {len}-byte value, larger than -I {limit}"
            );
            // with a k flag the key is known (base64 with b)
            let binary = t[2..].iter().any(|x| *x == b"b");
            if let Some(k) = t[2..].iter().find(|x| x.first() == Some(&b'k')) {
                let raw = &k[1..];
                let key = if binary {
                    base64_decode(raw)
                } else {
                    Some(raw.to_vec())
                };
                let flags = t[2..]
                    .iter()
                    .find(|x| x.first() == Some(&b'f'))
                    .and_then(|x| std::str::from_utf8(&x[1..]).ok()?.parse::<u32>().ok());
                if let Some(key) = key
                    && let Err(why) = model.explains(&key, flags, data)
                {
                    panic!(
                        "mg returned data the input never stored: key {} value {} ({len} bytes): {why}",
                        show(&key),
                        show(data)
                    );
                }
            }
        } else {
            let word = line.split(|&b| b == b' ').next().unwrap_or(b"");
            let number =
                !line.is_empty() && line.len() <= 20 && line.iter().all(u8::is_ascii_digit);
            assert!(
                number || REPLIES.contains(&word),
                "unknown reply line: {}",
                show(line)
            );
        }
    }
}

/// Checks one batch of binary-protocol output: whole responses (magic
/// 0x81, a body of the declared length holding extras and key), and the
/// value of every successful get that names its key (`getk`, `gatk`,
/// quiet or not) against the model.
fn check_binary_output(out: &[u8], shared: &Shared, model: &Model) {
    let limit = shared.config.item_size_max;
    let mut pos = 0;
    while pos < out.len() {
        assert!(
            out.len() - pos >= binary::HEADER,
            "binary response cut inside its header: {}",
            show(&out[pos..])
        );
        let h = &out[pos..pos + binary::HEADER];
        assert_eq!(h[0], 0x81, "binary response with magic {:#x}", h[0]);
        let opcode = h[1];
        let kl = u16::from_be_bytes([h[2], h[3]]) as usize;
        let el = h[4] as usize;
        let status = u16::from_be_bytes([h[6], h[7]]);
        let bl = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        assert!(
            kl + el <= bl,
            "binary response: key {kl} + extras {el} > body {bl}"
        );
        assert!(
            out.len() - pos - binary::HEADER >= bl,
            "binary response body of {bl} bytes cut short ({} follow)",
            out.len() - pos - binary::HEADER
        );
        let body = &out[pos + binary::HEADER..pos + binary::HEADER + bl];
        pos += binary::HEADER + bl;
        let get = matches!(
            opcode,
            0x00 | 0x09 | 0x0c | 0x0d | 0x1d | 0x1e | 0x23 | 0x24
        );
        if status != 0 || !get {
            continue;
        }
        assert_eq!(el, 4, "a get response without its 4-byte flags");
        let flags = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let key = &body[el..el + kl];
        let value = &body[el + kl..];
        assert!(
            value.len() <= limit,
            "a get returned {} bytes, larger than -I {limit}",
            value.len()
        );
        if kl > 0
            && let Err(why) = model.explains(key, Some(flags), value)
        {
            panic!(
                "binary get returned data the input never stored: key {} flags {flags} value {} ({} bytes): {why}",
                show(key),
                show(value),
                value.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Driving the protocol as the connection loop does

/// A connection's protocol state once its protocol is known, as in
/// `src/server/connection.rs`.
enum Proto {
    Text(Session),
    Binary(binary::Session),
}

impl Proto {
    fn text() -> Proto {
        let mut s = Session::default();
        s.direct_reads = true;
        Proto::Text(s)
    }

    /// `-B`, or memcached's negotiation on the first byte (0x80: binary).
    fn for_input(shared: &Shared, first: u8) -> Proto {
        match shared.config.protocol {
            Protocol::Ascii => Proto::text(),
            Protocol::Binary => Proto::Binary(binary::Session::default()),
            Protocol::Auto if first == binary::REQUEST => Proto::Binary(binary::Session::default()),
            Protocol::Auto => Proto::text(),
        }
    }

    fn direct_buf<'s>(&'s mut self, shared: &'s Shared) -> Option<&'s mut [u8]> {
        match self {
            Proto::Text(s) => direct_buf(shared, s),
            Proto::Binary(_) => None,
        }
    }

    fn process(&mut self, shared: &Shared, input: &[u8], out: &mut Vec<u8>) -> usize {
        let stats = &shared.threads[0];
        match self {
            Proto::Text(s) => {
                // Large values go to a "socket" that takes an amount of
                // them chosen by the input; what it got comes first.
                let mut wire = Wire {
                    room: input.len().wrapping_mul(7919) % 70_000,
                    got: Vec::new(),
                };
                let n = process_sending(shared, stats, s, input, out, &mut wire);
                if !wire.got.is_empty() {
                    wire.got.extend_from_slice(out);
                    *out = wire.got;
                }
                n
            }
            Proto::Binary(s) => binary::process(shared, stats, s, input, out),
        }
    }

    fn take_yielded(&mut self) -> bool {
        match self {
            Proto::Text(s) => std::mem::take(&mut s.yielded),
            Proto::Binary(s) => std::mem::take(&mut s.yielded),
        }
    }

    fn closing(&self) -> bool {
        match self {
            Proto::Text(s) => s.close,
            Proto::Binary(s) => s.close,
        }
    }

    fn check(&self, out: &[u8], shared: &Shared, model: &Model) {
        match self {
            Proto::Text(_) => check_output(out, shared, model),
            Proto::Binary(_) => check_binary_output(out, shared, model),
        }
    }
}

/// A socket that takes up to `room` bytes per write.
struct Wire {
    room: usize,
    got: Vec<u8>,
}

impl SendNow for Wire {
    fn send_now(&mut self, bufs: &[std::io::IoSlice<'_>]) -> usize {
        let before = self.got.len();
        for b in bufs {
            let n = b.len().min(self.room - (self.got.len() - before));
            self.got.extend_from_slice(&b[..n]);
        }
        self.got.len() - before
    }
}

/// Feeds `chunks` (successive reads) to one connection, as
/// `src/server/connection.rs` does: the protocol is chosen on the first
/// byte (unless `-B` or `-Y` fixed it); while a large text data block is
/// being read straight into its item, bytes go to [`direct_buf`] (as many
/// as it takes per read), otherwise to the read buffer, whose unconsumed
/// bytes are kept for the next read. Every batch of output is checked.
/// Returns whether the connection was closed.
fn converse(shared: &Shared, proto: &mut Option<Proto>, chunks: &[&[u8]], model: &Model) -> bool {
    let stats = &shared.threads[0];
    let mut input: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    for chunk in chunks {
        // A read of 0 bytes would be EOF: empty chunks are skipped.
        let mut chunk: &[u8] = chunk;
        while !chunk.is_empty() {
            if let Some(buf) = proto.as_mut().and_then(|p| p.direct_buf(shared)) {
                assert!(!buf.is_empty(), "direct read into an empty buffer");
                let n = buf.len().min(chunk.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                chunk = &chunk[n..];
                if let Some(Proto::Text(s)) = proto.as_mut() {
                    direct_filled(shared, stats, s, n, &mut out);
                }
            } else {
                input.extend_from_slice(chunk);
                chunk = &[];
            }
            let p = proto.get_or_insert_with(|| Proto::for_input(shared, input[0]));
            let mut start = 0;
            let mut rounds = 0u32;
            loop {
                let n = p.process(shared, &input[start..], &mut out);
                assert!(
                    n <= input.len() - start,
                    "process consumed more than it was given"
                );
                start += n;
                let full = out.len() >= OUT_HIGH_WATER || p.take_yielded();
                let wrote = !out.is_empty();
                p.check(&out, shared, model);
                out.clear();
                if p.closing() {
                    return true;
                }
                if !full {
                    break;
                }
                rounds += 1;
                assert!(
                    n > 0 || wrote,
                    "process asks to be called again but made no progress"
                );
                assert!(
                    rounds < 1_000_000,
                    "process keeps asking to be called again"
                );
            }
            input.drain(..start);
        }
    }
    false
}

/// Like [`converse`], then gives back a data block still being read
/// when the client goes away (the connection's `SessionGuard`).
fn converse_and_close(
    shared: &Shared,
    proto: &mut Option<Proto>,
    chunks: &[&[u8]],
    model: &Model,
) -> bool {
    let closed = converse(shared, proto, chunks, model);
    if let Some(Proto::Text(s)) = proto {
        abandon(shared, s);
    }
    closed
}

/// Runs one fuzz input on the text protocol: configuration `choice`, the
/// client's bytes arriving as `chunks`. Panics on any violated invariant.
pub fn run(choice: u8, chunks: &[&[u8]]) {
    run_as(choice, chunks, false);
}

/// Like [`run`], the protocol chosen as a connection chooses it: binary if
/// the first byte is 0x80 (and neither `-B ascii` nor `-Y` is set).
pub fn run_connection(choice: u8, chunks: &[&[u8]]) {
    run_as(choice, chunks, true);
}

fn run_as(choice: u8, chunks: &[&[u8]], negotiate: bool) {
    let shared = new_shared(choice);
    let whole: Vec<u8> = chunks.concat();
    let model = Model::from_input(&whole);
    let mut proto = (!negotiate).then(Proto::text);
    converse_and_close(&shared, &mut proto, chunks, &model);

    // Read back every key the input could have stored, on a fresh
    // (authenticated) session.
    let mut keys: Vec<&[u8]> = model
        .keys()
        .filter(|k| k.len() <= 250 && !k.contains(&b'\n'))
        .collect();
    keys.sort_unstable();
    let mut sweep = Vec::new();
    for group in keys.chunks(16) {
        sweep.extend_from_slice(b"get");
        for k in group {
            sweep.push(b' ');
            sweep.extend_from_slice(k);
        }
        // a trailing space keeps a key's final "\r" in the key
        sweep.extend_from_slice(b" \r\n");
    }
    if !sweep.is_empty() {
        let mut sess = Session::default();
        sess.authenticated = true;
        sess.direct_reads = true;
        let closed = converse_and_close(&shared, &mut Some(Proto::Text(sess)), &[&sweep], &model);
        assert!(!closed, "the read-back session was closed");
    }
}

/// Splits `data` for the connection target: byte 0 chooses the
/// configuration, byte 1 the number of extra reads (0-15), then two bytes
/// per split point; the rest is the client's byte stream.
pub fn split_input(data: &[u8]) -> Option<(u8, Vec<&[u8]>)> {
    let (&choice, rest) = data.split_first()?;
    let (&splits, rest) = rest.split_first()?;
    let splits = (splits % 16) as usize;
    if rest.len() < splits * 2 {
        return None;
    }
    let (points, stream) = rest.split_at(splits * 2);
    let mut cuts: Vec<usize> = points
        .chunks(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]) as usize % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::with_capacity(splits + 1);
    let mut at = 0;
    for c in cuts {
        chunks.push(&stream[at..c]);
        at = c;
    }
    chunks.push(&stream[at..]);
    Some((choice, chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_explains_sets_appends_and_numbers() {
        let input =
            b"set k 5 0 3\r\nabc\r\nappend k 0 0 2\r\nde\r\nset n 0 0 2\r\n10\r\nincr n 5\r\n";
        let m = Model::from_input(input);
        assert!(m.explains(b"k", Some(5), b"abc").is_ok());
        assert!(m.explains(b"k", Some(5), b"abcde").is_ok());
        assert!(m.explains(b"k", Some(0), b"abc").is_err());
        assert!(m.explains(b"k", Some(5), b"abd").is_err());
        assert!(m.explains(b"n", Some(0), b"15").is_ok());
        assert!(m.explains(b"n", Some(0), b"7 ").is_ok());
        assert!(m.explains(b"x", Some(0), b"").is_err());
    }

    #[test]
    fn runs_seed_like_inputs() {
        for choice in 0..CONFIGS.len() as u8 {
            run(
                choice,
                &[
                    b"set a 1 0 1\r\nx\r\nget a b\r\n",
                    b"gets a\r\nincr a 1\r\n",
                ],
            );
            run(
                choice,
                &[b"set a 0 0 70000\r\n", &[b'y'; 70002], b"get a\r\n"],
            );
            // a 20000-byte block arriving in pieces: read into its item
            let mut block = b"set big 3 0 20000\r\n".to_vec();
            block.extend(std::iter::repeat_n(b'z', 20000));
            block.extend_from_slice(b"\r\nget big\r\n");
            let pieces: Vec<&[u8]> = block.chunks(3000).collect();
            run(choice, &pieces);
            // ... and cut short
            run(choice, &pieces[..3]);
        }
    }

    #[test]
    fn large_blocks_take_the_direct_path() {
        let shared = new_shared(0);
        let mut block = b"set big 3 0 20000\r\n".to_vec();
        block.extend(std::iter::repeat_n(b'z', 20000));
        let model = Model::from_input(&block);
        let mut proto = None;
        let pieces: Vec<&[u8]> = block.chunks(3000).collect();
        converse(&shared, &mut proto, &pieces[..3], &model);
        assert!(proto.as_mut().unwrap().direct_buf(&shared).is_some());
        converse_and_close(&shared, &mut proto, &[], &model);
    }

    /// Every seed (and saved crash) of both targets runs clean.
    #[test]
    fn replay_corpus_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (target, split) in [("text_protocol", false), ("connection", true)] {
            for dir in ["corpus", "artifacts"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                    continue;
                };
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if dir == "corpus" && !name.starts_with("seed-") {
                        continue;
                    }
                    let data = std::fs::read(e.path()).unwrap();
                    let t = std::time::Instant::now();
                    if split {
                        if let Some((choice, chunks)) = split_input(&data) {
                            run_connection(choice, &chunks);
                        }
                    } else if let Some((&choice, stream)) = data.split_first() {
                        run(choice, &[stream]);
                    }
                    eprintln!("{target}/{name}: {:?}", t.elapsed());
                }
            }
        }
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode(b"Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(base64_decode(b"Zm8=").as_deref(), Some(&b"fo"[..]));
        assert_eq!(base64_decode(b"Zg==").as_deref(), Some(&b"f"[..]));
        assert_eq!(base64_decode(b"Zg=").as_deref(), None);
        assert_eq!(base64_decode(b"Z!==").as_deref(), None);
        let m = Model::from_input(b"ms Zm9v 2 b F7\r\nhi\r\nma n1 N0\r\nmg e N30 v\r\n");
        assert!(m.explains(b"foo", Some(7), b"hi").is_ok());
        assert!(m.explains(b"n1", Some(0), b"12").is_ok());
        assert!(m.explains(b"e", Some(0), b"").is_ok());
        // bytes outside the alphabet are skipped, as memcached's decoder does
        let m = Model::from_input(b"ms \xc8\xffZm!9v 3 b F1\r\nbar\r\nms Zm8 1 b\r\nx\r\n");
        assert!(m.explains(b"foo", Some(1), b"bar").is_ok());
        assert!(m.explains(b"fo", Some(0), b"x").is_ok());
    }

    /// The checkers catch a value the input never stored.
    #[test]
    #[should_panic(expected = "never stored")]
    fn text_checker_catches_foreign_values() {
        let shared = new_shared(0);
        let model = Model::from_input(b"set k 0 0 1\r\nx\r\n");
        check_output(b"VALUE k 0 1\r\ny\r\nEND\r\n", &shared, &model);
    }

    #[test]
    #[should_panic(expected = "never stored")]
    fn binary_checker_catches_foreign_values() {
        let shared = new_shared(0);
        let model = Model::from_input(b"set k 0 0 1\r\nx\r\n");
        // a getk response (0x0c) for key "k", flags 0, value "y"
        let mut r = vec![0x81, 0x0c, 0, 1, 4, 0, 0, 0, 0, 0, 0, 6];
        r.extend_from_slice(&[0; 12]);
        r.extend_from_slice(&[0, 0, 0, 0, b'k', b'y']);
        check_binary_output(&r, &shared, &model);
    }

    /// Binary sets are in the model, and a binary conversation runs clean.
    #[test]
    fn binary_requests_are_modelled() {
        let mut set = vec![0x80, 0x01, 0, 2, 8, 0, 0, 0, 0, 0, 0, 15];
        set.extend_from_slice(&[0; 12]);
        set.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 0]);
        set.extend_from_slice(b"bkhello");
        let m = Model::from_input(&set);
        assert!(m.explains(b"bk", Some(5), b"hello").is_ok());
        let mut getk = vec![0x80, 0x0c, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2];
        getk.extend_from_slice(&[0; 12]);
        getk.extend_from_slice(b"bk");
        run_connection(0, &[&set, &getk]);
    }

    #[test]
    fn splits() {
        let (c, chunks) = split_input(b"\x01\x02\x01\x00\x03\x00abcdef").unwrap();
        assert_eq!(c, 1);
        assert_eq!(chunks, vec![&b"a"[..], b"bc", b"def"]);
    }
}
