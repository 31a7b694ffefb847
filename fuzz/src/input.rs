//! Decoding inputs into ops: sizes and alignments skewed the way programs ask, and a bound on
//! the sequence length.

use arbitrary::{Arbitrary, Unstructured};

/// The most ops one input decodes into: keeps every run short (libFuzzer explores breadth).
pub const OPS_MAX: usize = 400;

/// A request size, decoded to bytes by [`Size::bytes`]: mostly small, sometimes up to the
/// target's largest.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Size {
    bucket: u8,
    raw: u32,
}

impl Size {
    /// The size in `0..=max_bytes`: a bucket picks the range (zero; up to 64 B; 1 KiB;
    /// 16 KiB; 256 KiB; `max_bytes`), the raw value the size inside it.
    pub fn bytes(self, max_bytes: usize) -> usize {
        let cap_bytes = match self.bucket % 32 {
            0 => 0,
            1..=13 => 64,
            14..=21 => 1024,
            22..=27 => 16 * 1024,
            28..=30 => 256 * 1024,
            _ => max_bytes,
        }
        .min(max_bytes);
        self.raw as usize % (cap_bytes + 1)
    }
}

/// An alignment, decoded by [`Align::bytes`]: mostly at most 16, sometimes up to a page,
/// rarely up to the target's largest.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Align(u16);

impl Align {
    /// A power of two no larger than `max_bytes` (itself a power of two).
    pub fn bytes(self, max_bytes: usize) -> usize {
        debug_assert!(max_bytes.is_power_of_two());
        let max_shift = max_bytes.trailing_zeros();
        let high = u32::from(self.0 >> 5);
        let shift = match self.0 % 32 {
            0..=23 => high % 5,
            24..=30 => high % 13,
            _ => high % (max_shift + 1),
        };
        1 << shift.min(max_shift)
    }
}

/// Decodes ops from `data` until it runs out (or [`OPS_MAX`]), calling `apply` on each.
/// Bytes that do not decode end the sequence: a short or odd input is a short sequence.
pub fn for_each_op<'a, Op: Arbitrary<'a>>(data: &'a [u8], mut apply: impl FnMut(Op)) {
    let mut u = Unstructured::new(data);
    for _ in 0..OPS_MAX {
        if u.is_empty() {
            return;
        }
        match Op::arbitrary(&mut u) {
            Ok(op) => apply(op),
            Err(_) => return,
        }
    }
}

/// Decodes a target's set-up value (a configuration, capacities) from the front of `data`,
/// and returns it with the rest; a default when `data` is too short.
pub fn setup<'a, T: Arbitrary<'a> + Default>(data: &'a [u8], setup_bytes: usize) -> (T, &'a [u8]) {
    let split = setup_bytes.min(data.len());
    let (head, rest) = data.split_at(split);
    let value = T::arbitrary(&mut Unstructured::new(head)).unwrap_or_default();
    (value, rest)
}
