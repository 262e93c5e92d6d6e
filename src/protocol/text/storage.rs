//! set, add, replace, append, prepend, cas.

use super::tokens::{KEY_MAX_LENGTH, Tokens, strtol, strtoul, strtoull};
use super::{Ctx, Step};
use crate::stats::bump;
use crate::storage::{Mode, StoreResult};

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
    if data.len() < vlen + 2 {
        return Step::NeedData(vlen + 2);
    }
    if &data[vlen..vlen + 2] != b"\r\n" {
        ctx.reply(b"CLIENT_ERROR bad data chunk");
        return Step::Done(vlen + 2);
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
    let o = store.store(mode, key, flags, exptime, &data[..vlen]);
    let s = ctx.stats;
    bump(&s.c.cmd_set);
    bump(&s.class[o.class].cmd_set);
    ctx.shared.detail_set(key);
    let reply: &[u8] = match o.result {
        StoreResult::Stored => {
            if is_cas {
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
    Step::Done(vlen + 2)
}

/// Discards a data block we won't store, without buffering it.
pub(super) fn swallow(ctx: &mut Ctx<'_>, data: &[u8], n: usize) -> Step {
    let here = n.min(data.len());
    ctx.sess.swallow = n - here;
    Step::Done(here)
}
