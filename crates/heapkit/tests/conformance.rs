//! The workspace conformance suite for the composed allocator: directly, through its
//! `GlobalAlloc` implementation, under threads, out of memory, and over a buffer (Miri).

use heapkit::core::{AllocError, Allocator, Counting, Introspect, InvariantError, Stats};
use heapkit::pages::BufferPages;
use heapkit::slab::Slab;
use heapkit::tcache::ThreadCache;
use heapkit::HeapKit;
use heapkit_testkit::{test_pages, Suite};
use std::alloc::{GlobalAlloc, Layout};
use std::ptr::NonNull;

/// Drives an allocator through its `GlobalAlloc` methods only (`alloc`, `alloc_zeroed`,
/// `dealloc`, `realloc`), so the suite checks the path a `#[global_allocator]` takes.
struct ViaGlobal<G>(G);

fn block(ptr: *mut u8, len: usize) -> Result<NonNull<[u8]>, AllocError> {
    NonNull::new(ptr)
        .map(|p| NonNull::slice_from_raw_parts(p, len))
        .ok_or(AllocError)
}

// SAFETY: every call maps onto GlobalAlloc's contract (null = AllocError; realloc keeps the
// alignment, so alignment changes relocate).
unsafe impl<G: GlobalAlloc> Allocator for ViaGlobal<G> {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        block(unsafe { self.0.alloc(layout) }, layout.size())
    }
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
        // fits it; reads and writes stay within the block.
        unsafe { self.0.dealloc(ptr.as_ptr(), layout) }
    }
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
        // fits it; reads and writes stay within the block.
        block(unsafe { self.0.alloc_zeroed(layout) }, layout.size())
    }
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if new.align() != old.align() {
            return self.relocate(ptr, old, new, old.size());
        }
        block(
            // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
            // fits it; reads and writes stay within the block.
            unsafe { self.0.realloc(ptr.as_ptr(), old, new.size()) },
            new.size(),
        )
    }
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if new.align() != old.align() {
            return self.relocate(ptr, old, new, new.size());
        }
        block(
            // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
            // fits it; reads and writes stay within the block.
            unsafe { self.0.realloc(ptr.as_ptr(), old, new.size()) },
            new.size(),
        )
    }
}

impl<G: GlobalAlloc> ViaGlobal<G> {
    /// `realloc` cannot change the alignment: allocate, copy, free (all through GlobalAlloc).
    fn relocate(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        copy: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let fresh = self.allocate_nonzero(new)?;
        // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
        // fits it; reads and writes stay within the block.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.cast::<u8>().as_ptr(), copy);
            self.0.dealloc(ptr.as_ptr(), old);
        }
        Ok(fresh)
    }
}

impl<G: Introspect> Introspect for ViaGlobal<G> {
    fn check(&self) -> Result<(), InvariantError> {
        self.0.check()
    }
    fn stats(&self) -> Option<Stats> {
        self.0.stats()
    }
}

#[test]
#[cfg_attr(miri, ignore)] // mmap
fn conformance() {
    Suite::new("heapkit").run(|| Counting::new(HeapKit::new()));
}

#[test]
#[cfg_attr(miri, ignore)] // mmap
fn conformance_through_global_alloc() {
    Suite::new("heapkit-global-alloc").run(|| Counting::new(ViaGlobal(HeapKit::new())));
}

#[test]
#[cfg_attr(miri, ignore)] // mmap
fn threads() {
    Suite::new("heapkit").run_threads(|| Counting::new(HeapKit::new()));
}

#[test]
fn conformance_over_a_buffer() {
    Suite::new("tcache-over-slab-buffer")
        .run(|| Counting::new(ThreadCache::new(Slab::new(test_pages(8 << 20)))));
}

#[test]
fn out_of_memory() {
    Suite::new("tcache-over-slab").run_out_of_memory(
        || test_pages(8 << 20),
        |pages| Counting::new(ThreadCache::new(Slab::new(pages))),
    );
}

#[test]
fn threads_over_a_buffer() {
    Suite::new("tcache-over-slab-buffer").run_threads(|| {
        Counting::new(ThreadCache::new(Slab::<BufferPages<'static>>::new(
            test_pages(32 << 20),
        )))
    });
}
