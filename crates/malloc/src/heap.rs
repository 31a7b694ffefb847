//! The one heap behind every entry point, and the conversions between C's conventions and
//! heapkit's `Allocator` contract.

use core::alloc::GlobalAlloc;
use core::alloc::Layout;
use core::ptr::{self, NonNull};
use heapkit::c_library::CLibraryEntry as _;
use heapkit::HeapKit;
use heapkit_core::{UnsizedAllocator, MAX_ALIGN_BYTES};

use crate::divert;

/// The process's heap. `HeapKit::new` is `const`, so the heap exists before any code runs.
///
/// Private to the crate so that the compiler may address it relative to the instruction
/// pointer: a public static of a library crate is reached through the GOT, one more load on
/// every `malloc` and `free`.
pub(crate) static HEAP: HeapKit = HeapKit::new();

/// The largest request `malloc`'s inline path serves: [`INLINE_SIZE_MAX_BYTES`], or 0 while
/// profiling is active, so that every request takes the cold path, where `HeapKit::alloc`
/// samples (`HEAPKIT_PROF`, `prof.rs`). A variable the size test compares with, instead of a
/// flag tested apart: profiling compiled in costs `malloc` no instruction, only an immediate
/// turned into a memory operand. Crate-private for the reason `HEAP` is: a public static is
/// reached through the GOT.
#[cfg(feature = "prof")]
pub(crate) static INLINE_LIMIT_BYTES: core::sync::atomic::AtomicUsize =
    core::sync::atomic::AtomicUsize::new(INLINE_SIZE_MAX_BYTES);

/// The limit of the inline path (see [`INLINE_LIMIT_BYTES`]); never above
/// [`INLINE_SIZE_MAX_BYTES`], which the direct table's index relies on.
#[inline(always)]
fn inline_limit_bytes() -> usize {
    #[cfg(feature = "prof")]
    return INLINE_LIMIT_BYTES.load(core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "prof"))]
    INLINE_SIZE_MAX_BYTES
}

/// Sets `errno` to `ENOMEM` (C's report for an allocation failure) and returns NULL.
#[cold]
pub fn out_of_memory() -> *mut u8 {
    set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// Sets the calling thread's `errno`.
pub fn set_errno(code: i32) {
    // SAFETY: `__errno_location` returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = code };
}

/// The layout C asks for: `size` bytes aligned at least to `max_align_t`. A zero size becomes
/// one byte, so that `malloc(0)` returns a unique pointer that can be freed, as glibc does.
///
/// Inlined so that the constant alignment of `malloc` and `calloc` folds the checks away.
#[inline(always)]
pub fn c_layout(size: usize, align: usize) -> Option<Layout> {
    Layout::from_size_align(size.max(1), align.max(MAX_ALIGN_BYTES)).ok()
}

/// Requests up to this size try the thread cache inline first, through its direct table, and
/// take [`allocate_small_cold`] when it misses; larger ones take [`allocate_cold`].
pub const INLINE_SIZE_MAX_BYTES: usize = heapkit::tcache::DIRECT_MAX_BYTES;

const _: () = assert!(INLINE_SIZE_MAX_BYTES <= heapkit::slab::SMALL_MAX_BYTES);
const _: () = assert!(heapkit::tcache::DIRECT_STEP_BYTES == MAX_ALIGN_BYTES);
// Small blocks carry a canary in the hardened build only: the others reserve nothing.
const _: () =
    assert!(heapkit::slab::CANARY_BYTES == if cfg!(feature = "hardened") { 8 } else { 0 });

/// `malloc`'s whole fast path: a small request served from this thread's cache with no stack
/// frame and no call; anything else goes to one out-of-line function, so nothing stays live
/// across a call and no register needs saving on the hit.
#[inline(always)]
pub fn allocate_default_aligned(size: usize) -> *mut u8 {
    // One unsigned test of `size - 1` passes 1..=1024 and sends 0 (which wraps) and large sizes
    // to the cold path, which makes `malloc(0)` one byte. The direct table is then indexed with
    // the same `size - 1`.
    // With profiling active the limit is 0 and every size goes to `allocate_cold`.
    if size.wrapping_sub(1) < inline_limit_bytes() {
        // SAFETY: `HEAP` is the only cache in this library that claims the primary word.
        let block = unsafe { HEAP.allocate_cached_small_primary(size) };
        if !block.is_null() {
            return block;
        }
        return allocate_small_cold(size);
    }
    allocate_cold(size, MAX_ALIGN_BYTES, false)
}

/// `calloc`'s fast path, `malloc`'s with a memset: a small request served from this thread's
/// cache through the primary word and the direct table, then zeroed to its usable size (a
/// cached block holds old data). Everything else — a miss, a large size, profiling (limit 0), the divert (the word
/// is never set, so every request misses) — goes to [`allocate_zeroed_cold`], which records
/// the call while diverted. So `calloc` tests no flag of its own, as `malloc` does not.
#[inline(always)]
pub fn allocate_zeroed_default_aligned(size: usize) -> *mut u8 {
    if zeroed_takes_inline_path(size) {
        // SAFETY: `HEAP` is the only cache in this library that claims the primary word.
        let (block, usable) = unsafe { HEAP.allocate_cached_small_primary_sized(size) };
        if !block.is_null() {
            // SAFETY: a fresh block of `usable` writable bytes (its class's size), ours.
            unsafe { ptr::write_bytes(block, 0, usable) };
            return block;
        }
    }
    allocate_zeroed_cold(size)
}

/// Whether `calloc` of `size` bytes takes the thread cache's primary path (inline, or its miss
/// path): `malloc`'s size test, except in the hardened build, which tests first (it cannot
/// divert) and zeroes on free.
#[inline(always)]
fn zeroed_takes_inline_path(size: usize) -> bool {
    !divert::TEST_FIRST && size.wrapping_sub(1) < inline_limit_bytes()
}

/// Zeroes the whole usable size of a fresh small block, not only the bytes asked for: as
/// glibc, jemalloc and mimalloc do (and heapkit's general zeroed path), so a program that uses
/// `malloc_usable_size`'s slack after `calloc` finds zeros there too.
#[inline(always)]
fn zero_usable(block: *mut u8) {
    // SAFETY: a live block of this heap, not null.
    let usable = unsafe { HEAP.usable_size(NonNull::new_unchecked(block)) };
    // SAFETY: a fresh block of `usable` writable bytes, ours.
    unsafe { ptr::write_bytes(block, 0, usable) };
}

/// The rest of `calloc`: while diverted, the recorded call (`divert::calloc_now`); a small
/// miss, the thread cache's miss path (which points the primary word at the thread's
/// magazine, so that the next call hits) and a memset; anything else, the general path.
#[cold]
#[inline(never)]
fn allocate_zeroed_cold(size: usize) -> *mut u8 {
    if divert::active() {
        return divert::calloc_now(size);
    }
    if zeroed_takes_inline_path(size) {
        let block = allocate_small_miss(size);
        if !block.is_null() {
            zero_usable(block);
        }
        return block;
    }
    allocate(size, MAX_ALIGN_BYTES, true)
}

/// The miss of `malloc`'s inline path for a size the direct table covers (`1..=1024`): one call
/// into the thread cache, which claims the primary word for `HEAP` (on the first call in the
/// process), attaches the thread's magazine, points the word at it (so that the thread's next
/// `malloc` hits) and refills the bin the direct table already named — no second class lookup.
///
/// While diverted every small `malloc` comes here, and the call is observed here.
#[cold]
#[inline(never)]
pub fn allocate_small_cold(size: usize) -> *mut u8 {
    let block = allocate_small_miss(size);
    divert::malloc_seen(block, size);
    block
}

/// [`allocate_small_cold`]'s work, unobserved (the profiled path calls it too).
#[inline(always)]
fn allocate_small_miss(size: usize) -> *mut u8 {
    debug_assert!((1..=INLINE_SIZE_MAX_BYTES).contains(&size));
    let block = HEAP.allocate_small_primary_slow(size);
    if block.is_null() {
        return out_of_memory();
    }
    block
}

/// [`allocate`] out of line: `malloc` of a size the direct table does not cover (0, or above
/// 1024).
///
/// It also points the calling thread's primary magazine word at its magazine (claiming the
/// word for `HEAP` on the first call in the process), so that the thread's small `malloc`s hit.
///
/// While diverted every `malloc` that does not take [`allocate_small_cold`] comes here, and the
/// call is observed here.
#[cold]
#[inline(never)]
pub fn allocate_cold(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    let block = allocate_cold_unobserved(size, align, zeroed);
    divert::malloc_seen(block, size);
    block
}

/// [`allocate_cold`]'s work.
#[inline(always)]
fn allocate_cold_unobserved(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    #[cfg(feature = "prof")]
    if size.wrapping_sub(1) < INLINE_SIZE_MAX_BYTES && align == MAX_ALIGN_BYTES && !zeroed {
        // Only while profiling does `malloc` send a size the direct table covers here.
        return allocate_small_profiled(size);
    }
    HEAP.sync_primary();
    allocate(size, align, zeroed)
}

/// `malloc` of `1..=1024` bytes while profiling is active: the countdown, then the inline
/// path's hit or miss as usual; a sampled request goes to `HeapKit::alloc_sample_now`. The
/// countdown is the only work added, so profiling stays cheap (the general path through
/// `HeapKit::alloc` would add a class lookup and a second test of the flag).
#[cfg(feature = "prof")]
#[inline(always)]
fn allocate_small_profiled(size: usize) -> *mut u8 {
    if heapkit::prof::should_sample(size) {
        let Ok(layout) = Layout::from_size_align(size, MAX_ALIGN_BYTES) else {
            return out_of_memory();
        };
        let block = HEAP.alloc_sample_now(layout);
        if block.is_null() {
            return out_of_memory();
        }
        return block;
    }
    // SAFETY: `HEAP` is the only cache in this library that claims the primary word.
    let block = unsafe { HEAP.allocate_cached_small_primary(size) };
    if !block.is_null() {
        return block;
    }
    allocate_small_miss(size)
}

/// Allocates a block for C, or NULL with `errno = ENOMEM`.
#[inline(always)]
pub fn allocate(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    #[cfg(feature = "hardened")]
    if size == 0 {
        let block = crate::zero_size::allocate(align);
        if !block.is_null() {
            return block;
        }
    }
    let Some(layout) = c_layout(size, align) else {
        return out_of_memory();
    };
    // The hardened build hands out every small block zeroed (it checks so): no second memset.
    let zeroed = zeroed && !(cfg!(feature = "hardened") && is_small(layout));
    // The `GlobalAlloc` face: a raw pointer, null on failure, and no zero-size test (the C
    // layout is never empty), so the cached path compiles to a few loads with no stack frame.
    // SAFETY: `c_layout` never returns a zero-size layout.
    let block = unsafe {
        if zeroed {
            HEAP.alloc_zeroed(layout)
        } else {
            HEAP.alloc(layout)
        }
    };
    if block.is_null() {
        return out_of_memory();
    }
    block
}

/// Whether blocks of `layout` come from a small class (the thread cache's blocks).
#[inline(always)]
pub fn is_small(layout: Layout) -> bool {
    heapkit::slab::class_of_layout(layout.size(), layout.align()).is_some()
}

/// Frees a block for C; NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a live block from this heap.
#[inline(always)]
pub unsafe fn free(ptr: *mut u8) {
    // SAFETY: the caller promises a live block of this heap (or NULL); `HEAP` is the only
    // cache in this library that claims the primary word.
    release(ptr, |block| unsafe {
        HEAP.deallocate_unsized_primary(block)
    })
}

/// [`free`] for the entry points that observe their own call (`cfree`, `delete`, `realloc`)
/// while diverted: through the cache's table, whose frees the divert's observer does not hear
/// of (`divert.rs`).
///
/// # Safety
/// As for [`free`].
pub unsafe fn free_unobserved(ptr: *mut u8) {
    // SAFETY: the caller promises a live block of this heap (or NULL).
    release(ptr, |block| unsafe { HEAP.deallocate_unsized(block) })
}

/// What both frees do before the cache sees the block: NULL is ignored, and so (hardened) is
/// a zero-size block, which lives outside the heap.
#[inline(always)]
fn release(ptr: *mut u8, deallocate: impl FnOnce(NonNull<u8>)) {
    #[cfg(feature = "hardened")]
    if crate::zero_size::contains(ptr) {
        return;
    }
    if let Some(block) = NonNull::new(ptr) {
        deallocate(block);
    }
}

/// The usable size of a block; 0 for NULL.
///
/// # Safety
/// `ptr` is NULL or a live block from this heap.
pub unsafe fn usable_size(ptr: *mut u8) -> usize {
    #[cfg(feature = "hardened")]
    if crate::zero_size::contains(ptr) {
        return 0;
    }
    match NonNull::new(ptr) {
        // SAFETY: the caller promises a live block of this heap.
        Some(block) => unsafe { HEAP.usable_size(block) },
        None => 0,
    }
}

/// `realloc` for a live, non-null block and a non-zero size.
///
/// The block stays where it is when the new size still fits it and would not waste more than
/// three quarters of it (so shrinking a large block to a few bytes does give memory back);
/// otherwise a new block is allocated, the contents copied and the old block freed. On failure
/// the old block is untouched and NULL is returned with `errno = ENOMEM`.
///
/// `OBSERVED`: the old block is freed through the primary word (where a diverted heap's
/// observer hears of it); false for `realloc` while diverted, which records itself.
///
/// # Safety
/// `ptr` is a live block from this heap; `new_size > 0`.
pub unsafe fn reallocate<const OBSERVED: bool>(ptr: NonNull<u8>, new_size: usize) -> *mut u8 {
    #[cfg(feature = "hardened")]
    if crate::zero_size::contains(ptr.as_ptr()) {
        // Nothing to copy; the zero-size block needs no freeing.
        return allocate(new_size, MAX_ALIGN_BYTES, false);
    }
    // SAFETY: forwarded from the caller.
    let usable = unsafe { HEAP.usable_size(ptr) };
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller. Checked before the block stays in place (a move frees
    // it, which checks again).
    unsafe {
        crate::family::check_in_place(ptr)
    };
    if new_size <= usable && new_size > usable / 4 {
        return ptr.as_ptr();
    }
    let fresh = allocate(new_size, MAX_ALIGN_BYTES, false);
    if fresh.is_null() {
        return fresh;
    }
    // SAFETY: both blocks are live and distinct; `min(usable, new_size)` bytes are readable in
    // the old and writable in the new one.
    unsafe {
        ptr::copy_nonoverlapping(ptr.as_ptr(), fresh, usable.min(new_size));
        if OBSERVED {
            HEAP.deallocate_unsized_primary(ptr);
        } else {
            HEAP.deallocate_unsized(ptr);
        }
    }
    fresh
}
