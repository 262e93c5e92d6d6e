//! `me <key> [b]`: meta debug, a human-readable line about an item:
//! `ME <key> exp=<s> la=<s> cas=<n> fetch=<yes|no> cls=<id> size=<bytes>`,
//! or `EN`. It does not count as a use of the item.

use super::super::tokens::{KEY_MAX_LENGTH, Tokens};
use super::super::{Ctx, Step};
use super::{BAD_FORMAT, error};
use crate::protocol::base64;
use crate::stats::bump;
use crate::storage::After;
use crate::storage::chunk::MARK_BINARY_KEY;

pub fn me(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    if t.ntokens() < 3 || t.get(1).len() > KEY_MAX_LENGTH {
        return error(ctx, BAD_FORMAT);
    }
    let mut key = std::borrow::Cow::Borrowed(t.get(1));
    // Only a third token that is exactly `b` means base64.
    if t.ntokens() >= 4 && t.get(2) == b"b" {
        match base64::decode(&key) {
            Some(k) => key = std::borrow::Cow::Owned(k),
            None => return error(ctx, BAD_FORMAT),
        }
    }
    bump(&ctx.stats.c.cmd_meta);
    let store = ctx.store();
    let now = store.clock.now();
    let out = &mut *ctx.out;
    let found = store.get_meta(&key, None, |item, _| {
        out.extend_from_slice(b"ME ");
        if item.marks & MARK_BINARY_KEY != 0 {
            base64::encode(item.key, out);
        } else {
            out.extend_from_slice(item.key);
        }
        // memcached prints the expiry as now minus it: negative while live.
        let exp = match item.exptime {
            0 => -1,
            e => (now as i32).wrapping_sub(e as i32),
        };
        let line = format!(
            " exp={exp} la={} cas={} fetch={} cls={} size={}\r\n",
            now.saturating_sub(store.stored_at(item)),
            item.cas,
            if item.fetched { "yes" } else { "no" },
            item.class + 1,
            item.size(),
        );
        out.extend_from_slice(line.as_bytes());
        ((), After::default())
    });
    if found.is_err() {
        ctx.reply(b"EN");
    }
    Step::Done(0)
}
