//! set, add, replace, append, prepend (and the quiet forms).
//!
//! Set, add and replace take flags and expiry as extras; a non-zero cas
//! makes any of them a cas store (with CAS on). Append and prepend take no
//! extras; a non-zero cas must match. A value too large for `-I` is
//! answered at once and discarded as it arrives.

use super::{Ctx, HEADER, Status, Step, op};
use crate::stats::bump;
use crate::storage::{Mode, StoreReq, StoreResult};

pub(super) fn update(
    ctx: &mut Ctx<'_>,
    opcode: u8,
    extras: &[u8],
    key: &[u8],
    req: &[u8],
    value_len: usize,
) -> Step {
    let h = ctx.h;
    let head = h.head_len();
    let concat = matches!(opcode, op::APPEND | op::PREPEND);
    let (flags, exptime) = if concat {
        (0, 0)
    } else {
        let at =
            |i: usize| u32::from_be_bytes([extras[i], extras[i + 1], extras[i + 2], extras[i + 3]]);
        (at(0), at(4))
    };
    let len = value_len.to_string();
    let len = len.as_bytes();
    match opcode {
        op::SET => ctx.log_request(true, &[b"SET ", key, b" Value len is ", len]),
        op::ADD => ctx.log_request(true, &[b"ADD ", key, b" Value len is ", len]),
        op::REPLACE => ctx.log_request(true, &[b"REPLACE ", key, b" Value len is ", len]),
        _ => ctx.log_request(false, &[b"Value len is ", len]),
    }
    let store = ctx.store();
    if !concat {
        ctx.shared.detail_set(key);
    }
    // memcached keeps the value length in an int: it does not get past a
    // negative one (it closes the connection, or waits for 2 GiB).
    if value_len > i32::MAX as usize - 2 {
        ctx.sess.close = true;
        return Step::Done(head);
    }
    if store.too_large(key.len(), flags, value_len) {
        // (memcached 1.6.18 counts no store_too_large here, unlike text.)
        ctx.error_after_discarding(Status::TooLarge, value_len);
        // A set that cannot be stored drops the old value.
        if opcode == op::SET {
            let _ = store.delete(key);
        }
        return Step::Done(head);
    }
    let total = HEADER + h.body_len;
    if req.len() < total {
        return Step::NeedData(total);
    }
    let value = &req[head..total];
    let use_cas = store.use_cas() && h.cas != 0;
    let mode = match opcode {
        op::APPEND => Mode::Append,
        op::PREPEND => Mode::Prepend,
        _ if use_cas => Mode::Cas(h.cas),
        op::ADD => Mode::Add,
        op::REPLACE => Mode::Replace,
        _ => Mode::Set,
    };
    let r = StoreReq {
        append_cas: if concat { h.cas } else { 0 },
        ..StoreReq::new(
            mode,
            key,
            flags,
            store.clock.realtime(exptime as i64),
            value,
        )
    };
    let o = store.store_item(&r);
    let s = ctx.stats;
    bump(&s.c.cmd_set);
    bump(&s.class[o.class].cmd_set);
    let is_cas = matches!(mode, Mode::Cas(_));
    match o.result {
        StoreResult::Stored => {
            if is_cas {
                bump(&s.c.cas_hits);
                bump(&s.class[o.class].cas_hits);
            }
            ctx.ok(o.cas, &[], &[], &[]);
        }
        StoreResult::Exists => {
            if is_cas {
                bump(&s.c.cas_badval);
                bump(&s.class[o.class].cas_badval);
            }
            ctx.error(Status::KeyExists);
        }
        StoreResult::NotFound => {
            bump(&s.c.cas_misses);
            ctx.error(Status::KeyNotFound);
        }
        StoreResult::NotStored | StoreResult::NoMemory => {
            if o.result == StoreResult::NoMemory {
                bump(&s.c.store_no_memory);
                if opcode == op::SET {
                    let _ = store.delete(key);
                }
                ctx.error(Status::OutOfMemory);
            } else {
                // memcached's status depends on the command.
                ctx.error(match mode {
                    Mode::Add => Status::KeyExists,
                    Mode::Replace => Status::KeyNotFound,
                    _ => Status::NotStored,
                });
            }
        }
    }
    Step::Done(total)
}
