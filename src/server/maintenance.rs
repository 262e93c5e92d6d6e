//! The background thread: advances the clock, applies delayed flushes,
//! crawls for expired items, and moves slab pages where they are needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use super::Shared;

const TICK: Duration = Duration::from_millis(100);
/// Chunks the crawler inspects per class per tick.
const CRAWL_BATCH: usize = 2048;

pub struct Handle {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Handle {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn spawn(shared: Arc<Shared>) -> Handle {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = thread::Builder::new()
        .name("maintenance".into())
        .spawn(move || {
            let mut mover = Automover::default();
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(TICK);
                shared.store.clock.tick();
                shared.store.tick();
                if shared.crawler_enabled.load(Ordering::Relaxed) {
                    for class in 0..shared.store.classes().len() {
                        shared.store.crawl(class, CRAWL_BATCH);
                    }
                }
                if shared.automove.load(Ordering::Relaxed) > 0 {
                    mover.tick(&shared);
                }
            }
        })
        .ok();
    Handle { stop, thread }
}

/// Moves pages toward the classes whose items live shortest.
///
/// A class's "age" is how long an item survives in it: its chunks divided by
/// its eviction rate. Equalising ages across classes is memcached's goal
/// too; its automover measures the age of the LRU tail, ours derives it from
/// evictions. A class with no evictions is infinitely old and gives pages
/// first, so memory follows a change in the size mix within seconds.
#[derive(Default)]
struct Automover {
    last_evicted: Vec<u64>,
    rate: Vec<f64>,
}

impl Automover {
    fn tick(&mut self, shared: &Shared) {
        let store = &shared.store;
        let n = store.classes().len();
        self.last_evicted.resize(n, 0);
        self.rate.resize(n, 0.0);
        let stats = store.class_stats();
        let mut pages = vec![0usize; n];
        let mut free = vec![0usize; n];
        let mut perslab = vec![1usize; n];
        for c in &stats {
            let ev = c.counters.evicted;
            let delta = ev.saturating_sub(self.last_evicted[c.id]);
            self.last_evicted[c.id] = ev;
            self.rate[c.id] = self.rate[c.id] * 0.7 + delta as f64;
            pages[c.id] = c.pages;
            free[c.id] = c.free;
            perslab[c.id] = c.perslab;
        }
        // Classes that are not under pressure decay to zero.
        for (rate, &p) in self.rate.iter_mut().zip(&pages) {
            if p == 0 {
                *rate *= 0.7;
            }
        }
        if store.slabs.has_spare_page() {
            return;
        }
        let age = |id: usize| {
            if self.rate[id] < 0.5 {
                f64::INFINITY
            } else {
                (pages[id] * perslab[id]) as f64 / self.rate[id]
            }
        };
        let Some(dst) = (0..n)
            .filter(|&i| self.rate[i] >= 0.5)
            .min_by(|&a, &b| age(a).total_cmp(&age(b)))
        else {
            return;
        };
        // A class with a page's worth of free chunks is the cheapest source.
        let src = (0..n)
            .filter(|&i| i != dst && pages[i] > 1)
            .max_by(|&a, &b| {
                let fa = free[a] >= perslab[a];
                let fb = free[b] >= perslab[b];
                fa.cmp(&fb)
                    .then(age(a).total_cmp(&age(b)))
                    .then(pages[a].cmp(&pages[b]))
            });
        let Some(src) = src else { return };
        let ratio = age(src) / age(dst).max(1e-9);
        if free[src] >= perslab[src] || ratio > 2.0 {
            // Several pages per tick while the imbalance is stark.
            let burst = if age(src).is_infinite() { 4 } else { 1 };
            for _ in 0..burst.min(pages[src] - 1) {
                if store.move_page(src, Some(dst)).is_err() {
                    break;
                }
            }
        }
    }
}
