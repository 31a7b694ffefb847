//! The argument checks every source shares: bad input is an `AllocError`, never a panic.

use heapkit_core::{is_power_of_two, AllocError};

/// The largest alignment a source accepts: 1 GiB. Larger ones are almost certainly a bug in the
/// caller, and over-mapping for them would reserve absurd amounts of address space.
pub const MAX_RUN_ALIGN_BYTES: usize = 1 << 30;

/// The largest run a source accepts (`isize::MAX` rounded down to a page), the limit Rust puts
/// on any object.
pub const fn max_run_bytes(page_bytes: usize) -> usize {
    (isize::MAX as usize) & !(page_bytes - 1)
}

/// Checks a `map` request and returns the effective alignment (at least a page).
pub fn check_map_args(
    page_bytes: usize,
    len_bytes: usize,
    align_bytes: usize,
) -> Result<usize, AllocError> {
    debug_assert!(is_power_of_two(page_bytes));
    // A mask, not `%`: the page size is a power of two, and a `div` here showed up hot in
    // profiles of an arena per request (every chunk map goes through this check).
    if len_bytes == 0 || len_bytes & (page_bytes - 1) != 0 || len_bytes > max_run_bytes(page_bytes)
    {
        return Err(AllocError);
    }
    if !is_power_of_two(align_bytes) || align_bytes > MAX_RUN_ALIGN_BYTES {
        return Err(AllocError);
    }
    Ok(align_bytes.max(page_bytes))
}

/// Checks an `extend` request's length.
pub fn check_extend_args(
    page_bytes: usize,
    end_addr: usize,
    extra_bytes: usize,
) -> Result<(), AllocError> {
    if extra_bytes == 0 || extra_bytes % page_bytes != 0 || extra_bytes > max_run_bytes(page_bytes)
    {
        return Err(AllocError);
    }
    if end_addr % page_bytes != 0 || end_addr.checked_add(extra_bytes).is_none() {
        return Err(AllocError);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_map_arguments_are_errors() {
        assert_eq!(check_map_args(4096, 0, 4096), Err(AllocError));
        assert_eq!(check_map_args(4096, 100, 4096), Err(AllocError));
        assert_eq!(check_map_args(4096, 4096, 3), Err(AllocError));
        assert_eq!(check_map_args(4096, 4096, 0), Err(AllocError));
        assert_eq!(check_map_args(4096, 4096, 1 << 40), Err(AllocError));
        assert_eq!(
            check_map_args(4096, usize::MAX & !4095, 4096),
            Err(AllocError)
        );
        assert_eq!(check_map_args(4096, 8192, 1), Ok(4096));
        assert_eq!(check_map_args(4096, 8192, 1 << 20), Ok(1 << 20));
    }

    #[test]
    fn bad_extend_arguments_are_errors() {
        assert_eq!(check_extend_args(4096, 4096, 0), Err(AllocError));
        assert_eq!(check_extend_args(4096, 4096, 10), Err(AllocError));
        assert_eq!(check_extend_args(4096, 4095, 4096), Err(AllocError));
        assert_eq!(
            check_extend_args(4096, usize::MAX & !4095, 4096),
            Err(AllocError)
        );
        assert_eq!(check_extend_args(4096, 4096, 4096), Ok(()));
    }
}
