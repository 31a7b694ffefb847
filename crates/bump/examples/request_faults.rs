//! An arena per request, as a new user first writes it: a fresh arena for each request,
//! `ALLOCS` blocks of `SIZE` bytes (one byte written in each), dropped at the end. Prints minor
//! page faults and wall time per request for `Arena::new()` (the process-wide chunk cache),
//! the same arena with chunks from the global allocator (`GLOBAL_CHUNKS`) and over plain
//! `mmap` (the default before), and bumpalo.
//!
//! `cargo run --release -p heapkit-bump --example request_faults [requests]`
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

#[path = "support/faults.rs"]
mod faults;
use faults::minor_faults;

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
fn measure(name: &str, shape: &str, requests: usize, mut request: impl FnMut()) {
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

fn main() {
    let requests = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    for (count, size_bytes) in SHAPES {
        let layout = Layout::from_size_align(size_bytes, 8).expect("a valid layout");
        let shape = format!("{count}x{size_bytes}B");
        measure("Arena::new() (cache)", &shape, requests, || {
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
}
