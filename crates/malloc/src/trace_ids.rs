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
//! of 32-bit id words per region that is used, mapped on its first insert. Both are
//! `MAP_NORESERVE`, so only the pages that live entries touch become resident: a quarter of the
//! heap's span (4 bytes per 16 bytes), where the hashed table it replaced (address and id per
//! slot) took the whole span — pages the kernel must fault in and zero, the largest cost of a
//! traced python3 (~80 MB, a tenth of its time).
//!
//! Ids from 2^32 - 1 on (a program that created four billion objects) do not fit a word: the
//! word holds [`IN_HIGH`] and the id sits in the region's *high* leaf of 64-bit words, mapped
//! only when the first such id arrives, so no id is ever lost or cut short.
//!
//! An id is inserted only by the thread that just got the block from `malloc` and removed only
//! by the thread that frees it, which the program orders after the `malloc` returned (it had to
//! pass the pointer on), so a slot needs no lock and no read-modify-write.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Bits of a user-space address on x86-64 (and most 64-bit Linux targets with 4-level page
/// tables); blocks above go untraced.
const ADDRESS_BITS: u32 = 47;
/// log2 of the bytes of address space one leaf covers (64 MiB).
const REGION_SHIFT: u32 = 26;
/// log2 of the bytes one slot covers: C blocks are 16-byte aligned.
const SLOT_SHIFT: u32 = 4;
/// Leaf pointers in a root (2 Mi: 16 MiB of address space, a page of it per 32 GiB of heap).
const ROOT_SLOTS: usize = 1 << (ADDRESS_BITS - REGION_SHIFT);
/// Words in a leaf (4 Mi).
const LEAF_SLOTS: usize = 1 << (REGION_SHIFT - SLOT_SHIFT);
/// A low word saying "the id is in the high leaf".
const IN_HIGH: u32 = u32::MAX;

const _: () = assert!(heapkit_core::MAX_ALIGN_BYTES == 1 << SLOT_SHIFT);
const _: () = assert!(REGION_SHIFT > SLOT_SHIFT && ADDRESS_BITS > REGION_SHIFT);

/// A root: one leaf pointer per region (null: no leaf yet).
type Root<T> = AtomicPtr<AtomicPtr<T>>;

/// The low leaves: a 32-bit word per slot (0: no object; [`IN_HIGH`]: see the high leaf).
static LOW: Root<AtomicU32> = AtomicPtr::new(ptr::null_mut());
/// The high leaves: a 64-bit id per slot, for ids from [`IN_HIGH`] on.
static HIGH: Root<AtomicU64> = AtomicPtr::new(ptr::null_mut());

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

/// Maps the roots; false when the kernel refuses (tracing then stays off).
pub fn map() -> bool {
    map_root(&LOW) && map_root(&HIGH)
}

/// Maps `root` unless it is mapped; false when the kernel refuses.
fn map_root<T>(root: &Root<T>) -> bool {
    if !root.load(Ordering::Acquire).is_null() {
        return true;
    }
    let mapping = map_zeroed(ROOT_SLOTS * core::mem::size_of::<AtomicPtr<T>>());
    if mapping.is_null() {
        return false;
    }
    root.store(mapping.cast(), Ordering::Release);
    true
}

/// `root`'s entry for `address`'s region (`None` before [`map`] or above [`ADDRESS_BITS`]).
#[inline(always)]
fn root_entry<T>(root: &Root<T>, address: usize) -> Option<&'static AtomicPtr<T>> {
    let entries = root.load(Ordering::Relaxed);
    let region = address >> REGION_SHIFT;
    if entries.is_null() || region >= ROOT_SLOTS {
        return None;
    }
    // SAFETY: the root is mapped (non-null), `region < ROOT_SLOTS`, zeroed memory is a valid
    // null `AtomicPtr`, and a root is never unmapped.
    Some(unsafe { &*entries.add(region) })
}

/// `address`'s slot in `leaf`.
#[inline(always)]
fn slot<T>(leaf: *mut T, address: usize) -> &'static T {
    let index = (address >> SLOT_SHIFT) & (LEAF_SLOTS - 1);
    // SAFETY: a mapped leaf of `LEAF_SLOTS` atomics (zeroed memory is a valid zero; never
    // unmapped), `index < LEAF_SLOTS`.
    unsafe { &*leaf.add(index) }
}

/// `entry`'s leaf, mapped now if the region has none (null when the kernel refuses).
#[inline(always)]
fn leaf_or_map<T>(entry: &AtomicPtr<T>) -> *mut T {
    let leaf = entry.load(Ordering::Acquire);
    if !leaf.is_null() {
        return leaf;
    }
    new_leaf(entry)
}

/// Maps a leaf for `entry` (or takes the one another thread just published).
#[cold]
#[inline(never)]
fn new_leaf<T>(entry: &AtomicPtr<T>) -> *mut T {
    let bytes = LEAF_SLOTS * core::mem::size_of::<T>();
    let leaf = map_zeroed(bytes).cast::<T>();
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
    let Some(entry) = root_entry(&LOW, address) else {
        return false;
    };
    let low = leaf_or_map(entry);
    if low.is_null() {
        return false;
    }
    match u32::try_from(id) {
        Ok(word) if word != IN_HIGH => slot(low, address).store(word, Ordering::Release),
        _ => {
            if !insert_high(address, id) {
                return false;
            }
            slot(low, address).store(IN_HIGH, Ordering::Release);
        }
    }
    true
}

/// Puts an id too large for a low word in the high leaf (false when it cannot be mapped).
#[cold]
#[inline(never)]
fn insert_high(address: usize, id: u64) -> bool {
    let Some(entry) = root_entry(&HIGH, address) else {
        return false;
    };
    let high = leaf_or_map(entry);
    if high.is_null() {
        return false;
    }
    slot(high, address).store(id, Ordering::Relaxed);
    true
}

/// Forgets the block at `address` and returns its id; `None` for a block the map does not
/// hold (allocated before tracing started, or untraced).
#[inline(always)]
pub fn remove(address: usize) -> Option<u64> {
    let low = root_entry(&LOW, address)?.load(Ordering::Acquire);
    if low.is_null() {
        return None;
    }
    let word_slot = slot(low, address);
    let word = word_slot.load(Ordering::Acquire);
    if word == 0 {
        return None;
    }
    word_slot.store(0, Ordering::Relaxed);
    if word == IN_HIGH {
        return remove_high(address);
    }
    Some(u64::from(word))
}

/// The id [`insert_high`] put in the high leaf.
#[cold]
#[inline(never)]
fn remove_high(address: usize) -> Option<u64> {
    let high = root_entry(&HIGH, address)?.load(Ordering::Acquire);
    if high.is_null() {
        return None;
    }
    Some(slot(high, address).load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_small_and_past_32_bits() {
        assert!(map());
        let blocks = [0u128; 8];
        let address = |index: usize| core::ptr::addr_of!(blocks[index]) as usize;
        let ids = [
            1,
            2,
            u64::from(IN_HIGH) - 1,
            u64::from(IN_HIGH),
            1 << 40,
            u64::MAX,
        ];
        for (index, &id) in ids.iter().enumerate() {
            assert!(insert(address(index), id));
        }
        for (index, &id) in ids.iter().enumerate() {
            assert_eq!(remove(address(index)), Some(id));
            assert_eq!(remove(address(index)), None, "removed twice");
        }
        assert_eq!(remove(address(7)), None, "never inserted");
    }
}
