//! Address arithmetic shared by every crate, as `const fn`s that never panic.

/// The size of a machine word in bytes.
pub const WORD_BYTES: usize = core::mem::size_of::<usize>();

/// The alignment C's `max_align_t` has on the 64-bit targets heapkit supports: every block a
/// C `malloc` returns must be aligned at least this much.
pub const MAX_ALIGN_BYTES: usize = 16;

const _: () = assert!(MAX_ALIGN_BYTES.is_power_of_two());
const _: () = assert!(MAX_ALIGN_BYTES >= WORD_BYTES);
const _: () = assert!(MAX_ALIGN_BYTES % WORD_BYTES == 0);

/// Whether `x` is a power of two (zero is not).
#[inline(always)]
pub const fn is_power_of_two(x: usize) -> bool {
    x != 0 && x & (x - 1) == 0
}

/// Rounds `x` up to a multiple of `align`, or `None` when that overflows or `align` is not a
/// power of two.
#[inline(always)]
pub const fn align_up(x: usize, align: usize) -> Option<usize> {
    if !is_power_of_two(align) {
        return None;
    }
    match x.checked_add(align - 1) {
        Some(y) => Some(y & !(align - 1)),
        None => None,
    }
}

/// Rounds `x` down to a multiple of `align`, which must be a power of two (checked in debug
/// builds; a non-power-of-two gives a meaningless but harmless result in release builds).
#[inline(always)]
pub const fn align_down(x: usize, align: usize) -> usize {
    debug_assert!(is_power_of_two(align));
    x & !(align.wrapping_sub(1))
}

/// Whether `x` is a multiple of `align` (a power of two).
#[inline(always)]
pub const fn is_aligned(x: usize, align: usize) -> bool {
    debug_assert!(is_power_of_two(align));
    x & (align.wrapping_sub(1)) == 0
}

const _: () = assert!(matches!(align_up(17, 16), Some(32)));
const _: () = assert!(matches!(align_up(32, 16), Some(32)));
const _: () = assert!(align_up(usize::MAX, 16).is_none());
const _: () = assert!(align_up(5, 3).is_none());
const _: () = assert!(align_down(31, 16) == 16);
const _: () = assert!(is_aligned(4096, 4096) && !is_aligned(4097, 4096));
const _: () = assert!(!is_power_of_two(0) && is_power_of_two(1) && !is_power_of_two(12));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_up_matches_the_definition() {
        for align in [1usize, 2, 8, 16, 4096] {
            let limit = if cfg!(miri) { 300 } else { 10_000usize };
            for x in 0..limit {
                let up = align_up(x, align).unwrap();
                assert!(up >= x && up - x < align && up % align == 0);
                assert_eq!(align_down(up, align), up);
                assert!(align_down(x, align) <= x);
            }
        }
    }

    #[test]
    fn align_up_refuses_overflow_and_bad_alignments() {
        assert_eq!(align_up(usize::MAX - 2, 8), None);
        assert_eq!(align_up(1, 0), None);
        assert_eq!(align_up(1, 24), None);
    }
}
