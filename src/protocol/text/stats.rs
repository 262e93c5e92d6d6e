//! `stats` and its sub-commands, with memcached 1.6.18's names and order.

use std::fmt::Display;
use std::io::Write;

use super::tokens::{Tokens, strtoul};
use super::{Ctx, Step};
use crate::server::Shared;
use crate::stats::Summed;

struct Lines<'a>(&'a mut Vec<u8>);

impl Lines<'_> {
    fn stat(&mut self, name: impl Display, value: impl Display) {
        let _ = write!(self.0, "STAT {name} {value}\r\n");
    }
    fn end(&mut self) {
        self.0.extend_from_slice(b"END\r\n");
    }
}

/// The listings the binary protocol's stat command shares with `stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    General,
    Settings,
    Items,
    Slabs,
    Sizes,
}

/// A listing as `STAT <name> <value>\r\n` lines followed by `END\r\n`.
pub fn listing(shared: &Shared, which: Listing, out: &mut Vec<u8>) {
    match which {
        Listing::General => general(shared, out),
        Listing::Settings => {
            let mut l = Lines(out);
            for (name, value) in shared.settings() {
                l.stat(name, value);
            }
            l.end();
        }
        Listing::Items => items(shared, out),
        Listing::Slabs => slabs(shared, out),
        Listing::Sizes => {
            let mut l = Lines(out);
            match shared.store.sizes() {
                Some(rows) => rows.into_iter().for_each(|(size, n)| l.stat(size, n)),
                None => l.stat("sizes_status", "disabled"),
            }
            l.end();
        }
    }
}

pub(super) fn stats(ctx: &mut Ctx<'_>, t: &Tokens<'_>) -> Step {
    if t.ntokens() == 2 {
        general(ctx.shared, ctx.out);
        return Step::Done(0);
    }
    match t.get(1) {
        b"reset" => {
            ctx.shared.reset_stats();
            ctx.reply(b"RESET");
        }
        b"detail" => match t.get(2) {
            b"on" | b"off" => {
                ctx.shared.set_detail(t.get(2) == b"on");
                ctx.reply(b"OK");
            }
            b"dump" => {
                let dump = ctx.shared.detail_dump();
                ctx.out.extend_from_slice(&dump);
                ctx.out.extend_from_slice(b"END\r\n");
            }
            _ => ctx.reply(b"CLIENT_ERROR usage: stats detail on|off|dump"),
        },
        b"settings" => listing(ctx.shared, Listing::Settings, ctx.out),
        b"items" => listing(ctx.shared, Listing::Items, ctx.out),
        b"slabs" => listing(ctx.shared, Listing::Slabs, ctx.out),
        b"sizes" => listing(ctx.shared, Listing::Sizes, ctx.out),
        b"conns" => {
            let mut l = Lines(ctx.out);
            for c in ctx.shared.conns(ctx.sess.fd) {
                l.stat(format_args!("{}:addr", c.fd), &c.addr);
                if let Some(listen) = &c.listen_addr {
                    l.stat(format_args!("{}:listen_addr", c.fd), listen);
                }
                l.stat(format_args!("{}:state", c.fd), c.state);
                l.stat(format_args!("{}:secs_since_last_cmd", c.fd), c.idle_secs);
            }
            l.end();
        }
        // memcached without an external store lists nothing here.
        b"extstore" => ctx.out.extend_from_slice(b"END\r\n"),
        b"cachedump" => {
            if !ctx.shared.config.dump_enabled {
                ctx.reply(b"CLIENT_ERROR stats cachedump not allowed");
            } else if t.ntokens() < 5 {
                ctx.reply(b"CLIENT_ERROR bad command line");
            } else if let (Some(id), Some(_limit)) = (strtoul(t.get(2)), strtoul(t.get(3))) {
                if id >= crate::stats::MAX_CLASSES as u32 {
                    ctx.reply(b"CLIENT_ERROR Illegal slab id");
                } else {
                    ctx.out.extend_from_slice(b"END\r\n");
                }
            } else {
                ctx.reply(b"CLIENT_ERROR bad command line format");
            }
        }
        _ => ctx.reply(b"ERROR"),
    }
    Step::Done(0)
}

fn general(shared: &Shared, out: &mut Vec<u8>) {
    let store = &shared.store;
    let s = shared.summed();
    let totals = store.totals();
    let class_sum = |name: &str| {
        (0..crate::stats::MAX_CLASSES)
            .map(|i| s.class(i, name))
            .sum::<u64>()
    };
    let (user, system) = rusage();
    let conns = shared.conn_counts();
    let mut l = Lines(out);
    l.stat("pid", std::process::id());
    l.stat("uptime", store.clock.now().saturating_sub(2));
    l.stat("time", store.clock.unix_now());
    l.stat("version", super::admin::VERSION);
    l.stat("libevent", "tokio");
    l.stat("pointer_size", usize::BITS);
    l.stat("rusage_user", format_args!("{}.{:06}", user.0, user.1));
    l.stat(
        "rusage_system",
        format_args!("{}.{:06}", system.0, system.1),
    );
    l.stat("max_connections", shared.config.max_conns);
    l.stat("curr_connections", conns.current);
    l.stat("total_connections", conns.total);
    l.stat("rejected_connections", conns.rejected);
    l.stat("connection_structures", conns.current + 1);
    l.stat("response_obj_oom", 0);
    l.stat("response_obj_count", 1);
    l.stat("response_obj_bytes", 16384);
    l.stat("read_buf_count", conns.current + 1);
    l.stat("read_buf_bytes", (conns.current + 1) * 16384);
    l.stat("read_buf_bytes_free", 0);
    l.stat("read_buf_oom", 0);
    l.stat("reserved_fds", 20);
    l.stat("cmd_get", s.get("cmd_get"));
    l.stat("cmd_set", class_sum("cmd_set"));
    l.stat("cmd_flush", s.get("cmd_flush"));
    l.stat("cmd_touch", s.get("cmd_touch"));
    l.stat("cmd_meta", s.get("cmd_meta"));
    l.stat("get_hits", class_sum("get_hits"));
    l.stat("get_misses", s.get("get_misses"));
    l.stat("get_expired", s.get("get_expired"));
    l.stat("get_flushed", s.get("get_flushed"));
    l.stat("delete_misses", s.get("delete_misses"));
    l.stat("delete_hits", class_sum("delete_hits"));
    l.stat("incr_misses", s.get("incr_misses"));
    l.stat("incr_hits", class_sum("incr_hits"));
    l.stat("decr_misses", s.get("decr_misses"));
    l.stat("decr_hits", class_sum("decr_hits"));
    l.stat("cas_misses", s.get("cas_misses"));
    l.stat("cas_hits", class_sum("cas_hits"));
    l.stat("cas_badval", class_sum("cas_badval"));
    l.stat("touch_hits", class_sum("touch_hits"));
    l.stat("touch_misses", s.get("touch_misses"));
    l.stat("store_too_large", s.get("store_too_large"));
    l.stat("store_no_memory", s.get("store_no_memory"));
    l.stat("auth_cmds", s.get("auth_cmds"));
    l.stat("auth_errors", s.get("auth_errors"));
    if shared.config.idle_timeout > 0 {
        l.stat("idle_kicks", s.get("idle_kicks"));
    }
    l.stat("bytes_read", s.get("bytes_read"));
    l.stat("bytes_written", s.get("bytes_written"));
    l.stat("limit_maxbytes", shared.memlimit());
    l.stat("accepting_conns", 1);
    l.stat("listen_disabled_num", 0);
    l.stat("time_in_listen_disabled_us", 0);
    l.stat("threads", shared.config.threads);
    l.stat("conn_yields", s.get("conn_yields"));
    // memcached's table doubles once it holds 1.5 items per bucket and
    // never shrinks; -o no_hashexpand keeps it at its start size.
    let mut power = shared.hash_power.load(std::sync::atomic::Ordering::Relaxed);
    while shared.config.hash_expand && totals.curr_items > (3u64 << power) / 2 && power < 32 {
        power += 1;
    }
    shared
        .hash_power
        .fetch_max(power, std::sync::atomic::Ordering::Relaxed);
    l.stat("hash_power_level", power);
    l.stat("hash_bytes", 8u64 << power);
    l.stat("hash_is_expanding", 0);
    for name in ["slab_reassign_rescues", "slab_reassign_chunk_rescues"] {
        l.stat(name, 0);
    }
    l.stat(
        "slab_reassign_evictions_nomem",
        store
            .reassign_evictions
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    for name in [
        "slab_reassign_inline_reclaim",
        "slab_reassign_busy_items",
        "slab_reassign_busy_deletes",
        "slab_reassign_running",
    ] {
        l.stat(name, 0);
    }
    l.stat(
        "slabs_moved",
        store.slabs_moved.load(std::sync::atomic::Ordering::Relaxed),
    );
    // memcached lists these only while the thread behind them runs.
    if shared
        .crawler_enabled
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        l.stat("lru_crawler_running", 0);
        l.stat("lru_crawler_starts", shared.crawler_starts());
    }
    if shared.config.lru_maintainer {
        l.stat("lru_maintainer_juggles", 0);
    }
    let segmented = segmented_lru(shared);
    for name in [
        "malloc_fails",
        "log_worker_dropped",
        "log_worker_written",
        "log_watcher_skipped",
        "log_watcher_sent",
        "log_watchers",
        "unexpected_napi_ids",
        "round_robin_fallback",
    ] {
        l.stat(name, 0);
    }
    l.stat("bytes", totals.bytes);
    l.stat("curr_items", totals.curr_items);
    l.stat("total_items", totals.total_items);
    l.stat("slab_global_page_pool", totals.pool_pages);
    l.stat("expired_unfetched", totals.expired_unfetched);
    l.stat("evicted_unfetched", totals.evicted_unfetched);
    if segmented {
        l.stat("evicted_active", totals.evicted_active);
    }
    l.stat("evictions", totals.evictions);
    l.stat("reclaimed", totals.reclaimed);
    l.stat("crawler_reclaimed", totals.crawler_reclaimed);
    l.stat("crawler_items_checked", totals.crawler_items_checked);
    l.stat("lrutail_reflocked", 0);
    if segmented {
        l.stat("moves_to_cold", 0);
        l.stat("moves_to_warm", 0);
        l.stat("moves_within_lru", totals.moves_within_lru);
        l.stat("direct_reclaims", 0);
        l.stat("lru_bumps_dropped", 0);
    }
    l.end();
}

/// memcached's segmented-LRU fields appear only with its LRU maintainer on;
/// memcrab keeps the same layout so that parsers see what they expect.
fn segmented_lru(shared: &crate::server::Shared) -> bool {
    shared.config.lru_maintainer && shared.config.lru_segmented
}

fn items(shared: &Shared, out: &mut Vec<u8>) {
    let classes = shared.store.class_stats();
    let segmented = segmented_lru(shared);
    let mut l = Lines(out);
    for c in classes.iter().filter(|c| c.items > 0) {
        let id = c.id + 1;
        let k = &c.counters;
        let mut stat = |name: &str, v: u64| l.stat(format_args!("items:{id}:{name}"), v);
        stat("number", c.items);
        if segmented {
            stat("number_hot", 0);
            stat("number_warm", 0);
            stat("number_cold", c.items);
            stat("age_hot", 0);
            stat("age_warm", 0);
        }
        stat("age", c.age as u64);
        stat("mem_requested", c.requested);
        stat("evicted", k.evicted);
        stat("evicted_nonzero", k.evicted_nonzero);
        stat("evicted_time", k.evicted_time as u64);
        stat("outofmemory", k.outofmemory);
        stat("tailrepairs", 0);
        stat("reclaimed", k.reclaimed);
        stat("expired_unfetched", k.expired_unfetched);
        stat("evicted_unfetched", k.evicted_unfetched);
        if segmented {
            stat("evicted_active", k.evicted_active);
        }
        stat("crawler_reclaimed", k.crawler_reclaimed);
        stat("crawler_items_checked", k.crawler_items_checked);
        stat("lrutail_reflocked", 0);
        if !segmented {
            continue;
        }
        stat("moves_to_cold", 0);
        stat("moves_to_warm", 0);
        stat("moves_within_lru", k.moves_within_lru);
        stat("direct_reclaims", 0);
        for name in [
            "hits_to_hot",
            "hits_to_warm",
            "hits_to_cold",
            "hits_to_temp",
        ] {
            stat(name, 0);
        }
    }
    l.end();
}

fn slabs(shared: &Shared, out: &mut Vec<u8>) {
    let classes = shared.store.class_stats();
    let s: Summed = shared.summed();
    let totals = shared.store.totals();
    let mut l = Lines(out);
    for c in &classes {
        let id = c.id + 1;
        let mut stat = |name: &str, v: u64| l.stat(format_args!("{id}:{name}"), v);
        stat("chunk_size", c.chunk_size as u64);
        stat("chunks_per_page", c.perslab as u64);
        stat("total_pages", c.pages as u64);
        stat("total_chunks", (c.pages * c.perslab) as u64);
        stat("used_chunks", c.used as u64);
        stat("free_chunks", c.free as u64);
        stat("free_chunks_end", 0);
        for name in [
            "get_hits",
            "cmd_set",
            "delete_hits",
            "incr_hits",
            "decr_hits",
            "cas_hits",
            "cas_badval",
            "touch_hits",
        ] {
            stat(name, s.class(c.id, name));
        }
    }
    l.stat("active_slabs", classes.len());
    l.stat("total_malloced", totals.malloced);
    l.end();
}

/// User and system CPU time as (seconds, microseconds).
fn rusage() -> ((i64, i64), (i64, i64)) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(ru) => {
            let (u, s) = (ru.user_time(), ru.system_time());
            ((u.tv_sec(), u.tv_usec()), (s.tv_sec(), s.tv_usec()))
        }
        Err(_) => ((0, 0), (0, 0)),
    }
}
