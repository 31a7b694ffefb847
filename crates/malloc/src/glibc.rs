//! glibc's introspection and tuning calls, answered with heapkit's figures: `mallinfo2`,
//! `mallinfo`, `malloc_trim`, `malloc_stats`, `malloc_info`, `mallopt`. Without them a program
//! under `LD_PRELOAD` would call glibc's and see glibc's empty arena.
//!
//! The field mapping (the crate README has the table): `arena` is the bytes mapped in chunks
//! and retained runs, `hblkhd` those of huge blocks (so `arena + hblkhd` is everything
//! mapped, as with glibc); `uordblks` the bytes of blocks the program holds in chunks (huge
//! blocks are in `hblkhd`), `fordblks = arena - uordblks`; `ordblks` the free blocks in
//! thread caches; `keepcost` the dirty bytes a `malloc_trim` would give back at once.

use crate::heap::{set_errno, HEAP};
use core::ffi::c_int;
use heapkit::ProgramStats;

/// glibc's `struct mallinfo2` (glibc 2.33 and later): the same fields as `mallinfo`, as
/// `size_t`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Mallinfo2 {
    /// Bytes mapped in chunks and retained runs (not huge blocks).
    pub arena: usize,
    /// Free blocks in thread caches and on the depot's shelves.
    pub ordblks: usize,
    /// Always 0 (glibc's fastbin blocks; heapkit has none).
    pub smblks: usize,
    /// Huge blocks, each in its own mapping.
    pub hblks: usize,
    /// Bytes mapped for huge blocks.
    pub hblkhd: usize,
    /// Always 0, as in glibc.
    pub usmblks: usize,
    /// Always 0 (bytes in fastbins).
    pub fsmblks: usize,
    /// Bytes of blocks the program holds, in chunks.
    pub uordblks: usize,
    /// `arena - uordblks`: free slots and blocks, caches, retained runs, metadata.
    pub fordblks: usize,
    /// Dirty bytes: what `malloc_trim` would give back to the OS at once.
    pub keepcost: usize,
}

/// glibc's `struct mallinfo`: [`Mallinfo2`] with `int` fields, each saturated at `INT_MAX`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Mallinfo {
    /// See [`Mallinfo2::arena`].
    pub arena: c_int,
    /// See [`Mallinfo2::ordblks`].
    pub ordblks: c_int,
    /// See [`Mallinfo2::smblks`].
    pub smblks: c_int,
    /// See [`Mallinfo2::hblks`].
    pub hblks: c_int,
    /// See [`Mallinfo2::hblkhd`].
    pub hblkhd: c_int,
    /// See [`Mallinfo2::usmblks`].
    pub usmblks: c_int,
    /// See [`Mallinfo2::fsmblks`].
    pub fsmblks: c_int,
    /// See [`Mallinfo2::uordblks`].
    pub uordblks: c_int,
    /// See [`Mallinfo2::fordblks`].
    pub fordblks: c_int,
    /// See [`Mallinfo2::keepcost`].
    pub keepcost: c_int,
}

const _: () = assert!(core::mem::size_of::<Mallinfo2>() == 10 * core::mem::size_of::<usize>());
const _: () = assert!(core::mem::size_of::<Mallinfo>() == 10 * core::mem::size_of::<c_int>());

/// The `mallopt` parameter numbers heapkit acts on. Every other one of glibc's (`M_MXFAST`,
/// `M_TOP_PAD`, `M_MMAP_THRESHOLD` — heapkit's huge-block size is fixed by its chunk
/// geometry —, `M_MMAP_MAX`, `M_CHECK_ACTION`, `M_PERTURB`, `M_ARENA_TEST`, `M_ARENA_MAX` —
/// heapkit has one heap with per-thread caches, no arenas) changes nothing.
pub mod param {
    use core::ffi::c_int;
    /// glibc's `M_TRIM_THRESHOLD`: heapkit's purge threshold
    /// (`HEAPKIT_PURGE_THRESHOLD_BYTES`).
    pub const M_TRIM_THRESHOLD: c_int = -1;
    /// heapkit's own (`heapkit.h`): the purge delay in milliseconds (`HEAPKIT_PURGE_DELAY_MS`);
    /// -1 for never.
    pub const M_HEAPKIT_PURGE_DELAY_MS: c_int = -100;
}

/// What `mallopt` returns for an option heapkit has no setting for. glibc returns 1 for every
/// option it does not know (measured with glibc 2.36) but the issue asked for 0, which tells
/// the caller that nothing changed; one place to change should that choice be reversed.
const NOT_APPLIED: c_int = 0;

/// The `mallinfo2` figures from a program-level snapshot.
pub fn mallinfo_of(stats: &ProgramStats) -> Mallinfo2 {
    let arena = stats.mapped_bytes.saturating_sub(stats.huge_mapped_bytes);
    let uordblks = stats.held_bytes.saturating_sub(stats.huge_bytes);
    Mallinfo2 {
        arena,
        ordblks: stats.cached_blocks,
        smblks: 0,
        hblks: stats.huge_blocks,
        hblkhd: stats.huge_mapped_bytes,
        usmblks: 0,
        fsmblks: 0,
        uordblks,
        fordblks: arena.saturating_sub(uordblks),
        keepcost: stats.dirty_bytes,
    }
}

/// `mallinfo2()`: heapkit's figures in glibc's fields (see the module docs).
#[no_mangle]
pub extern "C" fn mallinfo2() -> Mallinfo2 {
    mallinfo_of(&HEAP.program_stats())
}

fn saturating_int(value: usize) -> c_int {
    c_int::try_from(value).unwrap_or(c_int::MAX)
}

/// `mallinfo()`: [`mallinfo2`] with every field saturated at `INT_MAX` (glibc's wrap around
/// past 2 GiB instead).
#[no_mangle]
pub extern "C" fn mallinfo() -> Mallinfo {
    let m = mallinfo2();
    Mallinfo {
        arena: saturating_int(m.arena),
        ordblks: saturating_int(m.ordblks),
        smblks: saturating_int(m.smblks),
        hblks: saturating_int(m.hblks),
        hblkhd: saturating_int(m.hblkhd),
        usmblks: saturating_int(m.usmblks),
        fsmblks: saturating_int(m.fsmblks),
        uordblks: saturating_int(m.uordblks),
        fordblks: saturating_int(m.fordblks),
        keepcost: saturating_int(m.keepcost),
    }
}

/// `malloc_trim(pad)`: gives back what heapkit keeps (`HeapKit::trim`: the calling thread's
/// cache, the shelves and exited threads' caches to the slab; empty slabs released, dirty
/// slots purged, empty chunks and retained runs unmapped). 1 when anything was given back,
/// else 0. `pad` is ignored: heapkit has no top of heap to leave padding at.
#[no_mangle]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    c_int::from(HEAP.trim().released_any())
}

/// `malloc_stats()`: the program-level statistics on stderr, as `HEAPKIT_SHOW_STATS` prints
/// them at exit (formatted on the stack).
#[no_mangle]
pub extern "C" fn malloc_stats() {
    crate::report::print_stats();
}

/// `malloc_info(options, file)`: an XML document of the heap's state written to `file`
/// (glibc's root element and heap element; per size class, totals and system figures). 0 on
/// success; -1 with `EINVAL` when `options` is not 0 or `file` is NULL, as glibc; -1 when a
/// write fails.
///
/// # Safety
/// `file` is NULL or an open `FILE *`.
#[no_mangle]
pub unsafe extern "C" fn malloc_info(options: c_int, file: *mut libc::FILE) -> c_int {
    if options != 0 || file.is_null() {
        set_errno(libc::EINVAL);
        return -1;
    }
    // SAFETY: a non-null `FILE *` the caller promises is open.
    if unsafe { crate::report::write_info(file) } {
        0
    } else {
        -1
    }
}

/// `mallopt(param, value)`: the options with a heapkit meaning are applied and return 1 (0 for
/// a value out of their range); the others change nothing and return [`NOT_APPLIED`].
///
/// - `M_TRIM_THRESHOLD`: the purge threshold in bytes (`value >= 0`).
/// - `M_HEAPKIT_PURGE_DELAY_MS` (-100, `heapkit.h`): the purge delay in ms (`value >= 0`, or -1
///   for never).
#[no_mangle]
pub extern "C" fn mallopt(param: c_int, value: c_int) -> c_int {
    match param {
        param::M_TRIM_THRESHOLD => match usize::try_from(value) {
            Ok(bytes) => {
                HEAP.set_purge_threshold_bytes(bytes);
                1
            }
            Err(_) => 0,
        },
        param::M_HEAPKIT_PURGE_DELAY_MS => match purge_delay_ms(value) {
            Some(delay_ms) => {
                HEAP.set_purge_delay_ms(delay_ms);
                1
            }
            None => 0,
        },
        _ => NOT_APPLIED,
    }
}

/// A purge delay given as a C `int`: milliseconds, or -1 for never; `None` for other negative
/// values.
pub fn purge_delay_ms(value: c_int) -> Option<u64> {
    match value {
        -1 => Some(u64::MAX),
        _ => u64::try_from(value).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_blocks_are_counted_apart_as_in_glibc() {
        let stats = ProgramStats {
            held_bytes: 5 << 20,
            huge_blocks: 1,
            huge_bytes: 4 << 20,
            huge_mapped_bytes: (4 << 20) + 4096,
            mapped_bytes: (8 << 20) + (4 << 20) + 4096,
            cached_blocks: 7,
            dirty_bytes: 3 << 10,
            ..ProgramStats::default()
        };
        let m = mallinfo_of(&stats);
        assert_eq!(m.arena, 8 << 20);
        assert_eq!(m.uordblks, 1 << 20);
        assert_eq!(m.fordblks, 7 << 20);
        assert_eq!((m.hblks, m.hblkhd), (1, (4 << 20) + 4096));
        assert_eq!((m.ordblks, m.keepcost), (7, 3 << 10));
    }

    #[test]
    fn int_fields_saturate() {
        assert_eq!(saturating_int(5), 5);
        assert_eq!(saturating_int(usize::MAX), c_int::MAX);
    }

    #[test]
    fn purge_delays_from_c() {
        assert_eq!(purge_delay_ms(0), Some(0));
        assert_eq!(purge_delay_ms(250), Some(250));
        assert_eq!(purge_delay_ms(-1), Some(u64::MAX));
        assert_eq!(purge_delay_ms(-2), None);
    }
}
