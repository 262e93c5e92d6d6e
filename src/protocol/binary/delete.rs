//! delete, deleteq: a non-zero cas must match the item's.

use super::{Ctx, Status, Step};
use crate::stats::bump;
use crate::storage::DeleteError;

pub(super) fn delete(ctx: &mut Ctx<'_>, key: &[u8], head: usize) -> Step {
    ctx.log_request(false, &[b"Deleting ", key]);
    ctx.shared.detail_delete(key);
    let cas = (ctx.h.cas != 0).then_some(ctx.h.cas);
    match ctx.store().delete_if(key, cas) {
        Ok(class) => {
            bump(&ctx.stats.class[class].delete_hits);
            ctx.ok(0, &[], &[], &[]);
        }
        // memcached counts neither hit nor miss for a cas mismatch.
        Err(DeleteError::Exists) => ctx.error(Status::KeyExists),
        Err(DeleteError::Missing(_)) => {
            bump(&ctx.stats.c.delete_misses);
            ctx.error(Status::KeyNotFound);
        }
    }
    Step::Done(head)
}
