//! Arena and pool workloads: the two allocators that do not free one block at a time
//! (heapkit-bump and bumpalo reset everything at once; heapkit-fixed recycles fixed slots),
//! beside the general-purpose allocators doing the same work block by block.

use crate::rng::Rng;
use crate::workloads::must_alloc;
use heapkit_fixed::{Pool, PoolId, Prefault, Region, RegionLayout};
use heapkit_pages::MmapPages;
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr::NonNull;

/// Objects allocated per arena round (8..=128 B each, log-uniform: a parsed request).
pub const ARENA_OBJECTS: usize = 10_000;
/// Objects a pool round acquires then releases.
pub const POOL_OBJECTS: usize = 1000;

/// The object a pool holds: one cache line, the size of a typical record.
pub type PoolObject = [u64; 8];

/// The layouts of one arena round, drawn up front.
pub fn arena_layouts() -> Vec<Layout> {
    let mut rng = Rng::new(0xA4E4A);
    (0..ARENA_OBJECTS).map(|_| rng.layout(8, 128)).collect()
}

/// One round in a heapkit-bump arena: allocate every layout, then reset.
pub fn heapkit_bump_round(arena: &mut heapkit_bump::Arena, layouts: &[Layout]) {
    for layout in layouts {
        let block = arena
            .try_alloc_layout(*layout)
            .expect("the arena refused memory during a benchmark");
        // SAFETY: the block is at least one byte (layouts are 8 B or more).
        unsafe { block.as_ptr().write(1) };
        black_box(block);
    }
    arena.reset();
}

/// One round in a bumpalo arena: allocate every layout, then reset.
pub fn bumpalo_round(arena: &mut bumpalo::Bump, layouts: &[Layout]) {
    for layout in layouts {
        let block = arena.alloc_layout(*layout);
        // SAFETY: the block is at least one byte (layouts are 8 B or more).
        unsafe { block.as_ptr().write(1) };
        black_box(block);
    }
    arena.reset();
}

/// The "arena per request" shapes: blocks per request and bytes per block. A fresh arena is
/// made for each request and dropped at its end, the way a request-scoped arena is first
/// written (no arena kept across requests).
pub const PER_REQUEST_SHAPES: [(usize, usize); 2] = [(64, 64), (256, 4096)];

/// One request with a fresh heapkit-bump arena over `source`: `count` blocks of `layout`, one
/// byte written in each (so every page is touched), then the arena is dropped.
pub fn heapkit_bump_request<S: heapkit_bump::ChunkSource>(source: S, count: usize, layout: Layout) {
    let arena = heapkit_bump::Arena::with_source(source);
    for _ in 0..count {
        let block = arena
            .try_alloc_layout(layout)
            .expect("the arena refused memory during a benchmark");
        // SAFETY: the block is at least one byte (layouts are 8 B or more).
        unsafe { block.as_ptr().write(1) };
        black_box(block);
    }
}

/// The same request with a fresh bumpalo arena.
pub fn bumpalo_request(count: usize, layout: Layout) {
    let arena = bumpalo::Bump::new();
    for _ in 0..count {
        let block = arena.alloc_layout(layout);
        // SAFETY: the block is at least one byte (layouts are 8 B or more).
        unsafe { block.as_ptr().write(1) };
        black_box(block);
    }
}

/// The same round with a general-purpose allocator: allocate every layout, then free each
/// (what an arena replaces). `blocks` is scratch space of `layouts.len()`.
pub fn global_round<G: GlobalAlloc>(alloc: &G, layouts: &[Layout], blocks: &mut Vec<*mut u8>) {
    blocks.clear();
    for layout in layouts {
        // SAFETY: non-zero layouts; one byte written inside the block.
        unsafe {
            let block = must_alloc(alloc, *layout);
            block.write(1);
            blocks.push(block);
        }
    }
    for (block, layout) in blocks.drain(..).zip(layouts) {
        // SAFETY: each block is live with this layout and freed once.
        unsafe { alloc.dealloc(block, *layout) };
    }
}

/// A region fixed at start-up holding one pool of [`POOL_OBJECTS`] objects, pre-faulted so
/// the benchmark measures the pool and not page faults.
pub fn fixed_region() -> (Region<MmapPages>, PoolId<PoolObject>) {
    let mut layout = RegionLayout::new();
    let id = layout.pool::<PoolObject>("bench", POOL_OBJECTS);
    let region = Region::new(layout, MmapPages::new(), Prefault::Touch)
        .unwrap_or_else(|e| panic!("cannot set up the fixed region: {e}"));
    (region, id)
}

/// One pool round: acquire every slot, then release them in reverse order.
pub fn fixed_pool_round(pool: &mut Pool<'_, PoolObject>, held: &mut Vec<NonNull<PoolObject>>) {
    held.clear();
    for index in 0..POOL_OBJECTS {
        let slot = pool
            .try_acquire_ptr([index as u64; 8])
            .unwrap_or_else(|_| panic!("the pool ran out at {index} of {POOL_OBJECTS}"));
        held.push(slot);
    }
    while let Some(slot) = held.pop() {
        black_box(pool.release_ptr(slot).expect("a pool slot released twice"));
    }
}

/// The same round with a general-purpose allocator and one [`PoolObject`] per block.
pub fn global_pool_round<G: GlobalAlloc>(alloc: &G, held: &mut Vec<*mut u8>) {
    let layout = Layout::new::<PoolObject>();
    held.clear();
    for index in 0..POOL_OBJECTS {
        // SAFETY: non-zero layout, aligned for `PoolObject`, written whole.
        unsafe {
            let block = must_alloc(alloc, layout);
            block.cast::<PoolObject>().write([index as u64; 8]);
            held.push(block);
        }
    }
    while let Some(block) = held.pop() {
        // SAFETY: each block is live with this layout and freed once.
        unsafe { alloc.dealloc(black_box(block), layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_and_pool_rounds_run() {
        let layouts = arena_layouts();
        let mut bump = heapkit_bump::Arena::new();
        heapkit_bump_round(&mut bump, &layouts);
        heapkit_bump_round(&mut bump, &layouts);
        let mut other = bumpalo::Bump::new();
        bumpalo_round(&mut other, &layouts);
        let mut blocks = Vec::with_capacity(layouts.len());
        global_round(&crate::allocators::SYSTEM, &layouts, &mut blocks);
        let (region, id) = fixed_region();
        let mut pool = region.pool(id).unwrap();
        let mut held = Vec::with_capacity(POOL_OBJECTS);
        fixed_pool_round(&mut pool, &mut held);
        fixed_pool_round(&mut pool, &mut held);
        assert!(pool.is_empty());
        let mut raw = Vec::with_capacity(POOL_OBJECTS);
        global_pool_round(&crate::allocators::HEAPKIT, &mut raw);
    }

    #[test]
    fn per_request_arenas_run() {
        for (count, size_bytes) in PER_REQUEST_SHAPES {
            let layout = Layout::from_size_align(size_bytes, 8).unwrap();
            heapkit_bump_request(heapkit_bump::DefaultChunks, count, layout);
            heapkit_bump_request(&heapkit_bump::CHUNK_CACHE, count, layout);
            heapkit_bump_request(heapkit_bump::GLOBAL_CHUNKS, count, layout);
            heapkit_bump_request(MmapPages::new(), count, layout);
            bumpalo_request(count, layout);
        }
    }
}
