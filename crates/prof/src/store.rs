//! Where samples live: two fixed tables in memory mapped straight from the OS through
//! heapkit's own `MmapPages` — never in the heap being profiled — behind one `SpinLock`.
//!
//! - the **stack table** interns each distinct stack once and keeps, per stack, the scaled
//!   bytes and objects allocated since start and those still in use;
//! - the **live table** maps a sampled block's address to its sample (sizes, thread, stack and
//!   the scaled figures to take off the stack's in-use totals when the block is freed).
//!
//! Both are open-addressed with linear probing (the live table deletes by backward shift, so
//! it needs no tombstones). A table is never filled beyond three quarters: a sample that does
//! not fit is counted in [`dropped`] and its block is allocated unsampled. Scaled figures are
//! integers (bytes, and objects in 1/[`OBJECT_UNIT`] steps) so that freeing every sampled block
//! brings in-use back to exactly zero.

use crate::stack::Stack;
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};
use heapkit_core::{PageSource, SpinLock};
use heapkit_pages::MmapPages;

/// Live sampled blocks the table holds at most (three quarters of its slots).
pub const LIVE_CAPACITY: usize = LIVE_SLOTS / 4 * 3;
/// Distinct stacks the table holds at most (three quarters of its slots).
pub const STACK_CAPACITY: usize = STACK_SLOTS / 4 * 3;
const LIVE_SLOTS: usize = 1 << 16;
const STACK_SLOTS: usize = 1 << 13;
/// Scaled object counts are kept in units of 1/`OBJECT_UNIT` object.
pub const OBJECT_UNIT: u64 = 1 << 10;

const _: () = assert!(LIVE_SLOTS.is_power_of_two() && STACK_SLOTS.is_power_of_two());
const _: () = assert!(STACK_SLOTS <= u32::MAX as usize);

/// One sampled block that is still live.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveSample {
    /// The block's address (0 in an empty slot).
    pub addr: usize,
    /// The bytes the program asked for.
    pub requested_bytes: usize,
    /// The bytes the block really has.
    pub usable_bytes: usize,
    /// The alignment asked for.
    pub align_bytes: usize,
    /// The allocating thread (its kernel thread id).
    pub thread: u32,
    /// The stack's index in the stack table.
    pub(crate) stack: u32,
    /// The block's scaled bytes (requested bytes over the sampling probability).
    pub scaled_bytes: u64,
    /// The block's scaled objects, in 1/[`OBJECT_UNIT`] steps.
    pub scaled_objects: u64,
}

/// A stack and its totals.
#[derive(Clone, Copy)]
pub(crate) struct StackRecord {
    /// The stack's hash, with the low bit set (0: an empty slot).
    hash: u64,
    pub(crate) stack: Stack,
    pub(crate) alloc_bytes: u64,
    pub(crate) alloc_objects: u64,
    pub(crate) inuse_bytes: u64,
    pub(crate) inuse_objects: u64,
}

struct Tables {
    live: *mut LiveSample,
    stacks: *mut StackRecord,
    live_count: usize,
    stack_count: usize,
}

/// The tables behind their lock.
pub(crate) struct Store {
    lock: SpinLock,
    tables: UnsafeCell<Tables>,
    dropped: AtomicU64,
    pages: MmapPages,
}

// SAFETY: `tables` is only touched by `with_tables`, under `lock`.
unsafe impl Sync for Store {}

/// The process's store.
pub(crate) static STORE: Store = Store::new();

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: addresses differ in few bits, the slot index needs them all.
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn stack_hash(frames: &[usize]) -> u64 {
    frames
        .iter()
        .fold(frames.len() as u64, |h, &ip| mix(h ^ ip as u64))
        | 1
}

/// The table operations; `&mut` proves the lock is held.
impl Tables {
    fn live_slot(&self, addr: usize) -> usize {
        mix(addr as u64) as usize & (LIVE_SLOTS - 1)
    }

    /// # Safety
    /// The tables are mapped.
    unsafe fn intern(&mut self, stack: &Stack) -> Option<u32> {
        let hash = stack_hash(stack.frames());
        let mut slot = hash as usize & (STACK_SLOTS - 1);
        loop {
            // SAFETY: `slot < STACK_SLOTS`, inside the mapped table.
            let record = unsafe { &mut *self.stacks.add(slot) };
            if record.hash == 0 {
                if self.stack_count >= STACK_CAPACITY {
                    return None;
                }
                record.hash = hash;
                record.stack = *stack;
                self.stack_count += 1;
                return Some(slot as u32);
            }
            if record.hash == hash && record.stack.frames() == stack.frames() {
                return Some(slot as u32);
            }
            slot = (slot + 1) & (STACK_SLOTS - 1);
        }
    }

    /// # Safety
    /// The tables are mapped.
    unsafe fn insert(&mut self, stack: &Stack, sample: LiveSample) -> bool {
        if self.live_count >= LIVE_CAPACITY {
            return false;
        }
        // SAFETY: mapped (forwarded).
        let Some(index) = (unsafe { self.intern(stack) }) else {
            return false;
        };
        // SAFETY: the index `intern` returned is a slot of the table.
        let record = unsafe { &mut *self.stacks.add(index as usize) };
        record.alloc_bytes += sample.scaled_bytes;
        record.alloc_objects += sample.scaled_objects;
        record.inuse_bytes += sample.scaled_bytes;
        record.inuse_objects += sample.scaled_objects;
        let mut slot = self.live_slot(sample.addr);
        loop {
            // SAFETY: `slot < LIVE_SLOTS`.
            let entry = unsafe { &mut *self.live.add(slot) };
            if entry.addr == 0 || entry.addr == sample.addr {
                // The same address twice means its free went unseen (it cannot, for a block
                // freed through heapkit): the newer sample wins.
                if entry.addr == 0 {
                    self.live_count += 1;
                }
                *entry = LiveSample {
                    stack: index,
                    ..sample
                };
                return true;
            }
            slot = (slot + 1) & (LIVE_SLOTS - 1);
        }
    }

    /// Removes the sample of `addr`, if there is one, and takes it off its stack's in-use
    /// totals.
    ///
    /// # Safety
    /// The tables are mapped.
    unsafe fn remove(&mut self, addr: usize) -> Option<LiveSample> {
        let mut slot = self.live_slot(addr);
        let found = loop {
            // SAFETY: `slot < LIVE_SLOTS`.
            let entry = unsafe { *self.live.add(slot) };
            if entry.addr == 0 {
                return None;
            }
            if entry.addr == addr {
                break entry;
            }
            slot = (slot + 1) & (LIVE_SLOTS - 1);
        };
        // SAFETY: the stack index stored with a live sample is an interned slot.
        let record = unsafe { &mut *self.stacks.add(found.stack as usize) };
        record.inuse_bytes -= found.scaled_bytes;
        record.inuse_objects -= found.scaled_objects;
        // SAFETY: mapped (forwarded).
        unsafe { self.shift_back(slot) };
        self.live_count -= 1;
        Some(found)
    }

    /// Backward-shift deletion: empties `hole` and moves up every later entry of the probe run
    /// whose home slot does not lie strictly between the hole and it.
    ///
    /// # Safety
    /// The tables are mapped.
    unsafe fn shift_back(&mut self, mut hole: usize) {
        let mut next = (hole + 1) & (LIVE_SLOTS - 1);
        loop {
            // SAFETY: both indices are below LIVE_SLOTS.
            let entry = unsafe { *self.live.add(next) };
            if entry.addr == 0 {
                break;
            }
            let home = self.live_slot(entry.addr);
            // The distance from home to `next` and from home to the hole, around the ring.
            let from_home = next.wrapping_sub(home) & (LIVE_SLOTS - 1);
            let hole_from_home = hole.wrapping_sub(home) & (LIVE_SLOTS - 1);
            if hole_from_home <= from_home {
                // SAFETY: as above.
                unsafe { *self.live.add(hole) = entry };
                hole = next;
            }
            next = (next + 1) & (LIVE_SLOTS - 1);
        }
        // SAFETY: as above.
        unsafe { *self.live.add(hole) = LiveSample::default() };
    }
}

impl Store {
    const fn new() -> Self {
        Store {
            lock: SpinLock::new(),
            tables: UnsafeCell::new(Tables {
                live: ptr::null_mut(),
                stacks: ptr::null_mut(),
                live_count: 0,
                stack_count: 0,
            }),
            dropped: AtomicU64::new(0),
            pages: MmapPages::new(),
        }
    }

    /// Runs `f` on the tables under the lock, mapping them on first use; `None` when they
    /// cannot be mapped.
    fn with_tables<R>(&self, f: impl FnOnce(&mut Tables) -> R) -> Option<R> {
        self.lock.lock();
        // SAFETY: the lock is held: this is the only reference to the tables.
        let tables = unsafe { &mut *self.tables.get() };
        let result = if tables.live.is_null() && !self.map_tables(tables) {
            None
        } else {
            Some(f(tables))
        };
        // SAFETY: taken above, on this thread.
        unsafe { self.lock.unlock() };
        result
    }

    fn map_tables(&self, tables: &mut Tables) -> bool {
        let live_bytes = LIVE_SLOTS * size_of::<LiveSample>();
        let stack_bytes = STACK_SLOTS * size_of::<StackRecord>();
        // Whole pages (the source's unit), page-aligned.
        let page = heapkit_pages::os_page_size();
        let (Some(live_bytes), Some(stack_bytes)) = (
            heapkit_core::align_up(live_bytes, page),
            heapkit_core::align_up(stack_bytes, page),
        ) else {
            return false;
        };
        let (Ok(live), Ok(stacks)) = (
            self.pages.map(live_bytes, page),
            self.pages.map(stack_bytes, page),
        ) else {
            return false;
        };
        // Anonymous mappings are zeroed: every slot starts empty (address 0, hash 0).
        debug_assert!(self.pages.maps_zeroed());
        tables.live = live.cast::<LiveSample>().as_ptr();
        tables.stacks = stacks.cast::<StackRecord>().as_ptr();
        true
    }

    /// Records a sample; false (and counted as dropped) when the store is full or unmappable.
    pub(crate) fn insert(&self, stack: &Stack, sample: LiveSample) -> bool {
        // SAFETY: `with_tables` hands out mapped tables only.
        let stored = self.with_tables(|t| unsafe { t.insert(stack, sample) }) == Some(true);
        if !stored {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        stored
    }

    /// Forgets the sample of the block at `addr`, if it has one.
    pub(crate) fn remove(&self, addr: NonNull<u8>) -> Option<LiveSample> {
        // SAFETY: as in `insert`.
        self.with_tables(|t| unsafe { t.remove(addr.as_ptr() as usize) })
            .flatten()
    }

    /// Samples lost because the store was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Calls `f` with every stack record, under the lock. `f` must not allocate from a
    /// profiled heap unless the calling thread holds the sampler's guard.
    pub(crate) fn for_each_stack(&self, mut f: impl FnMut(&StackRecord)) {
        self.with_tables(|t| {
            for slot in 0..STACK_SLOTS {
                // SAFETY: `slot < STACK_SLOTS`.
                let record = unsafe { &*t.stacks.add(slot) };
                if record.hash != 0 {
                    f(record);
                }
            }
        });
    }

    /// Calls `f` with every live sample and its stack, under the lock (as `for_each_stack`).
    pub(crate) fn for_each_live(&self, mut f: impl FnMut(&LiveSample, &Stack)) {
        self.with_tables(|t| {
            for slot in 0..LIVE_SLOTS {
                // SAFETY: `slot < LIVE_SLOTS`; a live entry's stack index is interned.
                let (entry, record) = unsafe {
                    let entry = &*t.live.add(slot);
                    (entry, &*t.stacks.add(entry.stack as usize))
                };
                if entry.addr != 0 {
                    f(entry, &record.stack);
                }
            }
        });
    }

    /// Takes the lock for `fork` (the prepare handler).
    pub(crate) fn lock(&self) {
        self.lock.lock();
    }

    /// Releases what [`lock`](Self::lock) took.
    ///
    /// # Safety
    /// The calling thread (or, in a fork child, its parent's forking thread) took it.
    pub(crate) unsafe fn unlock(&self) {
        // SAFETY: forwarded from the caller.
        unsafe { self.lock.unlock() }
    }

    /// Live samples and distinct stacks held now.
    pub(crate) fn counts(&self) -> (usize, usize) {
        self.with_tables(|t| (t.live_count, t.stack_count))
            .unwrap_or((0, 0))
    }
}
