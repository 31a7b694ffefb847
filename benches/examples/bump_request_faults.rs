//! An arena per request, as a new user first writes it: a fresh arena for each request,
//! `ALLOCS` blocks of `SIZE` bytes (one byte written in each), dropped at the end. Prints minor
//! page faults and wall time per request for `Arena::new()` (`DefaultChunks`: small chunks
//! from the global allocator, large ones from the chunk cache), the two designs alone (every
//! chunk from `CHUNK_CACHE`; every chunk from `GLOBAL_CHUNKS`), plain `mmap` (the default
//! before), and bumpalo.
//!
//! `cargo run --release -p heapkit-benches --example bump_request_faults [requests] [row filter]`
//!
//! Then paired timing: batches of heapkit and bumpalo requests alternate, and the median of
//! the per-pair time ratios is printed (robust to a shared machine's load drifting).
//!
//! Faults are read from `/proc/self/stat` around the whole loop (after one warm-up request),
//! so they count the kernel's work: a fresh mapping per request costs a map, a first-touch
//! fault per page and an unmap, which a chunk kept resident does not. Time is
//! printed as an indication only; the criterion suite (`cargo bench -p heapkit-benches --bench
//! arena_pool -- per_request`) is the benchmark.

use std::alloc::Layout;
use std::hint::black_box;
use std::time::Instant;

use heapkit_bump::{Arena, ChunkSource};
use heapkit_pages::MmapPages;

use heapkit_testkit::minor_faults;

const DEFAULT_REQUESTS: usize = 20_000;
/// The two shapes of the issue: (blocks per request, bytes per block).
const SHAPES: [(usize, usize); 2] = [(64, 64), (256, 4096)];

/// One request in a fresh heapkit-bump arena over `source`.
fn heapkit_request<S: ChunkSource>(source: S, count: usize, layout: Layout) {
    let arena = Arena::with_source(source);
    for _ in 0..count {
        let block = arena.alloc_layout(layout);
        // SAFETY: the block is at least one byte long.
        unsafe { block.as_ptr().write(1) };
        black_box(block);
    }
}

/// One request in a fresh bumpalo arena.
fn bumpalo_request(count: usize, layout: Layout) {
    let arena = bumpalo::Bump::new();
    for _ in 0..count {
        let block = arena.alloc_layout(layout);
        // SAFETY: as above.
        unsafe { block.as_ptr().write(1) };
        black_box(block);
    }
}

/// Runs `request` `requests` times after one warm-up; prints faults and time per request.
/// Rows whose name or shape does not contain the filter (the second argument) are skipped.
fn measure(name: &str, shape: &str, requests: usize, mut request: impl FnMut()) {
    let filter = std::env::args().nth(2).unwrap_or_default();
    if !name.contains(&filter) && !shape.contains(&filter) {
        return;
    }
    request();
    let faults_before = minor_faults();
    let start = Instant::now();
    for _ in 0..requests {
        request();
    }
    let nanos = start.elapsed().as_nanos() as f64;
    let faults = minor_faults() - faults_before;
    println!(
        "{name:<20} {shape:<10} {:>9.3} faults/request  {:>9.3} us/request  ({faults} faults in {requests} requests)",
        faults as f64 / requests as f64,
        nanos / 1000.0 / requests as f64,
    );
}

/// Batches of requests timed in alternation (order swapped every pair): the median of the
/// per-pair ratios is far less sensitive to load drifting on a shared machine than two runs.
const PAIRS: usize = 41;
const REQUESTS_PER_BATCH: usize = 200;

/// Nanoseconds for a batch of `request`s.
fn batch_nanos(request: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..REQUESTS_PER_BATCH {
        request();
    }
    start.elapsed().as_nanos() as f64
}

/// Prints the median time ratio of `ours` to `theirs` over alternating batches.
fn paired(name: &str, shape: &str, mut ours: impl FnMut(), mut theirs: impl FnMut()) {
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|pair| {
            if pair % 2 == 0 {
                let ours_nanos = batch_nanos(&mut ours);
                ours_nanos / batch_nanos(&mut theirs)
            } else {
                let theirs_nanos = batch_nanos(&mut theirs);
                batch_nanos(&mut ours) / theirs_nanos
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "paired {name:<13} / bumpalo {shape:<10} median {:.3}x  (quartiles {:.3}-{:.3}, {PAIRS} pairs of {REQUESTS_PER_BATCH} requests)",
        ratios[PAIRS / 2],
        ratios[PAIRS / 4],
        ratios[3 * PAIRS / 4],
    );
}

fn main() {
    let requests = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    for (count, size_bytes) in SHAPES {
        let layout = Layout::from_size_align(size_bytes, 8).expect("a valid layout");
        let shape = format!("{count}x{size_bytes}B");
        measure("Arena::new()", &shape, requests, || {
            heapkit_request(heapkit_bump::DefaultChunks, count, layout)
        });
        measure("CHUNK_CACHE", &shape, requests, || {
            heapkit_request(&heapkit_bump::CHUNK_CACHE, count, layout)
        });
        measure("GLOBAL_CHUNKS", &shape, requests, || {
            heapkit_request(heapkit_bump::GLOBAL_CHUNKS, count, layout)
        });
        measure("MmapPages (before)", &shape, requests, || {
            heapkit_request(MmapPages::new(), count, layout)
        });
        measure("bumpalo", &shape, requests, || {
            bumpalo_request(count, layout)
        });
    }
    for (count, size_bytes) in SHAPES {
        let layout = Layout::from_size_align(size_bytes, 8).expect("a valid layout");
        let shape = format!("{count}x{size_bytes}B");
        let theirs = || bumpalo_request(count, layout);
        paired(
            "Arena::new()",
            &shape,
            || heapkit_request(heapkit_bump::DefaultChunks, count, layout),
            theirs,
        );
        paired(
            "CHUNK_CACHE",
            &shape,
            || heapkit_request(&heapkit_bump::CHUNK_CACHE, count, layout),
            theirs,
        );
        paired(
            "GLOBAL_CHUNKS",
            &shape,
            || heapkit_request(heapkit_bump::GLOBAL_CHUNKS, count, layout),
            theirs,
        );
    }
}
