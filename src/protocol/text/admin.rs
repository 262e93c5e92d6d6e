//! flush_all, version, verbosity, shutdown, cache_memlimit, slabs,
//! lru_crawler, and `-Y` authentication.

use std::sync::atomic::Ordering;

use super::tokens::{Tokens, strtol, strtoul};
use super::{Ctx, Step};
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
/// whose data is `username password`.
pub fn authenticate(ctx: &mut Ctx<'_>, t: &Tokens<'_>, data: &[u8]) -> Step {
    if t.get(0) != b"set" || t.ntokens() < 6 {
        ctx.reply(b"CLIENT_ERROR unauthenticated");
        return Step::Done(0);
    }
    let Some(vlen) = strtol(t.get(4)).filter(|&v| (0..=1024).contains(&v)) else {
        ctx.reply(b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    };
    let vlen = vlen as usize;
    if data.len() < vlen + 2 {
        return Step::NeedData;
    }
    bump(&ctx.stats.c.auth_cmds);
    let mut words = data[..vlen].splitn(2, |&b| b == b' ');
    let (user, pass) = (words.next().unwrap_or(&[]), words.next().unwrap_or(&[]));
    if &data[vlen..vlen + 2] == b"\r\n" && ctx.shared.check_credentials(user, pass) {
        ctx.sess.authenticated = true;
        ctx.reply(b"STORED");
    } else {
        bump(&ctx.stats.c.auth_errors);
        ctx.reply(b"CLIENT_ERROR authentication failure");
    }
    Step::Done(vlen + 2)
}
