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
// Concepts of the arena in files of their own; child modules, so they reach its fields.
#[path = "blocks.rs"]
mod blocks;
#[path = "arena_check.rs"]
mod check;
#[path = "rewind.rs"]
mod rewind;
pub use heap_map::{ChunkInfo, ChunkRole};
pub use rewind::Checkpoint;

use crate::cache::DefaultChunks;
use crate::chunk::{self, ChunkHeader, CHUNK_ALIGN_BYTES, HEADER_BYTES};
use crate::source::{ChunkSource, FromAllocator};
use crate::FIRST_CHUNK_BYTES;
use crate::{MAX_ALIGN_SERVED_BYTES, MAX_CHUNKS, MAX_GROWTH_CHUNK_BYTES, MIN_ALIGN_BYTES};
use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};
use heapkit_core::is_aligned;
use heapkit_core::{align_up, dangling_block, AllocError, Allocator};

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
// An arena moves between threads but is never shared: its bump pointer is a plain `Cell`.
static_assertions::assert_impl_all!(Arena: Send);
static_assertions::assert_not_impl_any!(Arena: Sync);

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
