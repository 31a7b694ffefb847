//! The hand-over of a magazine between the threads that hold its slot, and to a reclaiming
//! thread: the cross-thread half of the slot protocol, kept apart from the cache so that the
//! loom models run exactly this code.
//!
//! ```text
//!   holder (slot s)            entry[s]              reclaimer (any thread)
//!   try_acquire ─Acquire─►       │                    load entry[s]: a magazine?
//!   magazine_or_install ──────► M (Relaxed store)     try_acquire_exact(s) ─Acquire─► refused
//!   ... pops/pushes in M ...     │                        while the holder lives
//!   release(s) ─Release─►        │                    ... after the release: held by us
//!                                ◄──── swap(empty) ── give_back(M), release(s)
//! ```
//!
//! The entry itself needs no ordering: only the slot's holder touches it, and holding the slot
//! (an `Acquire` CAS after the previous holder's `Release`) orders every access to the entry
//! and the magazine after the previous holder's.

use crate::slot::{Owners, SLOT_COUNT};
use crate::sync::{AtomicPtr, Ordering};

/// The magazine of the slot the caller holds, installing `make()`'s if the entry holds `empty`.
/// Returns `empty`'s replacement, or null when `make` returned null (the entry is unchanged).
///
/// The caller holds the slot whose entry this is.
pub fn magazine_or_install<T>(
    entry: &AtomicPtr<T>,
    empty: *mut T,
    make: impl FnOnce() -> *mut T,
) -> *mut T {
    let current = entry.load(Ordering::Relaxed);
    if current != empty {
        return current;
    }
    let made = make();
    if !made.is_null() {
        // Only the slot's holder writes its entry; the slot hand-over orders it for the next
        // holder.
        entry.store(made, Ordering::Relaxed);
    }
    made
}

/// What [`inspect_idle`] found at a slot.
#[derive(Debug)]
pub enum Idle<T, R> {
    /// The entry held no magazine (at the first look, or once the slot was taken).
    Empty,
    /// Another thread holds the slot: the magazine the entry named at the first look, not read.
    Busy(*mut T),
    /// The slot was free: `look` ran on its magazine while the caller held the slot.
    Looked(R),
}

/// If slot `slot` is free and its entry holds a magazine, takes the slot, detaches the
/// magazine (the entry goes back to `empty`), passes it to `give_back`, and frees the slot
/// again. Returns `give_back`'s result, or 0 when the slot was held or had no magazine.
///
/// `give_back` runs while the caller holds the slot: it has the magazine to itself.
pub fn reclaim<T>(
    owners: &Owners,
    slot: usize,
    entry: &AtomicPtr<T>,
    empty: *mut T,
    give_back: impl FnOnce(*mut T) -> usize,
) -> usize {
    let found = holding_idle(owners, slot, entry, empty, || {
        // Holding the slot makes its magazine ours; re-read it under that ownership.
        let magazine = entry.swap(empty, Ordering::Relaxed);
        (magazine != empty).then(|| give_back(magazine))
    });
    match found {
        Idle::Looked(given_back) => given_back,
        Idle::Empty | Idle::Busy(_) => 0,
    }
}

/// If slot `slot` is free and its entry holds a magazine, takes the slot, passes the magazine
/// (left in place) to `look`, and frees the slot again: `look` reads the magazine while nobody
/// else can use it. For figures about exited threads' magazines; a caller that also wants
/// live threads' figures reads the [`Idle::Busy`] magazine itself, as its holder writes it.
pub fn inspect_idle<T, R>(
    owners: &Owners,
    slot: usize,
    entry: &AtomicPtr<T>,
    empty: *mut T,
    look: impl FnOnce(*mut T) -> R,
) -> Idle<T, R> {
    holding_idle(owners, slot, entry, empty, || {
        // Holding the slot: re-read, since a reclaimer may have detached the magazine.
        let magazine = entry.load(Ordering::Relaxed);
        (magazine != empty).then(|| look(magazine))
    })
}

/// The protocol [`reclaim`] and [`inspect_idle`] share: if slot `slot` is free and its entry
/// holds a magazine, takes the slot, runs `held` (which re-reads the entry under that
/// ownership, `None` when it found no magazine there) and frees the slot.
fn holding_idle<T, R>(
    owners: &Owners,
    slot: usize,
    entry: &AtomicPtr<T>,
    empty: *mut T,
    held: impl FnOnce() -> Option<R>,
) -> Idle<T, R> {
    debug_assert!(slot < SLOT_COUNT);
    // A cheap look first: most slots of most caches have no magazine.
    let magazine = entry.load(Ordering::Relaxed);
    if magazine == empty {
        return Idle::Empty;
    }
    if !owners.try_acquire_exact(slot) {
        return Idle::Busy(magazine);
    }
    let result = held();
    owners.release(slot);
    result.map_or(Idle::Empty, Idle::Looked)
}
