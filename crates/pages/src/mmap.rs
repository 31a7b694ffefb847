//! `MmapPages`: anonymous private mappings from the kernel.
//!
//! `mmap` returns memory aligned to a page only. For larger alignments (slab chunks that are
//! found by masking a pointer need them) the source over-maps `len + align - page` bytes and
//! unmaps the misaligned head and the unused tail, the technique jemalloc and mimalloc use.

use crate::args::{check_map_args, max_run_bytes};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use heapkit_core::{AllocError, PageSource};

/// How purged pages are given back to the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PurgeMode {
    /// `MADV_DONTNEED`: RSS drops at once; the next touch faults in a zero page. What mimalloc
    /// does by default, and what makes "RSS fell after free" observable.
    DontNeed = 0,
    /// `MADV_FREE`: the kernel reclaims the pages lazily under memory pressure; cheaper when the
    /// pages are reused soon, but RSS does not drop until the kernel needs the memory.
    Free = 1,
    /// Do not purge at all (purge becomes a no-op).
    Never = 2,
}

/// The OS page size, read once with `sysconf(_SC_PAGESIZE)` and cached.
pub fn os_page_size() -> usize {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    let cached = CACHED.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let queried = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page_bytes = if queried > 0 && (queried as usize).is_power_of_two() {
        queried as usize
    } else {
        4096
    };
    CACHED.store(page_bytes, Ordering::Relaxed);
    page_bytes
}

/// Checks a `remap` request: a page-aligned run, both lengths non-zero page multiples that
/// fit in an object.
fn check_remap_args(
    page_bytes: usize,
    run_addr: usize,
    old_len_bytes: usize,
    new_len_bytes: usize,
) -> Result<(), AllocError> {
    debug_assert!(page_bytes.is_power_of_two());
    let max_bytes = max_run_bytes(page_bytes);
    let bad_len = |len: usize| len == 0 || len % page_bytes != 0 || len > max_bytes;
    if run_addr % page_bytes != 0 || bad_len(old_len_bytes) || bad_len(new_len_bytes) {
        return Err(AllocError);
    }
    if run_addr.checked_add(old_len_bytes).is_none() {
        return Err(AllocError);
    }
    Ok(())
}

/// Page runs from anonymous `mmap`; `unmap` is `munmap` and `purge` is `madvise`.
///
/// Any number of `MmapPages` may exist; each counts only the bytes it mapped itself. The
/// constructor is `const`, so a `static` allocator can own one.
///
/// ```
/// use heapkit_pages::{MmapPages, PageSource};
/// # // Miri's mmap shim cannot unmap part of a mapping, which over-map-and-trim needs.
/// # #[cfg(not(miri))] {
/// let pages = MmapPages::new();
/// let run = pages.map(1 << 20, 1 << 20).unwrap(); // 1 MiB aligned to 1 MiB
/// assert_eq!(run.as_ptr() as usize % (1 << 20), 0);
/// unsafe { run.as_ptr().write(7) };
/// unsafe { pages.unmap(run, 1 << 20) };
/// assert_eq!(pages.mapped_bytes(), 0);
/// # }
/// ```
#[derive(Debug)]
pub struct MmapPages {
    mapped_bytes: AtomicUsize,
    purge_mode: AtomicU8,
    huge_pages: core::sync::atomic::AtomicBool,
}

impl Default for MmapPages {
    fn default() -> Self {
        Self::new()
    }
}

impl MmapPages {
    /// A source that purges with `MADV_DONTNEED` and gives no huge-page advice.
    pub const fn new() -> Self {
        MmapPages {
            mapped_bytes: AtomicUsize::new(0),
            purge_mode: AtomicU8::new(PurgeMode::DontNeed as u8),
            huge_pages: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Chooses how `purge` gives pages back.
    pub fn set_purge_mode(&self, mode: PurgeMode) {
        self.purge_mode.store(mode as u8, Ordering::Relaxed);
    }

    /// The current purge mode.
    pub fn purge_mode(&self) -> PurgeMode {
        match self.purge_mode.load(Ordering::Relaxed) {
            0 => PurgeMode::DontNeed,
            1 => PurgeMode::Free,
            _ => PurgeMode::Never,
        }
    }

    /// Asks the kernel to back runs of 2 MiB or more with transparent huge pages
    /// (`MADV_HUGEPAGE`). Fewer TLB misses for big heaps, more memory per touched page.
    pub fn set_huge_pages(&self, enabled: bool) {
        self.huge_pages.store(enabled, Ordering::Relaxed);
    }

    fn raw_map(len_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
        // existing memory.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(AllocError);
        }
        NonNull::new(addr.cast::<u8>()).ok_or(AllocError)
    }

    /// Resizes a mapping, letting the kernel move it. On failure the old mapping is intact.
    ///
    /// # Safety
    /// `ptr..ptr + old_len_bytes` is one whole live run of this source, page-aligned, with no
    /// reference into it held across the call.
    #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
    unsafe fn raw_remap(
        ptr: *mut u8,
        old_len_bytes: usize,
        new_len_bytes: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller; MREMAP_MAYMOVE lets the kernel pick a new address
        // that it guarantees disjoint from every other mapping, and on failure it changes
        // nothing.
        let addr = unsafe {
            libc::mremap(
                ptr.cast(),
                old_len_bytes,
                new_len_bytes,
                libc::MREMAP_MAYMOVE,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(AllocError);
        }
        NonNull::new(addr.cast::<u8>()).ok_or(AllocError)
    }

    /// No `mremap` here (or Miri, whose mmap shim has none): callers map, copy and unmap.
    ///
    /// # Safety
    /// None needed; the signature matches the Linux version.
    #[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
    unsafe fn raw_remap(
        ptr: *mut u8,
        old_len_bytes: usize,
        new_len_bytes: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let _ = (ptr, old_len_bytes, new_len_bytes);
        Err(AllocError)
    }

    /// Moves the pages of `from` onto `to` (`MREMAP_FIXED` replaces the destination's pages).
    ///
    /// # Safety
    /// As `PageSource::move_pages`.
    #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
    unsafe fn raw_move(from: *mut u8, to: *mut u8, len_bytes: usize) -> Result<(), AllocError> {
        // SAFETY: forwarded from the caller; on failure the kernel changes nothing.
        let addr = unsafe {
            libc::mremap(
                from.cast(),
                len_bytes,
                len_bytes,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                to.cast::<libc::c_void>(),
            )
        };
        if addr == libc::MAP_FAILED || addr.cast::<u8>() != to {
            return Err(AllocError);
        }
        Ok(())
    }

    /// No `mremap` here (or Miri): moves are refused.
    ///
    /// # Safety
    /// None needed; the signature matches the Linux version.
    #[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
    unsafe fn raw_move(from: *mut u8, to: *mut u8, len_bytes: usize) -> Result<(), AllocError> {
        let _ = (from, to, len_bytes);
        Err(AllocError)
    }

    /// # Safety
    /// The range is page-aligned, mapped by this source, and unused.
    unsafe fn raw_unmap(ptr: *mut u8, len_bytes: usize) {
        if len_bytes == 0 {
            return;
        }
        // SAFETY: forwarded from the caller. munmap of a valid range cannot fail except for
        // bad arguments, which the caller excludes; a failure would only leak address space.
        let result = unsafe { libc::munmap(ptr.cast(), len_bytes) };
        debug_assert_eq!(result, 0, "munmap failed");
    }
}

// SAFETY: runs come from fresh anonymous mappings the kernel guarantees disjoint from all other
// mappings; they stay valid until `munmap`, which only `unmap` calls.
unsafe impl PageSource for MmapPages {
    #[inline]
    fn page_size(&self) -> usize {
        os_page_size()
    }

    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        let page_bytes = os_page_size();
        let align_bytes = check_map_args(page_bytes, len_bytes, align_bytes)?;
        let run = if align_bytes == page_bytes {
            Self::raw_map(len_bytes)?
        } else {
            let padded_bytes = len_bytes
                .checked_add(align_bytes - page_bytes)
                .ok_or(AllocError)?;
            let raw = Self::raw_map(padded_bytes)?;
            let raw_addr = raw.as_ptr() as usize;
            let head_bytes = raw_addr.next_multiple_of(align_bytes) - raw_addr;
            let tail_bytes = padded_bytes - head_bytes - len_bytes;
            // SAFETY: head and tail are page-aligned pieces of the mapping just made, outside
            // the run handed out.
            unsafe {
                Self::raw_unmap(raw.as_ptr(), head_bytes);
                Self::raw_unmap(raw.as_ptr().add(head_bytes + len_bytes), tail_bytes);
                NonNull::new_unchecked(raw.as_ptr().add(head_bytes))
            }
        };
        if self.huge_pages.load(Ordering::Relaxed) && len_bytes >= 2 << 20 {
            // SAFETY: advice on our own fresh mapping; failure (no THP support) is harmless.
            unsafe { libc::madvise(run.as_ptr().cast(), len_bytes, libc::MADV_HUGEPAGE) };
        }
        self.mapped_bytes.fetch_add(len_bytes, Ordering::Relaxed);
        Ok(run)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        debug_assert!(ptr.as_ptr() as usize % os_page_size() == 0);
        // SAFETY: forwarded from the caller.
        unsafe { Self::raw_unmap(ptr.as_ptr(), len_bytes) };
        self.mapped_bytes.fetch_sub(len_bytes, Ordering::Relaxed);
    }

    /// `mremap(MREMAP_MAYMOVE)` on Linux (the kernel moves page table entries, not bytes);
    /// refused elsewhere and under Miri, whose mmap shim has no `mremap`. A moved run is
    /// page-aligned only, as the trait says: the over-map-and-trim alignment of `map` is not
    /// kept.
    unsafe fn remap(
        &self,
        ptr: NonNull<u8>,
        old_len_bytes: usize,
        new_len_bytes: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let page_bytes = os_page_size();
        check_remap_args(
            page_bytes,
            ptr.as_ptr() as usize,
            old_len_bytes,
            new_len_bytes,
        )?;
        if old_len_bytes == new_len_bytes {
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller: the range is exactly one live run of ours.
        let run = unsafe { Self::raw_remap(ptr.as_ptr(), old_len_bytes, new_len_bytes)? };
        if new_len_bytes > old_len_bytes {
            self.mapped_bytes
                .fetch_add(new_len_bytes - old_len_bytes, Ordering::Relaxed);
            if self.huge_pages.load(Ordering::Relaxed) && new_len_bytes >= 2 << 20 {
                // SAFETY: advice on our own live run; failure (no THP support) is harmless.
                unsafe { libc::madvise(run.as_ptr().cast(), new_len_bytes, libc::MADV_HUGEPAGE) };
            }
        } else {
            self.mapped_bytes
                .fetch_sub(old_len_bytes - new_len_bytes, Ordering::Relaxed);
        }
        Ok(run)
    }

    /// `mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to)` on Linux: page table
    /// entries move, no byte is copied and no page faults in. The kernel refuses a source range
    /// that spans two mappings (`EFAULT`), which this reports as `AllocError`. Refused
    /// elsewhere and under Miri.
    unsafe fn move_pages(
        &self,
        from: NonNull<u8>,
        to: NonNull<u8>,
        len_bytes: usize,
    ) -> Result<(), AllocError> {
        let page_bytes = os_page_size();
        let (from_addr, to_addr) = (from.as_ptr() as usize, to.as_ptr() as usize);
        if len_bytes == 0 || (from_addr | to_addr | len_bytes) % page_bytes != 0 {
            return Err(AllocError);
        }
        // SAFETY: forwarded from the caller: both ranges lie in live runs of ours, disjoint,
        // and neither's old contents are needed beyond the move.
        unsafe { Self::raw_move(from.as_ptr(), to.as_ptr(), len_bytes)? };
        self.mapped_bytes.fetch_sub(len_bytes, Ordering::Relaxed);
        Ok(())
    }

    unsafe fn purge(&self, ptr: NonNull<u8>, len_bytes: usize) {
        let advice = match self.purge_mode() {
            PurgeMode::DontNeed => libc::MADV_DONTNEED,
            PurgeMode::Free => libc::MADV_FREE,
            PurgeMode::Never => return,
        };
        // SAFETY: the caller promises a page-aligned range inside a live run whose contents are
        // no longer needed; madvise on it only drops physical pages.
        unsafe { libc::madvise(ptr.as_ptr().cast(), len_bytes, advice) };
    }

    unsafe fn protect(
        &self,
        ptr: NonNull<u8>,
        len_bytes: usize,
        accessible: bool,
    ) -> Result<(), AllocError> {
        let page_bytes = self.page_size();
        if ptr.as_ptr() as usize % page_bytes != 0 || len_bytes % page_bytes != 0 {
            return Err(AllocError);
        }
        let access = if accessible {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_NONE
        };
        // SAFETY: the caller promises a page-aligned range inside a live run of ours with
        // nothing in use when it becomes inaccessible; mprotect changes only its permissions.
        let result = unsafe { libc::mprotect(ptr.as_ptr().cast(), len_bytes, access) };
        if result == 0 {
            Ok(())
        } else {
            Err(AllocError)
        }
    }

    fn maps_zeroed(&self) -> bool {
        true
    }

    fn mapped_bytes(&self) -> usize {
        self.mapped_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn aligned_runs_are_aligned_and_writable() {
        let pages = MmapPages::new();
        for shift in [12u32, 16, 20, 22] {
            let align = 1usize << shift;
            let run = pages.map(3 * 4096, align).unwrap();
            assert_eq!(run.as_ptr() as usize % align, 0);
            // SAFETY: the run is 3 pages long and ours.
            unsafe {
                ptr::write_bytes(run.as_ptr(), 0xAB, 3 * 4096);
                pages.unmap(run, 3 * 4096);
            }
        }
        assert_eq!(pages.mapped_bytes(), 0);
    }

    #[test]
    fn fresh_runs_read_zero_and_purge_zeroes() {
        let pages = MmapPages::new();
        let len = 16 * os_page_size();
        let run = pages.map(len, 1).unwrap();
        // SAFETY: the run is ours and `len` long.
        let bytes = unsafe { core::slice::from_raw_parts_mut(run.as_ptr(), len) };
        assert!(bytes.iter().all(|&b| b == 0));
        bytes.fill(1);
        // SAFETY: the range is the whole run and its contents are no longer needed.
        unsafe { pages.purge(run, len) };
        // SAFETY: as above; after MADV_DONTNEED the pages read as zero.
        let bytes = unsafe { core::slice::from_raw_parts(run.as_ptr(), len) };
        assert!(bytes.iter().all(|&b| b == 0));
        // SAFETY: the run is ours.
        unsafe { pages.unmap(run, len) };
    }

    #[test]
    fn bad_remap_arguments_are_errors() {
        assert_eq!(check_remap_args(4096, 4096, 0, 4096), Err(AllocError));
        assert_eq!(check_remap_args(4096, 4096, 4096, 0), Err(AllocError));
        assert_eq!(check_remap_args(4096, 4096, 4096, 100), Err(AllocError));
        assert_eq!(check_remap_args(4096, 4095, 4096, 8192), Err(AllocError));
        assert_eq!(
            check_remap_args(4096, 4096, 4096, usize::MAX & !4095),
            Err(AllocError)
        );
        assert_eq!(check_remap_args(4096, 4096, 8192, 4096), Ok(()));
        assert_eq!(check_remap_args(4096, 4096, 4096, 8192), Ok(()));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn remap_grows_and_shrinks_keeping_contents_and_accounting() {
        let pages = MmapPages::new();
        let page = os_page_size();
        let run = pages.map(4 * page, 1).unwrap();
        // SAFETY: the run is ours and 4 pages long.
        unsafe { run.as_ptr().write_bytes(0x5A, 4 * page) };
        // SAFETY: the whole live run; nothing borrows it.
        let grown = unsafe { pages.remap(run, 4 * page, 64 * page) }.unwrap();
        assert_eq!(pages.mapped_bytes(), 64 * page);
        assert_eq!(grown.as_ptr() as usize % page, 0);
        // SAFETY: the grown run is 64 pages long and ours.
        let bytes = unsafe { core::slice::from_raw_parts(grown.as_ptr(), 64 * page) };
        assert!(bytes[..4 * page].iter().all(|&b| b == 0x5A));
        assert!(
            bytes[4 * page..].iter().all(|&b| b == 0),
            "growth reads as zero"
        );
        // SAFETY: as above.
        let shrunk = unsafe { pages.remap(grown, 64 * page, 2 * page) }.unwrap();
        assert_eq!(pages.mapped_bytes(), 2 * page);
        // SAFETY: the shrunk run is 2 pages long and ours.
        let bytes = unsafe { core::slice::from_raw_parts(shrunk.as_ptr(), 2 * page) };
        assert!(bytes.iter().all(|&b| b == 0x5A));
        // SAFETY: bad lengths are refused before any syscall.
        assert!(unsafe { pages.remap(shrunk, 2 * page, 100) }.is_err());
        assert_eq!(pages.mapped_bytes(), 2 * page);
        // SAFETY: the run is ours.
        unsafe { pages.unmap(shrunk, 2 * page) };
        assert_eq!(pages.mapped_bytes(), 0);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn remap_moves_a_run_whose_neighbour_is_taken() {
        let pages = MmapPages::new();
        let page = os_page_size();
        let run = pages.map(2 * page, 1).unwrap();
        // SAFETY: the run is ours and 2 pages long.
        unsafe { run.as_ptr().write_bytes(0xC3, 2 * page) };
        let next = run.as_ptr() as usize + 2 * page;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; it maps the page right
        // after the run (or fails if something is there already, which blocks growth as well).
        let blocker = unsafe {
            libc::mmap(
                next as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        let blocked_here = blocker as usize == next;
        // SAFETY: the whole live run; nothing borrows it.
        let moved = unsafe { pages.remap(run, 2 * page, 8 * page) }.unwrap();
        if blocked_here || blocker == libc::MAP_FAILED {
            assert_ne!(moved, run, "the neighbour page is taken: the run must move");
        }
        // SAFETY: the moved run is 8 pages long and ours.
        let bytes = unsafe { core::slice::from_raw_parts(moved.as_ptr(), 2 * page) };
        assert!(bytes.iter().all(|&b| b == 0xC3));
        assert_eq!(pages.mapped_bytes(), 8 * page);
        // SAFETY: the run is ours; the blocker is our own raw mapping.
        unsafe {
            pages.unmap(moved, 8 * page);
            if blocker != libc::MAP_FAILED {
                libc::munmap(blocker, page);
            }
        }
        assert_eq!(pages.mapped_bytes(), 0);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn move_pages_moves_contents_and_accounting() {
        let pages = MmapPages::new();
        let page = os_page_size();
        let from = pages.map(4 * page, 1).unwrap();
        let to = pages.map(8 * page, 1).unwrap();
        // SAFETY: both runs are ours.
        unsafe { from.as_ptr().write_bytes(0x77, 4 * page) };
        // SAFETY: disjoint live runs of ours; bad lengths are refused first.
        unsafe {
            assert!(pages.move_pages(from, to, 100).is_err());
            pages.move_pages(from, to, 4 * page).unwrap();
        }
        assert_eq!(pages.mapped_bytes(), 8 * page, "the source range is gone");
        // SAFETY: the destination run is ours, 8 pages long.
        let bytes = unsafe { core::slice::from_raw_parts(to.as_ptr(), 8 * page) };
        assert!(bytes[..4 * page].iter().all(|&b| b == 0x77));
        assert!(bytes[4 * page..].iter().all(|&b| b == 0));
        // SAFETY: the run is ours.
        unsafe { pages.unmap(to, 8 * page) };
        assert_eq!(pages.mapped_bytes(), 0);
    }

    #[test]
    fn bad_requests_are_errors_not_panics() {
        let pages = MmapPages::new();
        assert!(pages.map(0, 4096).is_err());
        assert!(pages.map(100, 4096).is_err());
        assert!(pages.map(4096, 3).is_err());
        assert!(pages.map(usize::MAX & !4095, 4096).is_err());
        assert!(pages.map(4096, 1 << 40).is_err());
        // Too large for the address space: the kernel refuses, the source reports it.
        assert!(pages.map(1 << 60, 4096).is_err());
        assert_eq!(pages.mapped_bytes(), 0);
    }
}
