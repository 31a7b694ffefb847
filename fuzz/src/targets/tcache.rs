//! `ThreadCache<Slab>` (the facade's stack, over a buffer): allocate / free / grow / shrink
//! through the cache, blocks crossing between the cache and its backend, unsized free,
//! `flush_thread` and `reclaim_idle`.

use crate::driver::{AllocOp, Driver, Limits};
use crate::input::{Align, Size};
use crate::pages::JunkPages;
use crate::shadow::Shadow;
use arbitrary::Arbitrary;
use heapkit_core::{Allocator, Introspect};
use heapkit_slab::Slab;
use heapkit_tcache::ThreadCache;

/// The buffer under the slab: bins may keep several MiB of freed blocks cached.
pub const BUFFER_BYTES: usize = 64 << 20;

/// The ops of this target.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Op {
    /// A generic op, through the cache.
    Alloc(AllocOp),
    /// A block from the backend directly; it is freed through the cache later (a block of a
    /// class may go either way).
    BackendAlloc {
        /// Requested size.
        size: Size,
        /// Requested alignment.
        align: Align,
    },
    /// A block (from either) freed to the backend directly, past the cache.
    BackendFree {
        /// Which block.
        index: u8,
    },
    /// `deallocate_unsized` through the cache.
    FreeUnsized {
        /// Which block.
        index: u8,
    },
    /// `flush_thread()`: this thread's bins go back to the backend.
    FlushThread,
    /// `reclaim_idle()`: magazines of free slots go back.
    ReclaimIdle,
}

type Cache = ThreadCache<Slab<JunkPages>>;

/// The fuzz target.
pub fn run(data: &[u8]) {
    let cache = ThreadCache::new(Slab::new(JunkPages::new(BUFFER_BYTES)));
    let limits = Limits {
        max_size_bytes: 3 << 20,
        max_align_bytes: 1 << 16,
        must_succeed_below_live_bytes: Some(2 << 20),
        live_accounting: false,
    };
    let cache = Driver::new(cache, limits).run(data, apply);
    cache.flush_thread();
    cache.check().expect("check() after the final flush");
    if let Some(stats) = cache.stats() {
        // The magazine itself is the one block the cache may still hold from the backend.
        assert!(
            stats.live_blocks <= 1,
            "everything was freed and flushed but the backend has live: {stats}"
        );
    }
}

fn apply(driver: &mut Driver<Cache>, op: Op) {
    match op {
        Op::Alloc(op) => driver.apply(op),
        Op::BackendAlloc { size, align } => {
            let layout = driver.layout(size, align);
            if driver.shadow.is_full() {
                return;
            }
            let result = driver.a.backend().allocate(layout);
            driver.admit_or_refused(result, layout, None, None);
        }
        Op::BackendFree { index } => {
            let Some(block) = driver.shadow.take(usize::from(index)) else {
                return;
            };
            Shadow::verify(&block, block.len);
            // SAFETY: every block of the cache is a block of its backend, live, with the
            // layout it was asked with.
            unsafe { driver.a.backend().deallocate(block.ptr, block.layout) };
        }
        Op::FreeUnsized { index } => driver.free_unsized(index),
        Op::FlushThread => {
            driver.a.flush_thread();
            driver.shadow.verify_all();
        }
        Op::ReclaimIdle => {
            driver.a.reclaim_idle();
            driver.shadow.verify_all();
        }
    }
}
