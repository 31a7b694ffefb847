//! The entry points' side of the divert (heapkit-tcache's `divert.rs`): how the library hears
//! of every allocation call while recording a trace (`trace.rs`) or counting calls
//! (`calls.rs`, `HEAPKIT_SHOW_STATS`), at no cost to the fast paths of `malloc` and `free`.
//!
//! - **Off** (the library constructor found nothing to record or count): `malloc` and `free`
//!   pay nothing; the other entry points one relaxed load of [`ACTIVE`] and a branch.
//! - **Diverted**: the heap's primary word is never set, so `malloc`'s inline path always
//!   misses: its cold paths (`heap::allocate_small_cold`, `heap::allocate_cold`) call
//!   [`malloc_seen`]; `free`'s push always fails: the cache's cold free paths call
//!   [`free_seen`] (installed as the observer) before the block is released. Every other
//!   `calloc` goes the same way (its inline path is `malloc`'s with a memset); every other
//!   entry point tests [`active`] and calls its event hook itself ([`created`], [`free_as`],
//!   `realloc`'s), freeing with `heap::free_unobserved` so that the observer does not hear of
//!   the same block a second time.
//! - **`hardened` builds** cannot divert (the quarantine takes a freed block before the cold
//!   paths would see it): there `malloc` and `free` test [`active`] first ([`TEST_FIRST`]) and
//!   take a traced copy of themselves. `secure` builds divert as the normal one does: their
//!   heap keeps the handed-out record, so a free stops the process or reaches the cold path.

use crate::heap::{self, HEAP};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use heapkit::c_library::CLibraryEntry as _;
pub use heapkit_trace::Kind;

/// Whether the divert is on: set once by the library constructor. Crate-private, so that the
/// entry points reach it relative to the instruction pointer.
pub(crate) static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether `malloc` and `free` test [`active`] before their fast paths (the builds that cannot
/// divert, see the module docs).
pub const TEST_FIRST: bool = cfg!(feature = "hardened");

/// Whether calls are being observed (recorded or counted).
#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Turns the divert on for the rest of the process; false when the heap cannot divert (the
/// process already has other threads). The library constructor's part.
pub fn start() -> bool {
    if !TEST_FIRST && !HEAP.divert_primary(free_seen) {
        return false;
    }
    ACTIVE.store(true, Ordering::Release);
    true
}

/// The divert's observer: `free` (or `realloc`'s own free, which the caller made unobserved)
/// is about to release `block`. Out of line already (the cache calls it through a pointer), so
/// the event's work is inlined here, specialised to `free`.
fn free_seen(block: NonNull<u8>) {
    freed_event(Kind::Free, block.as_ptr());
}

/// After `malloc`'s cold path returned `block` for `size` bytes: a no-op unless diverted.
#[inline(always)]
pub fn malloc_seen(block: *mut u8, size: usize) {
    if !TEST_FIRST && active() {
        malloc_now(block, size);
    }
}

/// [`malloc_seen`]'s event, out of line and specialised to `malloc` (the most common event).
#[cold]
#[inline(never)]
fn malloc_now(block: *mut u8, size: usize) {
    created_event(Kind::Malloc, block, size, heapkit_core::MAX_ALIGN_BYTES);
}

/// After an allocation of `kind` returned `block` (NULL: nothing recorded): the aligned family
/// and `new`. A hook after the allocation, not a test first with an observed copy of the entry
/// point: the copy would instantiate the allocation path a second time (see [`calloc_now`]).
#[inline(always)]
pub fn created(kind: Kind, block: *mut u8, size: usize, align: usize) {
    if active() {
        created_now(kind, block, size, align);
    }
}

/// `calloc` of `total` bytes while diverted: the allocation, zeroed here, then its event.
///
/// While diverted, `calloc`'s inline path always misses and its cold path
/// (`heap::allocate_zeroed_cold`) comes here whole, which saves a hook after the allocation (a
/// stack frame and a call for the memset instead of a tail call: 1.2 million instructions on
/// the python3 workload). It zeroes with `write_bytes` instead of the heap's `alloc_zeroed`:
/// a second caller of that path made the inliner leave it out of line in `calloc` (3 million
/// instructions more). The price, only while recording: a large block's pages are written,
/// so they become resident.
#[cold]
#[inline(never)]
pub fn calloc_now(total: usize) -> *mut u8 {
    let block = heap::allocate(total, heapkit_core::MAX_ALIGN_BYTES, false);
    if !block.is_null() {
        // SAFETY: a fresh block of at least `total` bytes.
        unsafe { core::ptr::write_bytes(block, 0, total) };
    }
    created_event(Kind::Calloc, block, total, heapkit_core::MAX_ALIGN_BYTES);
    block
}

/// Frees `block` (NULL: nothing) for an entry point of `kind` (`cfree`, `delete`), recording
/// the event while diverted.
///
/// # Safety
/// `block` is NULL or a live block of the heap.
#[inline(always)]
pub unsafe fn free_as(kind: Kind, block: *mut u8) {
    if active() {
        // SAFETY: forwarded from the caller.
        return unsafe { free_as_now(kind, block) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { heap::free(block) }
}

/// [`free_as`] while diverted: the event, then the unobserved free.
///
/// # Safety
/// As for [`free_as`].
#[cold]
#[inline(never)]
pub unsafe fn free_as_now(kind: Kind, block: *mut u8) {
    freed_now(kind, block);
    // SAFETY: forwarded from the caller.
    unsafe { heap::free_unobserved(block) }
}

/// The event of an allocation, out of line (the rarer kinds: the kind is an argument).
#[cold]
#[inline(never)]
fn created_now(kind: Kind, block: *mut u8, size: usize, align: usize) {
    created_event(kind, block, size, align);
}

/// The event of an allocation, inlined into each caller so that a constant `kind` drops the
/// other kinds' branches.
#[inline(always)]
fn created_event(kind: Kind, block: *mut u8, size: usize, align: usize) {
    crate::calls::count(kind);
    #[cfg(feature = "trace")]
    if crate::trace::tracing() {
        crate::trace::created(kind, block, size, align);
    }
    let _ = (kind, block, size, align);
}

/// The event of a free, before the block is released, out of line (the rarer kinds).
#[cold]
#[inline(never)]
fn freed_now(kind: Kind, block: *mut u8) {
    freed_event(kind, block);
}

/// The event of a free, inlined into each caller (see [`created_event`]).
#[inline(always)]
fn freed_event(kind: Kind, block: *mut u8) {
    if !block.is_null() {
        crate::calls::count(kind);
    }
    #[cfg(feature = "trace")]
    if crate::trace::tracing() {
        crate::trace::freed(kind, block);
    }
    let _ = (kind, block);
}

/// `realloc(block, size)` while diverted (`size > 0`): the old block's id leaves the table
/// before the call (another thread may get the address once it is freed) and the event is
/// recorded after; the old block is freed unobserved.
///
/// # Safety
/// `block` is a live block of the heap.
#[cold]
#[inline(never)]
pub unsafe fn realloc_now(block: NonNull<u8>, size: usize) -> *mut u8 {
    crate::calls::count(Kind::Realloc);
    #[cfg(feature = "trace")]
    let token = if crate::trace::tracing() {
        crate::trace::realloc_begin(block.as_ptr())
    } else {
        0
    };
    // SAFETY: forwarded from the caller; `size > 0`.
    let new = unsafe { heap::reallocate::<false>(block, size) };
    #[cfg(feature = "trace")]
    if crate::trace::tracing() {
        crate::trace::realloc_end(token, block.as_ptr(), new, size);
    }
    new
}

/// `malloc` in a build that tests first ([`TEST_FIRST`]): the allocation, then its event.
#[cold]
#[inline(never)]
pub fn malloc_tested_first(size: usize) -> *mut u8 {
    let block = heap::allocate_default_aligned(size);
    created_now(Kind::Malloc, block, size, heapkit_core::MAX_ALIGN_BYTES);
    block
}

/// `free` in a build that tests first ([`TEST_FIRST`]): the event, then the free.
///
/// # Safety
/// `block` is NULL or a live block of the heap.
#[cold]
#[inline(never)]
pub unsafe fn free_tested_first(block: *mut u8) {
    freed_now(Kind::Free, block);
    // SAFETY: forwarded from the caller.
    unsafe { heap::free(block) }
}
