//! delete <key> [0] [noreply]

use super::tokens::{KEY_MAX_LENGTH, Tokens};
use super::{Ctx, Step};
use crate::stats::bump;

pub fn delete(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    let n = t.ntokens();
    if n > 3 {
        let hold_is_zero = t.get(2) == b"0";
        ctx.noreply = t.noreply();
        let valid =
            (n == 4 && (hold_is_zero || ctx.noreply)) || (n == 5 && hold_is_zero && ctx.noreply);
        if !valid {
            ctx.reply(b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
            return Step::Done(0);
        }
    }
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        ctx.reply(b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    }
    ctx.shared.detail_delete(key);
    match ctx.store().delete(key) {
        Ok(class) => {
            bump(&ctx.stats.class[class].delete_hits);
            ctx.reply(b"DELETED");
        }
        Err(_) => {
            bump(&ctx.stats.c.delete_misses);
            ctx.reply(b"NOT_FOUND");
        }
    }
    Step::Done(0)
}
