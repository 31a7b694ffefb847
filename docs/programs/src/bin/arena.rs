//! Chapter 6: how a bump arena leaks. Two programs in one:
//!
//! - `arena leak`: requests that each allocate scratch memory and keep one small object
//!   alive: the arena cannot be reset, and what it holds grows with every request.
//! - `arena drop`: a `String` moved into the arena: its heap buffer is never freed, because
//!   the arena runs no destructors (an `ArenaBox` does).
//! - `arena instr N` / `arena instr-bumpalo N`: N calls of `alloc([u64; 2])` in heapkit-bump's
//!   arena or in bumpalo's (for callgrind: `docs/programs/arena-instr.sh`).
//!
//! `cargo run --release --manifest-path docs/programs/Cargo.toml --bin arena -- leak`

use heapkit_bump::{Arena, ArenaBox};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live in it (to see what the arena leaks).
struct CountingSystem;
static SYSTEM_LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to `System`, only adding a counter.
unsafe impl GlobalAlloc for CountingSystem {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        SYSTEM_LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        SYSTEM_LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingSystem = CountingSystem;

fn leak() {
    println!("each request: 1 KiB of scratch + one 16 B record kept for later");
    let arena = Arena::new();
    let mut kept: Vec<&[u64; 2]> = Vec::new();
    for request in 1..=10_000usize {
        let scratch = arena.alloc_slice_fill_copy(1024, 0u8);
        black_box(scratch);
        kept.push(arena.alloc([request as u64, 0]));
        if request.is_power_of_two() && request >= 16 || request == 10_000 {
            println!(
                "after {request:>5} requests: live {:>7} B, arena used {:>8} B, holds {:>8} B in {} chunks",
                kept.len() * 16,
                arena.used_bytes(),
                arena.allocated_bytes(),
                arena.chunk_count()
            );
        }
    }
}

fn drop_demo() {
    let mut arena = Arena::new();
    let before = SYSTEM_LIVE_BYTES.load(Ordering::Relaxed);
    for _ in 0..1000 {
        let name = "x".repeat(100); // a 100-byte heap buffer owned by the String
        arena.alloc(name); // the String moves into the arena; its Drop never runs
    }
    arena.reset();
    // The arena's own chunks come from the global allocator too (an arena per request maps
    // nothing): they are held, not leaked, so they are not counted.
    let leaked = SYSTEM_LIVE_BYTES.load(Ordering::Relaxed) - before - arena.allocated_bytes();
    println!(
        "1000 Strings moved into the arena, arena reset: {leaked} B still live in the system heap"
    );
    let before = SYSTEM_LIVE_BYTES.load(Ordering::Relaxed);
    {
        let arena = Arena::new();
        for _ in 0..1000 {
            let boxed = ArenaBox::new_in("x".repeat(100), &arena);
            black_box(&boxed);
        }
    }
    let leaked = SYSTEM_LIVE_BYTES.load(Ordering::Relaxed) - before;
    println!("1000 Strings in ArenaBoxes:                       {leaked} B still live in the system heap");
}

fn instr(n: usize) {
    let arena = Arena::new();
    for _ in 0..n {
        black_box(arena.alloc(black_box([1u64, 2])));
    }
}

fn instr_bumpalo(n: usize) {
    let bump = bumpalo::Bump::new();
    for _ in 0..n {
        black_box(bump.alloc(black_box([1u64, 2])));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("leak") => leak(),
        Some("drop") => drop_demo(),
        Some("instr") => instr(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000)),
        Some("instr-bumpalo") => {
            instr_bumpalo(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000))
        }
        _ => eprintln!("usage: arena leak | drop | instr N"),
    }
}
