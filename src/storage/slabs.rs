//! The slab allocator: 1 MiB pages handed to classes on demand, up to `-m`.
//!
//! Each class keeps its pages, a free list threaded through free chunks, a
//! bump pointer into its newest page, and a CLOCK hand for eviction. A class's
//! state sits behind its own lock; the page pool behind another. Lock order
//! is index shard → class → pool, and no path holds two class locks.

use std::sync::atomic::{AtomicU8, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};

use super::chunk::{ACTIVE, ALLOC, Arena, CONT, Chunk, FREE, LINKED, Ref, STATE_MASK};
use super::classes::{Classes, PAGE_SIZE};

const NO_CLASS: u8 = u8::MAX;

/// Per-class counters memcached reports in `stats items`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassCounters {
    pub evicted: u64,
    pub evicted_nonzero: u64,
    pub evicted_time: u32,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub outofmemory: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
    pub moves_within_lru: u64,
}

/// One class's mutable state.
pub struct ClassState {
    pub id: usize,
    pub size: usize,
    pub perslab: usize,
    pub pages: Vec<u32>,
    free_head: Ref,
    pub free_count: usize,
    /// Next never-used chunk of the newest page (`perslab` when exhausted).
    end_next: usize,
    /// CLOCK hand: position over `pages` × `perslab`.
    hand: usize,
    /// When the hand last wrapped around, and how long the lap took.
    pub lap_started: u32,
    pub last_lap: u32,
    /// A page being emptied to move to another class: never handed out again.
    pub reclaiming: Option<u32>,
    pub used: usize,
    /// Item heads allocated in this class (memcached's `number`).
    pub items: u64,
    /// The crawler's position, like the hand's.
    pub crawl_pos: usize,
    /// Bytes asked for by the items in this class (`mem_requested`).
    pub requested: u64,
    pub counters: ClassCounters,
}

impl ClassState {
    pub fn total_chunks(&self) -> usize {
        self.pages.len() * self.perslab
    }

    /// The chunk at `pos` over this class's pages, if it may hold data.
    pub fn chunk_at(&self, pos: usize) -> Option<Ref> {
        let page = *self.pages.get(pos / self.perslab)?;
        let index = pos % self.perslab;
        let unused = self.pages.last() == Some(&page) && index >= self.end_next;
        (!unused && self.reclaiming != Some(page)).then(|| Ref::new(page, index as u32))
    }

    /// Chunks never handed out at the end of the newest page.
    pub fn free_end(&self) -> usize {
        if self.pages.is_empty() {
            0
        } else {
            self.perslab - self.end_next
        }
    }

    fn bump(&mut self) -> Option<Ref> {
        if let Some(&page) = self.pages.last()
            && self.end_next < self.perslab
            && self.reclaiming != Some(page)
        {
            let r = Ref::new(page, self.end_next as u32);
            self.end_next += 1;
            return Some(r);
        }
        None
    }
}

/// What the eviction hand found.
#[derive(Clone, Copy, Debug)]
pub enum Victim {
    /// A linked item (its key is readable under the class lock).
    Item(Ref),
    /// A continuation chunk of the chained item whose head and hash are given.
    Cont { head: Ref, hash: u32 },
}

struct Pool {
    /// Page slots ever backed with memory.
    allocated: usize,
    /// Pages given back by classes (memcached's global page pool).
    free: Vec<u32>,
    /// The `-m` limit in pages.
    limit: usize,
}

pub struct Slabs {
    pub arena: Arena,
    pub classes: Classes,
    states: Box<[CachePadded<Mutex<ClassState>>]>,
    page_class: Box<[AtomicU8]>,
    pool: Mutex<Pool>,
}

pub type ClassGuard<'a> = MutexGuard<'a, ClassState>;

impl Slabs {
    pub fn new(classes: Classes, max_bytes: usize) -> Slabs {
        let limit = (max_bytes / PAGE_SIZE).max(1);
        // Every class may take its first page beyond the limit (as memcached),
        // and cache_memlimit may raise the limit: leave room for both.
        let slots = (limit * 2 + classes.len()).min(super::chunk::MAX_PAGES);
        let states = classes
            .iter()
            .enumerate()
            .map(|(id, c)| {
                CachePadded::new(Mutex::new(ClassState {
                    id,
                    size: c.size,
                    perslab: c.perslab,
                    pages: Vec::new(),
                    free_head: Ref::NONE,
                    free_count: 0,
                    end_next: 0,
                    hand: 0,
                    lap_started: 0,
                    last_lap: 0,
                    reclaiming: None,
                    used: 0,
                    items: 0,
                    crawl_pos: 0,
                    requested: 0,
                    counters: ClassCounters::default(),
                }))
            })
            .collect();
        Slabs {
            arena: Arena::new(slots, PAGE_SIZE),
            classes,
            states,
            page_class: (0..slots).map(|_| AtomicU8::new(NO_CLASS)).collect(),
            pool: Mutex::new(Pool {
                allocated: 0,
                free: Vec::new(),
                limit,
            }),
        }
    }

    pub fn lock(&self, class: usize) -> ClassGuard<'_> {
        self.states[class].lock()
    }

    /// The class a page belongs to.
    pub fn class_of(&self, r: Ref) -> usize {
        self.page_class[r.page() as usize].load(Ordering::Acquire) as usize
    }

    /// The chunk behind `r`, sized by its page's class.
    pub fn chunk(&self, r: Ref) -> Chunk<'_> {
        let class = self.class_of(r);
        self.arena.chunk(r, self.classes.get(class).size)
    }

    pub fn limit_pages(&self) -> usize {
        self.pool.lock().limit
    }

    /// Changes the memory limit (`cache_memlimit`), within the page slots.
    pub fn set_limit(&self, bytes: usize) {
        let mut pool = self.pool.lock();
        pool.limit = (bytes / PAGE_SIZE).clamp(1, self.arena.page_slots());
    }

    /// Pages backed with memory, and pages idle in the global pool.
    pub fn page_counts(&self) -> (usize, usize) {
        let pool = self.pool.lock();
        (pool.allocated, pool.free.len())
    }

    /// Takes a free chunk of `cs`'s class, growing the class by a page if
    /// memory allows. The chunk comes back in `ALLOC` state.
    pub fn take(&self, cs: &mut ClassState, requested: usize) -> Option<Ref> {
        let r = if !cs.free_head.is_none() {
            let r = cs.free_head;
            cs.free_head = self.arena.chunk(r, cs.size).free_next();
            cs.free_count -= 1;
            r
        } else if let Some(r) = cs.bump() {
            r
        } else {
            self.grow(cs)?;
            cs.bump()?
        };
        let c = self.arena.chunk(r, cs.size);
        c.set_state(ALLOC);
        cs.used += 1;
        cs.requested += requested as u64;
        Some(r)
    }

    fn grow(&self, cs: &mut ClassState) -> Option<()> {
        let page = {
            let mut pool = self.pool.lock();
            if let Some(page) = pool.free.pop() {
                page
            } else if pool.allocated < pool.limit
                || (cs.pages.is_empty() && pool.allocated < self.arena.page_slots())
            {
                let page = pool.allocated as u32;
                if !self.arena.allocate_page(page) {
                    return None;
                }
                pool.allocated += 1;
                page
            } else {
                return None;
            }
        };
        self.page_class[page as usize].store(cs.id as u8, Ordering::Release);
        cs.pages.push(page);
        cs.end_next = 0;
        Some(())
    }

    /// Returns a chunk of `cs`'s class to its free list.
    pub fn free(&self, cs: &mut ClassState, r: Ref, requested: usize) {
        let c = self.arena.chunk(r, cs.size);
        c.set_state(FREE);
        cs.used -= 1;
        cs.requested -= requested as u64;
        if cs.reclaiming == Some(r.page()) {
            return;
        }
        c.set_free_next(cs.free_head);
        cs.free_head = r;
        cs.free_count += 1;
    }

    /// Advances the CLOCK hand at most `budget` chunks looking for something
    /// to evict: an item not used since the hand last passed it, or an
    /// expired one (`is_dead`). Passing an active item clears its bit: its
    /// second chance.
    pub fn sweep(
        &self,
        cs: &mut ClassState,
        now: u32,
        budget: usize,
        mut is_dead: impl FnMut(&Chunk<'_>, u8) -> bool,
    ) -> Option<Victim> {
        let total = cs.total_chunks();
        if total == 0 {
            return None;
        }
        for _ in 0..budget.min(2 * total) {
            if cs.hand >= total {
                cs.hand = 0;
                cs.last_lap = now.saturating_sub(cs.lap_started);
                cs.lap_started = now;
            }
            let pos = cs.hand;
            cs.hand += 1;
            let Some(r) = cs.chunk_at(pos) else {
                continue;
            };
            let c = self.arena.chunk(r, cs.size);
            let state = c.state();
            match state & STATE_MASK {
                LINKED => {
                    if is_dead(&c, state) {
                        return Some(Victim::Item(r));
                    }
                    if c.clear_bits(ACTIVE) & ACTIVE != 0 {
                        cs.counters.moves_within_lru += 1;
                        continue;
                    }
                    return Some(Victim::Item(r));
                }
                CONT => {
                    return Some(Victim::Cont {
                        head: c.cont_head(),
                        hash: c.cont_hash(),
                    });
                }
                _ => {}
            }
        }
        None
    }

    /// Starts moving a page out of `cs`'s class: the page at the hand, whose
    /// items the hand would evict next. Its free chunks leave the free list
    /// and nothing is handed out of it any more.
    pub fn begin_reclaim(&self, cs: &mut ClassState) -> Option<u32> {
        if cs.reclaiming.is_some() || cs.pages.is_empty() {
            return None;
        }
        let page = cs.pages[(cs.hand / cs.perslab).min(cs.pages.len() - 1)];
        cs.reclaiming = Some(page);
        if cs.pages.last() == Some(&page) {
            cs.end_next = cs.perslab;
        }
        // Rebuild the free list without the page's chunks.
        let mut kept = Vec::with_capacity(cs.free_count);
        let mut r = cs.free_head;
        while !r.is_none() {
            let next = self.arena.chunk(r, cs.size).free_next();
            if r.page() != page {
                kept.push(r);
            }
            r = next;
        }
        cs.free_head = Ref::NONE;
        cs.free_count = 0;
        for r in kept.into_iter().rev() {
            self.arena.chunk(r, cs.size).set_free_next(cs.free_head);
            cs.free_head = r;
            cs.free_count += 1;
        }
        Some(page)
    }

    /// The chunks of a page under reclaim that still hold data.
    pub fn occupied(&self, cs: &ClassState, page: u32) -> Vec<(Ref, u8)> {
        (0..cs.perslab as u32)
            .map(|i| Ref::new(page, i))
            .map(|r| (r, self.arena.chunk(r, cs.size).state()))
            .filter(|(_, s)| s & STATE_MASK != FREE)
            .collect()
    }

    /// Gives up a reclaim: the page's free chunks go back on the free list.
    pub fn abort_reclaim(&self, cs: &mut ClassState, page: u32) {
        cs.reclaiming = None;
        for i in 0..cs.perslab as u32 {
            let r = Ref::new(page, i);
            let c = self.arena.chunk(r, cs.size);
            if c.state() & STATE_MASK == FREE {
                c.set_free_next(cs.free_head);
                cs.free_head = r;
                cs.free_count += 1;
            }
        }
    }

    /// Finishes a reclaim whose page is empty: takes it out of the class and
    /// hands it to `to`, or to the global pool.
    pub fn finish_reclaim(&self, cs: &mut ClassState, page: u32, to: Option<&mut ClassState>) {
        cs.reclaiming = None;
        let Some(pos) = cs.pages.iter().position(|&p| p == page) else {
            return;
        };
        let was_last = pos == cs.pages.len() - 1;
        cs.pages.remove(pos);
        if was_last {
            cs.end_next = cs.perslab; // the new last page is full
        }
        if cs.hand > pos * cs.perslab {
            cs.hand = cs.hand.saturating_sub(cs.perslab);
        }
        // Fresh pages read as all-FREE chunks to the hand and the crawler.
        for i in 0..PAGE_SIZE / 4096 {
            self.arena
                .chunk(Ref::new(page, 0), PAGE_SIZE)
                .write(i * 4096, &[0u8; 4096]);
        }
        match to {
            Some(dst) => {
                self.page_class[page as usize].store(dst.id as u8, Ordering::Release);
                // Put it first so the bump pointer keeps working on the newest page.
                dst.pages.insert(0, page);
                for i in (0..dst.perslab as u32).rev() {
                    let r = Ref::new(page, i);
                    self.arena.chunk(r, dst.size).set_free_next(dst.free_head);
                    dst.free_head = r;
                    dst.free_count += 1;
                }
                if dst.pages.len() == 1 {
                    dst.end_next = dst.perslab;
                }
                dst.hand += dst.perslab;
            }
            None => {
                self.page_class[page as usize].store(NO_CLASS, Ordering::Release);
                self.pool.lock().free.push(page);
            }
        }
    }

    /// Whether the pool can give a page without evicting anything.
    pub fn has_spare_page(&self) -> bool {
        let pool = self.pool.lock();
        !pool.free.is_empty() || pool.allocated < pool.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::chunk::LINKED;

    fn slabs(mb: usize) -> Slabs {
        Slabs::new(Classes::new(48, 1.25, 512 * 1024), mb * PAGE_SIZE)
    }

    #[test]
    fn pages_are_taken_lazily_up_to_the_limit() {
        let s = slabs(2);
        assert_eq!(s.page_counts(), (0, 0));
        let mut cs = s.lock(0);
        let per = cs.perslab;
        for _ in 0..2 * per {
            assert!(s.take(&mut cs, 50).is_some());
        }
        assert_eq!(cs.pages.len(), 2);
        assert!(s.take(&mut cs, 50).is_none(), "limit reached");
        assert_eq!(cs.used, 2 * per);
        assert_eq!(cs.requested, 100 * per as u64);
    }

    #[test]
    fn first_page_of_a_class_is_granted_beyond_the_limit() {
        let s = slabs(1);
        let r = s.take(&mut s.lock(0), 10);
        assert!(r.is_some());
        let mut big = s.lock(5);
        assert!(s.take(&mut big, 10).is_some());
        assert_eq!(s.page_counts().0, 2);
    }

    #[test]
    fn freed_chunks_are_reused_first() {
        let s = slabs(1);
        let mut cs = s.lock(2);
        let a = s.take(&mut cs, 1).unwrap();
        let b = s.take(&mut cs, 1).unwrap();
        assert_ne!(a, b);
        s.free(&mut cs, a, 1);
        assert_eq!(cs.free_count, 1);
        assert_eq!(s.take(&mut cs, 1), Some(a));
        assert_eq!(s.chunk(a).state() & STATE_MASK, ALLOC);
        assert_eq!(s.class_of(a), 2);
    }

    #[test]
    fn clock_gives_active_items_a_second_chance() {
        let s = slabs(1);
        let mut cs = s.lock(0);
        let refs: Vec<Ref> = (0..3).map(|_| s.take(&mut cs, 1).unwrap()).collect();
        for &r in &refs {
            s.chunk(r).set_state(LINKED);
        }
        s.chunk(refs[0]).set_bits(ACTIVE);
        match s.sweep(&mut cs, 0, 10, |_, _| false) {
            Some(Victim::Item(r)) => assert_eq!(r, refs[1]),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            s.chunk(refs[0]).state() & ACTIVE,
            0,
            "bit cleared in passing"
        );
    }

    #[test]
    fn clock_takes_dead_items_even_if_active() {
        let s = slabs(1);
        let mut cs = s.lock(0);
        let r = s.take(&mut cs, 1).unwrap();
        s.chunk(r).set_state(LINKED | ACTIVE);
        match s.sweep(&mut cs, 0, 10, |_, _| true) {
            Some(Victim::Item(v)) => assert_eq!(v, r),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reclaimed_page_moves_to_another_class() {
        let s = slabs(1);
        let page;
        {
            let mut cs = s.lock(0);
            let r = s.take(&mut cs, 1).unwrap();
            s.free(&mut cs, r, 1);
            page = s.begin_reclaim(&mut cs).unwrap();
            assert_eq!(cs.free_count, 0);
            assert!(s.occupied(&cs, page).is_empty());
            let mut dst = s.lock(3);
            s.finish_reclaim(&mut cs, page, Some(&mut dst));
            assert!(cs.pages.is_empty());
            assert_eq!(dst.pages, vec![page]);
            assert_eq!(dst.free_count, dst.perslab);
        }
        let mut dst = s.lock(3);
        let r = s.take(&mut dst, 1).unwrap();
        assert_eq!(r.page(), page);
        assert_eq!(s.class_of(r), 3);
    }
}
