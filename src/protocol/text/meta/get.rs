//! `mg <key> <flags>*`: meta get.
//!
//! Hit: `VA <len> <flags>` and the value (with `v`) or `HD <flags>`, then
//! ` Z` if the win token was handed out before, ` X` if the item is stale,
//! ` W` if this request wins (vivified by `N`, expiring before `R`, or the
//! first to see a stale item). Miss: `EN` with `O` and `k` (nothing with
//! `q`).

use super::super::tokens::Tokens;
use super::super::{Ctx, Step};
use super::{
    MAX_OPAQUE, OPAQUE_TOO_LONG, Parsed, created_exptime, error, finish, parse, push_key, push_num,
    push_opaque, push_ttl, until_bad_opaque,
};
use crate::stats::bump;
use crate::storage::chunk::{MARK_BINARY_KEY, MARK_STALE, MARK_WON};
use crate::storage::{After, Lookup};

pub fn mg(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    if let Err(step) = super::check_line(ctx, t, b"CLIENT_ERROR options flags are too long") {
        return step;
    }
    let Parsed {
        flags: f,
        key,
        toks,
    } = match parse(ctx, t, 2) {
        Ok(p) => p,
        Err(m) => return error(ctx, m.map_or(super::BAD_FORMAT, str::as_bytes)),
    };
    let vivify = f.vivify.map(|_| created_exptime(&f, &toks));
    let store = ctx.store();
    let now = store.clock.now();
    let out = &mut *ctx.out;
    let found = store.get_meta(&key, vivify, |item, created| {
        let (walk, bad_opaque) = until_bad_opaque(&toks);
        let token_sent = item.marks & MARK_WON != 0;
        // The expiry as the flags change it, in their order.
        let mut exp = if created { 0 } else { item.exptime };
        let (mut won, mut touched) = (false, false);
        let mut line = Vec::with_capacity(64);
        if f.value {
            line.extend_from_slice(b"VA ");
            line.extend_from_slice(itoa::Buffer::new().format(item.value_len()).as_bytes());
        } else {
            line.extend_from_slice(b"HD");
        }
        for tok in walk {
            match tok[0] {
                b'T' => {
                    exp = f.ttl.unwrap_or(0);
                    touched = true;
                }
                b'N' if created => {
                    exp = f.vivify.unwrap_or(0);
                    won = true;
                }
                b'R' => {
                    let recache = f.recache.unwrap_or(0);
                    won |= !token_sent && !created && exp != 0 && exp < recache;
                }
                b's' => push_num(&mut line, b's', item.value_len()),
                b't' => push_ttl(&mut line, exp, now),
                b'c' => push_num(&mut line, b'c', item.cas),
                b'f' => push_num(&mut line, b'f', item.flags),
                b'l' => push_num(&mut line, b'l', now.saturating_sub(store.stored_at(item))),
                b'h' => push_num(&mut line, b'h', u8::from(item.fetched)),
                b'O' => push_opaque(&mut line, tok),
                b'k' => push_key(&mut line, item.key, item.marks & MARK_BINARY_KEY != 0),
                _ => {}
            }
        }
        // A new expiry applies even when an opaque stops the command.
        let exptime = (touched && !created).then_some(exp);
        if bad_opaque {
            let after = After {
                exptime,
                ..After::default()
            };
            return (Err(()), after);
        }
        if token_sent {
            line.extend_from_slice(b" Z");
        }
        if item.marks & MARK_STALE != 0 {
            line.extend_from_slice(b" X");
            won |= !token_sent;
        }
        if won {
            line.extend_from_slice(b" W");
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        if f.value {
            item.value(|part| out.extend_from_slice(part));
            out.extend_from_slice(b"\r\n");
        }
        let after = After {
            exptime,
            win: won,
            bump: !f.no_update,
        };
        (Ok((item.class, touched)), after)
    });
    if matches!(found, Ok(Ok(_))) {
        ctx.sess.held.hold(&key);
    }
    let s = ctx.stats;
    match found {
        // A hit that changes the expiry counts as a touch, not a get.
        Ok(Ok((class, true))) => {
            bump(&s.c.cmd_touch);
            bump(&s.class[class].touch_hits);
        }
        Ok(Ok((class, false))) => {
            bump(&s.c.cmd_get);
            bump(&s.class[class].get_hits);
        }
        Ok(Err(())) => return error(ctx, OPAQUE_TOO_LONG),
        Err(why) => {
            bump(&s.c.cmd_get);
            bump(&s.c.get_misses);
            match why {
                Lookup::Expired => bump(&s.c.get_expired),
                Lookup::Flushed => bump(&s.c.get_flushed),
                _ => {}
            }
            let mut line = b"EN".to_vec();
            for tok in &toks {
                match tok[0] {
                    b'O' if tok.len() > MAX_OPAQUE => return error(ctx, OPAQUE_TOO_LONG),
                    b'O' => push_opaque(&mut line, tok),
                    b'k' => push_key(&mut line, &key, f.binary),
                    _ => {}
                }
            }
            finish(ctx, line, f.quiet);
        }
    }
    Step::Done(0)
}
