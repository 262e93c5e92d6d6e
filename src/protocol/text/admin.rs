//! flush_all, version, verbosity, shutdown, cache_memlimit, slabs,
//! lru_crawler, and `-Y` authentication.

use std::sync::atomic::Ordering;

use super::tokens::{Tokens, strtol, strtoul};
use super::{Ctx, READ_BUFFER, Step};
use crate::stats::bump;
use crate::storage::store::MoveError;

/// The memcached version memcrab speaks (clients gate features on it).
pub const VERSION: &str = "1.6.18";

pub fn flush_all(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    ctx.noreply = t.noreply();
    bump(&ctx.stats.c.cmd_flush);
    if !ctx.shared.config.flush_enabled {
        ctx.reply(b"CLIENT_ERROR flush_all not allowed");
        return Step::Done(0);
    }
    let mut delay = 0;
    if t.ntokens() != if ctx.noreply { 3 } else { 2 } {
        match strtol(t.get(1)) {
            Some(d) => delay = d,
            None => {
                ctx.reply(b"CLIENT_ERROR invalid exptime argument");
                return Step::Done(0);
            }
        }
    }
    let store = ctx.store();
    store.flush(if delay > 0 {
        store.clock.realtime(delay as i64)
    } else {
        0
    });
    ctx.reply(b"OK");
    Step::Done(0)
}

pub fn version(ctx: &mut Ctx<'_>) -> Step {
    ctx.reply(format!("VERSION {VERSION}").as_bytes());
    Step::Done(0)
}

pub fn verbosity(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    ctx.noreply = t.noreply();
    let Some(level) = strtoul(t.get(1)) else {
        ctx.reply(b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    };
    ctx.shared.set_verbosity(level.min(2));
    ctx.reply(b"OK");
    Step::Done(0)
}

pub fn shutdown(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    if !ctx.shared.config.shutdown_command {
        ctx.reply(b"ERROR: shutdown not enabled");
        return Step::Done(0);
    }
    let n = t.ntokens();
    if n == 2 || (n == 3 && t.get(1) == b"graceful") {
        ctx.sess.close = true;
        ctx.shared.request_shutdown();
    } else {
        ctx.reply(b"CLIENT_ERROR invalid shutdown mode");
    }
    Step::Done(0)
}

pub fn memlimit(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    ctx.noreply = t.noreply();
    match strtoul(t.get(1)) {
        None => ctx.reply(b"ERROR"),
        Some(mb) if mb < 8 => ctx.reply(b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"),
        Some(mb) if mb > 1_000_000_000 => {
            ctx.reply(b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
        }
        Some(mb) => {
            ctx.shared.set_memlimit(mb as usize * 1024 * 1024);
            ctx.reply(b"OK");
        }
    }
    Step::Done(0)
}

pub fn slabs(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    let n = t.ntokens();
    if n == 5 && t.get(1) == b"reassign" {
        if !ctx.shared.config.slab_reassign {
            ctx.reply(b"CLIENT_ERROR slab reassignment disabled");
            return Step::Done(0);
        }
        let (Some(src), Some(dst)) = (strtol(t.get(2)), strtol(t.get(3))) else {
            ctx.reply(b"CLIENT_ERROR bad command line format");
            return Step::Done(0);
        };
        let reply: &[u8] = match reassign(ctx, src, dst) {
            Ok(()) => b"OK",
            Err(MoveError::Busy) => b"BUSY currently processing reassign request",
            Err(MoveError::BadClass) => b"BADCLASS invalid src or dst class id",
            Err(MoveError::NoSpare) => b"NOSPARE source class has no spare pages",
            Err(MoveError::Same) => b"SAME src and dst class are identical",
        };
        ctx.reply(reply);
    } else if n >= 4 && t.get(1) == b"automove" {
        ctx.noreply = t.noreply();
        if t.get(2) == b"ratio" {
            let ratio = std::str::from_utf8(t.get(3))
                .ok()
                .and_then(|s| s.parse::<f64>().ok());
            match ratio {
                Some(r) if n >= 5 => ctx.shared.set_automove_ratio(r),
                _ => {
                    ctx.reply(b"ERROR");
                    return Step::Done(0);
                }
            }
        } else {
            let Some(level) = strtoul(t.get(2)) else {
                ctx.reply(b"CLIENT_ERROR bad command line format");
                return Step::Done(0);
            };
            if level > 2 {
                ctx.reply(b"ERROR");
                return Step::Done(0);
            }
            ctx.shared.automove.store(level as u8, Ordering::Relaxed);
        }
        ctx.reply(b"OK");
    } else {
        ctx.reply(b"ERROR");
    }
    Step::Done(0)
}

/// memcached numbers classes from 1; `src` -1 means any class with spare
/// pages; `dst` 0 is the global page pool.
fn reassign(ctx: &Ctx<'_>, src: i32, dst: i32) -> Result<(), MoveError> {
    let store = ctx.store();
    let classes = store.classes().len() as i32;
    let src = if src == -1 {
        let best = store
            .class_stats()
            .into_iter()
            .filter(|c| c.pages > 1 && c.id as i32 + 1 != dst)
            .max_by_key(|c| c.pages);
        match best {
            Some(c) => c.id as i32 + 1,
            None => return Err(MoveError::BadClass),
        }
    } else {
        src
    };
    if src == 0 {
        // The global page pool as a source: memcrab keeps it empty.
        return Err(MoveError::NoSpare);
    }
    if src < 1 || src > classes || dst < 0 || dst > classes {
        return Err(MoveError::BadClass);
    }
    let dst = if dst == 0 {
        None
    } else {
        Some(dst as usize - 1)
    };
    store.move_page(src as usize - 1, dst)
}

pub fn lru_crawler(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    let n = t.ntokens();
    let shared = ctx.shared;
    match (n, t.get(1)) {
        (4, b"crawl") => {
            if !shared.crawler_enabled.load(Ordering::Relaxed) {
                ctx.reply(b"CLIENT_ERROR lru crawler disabled");
                return Step::Done(0);
            }
            let arg = t.get(2);
            let classes = shared.store.classes().len();
            let ids: Option<Vec<usize>> = if arg == b"all" {
                Some((0..classes).collect())
            } else {
                arg.split(|&b| b == b',')
                    .map(|s| {
                        strtoul(s)
                            .map(|v| v as usize)
                            .filter(|&v| v >= 1 && v <= classes)
                            .map(|v| v - 1)
                    })
                    .collect()
            };
            match ids {
                Some(ids) => {
                    for id in ids {
                        while shared.store.crawl(id, 1 << 16) > 0 {}
                    }
                    ctx.reply(b"OK");
                }
                None => ctx.reply(b"BADCLASS invalid class id"),
            }
        }
        (4, b"tocrawl") | (4, b"sleep") => match strtoul(t.get(2)) {
            None => ctx.reply(b"CLIENT_ERROR bad command line format"),
            Some(v) if t.get(1) == b"sleep" && v > 1_000_000 => {
                ctx.reply(b"CLIENT_ERROR sleep must be one second or less")
            }
            Some(v) => {
                let setting = if t.get(1) == b"sleep" {
                    &shared.crawler_sleep
                } else {
                    &shared.crawler_tocrawl
                };
                setting.store(v, Ordering::Relaxed);
                ctx.reply(b"OK");
            }
        },
        (4, b"metadump") => ctx.out.extend_from_slice(b"END\r\n"),
        // Starting a running crawler, or stopping a stopped one, fails in memcached.
        (3, b"enable") => match shared.crawler_enabled.swap(true, Ordering::Relaxed) {
            false => ctx.reply(b"OK"),
            true => ctx.reply(b"ERROR failed to start lru crawler thread"),
        },
        (3, b"disable") => {
            shared.crawler_enabled.store(false, Ordering::Relaxed);
            ctx.reply(b"OK");
        }
        _ => ctx.reply(b"ERROR"),
    }
    Step::Done(0)
}

/// `-Y`: until a connection authenticates, the only command is a `set`
/// whose data is `username password`. Mirrors memcached 1.6.18's
/// `try_read_command_asciiauth`, quirks included:
///
/// * any other line answers `CLIENT_ERROR unauthenticated`;
/// * its replies share one response object until it is written, so each
///   one replaces the previous reply still waiting in the same batch
///   (before authentication all pending output comes from here);
/// * the length is a 32-bit `safe_strtoul` and `length + 2` wraps;
/// * a data block that cannot fit its 16 KiB read buffer closes the
///   connection once more than a buffer's worth has arrived.
pub fn authenticate(ctx: &mut Ctx<'_>, t: &Tokens<'_>, data: &[u8]) -> Step {
    let size = if t.ntokens() < 6 || t.get(0) != b"set" {
        None
    } else {
        strtoul(t.get(4))
    };
    let Some(size) = size else {
        auth_reply(ctx, b"CLIENT_ERROR unauthenticated");
        return Step::Done(0);
    };
    let want = size.wrapping_add(2) as usize;
    if want > READ_BUFFER {
        // Never fits memcached's read buffer: it closes once that is full.
        if data.len() > READ_BUFFER {
            ctx.sess.close = true;
            return Step::Done(0);
        }
        return Step::NeedData(READ_BUFFER + 1);
    }
    if data.len() < want {
        return Step::NeedData(want);
    }
    if want < 2 || &data[want - 2..want] != b"\r\n" {
        auth_reply(ctx, b"CLIENT_ERROR bad command line termination");
        return Step::Done(want);
    }
    // memcached tokenizes the payload as a C string: a NUL ends it.
    let payload = &data[..want - 2];
    let payload = &payload[..memchr::memchr(0, payload).unwrap_or(payload.len())];
    let words = Tokens::new(payload);
    if words.ntokens() < 3 {
        auth_reply(ctx, b"CLIENT_ERROR bad authentication token format");
        return Step::Done(want);
    }
    bump(&ctx.stats.c.auth_cmds);
    if ctx.shared.check_credentials(words.get(0), words.get(1)) {
        ctx.sess.authenticated = true;
        auth_reply(ctx, b"STORED");
    } else {
        bump(&ctx.stats.c.auth_errors);
        auth_reply(ctx, b"CLIENT_ERROR authentication failure");
    }
    Step::Done(want)
}

/// memcached's `out_string` on the connection's one unsent response:
/// the reply replaces whatever this path answered earlier in the batch.
fn auth_reply(ctx: &mut Ctx<'_>, line: &[u8]) {
    ctx.out.clear();
    ctx.reply(line);
}
