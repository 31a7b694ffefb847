//! Loom models of the slot protocol: the crate's own [`Owners`] bitmap and magazine hand-over
//! code (`heapkit_tcache::model`, built over loom's atomics under `cfg(loom)`), driven by model
//! threads that stand in for a cache's users. Loom runs every interleaving (up to a preemption
//! bound) and every outcome the memory orderings allow, and reports a data race on a
//! magazine's contents as a failure.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p heapkit-tcache --test loom --release`
//!
//! The thread-local slot word cannot be modelled (loom's threads share one OS thread): each
//! model thread keeps its slot in a local variable, as the real one keeps it in TLS. A
//! magazine is a [`loom::cell::UnsafeCell`] holding a block count, so that every access to it
//! is checked against the happens-before order that the slot hand-over must provide; freeing a
//! magazine is modelled by writing `FREED` into it, which every later user asserts it never
//! sees.
#![cfg(loom)]

use heapkit_tcache::model::{inspect_idle, magazine_or_install, reclaim, ExitCount, Idle, Owners};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::ptr::{self, NonNull};

/// A magazine's count after a reclaimer freed it.
const FREED: usize = usize::MAX;

/// Slots the models use (the lowest ones: `try_acquire` takes the lowest free slot).
const MODEL_SLOTS: usize = 3;

struct Magazine {
    blocks: UnsafeCell<usize>,
}

/// What one cache would hold: the magazine table (for the first `MODEL_SLOTS` slots), plus the
/// magazines the model's threads may install (made up front, so "making" one is picking it).
struct World {
    owners: Owners,
    entries: [AtomicPtr<Magazine>; MODEL_SLOTS],
    magazines: [Magazine; MODEL_SLOTS],
    give_backs: AtomicUsize,
}

impl World {
    fn new() -> Arc<World> {
        Arc::new(World {
            owners: Owners::new(),
            entries: std::array::from_fn(|_| AtomicPtr::new(empty())),
            magazines: std::array::from_fn(|_| Magazine {
                blocks: UnsafeCell::new(0),
            }),
            give_backs: AtomicUsize::new(0),
        })
    }

    fn magazine(&self, index: usize) -> *mut Magazine {
        ptr::from_ref(&self.magazines[index]).cast_mut()
    }

    /// A thread's first use of the cache: take a slot, then its magazine (inherited, or
    /// magazine `mine` installed). Returns the slot and the magazine.
    fn attach(&self, mine: usize) -> (usize, *mut Magazine) {
        let slot = self.owners.try_acquire().expect("the model has free slots");
        assert!(
            slot < MODEL_SLOTS,
            "slot {slot}: more slots held than threads"
        );
        let magazine = magazine_or_install(&self.entries[slot], empty(), || self.magazine(mine));
        assert!(!magazine.is_null() && magazine != empty());
        (slot, magazine)
    }

    /// Pops or pushes: reads and writes the magazine, which must be live.
    fn use_magazine(&self, magazine: *mut Magazine, add: usize) -> usize {
        // SAFETY: the magazines live in `self`; loom checks that this access is ordered after
        // every other one (it panics on a race).
        unsafe {
            (*magazine).blocks.with_mut(|blocks| {
                assert_ne!(
                    *blocks, FREED,
                    "a thread used a magazine that was reclaimed"
                );
                *blocks += add;
                *blocks
            })
        }
    }

    /// `ThreadCache::reclaim_idle` for one slot: give the magazine's blocks back and free it.
    fn reclaim(&self, slot: usize) -> usize {
        reclaim(
            &self.owners,
            slot,
            &self.entries[slot],
            empty(),
            |magazine| {
                self.give_backs.fetch_add(1, Ordering::Relaxed);
                // SAFETY: as in `use_magazine`.
                unsafe {
                    (*magazine).blocks.with_mut(|blocks| {
                        assert_ne!(*blocks, FREED, "a magazine was reclaimed twice");
                        let had = *blocks;
                        *blocks = FREED;
                        had + 1 // + 1 so that reclaiming an empty magazine still counts
                    })
                }
            },
        )
    }
}

/// The shared empty magazine's stand-in: compared, never dereferenced.
fn empty() -> *mut Magazine {
    NonNull::<Magazine>::dangling().as_ptr()
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// Two threads attach at once: they get different slots, and each uses its magazine alone.
#[test]
fn concurrent_attaches_take_distinct_slots() {
    model(|| {
        let world = World::new();
        let threads: Vec<_> = (0..2)
            .map(|mine| {
                let world = Arc::clone(&world);
                thread::spawn(move || {
                    let (slot, magazine) = world.attach(mine);
                    world.use_magazine(magazine, 1);
                    world.use_magazine(magazine, 1);
                    world.owners.release(slot);
                    slot
                })
            })
            .collect();
        let slots: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        // Both may have had slot 0 one after the other; then they shared its magazine in turn.
        let total: usize = (0..2)
            .map(|i| {
                // SAFETY: every model thread has been joined.
                unsafe { world.magazines[i].blocks.with(|b| *b) }
            })
            .sum();
        assert_eq!(total, 4, "slots {slots:?}: an update was lost");
    });
}

/// A thread exits (gives its slot back) while another attaches: if the second inherits the
/// first one's magazine it sees everything the first wrote into it.
#[test]
fn exit_hands_the_magazine_to_the_next_holder() {
    model(|| {
        let world = World::new();
        let first = {
            let world = Arc::clone(&world);
            thread::spawn(move || {
                let (slot, magazine) = world.attach(0);
                world.use_magazine(magazine, 5);
                world.owners.release(slot); // thread exit
            })
        };
        let second = {
            let world = Arc::clone(&world);
            thread::spawn(move || {
                let (slot, magazine) = world.attach(1);
                let blocks = world.use_magazine(magazine, 1);
                if magazine == world.magazine(0) {
                    assert_eq!(blocks, 6, "inherited a magazine without its blocks");
                }
                world.owners.release(slot);
            })
        };
        first.join().unwrap();
        second.join().unwrap();
    });
}

/// `reclaim_idle` runs while the slot's holder is still using it, then exits: the reclaimer
/// either finds the slot held (and leaves it) or runs after the exit and sees every block.
#[test]
fn reclaim_never_takes_a_held_slot() {
    model(|| {
        let world = World::new();
        let holder = {
            let world = Arc::clone(&world);
            thread::spawn(move || {
                let (slot, magazine) = world.attach(0);
                assert_eq!(slot, 0);
                world.use_magazine(magazine, 2);
                world.use_magazine(magazine, 1);
                world.owners.release(slot);
            })
        };
        let reclaimer = {
            let world = Arc::clone(&world);
            thread::spawn(move || world.reclaim(0))
        };
        holder.join().unwrap();
        let reclaimed = reclaimer.join().unwrap();
        assert!(
            reclaimed == 0 || reclaimed == 3 + 1,
            "reclaimed {reclaimed}"
        );
        assert!(!world.owners.is_held(0), "the reclaimer gave the slot back");
    });
}

/// An exited thread's magazine, a reclaimer and a new thread racing for the slot: the new
/// thread inherits the magazine or the reclaimer frees it, never both, and nobody uses a freed
/// one.
#[test]
fn reclaim_races_a_new_thread_for_an_idle_magazine() {
    model(|| {
        let world = World::new();
        // The exited thread, before the model's threads start.
        let (slot, magazine) = world.attach(0);
        world.use_magazine(magazine, 4);
        world.owners.release(slot);

        let reclaimer = {
            let world = Arc::clone(&world);
            thread::spawn(move || world.reclaim(0))
        };
        let newcomer = {
            let world = Arc::clone(&world);
            thread::spawn(move || {
                let (slot, magazine) = world.attach(1);
                world.use_magazine(magazine, 1);
                world.owners.release(slot);
                (slot, magazine)
            })
        };
        let reclaimed = reclaimer.join().unwrap();
        let (new_slot, new_magazine) = newcomer.join().unwrap();
        let inherited = new_magazine == world.magazine(0);
        match reclaimed {
            0 => {} // the slot was held by the newcomer (or it inherited first)
            5 => assert!(!inherited, "the newcomer used a reclaimed magazine"),
            6 => assert!(inherited && new_slot == 0), // reclaimed after the newcomer left
            other => panic!("reclaimed {other}"),
        }
        assert!(world.give_backs.load(Ordering::Relaxed) <= 1);
    });
}

/// Two threads reclaim the same idle slot at once: its magazine is given back exactly once.
#[test]
fn concurrent_reclaims_give_a_magazine_back_once() {
    model(|| {
        let world = World::new();
        let (slot, magazine) = world.attach(0);
        world.use_magazine(magazine, 7);
        world.owners.release(slot);
        let reclaimers: Vec<_> = (0..2)
            .map(|_| {
                let world = Arc::clone(&world);
                thread::spawn(move || world.reclaim(0))
            })
            .collect();
        let total: usize = reclaimers.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 7 + 1, "the blocks came back once");
        assert_eq!(world.give_backs.load(Ordering::Relaxed), 1);
        assert_eq!(world.entries[0].load(Ordering::Relaxed), empty());
    });
}

/// `for_each_cached` / `idle_cached_bytes` look into an exited thread's magazine while a
/// reclaimer gives it back: the look reads it only while it is live and ordered after the
/// thread's writes, and whichever of the two takes the slot first, the other stands aside.
#[test]
fn an_inspection_racing_a_reclaim_reads_only_a_live_magazine() {
    model(|| {
        let world = World::new();
        let (slot, magazine) = world.attach(0);
        world.use_magazine(magazine, 7);
        world.owners.release(slot);
        let inspector = {
            let world = Arc::clone(&world);
            thread::spawn(move || {
                inspect_idle(&world.owners, 0, &world.entries[0], empty(), |magazine| {
                    // SAFETY: as in `use_magazine`.
                    unsafe { (*magazine).blocks.with(|blocks| *blocks) }
                })
            })
        };
        let reclaimed = world.reclaim(0);
        let inspected = inspector.join().unwrap();
        match inspected {
            Idle::Looked(blocks) => assert_eq!(blocks, 7, "the look read a reclaimed magazine"),
            Idle::Busy(_) | Idle::Empty => assert_eq!(reclaimed, 7 + 1),
        }
        // The reclaimer misses the magazine only while the inspector holds the slot.
        assert!(
            reclaimed == 7 + 1 || matches!(inspected, Idle::Looked(7)),
            "reclaimed {reclaimed}"
        );
        assert!(!world.owners.is_held(0), "both gave the slot back");
    });
}

/// The fork reset keeps only the caller's slot (single-threaded: the child has one thread).
#[test]
fn fork_reset_keeps_only_the_callers_slot() {
    model(|| {
        let owners = Owners::new();
        let slots: Vec<usize> = (0..70).map(|_| owners.try_acquire().unwrap()).collect();
        assert_eq!(slots, (0..70).collect::<Vec<_>>(), "lowest free slot first");
        owners.keep_only(65);
        assert!((0..70).all(|s| owners.is_held(s) == (s == 65)));
        owners.keep_only(heapkit_tcache::SLOT_COUNT); // a sentinel: keep none
        assert!((0..70).all(|s| !owners.is_held(s)));
    });
}

/// A thread exits (gives its slot back and counts the exit) while another refills: a refill
/// that sees the count moved reclaims the exited thread's magazine, with every block it held
/// (`ThreadCache::reclaim_exited`); one that does not see it may leave it for later.
fn exit_then_refill(reorder: bool) {
    model(move || {
        let world = World::new();
        let exits = Arc::new(ExitCount::new());
        let exiting = {
            let (world, exits) = (Arc::clone(&world), Arc::clone(&exits));
            thread::spawn(move || {
                let (slot, magazine) = world.attach(0);
                world.use_magazine(magazine, 5);
                if reorder {
                    exits.release_at_exit_reordered(&world.owners, slot);
                } else {
                    exits.release_at_exit(&world.owners, slot);
                }
            })
        };
        let refilling = {
            let (world, exits) = (Arc::clone(&world), Arc::clone(&exits));
            thread::spawn(move || {
                if exits.load() == 1 {
                    assert_eq!(
                        world.reclaim(0),
                        6,
                        "a refill that saw the exit did not get the magazine back whole"
                    );
                }
            })
        };
        exiting.join().unwrap();
        refilling.join().unwrap();
    });
}

#[test]
fn a_refill_that_sees_an_exit_reclaims_its_magazine() {
    exit_then_refill(false);
}

/// Counting the exit before giving the slot back breaks it. (A `Relaxed` count would not show
/// here: the slot's own `Release`/`Acquire` read-modify-writes order the magazine, and loom's
/// read-modify-writes read the latest value; the count's `Release`/`Acquire` is what the
/// memory model needs for the refill to find the slot free, which loom cannot tell apart.)
#[test]
#[should_panic(expected = "did not get the magazine back whole")]
fn sabotage_counting_before_the_release_lets_a_refill_miss_the_magazine() {
    exit_then_refill(true);
}
