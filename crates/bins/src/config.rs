//! Tunables, glibc's `mallopt` parameters under heapkit names.

/// The largest chunk fast bins may hold (glibc's `MAX_FAST_SIZE` rounded to a chunk size).
pub const MAX_FAST_BIN_BYTES: usize = 160;
/// The default mmap threshold (glibc's `DEFAULT_MMAP_THRESHOLD_MIN`).
pub const DEFAULT_MMAP_THRESHOLD_BYTES: usize = 128 * 1024;
/// The dynamic mmap threshold never rises above this (glibc's `DEFAULT_MMAP_THRESHOLD_MAX` on
/// 64-bit).
pub const MAX_MMAP_THRESHOLD_BYTES: usize = 32 * 1024 * 1024;
/// The default trim threshold: the top chunk is trimmed when it exceeds this.
pub const DEFAULT_TRIM_THRESHOLD_BYTES: usize = 128 * 1024;
/// The default extra bytes asked for whenever the heap grows, so growth is rare.
pub const DEFAULT_TOP_PAD_BYTES: usize = 128 * 1024;
/// The default number of chunks each tcache bin holds (glibc's `TCACHE_FILL_COUNT`).
pub const DEFAULT_TCACHE_COUNT: usize = 7;
/// The most chunks a tcache bin may hold: bounds the bin walks of the double-free check and of
/// `check()` (glibc allows 65535; a few dozen is already past the point of diminishing
/// returns).
pub const MAX_TCACHE_COUNT: usize = 255;

const _: () = assert!(MAX_FAST_BIN_BYTES % 16 == 0 && MAX_FAST_BIN_BYTES >= 32);
const _: () = assert!(DEFAULT_MMAP_THRESHOLD_BYTES <= MAX_MMAP_THRESHOLD_BYTES);
const _: () =
    assert!(DEFAULT_TCACHE_COUNT <= MAX_TCACHE_COUNT && MAX_TCACHE_COUNT <= u16::MAX as usize);

/// How a [`Bins`](crate::Bins) heap behaves. Build with [`Config::DEFAULT`] and adjust fields.
///
/// ```
/// use heapkit_bins::Config;
/// let small = Config { mmap_threshold_bytes: 64 * 1024, ..Config::FAST_BINS };
/// assert_eq!(small.fast_bin_max_bytes, 128);
/// assert_eq!(Config::DEFAULT.fast_bin_max_bytes, 0); // fast bins are off by default
/// assert_eq!(Config::DEFAULT.tcache_count, 7); // the tcache is on, as in glibc >= 2.26
/// assert_eq!(Config::NO_CACHES.tcache_count, 0); // the bare arena
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Chunks up to this size (a multiple of 16, at most [`MAX_FAST_BIN_BYTES`]; 0 disables
    /// fast bins) are freed into LIFO fast bins without coalescing. A chunk of `n` bytes serves
    /// requests up to `n - 8` bytes.
    pub fast_bin_max_bytes: usize,
    /// Requests whose chunk is at least this large get a run of their own from the page
    /// source. The threshold rises (up to [`MAX_MMAP_THRESHOLD_BYTES`]) when such a run is
    /// freed, as glibc's does, unless `dynamic_mmap_threshold` is false.
    pub mmap_threshold_bytes: usize,
    /// Whether freeing an mmapped chunk raises the mmap threshold to its size.
    pub dynamic_mmap_threshold: bool,
    /// When the top chunk grows past this, its page-aligned tail goes back to the page source.
    pub trim_threshold_bytes: usize,
    /// Extra bytes asked for whenever the heap grows (and kept when it is trimmed).
    pub top_pad_bytes: usize,
    /// Chunks each tcache bin keeps (at most [`MAX_TCACHE_COUNT`]; 0 disables the tcache).
    /// The tcache is glibc's first stop for chunks up to 1040 bytes: a bounded LIFO per size,
    /// chunks left marked in use (see the crate docs).
    pub tcache_count: usize,
}

impl Config {
    /// glibc's defaults, without fast bins (glibc removed them in December 2025; see the
    /// crate docs for the measurements behind this choice).
    pub const DEFAULT: Config = Config {
        fast_bin_max_bytes: 0,
        mmap_threshold_bytes: DEFAULT_MMAP_THRESHOLD_BYTES,
        dynamic_mmap_threshold: true,
        trim_threshold_bytes: DEFAULT_TRIM_THRESHOLD_BYTES,
        top_pad_bytes: DEFAULT_TOP_PAD_BYTES,
        tcache_count: DEFAULT_TCACHE_COUNT,
    };

    /// glibc 2.36's defaults: fast bins for chunks up to 128 bytes (requests up to 120).
    pub const FAST_BINS: Config = Config {
        fast_bin_max_bytes: 128,
        ..Config::DEFAULT
    };

    /// The arena alone: no tcache, no fast bins. Every free coalesces at once, which makes the
    /// heap's shape follow the calls exactly (tests and pictures use it).
    pub const NO_CACHES: Config = Config {
        tcache_count: 0,
        ..Config::DEFAULT
    };

    /// The same configuration with out-of-range values clamped into range.
    pub const fn sanitized(self) -> Config {
        let fast = if self.fast_bin_max_bytes > MAX_FAST_BIN_BYTES {
            MAX_FAST_BIN_BYTES
        } else {
            self.fast_bin_max_bytes & !15
        };
        let mmap = if self.mmap_threshold_bytes > MAX_MMAP_THRESHOLD_BYTES {
            MAX_MMAP_THRESHOLD_BYTES
        } else if self.mmap_threshold_bytes < crate::binlist::MIN_LARGE_BYTES {
            crate::binlist::MIN_LARGE_BYTES
        } else {
            self.mmap_threshold_bytes
        };
        // Bounded so that growth arithmetic cannot overflow.
        let pad = if self.top_pad_bytes > MAX_MMAP_THRESHOLD_BYTES {
            MAX_MMAP_THRESHOLD_BYTES
        } else {
            self.top_pad_bytes
        };
        Config {
            fast_bin_max_bytes: fast,
            mmap_threshold_bytes: mmap,
            dynamic_mmap_threshold: self.dynamic_mmap_threshold,
            trim_threshold_bytes: self.trim_threshold_bytes,
            top_pad_bytes: pad,
            tcache_count: if self.tcache_count > MAX_TCACHE_COUNT {
                MAX_TCACHE_COUNT
            } else {
                self.tcache_count
            },
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}
