//! Slab pages and the raw view of one chunk: the only module with `unsafe`.
//!
//! Memory is a fixed table of 1 MiB pages, allocated lazily and never freed
//! while the [`Arena`] lives, so every [`Ref`] that names an allocated page
//! points at valid memory. What remains is *who may touch which bytes when*;
//! the rest of `storage` keeps this ownership protocol:
//!
//! * a `FREE` chunk belongs to its class's free list (class lock held);
//! * an `ALLOC` chunk belongs to the one thread that allocated it, which
//!   fills it without any lock and then links it (or frees it);
//! * a `LINKED` item belongs to the index shard of its key: its value and
//!   cas are read and written only under that shard's lock. Its key, length
//!   and layout bits never change while linked, and it can only become
//!   `FREE` under its class lock, so a thread holding the class lock may read
//!   the key (to find the shard) without the shard lock;
//! * the state byte, expiry time and cas halves are atomics, because the
//!   eviction hand and the crawler read them holding only the class lock.
//!
//! Item layout (all integers little-endian, in native atomics where noted):
//!
//! ```text
//!  0  state u8 (atomic)   STATE(2) ACTIVE FETCHED HAS_EXP HAS_FLAGS LONG CHAINED
//!  1  key length u8
//!  2  value length u16    (0 when LONG: the u32 field below holds it)
//!  4  cas u64 as two atomic u32 halves, its top 3 bits the meta marks
//!     (-C: a 29-bit store sequence and the marks in one u32)
//! 12  optional u32 fields, in order: exptime, client flags, long length,
//!     next chunk (CHAINED)               (-C: they start at 8)
//!     key, value (no "\r\n", no NUL)
//! ```
//!
//! A value too large for one chunk continues in `CONT` chunks:
//! `state u8, pad[3], head ref u32, next ref u32, key hash u32, data`; the
//! hash lets the eviction hand find the owning item without touching it.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, Ordering};

/// Where a chunk lives: page number and chunk index within the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ref(u32);

const CHUNK_BITS: u32 = 15;
/// The most pages a [`Ref`] can name (128 GiB of 1 MiB pages).
pub const MAX_PAGES: usize = 1 << (32 - CHUNK_BITS);

impl Ref {
    pub const NONE: Ref = Ref(u32::MAX);

    pub fn new(page: u32, index: u32) -> Ref {
        debug_assert!(index < (1 << CHUNK_BITS) && (page as usize) < MAX_PAGES);
        Ref(page << CHUNK_BITS | index)
    }
    pub fn page(self) -> u32 {
        self.0 >> CHUNK_BITS
    }
    pub fn index(self) -> u32 {
        self.0 & ((1 << CHUNK_BITS) - 1)
    }
    pub fn raw(self) -> u32 {
        self.0
    }
    pub fn from_raw(raw: u32) -> Ref {
        Ref(raw)
    }
    pub fn is_none(self) -> bool {
        self == Ref::NONE
    }
}

pub const STATE_MASK: u8 = 0b11;
pub const FREE: u8 = 0;
pub const ALLOC: u8 = 1;
pub const LINKED: u8 = 2;
pub const CONT: u8 = 3;
pub const ACTIVE: u8 = 1 << 2;
pub const FETCHED: u8 = 1 << 3;
pub const HAS_EXP: u8 = 1 << 4;
pub const HAS_FLAGS: u8 = 1 << 5;
pub const LONG: u8 = 1 << 6;
pub const CHAINED: u8 = 1 << 7;

/// Marks that meta commands keep per item, in the top three bits of the
/// cas word (the high half of the cas; with -C, of the store sequence):
/// the state byte has no bit left, and a cas counter that starts at 1 does
/// not reach 2^61. Without CAS the sequence keeps 29 bits.
pub const MARK_STALE: u8 = 1;
/// The item's "win" token was handed out (meta `W`; later clients see `Z`).
pub const MARK_WON: u8 = 1 << 1;
/// The key was sent base64-encoded (meta `b`): meta replies encode it again.
pub const MARK_BINARY_KEY: u8 = 1 << 2;
const MARK_SHIFT: u32 = 29;
const MARK_MASK: u32 = 0b111 << MARK_SHIFT;
/// Bits of the store sequence kept without CAS.
pub const SEQ_BITS: u32 = MARK_SHIFT;

/// Header bytes of a `CONT` chunk.
pub const CONT_HEADER: usize = 16;

/// The fixed part of an item header, with and without CAS.
pub fn base_header(use_cas: bool) -> usize {
    if use_cas { 12 } else { 8 }
}

/// Header size for an item with these layout bits.
pub fn header_len(use_cas: bool, bits: u8) -> usize {
    let optional = [HAS_EXP, HAS_FLAGS, LONG, CHAINED]
        .iter()
        .filter(|&&b| bits & b != 0)
        .count();
    base_header(use_cas) + 4 * optional
}

const PAGE_ALIGN: usize = 4096;
/// Transparent huge pages are 2 MiB on x86-64 and arm64 (with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;

/// The slab pages. Page slots are fixed at start-up; a page is allocated the
/// first time it is handed to a class and lives until the arena is dropped.
///
/// All slots are carved out of one reservation of address space, mapped
/// lazily by the kernel (RSS grows only as chunks are written) and marked
/// for transparent huge pages: a lookup's random access to an item then
/// rarely misses the TLB, which on a virtual machine costs a two-level page
/// walk. Where the reservation cannot be made, each page is allocated on
/// its own.
pub struct Arena {
    page_size: usize,
    pages: Box<[AtomicPtr<u8>]>,
    /// The reservation: its start and length (null when there is none).
    region: AtomicPtr<u8>,
    region_len: usize,
}

impl Arena {
    pub fn new(max_pages: usize, page_size: usize) -> Arena {
        let pages: Box<[AtomicPtr<u8>]> = (0..max_pages.min(MAX_PAGES))
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        let region_len = pages.len() * page_size + HUGE_PAGE;
        let region = reserve(region_len);
        Arena {
            page_size,
            pages,
            region: AtomicPtr::new(region),
            region_len,
        }
    }

    pub fn page_slots(&self) -> usize {
        self.pages.len()
    }

    /// Backs page slot `page` with memory (zeroed until first written).
    /// Returns false if the allocator has no memory.
    pub fn allocate_page(&self, page: u32) -> bool {
        let slot = &self.pages[page as usize];
        if !slot.load(Ordering::Acquire).is_null() {
            return true;
        }
        let region = self.region.load(Ordering::Relaxed);
        let mem = if region.is_null() {
            let Ok(layout) = Layout::from_size_align(self.page_size, PAGE_ALIGN) else {
                return false;
            };
            // SAFETY: the layout has a non-zero size (a page is 1 MiB).
            unsafe { alloc_zeroed(layout) }
        } else {
            // Slots start at the first huge-page boundary of the region.
            let skip = region.align_offset(HUGE_PAGE).min(HUGE_PAGE);
            // SAFETY: the region holds `HUGE_PAGE` bytes more than all the
            // slots, so slot `page` lies inside it.
            unsafe { region.add(skip + page as usize * self.page_size) }
        };
        if mem.is_null() {
            return false;
        }
        slot.store(mem, Ordering::Release);
        true
    }

    /// The chunk `r` of a page whose chunks are `chunk_size` bytes.
    pub fn chunk(&self, r: Ref, chunk_size: usize) -> Chunk<'_> {
        let base = self.pages[r.page() as usize].load(Ordering::Acquire);
        assert!(!base.is_null(), "reference into an unallocated page");
        let offset = r.index() as usize * chunk_size;
        assert!(offset + chunk_size <= self.page_size);
        Chunk {
            // SAFETY: `offset + chunk_size` lies within the page (checked above),
            // and the page stays allocated for the arena's lifetime `'_`.
            ptr: unsafe { base.add(offset) },
            size: chunk_size,
            _arena: std::marker::PhantomData,
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let region = *self.region.get_mut();
        if !region.is_null() {
            // SAFETY: `region` is the mapping `reserve` made, of this length,
            // and `&mut self` proves no `Chunk` borrowing the arena is alive.
            unsafe { libc_munmap(region, self.region_len) };
            return;
        }
        let Ok(layout) = Layout::from_size_align(self.page_size, PAGE_ALIGN) else {
            return;
        };
        for slot in self.pages.iter() {
            let mem = slot.load(Ordering::Acquire);
            if !mem.is_null() {
                // SAFETY: `mem` came from `alloc_zeroed` with this same layout, and
                // `&mut self` proves no `Chunk` borrowing the arena is alive.
                unsafe { dealloc(mem, layout) };
            }
        }
    }
}

/// Reserves `len` bytes of address space (no swap or commit charge; the
/// kernel maps zeroed pages on first touch) and asks for huge pages there.
/// Null if the kernel refuses.
fn reserve(len: usize) -> *mut u8 {
    use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap_anonymous};
    let Some(size) = std::num::NonZeroUsize::new(len) else {
        return ptr::null_mut();
    };
    let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE;
    // SAFETY: a new anonymous mapping at an address the kernel picks
    // aliases no existing memory.
    let Ok(region) = (unsafe {
        mmap_anonymous(
            None,
            size,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            flags,
        )
    }) else {
        return ptr::null_mut();
    };
    // SAFETY: advice on the mapping just made; huge pages are only a hint,
    // so a refusal (no THP support) changes nothing.
    let _ = unsafe { madvise(region, len, MmapAdvise::MADV_HUGEPAGE) };
    region.as_ptr().cast()
}

/// Returns a reservation to the kernel.
///
/// # Safety
/// `region` and `len` must be a mapping made by [`reserve`], no longer used.
unsafe fn libc_munmap(region: *mut u8, len: usize) {
    if let Some(region) = ptr::NonNull::new(region) {
        // SAFETY: the caller's contract.
        let _ = unsafe { nix::sys::mman::munmap(region.cast(), len) };
    }
}

/// A raw view of one chunk. Which fields a holder may read or write is the
/// ownership protocol in the module docs; every access stays inside the chunk.
#[derive(Clone, Copy)]
pub struct Chunk<'a> {
    ptr: *mut u8,
    size: usize,
    _arena: std::marker::PhantomData<&'a Arena>,
}

/// Asks the CPU to start loading the cache line at `p`: a hint only, so
/// any address, even one no longer in use, is fine.
#[inline]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads no memory the program can observe and never
    // faults, whatever the address; SSE is part of the x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl<'a> Chunk<'a> {
    /// Starts loading the chunk's first cache line (its header and key).
    pub fn prefetch(&self) {
        prefetch(self.ptr);
    }

    pub fn size(&self) -> usize {
        self.size
    }

    fn check(&self, offset: usize, len: usize) {
        assert!(offset + len <= self.size, "access past the end of a chunk");
    }

    fn atomic_u8(&self, offset: usize) -> &'a AtomicU8 {
        self.check(offset, 1);
        // SAFETY: in bounds (checked); AtomicU8 has alignment 1; the page outlives 'a.
        unsafe { AtomicU8::from_ptr(self.ptr.add(offset)) }
    }

    fn atomic_u32(&self, offset: usize) -> &'a AtomicU32 {
        self.check(offset, 4);
        // Chunks start 8-byte aligned (pages are 4096-aligned, sizes multiples of 8)
        // and every u32 field sits at a multiple of 4.
        debug_assert_eq!((self.ptr as usize + offset) % 4, 0);
        // SAFETY: in bounds and 4-aligned (above); the page outlives 'a; every
        // concurrent access to these four bytes goes through an atomic.
        unsafe { AtomicU32::from_ptr(self.ptr.add(offset).cast()) }
    }

    /// Shared view of bytes that no one writes while the caller reads them.
    pub fn bytes(&self, offset: usize, len: usize) -> &'a [u8] {
        self.check(offset, len);
        // SAFETY: in bounds; the ownership protocol guarantees no concurrent writer.
        unsafe { std::slice::from_raw_parts(self.ptr.add(offset), len) }
    }

    /// The chunk's bytes from `offset`, to fill: only for a chunk the
    /// caller allocated and has not linked (`ALLOC`), which no one else
    /// reads or writes, and only one such slice at a time.
    #[allow(clippy::mut_from_ref)]
    pub fn bytes_mut(&self, offset: usize, len: usize) -> &'a mut [u8] {
        self.check(offset, len);
        // SAFETY: in bounds; by the ownership protocol an ALLOC chunk's bytes
        // belong to the one thread filling it, which holds no other slice
        // of them while this one lives (Store::spare ties it to a `&mut`).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(offset), len) }
    }

    /// Copies `src` into the chunk at `offset`; the caller owns those bytes.
    pub fn write(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len());
        // SAFETY: in bounds; the caller owns the destination bytes (protocol), and
        // `src` cannot overlap them because the caller holds no slice of them.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(offset), src.len()) }
    }

    fn read_u16(&self, offset: usize) -> u16 {
        let b = self.bytes(offset, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    fn write_u16(&self, offset: usize, v: u16) {
        self.write(offset, &v.to_le_bytes());
    }

    // ----- item header -----

    pub fn state(&self) -> u8 {
        self.atomic_u8(0).load(Ordering::Acquire)
    }

    /// Publishes a new state; everything written before is visible to whoever
    /// loads the state afterwards.
    pub fn set_state(&self, v: u8) {
        self.atomic_u8(0).store(v, Ordering::Release);
    }

    pub fn set_bits(&self, bits: u8) {
        self.atomic_u8(0).fetch_or(bits, Ordering::Relaxed);
    }

    /// Clears `bits`, returning the state byte as it was.
    pub fn clear_bits(&self, bits: u8) -> u8 {
        self.atomic_u8(0).fetch_and(!bits, Ordering::Relaxed)
    }

    pub fn key_len(&self) -> usize {
        self.bytes(1, 1)[0] as usize
    }

    /// Position of an optional u32 field (`which` is one of its bits).
    fn field(&self, use_cas: bool, state: u8, which: u8) -> usize {
        let before = [HAS_EXP, HAS_FLAGS, LONG, CHAINED]
            .iter()
            .take_while(|&&b| b != which)
            .filter(|&&b| state & b != 0)
            .count();
        base_header(use_cas) + 4 * before
    }

    pub fn value_len(&self, use_cas: bool, state: u8) -> usize {
        if state & LONG != 0 {
            let at = self.field(use_cas, state, LONG);
            self.atomic_u32(at).load(Ordering::Relaxed) as usize
        } else {
            self.read_u16(2) as usize
        }
    }

    /// The cas (or, with -C, the 29-bit store sequence), without the marks.
    pub fn cas(&self, use_cas: bool) -> u64 {
        let lo = self.atomic_u32(4).load(Ordering::Relaxed);
        if use_cas {
            let hi = self.atomic_u32(8).load(Ordering::Relaxed) & !MARK_MASK;
            lo as u64 | (hi as u64) << 32
        } else {
            (lo & !MARK_MASK) as u64
        }
    }

    /// Sets the cas, keeping the marks. The caller owns the item (or holds
    /// its shard lock), so no other thread writes these words meanwhile.
    pub fn set_cas(&self, use_cas: bool, cas: u64) {
        self.store_cas_word(use_cas, cas, self.marks(use_cas));
    }

    fn store_cas_word(&self, use_cas: bool, cas: u64, marks: u8) {
        let marks = (marks as u32) << MARK_SHIFT & MARK_MASK;
        if use_cas {
            self.atomic_u32(4).store(cas as u32, Ordering::Relaxed);
            let hi = (cas >> 32) as u32 & !MARK_MASK;
            self.atomic_u32(8).store(hi | marks, Ordering::Relaxed);
        } else {
            let lo = cas as u32 & !MARK_MASK;
            self.atomic_u32(4).store(lo | marks, Ordering::Relaxed);
        }
    }

    /// The word whose top bits hold the marks.
    fn marks_word(&self, use_cas: bool) -> &'a AtomicU32 {
        self.atomic_u32(if use_cas { 8 } else { 4 })
    }

    /// The meta-command marks (`MARK_*`).
    pub fn marks(&self, use_cas: bool) -> u8 {
        (self.marks_word(use_cas).load(Ordering::Relaxed) >> MARK_SHIFT) as u8
    }

    /// Replaces the marks, keeping the cas.
    pub fn set_marks(&self, use_cas: bool, marks: u8) {
        let bits = (marks as u32) << MARK_SHIFT & MARK_MASK;
        let _ = self
            .marks_word(use_cas)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                Some(w & !MARK_MASK | bits)
            });
    }

    /// Relative expiry time, 0 for never.
    pub fn exptime(&self, use_cas: bool, state: u8) -> u32 {
        if state & HAS_EXP == 0 {
            return 0;
        }
        let at = self.field(use_cas, state, HAS_EXP);
        self.atomic_u32(at).load(Ordering::Relaxed)
    }

    /// Sets the expiry of an item laid out with an expiry field.
    pub fn set_exptime(&self, use_cas: bool, state: u8, exptime: u32) {
        debug_assert!(state & HAS_EXP != 0);
        let at = self.field(use_cas, state, HAS_EXP);
        self.atomic_u32(at).store(exptime, Ordering::Relaxed);
    }

    pub fn client_flags(&self, use_cas: bool, state: u8) -> u32 {
        if state & HAS_FLAGS == 0 {
            return 0;
        }
        let at = self.field(use_cas, state, HAS_FLAGS);
        self.atomic_u32(at).load(Ordering::Relaxed)
    }

    pub fn next(&self, use_cas: bool, state: u8) -> Ref {
        if state & CHAINED == 0 {
            return Ref::NONE;
        }
        let at = self.field(use_cas, state, CHAINED);
        Ref(self.atomic_u32(at).load(Ordering::Relaxed))
    }

    /// Writes a fresh header into an `ALLOC` chunk the caller owns.
    pub fn write_header(&self, h: &Header, use_cas: bool) {
        let state = ALLOC | h.bits();
        self.set_state(state);
        self.write(1, &[h.key_len]);
        let short = if h.value_len > u16::MAX as usize {
            0
        } else {
            h.value_len as u16
        };
        self.write_u16(2, short);
        self.store_cas_word(use_cas, h.cas, 0);
        let u32s = [
            (HAS_EXP, h.exptime),
            (HAS_FLAGS, h.flags),
            (LONG, h.value_len as u32),
            (CHAINED, h.next.raw()),
        ];
        for (bit, v) in u32s {
            if state & bit != 0 {
                self.atomic_u32(self.field(use_cas, state, bit))
                    .store(v, Ordering::Relaxed);
            }
        }
    }

    // ----- continuation chunks -----

    pub fn write_cont_header(&self, head: Ref, next: Ref, hash: u32) {
        self.set_state(ALLOC);
        self.atomic_u32(4).store(head.raw(), Ordering::Relaxed);
        self.atomic_u32(8).store(next.raw(), Ordering::Relaxed);
        self.atomic_u32(12).store(hash, Ordering::Relaxed);
    }

    pub fn cont_hash(&self) -> u32 {
        self.atomic_u32(12).load(Ordering::Relaxed)
    }

    pub fn cont_head(&self) -> Ref {
        Ref(self.atomic_u32(4).load(Ordering::Relaxed))
    }

    pub fn cont_next(&self) -> Ref {
        Ref(self.atomic_u32(8).load(Ordering::Relaxed))
    }

    pub fn set_cont_next(&self, next: Ref) {
        self.atomic_u32(8).store(next.raw(), Ordering::Relaxed);
    }

    /// The free-list link of a `FREE` chunk (stored where a cont keeps `next`).
    pub fn free_next(&self) -> Ref {
        self.cont_next()
    }

    pub fn set_free_next(&self, next: Ref) {
        self.set_cont_next(next);
    }
}

/// The fields of a new item's header.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub key_len: u8,
    pub value_len: usize,
    pub flags: u32,
    pub exptime: u32,
    pub cas: u64,
    /// First continuation chunk, for values spread over several chunks.
    pub next: Ref,
}

impl Header {
    /// The optional-field bits this header needs.
    pub fn bits(&self) -> u8 {
        let mut bits = 0;
        if self.exptime != 0 {
            bits |= HAS_EXP;
        }
        if self.flags != 0 {
            bits |= HAS_FLAGS;
        }
        if self.value_len > u16::MAX as usize {
            bits |= LONG;
        }
        if !self.next.is_none() {
            bits |= CHAINED;
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value_len: usize, flags: u32, exptime: u32, next: Ref) -> Header {
        Header {
            key_len: 3,
            value_len,
            flags,
            exptime,
            cas: 0x1_0000_0002,
            next,
        }
    }

    #[test]
    fn header_sizes() {
        assert_eq!(header_len(true, 0), 12);
        assert_eq!(header_len(false, 0), 8);
        assert_eq!(header_len(true, HAS_EXP | HAS_FLAGS | LONG | CHAINED), 28);
        // The memory lead: a 100-byte value with a 40-byte key fits a 152-byte chunk.
        assert_eq!(header_len(true, 0) + 40 + 100, 152);
    }

    #[test]
    fn header_round_trip() {
        let arena = Arena::new(2, 1 << 20);
        assert!(arena.allocate_page(1));
        for use_cas in [true, false] {
            for h in [
                header(10, 0, 0, Ref::NONE),
                header(70_000, 7, 99, Ref::new(1, 5)),
                header(5, u32::MAX, 0, Ref::NONE),
            ] {
                let c = arena.chunk(Ref::new(1, 3), 152);
                c.write_header(&h, use_cas);
                let s = c.state();
                assert_eq!(s & STATE_MASK, ALLOC);
                assert_eq!(c.key_len(), 3);
                assert_eq!(c.value_len(use_cas, s), h.value_len);
                assert_eq!(c.client_flags(use_cas, s), h.flags);
                assert_eq!(c.exptime(use_cas, s), h.exptime);
                assert_eq!(c.next(use_cas, s), h.next);
                let cas = if use_cas { h.cas } else { h.cas as u32 as u64 };
                assert_eq!(c.cas(use_cas), cas);
                c.write(header_len(use_cas, s), b"key");
                assert_eq!(c.bytes(header_len(use_cas, s), 3), b"key");
            }
        }
    }

    #[test]
    fn state_bits() {
        let arena = Arena::new(1, 1 << 20);
        assert!(arena.allocate_page(0));
        let c = arena.chunk(Ref::new(0, 0), 96);
        c.set_state(LINKED | HAS_EXP);
        c.set_bits(ACTIVE);
        assert_eq!(c.clear_bits(ACTIVE), LINKED | HAS_EXP | ACTIVE);
        assert_eq!(c.state(), LINKED | HAS_EXP);
    }

    #[test]
    fn marks_live_beside_the_cas() {
        let arena = Arena::new(1, 1 << 20);
        assert!(arena.allocate_page(0));
        for use_cas in [true, false] {
            let c = arena.chunk(Ref::new(0, 1), 96);
            let cas = if use_cas {
                0x1FFF_FFFF_FFFF_FFFF
            } else {
                0x1FFF_FFFF
            };
            c.write_header(&header(1, 0, 0, Ref::NONE), use_cas);
            c.set_cas(use_cas, cas);
            assert_eq!(c.marks(use_cas), 0);
            c.set_marks(use_cas, MARK_STALE | MARK_BINARY_KEY);
            assert_eq!(c.cas(use_cas), cas, "marks leave the cas alone");
            c.set_cas(use_cas, 7);
            assert_eq!(c.marks(use_cas), MARK_STALE | MARK_BINARY_KEY);
            assert_eq!(c.cas(use_cas), 7);
            c.set_marks(use_cas, MARK_WON);
            assert_eq!(c.marks(use_cas), MARK_WON);
            // A new header starts without marks.
            c.write_header(&header(1, 0, 0, Ref::NONE), use_cas);
            assert_eq!(c.marks(use_cas), 0);
        }
    }

    #[test]
    fn refs_pack() {
        let r = Ref::new(MAX_PAGES as u32 - 1, (1 << CHUNK_BITS) - 1);
        assert_eq!(r.page() as usize, MAX_PAGES - 1);
        assert_eq!(r.index(), (1 << CHUNK_BITS) - 1);
        assert!(!Ref::new(0, 0).is_none());
    }

    #[test]
    #[should_panic]
    fn out_of_bounds_access_panics() {
        let arena = Arena::new(1, 1 << 20);
        assert!(arena.allocate_page(0));
        arena.chunk(Ref::new(0, 0), 96).bytes(90, 10);
    }
}
