//! `ms <key> <datalen> <flags>*\r\n<data>\r\n`: meta set.
//!
//! `HD` (stored; nothing with `q`), `NS` (not stored), `EX` (cas differs),
//! `NF` (cas given, no item), followed by `O`, `k` and `c` in flag order.
//! `M` picks the mode (`E` add, `A` append, `P` prepend, `R` replace, `S`
//! set); a `C` cas turns set and replace into a cas store, and with `I` a
//! cas older than the item's stores a stale value.

use super::super::tokens::{Tokens, strtol};
use super::super::{Ctx, Step};
use super::{OPAQUE_TOO_LONG, Parsed, error, finish, parse, push_key, push_num, push_opaque};
use crate::stats::bump;
use crate::storage::chunk::MARK_BINARY_KEY;
use crate::storage::{Mode, StoreReq, StoreResult};

pub fn ms(ctx: &mut Ctx<'_>, t: &Tokens<'_>, data: &[u8]) -> Step {
    if t.ntokens() < 3 {
        return error(ctx, b"ERROR");
    }
    // Errors before the length is known leave the data to be read as a
    // command, as in memcached.
    if t.get(1).len() > super::super::tokens::KEY_MAX_LENGTH || t.ntokens() == 3 {
        return error(ctx, super::BAD_FORMAT);
    }
    if t.ntokens() > super::MAX_TOKENS {
        return error(ctx, b"CLIENT_ERROR options flags too long");
    }
    let vlen = match strtol(t.get(2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => return error(ctx, super::BAD_FORMAT),
    };
    // From here on an error discards the data block.
    let Parsed {
        flags: f,
        key,
        toks,
    } = match parse(ctx, t, 3) {
        Ok(p) => p,
        Err(m) => return reject(ctx, m.map_or(super::BAD_FORMAT, str::as_bytes), data, vlen),
    };
    let mode = match f.mode {
        None | Some(b'S') => Mode::Set,
        Some(b'E') => Mode::Add,
        Some(b'A') => Mode::Append,
        Some(b'P') => Mode::Prepend,
        Some(b'R') => Mode::Replace,
        Some(_) => return reject(ctx, b"CLIENT_ERROR invalid mode for ms M token", data, vlen),
    };
    if toks
        .iter()
        .any(|t| t[0] == b'O' && t.len() > super::MAX_OPAQUE)
    {
        return reject(ctx, OPAQUE_TOO_LONG, data, vlen);
    }
    let mode = match (mode, f.cas) {
        (Mode::Set | Mode::Replace, Some(cas)) => Mode::Cas(cas),
        (mode, _) => mode,
    };
    let store = ctx.store();
    if store.too_large(key.len(), f.client_flags, vlen) {
        bump(&ctx.stats.c.store_too_large);
        // memcached drops the stale value whatever the mode.
        let _ = store.delete(&key);
        return reject(ctx, b"SERVER_ERROR object too large for cache", data, vlen);
    }
    if data.len() < vlen + 2 {
        return Step::NeedData(vlen + 2);
    }
    if &data[vlen..vlen + 2] != b"\r\n" {
        ctx.reply(b"CLIENT_ERROR bad data chunk");
        return Step::Done(vlen + 2);
    }
    let is_append = matches!(mode, Mode::Append | Mode::Prepend);
    let req = StoreReq {
        append_cas: if is_append { f.cas.unwrap_or(0) } else { 0 },
        stale_ok: f.invalidate,
        marks: if f.binary { MARK_BINARY_KEY } else { 0 },
        ..StoreReq::new(
            mode,
            &key,
            f.client_flags,
            f.ttl.unwrap_or(0),
            &data[..vlen],
        )
    };
    let o = store.store_item(&req);
    let s = ctx.stats;
    bump(&s.c.cmd_set);
    bump(&s.class[o.class].cmd_set);
    let is_cas = matches!(mode, Mode::Cas(_));
    let code: &[u8] = match o.result {
        StoreResult::Stored => {
            if is_cas {
                bump(&s.c.cas_hits);
                bump(&s.class[o.class].cas_hits);
            }
            b"HD"
        }
        StoreResult::NotStored => b"NS",
        StoreResult::Exists => {
            if is_cas {
                bump(&s.c.cas_badval);
                bump(&s.class[o.class].cas_badval);
            }
            b"EX"
        }
        StoreResult::NotFound => {
            bump(&s.c.cas_misses);
            b"NF"
        }
        StoreResult::NoMemory => {
            bump(&s.c.store_no_memory);
            let _ = store.delete(&key);
            ctx.reply(b"SERVER_ERROR out of memory storing object");
            return Step::Done(vlen + 2);
        }
    };
    let mut line = code.to_vec();
    for tok in &toks {
        match tok[0] {
            b'O' => push_opaque(&mut line, tok),
            b'k' => push_key(&mut line, &key, f.binary),
            b'c' => push_num(&mut line, b'c', o.cas),
            _ => {}
        }
    }
    finish(ctx, line, f.quiet && o.result == StoreResult::Stored);
    Step::Done(vlen + 2)
}

/// Answers an error and discards the data block, as much of it as is here
/// now and the rest as it arrives.
fn reject(ctx: &mut Ctx<'_>, message: &[u8], data: &[u8], vlen: usize) -> Step {
    error(ctx, message);
    super::super::storage::swallow(ctx, data, vlen + 2)
}
