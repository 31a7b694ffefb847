//! A guided tour of the boundary-tag heap: a short script of mallocs and frees, with the heap
//! drawn after every step (chunks, their states, and the bins).
//!
//! Run: `cargo run -p heapkit-bins --example bins_walkthrough`

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_bins::{Bins, ChunkState, Config};
use heapkit_core::{Allocator, Introspect, UnsizedAllocator};
use heapkit_pages::BufferPages;

/// Bytes per character in the bar drawing.
const BYTES_PER_CHAR: usize = 64;

struct Tour {
    heap: Bins<BufferPages<'static>>,
    names: Vec<(usize, char)>,
    step: usize,
}

impl Tour {
    fn name_of(&self, chunk_addr: usize) -> Option<char> {
        self.names
            .iter()
            .find(|(addr, _)| *addr == chunk_addr)
            .map(|n| n.1)
    }

    fn malloc(&mut self, name: char, size: usize) -> NonNull<u8> {
        let block = self
            .heap
            .allocate(Layout::from_size_align(size, 8).unwrap())
            .expect("the tour's heap is large enough");
        let ptr = block.cast::<u8>();
        let chunk_addr = ptr.as_ptr() as usize - 16;
        self.names.retain(|n| n.1 != name && n.0 != chunk_addr);
        self.names.push((ptr.as_ptr() as usize - 16, name));
        self.show(&format!("{name} = malloc({size})"));
        ptr
    }

    fn free(&mut self, name: char, ptr: NonNull<u8>) {
        // SAFETY: the tour frees each live block once.
        unsafe { self.heap.deallocate_unsized(ptr) };
        self.names.retain(|n| n.1 != name);
        self.show(&format!("free({name})"));
    }

    fn show(&mut self, what: &str) {
        self.step += 1;
        self.heap
            .check()
            .expect("the heap is consistent after every step");
        println!("\nstep {}: {what}", self.step);
        let mut bar = String::new();
        for chunk in self.heap.heap_map() {
            let (label, fill) = match chunk.state {
                ChunkState::Used => {
                    let name = self.name_of(chunk.addr).unwrap_or('?');
                    (format!("used  {name}"), name)
                }
                ChunkState::Free { bin } => {
                    (format!("FREE  bin {bin:>3} ({})", bin_name(bin)), '.')
                }
                ChunkState::Fast { bin } => (format!("fast  bin {bin}"), ','),
                ChunkState::Cached { bin } => (format!("tcache bin {bin}"), ','),
                ChunkState::Top => ("TOP".to_string(), ' '),
                ChunkState::Fence => ("fence".to_string(), '|'),
            };
            println!(
                "  seg {} +{:>5}  {:>6} B  {label}",
                chunk.segment, chunk.offset_bytes, chunk.size_bytes
            );
            let chars = (chunk.size_bytes / BYTES_PER_CHAR).clamp(2, 24);
            bar.push('[');
            bar.extend(std::iter::repeat_n(fill, chars - 1));
        }
        println!("  heap: {bar}]");
        for bin in 1..heapkit_bins::BIN_COUNT {
            let chunks: Vec<String> = self
                .heap
                .bin_chunks(bin)
                .map(|addr| format!("{:#x}", addr & 0xffff))
                .collect();
            if !chunks.is_empty() {
                println!(
                    "  bin {bin:>3} ({}): {}",
                    bin_name(bin),
                    chunks.join(" -> ")
                );
            }
        }
        let f = self.heap.fragmentation();
        println!(
            "  free {} B in {} chunks + top {} B; largest free {} B; mmapped {} B",
            f.free_bytes - f.top_bytes,
            f.free_chunks,
            f.top_bytes,
            f.largest_free_bytes,
            f.mmapped_bytes
        );
    }
}

fn bin_name(bin: usize) -> &'static str {
    match bin {
        1 => "unsorted",
        2..=63 => "small",
        _ => "large",
    }
}

fn main() {
    let config = Config {
        mmap_threshold_bytes: 8 * 1024,
        dynamic_mmap_threshold: false,
        top_pad_bytes: 0,
        // The bare arena, so that every free shows its coalescing (the tcache would keep
        // these small chunks aside, marked in use).
        ..Config::NO_CACHES
    };
    let mut tour = Tour {
        heap: Bins::with_config(BufferPages::owned(256 * 1024, 4096).unwrap(), config),
        names: Vec::new(),
        step: 0,
    };
    println!("A boundary-tag heap: each line is a chunk (offset in its segment, size, state).");
    println!("The first chunk starts after the bin sentinels (2064 B) at the start of the heap.");
    let a = tour.malloc('a', 100);
    let b = tour.malloc('b', 200);
    let c = tour.malloc('c', 300);
    let d = tour.malloc('d', 1500);
    let e = tour.malloc('e', 40);
    // A freed chunk goes to the unsorted bin first.
    tour.free('b', b);
    // Freeing a neighbour coalesces: a and b become one free chunk (boundary tags).
    tour.free('a', a);
    // The next malloc sorts the unsorted bin, then splits the free chunk (best fit).
    let f = tour.malloc('f', 64);
    // c's neighbours: the free remainder on the left, d on the right.
    tour.free('c', c);
    // A large free chunk lands in a large bin once sorted.
    tour.free('d', d);
    let g = tour.malloc('g', 2000);
    // A huge request bypasses the heap: a run of its own from the page source.
    let h = tour.malloc('h', 20 * 1024);
    tour.free('h', h);
    // Realloc grows in place into the top chunk when the block is the last one.
    let old = Layout::from_size_align(40, 8).unwrap();
    let new = Layout::from_size_align(600, 8).unwrap();
    // SAFETY: e is live with layout `old`.
    let e2 = unsafe { tour.heap.grow(e, old, new) }.unwrap();
    assert_eq!(e2.cast::<u8>(), e, "grew in place");
    tour.show("e = realloc(e, 600)  (in place, into top)");
    tour.free('g', g);
    // Freeing the last block before top merges everything back into top.
    tour.free('e', e);
    tour.free('f', f);
}
