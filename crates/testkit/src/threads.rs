//! The multi-threaded stress: blocks cross threads and are freed by threads that did not
//! allocate them.

use crate::model::check_after;
use crate::pattern;
use crate::rng::Rng;
use crate::suite::Suite;
use heapkit_core::{Allocator, Introspect};
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Mutex;

const THREADS: usize = if cfg!(miri) { 2 } else { 4 };
const OPS_PER_THREAD: usize = if cfg!(miri) { 40 } else { 20_000 };
/// Each thread keeps at most this many blocks of its own before freeing one.
const OWN_BLOCKS_MAX: usize = 64;
/// Blocks waiting in the shared hand-off pool; past this, a thread frees from the pool.
const POOL_BLOCKS_MAX: usize = 256;

#[derive(Clone, Copy)]
struct Handoff {
    ptr: NonNull<u8>,
    layout: Layout,
    seed: u8,
}

// SAFETY: a hand-off is a block plus its description; whichever thread holds it owns the block,
// and the allocator under test is `Sync`, so the block may be freed from any thread.
unsafe impl Send for Handoff {}

fn verify_and_free<A: Allocator>(suite: &Suite, a: &A, h: Handoff) {
    let ptr = h.ptr.as_ptr();
    // SAFETY: the block is live (it was taken out of a list exactly once) and `size` bytes long.
    if let Some(at) = unsafe { pattern::first_mismatch(ptr, h.layout.size(), h.seed) } {
        panic!(
            "{}: block {ptr:p} ({:?}) was corrupted at byte {at} while it crossed threads",
            suite.name, h.layout
        );
    }
    // SAFETY: as above; the layout is the one it was allocated with.
    unsafe { a.deallocate(h.ptr, h.layout) };
}

fn worker<A: Allocator>(suite: &Suite, a: &A, pool: &Mutex<Vec<Handoff>>, thread_index: usize) {
    let mut rng = Rng::new(
        0x9E37_79B9_7F4A_7C15 ^ (thread_index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    let mut own: Vec<Handoff> = Vec::with_capacity(OWN_BLOCKS_MAX);
    for op in 0..OPS_PER_THREAD {
        match rng.below(4) {
            0 | 1 => {
                let size = rng.size_skewed_small(suite.max_size_bytes);
                let align = 1usize << rng.below(5);
                let layout = Layout::from_size_align(size, align).expect("valid layout");
                let Ok(block) = a.allocate(layout) else {
                    assert!(
                        !suite.must_succeed(size, align),
                        "{}: allocate({layout:?}) failed under threads",
                        suite.name
                    );
                    continue;
                };
                let seed = (op as u8) ^ (thread_index as u8).wrapping_mul(31);
                let ptr = block.cast::<u8>();
                let misaligned = ptr.as_ptr() as usize % align != 0;
                assert!(
                    !misaligned,
                    "{}: misaligned block under threads",
                    suite.name
                );
                // SAFETY: a fresh block of at least `size` bytes.
                unsafe { pattern::fill(ptr.as_ptr(), size, seed) };
                own.push(Handoff { ptr, layout, seed });
                if own.len() > OWN_BLOCKS_MAX {
                    let victim = own.swap_remove(rng.below(own.len()));
                    verify_and_free(suite, a, victim);
                }
            }
            2 => {
                if let Some(h) = own.pop() {
                    let mut shared = pool.lock().expect("pool lock");
                    shared.push(h);
                    if shared.len() > POOL_BLOCKS_MAX {
                        let victim = shared.swap_remove(0);
                        drop(shared);
                        verify_and_free(suite, a, victim);
                    }
                }
            }
            _ => {
                let taken = pool.lock().expect("pool lock").pop();
                if let Some(h) = taken {
                    verify_and_free(suite, a, h);
                }
            }
        }
    }
    for h in own {
        verify_and_free(suite, a, h);
    }
}

pub fn run<A: Allocator + Introspect + Sync>(suite: &Suite, a: &A) {
    let pool: Mutex<Vec<Handoff>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for thread_index in 0..THREADS {
            let pool = &pool;
            scope.spawn(move || worker(suite, a, pool, thread_index));
        }
    });
    for h in pool.into_inner().expect("pool lock") {
        verify_and_free(suite, a, h);
    }
    if let Err(message) = check_after(suite, a, &"the threaded stress") {
        panic!("{message}");
    }
    if suite.live_accounting {
        if let Some(stats) = a.stats() {
            assert!(
                stats.live_bytes == 0 && stats.live_blocks == 0,
                "{}: after the threaded stress everything was freed but stats say live: {stats}",
                suite.name
            );
        }
    }
}
