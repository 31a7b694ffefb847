//! The depot: a small, lock-free shelf of whole batches per size class, shared by every thread
//! of one cache — the layer between the threads' bins and the backend (Bonwick's magazine
//! depot, tcmalloc's transfer cache).
//!
//! Why it exists: when one thread allocates and others free (a producer and its consumers, a
//! pipeline, objects handed between workers), every consumer's full bin used to go back to the
//! backend block by block under the class lock, and the producer's empty bin came back from it
//! under the same lock: both sides fought over one lock and the backend walked every block
//! twice. Through the depot a consumer's flush hands over a *batch* — a chain of blocks already
//! linked in the bins' own format — with one compare-and-swap, and the producer's refill takes
//! a batch with one swap and makes it its bin as it is: no lock, no backend call, and no block
//! is read or written on the way.
//!
//! ```text
//!   consumer: full bin ──split a chain of n blocks──► push ─CAS null→(n, first)─┐
//!                                                                              ▼
//!   Depot (one cache line per class): [ (32,a) | null | (32,c) | null | … ]  8 entries
//!                                                                              │
//!   producer: empty bin ◄──the chain becomes the bin── take ─swap→null─────────┘
//! ```
//!
//! Each entry is one `AtomicPtr`: the chain's first block, with the chain's length in the top
//! 16 bits of the address (user-space addresses on the 64-bit targets this runs on use at most
//! 48 bits; a block above that is simply not shelved). An entry goes from null to a batch only
//! by a compare-and-swap and from a batch to null only by a swap, so a batch is taken by at most
//! one thread and no ABA problem arises: nothing is ever read through a pointer that another
//! thread may have taken meanwhile (a Treiber stack would, and needs tags or hazard pointers).
//! A push's `Release` orders the chain's links (written by the pusher) before the taker's
//! `Acquire` swap; that is the whole protocol, and the loom models in `tests/loom.rs` check it,
//! with a weakened variant that must fail them.
//!
//! A limit on everything: eight entries per class, and the cache further limits how many a class
//! may fill so that the bytes one class keeps on the shelf stay bounded (`ThreadCache` docs).
//! A full shelf sends the batch to the backend, as before; a shelf is emptied into the backend
//! by `ThreadCache::drain_depots` (and when the cache drops).

use crate::sync::{AtomicPtr, Ordering};

/// Entries per class: one cache line of pointers.
pub const DEPOT_ENTRIES: usize = 8;

/// The largest batch an entry can describe (the length field's width).
pub const DEPOT_BATCH_BLOCKS_MAX: usize = (1 << COUNT_BITS) - 1;

/// Bits of an entry that hold the batch's length.
const COUNT_BITS: u32 = 16;
/// Where the length starts: the address bits below it must be clear in a shelved pointer.
const COUNT_SHIFT: u32 = usize::BITS - COUNT_BITS;

const _: () = assert!(
    usize::BITS == 64,
    "the depot packs a length into the top bits of a 64-bit address"
);
const _: () = assert!(DEPOT_ENTRIES * core::mem::size_of::<usize>() == 64);

/// One class's shelf of batches.
#[repr(C, align(64))]
pub struct Depot {
    entries: [AtomicPtr<u8>; DEPOT_ENTRIES],
}

impl Depot {
    /// An empty shelf (`const`, so a `ThreadCache` stays `const`-constructible).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Depot {
            entries: [const { AtomicPtr::new(core::ptr::null_mut()) }; DEPOT_ENTRIES],
        }
    }

    /// An empty shelf on loom's atomics (not `const`: loom's atomics are built at run time).
    #[cfg(loom)]
    pub fn new() -> Self {
        Depot {
            entries: core::array::from_fn(|_| AtomicPtr::new(core::ptr::null_mut())),
        }
    }

    /// Shelves the chain of `blocks` blocks that starts at `first`, in one of the first `room`
    /// entries; returns false (and the caller keeps the chain) when they are all taken, the
    /// length does not fit, or `first` lies above the addresses an entry can hold.
    ///
    /// The chain's links must be written before the call: the `Release` of the winning
    /// compare-and-swap publishes them to the thread that takes the batch.
    pub fn push(&self, first: *mut u8, blocks: usize, room: usize) -> bool {
        self.push_ordered(first, blocks, room, Ordering::Release)
    }

    /// Whether one of the first `room` entries is empty right now (a racy hint: a push may
    /// still find them all taken).
    pub fn has_room(&self, room: usize) -> bool {
        self.entries[..room.min(DEPOT_ENTRIES)]
            .iter()
            .any(|entry| entry.load(Ordering::Relaxed).is_null())
    }

    /// Takes a batch: its first block and its length, or `None` when the shelf is empty. The
    /// `Acquire` swap makes the pusher's writes to the chain visible here.
    pub fn take(&self) -> Option<(*mut u8, usize)> {
        self.take_ordered(Ordering::Acquire)
    }

    /// Calls `visit` with every batch on the shelf, without taking them (for `check()`, while
    /// the caller knows no other thread pushes or takes).
    pub fn for_each(&self, mut visit: impl FnMut(*mut u8, usize)) {
        for entry in &self.entries {
            let packed = entry.load(Ordering::Acquire);
            if !packed.is_null() {
                let (first, blocks) = unpack(packed);
                visit(first, blocks);
            }
        }
    }

    fn push_ordered(&self, first: *mut u8, blocks: usize, room: usize, success: Ordering) -> bool {
        debug_assert!(!first.is_null() && blocks > 0);
        let Some(packed) = pack(first, blocks) else {
            return false;
        };
        for entry in &self.entries[..room.min(DEPOT_ENTRIES)] {
            // Look before the compare-and-swap: a taken entry costs a shared read, not a
            // write that bounces the line.
            if entry.load(Ordering::Relaxed).is_null()
                && entry
                    .compare_exchange(core::ptr::null_mut(), packed, success, Ordering::Relaxed)
                    .is_ok()
            {
                return true;
            }
        }
        false
    }

    fn take_ordered(&self, order: Ordering) -> Option<(*mut u8, usize)> {
        for entry in &self.entries {
            if entry.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let packed = entry.swap(core::ptr::null_mut(), order);
            if !packed.is_null() {
                return Some(unpack(packed));
            }
        }
        None
    }
}

/// The sabotaged protocol, for the loom models' check that they catch a broken one: a push
/// and a take with `Relaxed` orderings, which publish nothing.
#[cfg(loom)]
impl Depot {
    /// [`push`](Self::push) with a `Relaxed` compare-and-swap: wrong on purpose.
    pub fn push_weakened(&self, first: *mut u8, blocks: usize, room: usize) -> bool {
        self.push_ordered(first, blocks, room, Ordering::Relaxed)
    }

    /// [`take`](Self::take) with a `Relaxed` swap: wrong on purpose.
    pub fn take_weakened(&self) -> Option<(*mut u8, usize)> {
        self.take_ordered(Ordering::Relaxed)
    }
}

/// `first` with `blocks` in its top bits, or `None` when either does not fit.
fn pack(first: *mut u8, blocks: usize) -> Option<*mut u8> {
    let fits = (first as usize) >> COUNT_SHIFT == 0 && blocks <= DEPOT_BATCH_BLOCKS_MAX;
    // `map_addr` keeps the pointer's provenance (strict provenance: Miri runs this crate).
    fits.then(|| first.map_addr(|addr| addr | blocks << COUNT_SHIFT))
}

fn unpack(packed: *mut u8) -> (*mut u8, usize) {
    let blocks = (packed as usize) >> COUNT_SHIFT;
    let first = packed.map_addr(|addr| addr & ((1 << COUNT_SHIFT) - 1));
    debug_assert!(!first.is_null() && blocks > 0);
    (first, blocks)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn block(storage: &mut [u64], index: usize) -> *mut u8 {
        storage[index..].as_mut_ptr().cast()
    }

    #[test]
    fn a_pushed_batch_comes_back_whole_once() {
        let mut storage = [0u64; 4];
        let depot = Depot::new();
        assert!(depot.take().is_none());
        let first = block(&mut storage, 1);
        assert!(depot.push(first, 32, DEPOT_ENTRIES));
        assert_eq!(depot.take(), Some((first, 32)));
        assert_eq!(depot.take(), None, "a batch is taken once");
    }

    #[test]
    fn room_limits_the_entries_a_push_may_fill() {
        let mut storage = [0u64; 8];
        let depot = Depot::new();
        for index in 0..2 {
            assert!(depot.push(block(&mut storage, index), 1, 2));
        }
        assert!(!depot.has_room(2));
        assert!(
            !depot.push(block(&mut storage, 2), 1, 2),
            "two entries allowed"
        );
        assert!(depot.has_room(DEPOT_ENTRIES));
        assert!(depot.push(block(&mut storage, 2), 1, DEPOT_ENTRIES));
        let mut seen = 0;
        depot.for_each(|_, blocks| seen += blocks);
        assert_eq!(seen, 3);
    }

    #[test]
    fn a_full_shelf_and_an_oversized_batch_are_refused() {
        let mut storage = [0u64; DEPOT_ENTRIES + 1];
        let depot = Depot::new();
        for index in 0..DEPOT_ENTRIES {
            assert!(depot.push(block(&mut storage, index), 2, DEPOT_ENTRIES));
        }
        let last = block(&mut storage, DEPOT_ENTRIES);
        assert!(!depot.push(last, 2, DEPOT_ENTRIES), "every entry is taken");
        while depot.take().is_some() {}
        assert!(!depot.push(last, DEPOT_BATCH_BLOCKS_MAX + 1, DEPOT_ENTRIES));
        assert!(depot.push(last, DEPOT_BATCH_BLOCKS_MAX, DEPOT_ENTRIES));
        assert_eq!(depot.take(), Some((last, DEPOT_BATCH_BLOCKS_MAX)));
    }
}
