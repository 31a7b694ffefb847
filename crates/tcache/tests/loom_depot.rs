//! Loom models of the depot (`src/depot.rs`): the crate's own `Depot` over loom's atomics,
//! driven by model threads that shelve and take batches as the cache's flushes and refills do.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p heapkit-tcache --test loom_depot --release`
//!
//! A batch is a [`Batch`] whose payload is a [`loom::cell::UnsafeCell`]: the pusher writes it
//! before the push (as a flush writes the chain's links before shelving it) and the taker reads
//! and overwrites it after the take (as a refill follows the links and hands the blocks out),
//! so loom reports any access that the push's `Release` and the take's `Acquire` do not order.
//!
//! 1. `pushed_batches_are_taken_once`: two threads shelve a batch each while a third takes:
//!    every batch comes off the shelf exactly once, with the payload its pusher wrote.
//! 2. `two_takers_race_for_one_batch`: one of them gets it, never both.
//! 3. `a_full_shelf_refuses_and_the_pusher_keeps_its_batch`: with room for one entry, two
//!    pushes race; the loser gets `false` and still owns its batch (it may write it).
//! 4. The sabotage checks: the same hand-over with the push's or the take's ordering weakened
//!    to `Relaxed` (`push_weakened`, `take_weakened`) must fail — loom reports the payload
//!    access as a causality violation. If a change to the depot ever made these pass, the
//!    models above would no longer be checking anything.
#![cfg(loom)]

use heapkit_tcache::model::{Depot, DEPOT_ENTRIES};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// A stand-in for a chain of blocks: what its links would say.
struct Batch {
    payload: UnsafeCell<usize>,
}

/// Blocks per batch in the models (any length the entry can hold).
const BLOCKS: usize = 32;

/// A batch that is shelved and taken as a raw pointer, as the cache's chains are. Leaked on
/// purpose: a model run is short, and the batches must outlive every thread that may see them.
fn new_batch(payload: usize) -> *mut u8 {
    Box::into_raw(Box::new(Batch {
        payload: UnsafeCell::new(payload),
    }))
    .cast()
}

/// Writes a batch's payload (the pusher owns it).
fn write(batch: *mut u8, payload: usize) {
    // SAFETY: a leaked `Batch`; loom checks that no other access races this one.
    unsafe { (*batch.cast::<Batch>()).payload.with_mut(|p| *p = payload) }
}

/// Reads a taken batch's payload and marks it consumed (the taker owns it now).
fn consume(batch: *mut u8) -> usize {
    // SAFETY: as in `write`.
    unsafe {
        (*batch.cast::<Batch>()).payload.with_mut(|p| {
            let seen = *p;
            *p = usize::MAX;
            seen
        })
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// Shelves a fresh batch whose payload is `payload` (written first, as a flush links a chain).
fn shelve(depot: &Depot, payload: usize, weakened: bool) {
    let batch = new_batch(0);
    write(batch, payload);
    let pushed = if weakened {
        depot.push_weakened(batch, BLOCKS, DEPOT_ENTRIES)
    } else {
        depot.push(batch, BLOCKS, DEPOT_ENTRIES)
    };
    assert!(pushed, "the shelf has room");
}

/// Takes one batch if there is one and consumes it; returns its payload.
fn take_one(depot: &Depot, weakened: bool) -> Option<usize> {
    let taken = if weakened {
        depot.take_weakened()
    } else {
        depot.take()
    };
    taken.map(|(first, blocks)| {
        assert_eq!(blocks, BLOCKS, "the length travels with the batch");
        consume(first)
    })
}

/// Runs `body` on a new model thread with a handle to the shared shelf.
fn spawn_on<T: Send + 'static>(
    depot: &Arc<Depot>,
    body: impl FnOnce(&Depot) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let depot = Arc::clone(depot);
    thread::spawn(move || body(&depot))
}

#[test]
fn pushed_batches_are_taken_once() {
    model(|| {
        let depot = Arc::new(Depot::new());
        let pushers: Vec<_> = [1, 2]
            .into_iter()
            .map(|payload| spawn_on(&depot, move |depot| shelve(depot, payload, false)))
            .collect();
        let taker = spawn_on(&depot, |depot| take_one(depot, false));
        for pusher in pushers {
            pusher.join().unwrap();
        }
        let mut seen: Vec<usize> = taker.join().unwrap().into_iter().collect();
        while let Some(payload) = take_one(&depot, false) {
            seen.push(payload);
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, 2], "every batch is taken exactly once");
    });
}

#[test]
fn two_takers_race_for_one_batch() {
    model(|| {
        let depot = Arc::new(Depot::new());
        shelve(&depot, 7, false);
        let takers: Vec<_> = (0..2)
            .map(|_| spawn_on(&depot, |depot| take_one(depot, false)))
            .collect();
        let got: Vec<usize> = takers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(got, [7], "one taker gets the batch, never both");
    });
}

#[test]
fn a_full_shelf_refuses_and_the_pusher_keeps_its_batch() {
    model(|| {
        let depot = Arc::new(Depot::new());
        let pushers: Vec<_> = [1, 2]
            .into_iter()
            .map(|payload| {
                spawn_on(&depot, move |depot| {
                    let batch = new_batch(payload);
                    let pushed = depot.push(batch, BLOCKS, 1);
                    if !pushed {
                        // Refused: still ours, so writing it is no race.
                        write(batch, payload + 10);
                    }
                    pushed
                })
            })
            .collect();
        let pushed: Vec<bool> = pushers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(pushed.iter().filter(|&&p| p).count(), 1, "room for one");
        assert!(take_one(&depot, false).is_some());
        assert!(take_one(&depot, false).is_none());
    });
}

/// The hand-over of `pushed_batches_are_taken_once`, pusher and taker on two threads, with one
/// side's ordering weakened.
fn hand_over(weaken_push: bool, weaken_take: bool) {
    model(move || {
        let depot = Arc::new(Depot::new());
        let pusher = spawn_on(&depot, move |depot| shelve(depot, 3, weaken_push));
        let taker = spawn_on(&depot, move |depot| take_one(depot, weaken_take));
        pusher.join().unwrap();
        if let Some(payload) = taker.join().unwrap() {
            assert_eq!(payload, 3);
        }
    });
}

#[test]
fn the_hand_over_publishes_the_batch() {
    hand_over(false, false);
}

#[test]
#[should_panic(expected = "Causality violation")]
fn sabotage_a_relaxed_push_publishes_nothing() {
    hand_over(true, false);
}

#[test]
#[should_panic(expected = "Causality violation")]
fn sabotage_a_relaxed_take_sees_nothing() {
    hand_over(false, true);
}
