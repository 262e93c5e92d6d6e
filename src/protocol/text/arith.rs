//! incr/decr <key> <delta> [noreply]

use super::tokens::{KEY_MAX_LENGTH, Tokens, strtoull};
use super::{Ctx, Step};
use crate::stats::bump;
use crate::storage::{Delta, DeltaReq};

pub fn delta(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    let incr = t.get(0) == b"incr";
    ctx.noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        ctx.reply(b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    }
    let Some(delta) = strtoull(t.get(2)) else {
        ctx.reply(b"CLIENT_ERROR invalid numeric delta argument");
        return Step::Done(0);
    };
    let req = DeltaReq {
        incr,
        delta,
        held: ctx.sess.held.holds(key),
        ..DeltaReq::default()
    };
    let o = ctx.store().delta_item(key, &req);
    let s = ctx.stats;
    match o.result {
        Delta::Value(v) => {
            bump(if incr {
                &s.class[o.class].incr_hits
            } else {
                &s.class[o.class].decr_hits
            });
            let mut buf = itoa::Buffer::new();
            let digits = buf.format(v).as_bytes().to_vec();
            ctx.reply(&digits);
        }
        Delta::NotFound => {
            bump(if incr {
                &s.c.incr_misses
            } else {
                &s.c.decr_misses
            });
            ctx.reply(b"NOT_FOUND");
        }
        Delta::NonNumeric => {
            ctx.reply(b"CLIENT_ERROR cannot increment or decrement non-numeric value")
        }
        Delta::NoMemory => ctx.reply(b"SERVER_ERROR out of memory"),
        // incr/decr name no cas.
        Delta::Exists => ctx.reply(b"EXISTS"),
    }
    Step::Done(0)
}
