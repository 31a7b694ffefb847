//! A driver for noise-free instruction counts under callgrind: one workload, one allocator.
//!
//! ```text
//! cargo build --release -p heapkit-benches --example bins_callgrind
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/bins_callgrind <lifo|random|realloc> <who> [rounds]
//! ```
//! `who`: `bins` (`Locked<Bins>`, default config), `bins-bare` (no lock), `bins-nocache`
//! (`Locked<Bins>` without tcache), `bins-fast` (fast bins, no tcache), `tcache-bins`
//! (heapkit-tcache's `ThreadCache<LockedBins>`), `glibc`.
//!
//! Run once with `rounds = 0` to measure the fixed cost (start-up, fill) and subtract it.
//! The workloads are those of `benches/bins.rs`.

use heapkit_bins::{Bins, Config, LockedBins};
use heapkit_core::{GlobalAdapter, Locked};
use heapkit_pages::MmapPages;
use heapkit_tcache::ThreadCache;
use heapkit_testkit::Rng;
use std::alloc::{GlobalAlloc, Layout, System};

type Heap = GlobalAdapter<Locked<Bins<MmapPages>>>;
static BINS: Heap = GlobalAdapter::new(Locked::new(Bins::new(MmapPages::new())));
static BINS_FAST: Heap = GlobalAdapter::new(Locked::new(Bins::with_config(
    MmapPages::new(),
    Config {
        tcache_count: 0,
        ..Config::FAST_BINS
    },
)));
static BINS_NOCACHE: Heap = GlobalAdapter::new(Locked::new(Bins::with_config(
    MmapPages::new(),
    Config::NO_CACHES,
)));
static TCACHE_BINS: ThreadCache<LockedBins<MmapPages>> =
    ThreadCache::new(LockedBins::new(MmapPages::new()));

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn alloc<A: GlobalAlloc>(a: &A, size: usize) -> *mut u8 {
    // SAFETY: the layout is non-zero.
    let p = unsafe { a.alloc(layout(size)) };
    assert!(!p.is_null());
    // SAFETY: p has `size` bytes.
    unsafe { p.write(1) };
    p
}

fn free<A: GlobalAlloc>(a: &A, p: *mut u8, size: usize) {
    // SAFETY: the drivers free live blocks with their layouts.
    unsafe { a.dealloc(p, layout(size)) };
}

fn lifo<A: GlobalAlloc>(a: &A, rounds: usize) -> usize {
    let mut rng = Rng::new(42);
    let mut batch = [(core::ptr::null_mut::<u8>(), 0usize); 100];
    for _ in 0..rounds {
        for slot in batch.iter_mut() {
            let size = 16 + rng.below(512 - 16);
            *slot = (alloc(a, size), size);
        }
        for &(p, size) in batch.iter().rev() {
            free(a, p, size);
        }
    }
    rounds * 2 * batch.len()
}

fn random<A: GlobalAlloc>(a: &A, rounds: usize) -> usize {
    const LIVE: usize = 10_000;
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut slots = Vec::with_capacity(LIVE);
    for _ in 0..LIVE {
        let size = 16 + rng.below(4096 - 16);
        slots.push((alloc(a, size), size));
    }
    for _ in 0..rounds * 1000 {
        let i = rng.below(LIVE);
        let size = 16 + rng.below(4096 - 16);
        free(a, slots[i].0, slots[i].1);
        slots[i] = (alloc(a, size), size);
    }
    for (p, size) in slots {
        free(a, p, size);
    }
    rounds * 2000
}

fn realloc_growth<A: GlobalAlloc>(a: &A, rounds: usize) -> usize {
    const MAX_BYTES: usize = 256 * 1024;
    let mut reallocs = 0;
    for _ in 0..rounds {
        let mut bufs = [(core::ptr::null_mut::<u8>(), 16usize); 8];
        for buf in bufs.iter_mut() {
            buf.0 = alloc(a, 16);
        }
        while bufs.iter().any(|b| b.1 < MAX_BYTES) {
            for buf in bufs.iter_mut().filter(|b| b.1 < MAX_BYTES) {
                let new_size = (buf.1 * 3 / 2).min(MAX_BYTES);
                // SAFETY: a live block with layout(buf.1); the new size is non-zero.
                let p = unsafe { a.realloc(buf.0, layout(buf.1), new_size) };
                assert!(!p.is_null());
                *buf = (p, new_size);
                reallocs += 1;
            }
        }
        for (p, size) in bufs {
            free(a, p, size);
        }
    }
    reallocs
}

fn run<A: GlobalAlloc>(a: &A, work: &str, rounds: usize) -> usize {
    match work {
        "lifo" => lifo(a, rounds),
        "random" => random(a, rounds),
        _ => realloc_growth(a, rounds),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let work = args.get(1).map_or("lifo", String::as_str);
    let who = args.get(2).map_or("bins", String::as_str);
    let rounds = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(100);
    let ops = match who {
        "glibc" => run(&System, work, rounds),
        "bins-fast" => run(&BINS_FAST, work, rounds),
        "bins-bare" => run(
            &GlobalAdapter::new(Bins::new(MmapPages::new())),
            work,
            rounds,
        ),
        "bins-nocache" => run(&BINS_NOCACHE, work, rounds),
        "tcache-bins" => run(&TCACHE_BINS, work, rounds),
        _ => run(&BINS, work, rounds),
    };
    eprintln!("{work} {who}: {ops} measured operations");
}
