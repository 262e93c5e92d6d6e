//! increment, decrement (and the quiet forms). Extras: delta u64, initial
//! u64, expiry u32. A miss creates the item with the initial value unless
//! the expiry is 0xffffffff; the reply is the new value, 8 bytes.

use super::{Ctx, Status, Step, op};
use crate::stats::bump;
use crate::storage::{Delta, DeltaReq};

pub(super) fn delta(ctx: &mut Ctx<'_>, opcode: u8, extras: &[u8], key: &[u8], head: usize) -> Step {
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&extras[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let (delta, initial) = (u64_at(0), u64_at(8));
    let expiry = u32::from_be_bytes([extras[16], extras[17], extras[18], extras[19]]);
    let incr = opcode == op::INCREMENT;
    let numbers = format!(" {delta}, {initial}, {expiry}");
    ctx.log_request(false, &[b"incr ", key, numbers.as_bytes()]);
    let store = ctx.store();
    let req = DeltaReq {
        incr,
        delta,
        cas: ctx.h.cas,
        vivify: (expiry != u32::MAX).then(|| (initial, store.clock.realtime(expiry as i64))),
        exptime: None,
        held: ctx.sess.held.holds(key),
    };
    let o = store.delta_item(key, &req);
    let s = ctx.stats;
    match o.result {
        Delta::Value(v) => {
            if !o.created {
                bump(if incr {
                    &s.class[o.class].incr_hits
                } else {
                    &s.class[o.class].decr_hits
                });
            }
            ctx.ok(o.cas, &[], &[], &v.to_be_bytes());
        }
        Delta::NotFound => {
            bump(if incr {
                &s.c.incr_misses
            } else {
                &s.c.decr_misses
            });
            ctx.error(Status::KeyNotFound);
        }
        Delta::Exists => ctx.error(Status::KeyExists),
        Delta::NonNumeric => ctx.error(Status::NonNumeric),
        Delta::NoMemory => ctx.error(Status::OutOfMemory),
    }
    Step::Done(head)
}
