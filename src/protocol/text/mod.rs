//! memcached's text protocol: find complete request lines in what a client
//! sent, run each command, and append the replies to one output buffer.
//!
//! The connection calls [`process`] with everything read so far; it returns
//! how many bytes it consumed. A storage command whose data block has not
//! fully arrived is left unconsumed and parsed again when more bytes come.

mod admin;
mod arith;
mod delete;
mod meta;
mod retrieval;
pub mod stats;
mod storage;
pub mod tokens;
mod touch;

pub use storage::{abandon, direct_buf, direct_filled};

use memchr::memchr;

pub use admin::VERSION;

use crate::protocol::{NoSend, SendNow};
use crate::server::Shared;
use crate::stats::ThreadStats;
use tokens::Tokens;

/// Without a newline in this many bytes, a non-get request closes the
/// connection (memcached's rule).
pub const MAX_LINE: usize = 2048;
/// memcached reads requests into a 16 KiB buffer: a longer request line
/// (other than a multi-get) never fits it.
pub const READ_BUFFER: usize = 16 * 1024;
/// The longest multi-get line we accept (memcached's is unbounded).
pub const MAX_GET_LINE: usize = 4 * 1024 * 1024;
/// Stop answering and flush once this much output is waiting.
pub const OUT_HIGH_WATER: usize = 1024 * 1024;

/// Per-connection protocol state.
#[derive(Default)]
pub struct Session {
    /// Bytes of a rejected data block still to discard.
    swallow: usize,
    /// Keys of the current multi-get already answered (output was flushed).
    get_resume: usize,
    /// Close once the output is written.
    pub close: bool,
    /// `-R` commands ran in one go: write, let others run, then go on.
    pub yielded: bool,
    /// The next [`process`] call goes on after a yield.
    resumed: bool,
    /// `-Y`: whether this connection has authenticated.
    pub authenticated: bool,
    /// The socket's descriptor, as `stats conns` numbers connections.
    pub fd: i32,
    /// `-vv`: the pending request line was already logged.
    logged: bool,
    /// Bytes, from the first unconsumed one, that the pending command needs
    /// (its line and data block): the connection reads them in one go.
    pub want: usize,
    /// Whether large data blocks may be read straight into their items
    /// (the connection then reads into [`direct_buf`] while one is pending).
    pub direct_reads: bool,
    /// The data block being read straight into its item.
    direct: Option<storage::DirectRead>,
    /// Items the replies not yet written refer to (`mg` hits).
    held: crate::protocol::Held,
    /// Bytes at the start of the output that memcached would already have
    /// written: it writes its replies after every classic get, so a get's
    /// error drops only what came after the last one.
    written_mark: usize,
}

/// What a command needs next.
enum Step {
    /// Done; consumed this many bytes after the request line.
    Done(usize),
    /// Its data block is incomplete: this many bytes after the request
    /// line must arrive first.
    NeedData(usize),
    /// Output is full mid-command: flush, then run the same line again.
    Flush,
}

/// Everything a command runs with.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub stats: &'a ThreadStats,
    pub out: &'a mut Vec<u8>,
    pub sess: &'a mut Session,
    pub noreply: bool,
    /// `-vv`: log requests and replies to stderr, as memcached does.
    pub verbose: bool,
    /// Large values go to the socket from their items.
    pub send: &'a mut dyn SendNow,
}

impl<'a> Ctx<'a> {
    /// Writes a one-line reply, unless `noreply` was given.
    pub fn reply(&mut self, line: &[u8]) {
        if self.noreply {
            if self.verbose {
                // memcached logs the reply it does not send.
                self.log('>', &[b"NOREPLY ", line].concat());
            }
            return;
        }
        if self.verbose {
            self.log('>', line);
        }
        self.out.extend_from_slice(line);
        self.out.extend_from_slice(b"\r\n");
    }

    /// One line of `-vv` output: `<fd request` or `>fd reply`.
    pub fn log(&self, dir: char, line: &[u8]) {
        eprintln!("{dir}{} {}", self.sess.fd, String::from_utf8_lossy(line));
    }

    pub fn store(&self) -> &'a crate::storage::Store {
        &self.shared.store
    }
}

/// Runs every complete command in `input`; returns the bytes consumed.
pub fn process(
    shared: &Shared,
    stats: &ThreadStats,
    sess: &mut Session,
    input: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    process_sending(shared, stats, sess, input, out, &mut NoSend)
}

/// [`process`], with replies of large values written to the socket by
/// `send` (what `out` held first goes with them).
pub fn process_sending(
    shared: &Shared,
    stats: &ThreadStats,
    sess: &mut Session,
    input: &[u8],
    out: &mut Vec<u8>,
    send: &mut dyn SendNow,
) -> usize {
    let mut pos = 0;
    let mut commands = 0;
    sess.want = 0;
    // What was queued before this call has been written.
    sess.held.release();
    sess.written_mark = 0;
    let verbose = shared.verbosity() >= 2;
    // memcached runs the command that woke it up plus -R more before it
    // yields, and -R after coming back from a yield.
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
            continue;
        }
        if out.len() >= OUT_HIGH_WATER {
            break;
        }
        let rest = &input[pos..];
        // memcached's authentication path waits for 2 bytes before looking
        // for a line, and makes no exception for long gets.
        let authenticating = shared.auth_required() && !sess.authenticated;
        if authenticating && rest.len() < 2 {
            break;
        }
        let Some(nl) = memchr(b'\n', rest) else {
            if rest.len() > MAX_LINE
                && (authenticating || !is_get(rest) || rest.len() > MAX_GET_LINE)
            {
                sess.close = true;
            }
            break;
        };
        if nl > READ_BUFFER && !is_get(rest) {
            sess.close = true;
            break;
        }
        // memcached strips a "\r" before the "\n" only from lines of 2+ bytes.
        let line = if nl > 1 && rest[nl - 1] == b'\r' {
            &rest[..nl - 1]
        } else {
            &rest[..nl]
        };
        // memcached reads the line as a C string: a NUL ends it.
        let line = memchr(0, line).map_or(line, |z| &line[..z]);
        let mut ctx = Ctx {
            shared,
            stats,
            out,
            sess,
            noreply: false,
            verbose,
            send: &mut *send,
        };
        // memcached's authentication path logs its replies, not the lines.
        if verbose && !std::mem::take(&mut ctx.sess.logged) && !authenticating {
            ctx.log('<', line);
        }
        let step = dispatch(&mut ctx, line, &rest[nl + 1..]);
        // A command waiting for its data runs again later: log it once.
        sess.logged = verbose && matches!(step, Step::NeedData(_));
        match step {
            Step::Done(extra) => {
                pos += nl + 1 + extra;
                commands += 1;
                if commands >= budget && pos < input.len() {
                    crate::stats::bump(&stats.c.conn_yields);
                    sess.yielded = true;
                    sess.resumed = true;
                    break;
                }
            }
            Step::NeedData(data) => {
                sess.want = nl + 1 + data;
                break;
            }
            Step::Flush => break,
        }
    }
    pos
}

fn is_get(rest: &[u8]) -> bool {
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let r = &rest[spaces..];
    spaces <= 100 && (r.starts_with(b"get ") || r.starts_with(b"gets "))
}

fn dispatch(ctx: &mut Ctx<'_>, line: &[u8], data: &[u8]) -> Step {
    let t = Tokens::new(line);
    let cmd = t.get(0);
    let n = t.ntokens();
    if ctx.shared.auth_required() && !ctx.sess.authenticated {
        return admin::authenticate(ctx, &t, data);
    }
    if n < 2 || cmd.len() < 2 {
        ctx.reply(b"ERROR");
        return Step::Done(0);
    }
    // Token-count checks answer ERROR, as memcached 1.6.18 does.
    match cmd {
        b"get" | b"bget" if n >= 3 => retrieval::get(ctx, &t, false, false),
        b"gets" if n >= 3 => retrieval::get(ctx, &t, true, false),
        b"gat" if n >= 3 => retrieval::get(ctx, &t, false, true),
        b"gats" if n >= 3 => retrieval::get(ctx, &t, true, true),
        b"set" | b"add" | b"replace" | b"append" | b"prepend" if n == 6 || n == 7 => {
            storage::update(ctx, &t, data)
        }
        b"cas" if n == 7 || n == 8 => storage::update(ctx, &t, data),
        b"incr" | b"decr" if n == 4 || n == 5 => arith::delta(ctx, &t),
        b"delete" if (3..=5).contains(&n) => delete::delete(ctx, &t),
        b"touch" if n == 4 || n == 5 => touch::touch(ctx, &t),
        b"stats" => stats::stats(ctx, &t),
        b"flush_all" if (2..=4).contains(&n) => admin::flush_all(ctx, &t),
        b"version" => admin::version(ctx),
        // Lets the server's tests check that a panic stays in its connection.
        #[cfg(test)]
        b"debug_panic" => panic!("debug_panic: a test asked for it"),
        b"quit" => {
            ctx.sess.close = true;
            Step::Done(0)
        }
        b"verbosity" if n == 3 || n == 4 => admin::verbosity(ctx, &t),
        b"shutdown" => admin::shutdown(ctx, &t),
        b"cache_memlimit" if n == 3 || n == 4 => admin::memlimit(ctx, &t),
        b"slabs" => admin::slabs(ctx, &t),
        b"lru_crawler" => admin::lru_crawler(ctx, &t),
        b"mg" | b"ms" | b"md" | b"ma" | b"me" | b"mn" => meta::dispatch(ctx, cmd, &t, data),
        _ if t.get(t.len() - 1).starts_with(b"HTTP/") => {
            ctx.sess.close = true;
            Step::Done(0)
        }
        _ => {
            ctx.reply(b"ERROR");
            Step::Done(0)
        }
    }
}
