//! `Rng`: a small deterministic generator (xorshift64*) for tests and benchmarks that must
//! replay the same request stream: a failing run can be repeated, and every allocator in a
//! comparison sees the same sequence. Not for anything that needs real randomness.
//!
//! [`Xorshift64`] is the plain generator (Marsaglia's 13/7/17) the fixed pool's programs drew
//! from before there was one copy: the book's ledger figures (docs/07, rejected transfers and
//! the last id) came from its sequence, so it is kept beside [`Rng`] rather than replaced.
//! New code uses [`Rng`].

/// xorshift64*: fast, allocation-free, seeded.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (zero is replaced: xorshift would stay at zero forever).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0) has no answer");
        (self.next_u64() % n as u64) as usize
    }

    /// A size in `1..=max_size_bytes` skewed small, as real programs allocate: mostly up to
    /// 128 B, a quarter up to 1 KiB, one in sixteen up to 64 KiB.
    pub fn size_skewed_small(&mut self, max_size_bytes: usize) -> usize {
        let cap = match self.below(16) {
            0 => max_size_bytes.min(64 * 1024),
            1..=4 => 1024,
            _ => 128,
        };
        1 + self.below(cap.min(max_size_bytes))
    }

    /// A size in `min_bytes..=max_bytes`, log-uniform: as many requests between 16 and 32 B as
    /// between 1 and 2 KiB, the shape real programs show (many small, few large).
    pub fn size_log_uniform(&mut self, min_bytes: usize, max_bytes: usize) -> usize {
        assert!(0 < min_bytes && min_bytes <= max_bytes);
        let low = (min_bytes as f64).ln();
        let high = (max_bytes as f64).ln();
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((low + (high - low) * unit).exp() as usize).clamp(min_bytes, max_bytes)
    }

    /// A word-aligned layout of a log-uniform size in `min_bytes..=max_bytes`.
    pub fn layout(&mut self, min_bytes: usize, max_bytes: usize) -> std::alloc::Layout {
        let size_bytes = self.size_log_uniform(min_bytes, max_bytes);
        std::alloc::Layout::from_size_align(size_bytes, 8)
            .expect("sizes are small and 8 is a power of two")
    }
}

/// Plain xorshift64 (shifts 13, 7, 17; the raw state is the output): the sequence the fixed
/// pool's ledger and latency programs were measured with.
#[derive(Clone, Debug)]
pub struct Xorshift64(u64);

impl Xorshift64 {
    /// A generator from `seed` (zero is replaced, as for [`Rng`]).
    pub fn new(seed: u64) -> Xorshift64 {
        Xorshift64(Rng::new(seed).0)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0) has no answer");
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented figures depend on these exact sequences: a change here changes them.
    #[test]
    fn the_sequences_are_the_documented_ones() {
        let mut star = Rng::new(1);
        assert_eq!(star.next_u64(), 0x47E4_CE4B_896C_DD1D);
        let mut plain = Xorshift64::new(1);
        assert_eq!(plain.next_u64(), 1_082_269_761);
    }

    #[test]
    fn the_stream_repeats_and_stays_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.below(10) < 10);
            b.below(10);
            let size = a.size_skewed_small(100);
            assert!((1..=100).contains(&size));
            b.size_skewed_small(100);
        }
        assert_ne!(Rng::new(0).next_u64(), 0);
    }

    #[test]
    fn log_uniform_sizes_stay_in_range_and_repeat() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..10_000 {
            let size = a.size_log_uniform(16, 4096);
            assert!((16..=4096).contains(&size));
            assert_eq!(size, b.size_log_uniform(16, 4096));
        }
    }
}
