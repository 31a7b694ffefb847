//! Fill patterns: every live block holds bytes derived from its seed and position, so a block
//! that was overwritten, shifted or copied short shows up on the next verification.

/// The byte at `index` of a block filled with `seed`.
#[inline]
pub fn byte_at(seed: u8, index: usize) -> u8 {
    seed.wrapping_add((index % 251) as u8)
}

/// Fills `len` bytes at `ptr` with the pattern of `seed`.
///
/// # Safety
/// `ptr..ptr + len` is writable.
pub unsafe fn fill(ptr: *mut u8, len: usize, seed: u8) {
    for index in 0..len {
        // SAFETY: `index < len` and the caller promises the range is writable.
        unsafe { ptr.add(index).write(byte_at(seed, index)) };
    }
}

/// The first index in `0..len` whose byte differs from the pattern of `seed`.
///
/// # Safety
/// `ptr..ptr + len` is readable.
pub unsafe fn first_mismatch(ptr: *const u8, len: usize, seed: u8) -> Option<usize> {
    // SAFETY: forwarded from the caller.
    (0..len).find(|&index| unsafe { ptr.add(index).read() } != byte_at(seed, index))
}

/// The first index in `from..len` whose byte is not zero.
///
/// # Safety
/// `ptr..ptr + len` is readable.
pub unsafe fn first_nonzero(ptr: *const u8, from: usize, len: usize) -> Option<usize> {
    // SAFETY: forwarded from the caller.
    (from..len).find(|&index| unsafe { ptr.add(index).read() } != 0)
}
