//! `StaticPages`: a `const` page source over a `static` buffer, so that an allocator built on
//! it can be the `#[global_allocator]` of a program with no OS underneath (talc's main use).
//!
//! ```text
//!   static ARENA: StaticBuffer<N>   ── the bytes (in .bss: zero, page-aligned) + a claim flag
//!          ▲ &'static, taken in a const initializer
//!   StaticPages::new(&ARENA)         ── const: records the address, touches nothing
//!          │ first map / extend / unmap: claims ARENA, builds a BufferPages over it
//!          ▼
//!   BufferPages<'static>             ── the bitmap of pages, as for any caller's buffer
//! ```
//!
//! The split of a buffer into bitmap and pages depends on the buffer's address, which a
//! `const` initializer cannot look at; so the source records the buffer and does the split on
//! its first use, under a lock. The buffer is claimed then, once: a second source over the same
//! buffer fails every `map` instead of handing out pages the first one owns.

use crate::buffer::{BufferPages, DEFAULT_PAGE_BYTES};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use heapkit_core::{AllocError, PageSource, SpinLock};

/// The storage of a [`StaticPages`]: `N` bytes, page-aligned, zero until used. Put it in a
/// `static` (it goes to `.bss`, so a large one costs no file size) and hand it to one
/// `StaticPages`.
///
#[repr(C, align(4096))]
pub struct StaticBuffer<const N: usize> {
    bytes: UnsafeCell<[u8; N]>,
    claimed: AtomicBool,
}

// The buffer is page-aligned, so no page of it is lost to alignment.
const _: () = assert!(core::mem::align_of::<StaticBuffer<1>>() == DEFAULT_PAGE_BYTES);

// SAFETY: the bytes are reached only through the one `StaticPages` that claimed the buffer
// (the `claimed` flag is set once, atomically), which hands out disjoint runs under its lock.
unsafe impl<const N: usize> Sync for StaticBuffer<N> {}

impl<const N: usize> StaticBuffer<N> {
    /// A zeroed buffer, not yet claimed by any source.
    #[allow(clippy::new_without_default)] // a `static` needs the `const fn`; `default` cannot be
    pub const fn new() -> Self {
        StaticBuffer {
            bytes: UnsafeCell::new([0; N]),
            claimed: AtomicBool::new(false),
        }
    }

    /// The buffer's length in bytes (`N`).
    pub const fn len_bytes(&self) -> usize {
        N
    }

    /// Whether `ptr` points into the buffer.
    pub fn contains(&self, ptr: *const u8) -> bool {
        let start = self.bytes.get() as usize;
        (ptr as usize).wrapping_sub(start) < N
    }

    /// Whether a [`StaticPages`] has claimed the buffer (on its first use).
    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }
}

/// The source has not been used yet: `pages` is uninitialised.
const UNUSED: u8 = 0;
/// `pages` holds the source over the claimed buffer.
const READY: u8 = 1;
/// Another source had claimed the buffer: every `map` fails.
const REFUSED: u8 = 2;

/// A page source over a `'static` buffer with a `const` constructor: the source of a global
/// allocator with no OS (`no_std`, embedded, a kernel), as
/// `#[global_allocator] static A: GlobalAdapter<LockedBins<StaticPages>> = ...`.
///
/// Pages are 4 KiB; the first pages of the buffer hold the bitmap (one bit per page, as in
/// [`BufferPages`]). `map` fails cleanly (`AllocError`) when the buffer is exhausted.
///
/// ```
/// use heapkit_pages::{PageSource, StaticBuffer, StaticPages};
///
/// static ARENA: StaticBuffer<{ 64 * 1024 }> = StaticBuffer::new();
/// // A `static` allocator holds its source the same way, e.g. (heapkit-bins):
/// // #[global_allocator]
/// // static HEAP: GlobalAdapter<LockedBins<StaticPages>> =
/// //     GlobalAdapter::new(LockedBins::new(StaticPages::new(&ARENA)));
/// static PAGES: StaticPages = StaticPages::new(&ARENA);
///
/// let run = PAGES.map(4096, 4096).unwrap();
/// assert!(ARENA.contains(run.as_ptr()) && ARENA.is_claimed());
/// assert!(PAGES.map(1 << 20, 4096).is_err(), "more than the buffer: an error, not a panic");
/// let second = StaticPages::new(&ARENA);
/// assert!(second.map(4096, 4096).is_err(), "the buffer is claimed by PAGES");
/// ```
pub struct StaticPages {
    start: NonNull<u8>,
    len_bytes: usize,
    claimed: &'static AtomicBool,
    state: AtomicU8,
    init_lock: SpinLock,
    pages: UnsafeCell<MaybeUninit<BufferPages<'static>>>,
}

// SAFETY: `pages` is written once, under `init_lock`, before `state` is published as READY
// with a release store; it is read only after an acquire load saw READY. `BufferPages` itself
// is `Send + Sync`, and the buffer is `'static` and claimed by this source alone.
unsafe impl Send for StaticPages {}
// SAFETY: as above.
unsafe impl Sync for StaticPages {}
static_assertions::assert_impl_all!(StaticPages: Send, Sync);
static_assertions::assert_impl_all!(StaticBuffer<4096>: Sync);

impl core::fmt::Debug for StaticPages {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticPages")
            .field("start", &self.start)
            .field("len_bytes", &self.len_bytes)
            .field("mapped_bytes", &self.mapped_bytes())
            .finish()
    }
}

impl StaticPages {
    /// A source over `buffer`, `const` so that a `static` allocator can hold it. Nothing is
    /// touched until the first `map`, which claims the buffer.
    pub const fn new<const N: usize>(buffer: &'static StaticBuffer<N>) -> Self {
        StaticPages {
            // SAFETY: `UnsafeCell::get` of a reference is never null.
            start: unsafe { NonNull::new_unchecked(buffer.bytes.get().cast::<u8>()) },
            len_bytes: N,
            claimed: &buffer.claimed,
            state: AtomicU8::new(UNUSED),
            init_lock: SpinLock::new(),
            pages: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The source over the buffer, set up on the first call; `None` when another source owns
    /// the buffer.
    #[inline]
    fn pages(&self) -> Option<&BufferPages<'static>> {
        if self.state.load(Ordering::Acquire) != READY {
            self.set_up();
        }
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        // SAFETY: READY was published (release) after `pages` was written, and it is never
        // written again.
        Some(unsafe { (*self.pages.get()).assume_init_ref() })
    }

    #[cold]
    fn set_up(&self) {
        self.init_lock.lock();
        if self.state.load(Ordering::Relaxed) == UNUSED {
            let state = if self.claimed.swap(true, Ordering::AcqRel) {
                REFUSED
            } else {
                // SAFETY: the buffer is `'static`, and claiming it (just above) made it this
                // source's alone.
                match unsafe {
                    BufferPages::from_raw_parts(self.start, self.len_bytes, DEFAULT_PAGE_BYTES)
                } {
                    Ok(pages) => {
                        // SAFETY: under `init_lock` and before READY: nobody reads `pages`.
                        unsafe { (*self.pages.get()).write(pages) };
                        READY
                    }
                    Err(AllocError) => REFUSED,
                }
            };
            self.state.store(state, Ordering::Release);
        }
        // SAFETY: taken at the top of this function.
        unsafe { self.init_lock.unlock() };
    }

    /// Number of pages the source can hand out (0 before its first use, or when refused).
    pub fn capacity_pages(&self) -> usize {
        match self.state.load(Ordering::Acquire) {
            READY => self.pages().map_or(0, BufferPages::capacity_pages),
            _ => 0,
        }
    }
}

// SAFETY: every call is forwarded to the `BufferPages` over the claimed buffer, which keeps
// the contract; before the set-up nothing was handed out, and a refused source hands out
// nothing.
unsafe impl PageSource for StaticPages {
    fn page_size(&self) -> usize {
        DEFAULT_PAGE_BYTES
    }

    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        self.pages().ok_or(AllocError)?.map(len_bytes, align_bytes)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        if let Some(pages) = self.pages() {
            // SAFETY: forwarded from the caller: a run this source (so `pages`) handed out.
            unsafe { pages.unmap(ptr, len_bytes) }
        }
    }

    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        self.pages().ok_or(AllocError)?.extend(end, extra_bytes)
    }

    fn mapped_bytes(&self) -> usize {
        match self.state.load(Ordering::Acquire) {
            READY => self.pages().map_or(0, BufferPages::mapped_bytes),
            _ => 0,
        }
    }
}
