//! The `PageSource` trait: where allocators get their memory.
//!
//! Studied before writing it: dlmalloc-rs's system `Allocator` (alloc / remap / free_part /
//! free, with `can_release_part`), rlsf's `FlexSource` (alloc / realloc_inplace_grow / dealloc,
//! with a minimum alignment) and talc's `Source` (a callback when the heap runs out). heapkit
//! keeps the OS vocabulary: a source *maps* page runs, *unmaps* them, *purges* their physical
//! pages, and (when its memory is contiguous, like `brk`) *extends* a run in place.

use crate::AllocError;
use core::ptr::NonNull;

/// A supplier of page runs: page-granular, page-aligned ranges of address space.
///
/// Every method takes `&self` so that allocators, which also take `&self`, can call it.
/// Sources shared between threads are `Sync` and synchronise internally.
///
/// Bad arguments (zero length, a length that is not a page multiple, an alignment that is not
/// a power of two, arithmetic overflow) make `map` and `extend` return `AllocError`; they never
/// panic and are never undefined behaviour.
///
/// # Safety
/// Implementors promise that a run returned by `map` is valid for reads and writes for its whole
/// length, aligned as asked, disjoint from every other live run of this source and from any
/// memory the source does not own, and that it stays so until it is unmapped (or the source is
/// dropped, for sources that own their memory).
pub unsafe trait PageSource {
    /// The granule of every length and the minimum alignment of every run, in bytes (a power
    /// of two).
    fn page_size(&self) -> usize;

    /// Maps a run of `len_bytes` (a non-zero multiple of [`page_size`](Self::page_size)) aligned
    /// to `align_bytes` (a power of two; values below the page size mean the page size).
    ///
    /// The run's contents are unspecified unless [`maps_zeroed`](Self::maps_zeroed) is true.
    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError>;

    /// Returns a run (or the page-aligned tail or head of one) to the source.
    ///
    /// # Safety
    /// `ptr..ptr + len_bytes` lies within one run returned by `map` (or grown by `extend`), is
    /// page-aligned at both ends, and nothing in it is used afterwards.
    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize);

    /// Gives the physical pages behind a range back to the OS but keeps the addresses mapped
    /// (`madvise(MADV_DONTNEED)` or `MADV_FREE`): the next touch faults in a page, whose
    /// contents are unspecified (zero after `MADV_DONTNEED`, the old bytes or zero after
    /// `MADV_FREE`). Page protections are kept: a guard page stays a guard page (`madvise`
    /// does not change them, and heapkit-slab's secure build relies on it). The default does
    /// nothing, which is right for sources with no OS behind them.
    ///
    /// # Safety
    /// The range lies within a live run and is page-aligned at both ends; its contents are
    /// no longer needed.
    unsafe fn purge(&self, ptr: NonNull<u8>, len_bytes: usize) {
        let _ = (ptr, len_bytes);
    }

    /// Tries to grow the run ending at `end` by `extra_bytes` in place, so that the run stays
    /// contiguous (what `brk` does and `mmap` cannot promise). The default refuses.
    ///
    /// On success the new bytes `end..end + extra_bytes` belong to the same run.
    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        let _ = (end, extra_bytes);
        Err(AllocError)
    }

    /// Resizes a whole run to `new_len_bytes`, moving it if it cannot be resized where it is
    /// (`mremap(MREMAP_MAYMOVE)`, what glibc's `mremap_chunk` uses to grow an mmapped block
    /// without copying it byte by byte). The default refuses, which every caller must handle
    /// (by mapping a new run and copying): sources with no OS behind them cannot move pages.
    ///
    /// On success the run starts at the returned address and is `new_len_bytes` long; its
    /// first `min(old_len_bytes, new_len_bytes)` bytes hold what the old run held, and the
    /// bytes past that read as zero when [`maps_zeroed`](Self::maps_zeroed) is true. The old
    /// address range may be gone (when the run moved): nothing may use it afterwards.
    /// [`mapped_bytes`](Self::mapped_bytes) changes by exactly `new_len_bytes - old_len_bytes`.
    ///
    /// Alignment: a moved run is aligned to [`page_size`](Self::page_size) only, whatever
    /// alignment `map` was asked for (the kernel's `mremap` keeps no more, and neither does
    /// glibc's `mremap_chunk`). Callers that need more must check the result or not remap.
    ///
    /// On error nothing changed: the old run is still mapped, unmoved and intact.
    ///
    /// # Safety
    /// `ptr..ptr + old_len_bytes` is exactly one live run (as returned by `map` or a previous
    /// `remap`, possibly shortened by `unmap` of its tail); both lengths are non-zero multiples
    /// of the page size (bad lengths are refused with `AllocError`, never undefined behaviour,
    /// by the sources in heapkit-pages); no reference into the run is held across the call.
    unsafe fn remap(
        &self,
        ptr: NonNull<u8>,
        old_len_bytes: usize,
        new_len_bytes: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let _ = (ptr, old_len_bytes, new_len_bytes);
        Err(AllocError)
    }

    /// Moves the pages behind `from..from + len_bytes` to `to..to + len_bytes`, contents and
    /// all, without copying bytes (`mremap(MREMAP_FIXED)` moves page table entries): what a
    /// retaining layer uses to build one contiguous run out of several resident pieces. On
    /// success the destination holds what the source held, the source range is no longer
    /// mapped (as after `unmap`: [`mapped_bytes`](Self::mapped_bytes) falls by `len_bytes`),
    /// and whatever the destination held before is gone. On error nothing changed. The default
    /// refuses; so may a source for any range it cannot move (Linux's `mremap` moves only a
    /// range inside one mapping).
    ///
    /// # Safety
    /// Both ranges are page-aligned, non-empty, disjoint, and each lies within a live run of
    /// this source; nothing in the source range is used afterwards, and nothing in the
    /// destination's old contents is needed.
    unsafe fn move_pages(
        &self,
        from: NonNull<u8>,
        to: NonNull<u8>,
        len_bytes: usize,
    ) -> Result<(), AllocError> {
        let _ = (from, to, len_bytes);
        Err(AllocError)
    }

    /// Whether fresh runs from `map` (and bytes added by `extend`) always read as zero, as
    /// anonymous `mmap` memory does. Allocators use it to skip zeroing for `calloc`.
    fn maps_zeroed(&self) -> bool {
        false
    }

    /// Maps a run as [`map`](Self::map) does and tells whether *this* run reads as zero.
    ///
    /// A source that reuses runs (`heapkit_pages::Retained`) cannot promise
    /// [`maps_zeroed`](Self::maps_zeroed) for every run, but knows for each one whether it is
    /// fresh from the OS: callers that would otherwise zero a run (`calloc`, a slab's zero
    /// masks) ask here. The default reports [`maps_zeroed`](Self::maps_zeroed).
    fn map_reporting_zero(
        &self,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        let run = self.map(len_bytes, align_bytes)?;
        Ok((run, self.maps_zeroed()))
    }

    /// Gives back to the OS every run the source keeps for reuse after it was unmapped (a
    /// retaining layer's runs, dirty and purged alike), as `malloc_trim` would. The default
    /// does nothing: sources that keep nothing have nothing to release.
    fn release_retained(&self) {}

    /// Makes a page-aligned range inaccessible (`accessible == false`: any access faults) or
    /// accessible again — guard pages for hardened allocators. The default refuses: a source
    /// without page protection (a caller's buffer) cannot make guards, and the allocator then
    /// goes without them.
    ///
    /// # Safety
    /// The range lies within a live run and is page-aligned at both ends; when making it
    /// inaccessible, nothing in it is in use.
    unsafe fn protect(
        &self,
        ptr: NonNull<u8>,
        len_bytes: usize,
        accessible: bool,
    ) -> Result<(), AllocError> {
        let _ = (ptr, len_bytes, accessible);
        Err(AllocError)
    }

    /// Bytes this source has mapped and not yet unmapped (purged runs still count).
    fn mapped_bytes(&self) -> usize;
}

// SAFETY: forwards every call to the referent, which keeps the contract.
unsafe impl<P: PageSource + ?Sized> PageSource for &P {
    #[inline]
    fn page_size(&self) -> usize {
        (**self).page_size()
    }
    #[inline]
    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        (**self).map(len_bytes, align_bytes)
    }
    #[inline]
    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).unmap(ptr, len_bytes) }
    }
    #[inline]
    unsafe fn purge(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).purge(ptr, len_bytes) }
    }
    #[inline]
    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        (**self).extend(end, extra_bytes)
    }
    #[inline]
    unsafe fn remap(
        &self,
        ptr: NonNull<u8>,
        old_len_bytes: usize,
        new_len_bytes: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).remap(ptr, old_len_bytes, new_len_bytes) }
    }
    #[inline]
    unsafe fn protect(
        &self,
        ptr: NonNull<u8>,
        len_bytes: usize,
        accessible: bool,
    ) -> Result<(), AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).protect(ptr, len_bytes, accessible) }
    }
    #[inline]
    fn maps_zeroed(&self) -> bool {
        (**self).maps_zeroed()
    }
    #[inline]
    fn map_reporting_zero(
        &self,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        (**self).map_reporting_zero(len_bytes, align_bytes)
    }
    #[inline]
    fn release_retained(&self) {
        (**self).release_retained()
    }
    #[inline]
    unsafe fn move_pages(
        &self,
        from: NonNull<u8>,
        to: NonNull<u8>,
        len_bytes: usize,
    ) -> Result<(), AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).move_pages(from, to, len_bytes) }
    }
    #[inline]
    fn mapped_bytes(&self) -> usize {
        (**self).mapped_bytes()
    }
}
