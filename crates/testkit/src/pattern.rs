//! Fill patterns: every live block holds bytes derived from its seed and position, so a block
//! that was overwritten, shifted or copied short shows up on the next verification.
//!
//! Blocks are filled and compared a run of whole periods at a time (slice copies and
//! compares), not byte by byte: the conformance suite and the fuzz targets check every live
//! block after every operation, and under Miri a byte-at-a-time loop dominated whole test runs.

/// The pattern's period in bytes: a prime, so a block shifted by any small amount no longer
/// matches.
pub const PERIOD_BYTES: usize = 251;
/// How many periods a reference run holds.
const RUN_PERIODS: usize = 16;
const _: () = assert!(PERIOD_BYTES < 256, "offsets in a period fit a byte");

/// The byte at `index` of a block filled with `seed`.
#[inline]
pub fn byte_at(seed: u8, index: usize) -> u8 {
    seed.wrapping_add((index % PERIOD_BYTES) as u8)
}

/// The first `RUN_PERIODS` periods of the pattern of `seed`, of which only the first
/// `need_bytes` are written (small blocks need little).
fn reference_run(seed: u8, need_bytes: usize) -> [u8; PERIOD_BYTES * RUN_PERIODS] {
    let mut run = [0u8; PERIOD_BYTES * RUN_PERIODS];
    let need_bytes = need_bytes.min(run.len());
    let mut offset: u8 = 0;
    for byte in &mut run[..need_bytes] {
        *byte = seed.wrapping_add(offset);
        offset = if usize::from(offset) + 1 == PERIOD_BYTES {
            0
        } else {
            offset + 1
        };
    }
    run
}

/// Writes the pattern of `seed` over `bytes`, which start at `first_index` of their block.
pub fn fill_slice(bytes: &mut [u8], seed: u8, first_index: usize) {
    // SAFETY: a live, exclusive slice is writable for its whole length.
    unsafe { fill_from(bytes.as_mut_ptr(), bytes.len(), seed, first_index) }
}

/// Writes the pattern of `seed` over `len` bytes at `ptr`, which are bytes `first_index..` of
/// their block. Raw pointers throughout, so the memory may be uninitialised.
///
/// # Safety
/// `ptr..ptr + len` is writable.
unsafe fn fill_from(ptr: *mut u8, len: usize, seed: u8, first_index: usize) {
    let phase = first_index % PERIOD_BYTES;
    let run = reference_run(seed, phase + len);
    // Whole periods per step, so every step starts at the same phase.
    let step = run.len() - PERIOD_BYTES;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(step);
        // SAFETY: `phase + n <= run.len()`; the destination is in the caller's range.
        unsafe { core::ptr::copy_nonoverlapping(run.as_ptr().add(phase), ptr.add(done), n) };
        done += n;
    }
}

/// The first index in `bytes` (a block's first bytes) that breaks the pattern of `seed`.
pub fn first_mismatch_in(bytes: &[u8], seed: u8) -> Option<usize> {
    let run = reference_run(seed, bytes.len());
    let step = run.len() - PERIOD_BYTES;
    debug_assert!(step % PERIOD_BYTES == 0);
    for (n, chunk) in bytes.chunks(step).enumerate() {
        if chunk != &run[..chunk.len()] {
            let at = chunk
                .iter()
                .zip(&run)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Some(n * step + at);
        }
    }
    None
}

/// Fills `len` bytes at `ptr` with the pattern of `seed`.
///
/// # Safety
/// `ptr..ptr + len` is writable (it may be uninitialised).
pub unsafe fn fill(ptr: *mut u8, len: usize, seed: u8) {
    // SAFETY: forwarded from the caller.
    unsafe { fill_from(ptr, len, seed, 0) }
}

/// The first index in `0..len` whose byte differs from the pattern of `seed`.
///
/// # Safety
/// `ptr..ptr + len` is readable and initialised.
pub unsafe fn first_mismatch(ptr: *const u8, len: usize, seed: u8) -> Option<usize> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    first_mismatch_in(bytes, seed)
}

/// The first index in `from..len` whose byte is not zero.
///
/// # Safety
/// `ptr..ptr + len` is readable.
pub unsafe fn first_nonzero(ptr: *const u8, from: usize, len: usize) -> Option<usize> {
    // SAFETY: forwarded from the caller.
    (from..len).find(|&index| unsafe { ptr.add(index).read() } != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_compare_agree_with_the_byte_formula() {
        for len in [0, 1, 250, 251, 252, 4015, 4016, 4017, 10_000] {
            for first in [0, 1, 250, 251, 3000] {
                let mut bytes = std::vec![0u8; len];
                fill_slice(&mut bytes, 7, first);
                for (i, &b) in bytes.iter().enumerate() {
                    assert_eq!(b, byte_at(7, first + i), "len {len} first {first} at {i}");
                }
            }
            let mut block = std::vec![0u8; len];
            // SAFETY: the vector's buffer, `len` bytes, borrowed by nothing else.
            unsafe { fill(block.as_mut_ptr(), len, 9) };
            assert_eq!(first_mismatch_in(&block, 9), None);
            if len > 0 {
                block[len - 1] ^= 1;
                // SAFETY: as above, and every byte is initialised.
                let at = unsafe { first_mismatch(block.as_ptr(), len, 9) };
                assert_eq!(at, Some(len - 1));
            }
        }
    }
}
