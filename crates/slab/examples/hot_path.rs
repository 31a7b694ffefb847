//! A fixed number of alloc+free pairs, for instruction counting under callgrind:
//!
//! ```text
//! cargo build --release -p heapkit-slab --example hot_path
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hot_path slab 1000000
//! ```
//! Run it with two counts and divide the difference in instructions (`Collected`) by the
//! difference in pairs: set-up costs cancel out.
//!
//! A fourth argument `threaded` starts (and joins) a thread before the loop: the process is then
//! no longer single-threaded, so the class lock takes its atomic path (`lock cmpxchg`) instead of
//! the single-threaded shortcut. `time target/release/examples/hot_path slab 50000000 64
//! threaded` shows what that costs.

use heapkit_core::GlobalAdapter;
use heapkit_pages::MmapPages;
use heapkit_slab::Slab;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

static SLAB: GlobalAdapter<Slab<MmapPages>> = GlobalAdapter::new(Slab::new(MmapPages::new()));

fn pairs<A: GlobalAlloc>(a: &A, count: usize, size: usize) {
    let layout = Layout::from_size_align(size, 8).unwrap();
    for _ in 0..count {
        // SAFETY: a non-zero layout; freed with the same layout.
        unsafe {
            let p = a.alloc(black_box(layout));
            a.dealloc(black_box(p), layout);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "slab".into());
    let count: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let size: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(64);
    if args.next().as_deref() == Some("threaded") {
        std::thread::spawn(|| ()).join().unwrap();
        assert!(!heapkit_core::process_is_single_threaded());
    }
    match which.as_str() {
        "slab" => pairs(&SLAB, count, size),
        "glibc" => pairs(&System, count, size),
        other => eprintln!("unknown allocator {other}: use slab or glibc"),
    }
}
