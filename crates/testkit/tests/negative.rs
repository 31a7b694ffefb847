//! The suite can fail: each deliberately broken allocator below must be caught.

use heapkit_core::{AllocError, Allocator, Counting, Introspect, InvariantError, Locked, Stats};
use heapkit_testkit::{test_pages, PageRunAllocator, Suite};
use std::alloc::Layout;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

type Reference = PageRunAllocator<heapkit_pages::BufferPages<'static>>;

fn reference() -> Reference {
    PageRunAllocator::new(test_pages(32 << 20))
}

/// Runs `body` and requires it to panic (the suite's way of failing), quietly.
fn must_be_caught(what: &str, body: impl FnOnce()) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(AssertUnwindSafe(body));
    std::panic::set_hook(previous);
    assert!(outcome.is_err(), "the suite did not catch: {what}");
}

/// Hands every request the same block: blocks overlap.
struct Overlapping {
    inner: Reference,
    first: Cell<Option<NonNull<[u8]>>>,
}

// SAFETY: not sound — that is the point; it exists only to be caught by the suite.
unsafe impl Allocator for Overlapping {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if let Some(block) = self.first.get() {
            if block.len() >= layout.size() {
                return Ok(NonNull::slice_from_raw_parts(block.cast(), layout.size()));
            }
        }
        // Under Miri every byte costs microseconds: keep the shared block small there.
        let shared_bytes = if cfg!(miri) { 16 << 10 } else { 1 << 20 };
        let big = Layout::from_size_align(layout.size().max(shared_bytes), 4096)
            .map_err(|_| AllocError)?;
        let block = self.inner.allocate_nonzero(big)?;
        self.first.set(Some(block));
        Ok(NonNull::slice_from_raw_parts(block.cast(), layout.size()))
    }
    unsafe fn deallocate_nonzero(&self, _: NonNull<u8>, _: Layout) {}
    // Resizing keeps the block where it is, so the broken part is only `allocate` (a default
    // grow would copy a block onto itself, which is undefined behaviour the suite cannot report).
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        _: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        match self.first.get() {
            Some(block) if block.cast::<u8>() == ptr && block.len() >= new.size() => Ok(block),
            _ => Err(AllocError),
        }
    }
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        _: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        Ok(NonNull::slice_from_raw_parts(ptr, new.size()))
    }
}
impl Introspect for Overlapping {}

// SAFETY: test-only: `Overlapping` holds a Cell and a buffer source; in the threaded test all
// access to it is under `Locked`'s lock.
unsafe impl Send for Overlapping {}

/// Returns blocks one byte past an aligned address.
struct Misaligned(Reference);

// SAFETY: not sound — to be caught.
unsafe impl Allocator for Misaligned {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let wide =
            Layout::from_size_align(layout.size() + 1, layout.align()).map_err(|_| AllocError)?;
        let block = self.0.allocate_nonzero(wide)?;
        // SAFETY: the block is at least one byte long.
        let ptr = unsafe { block.cast::<u8>().add(1) };
        Ok(NonNull::slice_from_raw_parts(ptr, layout.size()))
    }
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        let wide = Layout::from_size_align(layout.size() + 1, layout.align()).unwrap();
        // SAFETY: undoes the offset of `allocate_nonzero`.
        unsafe { self.0.deallocate_nonzero(ptr.sub(1), wide) }
    }
}
impl Introspect for Misaligned {}

/// Grows by allocating a new block without copying the contents.
struct Forgetful(Reference);

// SAFETY: not sound — to be caught.
unsafe impl Allocator for Forgetful {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.0.allocate_nonzero(layout)
    }
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate_nonzero(ptr, layout) }
    }
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let block = self.0.allocate_nonzero(new)?;
        // Fresh bytes instead of the old contents (initialised, so Miri sees a wrong value
        // rather than an uninitialised read).
        // SAFETY: the new block is ours and `block.len()` long.
        unsafe { block.cast::<u8>().as_ptr().write_bytes(0x55, block.len()) };
        // SAFETY: forwarded.
        unsafe { self.0.deallocate_nonzero(ptr, old) };
        Ok(block)
    }
}
impl Introspect for Forgetful {}

/// Claims zeroed memory but hands out dirty memory.
struct Dirty(Reference);

// SAFETY: not sound — to be caught.
unsafe impl Allocator for Dirty {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = self.0.allocate_nonzero(layout)?;
        // SAFETY: the block is ours.
        unsafe { block.cast::<u8>().as_ptr().write_bytes(0xAA, block.len()) };
        Ok(block)
    }
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.allocate_nonzero(layout)
    }
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate_nonzero(ptr, layout) }
    }
}
impl Introspect for Dirty {}

/// Never counts frees: stats say blocks stay live.
struct LyingStats(Counting<Reference>, Cell<usize>);

// SAFETY: forwards to a correct allocator; only its stats lie.
unsafe impl Allocator for LyingStats {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.1.set(self.1.get() + layout.size());
        self.0.allocate_nonzero(layout)
    }
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate_nonzero(ptr, layout) }
    }
}
impl Introspect for LyingStats {
    fn stats(&self) -> Option<Stats> {
        Some(Stats {
            live_bytes: self.1.get(),
            live_blocks: 1,
            ..Stats::default()
        })
    }
}

/// Reports a broken invariant after the third call.
struct FailsCheck(Reference, Cell<u32>);

// SAFETY: forwards to a correct allocator; only its check fails.
unsafe impl Allocator for FailsCheck {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.1.set(self.1.get() + 1);
        self.0.allocate_nonzero(layout)
    }
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate_nonzero(ptr, layout) }
    }
}
impl Introspect for FailsCheck {
    fn check(&self) -> Result<(), InvariantError> {
        if self.1.get() >= 3 {
            return Err(InvariantError::new(
                "test: the third allocation breaks the heap",
                0,
            ));
        }
        Ok(())
    }
}

/// Refuses everything: small requests must succeed, so this is caught.
struct Refuses;

// SAFETY: never hands out a block.
unsafe impl Allocator for Refuses {
    fn allocate_nonzero(&self, _: Layout) -> Result<NonNull<[u8]>, AllocError> {
        Err(AllocError)
    }
    unsafe fn deallocate_nonzero(&self, _: NonNull<u8>, _: Layout) {}
}
impl Introspect for Refuses {}

/// Ignores its page source's failures by keeping a private reserve it never gives back:
/// allocation keeps succeeding when the source fails (caught by the out-of-memory test).
struct IgnoresFailures<P: heapkit_core::PageSource> {
    pages: PageRunAllocator<P>,
    reserve: PageRunAllocator<heapkit_pages::MmapPages>,
}

// SAFETY: blocks come from one of two correct allocators and go back to the one that made them.
unsafe impl<P: heapkit_core::PageSource> Allocator for IgnoresFailures<P> {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.pages
            .allocate_nonzero(layout)
            .or_else(|_| self.reserve.allocate_nonzero(layout))
    }
    unsafe fn deallocate_nonzero(&self, _: NonNull<u8>, _: Layout) {}
}
impl<P: heapkit_core::PageSource> Introspect for IgnoresFailures<P> {}

const CASES: u32 = if cfg!(miri) { 4 } else { 64 };

#[test]
fn overlapping_blocks_are_caught() {
    must_be_caught("overlap", || {
        Suite::new("overlapping").cases(CASES).run(|| Overlapping {
            inner: reference(),
            first: Cell::new(None),
        })
    });
}

#[test]
fn misaligned_blocks_are_caught() {
    must_be_caught("misalignment", || {
        Suite::new("misaligned")
            .cases(CASES)
            .run(|| Misaligned(reference()))
    });
}

#[test]
fn lost_contents_on_grow_are_caught() {
    must_be_caught("grow without copy", || {
        Suite::new("forgetful")
            .cases(CASES)
            .run(|| Forgetful(reference()))
    });
}

#[test]
fn dirty_zeroed_memory_is_caught() {
    must_be_caught("non-zero allocate_zeroed", || {
        Suite::new("dirty").cases(CASES).run(|| Dirty(reference()))
    });
}

#[test]
fn stats_that_never_fall_are_caught() {
    must_be_caught("lying stats", || {
        Suite::new("lying-stats")
            .cases(CASES)
            .run(|| LyingStats(Counting::new(reference()), Cell::new(0)))
    });
}

#[test]
fn a_failing_heap_check_is_caught() {
    must_be_caught("check() error", || {
        Suite::new("fails-check")
            .cases(CASES)
            .run(|| FailsCheck(reference(), Cell::new(0)))
    });
}

#[test]
fn refusing_small_requests_is_caught() {
    must_be_caught("refusal", || {
        Suite::new("refuses").cases(CASES).run(|| Refuses)
    });
}

#[test]
#[cfg_attr(miri, ignore = "mmap is not available under Miri")]
fn ignoring_out_of_memory_is_caught() {
    must_be_caught("no failure under a failing source", || {
        Suite::new("ignores-failures").run_out_of_memory(
            || test_pages(8 << 20),
            |pages| IgnoresFailures {
                pages: PageRunAllocator::new(pages),
                reserve: PageRunAllocator::new(heapkit_pages::MmapPages::new()),
            },
        )
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the broken allocator makes the threads race for real: Miri stops at that UB first"
)]
fn corruption_across_threads_is_caught() {
    /// Shares one block between all threads once it exists: concurrent writers corrupt it.
    struct SharedBlock(Locked<Overlapping>);
    // SAFETY: forwards to the (deliberately broken) locked allocator.
    unsafe impl Allocator for SharedBlock {
        fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            self.0.allocate_nonzero(layout)
        }
        unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
            // SAFETY: forwarded.
            unsafe { self.0.deallocate_nonzero(ptr, layout) }
        }
    }
    impl Introspect for SharedBlock {}
    must_be_caught("overlap under threads", || {
        Suite::new("shared-block").run_threads(|| {
            SharedBlock(Locked::new(Overlapping {
                inner: reference(),
                first: Cell::new(None),
            }))
        })
    });
}
