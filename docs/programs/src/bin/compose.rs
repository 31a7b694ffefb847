//! Chapter 8: the worked example at work. `SizeSplit` (src/compose.rs) sends small blocks to a
//! thread-cached slab and the rest to a locked boundary-tag heap.
//!
//! `cargo run --manifest-path docs/programs/Cargo.toml --bin compose`

use core::alloc::Layout;
use heapkit_bins::Bins;
use heapkit_core::{Allocator, Introspect, Locked};
use heapkit_docs_programs::compose::SizeSplit;
use heapkit_pages::MmapPages;
use heapkit_slab::Slab;
use heapkit_tcache::ThreadCache;

type Heap = SizeSplit<ThreadCache<Slab<MmapPages>>, Locked<Bins<MmapPages>>>;

/// Live blocks and bytes on each side. The small side's back end counts as live what the
/// thread cache holds (its magazine and cached blocks) until `flush_thread`.
fn live(heap: &Heap) -> String {
    let (s, l) = (heap.small.stats().unwrap(), heap.large.stats().unwrap());
    format!(
        "small side {} blocks / {} B, large side {} blocks / {} B",
        s.live_blocks, s.live_bytes, l.live_blocks, l.live_bytes
    )
}

fn main() {
    let heap: Heap = SizeSplit {
        small: ThreadCache::new(Slab::new(MmapPages::new())),
        large: Locked::new(Bins::new(MmapPages::new())),
    };
    let mut blocks = Vec::new();
    for size in [24usize, 100, 256, 257, 1000, 5000, 100_000] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let block = heap.allocate(layout).unwrap();
        let side = if size <= heapkit_docs_programs::compose::SMALL_MAX_BYTES {
            "small (tcache + slab)"
        } else {
            "large (bins)"
        };
        println!(
            "malloc({size:>6}) -> {:>6} usable B from {side}",
            block.len()
        );
        blocks.push((block.cast::<u8>(), layout));
    }
    heap.check().expect("both halves consistent");
    println!("live: {}", live(&heap));
    for (ptr, layout) in blocks {
        // SAFETY: each block is live and freed once with its layout.
        unsafe { heap.deallocate(ptr, layout) };
    }
    heap.check().expect("both halves consistent");
    println!("after freeing everything: {}", live(&heap));
    let flushed = heap.small.flush_thread();
    println!(
        "flush_thread() gave back {flushed} cached blocks: {}",
        live(&heap)
    );
}
