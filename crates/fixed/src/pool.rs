//! `Pool<T>`: a fixed number of slots of one type, acquired and released in O(1).

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use heapkit_core::report::abort_with;
use heapkit_core::InvariantError;

// Introspection for pictures and tests, in its own file; a child module so it reads the fields.
#[path = "pool_map.rs"]
mod pool_map;
pub use pool_map::SlotState;

/// The link of an acquired slot.
const ACQUIRED: u32 = u32::MAX;
/// The link of the last free slot (and `free_head` of a full pool).
const END: u32 = u32::MAX - 1;

const _: () = assert!(crate::SLOTS_MAX as u64 <= END as u64);

/// A slot of a pool, handed out by [`Pool::try_acquire`]. It is a plain index (`Copy`, 8
/// bytes); the pool checks it on every use, so a stale or foreign id is an error, not UB.
pub struct SlotId<T> {
    pool_tag: u32,
    index: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> SlotId<T> {
    /// The slot's index in its pool (`0..capacity`).
    pub fn index(self) -> u32 {
        self.index
    }
}

impl<T> Clone for SlotId<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SlotId<T> {}
impl<T> PartialEq for SlotId<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.pool_tag, self.index) == (other.pool_tag, other.index)
    }
}
impl<T> Eq for SlotId<T> {}
impl<T> fmt::Debug for SlotId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotId({}#{})", self.pool_tag, self.index)
    }
}

/// Why a release was refused. The pool is unchanged.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReleaseError {
    /// The slot is free: it was released already (or never acquired).
    NotAcquired {
        /// The slot's index.
        index: u32,
    },
    /// The id or pointer does not name a slot of this pool.
    Foreign,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::NotAcquired { index } => {
                write!(f, "slot {index} is not acquired (released twice?)")
            }
            ReleaseError::Foreign => f.write_str("not a slot of this pool"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ReleaseError {}

/// A pool of `capacity` slots of `T` in a region partition.
///
/// Like TigerBeetle's `NodePool` and `MessagePool`, a pool is sized at startup and never grows.
/// The free list is an array of `u32` links *beside* the slots, not inside them, so:
/// - a slot has no header: `capacity * size_of::<T>()` bytes hold exactly `capacity` values;
/// - every slot has a state that release can check in O(1): a slot whose link is not
///   "acquired" is free, so releasing it again is detected, always, for one load;
/// - a stale `SlotId` or a pointer from elsewhere is refused by a range check, never
///   dereferenced.
///
/// ```text
///   slots  [ T ][ T ][ T ][ T ][ T ]        (capacity * size_of::<T>() bytes, no header)
///   links  [ A ][ 3 ][ A ][ E ][ 1 ]        A = acquired, E = end of the free list
///   free_head = 4 ──► 1 ──► 3 ──► E
/// ```
///
/// Borrowed from a [`Region`](crate::Region) with `Region::pool`; the slots' memory belongs to
/// the region, and values still in the pool are dropped with it.
pub struct Pool<'r, T> {
    name: &'static str,
    slots: NonNull<MaybeUninit<T>>,
    links: NonNull<u32>,
    capacity: u32,
    free_head: u32,
    acquired_count: u32,
    pool_tag: u32,
    /// The region's mask of taken partitions; the pool clears its bit when dropped.
    taken_mask: &'r AtomicU64,
    taken_bit: u64,
    _owns: PhantomData<T>,
}

// SAFETY: the pool owns its slots exclusively (the region hands a partition to one pool at a
// time), so sending it sends the `T`s, which is sound for `T: Send`. It has no `&self` methods
// that mutate, so sharing `&Pool` only shares `&T`s: sound for `T: Sync`.
unsafe impl<T: Send> Send for Pool<'_, T> {}
// SAFETY: see above.
unsafe impl<T: Sync> Sync for Pool<'_, T> {}

impl<'r, T> Pool<'r, T> {
    /// Builds a pool over raw slot and link memory and threads every slot on the free list.
    ///
    /// # Safety
    /// `slots` and `links` are valid, aligned, disjoint arrays of `capacity` elements, used by
    /// nothing else for `'r`; `capacity <= SLOTS_MAX`.
    pub(crate) unsafe fn new(
        name: &'static str,
        slots: NonNull<MaybeUninit<T>>,
        links: NonNull<u32>,
        capacity: u32,
        pool_tag: u32,
        taken: (&'r AtomicU64, u64),
    ) -> Self {
        debug_assert!(capacity as usize <= crate::SLOTS_MAX);
        for index in 0..capacity {
            let next = if index + 1 == capacity {
                END
            } else {
                index + 1
            };
            // SAFETY: `index < capacity`, within the links array the caller vouches for.
            unsafe { links.add(index as usize).write(next) };
        }
        Pool {
            name,
            slots,
            links,
            capacity,
            free_head: if capacity == 0 { END } else { 0 },
            acquired_count: 0,
            pool_tag,
            taken_mask: taken.0,
            taken_bit: taken.1,
            _owns: PhantomData,
        }
    }

    /// The partition's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How many slots the pool has.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// How many slots are acquired.
    pub fn len(&self) -> usize {
        self.acquired_count as usize
    }

    /// Whether no slot is acquired.
    pub fn is_empty(&self) -> bool {
        self.acquired_count == 0
    }

    /// How many slots are free.
    pub fn available(&self) -> usize {
        (self.capacity - self.acquired_count) as usize
    }

    #[inline(always)]
    fn link(&self, index: u32) -> u32 {
        debug_assert!(index < self.capacity);
        // SAFETY: callers pass `index < capacity`; the links array has `capacity` elements.
        unsafe { self.links.add(index as usize).read() }
    }

    #[inline(always)]
    fn set_link(&mut self, index: u32, link: u32) {
        debug_assert!(index < self.capacity);
        // SAFETY: as in `link`; `&mut self` means no reader is racing.
        unsafe { self.links.add(index as usize).write(link) }
    }

    #[inline(always)]
    fn slot(&self, index: u32) -> NonNull<MaybeUninit<T>> {
        debug_assert!(index < self.capacity);
        // SAFETY: callers pass `index < capacity`; the slots array has `capacity` elements.
        unsafe { self.slots.add(index as usize) }
    }

    /// Takes a free slot and moves `value` into it, or gives `value` back when every slot is
    /// acquired (the capacity is the limit: nothing grows).
    #[inline]
    pub fn try_acquire(&mut self, value: T) -> Result<SlotId<T>, T> {
        let index = self.free_head;
        if index == END {
            return Err(value);
        }
        self.free_head = self.link(index);
        debug_assert!(self.free_head == END || self.free_head < self.capacity);
        self.set_link(index, ACQUIRED);
        self.acquired_count += 1;
        // SAFETY: the slot was free, so it holds no value; it is valid for writes.
        unsafe { self.slot(index).cast::<T>().write(value) };
        Ok(SlotId {
            pool_tag: self.pool_tag,
            index,
            _type: PhantomData,
        })
    }

    /// The index of an acquired slot named by `id`, or why it is not one.
    #[inline(always)]
    fn acquired_index(&self, id: SlotId<T>) -> Result<u32, ReleaseError> {
        if id.pool_tag != self.pool_tag || id.index >= self.capacity {
            return Err(ReleaseError::Foreign);
        }
        if self.link(id.index) != ACQUIRED {
            return Err(ReleaseError::NotAcquired { index: id.index });
        }
        Ok(id.index)
    }

    /// The value in an acquired slot, or `None` for a free slot or a foreign id.
    #[inline]
    pub fn get(&self, id: SlotId<T>) -> Option<&T> {
        let index = self.acquired_index(id).ok()?;
        // SAFETY: the slot is acquired, so it holds an initialised value; `&self` keeps it
        // from being released while the reference lives.
        Some(unsafe { self.slot(index).cast::<T>().as_ref() })
    }

    /// The value in an acquired slot, mutably, or `None` for a free slot or a foreign id.
    #[inline]
    pub fn get_mut(&mut self, id: SlotId<T>) -> Option<&mut T> {
        let index = self.acquired_index(id).ok()?;
        // SAFETY: as in `get`, with `&mut self` making the reference unique.
        Some(unsafe { self.slot(index).cast::<T>().as_mut() })
    }

    /// Releases a slot and returns its value.
    ///
    /// A slot that is already free (a double release) or an id of another pool is refused with
    /// [`ReleaseError`], and the pool is unchanged; with the `checked` feature the process
    /// aborts with a message naming the pool instead.
    #[inline]
    pub fn release(&mut self, id: SlotId<T>) -> Result<T, ReleaseError> {
        let index = match self.acquired_index(id) {
            Ok(index) => index,
            Err(error) => return Err(self.on_bad_release(error)),
        };
        // SAFETY: the slot is acquired, so it holds an initialised value, moved out here and
        // never read again before the slot is re-acquired (its link no longer says ACQUIRED).
        let value = unsafe { self.slot(index).cast::<T>().read() };
        self.set_link(index, self.free_head);
        self.free_head = index;
        self.acquired_count -= 1;
        Ok(value)
    }

    /// Acquires a slot like [`try_acquire`](Self::try_acquire) and returns its address, for
    /// code that links values by pointer (as TigerBeetle's pools do).
    #[inline]
    pub fn try_acquire_ptr(&mut self, value: T) -> Result<NonNull<T>, T> {
        let id = self.try_acquire(value)?;
        Ok(self.slot(id.index).cast())
    }

    /// The id of the slot at `ptr`, if `ptr` is the start of a slot of this pool (acquired or
    /// not). Never dereferences `ptr`.
    pub fn id_of(&self, ptr: NonNull<T>) -> Option<SlotId<T>> {
        let offset_bytes = (ptr.as_ptr() as usize).checked_sub(self.slots.as_ptr() as usize)?;
        let size_bytes = core::mem::size_of::<T>();
        if size_bytes == 0 || offset_bytes % size_bytes != 0 {
            return None;
        }
        let index = u32::try_from(offset_bytes / size_bytes).ok()?;
        (index < self.capacity).then_some(SlotId {
            pool_tag: self.pool_tag,
            index,
            _type: PhantomData,
        })
    }

    /// Releases the slot at `ptr` (from [`try_acquire_ptr`](Self::try_acquire_ptr)) and
    /// returns its value. A pointer that is not a slot of this pool, or a slot already free,
    /// is refused like in [`release`](Self::release); `ptr` is never dereferenced unless it is
    /// an acquired slot.
    #[inline]
    pub fn release_ptr(&mut self, ptr: NonNull<T>) -> Result<T, ReleaseError> {
        match self.id_of(ptr) {
            Some(id) => self.release(id),
            None => Err(self.on_bad_release(ReleaseError::Foreign)),
        }
    }

    #[cold]
    fn on_bad_release(&self, error: ReleaseError) -> ReleaseError {
        if cfg!(feature = "checked") {
            abort_with(format_args!(
                "heapkit-fixed: pool {:?}: bad release: {}",
                self.name, error
            ));
        }
        error
    }

    /// Walks the free list and the links: every slot is either acquired or on the free list
    /// exactly once, and the counts agree. O(capacity).
    pub fn check(&self) -> Result<(), InvariantError> {
        let addr = self.slots.as_ptr() as usize;
        let mut free_count: u32 = 0;
        let mut index = self.free_head;
        while index != END {
            if index >= self.capacity {
                return Err(InvariantError::new("pool: free link out of range", addr));
            }
            if free_count >= self.capacity {
                return Err(InvariantError::new("pool: free list has a cycle", addr));
            }
            free_count += 1;
            index = self.link(index);
            if index == ACQUIRED {
                return Err(InvariantError::new(
                    "pool: acquired slot on the free list",
                    addr,
                ));
            }
        }
        let acquired = (0..self.capacity)
            .filter(|&i| self.link(i) == ACQUIRED)
            .count();
        if acquired != self.acquired_count as usize {
            return Err(InvariantError::new("pool: acquired count is wrong", addr));
        }
        if free_count + self.acquired_count != self.capacity {
            return Err(InvariantError::new(
                "pool: a free slot is off the free list",
                addr,
            ));
        }
        Ok(())
    }
}

impl<T> Drop for Pool<'_, T> {
    fn drop(&mut self) {
        if core::mem::needs_drop::<T>() {
            for index in 0..self.capacity {
                if self.link(index) == ACQUIRED {
                    // SAFETY: an acquired slot holds an initialised value, dropped once here.
                    unsafe { self.slot(index).cast::<T>().drop_in_place() };
                }
            }
        }
        self.taken_mask
            .fetch_and(!self.taken_bit, Ordering::Release);
    }
}

impl<T> fmt::Debug for Pool<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("acquired", &self.acquired_count)
            .finish()
    }
}
