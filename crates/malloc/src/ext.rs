//! heapkit's own C API, declared in `include/heapkit.h`: statistics into a caller's struct
//! (`heapkit_stats`), `heapkit_purge`, and the purge options. Each section of the header has
//! its functions here.

use crate::heap::HEAP;
use core::ffi::c_int;
use heapkit::ProgramStats;

/// The version of `struct heapkit_stats` this library fills (`HEAPKIT_STATS_VERSION`).
pub const STATS_VERSION: u32 = 1;

/// `struct heapkit_stats` (see `heapkit.h`): the caller sets `struct_bytes` to its
/// `sizeof`, so that a program built against an older, shorter struct is never written past
/// its end; the library sets `version` and fills the fields that fit.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct HeapkitStats {
    /// Set by the caller: `sizeof(struct heapkit_stats)`.
    pub struct_bytes: usize,
    /// Set by the library: [`STATS_VERSION`].
    pub version: u32,
    /// Zero.
    pub reserved: u32,
    /// See `heapkit::ProgramStats::held_bytes`.
    pub held_bytes: usize,
    /// See `heapkit::ProgramStats::held_blocks`.
    pub held_blocks: usize,
    /// See `heapkit::ProgramStats::cached_bytes`.
    pub cached_bytes: usize,
    /// See `heapkit::ProgramStats::cached_blocks`.
    pub cached_blocks: usize,
    /// See `heapkit::ProgramStats::metadata_bytes`.
    pub metadata_bytes: usize,
    /// See `heapkit::ProgramStats::mapped_bytes`.
    pub mapped_bytes: usize,
    /// See `heapkit::ProgramStats::retained_bytes`.
    pub retained_bytes: usize,
    /// See `heapkit::ProgramStats::dirty_bytes`.
    pub dirty_bytes: usize,
    /// See `heapkit::ProgramStats::purged_bytes`.
    pub purged_bytes: usize,
    /// See `heapkit::ProgramStats::huge_blocks`.
    pub huge_blocks: usize,
    /// See `heapkit::ProgramStats::huge_bytes`.
    pub huge_bytes: usize,
    /// See `heapkit::ProgramStats::huge_mapped_bytes`.
    pub huge_mapped_bytes: usize,
    /// See `heapkit::ProgramStats::resident_bytes`.
    pub resident_bytes: usize,
    /// See `heapkit::ProgramStats::peak_resident_bytes`.
    pub peak_resident_bytes: usize,
    /// See `heapkit::ProgramStats::failures`.
    pub failures: usize,
}

/// The header's struct is 2 words of header and 15 figures: a field added to one side only
/// breaks this.
const _: () = assert!(core::mem::size_of::<HeapkitStats>() == 17 * core::mem::size_of::<usize>());

/// The part of the struct the library always fills: the header.
const HEADER_BYTES: usize = core::mem::offset_of!(HeapkitStats, held_bytes);

impl HeapkitStats {
    fn of(stats: &ProgramStats) -> Self {
        HeapkitStats {
            struct_bytes: core::mem::size_of::<HeapkitStats>(),
            version: STATS_VERSION,
            reserved: 0,
            held_bytes: stats.held_bytes,
            held_blocks: stats.held_blocks,
            cached_bytes: stats.cached_bytes,
            cached_blocks: stats.cached_blocks,
            metadata_bytes: stats.metadata_bytes,
            mapped_bytes: stats.mapped_bytes,
            retained_bytes: stats.retained_bytes,
            dirty_bytes: stats.dirty_bytes,
            purged_bytes: stats.purged_bytes,
            huge_blocks: stats.huge_blocks,
            huge_bytes: stats.huge_bytes,
            huge_mapped_bytes: stats.huge_mapped_bytes,
            resident_bytes: stats.resident_bytes,
            peak_resident_bytes: stats.peak_resident_bytes,
            failures: stats.failures,
        }
    }
}

/// `heapkit_stats(out)`: fills `*out` with the program-level figures, at most
/// `out->struct_bytes` bytes of it (the caller's `sizeof`; `struct_bytes` itself keeps the
/// caller's value, `version` says which fields this library knows). 0 on success; `EINVAL`
/// (returned, and in `errno`) when `out` is NULL or `struct_bytes` is smaller than the
/// header (`struct_bytes` and `version`). Never allocates.
///
/// # Safety
/// `out` is NULL or points to at least `out->struct_bytes` writable bytes, the first word of
/// which is readable.
#[no_mangle]
pub unsafe extern "C" fn heapkit_stats(out: *mut HeapkitStats) -> c_int {
    if out.is_null() {
        crate::heap::set_errno(libc::EINVAL);
        return libc::EINVAL;
    }
    // SAFETY: the caller promises the first word is readable.
    let caller_bytes = unsafe { core::ptr::addr_of!((*out).struct_bytes).read_unaligned() };
    if caller_bytes < HEADER_BYTES {
        crate::heap::set_errno(libc::EINVAL);
        return libc::EINVAL;
    }
    let mut filled = HeapkitStats::of(&HEAP.program_stats());
    filled.struct_bytes = caller_bytes;
    let copy_bytes = caller_bytes.min(core::mem::size_of::<HeapkitStats>());
    // SAFETY: `filled` is readable for its whole size and `out` writable for `caller_bytes`
    // (the caller's promise); `copy_bytes` is at most both; a local cannot overlap the
    // caller's memory.
    unsafe {
        core::ptr::copy_nonoverlapping(
            core::ptr::addr_of!(filled).cast::<u8>(),
            out.cast::<u8>(),
            copy_bytes,
        );
    }
    0
}

/// `heapkit_purge()`: `malloc_trim(0)` (see `glibc.rs`): 1 when anything was given back.
#[no_mangle]
pub extern "C" fn heapkit_purge() -> c_int {
    c_int::from(HEAP.trim().released_any())
}

/// `heapkit_set_purge_delay_ms(ms)`: as `HEAPKIT_PURGE_DELAY_MS`; `UINT64_MAX` for never.
#[no_mangle]
pub extern "C" fn heapkit_set_purge_delay_ms(delay_ms: u64) {
    HEAP.set_purge_delay_ms(delay_ms);
}

/// `heapkit_purge_delay_ms()`: the current purge delay; `UINT64_MAX` for never.
#[no_mangle]
pub extern "C" fn heapkit_purge_delay_ms() -> u64 {
    HEAP.purge_delay_ms()
}

/// `heapkit_set_purge_threshold_bytes(bytes)`: as `HEAPKIT_PURGE_THRESHOLD_BYTES`.
#[no_mangle]
pub extern "C" fn heapkit_set_purge_threshold_bytes(threshold_bytes: usize) {
    HEAP.set_purge_threshold_bytes(threshold_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shorter_struct_is_not_written_past_its_end() {
        let mut words = [usize::MAX; 18];
        words[0] = HEADER_BYTES + 8;
        // SAFETY: 18 writable words, and the struct claims 3 of them.
        assert_eq!(unsafe { heapkit_stats(words.as_mut_ptr().cast()) }, 0);
        assert_eq!(words[0], HEADER_BYTES + 8);
        assert_eq!(words[1] as u32, STATS_VERSION);
        assert!(words[3..].iter().all(|&w| w == usize::MAX));
    }

    #[test]
    fn null_and_tiny_structs_are_refused() {
        // SAFETY: NULL is allowed.
        let null_result = unsafe { heapkit_stats(core::ptr::null_mut()) };
        assert_eq!(null_result, libc::EINVAL);
        let mut words = [4usize; 2];
        // SAFETY: two writable words.
        let tiny_result = unsafe { heapkit_stats(words.as_mut_ptr().cast()) };
        assert_eq!(tiny_result, libc::EINVAL);
    }
}
