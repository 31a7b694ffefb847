//! Object ids for the trace recorder: a lock-free two-level map from block address to id, in
//! memory mapped directly from the kernel (never from the traced heap).
//!
//! Why a map and not the id in the block: the block belongs to the program (a header would
//! change every block's layout and the heap's size classes, so the traced run would not be the
//! run being studied), and heapkit's slabs keep no per-block metadata to borrow.
//!
//! Why direct and not hashed: every C block is 16-byte aligned, so two live blocks never share
//! `address / 16`, and a slot per 16 bytes of address space needs neither a stored key nor a
//! probe: an event costs two loads (the region's leaf, the slot) and a store. The map is a
//! root of [`ROOT_SLOTS`] leaf pointers, one per 64 MiB region of the address space, and a leaf
//! of id words per region that is used, mapped on its first insert. Both are `MAP_NORESERVE`, so
//! only the pages that live entries touch become resident: half the heap's span (8 bytes per 16
//! bytes), where the hashed table it replaced (address and id per slot) took the whole span —
//! pages the kernel must zero, the largest cost of a traced python3 (~80 MB, a tenth of its
//! time).
//!
//! Each slot is an id word (0: no object). An id is inserted only by the thread that just got
//! the block from `malloc` and removed only by the thread that frees it, which the program
//! orders after the `malloc` returned (it had to pass the pointer on), so a slot needs no lock
//! and no read-modify-write.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Bits of a user-space address on x86-64 (and most 64-bit Linux targets with 4-level page
/// tables); blocks above go untraced.
const ADDRESS_BITS: u32 = 47;
/// log2 of the bytes of address space one leaf covers (64 MiB).
const REGION_SHIFT: u32 = 26;
/// log2 of the bytes one slot covers: C blocks are 16-byte aligned.
const SLOT_SHIFT: u32 = 4;
/// Leaf pointers in the root (2 Mi: 16 MiB of address space, a page of it per 32 GiB of heap).
const ROOT_SLOTS: usize = 1 << (ADDRESS_BITS - REGION_SHIFT);
/// Id words in a leaf (4 Mi: 32 MiB of address space).
const LEAF_SLOTS: usize = 1 << (REGION_SHIFT - SLOT_SHIFT);

const _: () = assert!(heapkit_core::MAX_ALIGN_BYTES == 1 << SLOT_SHIFT);
const _: () = assert!(REGION_SHIFT > SLOT_SHIFT && ADDRESS_BITS > REGION_SHIFT);

/// A leaf: one id word per 16 bytes of its region.
type Leaf = AtomicU64;

/// The root (null until [`map`] succeeds).
static ROOT: AtomicPtr<AtomicPtr<Leaf>> = AtomicPtr::new(ptr::null_mut());

/// An anonymous, private, `MAP_NORESERVE` mapping of `bytes`, zeroed (null when refused).
fn map_zeroed(bytes: usize) -> *mut libc::c_void {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let mapping = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if mapping == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    mapping
}

/// Maps the root; false when the kernel refuses (tracing then stays off).
pub fn map() -> bool {
    if !ROOT.load(Ordering::Acquire).is_null() {
        return true;
    }
    let root = map_zeroed(ROOT_SLOTS * core::mem::size_of::<AtomicPtr<Leaf>>());
    if root.is_null() {
        return false;
    }
    ROOT.store(root.cast(), Ordering::Release);
    true
}

/// The root's entry for `address`'s region (`None` before [`map`] or above [`ADDRESS_BITS`]).
#[inline(always)]
fn root_entry(address: usize) -> Option<&'static AtomicPtr<Leaf>> {
    let root = ROOT.load(Ordering::Relaxed);
    let region = address >> REGION_SHIFT;
    if root.is_null() || region >= ROOT_SLOTS {
        return None;
    }
    // SAFETY: the root is mapped (non-null), `region < ROOT_SLOTS`, zeroed memory is a valid
    // null `AtomicPtr`, and the root is never unmapped.
    Some(unsafe { &*root.add(region) })
}

/// `address`'s slot in `leaf`.
#[inline(always)]
fn slot(leaf: *mut Leaf, address: usize) -> &'static AtomicU64 {
    let index = (address >> SLOT_SHIFT) & (LEAF_SLOTS - 1);
    // SAFETY: a mapped leaf of `LEAF_SLOTS` words (never unmapped), `index < LEAF_SLOTS`.
    unsafe { &*leaf.add(index) }
}

/// The leaf for `entry`, mapped now if the region has none (null when the kernel refuses).
#[cold]
#[inline(never)]
fn new_leaf(entry: &AtomicPtr<Leaf>) -> *mut Leaf {
    let bytes = LEAF_SLOTS * core::mem::size_of::<Leaf>();
    let leaf = map_zeroed(bytes).cast::<Leaf>();
    if leaf.is_null() {
        return leaf;
    }
    match entry.compare_exchange(ptr::null_mut(), leaf, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => leaf,
        Err(theirs) => {
            // SAFETY: our own mapping of `bytes`, never published.
            unsafe { libc::munmap(leaf.cast(), bytes) };
            theirs
        }
    }
}

/// Records that the block at `address` is object `id` (non-zero); false when the map cannot
/// hold it (an address above [`ADDRESS_BITS`], or no memory for a leaf: the object goes
/// untraced).
#[inline(always)]
pub fn insert(address: usize, id: u64) -> bool {
    debug_assert!(id != 0);
    let Some(entry) = root_entry(address) else {
        return false;
    };
    let mut leaf = entry.load(Ordering::Acquire);
    if leaf.is_null() {
        leaf = new_leaf(entry);
        if leaf.is_null() {
            return false;
        }
    }
    slot(leaf, address).store(id, Ordering::Release);
    true
}

/// Forgets the block at `address` and returns its id; `None` for a block the map does not
/// hold (allocated before tracing started, or untraced).
#[inline(always)]
pub fn remove(address: usize) -> Option<u64> {
    let leaf = root_entry(address)?.load(Ordering::Acquire);
    if leaf.is_null() {
        return None;
    }
    let slot = slot(leaf, address);
    let id = slot.load(Ordering::Acquire);
    if id == 0 {
        return None;
    }
    slot.store(0, Ordering::Release);
    Some(id)
}
