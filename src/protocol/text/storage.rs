//! set, add, replace, append, prepend, cas.

use super::tokens::{KEY_MAX_LENGTH, Tokens, strtol, strtoul, strtoull};
use super::{Ctx, Session, Step};
use crate::server::Shared;
use crate::stats::{ThreadStats, bump};
use crate::storage::store::Outcome;
use crate::storage::{Mode, Pending, StoreResult};

/// A data block at least this large that has not fully arrived is read
/// straight into its item's memory (on TCP): no copy through the read
/// buffer, which does not grow to the value's size either.
const DIRECT_READ_MIN: usize = 16 * 1024;

/// A storage command whose data block is being read into its item.
pub struct DirectRead {
    item: Pending,
    mode: Mode,
    noreply: bool,
    /// The `\r\n` after the value, as it arrives.
    tail: [u8; 2],
    tail_len: usize,
}

/// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n<data>\r\n`
pub fn update(ctx: &mut Ctx<'_>, t: &Tokens<'_>, data: &[u8]) -> Step {
    let cmd = t.get(0);
    let is_cas = cmd == b"cas";
    ctx.noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        ctx.reply(b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    }
    let (Some(flags), Some(exptime), Some(vlen)) =
        (strtoul(t.get(2)), strtol(t.get(3)), strtol(t.get(4)))
    else {
        ctx.reply(b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    };
    let cas = if is_cas {
        match strtoull(t.get(5)) {
            Some(c) => c,
            None => {
                ctx.reply(b"CLIENT_ERROR bad command line format");
                return Step::Done(0);
            }
        }
    } else {
        0
    };
    if !(0..=i32::MAX - 2).contains(&vlen) {
        ctx.reply(b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    }
    let vlen = vlen as usize;
    let store = ctx.store();
    if store.too_large(key.len(), flags, vlen) {
        ctx.reply(b"SERVER_ERROR object too large for cache");
        bump(&ctx.stats.c.store_too_large);
        if cmd == b"set" {
            let _ = store.delete(key);
        }
        return swallow(ctx, data, vlen + 2);
    }
    let mode = match cmd {
        b"set" => Mode::Set,
        b"add" => Mode::Add,
        b"replace" => Mode::Replace,
        b"append" => Mode::Append,
        b"prepend" => Mode::Prepend,
        _ => Mode::Cas(cas),
    };
    let exptime = store.clock.realtime(exptime as i64);
    if data.len() < vlen + 2 {
        if ctx.sess.direct_reads
            && vlen >= DIRECT_READ_MIN
            && !matches!(mode, Mode::Append | Mode::Prepend)
        {
            return read_direct(ctx, mode, key, flags, exptime, vlen, data);
        }
        return Step::NeedData(vlen + 2);
    }
    if &data[vlen..vlen + 2] != b"\r\n" {
        ctx.reply(b"CLIENT_ERROR bad data chunk");
        return Step::Done(vlen + 2);
    }
    let o = store.store(mode, key, flags, exptime, &data[..vlen]);
    answer(ctx, key, mode, o);
    Step::Done(vlen + 2)
}

/// Counts a storage command that got its data and answers it.
fn answer(ctx: &mut Ctx<'_>, key: &[u8], mode: Mode, o: Outcome<StoreResult>) {
    let s = ctx.stats;
    bump(&s.c.cmd_set);
    bump(&s.class[o.class].cmd_set);
    ctx.shared.detail_set(key);
    let reply: &[u8] = match o.result {
        StoreResult::Stored => {
            if matches!(mode, Mode::Cas(_)) {
                bump(&s.c.cas_hits);
                bump(&s.class[o.class].cas_hits);
            }
            b"STORED"
        }
        StoreResult::NotStored => b"NOT_STORED",
        StoreResult::Exists => {
            bump(&s.c.cas_badval);
            bump(&s.class[o.class].cas_badval);
            b"EXISTS"
        }
        StoreResult::NotFound => {
            bump(&s.c.cas_misses);
            b"NOT_FOUND"
        }
        StoreResult::NoMemory => {
            bump(&s.c.store_no_memory);
            b"SERVER_ERROR out of memory storing object"
        }
    };
    ctx.reply(reply);
}

/// Allocates the item now and lets the connection read the rest of the
/// data block into it ([`direct_buf`], [`direct_filled`]).
fn read_direct(
    ctx: &mut Ctx<'_>,
    mode: Mode,
    key: &[u8],
    flags: u32,
    exptime: u32,
    vlen: usize,
    data: &[u8],
) -> Step {
    let store = ctx.store();
    match store.begin(mode, key, flags, exptime, vlen) {
        Ok(mut item) => {
            let took = store.fill(&mut item, data);
            // What is left is the start of the "\r\n": the block is incomplete.
            let rest = &data[took..];
            let mut tail = [0; 2];
            tail[..rest.len()].copy_from_slice(rest);
            ctx.sess.direct = Some(DirectRead {
                item,
                mode,
                noreply: ctx.noreply,
                tail,
                tail_len: rest.len(),
            });
            Step::Done(data.len())
        }
        Err(o) => {
            answer(ctx, key, mode, o);
            swallow(ctx, data, vlen + 2)
        }
    }
}

/// Where the next bytes of a data block being read directly go; `None`
/// when no block is being read so.
pub fn direct_buf<'s>(shared: &'s Shared, sess: &'s mut Session) -> Option<&'s mut [u8]> {
    let d = sess.direct.as_mut()?;
    if d.item.is_complete() {
        return Some(&mut d.tail[d.tail_len..]);
    }
    Some(shared.store.spare(&mut d.item))
}

/// `n` bytes arrived into [`direct_buf`]; once the block is complete, the
/// item is stored (or not) and the command answered into `out`.
pub fn direct_filled(
    shared: &Shared,
    stats: &ThreadStats,
    sess: &mut Session,
    n: usize,
    out: &mut Vec<u8>,
) {
    let Some(d) = sess.direct.as_mut() else {
        return;
    };
    if d.item.is_complete() {
        d.tail_len = (d.tail_len + n).min(2);
    } else {
        shared.store.filled(&mut d.item, n);
    }
    if !d.item.is_complete() || d.tail_len < 2 {
        return;
    }
    let Some(d) = sess.direct.take() else {
        return;
    };
    let mut ctx = Ctx {
        shared,
        stats,
        out,
        sess,
        noreply: d.noreply,
        verbose: shared.verbosity() >= 2,
        send: &mut crate::protocol::NoSend,
    };
    if &d.tail != b"\r\n" {
        shared.store.abandon(d.item);
        ctx.reply(b"CLIENT_ERROR bad data chunk");
        return;
    }
    let key = shared.store.pending_key(&d.item).to_vec();
    let o = shared.store.commit(d.mode, d.item);
    answer(&mut ctx, &key, d.mode, o);
}

/// Gives back the memory of a data block still being read when its
/// connection goes away.
pub fn abandon(shared: &Shared, sess: &mut Session) {
    if let Some(d) = sess.direct.take() {
        shared.store.abandon(d.item);
    }
}

/// Discards a data block we won't store, without buffering it.
pub(super) fn swallow(ctx: &mut Ctx<'_>, data: &[u8], n: usize) -> Step {
    let here = n.min(data.len());
    ctx.sess.swallow = n - here;
    Step::Done(here)
}
