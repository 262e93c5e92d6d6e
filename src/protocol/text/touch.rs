//! touch <key> <exptime> [noreply]

use super::tokens::{KEY_MAX_LENGTH, Tokens, strtol};
use super::{Ctx, Step};
use crate::stats::bump;

pub fn touch(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    ctx.noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        ctx.reply(b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    }
    let Some(exptime) = strtol(t.get(2)) else {
        ctx.reply(b"CLIENT_ERROR invalid exptime argument");
        return Step::Done(0);
    };
    let store = ctx.store();
    let s = ctx.stats;
    bump(&s.c.cmd_touch);
    match store.touch(key, store.clock.realtime(exptime as i64)) {
        Ok(class) => {
            bump(&s.class[class].touch_hits);
            ctx.reply(b"TOUCHED");
        }
        Err(_) => {
            bump(&s.c.touch_misses);
            ctx.reply(b"NOT_FOUND");
        }
    }
    Step::Done(0)
}
