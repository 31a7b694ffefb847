//! The sampler's generator: xorshift64* (Vigna), one per thread, and the exponential draw of
//! the bytes until the next sample. Tiny, `const`-constructible and allocation-free, because it
//! runs on the allocation path of a sampled thread.

/// A xorshift64* generator. Not for anything but sampling: its only job is that the distance
/// between samples has no period a program's allocation pattern could fall into.
#[derive(Clone, Copy, Debug)]
pub struct SampleRng {
    state: u64,
}

impl SampleRng {
    /// A generator from `seed`; a zero seed (xorshift's one fixed point) is replaced.
    pub const fn new(seed: u64) -> Self {
        let state = if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        };
        SampleRng { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform draw in `(0, 1]`: never 0, so its logarithm is finite.
    pub fn next_open_unit(&mut self) -> f64 {
        // The top 53 bits, plus one, over 2^53.
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Bytes until the next sample: an exponential draw with mean `mean_bytes`, at least 1.
    /// Exponential gaps make the samples a Poisson process over the allocated bytes, so the
    /// chance that a block of `n` bytes is sampled is `1 - exp(-n / mean)` whatever came
    /// before it (tcmalloc's and jemalloc's sampler).
    pub fn next_gap_bytes(&mut self, mean_bytes: u64) -> u64 {
        let gap = -self.next_open_unit().ln() * mean_bytes as f64;
        // `as` saturates: a huge draw becomes u64::MAX, not UB.
        (gap as u64).max(1)
    }
}

/// The chance that a block of `size_bytes` is sampled at a mean gap of `mean_bytes`.
pub fn sample_probability(size_bytes: usize, mean_bytes: u64) -> f64 {
    let mean = mean_bytes.max(1) as f64;
    -(-(size_bytes as f64) / mean).exp_m1()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_average_to_the_mean() {
        let mut rng = SampleRng::new(7);
        let n = 200_000u64;
        let total: u64 = (0..n).map(|_| rng.next_gap_bytes(4096)).sum();
        let mean = total as f64 / n as f64;
        assert!((mean - 4096.0).abs() < 4096.0 * 0.02, "mean gap {mean}");
    }

    #[test]
    fn unit_draws_are_never_zero() {
        let mut rng = SampleRng::new(0);
        assert!((0..10_000).all(|_| {
            let u = rng.next_open_unit();
            u > 0.0 && u <= 1.0
        }));
    }

    #[test]
    fn probability_matches_the_formula() {
        assert!(
            (sample_probability(512 * 1024, 512 * 1024) - (1.0 - (-1.0f64).exp())).abs() < 1e-12
        );
        assert_eq!(sample_probability(0, 100), 0.0);
        assert!(sample_probability(1 << 30, 1) > 0.999_999);
    }
}
