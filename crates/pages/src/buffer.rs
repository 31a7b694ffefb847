//! `BufferPages`: page runs carved from a caller's buffer, with no OS underneath.
//!
//! ```text
//!   caller's buffer
//!   ┌──────┬───────────────┬────┬────┬────┬────┬────┬─────────┐
//!   │ pad  │ bitmap pages  │ p0 │ p1 │ p2 │ p3 │ …  │ unused  │
//!   └──────┴───────────────┴────┴────┴────┴────┴────┴─────────┘
//!          one bit per page: 1 = in a live run
//! ```
//!
//! The bitmap lives inside the buffer, so the source needs no other memory: it works in
//! `no_std` programs, on embedded targets, and under Miri, which cannot run `mmap`. Runs are
//! found first-fit; pages after a run can be claimed by `extend`, so contiguous allocators (the
//! boundary-tag heap) can grow here as they would at the program break.

use crate::args::{check_extend_args, check_map_args};
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use heapkit_core::{align_up, is_power_of_two, AllocError, PageSource, SpinLock};

const BITS_PER_WORD: usize = u64::BITS as usize;
/// The default page size, the x86-64 one.
pub const DEFAULT_PAGE_BYTES: usize = 4096;
/// The smallest page size a buffer may use: small pages let Miri tests run on small buffers.
pub const MIN_PAGE_BYTES: usize = 64;

/// Page runs carved from a caller's buffer: no OS, no allocation, `no_std`-ready.
///
/// ```
/// use heapkit_pages::{BufferPages, PageSource};
/// let mut buffer = vec![0u8; 64 * 1024];
/// let pages = BufferPages::new(&mut buffer);
/// let run = pages.map(2 * 4096, 8192).unwrap();
/// assert_eq!(run.as_ptr() as usize % 8192, 0);
/// unsafe { pages.unmap(run, 2 * 4096) };
/// assert_eq!(pages.mapped_bytes(), 0);
/// ```
pub struct BufferPages<'buf> {
    /// The first usable page (after the bitmap).
    base: NonNull<u8>,
    page_count: usize,
    page_bytes: usize,
    /// One bit per usable page, stored in the buffer's first pages. Guarded by `lock`.
    bitmap: NonNull<u64>,
    lock: SpinLock,
    mapped_bytes: AtomicUsize,
    #[cfg(feature = "std")]
    owned: Option<(NonNull<u8>, core::alloc::Layout)>,
    _buffer: PhantomData<&'buf mut [u8]>,
    _bitmap_cell: PhantomData<UnsafeCell<u64>>,
}

// SAFETY: the source owns (or exclusively borrows) its buffer; all shared state is the bitmap,
// which is only touched with `lock` held, and an atomic counter.
unsafe impl Send for BufferPages<'_> {}
// SAFETY: as above; every `&self` method that touches the bitmap takes the lock.
unsafe impl Sync for BufferPages<'_> {}

impl core::fmt::Debug for BufferPages<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BufferPages")
            .field("base", &self.base)
            .field("page_count", &self.page_count)
            .field("page_bytes", &self.page_bytes)
            .field("mapped_bytes", &self.mapped_bytes())
            .finish()
    }
}

/// How a buffer is split: where the bitmap and the usable pages go.
struct Split {
    bitmap_addr: usize,
    base_addr: usize,
    page_count: usize,
}

fn split(start: usize, len_bytes: usize, page_bytes: usize) -> Split {
    let end = start.saturating_add(len_bytes);
    let first_page = align_up(start, page_bytes).unwrap_or(end).min(end);
    let total_pages = (end - first_page) / page_bytes;
    let bitmap_bytes = total_pages.div_ceil(BITS_PER_WORD) * core::mem::size_of::<u64>();
    let bitmap_pages = bitmap_bytes.div_ceil(page_bytes);
    let page_count = total_pages.saturating_sub(bitmap_pages);
    Split {
        bitmap_addr: first_page,
        base_addr: first_page + bitmap_pages * page_bytes,
        page_count,
    }
}

impl<'buf> BufferPages<'buf> {
    /// Carves 4 KiB pages from `buffer`. A buffer too small for any page gives a source whose
    /// every `map` fails.
    pub fn new(buffer: &'buf mut [u8]) -> Self {
        Self::with_page_size(buffer, DEFAULT_PAGE_BYTES).unwrap_or_else(|_| unreachable!())
    }

    /// Carves pages of `page_bytes` (a power of two, at least [`MIN_PAGE_BYTES`]) from `buffer`.
    pub fn with_page_size(buffer: &'buf mut [u8], page_bytes: usize) -> Result<Self, AllocError> {
        let len_bytes = buffer.len();
        let start = NonNull::from(buffer).cast::<u8>();
        // SAFETY: `start..start + len_bytes` is the caller's buffer, borrowed exclusively for 'buf.
        unsafe { Self::from_raw_parts(start, len_bytes, page_bytes) }
    }

    /// Carves pages from raw memory.
    ///
    /// # Safety
    /// `start..start + len_bytes` is valid for reads and writes, used by nothing else, for as
    /// long as the source (and any run it handed out) lives.
    pub unsafe fn from_raw_parts(
        start: NonNull<u8>,
        len_bytes: usize,
        page_bytes: usize,
    ) -> Result<Self, AllocError> {
        if !is_power_of_two(page_bytes) || page_bytes < MIN_PAGE_BYTES {
            return Err(AllocError);
        }
        let at = split(start.as_ptr() as usize, len_bytes, page_bytes);
        let offset = |addr: usize| addr - start.as_ptr() as usize;
        // SAFETY: both addresses lie inside the buffer (or at its end when it has no pages), and
        // are derived from `start` so they keep its provenance.
        let (bitmap, base) = unsafe {
            (
                NonNull::new_unchecked(start.as_ptr().add(offset(at.bitmap_addr))).cast::<u64>(),
                NonNull::new_unchecked(start.as_ptr().add(offset(at.base_addr))),
            )
        };
        let words = at.page_count.div_ceil(BITS_PER_WORD);
        if words > 0 {
            // SAFETY: the bitmap area holds at least `words` words (see `split`), is 8-aligned
            // (it starts on a page), and belongs to the buffer.
            unsafe { core::ptr::write_bytes(bitmap.as_ptr(), 0, words) };
        }
        Ok(BufferPages {
            base,
            page_count: at.page_count,
            page_bytes,
            bitmap,
            lock: SpinLock::new(),
            mapped_bytes: AtomicUsize::new(0),
            #[cfg(feature = "std")]
            owned: None,
            _buffer: PhantomData,
            _bitmap_cell: PhantomData,
        })
    }

    /// Number of pages the source can hand out (the bitmap's own pages excluded).
    pub fn capacity_pages(&self) -> usize {
        self.page_count
    }

    /// Whether `ptr` lies in the pages this source hands out.
    pub fn contains(&self, ptr: *const u8) -> bool {
        let addr = ptr as usize;
        let base = self.base.as_ptr() as usize;
        addr >= base && addr - base < self.page_count * self.page_bytes
    }

    fn word(&self, index: usize) -> *mut u64 {
        debug_assert!(index < self.page_count.div_ceil(BITS_PER_WORD));
        // SAFETY: `index` is within the bitmap (asserted above; callers derive it from a page
        // index below `page_count`).
        unsafe { self.bitmap.as_ptr().add(index) }
    }

    /// # Safety
    /// The lock is held and `page < page_count`.
    unsafe fn is_used(&self, page: usize) -> bool {
        // SAFETY: the caller holds the lock, so nobody writes the word concurrently.
        unsafe { *self.word(page / BITS_PER_WORD) >> (page % BITS_PER_WORD) & 1 == 1 }
    }

    /// # Safety
    /// The lock is held and `first + count <= page_count`.
    unsafe fn set_range(&self, first: usize, count: usize, used: bool) {
        for page in first..first + count {
            let word = self.word(page / BITS_PER_WORD);
            let bit = 1u64 << (page % BITS_PER_WORD);
            // SAFETY: the caller holds the lock.
            unsafe {
                debug_assert_eq!(
                    *word & bit != 0,
                    !used,
                    "page {page} already in the wanted state"
                );
                if used {
                    *word |= bit;
                } else {
                    *word &= !bit;
                }
            }
        }
    }

    /// The first used page in `first..first + count`, if any.
    ///
    /// # Safety
    /// The lock is held and `first + count <= page_count`.
    unsafe fn first_used(&self, first: usize, count: usize) -> Option<usize> {
        // SAFETY: forwarded from the caller.
        (first..first + count).find(|&page| unsafe { self.is_used(page) })
    }

    fn page_index(&self, ptr: NonNull<u8>) -> usize {
        (ptr.as_ptr() as usize - self.base.as_ptr() as usize) / self.page_bytes
    }

    fn page_ptr(&self, page: usize) -> NonNull<u8> {
        debug_assert!(page <= self.page_count);
        // SAFETY: `page <= page_count`, so the address is inside the buffer or one past it.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(page * self.page_bytes)) }
    }

    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        self.lock.lock();
        let result = f();
        // SAFETY: taken just above; `f` cannot unwind out in the allocation paths (they never
        // panic) and a panic in a debug assertion aborts the test anyway.
        unsafe { self.lock.unlock() };
        result
    }
}

#[cfg(feature = "std")]
impl BufferPages<'static> {
    /// A source over a fresh buffer of `len_bytes` it owns and frees on drop (taken from the
    /// system allocator, page-aligned). Handy for tests and Miri.
    pub fn owned(len_bytes: usize, page_bytes: usize) -> Result<Self, AllocError> {
        let layout =
            core::alloc::Layout::from_size_align(len_bytes.max(1), page_bytes.max(MIN_PAGE_BYTES))
                .map_err(|_| AllocError)?;
        // SAFETY: the layout has a non-zero size.
        let raw = NonNull::new(unsafe { std::alloc::alloc(layout) }).ok_or(AllocError)?;
        // SAFETY: the fresh allocation is ours alone until `drop` frees it.
        match unsafe { Self::from_raw_parts(raw, len_bytes, page_bytes) } {
            Ok(mut pages) => {
                pages.owned = Some((raw, layout));
                Ok(pages)
            }
            Err(e) => {
                // SAFETY: allocated just above with this layout.
                unsafe { std::alloc::dealloc(raw.as_ptr(), layout) };
                Err(e)
            }
        }
    }
}

#[cfg(feature = "std")]
impl Drop for BufferPages<'_> {
    fn drop(&mut self) {
        if let Some((raw, layout)) = self.owned.take() {
            // SAFETY: allocated in `owned` with this layout; runs handed out cannot outlive the
            // source (they borrow nothing, but the allocators that hold them own the source).
            unsafe { std::alloc::dealloc(raw.as_ptr(), layout) };
        }
    }
}

// SAFETY: a run is a range of pages whose bits were all clear and are set while it lives, so
// runs are disjoint; they lie in the buffer, which the source borrows or owns for its lifetime.
unsafe impl PageSource for BufferPages<'_> {
    fn page_size(&self) -> usize {
        self.page_bytes
    }

    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        let align_bytes = check_map_args(self.page_bytes, len_bytes, align_bytes)?;
        let want_pages = len_bytes / self.page_bytes;
        if want_pages > self.page_count {
            return Err(AllocError);
        }
        let base_addr = self.base.as_ptr() as usize;
        let first_aligned = match align_up(base_addr, align_bytes) {
            Some(addr) => (addr - base_addr) / self.page_bytes,
            None => return Err(AllocError),
        };
        let step_pages = align_bytes / self.page_bytes;
        let found = self.locked(|| {
            let mut page = first_aligned;
            while page + want_pages <= self.page_count {
                // SAFETY: the lock is held and the range is in bounds (loop condition).
                match unsafe { self.first_used(page, want_pages) } {
                    None => {
                        // SAFETY: as above; the range is free.
                        unsafe { self.set_range(page, want_pages, true) };
                        return Some(page);
                    }
                    Some(used) => {
                        page = first_aligned
                            + (used - first_aligned) / step_pages * step_pages
                            + step_pages
                    }
                }
            }
            None
        });
        let page = found.ok_or(AllocError)?;
        self.mapped_bytes.fetch_add(len_bytes, Ordering::Relaxed);
        Ok(self.page_ptr(page))
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        debug_assert!(self.contains(ptr.as_ptr()) && len_bytes % self.page_bytes == 0);
        let first = self.page_index(ptr);
        let count = len_bytes / self.page_bytes;
        debug_assert!(first + count <= self.page_count);
        // SAFETY: the lock is held by `locked`; the caller promises the range is a live run.
        self.locked(|| unsafe { self.set_range(first, count, false) });
        self.mapped_bytes.fetch_sub(len_bytes, Ordering::Relaxed);
    }

    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        if !self.contains(end.as_ptr()) {
            return Err(AllocError);
        }
        let end_offset = end.as_ptr() as usize - self.base.as_ptr() as usize;
        check_extend_args(self.page_bytes, end_offset, extra_bytes)?;
        let first = self.page_index(end);
        let count = extra_bytes / self.page_bytes;
        if count > self.page_count - first {
            return Err(AllocError);
        }
        let grown = self.locked(|| {
            // SAFETY: the lock is held and the range is in bounds (checked above).
            unsafe {
                if self.first_used(first, count).is_some() {
                    return false;
                }
                self.set_range(first, count, true);
            }
            true
        });
        if !grown {
            return Err(AllocError);
        }
        self.mapped_bytes.fetch_add(extra_bytes, Ordering::Relaxed);
        Ok(())
    }

    fn mapped_bytes(&self) -> usize {
        self.mapped_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn runs_are_aligned_disjoint_and_reusable() {
        let pages = BufferPages::owned(64 * 1024, 256).unwrap();
        let a = pages.map(1024, 1024).unwrap();
        let b = pages.map(256, 256).unwrap();
        assert_eq!(a.as_ptr() as usize % 1024, 0);
        assert_ne!(a, b);
        // SAFETY: both are live runs of ours.
        unsafe {
            a.as_ptr().write_bytes(1, 1024);
            b.as_ptr().write_bytes(2, 256);
            pages.unmap(a, 1024);
        }
        let c = pages.map(1024, 1024).unwrap();
        assert_eq!(a, c, "first fit reuses the freed run");
        assert_eq!(pages.mapped_bytes(), 1024 + 256);
    }

    #[test]
    fn extend_grows_into_free_pages_only() {
        let pages = BufferPages::owned(16 * 4096, 4096).unwrap();
        let a = pages.map(4096, 4096).unwrap();
        // SAFETY: the end of a live run.
        let end = unsafe { NonNull::new_unchecked(a.as_ptr().add(4096)) };
        pages.extend(end, 4096).unwrap();
        let b = pages.map(4096, 4096).unwrap();
        assert_eq!(b.as_ptr() as usize, a.as_ptr() as usize + 8192);
        // SAFETY: the end of the grown run.
        let end = unsafe { NonNull::new_unchecked(a.as_ptr().add(8192)) };
        assert!(pages.extend(end, 4096).is_err(), "the next page is in use");
    }

    #[test]
    fn bad_input_and_exhaustion_are_errors() {
        assert!(BufferPages::owned(4096, 100).is_err());
        let mut tiny = [0u8; 10];
        let none = BufferPages::new(&mut tiny);
        assert_eq!(none.capacity_pages(), 0);
        assert!(none.map(4096, 4096).is_err());
        let pages = BufferPages::owned(8 * 4096, 4096).unwrap();
        assert!(pages.map(0, 4096).is_err());
        assert!(pages.map(4097, 4096).is_err());
        assert!(pages.map(4096, 12288).is_err());
        assert!(pages.map(64 * 4096, 4096).is_err());
        let all = pages.capacity_pages() * 4096;
        let run = pages.map(all, 4096).unwrap();
        assert!(pages.map(4096, 4096).is_err(), "exhausted");
        // SAFETY: a live run.
        unsafe { pages.unmap(run, all) };
        assert!(pages.map(4096, 4096).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 64 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn random_map_unmap_never_overlaps(ops in proptest::collection::vec((1usize..6, 0u32..4, any::<bool>()), 1..80)) {
            let pages = BufferPages::owned(128 * 256, 256).unwrap();
            let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
            for (n, align_shift, free_one) in ops {
                if free_one && !live.is_empty() {
                    let (run, len) = live.swap_remove(0);
                    // SAFETY: a live run of ours.
                    unsafe { pages.unmap(run, len) };
                    continue;
                }
                let len = n * 256;
                let align = 256usize << align_shift;
                if let Ok(run) = pages.map(len, align) {
                    let addr = run.as_ptr() as usize;
                    prop_assert_eq!(addr % align, 0);
                    for &(other, other_len) in &live {
                        let other = other.as_ptr() as usize;
                        prop_assert!(addr + len <= other || other + other_len <= addr);
                    }
                    live.push((run, len));
                }
            }
            let total: usize = live.iter().map(|l| l.1).sum();
            prop_assert_eq!(pages.mapped_bytes(), total);
        }
    }
}
