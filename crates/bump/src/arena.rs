//! `Arena`: the bump pointer, its chunk list, and everything that moves them.
//!
//! Why upward: an arena's in-place operations (growing the last block, the `Vec` push pattern;
//! shrinking it; freeing it) all happen at the bump pointer, and bumping upward puts the *end*
//! of the last block there, so growing is `ptr = block + new_size` with no copy. Bumping
//! downward (bumpalo) puts the *start* of the last block at the pointer, so growing must move
//! the bytes. With `MIN_ALIGN_BYTES` rounding, upward costs the same instructions on the fast
//! path as downward for types aligned up to a word (see the crate docs for the counts).

// The chunk walk for pictures and tests, in its own file; a child module so it reads the list.
#[path = "heap_map.rs"]
mod heap_map;
// `with_capacity`, in its own file; a child module so it installs the first chunk directly.
#[path = "capacity.rs"]
mod capacity;
pub use heap_map::{ChunkInfo, ChunkRole};

use crate::cache::DefaultChunks;
use crate::chunk::{self, ChunkHeader, CHUNK_ALIGN_BYTES, HEADER_BYTES};
use crate::source::{ChunkSource, FromAllocator};
use crate::FIRST_CHUNK_BYTES;
use crate::{MAX_ALIGN_SERVED_BYTES, MAX_CHUNKS, MAX_GROWTH_CHUNK_BYTES, MIN_ALIGN_BYTES};
use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};
use heapkit_core::{align_up, dangling_block, AllocError, Allocator, Introspect, InvariantError};
use heapkit_core::{is_aligned, Stats};

/// A bump-pointer arena: allocation moves a pointer forward, memory comes back all at once.
///
/// Values placed in the arena are **never dropped** by it: not on [`reset`](Self::reset), not
/// on a [`rewind`](Self::rewind), not when the arena itself is dropped. Use
/// [`ArenaBox`](crate::ArenaBox) for a value whose `Drop` must run.
///
/// `S` is where chunks come from: by default [`DefaultChunks`] (small chunks from the global
/// allocator, large ones from the process-wide [chunk cache](crate::CHUNK_CACHE), so an arena
/// made and dropped per request maps nothing and faults nothing once warm), or any
/// [`PageSource`](heapkit_core::PageSource) (`mmap` itself, a fixed buffer), the global
/// allocator alone ([`GlobalChunks`](crate::GlobalChunks)), or any heapkit allocator wrapped in
/// [`FromAllocator`]. The arena is `Send` when its source is, and never `Sync` (wrap it in
/// [`heapkit_core::Locked`] to share it).
pub struct Arena<S: ChunkSource = DefaultChunks> {
    /// The next free byte of the current chunk (null while there is no chunk). Always
    /// `MIN_ALIGN_BYTES`-aligned.
    ptr: Cell<*mut u8>,
    /// One past the current chunk's last byte (null while there is no chunk).
    end: Cell<*mut u8>,
    /// Bytes of the current chunk from `max(zero_from, ptr)` to `end` are known to be zero
    /// (fresh from a zeroing source and never handed out), so a zeroed allocation there needs
    /// no memset. Raised to the old `ptr` whenever `ptr` moves back (free, shrink, rewind):
    /// the bytes it moves back over are dirty. `end` when nothing is known (a reused chunk).
    zero_from: Cell<*mut u8>,
    /// The newest chunk, the one `ptr` bumps through; older ones hang off its `prev` link.
    current: Cell<Option<NonNull<ChunkHeader>>>,
    /// Chunks held for later chunk requests, largest first, linked through `prev`: the chunks
    /// a reset keeps beyond the new current one, and those a rewind gives up.
    spare: Cell<Option<NonNull<ChunkHeader>>>,
    /// Total length of the spare chunks.
    spare_bytes: Cell<usize>,
    /// Ceiling on the bytes of spare chunks (`usize::MAX`: none); see `set_retain_limit`.
    retain_limit_bytes: Cell<usize>,
    /// Sum of `filled_bytes` over the chunks older than `current`.
    retired_used_bytes: Cell<usize>,
    /// Total length of the chunks held, spares included.
    chunk_bytes: Cell<usize>,
    /// Chunks in the list (spares excluded).
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

impl Default for Arena<DefaultChunks> {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena<DefaultChunks> {
    /// An empty arena over [`DefaultChunks`]. Cheap: nothing is taken until the first
    /// allocation. A dropped arena's small chunks go back to the global allocator and its large
    /// ones to the process-wide [chunk cache](crate::CHUNK_CACHE), pages and all, for the next
    /// arena: an arena per request maps nothing and faults nothing once warm, and what is not
    /// reused goes back to the kernel after the purge delay.
    /// `Arena::with_source(MmapPages::new())` maps and unmaps every chunk instead, and
    /// `Arena::with_source(GLOBAL_CHUNKS)` takes them all from the global allocator.
    pub const fn new() -> Self {
        Self::with_source(DefaultChunks)
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
            zero_from: Cell::new(ptr::null_mut()),
            current: Cell::new(None),
            spare: Cell::new(None),
            spare_bytes: Cell::new(0),
            retain_limit_bytes: Cell::new(usize::MAX),
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

    /// Chunks in use (spare chunks, kept by a reset or a rewind, are not counted).
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

    /// Caps the bytes of *spare* chunks the arena keeps idle for later rounds. By default
    /// (`None`) a [`reset`](Self::reset) keeps every chunk the arena holds, so a loop of rounds
    /// of the same size maps nothing and faults in no page after its first rounds; the price
    /// is that an idle arena holds its peak footprint (bumpalo holds its largest chunk, which
    /// is half to all of that). With a limit, a reset keeps the largest chunk whatever the
    /// limit, then further chunks, largest first, while all it keeps totals at most
    /// `limit_bytes`, and returns the rest to the source; a rewind returns a chunk it frees
    /// when keeping it would bring the spares past the limit.
    ///
    /// ```
    /// let mut arena = heapkit_bump::Arena::new();
    /// for i in 0..100_000u64 {
    ///     arena.alloc(i); // 800 KB in chunks of 4 KiB, 8 KiB, ... 512 KiB
    /// }
    /// arena.reset();
    /// let held_bytes = arena.allocated_bytes();
    /// assert!(held_bytes >= 800_000, "all kept: the next round maps nothing");
    /// arena.set_retain_limit(Some(0));
    /// arena.reset();
    /// assert!(arena.allocated_bytes() < held_bytes, "only the largest chunk is kept");
    /// ```
    pub fn set_retain_limit(&self, limit_bytes: Option<usize>) {
        self.retain_limit_bytes
            .set(limit_bytes.unwrap_or(usize::MAX));
    }

    /// The cap set by [`set_retain_limit`](Self::set_retain_limit).
    pub fn retain_limit(&self) -> Option<usize> {
        match self.retain_limit_bytes.get() {
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
        let (header, zeroed) = self.take_chunk(size_bytes, align_bytes)?;
        self.install(header, zeroed);
        let block = self.bump(size_bytes, align_bytes);
        debug_assert!(block.is_some(), "a fresh chunk is sized for the request");
        block.ok_or(AllocError)
    }

    /// A chunk (not yet in the list) able to hold the request: the largest spare if it fits,
    /// else a new one from the source; and whether its data area is known to be zero. (The
    /// spares are sorted largest first, so when the first does not fit, none does short of
    /// alignment quirks, and a new chunk is right anyway.)
    fn take_chunk(
        &self,
        size_bytes: usize,
        align_bytes: usize,
    ) -> Result<(NonNull<ChunkHeader>, bool), AllocError> {
        let offset_bytes = align_up(HEADER_BYTES, align_bytes).ok_or(AllocError)?;
        let needed_bytes = offset_bytes
            .checked_add(rounded(size_bytes))
            .ok_or(AllocError)?;
        if let Some(spare) = self.spare.get() {
            // SAFETY: the spare is a live chunk we own.
            if unsafe { fits(spare, size_bytes, align_bytes) } {
                self.pop_spare();
                return Ok((spare, false));
            }
        }
        self.new_chunk(needed_bytes, align_bytes.max(CHUNK_ALIGN_BYTES))
    }

    /// Length of the next chunk if nothing forces a larger one: double the current chunk, and
    /// at least the bytes of chunks in use, so that after a reset has handed back its spares
    /// largest first (the current one is then the smallest) growth does not restart from
    /// small chunks.
    fn growth_bytes(&self) -> usize {
        match self.current.get() {
            // SAFETY: `current` is a live chunk.
            Some(header) => unsafe { (*header.as_ptr()).len_bytes }
                .saturating_mul(2)
                .max(self.chunk_bytes.get() - self.spare_bytes.get())
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
    /// source allow it, else the smallest that fits; and whether its data reads as zero.
    fn new_chunk(
        &self,
        needed_bytes: usize,
        chunk_align_bytes: usize,
    ) -> Result<(NonNull<ChunkHeader>, bool), AllocError> {
        let granule_bytes = self.source.granule_bytes();
        let minimal_bytes = align_up(needed_bytes, granule_bytes).ok_or(AllocError)?;
        if minimal_bytes > isize::MAX as usize || self.chunk_count.get() >= MAX_CHUNKS {
            return Err(AllocError);
        }
        let grown_bytes = align_up(self.growth_bytes(), granule_bytes).ok_or(AllocError)?;
        let preferred_bytes = grown_bytes.max(minimal_bytes);
        let mut result = self.map_chunk([preferred_bytes, minimal_bytes], chunk_align_bytes);
        if result.is_err() && self.spare.get().is_some() {
            // Spares too small for this request still count against the allocation limit and
            // hold the source's memory: give them back and try once more.
            self.trim_spares(0);
            if let Some(largest) = self.pop_spare() {
                // SAFETY: a live spare, just unlinked; spares hold no live block.
                unsafe { self.release(largest) };
            }
            result = self.map_chunk([preferred_bytes, minimal_bytes], chunk_align_bytes);
        }
        let (raw, len_bytes, zeroed) = result?;
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
        Ok((header, zeroed))
    }

    /// The first of `lengths_bytes` that the allocation limit and the source allow, mapped,
    /// with its length and whether it reads as zero.
    fn map_chunk(
        &self,
        lengths_bytes: [usize; 2],
        chunk_align_bytes: usize,
    ) -> Result<(NonNull<u8>, usize, bool), AllocError> {
        for len_bytes in lengths_bytes {
            if self.within_limit(len_bytes) {
                let chunk = self
                    .source
                    .alloc_chunk_reporting_zero(len_bytes, chunk_align_bytes);
                if let Ok((raw, zeroed)) = chunk {
                    return Ok((raw, len_bytes, zeroed));
                }
            }
        }
        Err(AllocError)
    }

    /// Makes `header` (a chunk not in the list) the current chunk; the old current one retires
    /// with its fill level recorded. `zeroed`: its data area is known to be all zero.
    fn install(&self, header: NonNull<ChunkHeader>, zeroed: bool) {
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
            self.zero_from.set(if zeroed {
                chunk::data_start(header)
            } else {
                chunk::end(header)
            });
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

    /// Puts a chunk that is in no list into the spare list, which stays sorted largest first.
    /// Cold: resets and rewinds only; the walk is over a few dozen chunks at most.
    ///
    /// # Safety
    /// `header` is a live chunk of this arena, in no list, and nothing in it is used again.
    unsafe fn push_spare(&self, header: NonNull<ChunkHeader>) {
        // SAFETY: live headers (the caller's chunk and the spare list's).
        let len = |h: NonNull<ChunkHeader>| unsafe { (*h.as_ptr()).len_bytes };
        let header_len_bytes = len(header);
        let mut after: Option<NonNull<ChunkHeader>> = None;
        let mut next = self.spare.get();
        let mut walked: usize = 0;
        while let Some(spare) = next {
            if len(spare) < header_len_bytes {
                break;
            }
            walked += 1;
            debug_assert!(walked <= MAX_CHUNKS);
            after = Some(spare);
            // SAFETY: a live spare.
            next = unsafe { (*spare.as_ptr()).prev };
        }
        // SAFETY: `header` is ours and in no list; `after` is a live spare.
        unsafe {
            (*header.as_ptr()).prev = next;
            (*header.as_ptr()).filled_bytes = 0;
            match after {
                Some(spare) => (*spare.as_ptr()).prev = Some(header),
                None => self.spare.set(Some(header)),
            }
        }
        self.spare_bytes
            .set(self.spare_bytes.get() + header_len_bytes);
    }

    /// Unlinks the largest spare chunk.
    fn pop_spare(&self) -> Option<NonNull<ChunkHeader>> {
        let head = self.spare.get()?;
        // SAFETY: the head of the spare list is a live chunk we own.
        unsafe {
            self.spare.set((*head.as_ptr()).prev);
            (*head.as_ptr()).prev = None;
            self.spare_bytes
                .set(self.spare_bytes.get() - (*head.as_ptr()).len_bytes);
        }
        Some(head)
    }

    /// Keeps a chunk a rewind gave up as a spare when the retain limit allows (an arena with
    /// no spare always keeps one), else returns it to the source.
    ///
    /// # Safety
    /// As for [`push_spare`](Self::push_spare).
    unsafe fn retire_to_spare(&self, header: NonNull<ChunkHeader>) {
        // SAFETY: a live header.
        let len_bytes = unsafe { (*header.as_ptr()).len_bytes };
        let within_limit =
            self.spare_bytes.get().saturating_add(len_bytes) <= self.retain_limit_bytes.get();
        // SAFETY: forwarded from the caller.
        unsafe {
            if self.spare.get().is_none() || within_limit {
                self.push_spare(header);
            } else {
                self.release(header);
            }
        }
    }

    /// Walking the spares from the largest down, keeps each one that still fits in
    /// `limit_bytes` (counting those kept before it) and returns the others to the source; the
    /// largest always stays.
    fn trim_spares(&self, limit_bytes: usize) {
        let Some(largest) = self.spare.get() else {
            return;
        };
        // SAFETY: live spares; each released one is unlinked first.
        unsafe {
            let mut kept_bytes = (*largest.as_ptr()).len_bytes;
            let mut last_kept = largest;
            let mut next = (*largest.as_ptr()).prev;
            let mut walked: usize = 0;
            while let Some(spare) = next {
                walked += 1;
                debug_assert!(walked <= MAX_CHUNKS);
                next = (*spare.as_ptr()).prev;
                let len_bytes = (*spare.as_ptr()).len_bytes;
                if kept_bytes.saturating_add(len_bytes) <= limit_bytes {
                    kept_bytes += len_bytes;
                    (*last_kept.as_ptr()).prev = Some(spare);
                    last_kept = spare;
                } else {
                    (*last_kept.as_ptr()).prev = next;
                    self.spare_bytes.set(self.spare_bytes.get() - len_bytes);
                    self.release(spare);
                }
            }
        }
    }

    /// Frees every allocation. The chunks stay (up to the
    /// [retain limit](Self::set_retain_limit)): the largest becomes the current chunk and the
    /// others wait, largest first, to serve the next round's chunk requests, so a loop of
    /// rounds of the same size neither maps nor faults once warm.
    ///
    /// Values in the arena are **not dropped**. `&mut self` proves no reference into the arena
    /// is alive.
    pub fn reset(&mut self) {
        self.drain_chunks(|arena, header| {
            // SAFETY: a live chunk, unlinked from the list; `&mut self` proves nothing in it
            // is used again.
            unsafe { arena.push_spare(header) }
        });
        self.clear_bump_pointer();
        self.trim_spares(self.retain_limit_bytes.get());
        if let Some(largest) = self.pop_spare() {
            self.install(largest, false);
        }
    }

    /// Unlinks every chunk of the list, newest first, and hands each to `take` (which moves or
    /// frees it: its link has been read already). A bounded walk: at most `MAX_CHUNKS`.
    fn drain_chunks(&mut self, mut take: impl FnMut(&mut Self, NonNull<ChunkHeader>)) {
        let mut next = self.current.take();
        let mut walked: usize = 0;
        while let Some(header) = next {
            walked += 1;
            debug_assert!(walked <= MAX_CHUNKS);
            // SAFETY: `header` is a live chunk of the list, which only `&mut self` reaches.
            next = unsafe { (*header.as_ptr()).prev };
            take(self, header);
        }
        self.chunk_count.set(0);
    }

    /// Returns every chunk, spares included, to the source.
    fn release_all(&mut self) {
        self.drain_chunks(|arena, header| {
            // SAFETY: a live chunk, unlinked from the list; `&mut self` proves nothing in it
            // is used again.
            unsafe { arena.release(header) }
        });
        while let Some(spare) = self.pop_spare() {
            // SAFETY: a live spare, just unlinked.
            unsafe { self.release(spare) };
        }
        self.clear_bump_pointer();
        debug_assert_eq!(self.chunk_bytes.get(), 0);
    }

    /// The current allocation state, to [`rewind`](Self::rewind) to later.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            chunk: self.current.get(),
            ptr: self.ptr.get(),
        }
    }

    /// Frees everything allocated after `checkpoint` (values are not dropped). Chunks taken
    /// since become spares for the next chunk requests (up to the
    /// [retain limit](Self::set_retain_limit)), so a scope in a loop maps nothing once warm.
    ///
    /// Any checkpoint is harmless: one from another arena, or one that a [`reset`](Self::reset)
    /// made stale, leaves the arena empty (every chunk released or kept as a spare).
    pub fn rewind(&mut self, checkpoint: Checkpoint) {
        // SAFETY: `&mut self` proves that no reference into the arena is alive.
        unsafe { self.rewind_unchecked(checkpoint) }
    }

    /// [`rewind`](Self::rewind) through a shared reference.
    ///
    /// # Safety
    /// No block allocated after `checkpoint` is used afterwards.
    pub(crate) unsafe fn rewind_unchecked(&self, checkpoint: Checkpoint) {
        let entry_chunk = self.current.get();
        let mut walked: usize = 0;
        while self.current.get() != checkpoint.chunk {
            let Some(header) = self.current.get() else {
                // The checkpoint's chunk is not ours (stale or foreign): we are empty now.
                self.clear_bump_pointer();
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
            self.clear_bump_pointer();
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
            if Some(header) == entry_chunk {
                // Still the chunk we started in: what lies above the old `ptr` stays known.
                self.move_ptr_back(ptr);
            } else {
                // A retired chunk again: where it was filled to is not worth tracking.
                self.ptr.set(ptr);
                self.zero_from.set(chunk::end(header));
            }
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

    /// Moves the bump pointer back to `new_ptr` (in the current chunk); the bytes it moves
    /// back over were handed out, so they no longer count as zero. (A rewind to a checkpoint
    /// above a freed last block moves it forward instead, over bytes handed out before: those
    /// end up below `ptr`, where nothing is claimed, so the rule holds either way.)
    #[inline(always)]
    fn move_ptr_back(&self, new_ptr: *mut u8) {
        let old_ptr = self.ptr.get();
        if self.zero_from.get() < old_ptr {
            self.zero_from.set(old_ptr);
        }
        self.ptr.set(new_ptr);
    }

    /// No current chunk: the state of an empty arena.
    fn clear_bump_pointer(&self) {
        self.ptr.set(ptr::null_mut());
        self.end.set(ptr::null_mut());
        self.zero_from.set(ptr::null_mut());
        self.retired_used_bytes.set(0);
    }

    /// Like [`try_alloc_layout`](Self::try_alloc_layout), with the block's bytes zero (all of
    /// `layout.size()` rounded up to [`MIN_ALIGN_BYTES`](crate::MIN_ALIGN_BYTES)). Only the
    /// part below `zero_from` is cleared: memory fresh from a zeroing source (`mmap`) is not
    /// written, so its pages are not touched until the caller touches them; memory handed out
    /// before (a reused chunk, or bytes a free, shrink or rewind gave back) is cleared.
    #[inline]
    pub fn try_alloc_layout_zeroed(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let block = self.try_alloc_layout(layout)?;
        if layout.size() == 0 {
            return Ok(block);
        }
        // The block is in the current chunk (a fresh chunk was installed if it did not fit),
        // at or above the old `ptr`; bytes from `zero_from` on are zero. The whole rounded
        // length is cleared: the `Allocator` impl reports it as usable.
        let dirty_bytes = (self.zero_from.get() as usize)
            .saturating_sub(block.as_ptr() as usize)
            .min(rounded(layout.size()));
        // SAFETY: the bump pointer moved past `rounded(layout.size())` bytes of the block, and
        // `dirty_bytes` is at most that.
        unsafe { ptr::write_bytes(block.as_ptr(), 0, dirty_bytes) };
        Ok(block)
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
            self.move_ptr_back(block.as_ptr());
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
            // SAFETY: the new end is inside the old block.
            self.move_ptr_back(unsafe { block.as_ptr().add(rounded(new.size())) });
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
        self.release_all();
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
            next = h.prev;
        }
        // A chunk both in the list and among the spares would be counted twice, so the byte
        // totals below catch it.
        let spare_bytes = self.check_spares()?;
        self.check_current()?;
        let fail = |what| Err(InvariantError::new(what, self as *const Self as usize));
        if count != self.chunk_count.get() {
            return fail("chunk_count differs from the list length");
        }
        if spare_bytes != self.spare_bytes.get() {
            return fail("spare_bytes differs from the sum of spare chunk lengths");
        }
        if bytes + spare_bytes != self.chunk_bytes.get() {
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
    /// The spare list is sorted largest first and holds sane chunks; returns their total.
    fn check_spares(&self) -> Result<usize, InvariantError> {
        let mut count: usize = 0;
        let mut bytes: usize = 0;
        let mut previous_len_bytes = usize::MAX;
        let mut next = self.spare.get();
        while let Some(spare) = next {
            count += 1;
            let addr = spare.as_ptr() as usize;
            if count > MAX_CHUNKS {
                return Err(InvariantError::new(
                    "spare list longer than MAX_CHUNKS",
                    addr,
                ));
            }
            self.check_chunk(spare)?;
            // SAFETY: the spare list holds live chunks.
            let h = unsafe { &*spare.as_ptr() };
            if h.len_bytes > previous_len_bytes {
                return Err(InvariantError::new(
                    "spare list not sorted largest first",
                    addr,
                ));
            }
            if h.filled_bytes != 0 {
                return Err(InvariantError::new("spare chunk has a fill level", addr));
            }
            previous_len_bytes = h.len_bytes;
            bytes += h.len_bytes;
            next = h.prev;
        }
        Ok(bytes)
    }

    /// `zero_from` lies in the current chunk, and the first bytes it claims are zero (a
    /// bounded sample: the whole claim can be 64 MiB).
    fn check_zero_from(&self, start: *mut u8, end: *mut u8) -> Result<(), InvariantError> {
        const SAMPLE_BYTES: usize = 256;
        let zero_from = self.zero_from.get();
        if zero_from < start || zero_from > end {
            return Err(InvariantError::new(
                "zero_from outside the current chunk",
                zero_from as usize,
            ));
        }
        let claimed = zero_from.max(self.ptr.get());
        let sample_bytes = (end as usize - claimed as usize).min(SAMPLE_BYTES);
        // SAFETY: `[claimed, claimed + sample_bytes)` lies in the current chunk's data area,
        // which is readable, and holds no block (it is at or above `ptr`).
        let sample = unsafe { core::slice::from_raw_parts(claimed, sample_bytes) };
        match sample.iter().position(|&byte| byte != 0) {
            Some(offset) => Err(InvariantError::new(
                "a byte above zero_from is not zero",
                claimed as usize + offset,
            )),
            None => Ok(()),
        }
    }

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
            None if ptr.is_null() && end.is_null() && self.zero_from.get().is_null() => Ok(()),
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
                self.check_zero_from(start, end)
            }
        }
    }
}
