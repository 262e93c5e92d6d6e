//! memcached's binary protocol, as memcached 1.6.18 serves it: a 24-byte
//! header (magic 0x80, opcode, key length, extras length, data type,
//! vbucket, body length, opaque, cas), then extras, key and value.
//! Replies echo the opcode and opaque, with magic 0x81 and a status.
//!
//! Framing follows memcached: a request is looked at once its header,
//! extras and key have arrived; a bad magic byte closes the connection;
//! a header whose lengths do not add up (or fit the command) gets an error
//! and the connection closes after it. Values are read whole (they are
//! bounded by `-I`, which is checked first), or discarded as they arrive
//! after an error. Quiet opcodes suppress their nominal replies (not their
//! errors); replies go out in order, so a quiet batch ends with a reply
//! from a non-quiet command such as `noop`.

mod admin;
mod arith;
mod delete;
mod retrieval;
mod stats;
mod storage;

use crate::server::Shared;
use crate::stats::ThreadStats;

use super::text::OUT_HIGH_WATER;

pub const REQUEST: u8 = 0x80;
const RESPONSE: u8 = 0x81;
pub const HEADER: usize = 24;

/// Opcodes.
pub mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
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
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Response statuses, with the text memcached sends as the body of an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    KeyNotFound = 0x01,
    KeyExists = 0x02,
    TooLarge = 0x03,
    InvalidArguments = 0x04,
    NotStored = 0x05,
    NonNumeric = 0x06,
    AuthError = 0x20,
    UnknownCommand = 0x81,
    OutOfMemory = 0x82,
}

impl Status {
    fn text(self) -> &'static [u8] {
        match self {
            Status::KeyNotFound => b"Not found",
            Status::KeyExists => b"Data exists for key.",
            Status::TooLarge => b"Too large.",
            Status::InvalidArguments => b"Invalid arguments",
            Status::NotStored => b"Not stored.",
            Status::NonNumeric => b"Non-numeric server-side value for incr or decr",
            Status::AuthError => b"Auth failure.",
            Status::UnknownCommand => b"Unknown command",
            Status::OutOfMemory => b"Out of memory",
        }
    }
}

/// A request header, in host order.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub magic: u8,
    pub opcode: u8,
    pub key_len: usize,
    pub extras_len: usize,
    pub body_len: usize,
    pub opaque: u32,
    pub cas: u64,
}

impl Header {
    /// Reads a header from the first 24 bytes of `b`.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER] = b.get(..HEADER)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Header {
            magic: b[0],
            opcode: b[1],
            key_len: u16_at(2) as usize,
            extras_len: b[4] as usize,
            body_len: u32_at(8) as usize,
            opaque: u32_at(12),
            cas: (u32_at(16) as u64) << 32 | u32_at(20) as u64,
        })
    }

    /// Bytes memcached reads before it looks at a request.
    fn head_len(&self) -> usize {
        HEADER + self.extras_len + self.key_len
    }

    /// The value's length (body less extras and key), if they fit.
    fn value_len(&self) -> Option<usize> {
        self.body_len.checked_sub(self.extras_len + self.key_len)
    }
}

/// Per-connection state of the binary protocol.
#[derive(Default)]
pub struct Session {
    /// Bytes of a rejected value still to discard.
    swallow: usize,
    /// The error reply that goes out once they are: memcached answers a
    /// rejected request only after it has discarded its body.
    deferred: Vec<u8>,
    /// Close once the output is written.
    pub close: bool,
    /// `-R` requests ran in one go: write, let others run, then go on.
    pub yielded: bool,
    resumed: bool,
    /// Bytes, from the first unconsumed one, the pending request needs.
    pub want: usize,
    /// The socket's descriptor, for `-vv` logging.
    pub fd: i32,
    /// Items the replies not yet written refer to.
    pub(super) held: crate::protocol::Held,
}

/// What a request needs next.
enum Step {
    /// Done; consumed this many bytes (its header included).
    Done(usize),
    /// Its value has not fully arrived: this many bytes from its header on.
    NeedData(usize),
}

/// Everything a command runs with.
struct Ctx<'a> {
    shared: &'a Shared,
    stats: &'a ThreadStats,
    out: &'a mut Vec<u8>,
    sess: &'a mut Session,
    h: Header,
    /// The request was a quiet one (its nominal reply is not sent).
    quiet: bool,
    verbose: bool,
}

impl<'a> Ctx<'a> {
    fn store(&self) -> &'a crate::storage::Store {
        &self.shared.store
    }

    /// A reply: header, then extras, key and value.
    fn respond(&mut self, status: u16, cas: u64, extras: &[u8], key: &[u8], value: &[u8]) {
        self.respond_logging_cas(status, cas, cas, extras, key, value);
    }

    /// [`Ctx::respond`], logging (`-vv`) the header with `logged_cas`:
    /// memcached logs a get's reply before it fills its cas in.
    fn respond_logging_cas(
        &mut self,
        status: u16,
        cas: u64,
        logged_cas: u64,
        extras: &[u8],
        key: &[u8],
        value: &[u8],
    ) {
        let body = extras.len() + key.len() + value.len();
        let mut h = [0u8; HEADER];
        h[0] = RESPONSE;
        h[1] = self.h.opcode;
        h[2..4].copy_from_slice(&(key.len() as u16).to_be_bytes());
        h[4] = extras.len() as u8;
        h[6..8].copy_from_slice(&status.to_be_bytes());
        h[8..12].copy_from_slice(&(body as u32).to_be_bytes());
        h[12..16].copy_from_slice(&self.h.opaque.to_be_bytes());
        h[16..24].copy_from_slice(&logged_cas.to_be_bytes());
        if self.verbose {
            log_header(self.sess.fd, '>', "Writing bin response:", &h);
        }
        h[16..24].copy_from_slice(&cas.to_be_bytes());
        self.out.reserve(HEADER + body);
        self.out.extend_from_slice(&h);
        self.out.extend_from_slice(extras);
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(value);
    }

    /// One statistic (memcached writes these without `-vv` logging).
    fn stat_packet(&mut self, name: &[u8], value: &[u8]) {
        let verbose = std::mem::replace(&mut self.verbose, false);
        self.respond(0, 0, &[], name, value);
        self.verbose = verbose;
    }

    /// A success reply, unless the request was quiet.
    fn ok(&mut self, cas: u64, extras: &[u8], key: &[u8], value: &[u8]) {
        if !self.quiet {
            self.respond(0, cas, extras, key, value);
        }
    }

    /// An error reply (sent even for quiet requests), with memcached's text.
    fn error(&mut self, status: Status) {
        if self.verbose {
            let fd = self.sess.fd.to_string();
            log(&[b">", fd.as_bytes(), b" Writing an error: ", status.text()]);
        }
        self.respond(status as u16, 0, &[], &[], status.text());
    }

    /// `-vv`: a line about the request, as memcached prints it (`<fd `
    /// first when `tagged`), the key as raw bytes.
    fn log_request(&self, tagged: bool, parts: &[&[u8]]) {
        if self.verbose {
            let tag = format!("<{} ", self.sess.fd);
            let tag: &[u8] = if tagged { tag.as_bytes() } else { b"" };
            log(&[&[tag], parts].concat());
        }
    }

    /// An error reply that goes out once the next `discard` bytes of the
    /// body have arrived and been thrown away.
    fn error_after_discarding(&mut self, status: Status, discard: usize) {
        let mark = self.out.len();
        self.error(status);
        if discard > 0 {
            self.sess.deferred = self.out.split_off(mark);
            self.sess.swallow = discard;
        }
    }
}

/// One line of raw bytes on stderr.
fn log(parts: &[&[u8]]) {
    use std::io::Write;
    let mut line = parts.concat();
    line.push(b'\n');
    let _ = std::io::stderr().write_all(&line);
}

/// `-vv`: a header as memcached dumps it, four bytes a line.
fn log_header(fd: i32, dir: char, title: &str, h: &[u8]) {
    let mut text = format!("{dir}{fd} {title}");
    let pad = if dir == '<' { "   " } else { "  " };
    for (i, b) in h.iter().take(HEADER).enumerate() {
        if i % 4 == 0 {
            text.push_str(&format!("\n{dir}{fd}{pad}"));
        }
        text.push_str(&format!(" 0x{b:02x}"));
    }
    eprintln!("{text}");
}

/// Runs every complete request in `input`; returns the bytes consumed.
pub fn process(
    shared: &Shared,
    stats: &ThreadStats,
    sess: &mut Session,
    input: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    let mut pos = 0;
    let mut commands = 0;
    sess.want = 0;
    // Replies before this mark are as good as sent (see the bad magic).
    let mut sent = out.len();
    // What was queued before this call has been written.
    sess.held.release();
    let verbose = shared.verbosity() >= 2;
    let first = usize::from(!std::mem::take(&mut sess.resumed));
    let budget = shared.config.reqs_per_event.saturating_add(first);
    while !sess.close {
        if sess.swallow > 0 {
            let n = sess.swallow.min(input.len() - pos);
            sess.swallow -= n;
            pos += n;
            if sess.swallow > 0 {
                break;
            }
            out.append(&mut sess.deferred);
            continue;
        }
        if out.len() >= OUT_HIGH_WATER {
            break;
        }
        let rest = &input[pos..];
        let Some(h) = Header::parse(rest) else {
            sess.want = HEADER;
            break;
        };
        if h.magic != REQUEST {
            // memcached drops a client that does not speak the protocol,
            // with the replies it had not yet written (a noop writes them).
            if shared.verbosity() > 0 {
                eprintln!("Invalid magic:  {:x}", h.magic);
            }
            out.truncate(sent);
            sess.close = true;
            break;
        }
        if rest.len() < h.head_len() {
            sess.want = h.head_len();
            break;
        }
        if verbose {
            log_header(sess.fd, '<', "Read binary protocol data:", rest);
        }
        let mut ctx = Ctx {
            shared,
            stats,
            out,
            sess,
            h,
            quiet: false,
            verbose,
        };
        match dispatch(&mut ctx, rest) {
            Step::Done(n) => {
                // A noop writes what is queued.
                if h.opcode == op::NOOP {
                    sent = out.len();
                    sess.held.release();
                }
                pos += n;
                commands += 1;
                if commands >= budget && pos < input.len() && !sess.close {
                    crate::stats::bump(&stats.c.conn_yields);
                    sess.yielded = true;
                    sess.resumed = true;
                    break;
                }
            }
            Step::NeedData(n) => {
                sess.want = n;
                break;
            }
        }
    }
    pos
}

/// memcached's `dispatch_bin_command`: checks the lengths against what the
/// command takes, then runs it. `req` starts at the header and holds at
/// least its extras and key.
fn dispatch(ctx: &mut Ctx<'_>, req: &[u8]) -> Step {
    let h = ctx.h;
    let head = h.head_len();
    let extras = &req[HEADER..HEADER + h.extras_len];
    let key = &req[HEADER + h.extras_len..head];
    if h.key_len + h.extras_len > h.body_len {
        ctx.error(Status::UnknownCommand);
        ctx.sess.close = true;
        return Step::Done(head);
    }
    if h.key_len > crate::protocol::text::tokens::KEY_MAX_LENGTH {
        return protocol_error(ctx, head);
    }
    let (base, quiet) = match h.opcode {
        op::SETQ => (op::SET, true),
        op::ADDQ => (op::ADD, true),
        op::REPLACEQ => (op::REPLACE, true),
        op::DELETEQ => (op::DELETE, true),
        op::INCREMENTQ => (op::INCREMENT, true),
        op::DECREMENTQ => (op::DECREMENT, true),
        op::QUITQ => (op::QUIT, true),
        op::FLUSHQ => (op::FLUSH, true),
        op::APPENDQ => (op::APPEND, true),
        op::PREPENDQ => (op::PREPEND, true),
        op::GETQ => (op::GETQ, true),
        op::GETKQ => (op::GETKQ, true),
        op::GATQ => (op::GATQ, true),
        op::GATKQ => (op::GATKQ, true),
        other => (other, false),
    };
    ctx.quiet = quiet;
    let (kl, el, bl) = (h.key_len, h.extras_len, h.body_len);
    let valid = match base {
        op::VERSION | op::NOOP | op::QUIT | op::SASL_LIST_MECHS => kl == 0 && el == 0 && bl == 0,
        op::FLUSH => kl == 0 && bl == el && (el == 0 || el == 4),
        op::SET | op::ADD | op::REPLACE => el == 8 && kl != 0 && bl >= kl + 8,
        op::GET | op::GETQ | op::GETK | op::GETKQ => el == 0 && bl == kl && kl > 0,
        op::DELETE => kl > 0 && el == 0 && bl == kl,
        op::INCREMENT | op::DECREMENT => kl > 0 && el == 20 && bl == kl + el,
        op::APPEND | op::PREPEND => kl > 0 && el == 0,
        op::STAT => el == 0,
        op::SASL_AUTH | op::SASL_STEP => el == 0 && kl != 0,
        op::TOUCH | op::GAT | op::GATQ | op::GATK | op::GATKQ => el == 4 && kl != 0,
        _ => {
            // memcached discards the body after the key and extras it has
            // already read: a request with either eats into the next one.
            ctx.error_after_discarding(Status::UnknownCommand, h.body_len);
            return Step::Done(head);
        }
    };
    if !valid {
        return protocol_error(ctx, head);
    }
    let value_len = h.value_len().unwrap_or(0);
    match base {
        op::VERSION => admin::version(ctx, head),
        op::NOOP => admin::noop(ctx, head),
        op::QUIT => admin::quit(ctx, head),
        op::FLUSH => admin::flush(ctx, extras, head),
        op::SASL_LIST_MECHS | op::SASL_AUTH | op::SASL_STEP => {
            // Without -S memcached knows no SASL, and discards the value.
            ctx.error_after_discarding(Status::UnknownCommand, value_len);
            Step::Done(head)
        }
        op::SET | op::ADD | op::REPLACE | op::APPEND | op::PREPEND => {
            storage::update(ctx, base, extras, key, req, value_len)
        }
        op::DELETE => delete::delete(ctx, key, head),
        op::INCREMENT | op::DECREMENT => arith::delta(ctx, base, extras, key, head),
        op::STAT => stats::stat(ctx, key, head),
        // The gets and touches: what is left.
        _ => retrieval::get(ctx, base, extras, key, head),
    }
}

/// memcached's `handle_binary_protocol_error`: "Invalid arguments", then
/// the connection closes.
fn protocol_error(ctx: &mut Ctx<'_>, head: usize) -> Step {
    ctx.error(Status::InvalidArguments);
    if ctx.shared.verbosity() > 0 {
        eprintln!(
            "Protocol error (opcode {:02x}), close connection {}",
            ctx.h.opcode, ctx.sess.fd
        );
    }
    ctx.sess.close = true;
    Step::Done(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Random requests (well-formed headers with random lengths and
    /// opcodes, bad magic bytes, random bodies), fed in random pieces:
    /// nothing panics, and what is buffered stays bounded.
    #[test]
    fn random_input_never_panics() {
        let shared = Shared::new(Config::default(), Vec::new());
        let stats = ThreadStats::default();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..next() % 8 {
                let r = next();
                let opcode = (r % 0x30) as u8;
                let key_len = (r >> 8) % 8;
                let extras_len = [0, 4, 8, 20][(r >> 16) as usize % 4];
                let value_len = (r >> 24) % 16;
                let mut body = key_len + extras_len + value_len;
                if (r >> 32) % 10 == 0 {
                    body = next() % 100; // lengths that do not add up
                }
                let magic = if (r >> 40) % 20 == 0 {
                    r as u8
                } else {
                    REQUEST
                };
                input.extend([magic, opcode, 0, key_len as u8, extras_len as u8, 0, 0, 0]);
                input.extend((body as u32).to_be_bytes());
                input.extend((r as u32).to_be_bytes());
                input.extend((next() % 4).to_be_bytes());
                input.extend((0..key_len + extras_len + value_len).map(|_| next() as u8));
            }
            let mut sess = Session::default();
            let mut out = Vec::new();
            let mut at = 0;
            let mut pending = Vec::new();
            while at < input.len() && !sess.close {
                let n = (next() as usize % 40 + 1).min(input.len() - at);
                pending.extend_from_slice(&input[at..at + n]);
                at += n;
                let used = process(&shared, &stats, &mut sess, &pending, &mut out);
                pending.drain(..used);
                out.clear();
                assert!(pending.len() <= HEADER + 255 + 65_535 + 16);
            }
        }
    }

    #[test]
    fn parses_a_header() {
        let mut b = vec![0x80, 0x01, 0x00, 0x03, 0x08, 0, 0, 0];
        b.extend_from_slice(&20u32.to_be_bytes());
        b.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        b.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        let h = Header::parse(&b).unwrap_or_else(|| panic!("a full header"));
        assert_eq!(
            (h.magic, h.opcode, h.key_len, h.extras_len),
            (0x80, 1, 3, 8)
        );
        assert_eq!(
            (h.body_len, h.opaque, h.cas),
            (20, 0xdead_beef, 0x0102_0304_0506_0708)
        );
        assert_eq!((h.head_len(), h.value_len()), (35, Some(9)));
        assert!(Header::parse(&b[..23]).is_none());
    }
}
