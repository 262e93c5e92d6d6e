//! `md <key> <flags>*`: meta delete.
//!
//! `HD` (deleted, or with `I` marked stale; nothing with `q`), `NF`, `EX`
//! (a `C` cas differs), followed by `O` and `k`. With `I` the item stays,
//! stale, with a new cas, its win token taken back, and a new expiry if
//! `T` is given.

use super::super::tokens::Tokens;
use super::super::{Ctx, Step};
use super::{MAX_OPAQUE, OPAQUE_TOO_LONG, Parsed, error, finish, parse, push_key, push_opaque};
use crate::stats::bump;
use crate::storage::DeleteError;

pub fn md(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
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
    // memcached builds the flags of the reply before looking the key up.
    let mut flags = Vec::new();
    for tok in &toks {
        match tok[0] {
            b'O' if tok.len() > MAX_OPAQUE => return error(ctx, OPAQUE_TOO_LONG),
            b'O' => push_opaque(&mut flags, tok),
            b'k' => push_key(&mut flags, &key, f.binary),
            _ => {}
        }
    }
    let store = ctx.store();
    let s = ctx.stats;
    let done = if f.invalidate {
        store.invalidate(&key, f.cas, f.ttl)
    } else {
        store.delete_if(&key, f.cas).inspect(|&class| {
            bump(&s.class[class].delete_hits);
        })
    };
    let (code, quiet): (&[u8], bool) = match done {
        Ok(_) => (b"HD", f.quiet),
        Err(DeleteError::Exists) => {
            bump(&s.c.delete_misses);
            (b"EX", false)
        }
        Err(DeleteError::Missing(_)) => {
            bump(&s.c.delete_misses);
            (b"NF", false)
        }
    };
    let mut line = code.to_vec();
    line.extend_from_slice(&flags);
    finish(ctx, line, quiet);
    Step::Done(0)
}
