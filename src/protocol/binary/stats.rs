//! stat: one reply per statistic (key = name, value = value), then an
//! empty one. The listings are the text protocol's `stats` ones.

use super::{Ctx, Status, Step};
use crate::protocol::text::stats::{Listing, listing};

pub(super) fn stat(ctx: &mut Ctx<'_>, key: &[u8], head: usize) -> Step {
    ctx.log_request(true, &[b"STATS ", key]);
    let mut lines = Vec::new();
    // memcached compares prefixes for these (its key is not terminated).
    if key.is_empty() {
        listing(ctx.shared, Listing::General, &mut lines);
    } else if key.starts_with(b"reset") {
        ctx.shared.reset_stats();
    } else if key.starts_with(b"settings") {
        listing(ctx.shared, Listing::Settings, &mut lines);
    } else if let Some(sub) = key.strip_prefix(b"detail") {
        if sub.starts_with(b" dump") {
            let mut dump = ctx.shared.detail_dump();
            dump.extend_from_slice(b"END\r\n");
            ctx.stat_packet(b"detailed", &dump);
        } else if sub.starts_with(b" on") {
            ctx.shared.set_detail(true);
        } else if sub.starts_with(b" off") {
            ctx.shared.set_detail(false);
        } else {
            ctx.error(Status::KeyNotFound);
            return Step::Done(head);
        }
    } else {
        let which = match key {
            b"items" => Listing::Items,
            b"slabs" => Listing::Slabs,
            b"sizes" => Listing::Sizes,
            _ => {
                ctx.error(Status::KeyNotFound);
                return Step::Done(head);
            }
        };
        listing(ctx.shared, which, &mut lines);
    }
    for line in lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(stat) = line.strip_prefix(b"STAT ") {
            let split = stat.iter().position(|&b| b == b' ').unwrap_or(stat.len());
            let (name, value) = (&stat[..split], stat.get(split + 1..).unwrap_or(&[]));
            ctx.stat_packet(name, value);
        }
    }
    ctx.stat_packet(&[], &[]);
    Step::Done(head)
}
