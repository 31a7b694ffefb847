//! Object ids for the trace recorder: a lock-free open-addressing table from block address to
//! id, in memory mapped directly from the kernel (never from the traced heap).
//!
//! Why a table and not the id in the block: the block belongs to the program (a header would
//! change every block's layout and the heap's size classes, so the traced run would not be the
//! run being studied), and heapkit's slabs keep no per-block metadata to borrow. The table costs
//! one probe per event and, being `MAP_NORESERVE`, only the pages its live entries touch.
//!
//! Each slot is an address word and an id word. An address is inserted only by the thread that
//! just got the block from `malloc` and removed only by the thread that frees it, which the
//! program orders after the `malloc` returned (it had to pass the pointer on), so a slot's two
//! words need no lock: the inserter claims the address word with a CAS, then stores the id; the
//! remover reads the id, then marks the slot a tombstone. A tombstone is reused by inserts; a
//! lookup stops at an empty slot.

use core::ptr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// log2 of the table's slots: 8 Mi slots, 128 MiB of address space, of which only the touched
/// pages are resident.
const SLOTS_LOG2: u32 = 23;
const SLOTS: usize = 1 << SLOTS_LOG2;
/// How far an insert or a lookup probes before it gives up (the object then goes untraced).
const PROBE_LIMIT: usize = 4096;
/// A slot never used: lookups stop here.
const EMPTY: usize = 0;
/// A slot whose object was freed: inserts reuse it, lookups go past it.
const TOMBSTONE: usize = 1;

/// One entry.
#[repr(C)]
struct Slot {
    address: AtomicUsize,
    id: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Slot>() == 16);
const _: () = assert!(PROBE_LIMIT < SLOTS);

/// The table (null until [`map`] succeeds).
static TABLE: core::sync::atomic::AtomicPtr<Slot> =
    core::sync::atomic::AtomicPtr::new(ptr::null_mut());

/// Maps the table; false when the kernel refuses (tracing then stays off).
pub fn map() -> bool {
    if !TABLE.load(Ordering::Acquire).is_null() {
        return true;
    }
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let table = unsafe {
        libc::mmap(
            ptr::null_mut(),
            SLOTS * core::mem::size_of::<Slot>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if table == libc::MAP_FAILED {
        return false;
    }
    // The table's touched part is about as large as the heap's span (a slot per 16 bytes):
    // in 4 KiB pages that was ~31 thousand extra page faults on the python3 workload. Huge
    // pages make them a few dozen (the kernel may refuse: then the small pages serve).
    // SAFETY: advice on a mapping this function just made; it changes no contents.
    unsafe {
        libc::madvise(
            table,
            SLOTS * core::mem::size_of::<Slot>(),
            libc::MADV_HUGEPAGE,
        )
    };
    TABLE.store(table.cast(), Ordering::Release);
    true
}

/// The slot where `address`'s probe starts. Neighbouring blocks get neighbouring slots (a slab
/// hands out neighbours one after the other and a program frees recent blocks most), so that the
/// table's working set stays in the cache: the address in units of 16 bytes (no block is
/// smaller), shifted by a Fibonacci hash of its 16 MiB region so that regions spread over the
/// table instead of piling onto the same slots.
fn home(address: usize) -> usize {
    let region = (address >> REGION_SHIFT) as u64;
    let region_offset = region.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS_LOG2);
    (address >> 4).wrapping_add(region_offset as usize) & (SLOTS - 1)
}

/// log2 of the bytes of address space whose blocks keep their order in the table.
const REGION_SHIFT: u32 = 24;

/// The slots `address` probes, in order (at most [`PROBE_LIMIT`]); empty before [`map`].
fn probe(address: usize) -> impl Iterator<Item = &'static Slot> {
    let table = TABLE.load(Ordering::Acquire);
    let start = home(address);
    let limit = if table.is_null() { 0 } else { PROBE_LIMIT };
    (0..limit).map(move |step| {
        let index = (start + step) & (SLOTS - 1);
        // SAFETY: the table is mapped (non-null) and `index < SLOTS`; mapped memory is zeroed,
        // a valid `Slot` of atomics, and is never unmapped.
        unsafe { &*table.add(index) }
    })
}

/// Records that the block at `address` is object `id`; false when the table has no room near
/// the address (the object goes untraced).
pub fn insert(address: usize, id: u64) -> bool {
    debug_assert!(address > TOMBSTONE);
    // With one thread no other insert can race for the slot: a plain store claims it (the
    // CAS was a quarter of a traced python3's recording time).
    let alone = heapkit_core::process_is_single_threaded();
    for slot in probe(address) {
        let current = slot.address.load(Ordering::Relaxed);
        if current != EMPTY && current != TOMBSTONE {
            continue;
        }
        if alone {
            slot.address.store(address, Ordering::Relaxed);
            slot.id.store(id, Ordering::Relaxed);
            return true;
        }
        if slot
            .address
            .compare_exchange(current, address, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            slot.id.store(id, Ordering::Release);
            return true;
        }
    }
    false
}

/// Forgets the block at `address` and returns its id; `None` for a block the table does not
/// hold (allocated before tracing started, or untraced for want of room).
pub fn remove(address: usize) -> Option<u64> {
    for slot in probe(address) {
        let current = slot.address.load(Ordering::Acquire);
        if current == address {
            let id = slot.id.load(Ordering::Acquire);
            slot.address.store(TOMBSTONE, Ordering::Release);
            return Some(id);
        }
        if current == EMPTY {
            return None;
        }
    }
    None
}
