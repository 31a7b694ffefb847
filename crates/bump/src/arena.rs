//! `Arena`: the bump pointer, its chunk list, and everything that moves them.
//!
//! Why upward: an arena's in-place operations (growing the last block, the `Vec` push pattern;
//! shrinking it; freeing it) all happen at the bump pointer, and bumping upward puts the *end*
//! of the last block there, so growing is `ptr = block + new_size` with no copy. Bumping
//! downward (bumpalo) puts the *start* of the last block at the pointer, so growing must move
//! the bytes. With `MIN_ALIGN_BYTES` rounding, upward costs the same instructions on the fast
//! path as downward for types aligned up to a word (see the crate docs for the counts).

use crate::chunk::{self, ChunkHeader, CHUNK_ALIGN_BYTES, HEADER_BYTES};
use crate::source::{ChunkSource, FromAllocator};
use crate::FIRST_CHUNK_BYTES;
use crate::{MAX_ALIGN_SERVED_BYTES, MAX_CHUNKS, MAX_GROWTH_CHUNK_BYTES, MIN_ALIGN_BYTES};
use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};
use heapkit_core::{align_up, dangling_block, AllocError, Allocator, Introspect, InvariantError};
use heapkit_core::{is_aligned, Stats};
use heapkit_pages::MmapPages;

/// A bump-pointer arena: allocation moves a pointer forward, memory comes back all at once.
///
/// Values placed in the arena are **never dropped** by it: not on [`reset`](Self::reset), not
/// on a [`rewind`](Self::rewind), not when the arena itself is dropped. Use
/// [`ArenaBox`](crate::ArenaBox) for a value whose `Drop` must run.
///
/// `S` is where chunks come from: any [`PageSource`](heapkit_core::PageSource) (the default is
/// `mmap`) or any heapkit allocator wrapped in [`FromAllocator`]. The arena is `Send` when its
/// source is, and never `Sync` (wrap it in [`heapkit_core::Locked`] to share it).
pub struct Arena<S: ChunkSource = MmapPages> {
    /// The next free byte of the current chunk (null while there is no chunk). Always
    /// `MIN_ALIGN_BYTES`-aligned.
    ptr: Cell<*mut u8>,
    /// One past the current chunk's last byte (null while there is no chunk).
    end: Cell<*mut u8>,
    /// The newest chunk, the one `ptr` bumps through; older ones hang off its `prev` link.
    current: Cell<Option<NonNull<ChunkHeader>>>,
    /// The largest chunk a rewind gave up, kept for the next chunk request.
    spare: Cell<Option<NonNull<ChunkHeader>>>,
    /// Sum of `filled_bytes` over the chunks older than `current`.
    retired_used_bytes: Cell<usize>,
    /// Total length of the chunks held, spare included.
    chunk_bytes: Cell<usize>,
    /// Chunks in the list (the spare excluded).
    chunk_count: Cell<usize>,
    /// Ceiling on `chunk_bytes` (`usize::MAX`: none).
    limit_bytes: Cell<usize>,
    source: S,
}

// SAFETY: the arena owns its chunks exclusively and hands out references that borrow it, so
// moving it to another thread (which needs no outstanding borrow) moves sole ownership of the
// memory; the source goes along, which is why it must be `Send`. `Cell` makes it `!Sync`.
unsafe impl<S: ChunkSource + Send> Send for Arena<S> {}

/// A saved allocation state: [`Arena::rewind`] frees everything allocated after it.
///
/// It borrows nothing, so allocating after taking it is allowed; the `&mut self` that `rewind`
/// takes is what makes sure no reference to those allocations is still alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    chunk: Option<NonNull<ChunkHeader>>,
    ptr: *mut u8,
}

impl Default for Arena<MmapPages> {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena<MmapPages> {
    /// An empty arena over `mmap`. Cheap: nothing is mapped until the first allocation.
    pub const fn new() -> Self {
        Self::with_source(MmapPages::new())
    }
}

impl<A: Allocator> Arena<FromAllocator<A>> {
    /// An empty arena whose chunks are blocks of `allocator`.
    pub const fn with_allocator(allocator: A) -> Self {
        Self::with_source(FromAllocator(allocator))
    }
}

/// Rounds a block length up to `MIN_ALIGN_BYTES`. Cannot overflow for a `Layout` size, which
/// is at most `isize::MAX`.
#[inline(always)]
pub(crate) const fn rounded(size_bytes: usize) -> usize {
    (size_bytes + (MIN_ALIGN_BYTES - 1)) & !(MIN_ALIGN_BYTES - 1)
}

impl<S: ChunkSource> Arena<S> {
    /// An empty arena taking chunks from `source`. Nothing is taken until the first allocation.
    pub const fn with_source(source: S) -> Self {
        Arena {
            ptr: Cell::new(ptr::null_mut()),
            end: Cell::new(ptr::null_mut()),
            current: Cell::new(None),
            spare: Cell::new(None),
            retired_used_bytes: Cell::new(0),
            chunk_bytes: Cell::new(0),
            chunk_count: Cell::new(0),
            limit_bytes: Cell::new(usize::MAX),
            source,
        }
    }

    /// The chunk source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Bytes of chunks the arena holds from its source, headers and unused tails included (what
    /// bumpalo's `allocated_bytes` reports). [`used_bytes`](Self::used_bytes) is what callers got.
    pub fn allocated_bytes(&self) -> usize {
        self.chunk_bytes.get()
    }

    /// Bytes handed out since the last reset: blocks (rounded up to `MIN_ALIGN_BYTES`) and the
    /// alignment padding between them.
    pub fn used_bytes(&self) -> usize {
        let current_bytes = match self.current.get() {
            // SAFETY: `current` is a live chunk and `ptr` lies in its data area.
            Some(header) => self.ptr.get() as usize - unsafe { chunk::data_start(header) } as usize,
            None => 0,
        };
        self.retired_used_bytes.get() + current_bytes
    }

    /// Chunks in use (a spare chunk kept after a rewind is not counted).
    pub fn chunk_count(&self) -> usize {
        self.chunk_count.get()
    }

    /// Bytes the current chunk can still serve without taking a new chunk.
    pub fn remaining_chunk_bytes(&self) -> usize {
        self.end.get() as usize - self.ptr.get() as usize
    }

    /// Caps the bytes of chunks the arena may hold ([`allocated_bytes`](Self::allocated_bytes)).
    /// Requests that would need more fail with `AllocError` (the `try_` methods) or
    /// `handle_alloc_error` (the others). `None` removes the cap. Lowering it below what is
    /// held already frees nothing; it only stops further growth.
    pub fn set_allocation_limit(&self, limit_bytes: Option<usize>) {
        self.limit_bytes.set(limit_bytes.unwrap_or(usize::MAX));
    }

    /// The cap set by [`set_allocation_limit`](Self::set_allocation_limit).
    pub fn allocation_limit(&self) -> Option<usize> {
        match self.limit_bytes.get() {
            usize::MAX => None,
            limit_bytes => Some(limit_bytes),
        }
    }

    /// The fast path: one block of `size_bytes` (non-zero) aligned to `align_bytes` from the
    /// current chunk, or `None` when it does not fit.
    #[inline(always)]
    fn bump(&self, size_bytes: usize, align_bytes: usize) -> Option<NonNull<u8>> {
        debug_assert!(size_bytes > 0 && align_bytes.is_power_of_two());
        let ptr = self.ptr.get();
        let addr = ptr as usize;
        // `ptr` is MIN_ALIGN-aligned, so alignments up to it need no padding: masking out the
        // low bits makes that a constant zero for such types, with no branch.
        let pad_bytes = addr.wrapping_neg() & (align_bytes - 1) & !(MIN_ALIGN_BYTES - 1);
        // No overflow: a Layout's size is at most isize::MAX - (align - 1), and pad < align.
        let needed_bytes = rounded(size_bytes) + pad_bytes;
        if needed_bytes > self.end.get() as usize - addr {
            return None;
        }
        // SAFETY: `ptr + needed_bytes <= end` (checked above), so both pointers stay inside the
        // current chunk, which exists because `end - ptr > 0`.
        unsafe {
            let block = ptr.add(pad_bytes);
            self.ptr.set(block.add(rounded(size_bytes)));
            Some(NonNull::new_unchecked(block))
        }
    }

    /// Allocates memory for `layout` (a zero-size layout gets an aligned dangling pointer),
    /// or `AllocError` when the source or the allocation limit refuses a new chunk, or the
    /// alignment exceeds [`MAX_ALIGN_SERVED_BYTES`](crate::MAX_ALIGN_SERVED_BYTES).
    #[inline(always)]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling_block(layout).cast::<u8>());
        }
        match self.bump(layout.size(), layout.align()) {
            Some(block) => Ok(block),
            None => self.alloc_slow(layout.size(), layout.align()),
        }
    }

    /// Like [`try_alloc_layout`](Self::try_alloc_layout), but failure calls
    /// [`handle_alloc_error`](alloc::alloc::handle_alloc_error) (which aborts by default).
    #[inline(always)]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        match self.try_alloc_layout(layout) {
            Ok(block) => block,
            Err(AllocError) => alloc::alloc::handle_alloc_error(layout),
        }
    }

    /// The slow path: take a chunk that fits the request, make it current, bump.
    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, size_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        if align_bytes > MAX_ALIGN_SERVED_BYTES {
            return Err(AllocError);
        }
        let header = self.take_chunk(size_bytes, align_bytes)?;
        self.install(header);
        let block = self.bump(size_bytes, align_bytes);
        debug_assert!(block.is_some(), "a fresh chunk is sized for the request");
        block.ok_or(AllocError)
    }

    /// A chunk (not yet in the list) able to hold the request: the spare if it fits, else a
    /// new one from the source.
    fn take_chunk(
        &self,
        size_bytes: usize,
        align_bytes: usize,
    ) -> Result<NonNull<ChunkHeader>, AllocError> {
        let offset_bytes = align_up(HEADER_BYTES, align_bytes).ok_or(AllocError)?;
        let needed_bytes = offset_bytes
            .checked_add(rounded(size_bytes))
            .ok_or(AllocError)?;
        if let Some(spare) = self.spare.get() {
            // SAFETY: the spare is a live chunk we own.
            if unsafe { fits(spare, size_bytes, align_bytes) } {
                self.spare.set(None);
                return Ok(spare);
            }
        }
        self.new_chunk(needed_bytes, align_bytes.max(CHUNK_ALIGN_BYTES))
    }

    /// Length of the next chunk if nothing forces a larger one: double the current chunk.
    fn growth_bytes(&self) -> usize {
        match self.current.get() {
            // SAFETY: `current` is a live chunk.
            Some(header) => unsafe { (*header.as_ptr()).len_bytes }
                .saturating_mul(2)
                .clamp(FIRST_CHUNK_BYTES, MAX_GROWTH_CHUNK_BYTES),
            None => FIRST_CHUNK_BYTES,
        }
    }

    /// Whether holding `extra_bytes` more of chunks stays within the allocation limit.
    fn within_limit(&self, extra_bytes: usize) -> bool {
        match self.chunk_bytes.get().checked_add(extra_bytes) {
            Some(total_bytes) => total_bytes <= self.limit_bytes.get(),
            None => false,
        }
    }

    /// Maps a chunk of at least `needed_bytes`: the geometric size when the limit and the
    /// source allow it, else the smallest that fits.
    fn new_chunk(
        &self,
        needed_bytes: usize,
        chunk_align_bytes: usize,
    ) -> Result<NonNull<ChunkHeader>, AllocError> {
        let granule_bytes = self.source.granule_bytes();
        let minimal_bytes = align_up(needed_bytes, granule_bytes).ok_or(AllocError)?;
        if minimal_bytes > isize::MAX as usize || self.chunk_count.get() >= MAX_CHUNKS {
            return Err(AllocError);
        }
        let grown_bytes = align_up(self.growth_bytes(), granule_bytes).ok_or(AllocError)?;
        let preferred_bytes = grown_bytes.max(minimal_bytes);
        let mut result = Err(AllocError);
        for len_bytes in [preferred_bytes, minimal_bytes] {
            if self.within_limit(len_bytes) {
                result = self
                    .source
                    .alloc_chunk(len_bytes, chunk_align_bytes)
                    .map(|raw| (raw, len_bytes));
                if result.is_ok() {
                    break;
                }
            }
        }
        let (raw, len_bytes) = result?;
        debug_assert!(is_aligned(raw.as_ptr() as usize, chunk_align_bytes));
        let header = raw.cast::<ChunkHeader>();
        // SAFETY: the chunk is fresh, at least HEADER_BYTES long and aligned for the header.
        unsafe {
            header.as_ptr().write(ChunkHeader {
                prev: None,
                len_bytes,
                align_bytes: chunk_align_bytes,
                filled_bytes: 0,
            })
        };
        self.chunk_bytes.set(self.chunk_bytes.get() + len_bytes);
        Ok(header)
    }

    /// Makes `header` (a chunk not in the list) the current chunk; the old current one retires
    /// with its fill level recorded.
    fn install(&self, header: NonNull<ChunkHeader>) {
        if let Some(old) = self.current.get() {
            // SAFETY: `old` is the live current chunk and `ptr` lies in its data area.
            let filled_bytes = self.ptr.get() as usize - unsafe { chunk::data_start(old) } as usize;
            // SAFETY: as above; we own the header.
            unsafe { (*old.as_ptr()).filled_bytes = filled_bytes };
            self.retired_used_bytes
                .set(self.retired_used_bytes.get() + filled_bytes);
        }
        // SAFETY: `header` is a live chunk we own and that is in no list.
        unsafe {
            (*header.as_ptr()).prev = self.current.get();
            (*header.as_ptr()).filled_bytes = 0;
            self.ptr.set(chunk::data_start(header));
            self.end.set(chunk::end(header));
        }
        self.current.set(Some(header));
        self.chunk_count.set(self.chunk_count.get() + 1);
    }

    /// Returns a chunk that is in no list to the source.
    ///
    /// # Safety
    /// `header` is a live chunk of this arena, in no list, and nothing in it is used again.
    unsafe fn release(&self, header: NonNull<ChunkHeader>) {
        let (len_bytes, align_bytes) =
            // SAFETY: a live header.
            unsafe { ((*header.as_ptr()).len_bytes, (*header.as_ptr()).align_bytes) };
        self.chunk_bytes.set(self.chunk_bytes.get() - len_bytes);
        // SAFETY: the chunk came from `alloc_chunk(len_bytes, align_bytes)` (recorded in its
        // header) and the caller is done with it.
        unsafe {
            self.source
                .free_chunk(header.cast(), len_bytes, align_bytes)
        };
    }

    /// Keeps `header` as the spare if it is larger than the current spare, else releases it.
    ///
    /// # Safety
    /// As for [`release`](Self::release).
    unsafe fn retire_to_spare(&self, header: NonNull<ChunkHeader>) {
        // SAFETY: live headers.
        let larger = |a: NonNull<ChunkHeader>, b: NonNull<ChunkHeader>| unsafe {
            (*a.as_ptr()).len_bytes > (*b.as_ptr()).len_bytes
        };
        match self.spare.get() {
            Some(spare) if !larger(header, spare) => {
                // SAFETY: forwarded from the caller.
                unsafe { self.release(header) }
            }
            old_spare => {
                self.spare.set(Some(header));
                if let Some(old) = old_spare {
                    // SAFETY: the old spare is a live chunk in no list.
                    unsafe { self.release(old) };
                }
            }
        }
    }

    /// Frees every allocation: keeps the largest chunk (it will serve the next round without
    /// mapping) and returns the others to the source.
    ///
    /// Values in the arena are **not dropped**. `&mut self` proves no reference into the arena
    /// is alive.
    pub fn reset(&mut self) {
        let mut keep = self.spare.take();
        let mut next = self.current.take();
        let mut walked: usize = 0;
        while let Some(header) = next {
            walked += 1;
            debug_assert!(walked <= MAX_CHUNKS);
            // SAFETY: `header` is a live chunk of the list; it is unlinked as we go.
            unsafe {
                next = (*header.as_ptr()).prev;
                match keep {
                    Some(kept) if (*kept.as_ptr()).len_bytes >= (*header.as_ptr()).len_bytes => {
                        self.release(header)
                    }
                    _ => {
                        if let Some(kept) = keep {
                            self.release(kept);
                        }
                        keep = Some(header);
                    }
                }
            }
        }
        self.ptr.set(ptr::null_mut());
        self.end.set(ptr::null_mut());
        self.retired_used_bytes.set(0);
        self.chunk_count.set(0);
        if let Some(kept) = keep {
            self.install(kept);
        }
    }

    /// The current allocation state, to [`rewind`](Self::rewind) to later.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            chunk: self.current.get(),
            ptr: self.ptr.get(),
        }
    }

    /// Frees everything allocated after `checkpoint` (values are not dropped). Chunks taken
    /// since are returned, except the largest, kept as a spare for the next chunk request.
    ///
    /// Any checkpoint is harmless: one from another arena, or one that a [`reset`](Self::reset)
    /// made stale, leaves the arena empty (every chunk released or kept as the spare).
    pub fn rewind(&mut self, checkpoint: Checkpoint) {
        // SAFETY: `&mut self` proves that no reference into the arena is alive.
        unsafe { self.rewind_unchecked(checkpoint) }
    }

    /// [`rewind`](Self::rewind) through a shared reference.
    ///
    /// # Safety
    /// No block allocated after `checkpoint` is used afterwards.
    pub(crate) unsafe fn rewind_unchecked(&self, checkpoint: Checkpoint) {
        let mut walked: usize = 0;
        while self.current.get() != checkpoint.chunk {
            let Some(header) = self.current.get() else {
                // The checkpoint's chunk is not ours (stale or foreign): we are empty now.
                self.ptr.set(ptr::null_mut());
                self.end.set(ptr::null_mut());
                self.retired_used_bytes.set(0);
                return;
            };
            walked += 1;
            debug_assert!(walked <= MAX_CHUNKS);
            // SAFETY: `header` is the live current chunk; the caller promises nothing in it is
            // used again, and it is unlinked before being released.
            unsafe {
                let prev = (*header.as_ptr()).prev;
                self.current.set(prev);
                self.chunk_count.set(self.chunk_count.get() - 1);
                self.retire_to_spare(header);
            }
        }
        let Some(header) = checkpoint.chunk else {
            self.ptr.set(ptr::null_mut());
            self.end.set(ptr::null_mut());
            self.retired_used_bytes.set(0);
            return;
        };
        // SAFETY: `header` is the live current chunk (the loop stopped on it).
        unsafe {
            let ptr_in_chunk = chunk::contains(header, checkpoint.ptr as usize)
                && is_aligned(checkpoint.ptr as usize, MIN_ALIGN_BYTES);
            // A chunk at a reused address with a different length would not contain a stale
            // pointer; rewinding to its start is always safe.
            let ptr = if ptr_in_chunk {
                chunk::data_start(header)
                    .add(checkpoint.ptr as usize - chunk::data_start(header) as usize)
            } else {
                chunk::data_start(header)
            };
            self.ptr.set(ptr);
            self.end.set(chunk::end(header));
            (*header.as_ptr()).filled_bytes = 0;
        }
        // Recounted rather than saved in the checkpoint: a stale checkpoint must not be able
        // to make the figures lie. The walk is over the chunks older than the checkpoint's,
        // a few dozen at most.
        self.retired_used_bytes.set(self.recount_retired_bytes());
    }

    /// Sum of the fill levels of the chunks older than the current one.
    fn recount_retired_bytes(&self) -> usize {
        let mut sum_bytes: usize = 0;
        let mut next = self
            .current
            .get()
            // SAFETY: `current` and its `prev` chain are live chunks.
            .and_then(|c| unsafe { (*c.as_ptr()).prev });
        while let Some(header) = next {
            // SAFETY: as above.
            unsafe {
                sum_bytes += (*header.as_ptr()).filled_bytes;
                next = (*header.as_ptr()).prev;
            }
        }
        sum_bytes
    }

    /// Runs `f` with a [`Scope`](crate::Scope): everything allocated through it is freed when
    /// `f` returns, and the borrow checker makes sure no reference to it escapes.
    ///
    /// ```
    /// let mut arena = heapkit_bump::Arena::new();
    /// let total = arena.scope(|scratch| {
    ///     let squares = scratch.alloc_slice_fill_with(100, |i| i * i);
    ///     squares.iter().sum::<usize>()
    /// });
    /// assert_eq!(total, 328_350);
    /// assert_eq!(arena.used_bytes(), 0);
    /// ```
    pub fn scope<R>(&mut self, f: impl for<'s> FnOnce(&mut crate::Scope<'s, S>) -> R) -> R {
        let checkpoint = self.checkpoint();
        let result = f(&mut crate::Scope::new(self));
        self.rewind(checkpoint);
        result
    }

    /// Whether `block + rounded(size)` ends exactly at the bump pointer: the block is the most
    /// recent one, so it can be freed, grown or shrunk in place.
    #[inline(always)]
    fn is_last(&self, block: NonNull<u8>, size_bytes: usize) -> bool {
        block.as_ptr() as usize + rounded(size_bytes) == self.ptr.get() as usize
    }

    /// Frees a block: the most recent one rolls the bump pointer back; any other is a no-op.
    ///
    /// # Safety
    /// `block` is a live block of this arena of `size_bytes` (as asked or as returned).
    #[inline]
    pub(crate) unsafe fn free_block(&self, block: NonNull<u8>, size_bytes: usize) {
        self.assert_owned(block);
        if self.is_last(block, size_bytes) {
            self.ptr.set(block.as_ptr());
        }
    }

    /// Grows a block; the most recent one grows in place when the chunk has room.
    ///
    /// # Safety
    /// `block` is a live block fitted by `old`, and `new.size() >= old.size() > 0`.
    pub(crate) unsafe fn grow_block(
        &self,
        block: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        self.assert_owned(block);
        let addr = block.as_ptr() as usize;
        if self.is_last(block, old.size())
            && is_aligned(addr, new.align())
            && rounded(new.size()) <= self.end.get() as usize - addr
        {
            self.ptr
                // SAFETY: `block + rounded(new) <= end`, checked just above.
                .set(unsafe { block.as_ptr().add(rounded(new.size())) });
            return Ok(NonNull::slice_from_raw_parts(block, rounded(new.size())));
        }
        let moved = self.try_alloc_layout(new)?;
        // SAFETY: `moved` is a fresh block after every live one, so distinct from `block`;
        // the old block has `old.size()` readable bytes and the new one at least as many.
        unsafe { ptr::copy_nonoverlapping(block.as_ptr(), moved.as_ptr(), old.size()) };
        Ok(NonNull::slice_from_raw_parts(moved, rounded(new.size())))
    }

    /// Shrinks a block in place (the most recent one gives its tail back), or moves it when
    /// the new alignment is stricter than the block's address.
    ///
    /// # Safety
    /// `block` is a live block fitted by `old`, and `0 < new.size() <= old.size()`.
    pub(crate) unsafe fn shrink_block(
        &self,
        block: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        self.assert_owned(block);
        if !is_aligned(block.as_ptr() as usize, new.align()) {
            let moved = self.try_alloc_layout(new)?;
            // SAFETY: distinct blocks (see `grow_block`); both have `new.size()` bytes.
            unsafe { ptr::copy_nonoverlapping(block.as_ptr(), moved.as_ptr(), new.size()) };
            return Ok(NonNull::slice_from_raw_parts(moved, rounded(new.size())));
        }
        if self.is_last(block, old.size()) {
            self.ptr
                // SAFETY: the new end is inside the old block.
                .set(unsafe { block.as_ptr().add(rounded(new.size())) });
        }
        Ok(NonNull::slice_from_raw_parts(block, rounded(new.size())))
    }

    /// Whether `addr` lies in the data area of one of the arena's chunks (walks the list).
    pub fn owns(&self, addr: *const u8) -> bool {
        let mut next = self.current.get();
        while let Some(header) = next {
            // SAFETY: the list holds live chunks.
            unsafe {
                if chunk::contains(header, addr as usize) {
                    return true;
                }
                next = (*header.as_ptr()).prev;
            }
        }
        false
    }

    /// Foreign pointers are a caller bug: caught in debug builds, and with the `checked`
    /// feature in every build (an abort with a message, never a panic).
    #[inline(always)]
    fn assert_owned(&self, block: NonNull<u8>) {
        #[cfg(feature = "checked")]
        if !self.owns(block.as_ptr()) {
            heapkit_core::fatal(
                "heapkit-bump",
                "free/grow/shrink of a pointer the arena does not own",
                block.as_ptr() as usize,
            );
        }
        debug_assert!(self.owns(block.as_ptr()), "block is not in this arena");
        let _ = block;
    }
}

/// Whether a request fits in an unused chunk.
///
/// # Safety
/// `header` is a live chunk.
unsafe fn fits(header: NonNull<ChunkHeader>, size_bytes: usize, align_bytes: usize) -> bool {
    // SAFETY: forwarded from the caller.
    let (start, end) = unsafe {
        (
            chunk::data_start(header) as usize,
            chunk::end(header) as usize,
        )
    };
    match align_up(start, align_bytes) {
        Some(block) => block <= end && rounded(size_bytes) <= end - block,
        None => false,
    }
}

impl<S: ChunkSource> Drop for Arena<S> {
    fn drop(&mut self) {
        self.reset();
        if let Some(kept) = self.current.take() {
            self.chunk_count.set(0);
            // SAFETY: the only chunk left, unlinked, and nothing borrows the arena.
            unsafe { self.release(kept) };
        }
    }
}

impl<S: ChunkSource> core::fmt::Debug for Arena<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Arena")
            .field("used_bytes", &self.used_bytes())
            .field("allocated_bytes", &self.allocated_bytes())
            .field("chunk_count", &self.chunk_count())
            .field("allocation_limit", &self.allocation_limit())
            .finish()
    }
}

impl<S: ChunkSource> Introspect for Arena<S> {
    fn check(&self) -> Result<(), InvariantError> {
        let mut count: usize = 0;
        let mut bytes: usize = 0;
        let mut retired_bytes: usize = 0;
        let mut next = self.current.get();
        while let Some(header) = next {
            count += 1;
            if count > MAX_CHUNKS {
                return Err(InvariantError::new("chunk list longer than MAX_CHUNKS", 0));
            }
            // SAFETY: the list holds live chunks.
            let h = unsafe { &*header.as_ptr() };
            self.check_chunk(header)?;
            bytes += h.len_bytes;
            if Some(header) != self.current.get() {
                retired_bytes += h.filled_bytes;
            }
            if Some(header) == self.spare.get() {
                return Err(InvariantError::new(
                    "spare chunk is also in the list",
                    header.as_ptr() as usize,
                ));
            }
            next = h.prev;
        }
        if let Some(spare) = self.spare.get() {
            self.check_chunk(spare)?;
            // SAFETY: the spare is live.
            bytes += unsafe { (*spare.as_ptr()).len_bytes };
        }
        self.check_current()?;
        let fail = |what| Err(InvariantError::new(what, self as *const Self as usize));
        if count != self.chunk_count.get() {
            return fail("chunk_count differs from the list length");
        }
        if bytes != self.chunk_bytes.get() {
            return fail("chunk_bytes differs from the sum of chunk lengths");
        }
        if retired_bytes != self.retired_used_bytes.get() {
            return fail("retired_used_bytes differs from the retired chunks' fill levels");
        }
        Ok(())
    }

    fn stats(&self) -> Option<Stats> {
        Some(Stats {
            live_bytes: self.used_bytes(),
            mapped_bytes: self.allocated_bytes(),
            ..Stats::default()
        })
    }
}

impl<S: ChunkSource> Arena<S> {
    /// One chunk's header is sane.
    fn check_chunk(&self, header: NonNull<ChunkHeader>) -> Result<(), InvariantError> {
        // SAFETY: callers pass live chunks.
        let h = unsafe { &*header.as_ptr() };
        let addr = header.as_ptr() as usize;
        let fail = |what| Err(InvariantError::new(what, addr));
        if !h.align_bytes.is_power_of_two() || h.align_bytes < CHUNK_ALIGN_BYTES {
            return fail("chunk alignment is not a power of two >= CHUNK_ALIGN_BYTES");
        }
        if !is_aligned(addr, h.align_bytes) {
            return fail("chunk is not aligned as recorded");
        }
        if h.len_bytes <= HEADER_BYTES || h.len_bytes % self.source.granule_bytes() != 0 {
            return fail("chunk length is not a granule multiple larger than the header");
        }
        // SAFETY: live chunk.
        if h.filled_bytes > unsafe { chunk::capacity_bytes(header) } {
            return fail("chunk filled beyond its capacity");
        }
        Ok(())
    }

    /// The bump pointer lies in the current chunk and is aligned.
    fn check_current(&self) -> Result<(), InvariantError> {
        let (ptr, end) = (self.ptr.get(), self.end.get());
        let fail = |what| Err(InvariantError::new(what, ptr as usize));
        match self.current.get() {
            None if ptr.is_null() && end.is_null() => Ok(()),
            None => fail("no chunk but the bump pointer is set"),
            Some(header) => {
                // SAFETY: `current` is live.
                let (start, chunk_end, filled) = unsafe {
                    (
                        chunk::data_start(header),
                        chunk::end(header),
                        (*header.as_ptr()).filled_bytes,
                    )
                };
                if end != chunk_end {
                    return fail("end is not the current chunk's end");
                }
                if ptr < start || ptr > end {
                    return fail("bump pointer outside the current chunk");
                }
                if !is_aligned(ptr as usize, MIN_ALIGN_BYTES) {
                    return fail("bump pointer not MIN_ALIGN_BYTES-aligned");
                }
                if filled != 0 {
                    return fail("current chunk has a stale fill level");
                }
                Ok(())
            }
        }
    }
}
