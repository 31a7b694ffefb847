//! heapkit-tcache: one thread's magazine (a bin per class) and the slab classes behind it.
//!
//! What a bin holds is read from the back end, the slab: it counts a block as live from the
//! moment it hands it out until it gets it back, so for one thread
//!
//! ```text
//!   blocks in this thread's bin = slab live blocks of the class
//!                               - blocks the script holds
//!                               - the magazine itself (a block of the slab, measured once)
//! ```
//!
//! and after `flush_thread()` the bins must be empty (asserted). `ThreadCache` does not publish
//! its bins' limits, so the picture shows counts, not limits.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{Allocator, BatchAllocator, Introspect};
use heapkit_docs_programs::svg::{colour, Svg};
use heapkit_pages::BufferPages;
use heapkit_slab::Slab;
use heapkit_tcache::ThreadCache;

type Cache = ThreadCache<Slab<BufferPages<'static>>>;

/// The sizes the script uses, one class each.
const SIZES_BYTES: [usize; 3] = [16, 64, 1024];

/// One class in one frame, in blocks.
struct ClassRow {
    block_bytes: usize,
    /// Blocks the script holds.
    held: usize,
    /// Blocks in this thread's bin.
    cached: usize,
    /// Blocks the class's slabs could hold.
    capacity: usize,
    slabs: usize,
    /// Blocks the slab handed out and got back since the script started (batches included).
    handed_out: usize,
    returned: usize,
}

struct Tour {
    cache: Cache,
    classes: Vec<(usize, Layout)>,
    held: Vec<Vec<NonNull<u8>>>,
    /// Slab live blocks per class with nothing held and nothing cached: the magazine.
    baseline: Vec<usize>,
    /// The slab's (handed out, got back) counters per class when the script starts.
    counters_at_start: Vec<(usize, usize)>,
    frames: Vec<(String, Vec<ClassRow>)>,
}

impl Tour {
    fn new() -> Tour {
        let cache = ThreadCache::new(Slab::new(
            BufferPages::owned(16 << 20, 4096).expect("buffer"),
        ));
        let classes: Vec<(usize, Layout)> = SIZES_BYTES
            .iter()
            .map(|&size| {
                let layout = Layout::from_size_align(size, 8).unwrap();
                (cache.backend().class_of(layout).expect("a class"), layout)
            })
            .collect();
        // Make this thread's magazine (its first allocation does), then empty its bins: what
        // the slab still counts as live is the magazine.
        let (_, first) = classes[0];
        let block = cache.allocate(first).expect("room").cast::<u8>();
        // SAFETY: just allocated with `first`.
        unsafe { cache.deallocate(block, first) };
        cache.flush_thread();
        let stats = |c| cache.backend().class_stats(c);
        let class_count = cache.backend().class_count();
        let baseline = (0..class_count).map(|c| stats(c).live_blocks).collect();
        let counters_at_start = (0..class_count)
            .map(|c| (stats(c).allocations, stats(c).deallocations))
            .collect();
        Tour {
            cache,
            held: vec![Vec::new(); classes.len()],
            classes,
            baseline,
            counters_at_start,
            frames: Vec::new(),
        }
    }

    fn allocate(&mut self, which: usize, count: usize) {
        let layout = self.classes[which].1;
        for _ in 0..count {
            let block = self.cache.allocate(layout).expect("room").cast::<u8>();
            self.held[which].push(block);
        }
    }

    fn free(&mut self, which: usize, count: usize) {
        let layout = self.classes[which].1;
        for _ in 0..count {
            let block = self.held[which].pop().expect("the script holds it");
            // SAFETY: a live block of `layout`, freed once.
            unsafe { self.cache.deallocate(block, layout) };
        }
    }

    fn snapshot(&mut self, what: &str) {
        self.cache.check().expect("consistent cache and slab");
        let rows = self
            .classes
            .iter()
            .zip(&self.held)
            .map(|(&(class, _), held)| {
                let s = self.cache.backend().class_stats(class);
                ClassRow {
                    block_bytes: s.block_bytes,
                    held: held.len(),
                    cached: s.live_blocks - held.len() - self.baseline[class],
                    capacity: s.capacity_blocks,
                    slabs: s.slabs,
                    handed_out: s.allocations - self.counters_at_start[class].0,
                    returned: s.deallocations - self.counters_at_start[class].1,
                }
            })
            .collect();
        self.frames.push((what.to_string(), rows));
    }

    /// The magazine: its class's block size (the one class with a baseline block).
    fn magazine_bytes(&self) -> usize {
        let class = self.baseline.iter().position(|&live| live > 0);
        class.map_or(0, |c| self.cache.backend().class_size(c))
    }
}

/// Draws the tour; returns the picture and its caption.
pub fn tcache_bins() -> (String, String) {
    let mut t = Tour::new();
    t.allocate(0, 100);
    t.allocate(1, 40);
    t.allocate(2, 300);
    t.snapshot("malloc 100 x 16 B, 40 x 64 B, 300 x 1024 B (the bins refill in growing batches)");
    t.free(0, 100);
    t.free(1, 40);
    t.free(2, 300);
    t.snapshot("free them all: the bins take them; the 1024 B bin fills and flushes");
    assert!(
        t.frames[1].1[2].returned > 0,
        "the caption says the 1024 B bin flushed"
    );
    let idle_kib = t.frames[1]
        .1
        .iter()
        .map(|r| r.cached * r.block_bytes)
        .sum::<usize>()
        >> 10;
    t.allocate(1, 20);
    t.snapshot("malloc 20 x 64 B again: served from the bin, the slab sees nothing");
    assert_eq!(
        t.frames[2].1[1].handed_out, t.frames[1].1[1].handed_out,
        "the caption says the bin served them"
    );
    t.free(1, 20);
    let flushed = t.cache.flush_thread();
    t.snapshot(&format!(
        "free them, then flush_thread(): {flushed} blocks go back"
    ));
    assert!(
        t.frames.last().unwrap().1.iter().all(|r| r.cached == 0),
        "a flushed thread has empty bins"
    );

    let row_pitch = 34.0;
    let frame_pitch = 26.0 + row_pitch * t.classes.len() as f64;
    let mut svg = Svg::with_heading(
        900,
        (60.0 + frame_pitch * t.frames.len() as f64) as u32,
        "heapkit-tcache: one thread's bins and the slab classes behind them (bar = the class's slabs)",
        &[
            (colour::USED, "held by the program"),
            (colour::FREE, "in this thread's bin"),
            (colour::UNTOUCHED, "free in the slab"),
        ],
    );
    for (f, (title, rows)) in t.frames.iter().enumerate() {
        let y = 70.0 + frame_pitch * f as f64;
        svg.text(10.0, y, 12, "start", &format!("{}. {title}", f + 1));
        for (r, row) in rows.iter().enumerate() {
            draw_class(&mut svg, y + 8.0 + row_pitch * r as f64, row);
        }
    }
    let caption = format!(
        "{} frames; after the frees the bins hold {idle_kib} KiB that the slab counts as live \
         (the thread's idle memory) until flush_thread() returns {flushed} blocks; the magazine \
         itself is one {} B block of the slab",
        t.frames.len(),
        t.magazine_bytes()
    );
    (svg.finish(), caption)
}

/// One class: a bar the width of its slabs (held, cached, free), and the figures beside it.
fn draw_class(svg: &mut Svg, y: f64, row: &ClassRow) {
    let (x0, bar_px) = (70.0, 360.0);
    svg.text(
        10.0,
        y + 13.0,
        11,
        "start",
        &format!("{:>5} B", row.block_bytes),
    );
    let per_block = bar_px / row.capacity.max(1) as f64;
    let free = row.capacity - row.held - row.cached;
    let mut x = x0;
    for (blocks, fill, what) in [
        (row.held, colour::USED, "held"),
        (row.cached, colour::FREE, "in the bin"),
        (free, colour::UNTOUCHED, "free in the slab"),
    ] {
        if blocks > 0 {
            let w = blocks as f64 * per_block;
            svg.rect(x, y, w, 18.0, fill, &format!("{blocks} blocks {what}"));
            x += w;
        }
    }
    svg.text(
        x0 + bar_px + 10.0,
        y + 9.0,
        10,
        "start",
        &format!(
            "held {:>3}  bin {:>3}  slabs {} ({} blocks)",
            row.held, row.cached, row.slabs, row.capacity
        ),
    );
    svg.text(
        x0 + bar_px + 10.0,
        y + 21.0,
        10,
        "start",
        &format!(
            "slab: handed out {}, got back {}",
            row.handed_out, row.returned
        ),
    );
}
