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
                shared.store.tick_clock();
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
/// too; its automover reads the age of the LRU tail, ours derives it from
/// evictions. Once a second it samples each class's evictions; it acts only
/// on pressure sustained over a window of samples, so the noise of a fill or
/// of a mixed workload moves nothing. A class with no evictions in the whole
/// window is infinitely old and gives several pages a second, so memory
/// follows a real change in the size mix within seconds.
#[derive(Default)]
struct Automover {
    ticks: u32,
    last_evicted: Vec<u64>,
    /// Evictions per class in each of the last `WINDOW` seconds.
    window: Vec<[u64; WINDOW]>,
    slot: usize,
}

/// Seconds of eviction history the automover looks at.
const WINDOW: usize = 5;
/// Seconds (of the window) a class must have evicted in to get pages.
const PRESSURED: usize = 3;
/// A source must hold items this many times older than the destination's.
const AGE_RATIO: f64 = 4.0;
/// Pages a second from a class that evicted nothing in the whole window.
const BURST: usize = 8;

impl Automover {
    fn tick(&mut self, shared: &Shared) {
        self.ticks += 1;
        if !self.ticks.is_multiple_of(10) {
            return; // once a second (the maintenance tick is 100 ms)
        }
        let store = &shared.store;
        let n = store.classes().len();
        self.last_evicted.resize(n, 0);
        self.window.resize(n, [0; WINDOW]);
        let stats = store.class_stats();
        let mut pages = vec![0usize; n];
        let mut chunks = vec![0usize; n];
        for c in &stats {
            pages[c.id] = c.pages;
            chunks[c.id] = c.pages * c.perslab;
        }
        for id in 0..n {
            let evicted = stats
                .iter()
                .find(|c| c.id == id)
                .map_or(0, |c| c.counters.evicted);
            self.window[id][self.slot] = evicted.saturating_sub(self.last_evicted[id]);
            self.last_evicted[id] = evicted;
        }
        self.slot = (self.slot + 1) % WINDOW;
        if store.slabs.has_spare_page() {
            return;
        }
        let total = |id: usize| self.window[id].iter().sum::<u64>();
        let pressured = |id: usize| self.window[id].iter().filter(|&&e| e > 0).count() >= PRESSURED;
        let age = |id: usize| match total(id) {
            0 => f64::INFINITY,
            e => chunks[id] as f64 * WINDOW as f64 / e as f64,
        };
        let Some(dst) = (0..n)
            .filter(|&i| pressured(i))
            .min_by(|&a, &b| age(a).total_cmp(&age(b)))
        else {
            return;
        };
        let src = (0..n)
            .filter(|&i| i != dst && pages[i] > 1 && age(i) >= AGE_RATIO * age(dst))
            .max_by(|&a, &b| age(a).total_cmp(&age(b)).then(pages[a].cmp(&pages[b])));
        let Some(src) = src else { return };
        let moves = if total(src) == 0 { BURST } else { 1 };
        for _ in 0..moves.min(pages[src] - 1) {
            if store.move_page(src, Some(dst)).is_err() {
                break;
            }
        }
    }
}
