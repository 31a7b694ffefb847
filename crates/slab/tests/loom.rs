//! Loom models of the slab's cross-thread paths. They run the slab's OWN code — `Slab::allocate`,
//! `deallocate`, `allocate_batch`, `deallocate_batch`, `grow`, `lock_all` — on 2 loom threads
//! over a small `BufferPages`. Under `cfg(loom)` the class locks and the chunk lock (core's
//! `Locked`) are built on a loom `AtomicU32` whose waiters sleep on a modelled futex (a lost
//! wake-up is a deadlock) and each carries a loom cell standing for the data it guards, and
//! the slab's own atomics (owner id and tag, purge settings, the live/peak totals of peak.rs)
//! are loom's (src/sync.rs). So loom explores every interleaving of lock
//! acquisitions and atomic operations up to the preemption bound, every value a `Relaxed` load
//! may return, and fails a model on a data race on a lock-guarded value (an access to a
//! class's list or the chunk table not ordered after the previous holder's by the lock's
//! `Acquire`/`Release`), on a deadlock or livelock (a spin that never ends exceeds loom's
//! branch limit), or on any assertion below.
//!
//! Run (a few minutes in release mode):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p heapkit-slab --test loom --release
//! ```
//!
//! The preemption bound is 3 here (`LOOM_MAX_PREEMPTIONS=N` overrides it), 1 for the
//! three-thread model (the variable can only lower that one).
//! A separate target directory keeps the `--cfg loom` build from invalidating the normal one.
//!
//! What each model proves (for every explored schedule):
//!
//! 1. `remote_free`: blocks that one thread allocates and another frees (while the first keeps
//!    allocating from the same class, past a slab boundary) go back to their slab exactly
//!    once — relisting a full slab, releasing an emptied one; no block is handed out while
//!    live; `check()` passes and the statistics balance afterwards.
//! 2. `refill_release_race`: two threads that each push one class over a slab boundary and
//!    back (a refill takes the chunk lock inside the class lock; the free that empties a slab
//!    releases its slot the same way) never deadlock, never hand a block out twice, and leave
//!    the class and chunk tables consistent. `refill_across_classes` does the same with two
//!    classes, whose threads really meet only at the chunk lock, with purging on every
//!    release.
//! 3. `batch_refill_and_flush`: `allocate_batch` / `deallocate_batch` (what a thread cache's
//!    refill and flush do) from two threads on one class, one flushing blocks the other
//!    allocated: every block comes out once and goes back once.
//! 4. `peak_within_bound_*`: `Stats::peak_bytes` after two threads allocate up to a known
//!    common high point (a rendezvous) and free again: exact when both use one class; within
//!    one 64 KiB granule per small class in flux otherwise (two classes; one class beside a
//!    large block) — inside the documented `CLASS_COUNT x 64 KiB` — and `check()`'s
//!    folded-total invariant holds on every schedule.
//! 5. `large_spans`: large blocks (the chunk lock only) allocated, grown in place, handed over
//!    and freed from two threads.
//! 6. `lock_all_against_refill`: the fork handler's `lock_all`/`unlock_all` (every class lock,
//!    then the chunk lock) against a thread refilling a class: the lock order has no cycle.
//! 7. `check_while_allocating`: `check()` from one thread while another allocates (a large
//!    span, a refill) and frees: every invariant holds whenever all locks are held, so each
//!    update of the shared live/peak totals happens under the lock that guards its counter.
//! 8. `three_threads_one_class`: three threads on one class, one freeing another's block
//!    (preemption bound 1).
//!
//! Each model fails when the code it covers is broken (checked by hand): the lock's `Acquire`
//! (or its unlock's `Release`) weakened to `Relaxed` fails models 1-5, 7 and 8 with a data race
//! on a class list or the chunk table; `lock_all` taking the chunk lock first fails model 6
//! (loom reports a deadlock: each thread asleep on the lock the other holds); a large block's
//! `live.grow` moved after its chunk lock is released fails model 7 ("folded live bytes
//! disagree with the counters").
//!
//! Not modelled: the slab memory itself (free-list links, slab metadata, chunk idents) is raw
//! memory that loom does not track; it is covered by the lock cells (every access to it
//! happens inside a critical section whose cell loom checks) and by `check()`, which walks it.
//! `BufferPages`' own lock keeps `core`'s atomic (it is built in a `const fn`): it holds no
//! loom operation inside, so loom never switches threads while it is held.
#![cfg(loom)]

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{Allocator, BatchAllocator, Introspect, PageSource, Stats};
use heapkit_pages::BufferPages;
use heapkit_slab::{Slab, CLASS_BYTES, CLASS_COUNT, PEAK_GRANULE_BYTES, SLOT_BYTES};
use loom::sync::{mpsc, Arc};
use loom::thread;
use std::sync::Mutex;

/// The slab under test: its pages come from a buffer that outlives every model iteration.
type ModelSlab = Slab<&'static BufferPages<'static>>;

/// The biggest small class: 4 blocks per 64 KiB slab, so a handful of blocks crosses slab
/// boundaries (refill, release).
const BIG_CLASS: usize = CLASS_COUNT - 1;
const BIG_BYTES: usize = CLASS_BYTES[BIG_CLASS] as usize;
const BLOCKS_PER_SLAB: usize = SLOT_BYTES / BIG_BYTES;
/// The class below it (13 KiB-ish): its slabs share chunks with `BIG_CLASS`'s.
const NEXT_CLASS: usize = CLASS_COUNT - 2;
const NEXT_BYTES: usize = CLASS_BYTES[NEXT_CLASS] as usize;

const _: () = assert!(
    BLOCKS_PER_SLAB == 4,
    "the models' block counts assume 4 per slab"
);

/// One buffer per model (a test), reused by its iterations: every iteration drops its slab,
/// which unmaps everything, so each starts from the same empty buffer. 8 MiB holds two
/// chunk-aligned 2 MiB chunks wherever the buffer lands. Leaked: the models need `'static`.
fn pages() -> &'static BufferPages<'static> {
    let pages = BufferPages::owned(8 << 20, 4096).expect("the model's 8 MiB buffer");
    Box::leak(Box::new(pages))
}

/// Runs `f` under loom with a preemption bound of 3 unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(3));
    run(builder, f);
}

/// Runs `f` under loom with a preemption bound of `preemptions`, or `LOOM_MAX_PREEMPTIONS`
/// when that is lower (for the three-thread model, whose state space explodes above 1).
fn model_at_most(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(
        builder
            .preemption_bound
            .map_or(preemptions, |env| env.min(preemptions)),
    );
    run(builder, f);
}

fn run(mut builder: loom::model::Builder, f: impl Fn() + Sync + Send + 'static) {
    // Branches are loom operations in ONE execution (not schedules): `check()` and `stats()`
    // take all 37 locks, so an execution is longer than loom's default 1,000 allows. A spin
    // that never ends still exceeds this.
    builder.max_branches = builder.max_branches.max(20_000);
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&iterations);
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    // Shown with `--nocapture`: how much of the state space the bound let loom explore.
    println!(
        "{} schedules explored",
        iterations.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn big() -> Layout {
    Layout::from_size_align(BIG_BYTES, 16).unwrap()
}

fn next() -> Layout {
    Layout::from_size_align(NEXT_BYTES, 16).unwrap()
}

/// The blocks that are live right now, as the model's threads see them: a block claimed twice
/// was handed out twice. A std mutex is fine here: loom runs one thread at a time and no loom
/// operation happens while it is held, so it is never contended (and loom never sees it).
#[derive(Default)]
struct Board(Mutex<Vec<usize>>);

impl Board {
    /// Records a block just handed out, and stamps it with `tag` (first and last word).
    fn claim(&self, block: NonNull<u8>, len: usize, tag: usize) {
        let addr = block.as_ptr() as usize;
        let mut live = self.0.lock().unwrap();
        assert!(
            !live.contains(&addr),
            "block {addr:#x} handed out while live"
        );
        live.push(addr);
        // SAFETY: a fresh block of at least `len` bytes, 16-aligned, ours until freed.
        unsafe {
            block.as_ptr().cast::<usize>().write(tag);
            block.as_ptr().add(len - 8).cast::<usize>().write(tag);
        }
    }

    /// Checks the stamp and forgets the block, just before it is freed.
    fn release(&self, block: NonNull<u8>, len: usize, tag: usize) {
        let addr = block.as_ptr() as usize;
        // SAFETY: stamped by `claim`, still live.
        let stamps = unsafe {
            (
                block.as_ptr().cast::<usize>().read(),
                block.as_ptr().add(len - 8).cast::<usize>().read(),
            )
        };
        assert_eq!(
            stamps,
            (tag, tag),
            "block {addr:#x} written by someone else while live"
        );
        let mut live = self.0.lock().unwrap();
        let at = live
            .iter()
            .position(|&a| a == addr)
            .expect("freeing a block that is not live");
        live.swap_remove(at);
    }
}

/// What two model threads share.
struct World {
    slab: ModelSlab,
    board: Board,
}

impl World {
    fn new(pages: &'static BufferPages<'static>) -> Arc<World> {
        assert_eq!(
            pages.mapped_bytes(),
            0,
            "the previous iteration left mappings"
        );
        Arc::new(World {
            slab: Slab::new(pages),
            board: Board::default(),
        })
    }

    fn alloc(&self, layout: Layout, tag: usize) -> NonNull<u8> {
        let block = self.slab.allocate(layout).expect("the buffer has room");
        assert!(block.len() >= layout.size());
        let block = block.cast::<u8>();
        assert_eq!(block.as_ptr() as usize % layout.align(), 0);
        self.board.claim(block, layout.size(), tag);
        block
    }

    fn free(&self, block: NonNull<u8>, layout: Layout, tag: usize) {
        self.board.release(block, layout.size(), tag);
        // SAFETY: a live block of this slab with this layout, freed once (the board says so).
        unsafe { self.slab.deallocate(block, layout) };
    }

    /// After every thread joined: the structures are consistent, nothing is live, and the
    /// class counters saw `small_blocks` allocations and as many frees (the counters are the
    /// small classes'; large blocks show only while live).
    fn finish(&self, small_blocks: usize) -> Stats {
        self.slab.check().expect("check() after the threads joined");
        assert!(self.board.0.lock().unwrap().is_empty());
        let stats = self.slab.stats().unwrap();
        assert_eq!((stats.live_blocks, stats.live_bytes), (0, 0), "{stats:?}");
        assert_eq!(
            (stats.allocations, stats.deallocations, stats.failures),
            (small_blocks, small_blocks, 0),
            "{stats:?}"
        );
        self.slab.check().expect("check() after stats()");
        stats
    }
}

/// Runs `work` on a new loom thread with its own handle on `world`.
fn spawn<T: Send + 'static>(
    world: &Arc<World>,
    work: impl FnOnce(&World) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let world = Arc::clone(world);
    thread::spawn(move || work(&world))
}

/// A block address that crosses threads (raw pointers are not `Send`).
#[derive(Copy, Clone, Debug)]
struct Sent(usize);

impl Sent {
    fn of(block: NonNull<u8>) -> Sent {
        Sent(block.as_ptr() as usize)
    }
    fn block(self) -> NonNull<u8> {
        NonNull::new(self.0 as *mut u8).unwrap()
    }
}

const TAG_A: usize = 0xA11C_E000;
const TAG_B: usize = 0xB0B0_0000;

/// Model 1: thread A allocates six blocks of a class (a slab and a half) and hands three of
/// them to thread B, which frees them while A keeps allocating from the same class: B's frees
/// relist the slab A filled, or empty a slab while A refills.
#[test]
fn remote_free() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        let (to_b, from_a) = mpsc::channel::<Sent>();
        let b = spawn(&world, move |world| {
            for _ in 0..3 {
                let block = from_a.recv().unwrap().block();
                world.free(block, big(), TAG_A);
            }
        });
        let kept: Vec<Sent> = spawn(&world, move |world| {
            let mut kept = Vec::new();
            for _ in 0..3 {
                to_b.send(Sent::of(world.alloc(big(), TAG_A))).unwrap();
                kept.push(Sent::of(world.alloc(big(), TAG_A)));
            }
            kept
        })
        .join()
        .unwrap();
        b.join().unwrap();
        for block in kept {
            world.free(block.block(), big(), TAG_A);
        }
        world.finish(6);
    });
}

/// Model 2: both threads take their class past a slab boundary (3 + 3 blocks, 4 per slab)
/// and back: refills (class lock, then chunk lock) race each other and the releases of the
/// slabs the frees empty.
#[test]
fn refill_release_race() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        let worker = |tag: usize| {
            spawn(&world, move |world| {
                let blocks: Vec<_> = (0..3).map(|_| world.alloc(big(), tag)).collect();
                for block in blocks {
                    world.free(block, big(), tag);
                }
            })
        };
        let (a, b) = (worker(TAG_A), worker(TAG_B));
        a.join().unwrap();
        b.join().unwrap();
        let stats = world.finish(6);
        assert!(stats.peak_bytes >= 3 * BIG_BYTES, "{stats:?}");
    });
}

/// Model 2b: two classes, so the threads do not share a class lock and meet at the chunk lock
/// only (slot acquisition, release, and a purge on every release — threshold 0); each thread
/// needs two slabs.
#[test]
fn refill_across_classes() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        world.slab.set_purge_threshold_bytes(0);
        let worker = |layout: Layout, tag: usize| {
            spawn(&world, move |world| {
                let per_slab = SLOT_BYTES / layout.size();
                let blocks: Vec<_> = (0..=per_slab).map(|_| world.alloc(layout, tag)).collect();
                for block in blocks {
                    world.free(block, layout, tag);
                }
            })
        };
        let (a, b) = (worker(big(), TAG_A), worker(next(), TAG_B));
        a.join().unwrap();
        b.join().unwrap();
        world.finish(SLOT_BYTES / BIG_BYTES + 1 + SLOT_BYTES / NEXT_BYTES + 1);
    });
}

/// Takes a batch of `count` blocks of `class` (what a thread cache's refill does) and claims
/// each.
fn take_batch(world: &World, class: usize, count: usize, tag: usize) -> Vec<Sent> {
    let mut out = [core::ptr::null_mut(); 8];
    let got = world.slab.allocate_batch(class, &mut out[..count]);
    assert_eq!(got, count, "the buffer has room");
    let bytes = CLASS_BYTES[class] as usize;
    out[..got]
        .iter()
        .map(|&raw| {
            let block = NonNull::new(raw).expect("a filled batch entry");
            world.board.claim(block, bytes, tag);
            Sent::of(block)
        })
        .collect()
}

/// Gives blocks of `class` back in one batch (a thread cache's flush); `tags` says who
/// stamped each.
fn flush(world: &World, class: usize, blocks: &[(Sent, usize)]) {
    let bytes = CLASS_BYTES[class] as usize;
    let raw: Vec<*mut u8> = blocks
        .iter()
        .map(|&(sent, tag)| {
            world.board.release(sent.block(), bytes, tag);
            sent.0 as *mut u8
        })
        .collect();
    // SAFETY: live blocks of this class, each freed once (the board says so).
    unsafe { world.slab.deallocate_batch(class, &raw) };
}

/// Model 3: batch refill and flush from two threads on one class; B's flush includes the
/// blocks A allocated (a cache flushing blocks freed by a thread other than their allocator).
#[test]
fn batch_refill_and_flush() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        let (to_b, from_a) = mpsc::channel::<Vec<Sent>>();
        let a = spawn(&world, move |world| {
            to_b.send(take_batch(world, BIG_CLASS, 2, TAG_A)).unwrap();
            let mine = take_batch(world, BIG_CLASS, 2, TAG_A);
            let tagged: Vec<_> = mine.into_iter().map(|s| (s, TAG_A)).collect();
            flush(world, BIG_CLASS, &tagged);
        });
        let b = spawn(&world, move |world| {
            let mine = take_batch(world, BIG_CLASS, 3, TAG_B);
            let theirs = from_a.recv().unwrap();
            let mut all: Vec<_> = mine.into_iter().map(|s| (s, TAG_B)).collect();
            all.extend(theirs.into_iter().map(|s| (s, TAG_A)));
            flush(world, BIG_CLASS, &all);
        });
        a.join().unwrap();
        b.join().unwrap();
        world.finish(7);
    });
}

/// Both threads allocate, meet (so the true peak is exactly what both hold there), then free.
/// Returns the peak `stats()` reports after the join. (Loom has no `Barrier`: each thread
/// tells the other it is done allocating and waits to hear the same.)
fn peak_after_barrier(world: &Arc<World>, a: (Layout, usize), b: (Layout, usize)) -> usize {
    let (a_done, a_hears) = mpsc::channel::<()>();
    let (b_done, b_hears) = mpsc::channel::<()>();
    let worker = |(layout, count): (Layout, usize),
                  tag: usize,
                  done: mpsc::Sender<()>,
                  hear: mpsc::Receiver<()>| {
        spawn(world, move |world| {
            let blocks: Vec<_> = (0..count).map(|_| world.alloc(layout, tag)).collect();
            done.send(()).unwrap();
            hear.recv().unwrap();
            for block in blocks {
                world.free(block, layout, tag);
            }
        })
    };
    let ta = worker(a, TAG_A, a_done, b_hears);
    let tb = worker(b, TAG_B, b_done, a_hears);
    ta.join().unwrap();
    tb.join().unwrap();
    let small = |(layout, count): (Layout, usize)| {
        if layout.size() <= BIG_BYTES {
            count
        } else {
            0
        }
    };
    world.finish(small(a) + small(b)).peak_bytes
}

/// The reported peak differs from the true one by less than one granule per small class
/// whose change another fold may have missed.
fn assert_peak_within(reported_bytes: usize, true_bytes: usize, small_classes: usize) {
    let slack_bytes = small_classes * PEAK_GRANULE_BYTES;
    assert!(
        reported_bytes.abs_diff(true_bytes) < slack_bytes.max(1),
        "peak {reported_bytes} vs true {true_bytes} (slack {slack_bytes})"
    );
    assert!(
        reported_bytes.abs_diff(true_bytes) < CLASS_COUNT * PEAK_GRANULE_BYTES,
        "outside the documented bound"
    );
}

/// Model 4a: one class from both threads: the class lock serialises them, so the peak is
/// exact (its fold at `stats()` records the class's high point).
#[test]
fn peak_within_bound_one_class() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        let peak = peak_after_barrier(&world, (big(), 3), (big(), 2));
        assert_eq!(peak, 5 * BIG_BYTES);
    });
}

/// Model 4b: two classes (5 blocks crosses a granule fold in the big class) and a large
/// block beside one class: within one granule per class.
#[test]
fn peak_within_bound_two_sources() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        let peak = peak_after_barrier(&world, (big(), 5), (next(), 2));
        assert_peak_within(peak, 5 * BIG_BYTES + 2 * NEXT_BYTES, 2);
        drop(world);
        let world = World::new(pages);
        let large = Layout::from_size_align(2 * SLOT_BYTES, 16).unwrap();
        let peak = peak_after_barrier(&world, (big(), 3), (large, 1));
        assert_peak_within(peak, 3 * BIG_BYTES + 2 * SLOT_BYTES, 1);
    });
}

/// Model 5: large spans (chunk lock only) from two threads: A allocates one, hands it to B,
/// then allocates another and grows it in place; B allocates its own and frees both.
#[test]
fn large_spans() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        let one = Layout::from_size_align(SLOT_BYTES, 16).unwrap();
        let two = Layout::from_size_align(2 * SLOT_BYTES, 16).unwrap();
        let (to_b, from_a) = mpsc::channel::<Sent>();
        let a = spawn(&world, move |world| {
            to_b.send(Sent::of(world.alloc(two, TAG_A))).unwrap();
            let block = world.alloc(one, TAG_A);
            world.board.release(block, one.size(), TAG_A);
            // SAFETY: a live block of this slab with layout `one`.
            let grown = unsafe { world.slab.grow(block, one, two) }.expect("room to grow");
            let grown = grown.cast::<u8>();
            world.board.claim(grown, two.size(), TAG_A);
            world.free(grown, two, TAG_A);
        });
        let b = spawn(&world, move |world| {
            let mine = world.alloc(one, TAG_B);
            let theirs = from_a.recv().unwrap().block();
            world.free(theirs, two, TAG_A);
            world.free(mine, one, TAG_B);
        });
        a.join().unwrap();
        b.join().unwrap();
        let stats = world.finish(0);
        assert_eq!(stats.reallocations, 1, "{stats:?}");
    });
}

/// Model 6: the fork prepare/parent handlers' `lock_all`/`unlock_all` against a thread whose
/// allocations refill a class (class lock, then chunk lock) and whose frees release a slab.
#[test]
fn lock_all_against_refill() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        let b = spawn(&world, move |world| {
            let blocks: Vec<_> = (0..BLOCKS_PER_SLAB + 1)
                .map(|_| world.alloc(big(), TAG_B))
                .collect();
            for block in blocks {
                world.free(block, big(), TAG_B);
            }
        });
        world.slab.lock_all();
        // SAFETY: this thread took every lock just above.
        unsafe { world.slab.unlock_all() };
        b.join().unwrap();
        world.finish(BLOCKS_PER_SLAB + 1);
    });
}

/// Model 7: `check()` (every class lock, then the chunk lock) from one thread while another
/// allocates and frees a large block and refills a class: every invariant, the folded live
/// total against the counters included, holds whenever all the locks are held — so every
/// update of the shared totals happens inside the lock that guards its counter.
#[test]
fn check_while_allocating() {
    let pages = pages();
    model(move || {
        let world = World::new(pages);
        let b = spawn(&world, move |world| {
            let large = Layout::from_size_align(2 * SLOT_BYTES, 16).unwrap();
            let span = world.alloc(large, TAG_B);
            let small = world.alloc(big(), TAG_B);
            world.free(span, large, TAG_B);
            world.free(small, big(), TAG_B);
        });
        world
            .slab
            .check()
            .expect("check() while a thread allocates");
        b.join().unwrap();
        world.finish(1);
    });
}

/// Model 8: three threads on one class (four blocks, a slab's worth, live at most), one of
/// them freeing a block another allocated: the class lock with three contenders, and the
/// release of the slab a refill may have started. Bound 1 at most: three threads multiply the
/// schedules (bound 2 runs for many minutes).
#[test]
fn three_threads_one_class() {
    let pages = pages();
    model_at_most(1, move || {
        let world = World::new(pages);
        let (to_c, from_a) = mpsc::channel::<Sent>();
        let a = spawn(&world, move |world| {
            let kept = world.alloc(big(), TAG_A);
            to_c.send(Sent::of(world.alloc(big(), TAG_A))).unwrap();
            world.free(kept, big(), TAG_A);
        });
        let b = spawn(&world, move |world| {
            let block = world.alloc(big(), TAG_B);
            world.free(block, big(), TAG_B);
        });
        let c = spawn(&world, move |world| {
            let mine = world.alloc(big(), TAG_B + 1);
            world.free(from_a.recv().unwrap().block(), big(), TAG_A);
            world.free(mine, big(), TAG_B + 1);
        });
        for t in [a, b, c] {
            t.join().unwrap();
        }
        world.finish(4);
    });
}
