//! Heap profiling (feature `prof`): `heapkit_prof`'s sampler hooked into [`HeapKit`].
//!
//! ```no_run
//! #[global_allocator]
//! static GLOBAL: heapkit::HeapKit = heapkit::HeapKit::new();
//!
//! heapkit::prof::activate();
//! let leak: Vec<u8> = vec![0; 1 << 20];
//! std::mem::forget(leak);
//! heapkit::prof::dump_to_file("heap.pb.gz".as_ref()).unwrap(); // and heap.pb.gz.svg
//! ```
//!
//! How a sampled block is recognised: it is allocated as a *large* block (at least
//! [`SAMPLED_MIN_BYTES`]), which has no size class, so its free leaves the thread cache's fast
//! path for the uncached path anyway, where the cache's free hook tells the profiler. Small
//! frees are untouched. A sized free (`dealloc`, `deallocate`) and `realloc`, `grow`, `shrink`
//! go through the unsized path once profiling has ever been active, because a sampled block's
//! layout no longer names its class. tcmalloc gives each sampled object a span of its own for
//! the same reason.

use crate::HeapKit;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use heapkit_core::UnsizedAllocator;

pub use heapkit_prof::*;

/// The least size a sampled block gets: one byte over the slab's largest size class, so that
/// every sampled block is a classless large block.
pub const SAMPLED_MIN_BYTES: usize = heapkit_slab::SMALL_MAX_BYTES + 1;

/// Starts profiling every `HeapKit` of the process (and installs the free hook that follows
/// sampled blocks, once).
pub fn activate() {
    heapkit_tcache::set_uncached_free_hook(heapkit_prof::on_free);
    heapkit_prof::activate();
}

impl HeapKit {
    /// `alloc` (or `alloc_zeroed`) while profiling is active: sampled if the thread's countdown
    /// runs out. Null when out of memory.
    #[cold]
    #[inline(never)]
    pub(crate) fn alloc_profiled(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        if heapkit_prof::should_sample(layout.size()) {
            if let Some(guard) = heapkit_prof::Guard::enter() {
                let block = self.alloc_sampled(layout, zeroed);
                drop(guard);
                return block;
            }
        }
        self.alloc_plain(layout, zeroed)
    }

    fn alloc_plain(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        // SAFETY: the callers' layouts are non-zero (GlobalAlloc's contract and
        // `allocate_nonzero`'s).
        unsafe {
            if zeroed {
                self.cache.alloc_zeroed(layout)
            } else {
                self.cache.alloc(layout)
            }
        }
    }

    /// A block for `layout` recorded as a sample now, without asking the countdown: for an
    /// allocator in front of this one that counted the request down itself (heapkit-malloc's
    /// `malloc`). Unsampled (a plain allocation) inside the profiler. Null when out of memory.
    #[cold]
    #[inline(never)]
    pub fn alloc_sample_now(&self, layout: Layout) -> *mut u8 {
        match heapkit_prof::Guard::enter() {
            Some(_guard) => self.alloc_sampled(layout, false),
            None => self.alloc_plain(layout, false),
        }
    }

    /// A sampled block: the stack first (so the unwinder's own requests, if any, are made
    /// before the block exists), then a large block, then the record.
    #[inline(never)]
    fn alloc_sampled(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        let stack = heapkit_prof::capture_stack();
        let Ok(large) =
            Layout::from_size_align(layout.size().max(SAMPLED_MIN_BYTES), layout.align())
        else {
            return self.alloc_plain(layout, zeroed);
        };
        let block = self.alloc_plain(large, zeroed);
        if let Some(ptr) = NonNull::new(block) {
            // A full store drops the sample (counted); the block is a large block like any.
            heapkit_prof::record(ptr, layout, large.size(), &stack);
        }
        block
    }

    /// Frees any block of this heap, sampled or not, through the unsized path (the one that
    /// finds a sampled block's real size and tells the profiler).
    ///
    /// # Safety
    /// `ptr` is a live block of this heap.
    pub(crate) unsafe fn dealloc_profiled(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.deallocate_unsized(ptr) }
    }

    /// `realloc` once profiling has ever been active: a new block (sampled or not, as any
    /// allocation), the bytes copied, the old block freed — so a sample moves with its data,
    /// and a sampled block's small layout is never used to size it. Null (the old block kept)
    /// when out of memory.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap allocated with `old_layout`; `new_layout` is
    /// non-zero.
    pub(crate) unsafe fn realloc_profiled(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> *mut u8 {
        let fresh = if heapkit_prof::is_active() {
            self.alloc_profiled(new_layout, false)
        } else {
            self.alloc_plain(new_layout, false)
        };
        if fresh.is_null() {
            return fresh;
        }
        let kept = old_layout.size().min(new_layout.size());
        // SAFETY: both blocks are live and distinct; `kept` bytes are readable in the old
        // block (its layout's size) and writable in the new one.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), fresh, kept);
            self.dealloc_profiled(ptr);
        }
        fresh
    }
}
