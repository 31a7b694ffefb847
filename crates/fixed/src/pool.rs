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
/// The link of a retired slot: its generation ran out, so it is never handed out again.
const RETIRED: u32 = u32::MAX - 2;

const _: () = assert!(crate::SLOTS_MAX as u64 <= RETIRED as u64);

/// The generation of a retired slot. A slot released with generation `GENERATION_LAST` is
/// retired instead of wrapping to 0, so no two ids handed out by one region's pool ever name
/// the same slot with the same generation (a wrap would let an id 2^32 releases old pass).
const GENERATION_RETIRED: u32 = u32::MAX;
/// The last generation a slot is handed out with.
const GENERATION_LAST: u32 = GENERATION_RETIRED - 1;

/// A slot of a pool, handed out by [`Pool::try_acquire`]: the slot's index and its
/// generation (`Copy`, 12 bytes). The pool checks it on every use, so a stale or foreign id is
/// an error, not UB:
/// - an id of another pool is [`ReleaseError::Foreign`];
/// - an id whose slot was released is [`ReleaseError::NotAcquired`] while the slot is free,
///   and [`ReleaseError::Stale`] once the slot was acquired again (the slot's generation
///   counts releases; the id still carries the old one).
pub struct SlotId<T> {
    pool_tag: u32,
    index: u32,
    generation: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> SlotId<T> {
    /// The slot's index in its pool (`0..capacity`).
    pub fn index(self) -> u32 {
        self.index
    }

    /// The slot's generation when this id was handed out: how many times the slot had been
    /// released before (over every pool borrowed from the same region partition).
    pub fn generation(self) -> u32 {
        self.generation
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
        (self.pool_tag, self.index, self.generation)
            == (other.pool_tag, other.index, other.generation)
    }
}
impl<T> Eq for SlotId<T> {}
impl<T> fmt::Debug for SlotId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SlotId({}#{}@{})",
            self.pool_tag, self.index, self.generation
        )
    }
}

/// Why an id (or pointer) was refused by a release or [`Pool::try_get`]. The pool is
/// unchanged.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReleaseError {
    /// The slot is free: it was released already (or never acquired).
    NotAcquired {
        /// The slot's index.
        index: u32,
    },
    /// The slot was released and acquired again since the id was handed out: the id names an
    /// older object, not the value the slot holds now.
    Stale {
        /// The slot's index.
        index: u32,
        /// The generation the id carries.
        id_generation: u32,
        /// The slot's generation now.
        slot_generation: u32,
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
            ReleaseError::Stale {
                index,
                id_generation,
                slot_generation,
            } => write!(
                f,
                "stale id: slot {index} was released and acquired again since (id generation {id_generation}, slot generation {slot_generation})"
            ),
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
/// - a `SlotId` or a pointer from elsewhere is refused by a range check, never
///   dereferenced;
/// - a stale `SlotId` (its slot was released and acquired again) is refused by its
///   generation: a second `u32` array beside the links counts each slot's releases. A slot
///   whose generation reaches `u32::MAX - 1` is *retired* on its next release (never handed out
///   again, [`SlotState::Retired`]) rather than wrapping, so an id is never mistaken for a newer
///   one; that takes 2^32 releases of one slot. The pool's side memory is 8 bytes per slot.
///
/// ```text
///   slots  [ T ][ T ][ T ][ T ][ T ]        (capacity * size_of::<T>() bytes, no header)
///   links  [ A ][ 3 ][ A ][ E ][ 1 ]        A = acquired, E = end of the free list
///   gens   [ 0 ][ 2 ][ 1 ][ 0 ][ 5 ]        releases so far; an id carries its slot's
///   free_head = 4 ──► 1 ──► 3 ──► E
/// ```
///
/// Borrowed from a [`Region`](crate::Region) with `Region::pool`; the slots' memory belongs to
/// the region, and values still in the pool are dropped with it.
pub struct Pool<'r, T> {
    name: &'static str,
    slots: NonNull<MaybeUninit<T>>,
    links: NonNull<u32>,
    generations: NonNull<u32>,
    capacity: u32,
    free_head: u32,
    acquired_count: u32,
    retired_count: u32,
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
    /// Builds a pool over raw slot, link and generation memory and threads every slot that is
    /// not retired on the free list, in index order. The generations are kept: they were
    /// zeroed when the region was built and count releases across every pool borrowed from
    /// the partition, so an id from an earlier borrow is stale too.
    ///
    /// # Safety
    /// `slots`, `links` and `generations` are valid, aligned, disjoint arrays of `capacity`
    /// elements, used by nothing else for `'r`, and `generations` is initialised;
    /// `capacity <= SLOTS_MAX`.
    pub(crate) unsafe fn new(
        name: &'static str,
        slots: NonNull<MaybeUninit<T>>,
        (links, generations): (NonNull<u32>, NonNull<u32>),
        capacity: u32,
        pool_tag: u32,
        taken: (&'r AtomicU64, u64),
    ) -> Self {
        debug_assert!(capacity as usize <= crate::SLOTS_MAX);
        let mut free_head = END;
        let mut retired_count = 0;
        // Threaded back to front, each slot pushed on the head, so the list runs 0, 1, 2, ...
        for index in (0..capacity).rev() {
            // SAFETY: `index < capacity`, within the arrays the caller vouches for.
            let retired = unsafe { generations.add(index as usize).read() } == GENERATION_RETIRED;
            let link = if retired {
                retired_count += 1;
                RETIRED
            } else {
                core::mem::replace(&mut free_head, index)
            };
            // SAFETY: as above.
            unsafe { links.add(index as usize).write(link) };
        }
        Pool {
            name,
            slots,
            links,
            generations,
            capacity,
            free_head,
            acquired_count: 0,
            retired_count,
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

    /// How many slots are free (retired slots are not: they are never handed out again).
    pub fn available(&self) -> usize {
        (self.capacity - self.acquired_count - self.retired_count) as usize
    }

    /// How many slots are retired: each was released 2^32 - 1 times, and handing it out
    /// again would let its oldest ids pass for new ones.
    pub fn retired(&self) -> usize {
        self.retired_count as usize
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
    fn generation(&self, index: u32) -> u32 {
        debug_assert!(index < self.capacity);
        // SAFETY: callers pass `index < capacity`; the generations array has `capacity`
        // elements, initialised.
        unsafe { self.generations.add(index as usize).read() }
    }

    #[inline(always)]
    fn set_generation(&mut self, index: u32, generation: u32) {
        debug_assert!(index < self.capacity);
        // SAFETY: as in `generation`; `&mut self` means no reader is racing.
        unsafe { self.generations.add(index as usize).write(generation) }
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
        Ok(self.id_at(index))
    }

    /// The id of slot `index` with its generation now.
    #[inline(always)]
    fn id_at(&self, index: u32) -> SlotId<T> {
        SlotId {
            pool_tag: self.pool_tag,
            index,
            generation: self.generation(index),
            _type: PhantomData,
        }
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
        let slot_generation = self.generation(id.index);
        if id.generation != slot_generation {
            return Err(ReleaseError::Stale {
                index: id.index,
                id_generation: id.generation,
                slot_generation,
            });
        }
        Ok(id.index)
    }

    /// The value in an acquired slot, or why `id` names none: a foreign id, a free slot, or a
    /// stale id (see [`SlotId`]).
    #[inline]
    pub fn try_get(&self, id: SlotId<T>) -> Result<&T, ReleaseError> {
        let index = self.acquired_index(id)?;
        // SAFETY: the slot is acquired, so it holds an initialised value; `&self` keeps it
        // from being released while the reference lives.
        Ok(unsafe { self.slot(index).cast::<T>().as_ref() })
    }

    /// The value in an acquired slot, or `None` for a free slot, a stale or a foreign id
    /// ([`try_get`](Self::try_get) says which).
    #[inline]
    pub fn get(&self, id: SlotId<T>) -> Option<&T> {
        self.try_get(id).ok()
    }

    /// The value in an acquired slot, mutably, or `None` for a free slot, a stale or a
    /// foreign id.
    #[inline]
    pub fn get_mut(&mut self, id: SlotId<T>) -> Option<&mut T> {
        let index = self.acquired_index(id).ok()?;
        // SAFETY: as in `get`, with `&mut self` making the reference unique.
        Some(unsafe { self.slot(index).cast::<T>().as_mut() })
    }

    /// Releases a slot and returns its value.
    ///
    /// A slot that is already free (a double release), a stale id or an id of another pool is
    /// refused with [`ReleaseError`], and the pool is unchanged; with the `checked` feature the
    /// process aborts with a message naming the pool instead.
    ///
    /// The slot's generation counts up, so this id (and its copies) is stale from now on. A
    /// slot released with the last generation is retired rather than freed.
    #[inline]
    pub fn release(&mut self, id: SlotId<T>) -> Result<T, ReleaseError> {
        let index = match self.acquired_index(id) {
            Ok(index) => index,
            Err(error) => return Err(self.on_bad_release(error)),
        };
        // SAFETY: the slot is acquired, so it holds an initialised value, moved out here and
        // never read again before the slot is re-acquired (its link no longer says ACQUIRED).
        let value = unsafe { self.slot(index).cast::<T>().read() };
        self.acquired_count -= 1;
        if self.advance_generation(index) {
            self.set_link(index, self.free_head);
            self.free_head = index;
        } else {
            self.set_link(index, RETIRED);
            self.retired_count += 1;
        }
        Ok(value)
    }

    /// Acquires a slot like [`try_acquire`](Self::try_acquire) and returns its address, for
    /// code that links values by pointer (as TigerBeetle's pools do).
    #[inline]
    pub fn try_acquire_ptr(&mut self, value: T) -> Result<NonNull<T>, T> {
        let id = self.try_acquire(value)?;
        Ok(self.slot(id.index).cast())
    }

    /// The id of the slot at `ptr`, with the slot's generation now, if `ptr` is the start of a
    /// slot of this pool (acquired or not). Never dereferences `ptr`.
    pub fn id_of(&self, ptr: NonNull<T>) -> Option<SlotId<T>> {
        let offset_bytes = (ptr.as_ptr() as usize).checked_sub(self.slots.as_ptr() as usize)?;
        let size_bytes = core::mem::size_of::<T>();
        if size_bytes == 0 || offset_bytes % size_bytes != 0 {
            return None;
        }
        let index = u32::try_from(offset_bytes / size_bytes).ok()?;
        (index < self.capacity).then(|| self.id_at(index))
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

    /// Counts a release of slot `index` in its generation, so that its ids go stale; `false`
    /// when the generation ran out and the slot is now retired (the caller keeps it off the
    /// free list).
    #[inline(always)]
    fn advance_generation(&mut self, index: u32) -> bool {
        let generation = self.generation(index);
        debug_assert!(
            generation != GENERATION_RETIRED,
            "a retired slot was acquired"
        );
        if generation == GENERATION_LAST {
            self.set_generation(index, GENERATION_RETIRED);
            return false;
        }
        self.set_generation(index, generation + 1);
        true
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

    /// Walks the free list, the links and the generations: every slot is acquired, retired or
    /// on the free list exactly once, a slot is retired exactly when its generation says so,
    /// and the counts agree. O(capacity).
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
        let retired = (0..self.capacity)
            .filter(|&i| self.link(i) == RETIRED)
            .count();
        if retired != self.retired_count as usize {
            return Err(InvariantError::new("pool: retired count is wrong", addr));
        }
        if (0..self.capacity)
            .any(|i| (self.link(i) == RETIRED) != (self.generation(i) == GENERATION_RETIRED))
        {
            return Err(InvariantError::new(
                "pool: a slot's link and generation disagree on retirement",
                addr,
            ));
        }
        if free_count + self.acquired_count + self.retired_count != self.capacity {
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
        // Every value still in the pool is released: dropped, and its slot's generation
        // advanced, so that its ids are stale in the partition's next pool too.
        let walked = if self.acquired_count == 0 {
            0
        } else {
            self.capacity
        };
        for index in 0..walked {
            if self.link(index) == ACQUIRED {
                if core::mem::needs_drop::<T>() {
                    // SAFETY: an acquired slot holds an initialised value, dropped once here.
                    unsafe { self.slot(index).cast::<T>().drop_in_place() };
                }
                // The next pool reads the retirement from the generation; links are rebuilt.
                self.advance_generation(index);
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
            .field("retired", &self.retired_count)
            .finish()
    }
}
