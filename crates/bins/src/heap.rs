//! `Bins<P>`: the heap's state, and what the malloc path (`malloc.rs`) and the free path
//! (`free.rs`) share: the bins' bitmap, free-chunk headers, the unsorted bin's front, the fast
//! bins, the top's purged watermark.

use crate::binlist::{
    bin_at, bk_nextsize, fd, fd_nextsize, in_smallbin_range, link_between, set_bk_nextsize,
    set_fd_nextsize, BINMAP_WORDS, UNSORTED,
};
use crate::chunk::{set_foot, set_head, ChunkPtr, IS_FREE, PREV_INUSE};
use crate::config::{Config, MAX_FAST_BIN_BYTES};
use crate::segment::Segment;
use crate::tcache::Tcache;
use core::cell::Cell;
use core::ptr;
use heapkit_core::PageSource;

/// Number of fast bins: chunk sizes 32, 48, .. MAX_FAST_BIN_BYTES.
pub(crate) const NFASTBINS: usize = fastbin_index(MAX_FAST_BIN_BYTES) + 1;

const _: () = assert!(NFASTBINS == 9);

/// The fast bin of a chunk size.
#[inline(always)]
pub(crate) const fn fastbin_index(size_bytes: usize) -> usize {
    (size_bytes >> 4) - 2
}

/// Counters kept for `stats()` and `check()`.
///
/// `repr(C)`, with every counter the malloc and free paths bump next to one they do not: the
/// compiler fuses two adjacent counters changed together into one 16-byte vector update, and
/// when the other path changes one of them with an 8-byte store, that 16-byte load cannot be
/// forwarded from it — a store-forwarding stall on every call (the same trap heapkit-slab's
/// class lists fell into).
#[repr(C)]
pub(crate) struct Counters {
    pub(crate) live_bytes: Cell<usize>,
    pub(crate) failures: Cell<usize>,
    pub(crate) live_blocks: Cell<usize>,
    /// Bytes of all heap segments (runs from the page source holding chunks).
    pub(crate) heap_bytes: Cell<usize>,
    pub(crate) allocations: Cell<usize>,
    /// Bytes and count of live mmapped chunks.
    pub(crate) mmapped_bytes: Cell<usize>,
    pub(crate) deallocations: Cell<usize>,
    pub(crate) mmapped_blocks: Cell<usize>,
    pub(crate) peak_bytes: Cell<usize>,
    /// Number of segments.
    pub(crate) segment_count: Cell<usize>,
    pub(crate) reallocations: Cell<usize>,
}

impl Counters {
    const fn new() -> Self {
        Counters {
            live_bytes: Cell::new(0),
            live_blocks: Cell::new(0),
            peak_bytes: Cell::new(0),
            allocations: Cell::new(0),
            deallocations: Cell::new(0),
            reallocations: Cell::new(0),
            failures: Cell::new(0),
            heap_bytes: Cell::new(0),
            mmapped_bytes: Cell::new(0),
            mmapped_blocks: Cell::new(0),
            segment_count: Cell::new(0),
        }
    }

    #[inline(always)]
    pub(crate) fn add_live(&self, usable_bytes: usize) {
        let live = self.live_bytes.get() + usable_bytes;
        self.live_bytes.set(live);
        if live > self.peak_bytes.get() {
            self.peak_bytes.set(live);
        }
    }

    #[inline(always)]
    pub(crate) fn sub_live(&self, usable_bytes: usize) {
        debug_assert!(self.live_bytes.get() >= usable_bytes);
        self.live_bytes.set(self.live_bytes.get() - usable_bytes);
    }
}

/// A boundary-tag heap with bins: glibc ptmalloc2's arena design over any [`PageSource`].
///
/// `Bins` is `!Sync`; share one with [`heapkit_core::Locked`]. See the crate docs for the
/// algorithm and a picture of the heap.
pub struct Bins<P: PageSource> {
    pub(crate) pages: P,
    pub(crate) config: Config,
    /// Start of the first segment, which holds the bin sentinels; null until the first
    /// allocation.
    pub(crate) area: Cell<*mut u8>,
    /// The top chunk: the free space at the end of the newest segment, never in a bin.
    pub(crate) top: Cell<ChunkPtr>,
    /// Newest segment first; the newest holds `top`.
    pub(crate) newest_segment: Cell<*mut Segment>,
    /// One bit per bin: set when the bin may be non-empty (cleared lazily by searches).
    pub(crate) binmap: [Cell<u64>; BINMAP_WORDS],
    /// glibc's tcache: bounded per-size LIFOs of freed chunks, consulted first.
    pub(crate) tcache: Tcache,
    /// LIFO singly linked lists (through `fd`) of chunks that still look in use.
    pub(crate) fastbins: [Cell<ChunkPtr>; NFASTBINS],
    pub(crate) fast_max_bytes: usize,
    pub(crate) have_fast: Cell<bool>,
    /// The remainder of the last split for a small request (a locality hint only).
    pub(crate) last_remainder: Cell<ChunkPtr>,
    pub(crate) mmap_threshold_bytes: Cell<usize>,
    pub(crate) trim_threshold_bytes: Cell<usize>,
    /// Whether the last growth could extend the newest segment in place.
    pub(crate) extendable: Cell<bool>,
    /// Bytes mapped right after the newest segment's end and not yet part of it: a source that
    /// cannot `extend` gets a run larger than the growth needs, and the heap takes it into the
    /// segment a top pad at a time, as `brk` would (see `segment.rs`). Never touched, or
    /// purged before it was given back.
    pub(crate) reserve_bytes: Cell<usize>,
    /// Pages of the newest segment (and its reserve) from this address on are purged (or never
    /// touched).
    pub(crate) purged_from: Cell<usize>,
    pub(crate) counters: Counters,
}

// SAFETY: a `Bins` owns its heap exclusively (no other value points into it), so moving it to
// another thread moves the whole heap; the page source moves with it and must be `Send`.
unsafe impl<P: PageSource + Send> Send for Bins<P> {}
// A `Bins` is single-threaded (its per-thread cache included): share it as `LockedBins`.
// Checked in test builds: naming a page source here keeps heapkit-pages a dev-dependency.
#[cfg(test)]
static_assertions::assert_impl_all!(Bins<heapkit_pages::MmapPages>: Send);
#[cfg(test)]
static_assertions::assert_not_impl_any!(Bins<heapkit_pages::MmapPages>: Sync);

impl<P: PageSource> Bins<P> {
    /// A heap over `pages` with glibc's default tunables. Nothing is mapped until the first
    /// allocation, so this is `const` and a `static` can hold it.
    pub const fn new(pages: P) -> Self {
        Self::with_config(pages, Config::DEFAULT)
    }

    /// A heap over `pages` with the given tunables (clamped into range).
    pub const fn with_config(pages: P, config: Config) -> Self {
        let config = config.sanitized();
        Bins {
            pages,
            config,
            area: Cell::new(ptr::null_mut()),
            top: Cell::new(ptr::null_mut()),
            newest_segment: Cell::new(ptr::null_mut()),
            binmap: [const { Cell::new(0) }; BINMAP_WORDS],
            tcache: Tcache::new(config.tcache_count),
            fastbins: [const { Cell::new(ptr::null_mut()) }; NFASTBINS],
            fast_max_bytes: config.fast_bin_max_bytes,
            have_fast: Cell::new(false),
            last_remainder: Cell::new(ptr::null_mut()),
            mmap_threshold_bytes: Cell::new(config.mmap_threshold_bytes),
            trim_threshold_bytes: Cell::new(config.trim_threshold_bytes),
            extendable: Cell::new(true),
            reserve_bytes: Cell::new(0),
            purged_from: Cell::new(0),
            counters: Counters::new(),
        }
    }

    /// The page source.
    pub fn pages(&self) -> &P {
        &self.pages
    }

    /// The tunables in force (after clamping).
    pub fn config(&self) -> Config {
        self.config
    }

    /// The current mmap threshold (it rises as large blocks are freed).
    pub fn mmap_threshold_bytes(&self) -> usize {
        self.mmap_threshold_bytes.get()
    }

    /// # Safety
    /// The heap is initialised; `index < NBINS`.
    #[inline(always)]
    pub(crate) unsafe fn bin(&self, index: usize) -> ChunkPtr {
        // SAFETY: forwarded from the caller.
        unsafe { bin_at(self.area.get(), index) }
    }

    #[inline(always)]
    pub(crate) fn mark_bin(&self, index: usize) {
        let word = &self.binmap[index / 64];
        word.set(word.get() | 1 << (index % 64));
    }

    /// The pages below the new top's header may be written from now on: lower the purged
    /// watermark past them.
    #[inline(always)]
    pub(crate) fn note_top_dirty(&self, new_top: ChunkPtr) {
        let dirty_end = new_top as usize + crate::chunk::HEADER_BYTES;
        if dirty_end > self.purged_from.get() {
            let page = self.pages.page_size();
            self.purged_from.set((dirty_end + page - 1) & !(page - 1));
        }
    }

    /// Writes the header (kind free) and footer of a free chunk whose previous chunk is in use.
    ///
    /// # Safety
    /// `p..p + p_size` is a chunk followed by a chunk header.
    #[inline(always)]
    pub(crate) unsafe fn set_free_head(&self, p: ChunkPtr, p_size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_head(p, p_size | IS_FREE | PREV_INUSE);
            set_foot(p, p_size);
        }
    }

    /// Puts a free chunk at the front of the unsorted bin.
    ///
    /// # Safety
    /// `p` is a free chunk in no list, with its header and footer written.
    #[inline(always)]
    pub(crate) unsafe fn push_unsorted(&self, p: ChunkPtr, p_size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if !in_smallbin_range(p_size) {
                set_fd_nextsize(p, ptr::null_mut());
                set_bk_nextsize(p, ptr::null_mut());
            }
            let unsorted = self.bin(UNSORTED);
            link_between(p, unsorted, fd(unsorted));
        }
    }

    // ---------------------------------------------------------------- fast bins

    /// The fast bin of a chunk size up to `fast_max_bytes`. The index is clamped, not
    /// bounds-checked: the allocation paths carry no panic branch (`fast_max_bytes` is at most
    /// `MAX_FAST_BIN_BYTES`, so the clamp never acts).
    #[inline(always)]
    pub(crate) fn fastbin(&self, size_bytes: usize) -> &Cell<ChunkPtr> {
        debug_assert!(size_bytes <= self.fast_max_bytes && size_bytes <= MAX_FAST_BIN_BYTES);
        &self.fastbins[fastbin_index(size_bytes).min(NFASTBINS - 1)]
    }

    /// Unused chunk-kind helper kept for the check module: the fd of a fast-bin member.
    ///
    /// # Safety
    /// `p` is a fast-bin member.
    #[inline(always)]
    pub(crate) unsafe fn fast_next(p: ChunkPtr) -> ChunkPtr {
        // SAFETY: forwarded from the caller.
        unsafe { fd(p) }
    }

    /// Reads `fd_nextsize` for the checker.
    ///
    /// # Safety
    /// `p` is a free large chunk.
    #[inline(always)]
    pub(crate) unsafe fn nextsize(p: ChunkPtr) -> (ChunkPtr, ChunkPtr) {
        // SAFETY: forwarded from the caller.
        unsafe { (fd_nextsize(p), bk_nextsize(p)) }
    }
}
