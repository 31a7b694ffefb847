//! `Ring<T>`: a bounded FIFO queue in a region partition.

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use heapkit_core::InvariantError;

// Introspection for pictures and tests, in its own file; a child module so it reads the fields.
#[path = "ring_map.rs"]
mod ring_map;

/// A bounded FIFO queue of `T`.
///
/// A full ring refuses a push and gives the value back: the capacity is the back-pressure, as
/// in TigerBeetle's `RingBuffer`. Indices wrap by comparison, not `%`, so any capacity works.
///
/// ```text
///   [ . . x x x x . . ]      head = 2, len = 4: pop takes slot 2, push writes slot 6
/// ```
pub struct Ring<'r, T> {
    name: &'static str,
    buffer: NonNull<MaybeUninit<T>>,
    capacity: usize,
    head: usize,
    len: usize,
    taken_mask: &'r AtomicU64,
    taken_bit: u64,
    _owns: PhantomData<T>,
}

// SAFETY: the ring owns its elements exclusively (one ring per partition at a time); sending it
// sends `T`s, sharing `&Ring` shares `&T`s.
unsafe impl<T: Send> Send for Ring<'_, T> {}
// SAFETY: see above.
unsafe impl<T: Sync> Sync for Ring<'_, T> {}

impl<'r, T> Ring<'r, T> {
    /// An empty ring over `capacity` elements at `buffer`.
    ///
    /// # Safety
    /// `buffer` is a valid, aligned array of `capacity` elements used by nothing else for `'r`.
    pub(crate) unsafe fn new(
        name: &'static str,
        buffer: NonNull<MaybeUninit<T>>,
        capacity: usize,
        taken: (&'r AtomicU64, u64),
    ) -> Self {
        Ring {
            name,
            buffer,
            capacity,
            head: 0,
            len: 0,
            taken_mask: taken.0,
            taken_bit: taken.1,
            _owns: PhantomData,
        }
    }

    /// The partition's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The most elements the ring holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many elements it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a push would be refused.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// The buffer index `offset` places after `head`, wrapped.
    #[inline(always)]
    fn wrap(&self, offset: usize) -> usize {
        debug_assert!(offset < self.capacity);
        let index = self.head + offset;
        if index >= self.capacity {
            index - self.capacity
        } else {
            index
        }
    }

    #[inline(always)]
    fn slot(&self, index: usize) -> NonNull<MaybeUninit<T>> {
        debug_assert!(index < self.capacity);
        // SAFETY: `index < capacity`: inside the buffer.
        unsafe { self.buffer.add(index) }
    }

    /// Appends `value` at the back, or gives it back when the ring is full.
    #[inline]
    pub fn push_back(&mut self, value: T) -> Result<(), T> {
        if self.is_full() {
            return Err(value);
        }
        let index = self.wrap(self.len);
        // SAFETY: slots outside `head..head + len` (wrapped) hold no value.
        unsafe { self.slot(index).cast::<T>().write(value) };
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the front element.
    #[inline]
    pub fn pop_front(&mut self) -> Option<T> {
        if self.is_empty() {
            return None;
        }
        // SAFETY: `head` holds a value when `len > 0`; it is moved out and the slot leaves the
        // live range below.
        let value = unsafe { self.slot(self.head).cast::<T>().read() };
        self.head = if self.head + 1 == self.capacity {
            0
        } else {
            self.head + 1
        };
        self.len -= 1;
        Some(value)
    }

    /// The `offset`-th element from the front (0 is the front).
    pub fn get(&self, offset: usize) -> Option<&T> {
        if offset >= self.len {
            return None;
        }
        // SAFETY: offsets below `len` hold values; `&self` keeps them in place.
        Some(unsafe { self.slot(self.wrap(offset)).cast::<T>().as_ref() })
    }

    /// The front element.
    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// Drops every element.
    pub fn clear(&mut self) {
        // Bounded by `len`, which pop decrements.
        while self.pop_front().is_some() {}
    }

    /// Checks `head` and `len` against the capacity.
    pub fn check(&self) -> Result<(), InvariantError> {
        let addr = self.buffer.as_ptr() as usize;
        if self.len > self.capacity {
            return Err(InvariantError::new("ring: longer than its capacity", addr));
        }
        if self.head >= self.capacity.max(1) {
            return Err(InvariantError::new("ring: head out of range", addr));
        }
        Ok(())
    }
}

impl<T> Drop for Ring<'_, T> {
    fn drop(&mut self) {
        self.clear();
        self.taken_mask
            .fetch_and(!self.taken_bit, Ordering::Release);
    }
}

impl<T> fmt::Debug for Ring<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("len", &self.len)
            .finish()
    }
}
