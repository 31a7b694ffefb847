//! `MmapPages`: anonymous private mappings from the kernel.
//!
//! `mmap` returns memory aligned to a page only. For larger alignments (slab chunks that are
//! found by masking a pointer need them) the source over-maps `len + align - page` bytes and
//! unmaps the misaligned head and the unused tail, the technique jemalloc and mimalloc use.

use crate::args::check_map_args;
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
