//! get, getq, getk, getkq; touch, gat, gatq, gatk, gatkq.
//!
//! A hit answers the flags (4 bytes of extras), the key for the `k`
//! forms, and the value (not for touch), with the item's cas. A miss is
//! "Not found", or for the `k` forms the key with that status and no
//! text; the quiet forms say nothing on a miss.

use super::{Ctx, Status, Step, op};
use crate::stats::bump;
use crate::storage::Lookup;

pub(super) fn get(ctx: &mut Ctx<'_>, opcode: u8, extras: &[u8], key: &[u8], head: usize) -> Step {
    let touch = matches!(
        opcode,
        op::TOUCH | op::GAT | op::GATQ | op::GATK | op::GATKQ
    );
    let with_key = matches!(opcode, op::GETK | op::GETKQ | op::GATK | op::GATKQ);
    let with_value = opcode != op::TOUCH;
    ctx.log_request(true, &[if touch { b"TOUCH " } else { b"GET " }, key]);
    let store = ctx.store();
    // The expiry is unsigned on the wire.
    let exptime = touch.then(|| {
        let e = u32::from_be_bytes([extras[0], extras[1], extras[2], extras[3]]);
        store.clock.realtime(e as i64)
    });
    let mut reply = Vec::new();
    let found = store.get(key, exptime, |item| {
        reply.reserve(item.value_len());
        if with_value {
            item.value(|part| reply.extend_from_slice(part));
        }
        (item.class, item.flags, item.cas)
    });
    ctx.shared.detail_get(key, found.is_ok());
    let s = ctx.stats;
    match found {
        Ok((class, flags, cas)) => {
            ctx.sess.held.hold(key);
            if touch {
                bump(&s.c.cmd_touch);
                bump(&s.class[class].touch_hits);
            } else {
                bump(&s.c.cmd_get);
                bump(&s.class[class].get_hits);
            }
            let key = if with_key { key } else { &[] };
            // A hit is answered even by the quiet forms.
            ctx.respond_logging_cas(0, cas, 0, &flags.to_be_bytes(), key, &reply);
        }
        Err(why) => {
            if touch {
                bump(&s.c.cmd_touch);
                bump(&s.c.touch_misses);
            } else {
                bump(&s.c.cmd_get);
                bump(&s.c.get_misses);
                match why {
                    Lookup::Expired => bump(&s.c.get_expired),
                    Lookup::Flushed => bump(&s.c.get_flushed),
                    _ => {}
                }
            }
            if ctx.quiet {
            } else if with_key {
                ctx.respond(Status::KeyNotFound as u16, 0, &[], key, &[]);
            } else {
                ctx.error(Status::KeyNotFound);
            }
        }
    }
    Step::Done(head)
}
