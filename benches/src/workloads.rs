//! The single-threaded workloads, each generic over [`GlobalAlloc`] so every allocator runs
//! the very same code. Each `run` is one criterion iteration; the request sequences are
//! drawn up front (seeded) so the generator's time is not measured.

use crate::rng::Rng;
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr;

/// Blocks in one batch: enough to leave the allocator's hottest cache, small enough for L2.
pub const BATCH_BLOCKS: usize = 1000;
/// Blocks live at once in the random-size workload.
pub const LIVE_SET_BLOCKS: usize = 1000;
/// Replacements per iteration of the random-size workload.
pub const LIVE_SET_STEPS: usize = 1000;
/// The block sizes of the hot-pair workload: tcache / small class / page-sized / large.
pub const HOT_PAIR_SIZES_BYTES: [usize; 5] = [16, 64, 256, 4096, 65536];

/// Allocates `layout` or stops the benchmark with a clear message (a bench must not
/// silently measure a failure path).
///
/// # Safety
/// `layout.size()` must be non-zero.
#[inline(always)]
pub unsafe fn must_alloc<G: GlobalAlloc>(alloc: &G, layout: Layout) -> *mut u8 {
    // SAFETY: the caller promises a non-zero size.
    let block = unsafe { alloc.alloc(layout) };
    assert!(
        !block.is_null(),
        "allocator refused {layout:?} during a benchmark"
    );
    block
}

/// One allocation immediately freed: the fastest path every allocator has.
#[inline(always)]
pub fn hot_pair<G: GlobalAlloc>(alloc: &G, layout: Layout) {
    assert!(layout.size() > 0);
    // SAFETY: non-zero layout; one byte written inside the block; freed once with its layout.
    unsafe {
        let block = must_alloc(alloc, layout);
        block.write(1);
        alloc.dealloc(black_box(block), layout);
    }
}

/// The order a [`Batch`] frees its blocks in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeOrder {
    /// Last allocated, first freed (stack-like: the friendliest order).
    Lifo,
    /// First allocated, first freed (queue-like).
    Fifo,
    /// A fixed random permutation (the worst for locality).
    Random,
}

impl FreeOrder {
    /// All three, in report order.
    pub const ALL: [FreeOrder; 3] = [FreeOrder::Lifo, FreeOrder::Fifo, FreeOrder::Random];

    /// The report name.
    pub fn name(self) -> &'static str {
        match self {
            FreeOrder::Lifo => "lifo",
            FreeOrder::Fifo => "fifo",
            FreeOrder::Random => "random",
        }
    }
}

/// [`BATCH_BLOCKS`] allocations of 16..=1024 B, then every one freed in a [`FreeOrder`].
pub struct Batch {
    layouts: Vec<Layout>,
    free_order: Vec<usize>,
    blocks: Vec<*mut u8>,
}

impl Batch {
    /// The batch for `order` (the same sizes for every order).
    pub fn new(order: FreeOrder) -> Batch {
        let mut rng = Rng::new(0x1234_5678);
        let layouts: Vec<Layout> = (0..BATCH_BLOCKS).map(|_| rng.layout(16, 1024)).collect();
        let mut free_order: Vec<usize> = (0..BATCH_BLOCKS).collect();
        match order {
            FreeOrder::Lifo => free_order.reverse(),
            FreeOrder::Fifo => {}
            FreeOrder::Random => {
                for i in (1..BATCH_BLOCKS).rev() {
                    free_order.swap(i, rng.below(i + 1));
                }
            }
        }
        Batch {
            layouts,
            free_order,
            blocks: vec![ptr::null_mut(); BATCH_BLOCKS],
        }
    }

    /// One iteration: allocate all, touch each, free all.
    pub fn run<G: GlobalAlloc>(&mut self, alloc: &G) {
        for (block, layout) in self.blocks.iter_mut().zip(&self.layouts) {
            // SAFETY: layouts are 16 B or more; one byte written inside the block.
            unsafe {
                *block = must_alloc(alloc, *layout);
                block.write(1);
            }
        }
        for &index in &self.free_order {
            // SAFETY: every block is live, freed exactly once (free_order is a permutation)
            // with the layout it was allocated with.
            unsafe { alloc.dealloc(self.blocks[index], self.layouts[index]) };
        }
    }
}

/// A live set of [`LIVE_SET_BLOCKS`] blocks of random sizes (16 B..=4 KiB, log-uniform);
/// each iteration frees a random block and allocates a new one in its place,
/// [`LIVE_SET_STEPS`] times. This is the steady state of a long-running program.
pub struct LiveSet {
    live: Vec<(*mut u8, Layout)>,
    /// (slot to replace, its new layout), drawn up front.
    steps: Vec<(usize, Layout)>,
}

impl LiveSet {
    /// An empty live set; [`LiveSet::fill`] allocates it.
    pub fn new() -> LiveSet {
        let mut rng = Rng::new(0xDEC0_DE00);
        let steps = (0..LIVE_SET_STEPS)
            .map(|_| (rng.below(LIVE_SET_BLOCKS), rng.layout(16, 4096)))
            .collect();
        LiveSet {
            live: Vec::with_capacity(LIVE_SET_BLOCKS),
            steps,
        }
    }

    /// Allocates the initial live set from `alloc`.
    pub fn fill<G: GlobalAlloc>(&mut self, alloc: &G) {
        assert!(self.live.is_empty(), "fill twice without drain");
        let mut rng = Rng::new(0xF111);
        for _ in 0..LIVE_SET_BLOCKS {
            let layout = rng.layout(16, 4096);
            // SAFETY: non-zero layout.
            let block = unsafe { must_alloc(alloc, layout) };
            self.live.push((block, layout));
        }
    }

    /// One iteration: [`LIVE_SET_STEPS`] replacements.
    pub fn run<G: GlobalAlloc>(&mut self, alloc: &G) {
        assert_eq!(self.live.len(), LIVE_SET_BLOCKS, "fill before run");
        for &(slot, layout) in &self.steps {
            let (old, old_layout) = self.live[slot];
            // SAFETY: `old` is live with `old_layout` and replaced at once; the new layout is
            // non-zero and one byte is written inside it.
            unsafe {
                alloc.dealloc(old, old_layout);
                let block = must_alloc(alloc, layout);
                block.write(1);
                self.live[slot] = (block, layout);
            }
        }
    }

    /// Frees the live set (it must come from `alloc`).
    pub fn drain<G: GlobalAlloc>(&mut self, alloc: &G) {
        for (block, layout) in self.live.drain(..) {
            // SAFETY: each live block came from `alloc` with this layout and is freed once.
            unsafe { alloc.dealloc(block, layout) };
        }
    }
}

impl Default for LiveSet {
    fn default() -> Self {
        Self::new()
    }
}

/// How a [`realloc_growth`] buffer grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// Doubling from 16 B to 64 KiB (`Vec::push`'s amortised growth): 12 reallocs.
    Double,
    /// 64 B at a time from 64 B to 16 KiB (a string appended to): 255 reallocs.
    Step64,
}

impl Growth {
    /// Both, in report order.
    pub const ALL: [Growth; 2] = [Growth::Double, Growth::Step64];

    /// The report name.
    pub fn name(self) -> &'static str {
        match self {
            Growth::Double => "double",
            Growth::Step64 => "step64",
        }
    }

    /// The `realloc` calls one [`realloc_growth`] makes.
    pub fn reallocs(self) -> usize {
        match self {
            Growth::Double => 12,
            Growth::Step64 => 255,
        }
    }
}

/// One buffer grown by `realloc` as `growth` says, touched at its new end, then freed.
/// Returns the number of reallocs.
pub fn realloc_growth<G: GlobalAlloc>(alloc: &G, growth: Growth) -> usize {
    let mut reallocs = 0;
    let (first_bytes, last_bytes) = match growth {
        Growth::Double => (16, 65536),
        Growth::Step64 => (64, 16384),
    };
    let mut layout = Layout::from_size_align(first_bytes, 8).expect("a valid layout");
    // SAFETY: non-zero layout; each realloc passes the block's current layout and a non-zero
    // new size; the byte written is the last of the new size; the final block is freed once.
    unsafe {
        let mut block = must_alloc(alloc, layout);
        while layout.size() < last_bytes {
            let new_bytes = match growth {
                Growth::Double => layout.size() * 2,
                Growth::Step64 => layout.size() + 64,
            };
            block = alloc.realloc(block, layout, new_bytes);
            assert!(!block.is_null(), "realloc to {new_bytes} B refused");
            layout = Layout::from_size_align(new_bytes, 8).expect("a valid layout");
            block.add(new_bytes - 1).write(1);
            reallocs += 1;
        }
        alloc.dealloc(black_box(block), layout);
    }
    reallocs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::{for_each, Visit};

    struct All;
    impl Visit for All {
        fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, _: &'static str, alloc: &'static G) {
            for size in HOT_PAIR_SIZES_BYTES {
                hot_pair(alloc, Layout::from_size_align(size, 8).unwrap());
            }
            for order in FreeOrder::ALL {
                Batch::new(order).run(alloc);
            }
            let mut live = LiveSet::new();
            live.fill(alloc);
            live.run(alloc);
            live.drain(alloc);
            for growth in Growth::ALL {
                assert_eq!(realloc_growth(alloc, growth), growth.reallocs());
            }
        }
    }

    #[test]
    fn every_single_thread_workload_runs_on_every_allocator() {
        for_each(&mut All);
    }
}
