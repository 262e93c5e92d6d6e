//! Meta commands: `mg`, `ms`, `md`, `ma`, `me`, `mn`, as memcached 1.6.18
//! answers them (protocol.txt, "Meta Commands", and its behaviour where
//! the text is silent). They share the text protocol's line framing; this
//! module parses their flags, the submodules run them.
//!
//! A flag is one character, possibly followed by a token (`T30`, `Oabc`).
//! Flags that ask for data are answered in the order they were given.
//! Whatever memcached does with a flag at its position in that order
//! (`T` before or after `t`, an over-long opaque that stops the command
//! half way), the commands here reproduce by walking the flags the same way.

mod arith;
mod debug;
mod delete;
mod get;
mod set;

use super::tokens::{Tokens, strtol, strtoul, strtoull};
use super::{Ctx, Step};
use crate::protocol::base64;

/// memcached's MFLAG_MAX_OPT_LENGTH: more tokens than this (command, key
/// and the terminal token included) is "options flags too long".
const MAX_TOKENS: usize = 20;
/// memcached's MFLAG_MAX_OPAQUE_LENGTH: the `O` token, `O` included.
const MAX_OPAQUE: usize = 32;

const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format";
const BAD_TOKEN: &str = "CLIENT_ERROR bad token in command line format";
const OPAQUE_TOO_LONG: &[u8] = b"CLIENT_ERROR opaque token too long";

/// Runs a meta command (`cmd` is one of the six).
pub fn dispatch(ctx: &mut Ctx<'_>, cmd: &[u8], t: &Tokens<'_>, data: &[u8]) -> Step {
    match cmd {
        b"mg" => get::mg(ctx, t),
        b"ms" => set::ms(ctx, t, data),
        b"md" => delete::md(ctx, t),
        b"ma" => arith::ma(ctx, t),
        b"me" => debug::me(ctx, t),
        _ => {
            // mn writes what is queued (memcached flushes there).
            ctx.sess.held.release();
            ctx.reply(b"MN");
            Step::Done(0)
        }
    }
}

/// What the flags of a meta command asked for (memcached's
/// `_meta_flag_preparse`). Times are already server-relative.
#[derive(Default)]
struct Flags {
    /// `b`: the key was base64 (and is decoded in `key`).
    binary: bool,
    /// `N`: create on a miss, with this expiry.
    vivify: Option<u32>,
    /// `T`: new expiry.
    ttl: Option<u32>,
    /// `R`: win the recache if the item expires before this.
    recache: Option<u32>,
    /// `v`: return the value.
    value: bool,
    /// `u`: don't count this as a use of the item.
    no_update: bool,
    /// `q`: no nominal reply.
    quiet: bool,
    /// `I`: invalidate (`md`) or accept a stale cas (`ms`).
    invalidate: bool,
    /// `F`: client flags to store.
    client_flags: u32,
    /// `C`: compare cas.
    cas: Option<u64>,
    /// `M`: mode.
    mode: Option<u8>,
    /// `D`: delta (`ma`).
    delta: Option<u64>,
    /// `J`: initial value (`ma`).
    initial: Option<u64>,
}

/// A command's flags and its key (decoded with `b`).
struct Parsed<'a> {
    flags: Flags,
    key: std::borrow::Cow<'a, [u8]>,
    /// The flag tokens, in order.
    toks: Vec<&'a [u8]>,
}

/// Reads the flags from token `first` on. An error is `Some(message)`, or
/// `None` where memcached leaves the caller's message in place (a bad `F`).
/// As in memcached, a duplicate or unknown flag ends the parse at once;
/// other errors are remembered and the parse goes on (a later error's
/// message wins).
fn parse<'a>(
    ctx: &Ctx<'_>,
    t: &Tokens<'a>,
    first: usize,
) -> Result<Parsed<'a>, Option<&'static str>> {
    let mut f = Flags::default();
    let mut key = std::borrow::Cow::Borrowed(t.get(1));
    let toks: Vec<&[u8]> = (first..t.len()).map(|i| t.get(i)).collect();
    let mut seen = [false; 127];
    let mut failed = false;
    let mut message = None;
    let mut fail = |m: Option<&'static str>| {
        failed = true;
        if m.is_some() {
            message = m;
        }
    };
    let clock = &ctx.store().clock;
    for tok in &toks {
        let (&flag, arg) = tok.split_first().ok_or(Some("CLIENT_ERROR invalid flag"))?;
        // memcached's table of seen flags stops at 126: anything above
        // reads as a duplicate.
        match seen.get_mut(flag as usize) {
            Some(s) if !*s => *s = true,
            _ => return Err(Some("CLIENT_ERROR duplicate flag")),
        }
        let time = |arg| strtol(arg).map(|v| clock.realtime(v as i64));
        match flag {
            b'b' => match base64::decode(t.get(1)) {
                Some(k) => {
                    key = std::borrow::Cow::Owned(k);
                    f.binary = true;
                }
                None => fail(Some("CLIENT_ERROR error decoding key")),
            },
            b'N' => match time(arg) {
                Some(v) => f.vivify = Some(v),
                None => fail(Some(BAD_TOKEN)),
            },
            b'T' => match time(arg) {
                Some(v) => f.ttl = Some(v),
                None => fail(Some(BAD_TOKEN)),
            },
            b'R' => match time(arg) {
                Some(v) => f.recache = Some(v),
                None => fail(Some(BAD_TOKEN)),
            },
            b'l' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' => {}
            b'v' => f.value = true,
            b'u' => f.no_update = true,
            b'q' => f.quiet = true,
            b'F' => match strtoul(arg) {
                Some(v) => f.client_flags = v,
                None => fail(None),
            },
            b'C' => match strtoull(arg) {
                Some(v) => f.cas = Some(v),
                None => fail(Some(BAD_TOKEN)),
            },
            b'M' => match arg {
                [m] => f.mode = Some(*m),
                _ => fail(Some("CLIENT_ERROR incorrect length for M token")),
            },
            b'J' => match strtoull(arg) {
                Some(v) => f.initial = Some(v),
                None => fail(Some("CLIENT_ERROR invalid numeric initial value")),
            },
            b'D' => match strtoull(arg) {
                Some(v) => f.delta = Some(v),
                None => fail(Some("CLIENT_ERROR invalid numeric delta value")),
            },
            b'I' => f.invalidate = true,
            _ => return Err(Some("CLIENT_ERROR invalid flag")),
        }
    }
    if failed {
        return Err(message);
    }
    Ok(Parsed {
        flags: f,
        key,
        toks,
    })
}

/// The flag tokens memcached gets through before an over-long opaque
/// stops it (all of them if there is none), and whether one did.
fn until_bad_opaque<'t>(toks: &'t [&'t [u8]]) -> (&'t [&'t [u8]], bool) {
    match toks
        .iter()
        .position(|t| t[0] == b'O' && t.len() > MAX_OPAQUE)
    {
        Some(i) => (&toks[..i], true),
        None => (toks, false),
    }
}

/// The expiry time a command leaves on an item it creates: memcached
/// creates it without one, then applies `N` and `T` in flag order.
fn created_exptime(f: &Flags, toks: &[&[u8]]) -> u32 {
    let mut exp = 0;
    for tok in until_bad_opaque(toks).0 {
        match tok[0] {
            b'N' => exp = f.vivify.unwrap_or(0),
            b'T' => exp = f.ttl.unwrap_or(0),
            _ => {}
        }
    }
    exp
}

/// Appends ` <opaque>`.
fn push_opaque(line: &mut Vec<u8>, tok: &[u8]) {
    line.push(b' ');
    line.extend_from_slice(tok);
}

/// Appends ` k<key>`: a binary key in base64, followed by ` b`.
fn push_key(line: &mut Vec<u8>, key: &[u8], binary: bool) {
    line.extend_from_slice(b" k");
    if binary {
        base64::encode(key, line);
        line.extend_from_slice(b" b");
    } else {
        line.extend_from_slice(key);
    }
}

/// Appends ` <flag><number>`.
fn push_num(line: &mut Vec<u8>, flag: u8, n: impl itoa::Integer) {
    line.push(b' ');
    line.push(flag);
    line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends ` t<seconds left>`, `-1` for never. memcached prints the
/// difference as unsigned: an item made to expire in the past by this very
/// command (`T-1`, stored as 1) wraps around its clock, which starts at
/// 62 where memcrab's starts at 2.
fn push_ttl(line: &mut Vec<u8>, exptime: u32, now: u32) {
    if exptime == 0 {
        line.extend_from_slice(b" t-1");
    } else if exptime == 1 {
        push_num(line, b't', 1u32.wrapping_sub(now + MEMCACHED_CLOCK_AHEAD));
    } else {
        push_num(line, b't', exptime.wrapping_sub(now));
    }
}

/// How far memcached's relative clock is ahead of memcrab's.
const MEMCACHED_CLOCK_AHEAD: u32 = 60;

/// Writes an error (never suppressed) and finishes the command.
fn error(ctx: &mut Ctx<'_>, message: &[u8]) -> Step {
    ctx.noreply = false;
    ctx.reply(message);
    Step::Done(0)
}

/// The checks every meta command but `me` starts with: a key, not too
/// long, not too many flags. `too_many` is the command's wording.
fn check_line(ctx: &mut Ctx<'_>, t: &Tokens<'_>, too_many: &[u8]) -> Result<(), Step> {
    if t.ntokens() < 3 {
        return Err(error(ctx, b"ERROR"));
    }
    if t.get(1).len() > super::tokens::KEY_MAX_LENGTH {
        return Err(error(ctx, BAD_FORMAT));
    }
    if t.ntokens() > MAX_TOKENS {
        return Err(error(ctx, too_many));
    }
    Ok(())
}

/// Ends a reply line and queues it, unless it is suppressed.
fn finish(ctx: &mut Ctx<'_>, mut line: Vec<u8>, quiet: bool) {
    if !quiet {
        line.extend_from_slice(b"\r\n");
        ctx.out.extend_from_slice(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::Shared;
    use crate::stats::ThreadStats;

    /// Meta commands with random flags and tokens never panic.
    #[test]
    fn random_flags_never_panic() {
        let shared = Shared::new(Config::default(), Vec::new());
        let stats = ThreadStats::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces: &[&str] = &[
            "b", "c", "f", "h", "k", "l", "O", "Oabc", "q", "s", "t", "u", "v", "N0", "N30", "T-1",
            "T5", "R30", "C1", "C0", "F7", "I", "MA", "MP", "ME", "MR", "MS", "MD", "M+", "D5",
            "J9", "P", "L", "x", "T", "YQ==", "Y===", "2", "-1",
        ];
        for _ in 0..2000 {
            let cmd = ["mg", "ms", "md", "ma", "me", "mn"][next() as usize % 6];
            let key = ["a", "YQ==", "n", "k"][next() as usize % 4];
            let mut line = format!("{cmd} {key}");
            if cmd == "ms" {
                line.push_str([" 1", " 0", " x", " 3"][next() as usize % 4]);
            }
            for _ in 0..next() % 8 {
                line.push(' ');
                line.push_str(pieces[next() as usize % pieces.len()]);
            }
            line.push_str("\r\nabc\r\n");
            let mut sess = super::super::Session::default();
            let mut out = Vec::new();
            let _ = super::super::process(&shared, &stats, &mut sess, line.as_bytes(), &mut out);
        }
    }

    #[test]
    fn ttl_wraps_like_memcached() {
        let mut line = Vec::new();
        push_ttl(&mut line, 0, 10);
        push_ttl(&mut line, 40, 10);
        push_ttl(&mut line, 1, 2);
        assert_eq!(line, b" t-1 t30 t4294967235");
    }

    #[test]
    fn keys_and_opaques() {
        let mut line = Vec::new();
        push_key(&mut line, b"a", true);
        push_key(&mut line, b"a", false);
        push_opaque(&mut line, b"O1");
        assert_eq!(line, b" kYQ== b ka O1");
        let toks: Vec<&[u8]> = vec![b"T5", b"O123456789012345678901234567890123", b"N1"];
        assert_eq!(until_bad_opaque(&toks), (&toks[..1], true));
    }
}
