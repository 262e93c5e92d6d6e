//! get, gets, gat, gats: `get <key>*`, `gat <exptime> <key>*`.

use super::tokens::{KEY_MAX_LENGTH, Tokens, strtol};
use super::{Ctx, OUT_HIGH_WATER, Step};
use crate::stats::bump;
use crate::storage::store::PREFETCH_KEYS;
use crate::storage::{ItemView, Lookup};

pub fn get(ctx: &mut Ctx<'_>, t: &Tokens<'_>, with_cas: bool, touch: bool) -> Step {
    let mut first = 1;
    let exptime = if touch {
        let Some(e) = strtol(t.get(1)) else {
            ctx.reply(b"CLIENT_ERROR invalid exptime argument");
            return Step::Done(0);
        };
        first = 2;
        Some(ctx.store().clock.realtime(e as i64))
    } else {
        None
    };
    let resume = ctx.sess.get_resume;
    let mut keys = t.keys_from(first).skip(resume);
    let mut answered = resume;
    // Keys go in windows: a multi-key get loads a window's index buckets
    // and items all at once, then answers each key from cache.
    let mut window = [&b""[..]; PREFETCH_KEYS];
    loop {
        let n = window
            .iter_mut()
            .zip(keys.by_ref())
            .map(|(slot, key)| *slot = key)
            .count();
        if n == 0 {
            break;
        }
        if n > 1 {
            ctx.store().prefetch(&window[..n]);
        }
        for &key in &window[..n] {
            if key.len() > KEY_MAX_LENGTH {
                // memcached drops every reply not yet written, not only this get's.
                ctx.out.clear();
                ctx.sess.get_resume = 0;
                ctx.reply(b"CLIENT_ERROR bad command line format");
                return Step::Done(0);
            }
            lookup(ctx, key, with_cas, exptime);
            answered += 1;
            if ctx.out.len() >= OUT_HIGH_WATER {
                ctx.sess.get_resume = answered;
                return Step::Flush;
            }
        }
    }
    ctx.sess.get_resume = 0;
    if ctx.verbose {
        ctx.log('>', b"END");
    }
    ctx.out.extend_from_slice(b"END\r\n");
    Step::Done(0)
}

fn lookup(ctx: &mut Ctx<'_>, key: &[u8], with_cas: bool, exptime: Option<u32>) {
    let s = ctx.stats;
    // gat/gats count as touches, not gets (memcached 1.6.18).
    bump(if exptime.is_some() {
        &s.c.cmd_touch
    } else {
        &s.c.cmd_get
    });
    let out = &mut *ctx.out;
    let found = ctx.shared.store.get(key, exptime, |item| {
        write_value(out, item, with_cas);
        item.class
    });
    ctx.shared.detail_get(key, found.is_ok());
    if ctx.verbose && found.is_ok() {
        ctx.log('>', &[b"sending key ", key].concat());
    }
    match found {
        Ok(class) if exptime.is_some() => bump(&s.class[class].touch_hits),
        Ok(class) => bump(&s.class[class].get_hits),
        Err(_) if exptime.is_some() => bump(&s.c.touch_misses),
        Err(why) => {
            bump(&s.c.get_misses);
            match why {
                Lookup::Expired => bump(&s.c.get_expired),
                Lookup::Flushed => bump(&s.c.get_flushed),
                _ => {}
            }
        }
    }
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`
pub fn write_value(out: &mut Vec<u8>, item: &ItemView<'_>, with_cas: bool) {
    let mut num = itoa::Buffer::new();
    out.reserve(item.key.len() + item.value_len() + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(item.key);
    out.push(b' ');
    out.extend_from_slice(num.format(item.flags).as_bytes());
    out.push(b' ');
    out.extend_from_slice(num.format(item.value_len()).as_bytes());
    if with_cas {
        out.push(b' ');
        out.extend_from_slice(num.format(item.cas).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    item.value(|part| out.extend_from_slice(part));
    out.extend_from_slice(b"\r\n");
}
