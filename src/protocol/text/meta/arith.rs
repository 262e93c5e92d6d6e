//! `ma <key> <flags>*`: meta arithmetic.
//!
//! `HD` or, with `v`, `VA <len>` and the number (neither with `q`), then
//! `c`, `t`, `O`, `k` in flag order; `NF`, `NS`, `EX` with `O` and `k`.
//! `D` is the delta (1), `MI`/`M+` incr (the default), `MD`/`M-` decr, `C`
//! a cas to match, `N` creates a missing item with the value `J` (0) —
//! the reply is then that value — and `T` sets a new expiry.

use super::super::tokens::Tokens;
use super::super::{Ctx, Step};
use super::{
    OPAQUE_TOO_LONG, Parsed, created_exptime, error, finish, parse, push_key, push_num,
    push_opaque, push_ttl, until_bad_opaque,
};
use crate::stats::bump;
use crate::storage::{Delta, DeltaReq};

pub fn ma(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    if let Err(step) = super::check_line(ctx, t, b"CLIENT_ERROR options flags too long") {
        return step;
    }
    let Ok(Parsed {
        flags: f,
        key,
        toks,
    }) = parse(ctx, t, 2)
    else {
        return error(ctx, b"CLIENT_ERROR invalid or duplicate flag");
    };
    let incr = match f.mode {
        None | Some(b'I' | b'+') => true,
        Some(b'D' | b'-') => false,
        Some(_) => return error(ctx, b"CLIENT_ERROR invalid mode for ma M token"),
    };
    // memcached runs the command, then walks the flags: those before an
    // over-long opaque take effect, then the opaque is an error.
    let (walk, bad_opaque) = until_bad_opaque(&toks);
    let req = DeltaReq {
        incr,
        delta: f.delta.unwrap_or(1),
        cas: f.cas.unwrap_or(0),
        vivify: f
            .vivify
            .map(|_| (f.initial.unwrap_or(0), created_exptime(&f, &toks))),
        exptime: walk
            .iter()
            .any(|t| t[0] == b'T')
            .then(|| f.ttl.unwrap_or(0)),
        held: ctx.sess.held.holds(&key),
    };
    let store = ctx.store();
    let o = store.delta_item(&key, &req);
    let s = ctx.stats;
    let (mut line, quiet) = match o.result {
        Delta::Value(v) => {
            if !o.created {
                bump(if incr {
                    &s.class[o.class].incr_hits
                } else {
                    &s.class[o.class].decr_hits
                });
            }
            let digits = itoa::Buffer::new().format(v).as_bytes().to_vec();
            let mut line = Vec::with_capacity(64);
            if f.value {
                line.extend_from_slice(b"VA ");
                line.extend_from_slice(itoa::Buffer::new().format(digits.len()).as_bytes());
            } else {
                line.extend_from_slice(b"HD");
            }
            let now = store.clock.now();
            let mut exp = if o.created { 0 } else { o.exptime };
            for tok in walk {
                match tok[0] {
                    b'c' => push_num(&mut line, b'c', o.cas),
                    b't' => push_ttl(&mut line, exp, now),
                    b'T' => exp = f.ttl.unwrap_or(0),
                    b'N' if o.created => exp = f.vivify.unwrap_or(0),
                    b'O' => push_opaque(&mut line, tok),
                    b'k' => push_key(&mut line, &key, f.binary),
                    _ => {}
                }
            }
            if bad_opaque {
                return error(ctx, OPAQUE_TOO_LONG);
            }
            if f.value {
                line.extend_from_slice(b"\r\n");
                line.extend_from_slice(&digits);
            }
            finish(ctx, line, f.quiet);
            return Step::Done(0);
        }
        Delta::NotFound => {
            bump(if incr {
                &s.c.incr_misses
            } else {
                &s.c.decr_misses
            });
            (b"NF".to_vec(), false)
        }
        Delta::Exists => (b"EX".to_vec(), false),
        Delta::NonNumeric => {
            return error(
                ctx,
                b"CLIENT_ERROR cannot increment or decrement non-numeric value",
            );
        }
        Delta::NoMemory => return error(ctx, b"SERVER_ERROR out of memory"),
    };
    for tok in walk {
        match tok[0] {
            b'O' => push_opaque(&mut line, tok),
            b'k' => push_key(&mut line, &key, f.binary),
            _ => {}
        }
    }
    if bad_opaque {
        return error(ctx, OPAQUE_TOO_LONG);
    }
    finish(ctx, line, quiet);
    Step::Done(0)
}
