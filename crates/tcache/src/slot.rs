//! Thread slots: a small, process-wide index that each live thread holds while it uses a cache.
//!
//! A slot index is the per-thread state, and it is not generic: thread-local storage cannot be.
//! Every [`ThreadCache`](crate::ThreadCache) keeps its own table of magazines indexed by slot,
//! so the magazines belong to the cache instance (they move and drop with it) and the thread
//! only says *which* row is its own. The one exception is the *primary* cache: a second word
//! caches its row's magazine, so its fast paths skip the table (see `ThreadCache::claim_primary`).
//!
//! Owning a slot is what makes the row exclusive: a slot is held by at most one thread at a
//! time, taken with an `Acquire` CAS and given back with a `Release` store, so whatever the last
//! holder wrote into any cache's row happens-before the next holder reads it.
//!
//! ```text
//!   thread slot word (TLS, no destructor, initial-exec on x86-64 glibc: one fs: load)
//!        │  0..SLOT_COUNT       a held slot
//!        │  UNASSIGNED          first use not yet seen      ─┐ both index a table entry
//!        │  DETACHED            setting up, or thread exiting ─┘ that is always null
//!        ▼
//!   OWNERS: Owners, [AtomicU64; SLOT_COUNT / 64]   (1 bit per slot: held or free)
//!   EXIT_GUARD (TLS with Drop): gives the slot back at thread exit, then counts the exit
//!   EXITS: AtomicUsize          exits so far; a cache that sees it move reclaims on its next
//!                               refill (`ThreadCache::reclaim_exited`)
//!
//!   primary magazine word (TLS, no destructor, initial-exec like the slot word)
//!        the primary cache's magazine for this thread, or the shared empty magazine:
//!        one cache in the process (the C library's heap) may claim it and skip the table
//! ```

use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// How many threads can hold a slot at once. A thread that finds none free is served straight
/// by the backend (correct, slower). A limit on everything: it also bounds the memory that idle
/// magazines can hold.
pub const SLOT_COUNT: usize = 256;

/// The thread has not asked for a slot yet.
pub const UNASSIGNED: usize = SLOT_COUNT;

/// The thread has no slot and must not get one now: it is setting its slot up (a nested
/// allocation from the destructor registration must not recurse), all slots were taken, or its
/// thread-local storage is being torn down.
pub const DETACHED: usize = SLOT_COUNT + 1;

/// Entries in each cache's magazine table: the real slots plus the two sentinels, whose entries
/// stay null forever so that the fast path needs a single null test.
pub const TABLE_LEN: usize = SLOT_COUNT + 2;

const WORD_BITS: usize = 64;
const OWNER_WORDS: usize = SLOT_COUNT / WORD_BITS;

const _: () = assert!(SLOT_COUNT % WORD_BITS == 0);
const _: () = assert!(UNASSIGNED < TABLE_LEN && DETACHED < TABLE_LEN);
const _: () = assert!(UNASSIGNED != DETACHED);

/// The ownership bitmap: one bit per slot, set while some thread (or a reclaiming cache) holds
/// it. The process has one (see [`owners`]); the loom models make their own.
pub struct Owners {
    words: [AtomicU64; OWNER_WORDS],
}

impl Owners {
    /// Every slot free.
    #[cfg(not(loom))]
    pub const fn new() -> Owners {
        Owners {
            words: [const { AtomicU64::new(0) }; OWNER_WORDS],
        }
    }

    /// Every slot free (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Owners {
        Owners {
            words: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Takes the lowest free slot (low slots are reused first, so thread churn keeps touching
    /// the same few magazines), or `None` when all are held.
    pub fn try_acquire(&self) -> Option<usize> {
        for (word_index, word) in self.words.iter().enumerate() {
            let mut bits = word.load(Ordering::Relaxed);
            while bits != u64::MAX {
                let bit = (!bits).trailing_zeros() as usize;
                let mask = 1u64 << bit;
                match word.compare_exchange_weak(
                    bits,
                    bits | mask,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(word_index * WORD_BITS + bit),
                    Err(now) => bits = now,
                }
            }
        }
        None
    }

    /// Takes slot `slot` if it is free right now (for reclaiming an idle slot's magazines).
    pub fn try_acquire_exact(&self, slot: usize) -> bool {
        debug_assert!(slot < SLOT_COUNT);
        let mask = 1u64 << (slot % WORD_BITS);
        let previous = self.words[slot / WORD_BITS].fetch_or(mask, Ordering::Acquire);
        previous & mask == 0
    }

    /// Gives a held slot back; everything the holder wrote is visible to the next holder.
    pub fn release(&self, slot: usize) {
        debug_assert!(slot < SLOT_COUNT);
        let mask = 1u64 << (slot % WORD_BITS);
        let previous = self.words[slot / WORD_BITS].fetch_and(!mask, Ordering::Release);
        debug_assert!(previous & mask != 0, "released a slot that was not held");
    }

    /// Whether slot `slot` is held right now (a snapshot, for tests and the models).
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub fn is_held(&self, slot: usize) -> bool {
        debug_assert!(slot < SLOT_COUNT);
        let mask = 1u64 << (slot % WORD_BITS);
        self.words[slot / WORD_BITS].load(Ordering::Relaxed) & mask != 0
    }

    /// Frees every slot except `keep` (a slot, or a sentinel to keep none): the child side of a
    /// `fork`, where the holders of the other slots were not copied.
    ///
    /// Runs with no other thread using the bitmap (see `reset_slots_after_fork`), so a plain
    /// read-modify-write is enough; the store is `Release`, like [`release`](Self::release).
    pub fn keep_only(&self, keep: usize) {
        debug_assert!(keep < TABLE_LEN);
        for (word_index, word) in self.words.iter().enumerate() {
            let kept = if keep < SLOT_COUNT && keep / WORD_BITS == word_index {
                1u64 << (keep % WORD_BITS)
            } else {
                0
            };
            word.store(word.load(Ordering::Relaxed) & kept, Ordering::Release);
        }
    }
}

/// How many threads have given a slot back at their exit (wrapping): a cache that sees the
/// count move has idle magazines to reclaim (`ThreadCache::reclaim_exited`). Written once per
/// exit, read once per refill. The process has one (see [`exits`]); the loom models make their
/// own.
pub struct ExitCount {
    exits: AtomicUsize,
}

impl ExitCount {
    /// No exit yet.
    #[cfg(not(loom))]
    pub const fn new() -> ExitCount {
        ExitCount {
            exits: AtomicUsize::new(0),
        }
    }

    /// No exit yet (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> ExitCount {
        ExitCount {
            exits: AtomicUsize::new(0),
        }
    }

    /// Gives the exiting thread's `slot` back to `owners`, then counts the exit: `Release`,
    /// after the slot's release, so that whoever sees the count (an `Acquire` load) finds the
    /// slot free and everything the thread wrote into its magazines.
    pub fn release_at_exit(&self, owners: &Owners, slot: usize) {
        owners.release(slot);
        self.exits.fetch_add(1, Ordering::Release);
    }

    /// The count (`Acquire`: see [`release_at_exit`](Self::release_at_exit)).
    pub fn load(&self) -> usize {
        self.exits.load(Ordering::Acquire)
    }
}

/// The sabotaged count, for the loom models' check that they catch a broken one.
#[cfg(loom)]
impl ExitCount {
    /// [`release_at_exit`](Self::release_at_exit) counting the exit *before* the slot's
    /// release: wrong on purpose (a refill can see the count and find the slot still held).
    pub fn release_at_exit_reordered(&self, owners: &Owners, slot: usize) {
        self.exits.fetch_add(1, Ordering::Release);
        owners.release(slot);
    }
}

/// The process's slots.
#[cfg(not(loom))]
static OWNERS: Owners = Owners::new();

/// The process's slot bitmap.
#[cfg(not(loom))]
pub fn owners() -> &'static Owners {
    &OWNERS
}

/// The process's thread exits.
#[cfg(not(loom))]
static EXITS: ExitCount = ExitCount::new();

/// The number of thread exits so far that gave a slot back (wrapping). A caller that sees an
/// exit counted also sees that thread's slot free and its magazine's contents.
#[cfg(not(loom))]
#[inline]
pub fn exits() -> usize {
    EXITS.load()
}

#[cfg(not(loom))]
std::thread_local! {
    /// Touched once, when a slot is taken, to schedule its release at thread exit.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

heapkit_core::cfg_initial_exec_tls! {
    if {
        /// This thread's slot word and primary magazine word in the *initial-exec* TLS model
        /// (heapkit-core's `initial_exec_word!`): one `fs:` load or store each, where a shared
        /// library's general-dynamic model would call `__tls_get_addr` twice per malloc+free
        /// pair. Limited to x86-64 glibc (`cfg_initial_exec_tls!`); a library loaded with
        /// `dlopen` takes these 16 bytes of glibc's surplus static TLS.
        #[cfg(not(loom))]
        mod thread_slot {
            use super::UNASSIGNED;
            use crate::bin::Bin;

            // Each new thread starts with UNASSIGNED.
            heapkit_core::initial_exec_word! {
                symbol: "heapkit_tcache_thread_slot",
                initial: ".quad {initial}" (initial = const UNASSIGNED),
                read: read_slot_word,
                write: write_slot_word,
            }

            // The primary magazine word starts as the shared empty magazine's first bin: an
            // address, so the loader relocates `.tdata`'s initial image before any thread copies
            // it (as it does for C's `static __thread void *p = &x;`). The symbol and the offset
            // are magazine.rs's (the tie between the two files is described there, and tested).
            heapkit_core::initial_exec_word! {
                symbol: "heapkit_tcache_primary_magazine",
                initial: ".quad {empty} + {bins_offset}" (
                    empty = sym crate::magazine::EMPTY_MAGAZINE,
                    bins_offset = const crate::magazine::EMPTY_BINS_OFFSET_BYTES,
                ),
                read: read_primary_word,
                write: write_primary_word,
            }

            #[inline(always)]
            pub fn get() -> usize {
                read_slot_word()
            }

            #[inline(always)]
            pub fn set(value: usize) {
                write_slot_word(value)
            }

            /// The primary cache's magazine for this thread (the address was exposed by
            /// [`set_primary_magazine`], or is the empty magazine's from the loader).
            #[inline(always)]
            pub fn primary_magazine() -> *mut Bin {
                core::ptr::with_exposed_provenance_mut(read_primary_word())
            }

            #[inline(always)]
            pub fn set_primary_magazine(bins: *mut Bin) {
                write_primary_word(bins.expose_provenance())
            }
        }
    } else {
        /// This thread's slot word, through `std::thread_local!`: a `const` initialiser and no
        /// destructor make each access a plain TLS access. In an executable that is one `fs:`
        /// load; in a shared library (the C malloc) it is a call to `__tls_get_addr` per access
        /// (the general-dynamic model), which is why x86-64 glibc uses initial-exec words
        /// instead.
        #[cfg(not(loom))]
        mod thread_slot {
            use super::UNASSIGNED;
            use crate::bin::Bin;
            use core::cell::Cell;

            std::thread_local! {
                /// This thread's slot or a sentinel.
                static THREAD_SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
                /// The primary cache's magazine for this thread; starts as the empty magazine
                /// (see magazine.rs's tie to this file).
                static PRIMARY_MAGAZINE: Cell<*mut Bin> =
                    const { Cell::new(crate::magazine::empty_magazine()) };
            }

            #[inline(always)]
            pub fn get() -> usize {
                THREAD_SLOT.with(Cell::get)
            }

            #[inline(always)]
            pub fn set(value: usize) {
                THREAD_SLOT.with(|s| s.set(value));
            }

            #[inline(always)]
            pub fn primary_magazine() -> *mut Bin {
                PRIMARY_MAGAZINE.with(Cell::get)
            }

            #[inline(always)]
            pub fn set_primary_magazine(bins: *mut Bin) {
                PRIMARY_MAGAZINE.with(|s| s.set(bins));
            }
        }
    }
}

/// Gives the thread's slot back when the thread exits.
#[cfg(not(loom))]
struct ExitGuard;

#[cfg(not(loom))]
impl Drop for ExitGuard {
    fn drop(&mut self) {
        // Frees that run after this (other thread-locals' destructors) see DETACHED and go
        // straight to the backend; the magazines of this slot stay with their caches, for the
        // next thread that takes the slot or for `ThreadCache::reclaim_idle`.
        let slot = thread_slot::get();
        thread_slot::set(DETACHED);
        // The primary cache's fast paths must not use the slot's magazine once the slot can be
        // another thread's.
        thread_slot::set_primary_magazine(crate::magazine::empty_magazine());
        if slot < SLOT_COUNT {
            EXITS.release_at_exit(&OWNERS, slot);
        }
    }
}

#[cfg(not(loom))]
/// This thread's slot or a sentinel (`< TABLE_LEN` always): one TLS load.
#[inline(always)]
pub fn current() -> usize {
    let slot = thread_slot::get();
    debug_assert!(slot < TABLE_LEN);
    slot
}

/// The primary cache's magazine for this thread, or the shared empty magazine: one TLS load.
#[cfg(not(loom))]
#[inline(always)]
pub fn primary_magazine() -> *mut crate::bin::Bin {
    thread_slot::primary_magazine()
}

/// Points this thread's primary magazine word at `bins` (the primary cache's magazine for this
/// thread's slot, or the empty magazine).
#[cfg(not(loom))]
#[inline(always)]
pub fn set_primary_magazine(bins: *mut crate::bin::Bin) {
    thread_slot::set_primary_magazine(bins)
}

#[cfg(not(loom))]
/// Gives this thread a slot if it has none and may get one; returns the slot (or a sentinel
/// when it may not). Called only on the slow path.
#[cold]
pub fn attach() -> usize {
    let slot = current();
    if slot != UNASSIGNED {
        return slot;
    }
    // DETACHED while we set up: registering the exit guard may allocate (std's fallback list),
    // and that nested allocation must go to the backend instead of recursing into here.
    thread_slot::set(DETACHED);
    let Some(slot) = try_acquire() else {
        return DETACHED;
    };
    // `try_with` fails once thread-local destruction has begun: then there is no exit hook to
    // give the slot back, so do not keep it.
    if EXIT_GUARD.try_with(|_| ()).is_err() {
        release(slot);
        return DETACHED;
    }
    thread_slot::set(slot);
    slot
}

/// Takes the process's lowest free slot, or `None` when all are held.
#[cfg(not(loom))]
pub fn try_acquire() -> Option<usize> {
    OWNERS.try_acquire()
}

/// Gives a held slot of the process back.
#[cfg(not(loom))]
pub fn release(slot: usize) {
    OWNERS.release(slot)
}

/// In the child of a `fork`: frees the slots that the parent's other threads held, keeping only
/// the calling thread's, so that [`ThreadCache::reclaim_idle`](crate::ThreadCache::reclaim_idle)
/// (which every thread runs now and then) and the child's new threads can take their magazines
/// back.
///
/// Without it those slots stay held forever in the child (their holders were not copied by
/// `fork`, so no thread exit ever frees them): their magazines are never reclaimed, and the
/// child has that many fewer slots for its own threads.
///
/// A magazine whose thread was inside a cache call at the instant of the fork (the fast paths
/// take no lock that `fork` could wait for) is taken over as it was: the block that thread was
/// popping or pushing may be lost (leaked, never handed out twice), and in a debug build a count
/// that lags its list can trip a debug assertion when the magazine is flushed.
/// heapkit-malloc calls this from its `pthread_atfork` child handler.
///
/// # Safety
/// Call it only in the child of `fork`, on the thread that called `fork` (the only thread the
/// child has), before the child starts any thread, and not from inside a call on a
/// `ThreadCache` (an atfork child handler, or the code right after `fork` returns 0, is fine).
/// Called anywhere else it frees slots that live threads hold, and two threads would then use
/// one magazine at once.
#[cfg(not(loom))]
pub unsafe fn reset_slots_after_fork() {
    OWNERS.keep_only(current());
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_slot_while_it_lives() {
        std::thread::spawn(|| {
            let slot = attach();
            assert!(slot < SLOT_COUNT);
            assert_eq!(attach(), slot);
            assert_eq!(current(), slot);
        })
        .join()
        .unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // hundreds of threads
    fn exiting_threads_give_their_slots_back() {
        // More threads than slots, one after another: each finds a slot only if the previous
        // ones gave theirs back.
        for _ in 0..SLOT_COUNT + 64 {
            let slot = std::thread::spawn(attach).join().unwrap();
            assert!(
                slot < SLOT_COUNT,
                "slot {slot}: exited threads kept their slots"
            );
        }
    }

    #[test]
    fn acquire_exact_refuses_a_held_slot() {
        let slot = try_acquire().unwrap();
        assert!(!owners().try_acquire_exact(slot));
        assert!(owners().is_held(slot));
        release(slot);
    }
}
