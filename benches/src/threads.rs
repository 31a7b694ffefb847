//! The multi-threaded workloads: blocks allocated on one thread and freed on another, the
//! case thread caches and per-thread heaps find hardest (mimalloc #177: producer/consumer
//! blowup).

use crate::rng::Rng;
use crate::workloads::must_alloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Blocks the producer hands over per iteration.
pub const HANDOFF_BLOCKS: usize = 10_000;
/// Capacity of the queue between producer and consumer (a power of two above
/// [`HANDOFF_BLOCKS`]): the producer never waits, so on a loaded machine the benchmark measures
/// allocations and remote frees rather than how soon the scheduler runs the other thread.
const QUEUE_SLOTS: usize = 16384;
const _: () = assert!(QUEUE_SLOTS >= HANDOFF_BLOCKS);
const _: () = assert!(QUEUE_SLOTS.is_power_of_two());
/// Threads in the larson-like workload (the machine this was written on has two cores).
pub const LARSON_THREADS: usize = 2;
/// Live blocks per larson thread.
pub const LARSON_LIVE_BLOCKS: usize = 1000;
/// Replacements per larson thread per round.
pub const LARSON_STEPS: usize = 5000;

/// A bounded single-producer single-consumer queue of block pointers that never allocates
/// (a channel would allocate from the global allocator and blur the measurement).
pub(crate) struct Handoff {
    slots: [AtomicPtr<u8>; QUEUE_SLOTS],
    head: AtomicUsize,
    tail: AtomicUsize,
}

impl Handoff {
    pub(crate) fn new() -> Box<Handoff> {
        Box::new(Handoff {
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        })
    }

    /// Empties the queue; only between runs, when no thread uses it.
    pub(crate) fn clear(&mut self) {
        *self.head.get_mut() = 0;
        *self.tail.get_mut() = 0;
    }

    pub(crate) fn push(&self, block: *mut u8) {
        while !self.try_push(block) {
            std::hint::spin_loop();
        }
    }

    /// Pushes `block` unless the queue is full; only the producer calls it.
    pub(crate) fn try_push(&self, block: *mut u8) -> bool {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail - self.head.load(Ordering::Acquire) == QUEUE_SLOTS {
            return false;
        }
        self.slots[tail % QUEUE_SLOTS].store(block, Ordering::Relaxed);
        self.tail.store(tail + 1, Ordering::Release);
        true
    }

    pub(crate) fn pop(&self) -> *mut u8 {
        let head = self.head.load(Ordering::Relaxed);
        while self.tail.load(Ordering::Acquire) == head {
            // Yield rather than spin: with two cores shared by both threads (and by anything
            // else running), spinning would steal the producer's time.
            std::thread::yield_now();
        }
        let block = self.slots[head % QUEUE_SLOTS].load(Ordering::Relaxed);
        self.head.store(head + 1, Ordering::Release);
        block
    }
}

/// One thread allocates [`HANDOFF_BLOCKS`] blocks and passes each to a second thread, which
/// frees it: every free is a remote free.
pub struct ProducerConsumer {
    queue: Box<Handoff>,
}

impl ProducerConsumer {
    /// The queue, allocated once (by the benchmark's own global allocator, not the one
    /// measured).
    pub fn new() -> ProducerConsumer {
        ProducerConsumer {
            queue: Handoff::new(),
        }
    }

    /// One iteration with blocks of `size_bytes` (non-zero).
    pub fn run<G: GlobalAlloc + Sync>(&mut self, alloc: &G, size_bytes: usize) {
        let layout = Layout::from_size_align(size_bytes, 8).expect("a valid layout");
        assert!(layout.size() > 0);
        self.queue.clear();
        let queue = &*self.queue;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..HANDOFF_BLOCKS {
                    // SAFETY: the block is from `alloc` with `layout`, freed exactly once here.
                    unsafe { alloc.dealloc(queue.pop(), layout) };
                }
            });
            for index in 0..HANDOFF_BLOCKS {
                // SAFETY: non-zero layout; one byte written inside the block.
                let block = unsafe { must_alloc(alloc, layout) };
                // SAFETY: as above.
                unsafe { block.write(index as u8) };
                queue.push(block);
            }
        });
    }
}

impl Default for ProducerConsumer {
    fn default() -> Self {
        Self::new()
    }
}

/// A thread's share of the larson live set, movable between threads.
struct Slots(Vec<(*mut u8, Layout)>);
// SAFETY: the pointers are blocks of a `Sync` allocator; whoever holds `Slots` owns them.
unsafe impl Send for Slots {}

/// A larson-like server (Larson & Krishnan, 1998): each thread keeps a live set and replaces
/// random blocks (16 B..=1 KiB); between rounds each thread's live set passes to the next
/// thread, so a block is often freed by a thread other than the one that allocated it, as
/// when a server's worker threads come and go.
pub struct Larson {
    sets: Vec<Slots>,
    round: u64,
}

impl Larson {
    /// Allocates the initial live sets from `alloc`.
    pub fn new<G: GlobalAlloc>(alloc: &G) -> Larson {
        let mut rng = Rng::new(0x1A25_0000);
        let sets = (0..LARSON_THREADS)
            .map(|_| {
                Slots(
                    (0..LARSON_LIVE_BLOCKS)
                        .map(|_| {
                            let layout = rng.layout(16, 1024);
                            // SAFETY: non-zero layout.
                            (unsafe { must_alloc(alloc, layout) }, layout)
                        })
                        .collect(),
                )
            })
            .collect();
        Larson { sets, round: 0 }
    }

    /// One round: every thread does [`LARSON_STEPS`] replacements on the set it inherited.
    pub fn round<G: GlobalAlloc + Sync>(&mut self, alloc: &G) {
        self.round += 1;
        self.sets.rotate_left(1);
        let round = self.round;
        let sets = std::mem::take(&mut self.sets);
        self.sets = std::thread::scope(|scope| {
            let workers: Vec<_> = sets
                .into_iter()
                .enumerate()
                .map(|(thread, mut set)| {
                    scope.spawn(move || {
                        let mut rng = Rng::new(round.wrapping_mul(31).wrapping_add(thread as u64));
                        for _ in 0..LARSON_STEPS {
                            let slot = rng.below(set.0.len());
                            let layout = rng.layout(16, 1024);
                            let (old, old_layout) = set.0[slot];
                            // SAFETY: `old` is live with `old_layout` (this thread owns the
                            // set) and replaced at once; the new layout is non-zero.
                            unsafe {
                                alloc.dealloc(old, old_layout);
                                let block = must_alloc(alloc, layout);
                                block.write(1);
                                set.0[slot] = (block, layout);
                            }
                        }
                        set
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a larson worker panicked"))
                .collect()
        });
    }

    /// Frees every live block (they must come from `alloc`).
    pub fn drain<G: GlobalAlloc>(&mut self, alloc: &G) {
        for set in self.sets.drain(..) {
            for (block, layout) in set.0 {
                // SAFETY: each block is live with this layout and freed once.
                unsafe { alloc.dealloc(block, layout) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::{for_each, Visit};

    struct All;
    impl Visit for All {
        fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, _: &'static str, alloc: &'static G) {
            ProducerConsumer::new().run(alloc, 64);
            let mut larson = Larson::new(alloc);
            larson.round(alloc);
            larson.round(alloc);
            larson.drain(alloc);
        }
    }

    #[test]
    fn threaded_workloads_run_on_every_allocator() {
        for_each(&mut All);
    }
}
