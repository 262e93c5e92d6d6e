//! noop, version, quit, flush.

use super::{Ctx, Status, Step};
use crate::stats::bump;

pub(super) fn noop(ctx: &mut Ctx<'_>, head: usize) -> Step {
    ctx.respond(0, 0, &[], &[], &[]);
    Step::Done(head)
}

pub(super) fn version(ctx: &mut Ctx<'_>, head: usize) -> Step {
    ctx.respond(0, 0, &[], &[], crate::protocol::text::VERSION.as_bytes());
    Step::Done(head)
}

/// quit answers, then closes; quitq just closes.
pub(super) fn quit(ctx: &mut Ctx<'_>, head: usize) -> Step {
    ctx.ok(0, &[], &[], &[]);
    ctx.sess.close = true;
    Step::Done(head)
}

/// flush, with an optional expiry as extras (unsigned, 0 for now).
pub(super) fn flush(ctx: &mut Ctx<'_>, extras: &[u8], head: usize) -> Step {
    if !ctx.shared.config.flush_enabled {
        ctx.error(Status::AuthError);
        return Step::Done(head);
    }
    let delay = match extras {
        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    };
    let store = ctx.store();
    store.flush(if delay > 0 {
        store.clock.realtime(delay as i64)
    } else {
        0
    });
    bump(&ctx.stats.c.cmd_flush);
    ctx.ok(0, &[], &[], &[]);
    Step::Done(head)
}
