//! A small `BatchAllocator` for testing the cache without heapkit-slab: power-of-two classes
//! from 16 B to 4 KiB, carved from 64 KiB chunks of `std::alloc::System` memory, one spin lock
//! per class. A chunk's first 64 bytes say what it holds, so `class_of_block` is a mask and a
//! load (the shape of a real slab). Large blocks get a chunk-aligned region of their own.
//! Counters shared through an `Arc` let a test see what came back after the cache is dropped.

#![allow(dead_code)]

use heapkit_core::{
    AllocError, Allocator, BatchAllocator, Introspect, InvariantError, SpinLock, Stats,
    UnsizedAllocator,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const CHUNK_BYTES: usize = 64 * 1024;
const HEADER_BYTES: usize = 64;
pub const CLASS_COUNT: usize = 9;
const SMALLEST_BYTES: usize = 16;
const LARGE: usize = usize::MAX;

#[repr(C)]
struct ChunkHeader {
    /// The class, or LARGE.
    tag: usize,
    /// The next chunk of the same class (for Drop); null in a large region.
    next: *mut u8,
    /// A large region's total size; 0 in a class chunk.
    len: usize,
}

struct ClassState {
    lock: SpinLock,
    free: UnsafeCell<*mut u8>,
    chunks: UnsafeCell<*mut u8>,
}

#[derive(Default, Debug)]
pub struct Counters {
    /// Blocks handed out (small and large) and not yet returned — cached ones included.
    pub live_blocks: AtomicUsize,
    pub batch_calls: AtomicUsize,
    pub mapped_bytes: AtomicUsize,
}

pub struct Pow2 {
    classes: [ClassState; CLASS_COUNT],
    pub counters: Arc<Counters>,
}

// SAFETY: every class's lists are touched only with its lock held.
// SAFETY: every class's lists are touched only with its lock held; the counters are atomic.
unsafe impl Sync for Pow2 {}
// SAFETY: the raw pointers are owned by the fixture, not tied to a thread.
unsafe impl Send for Pow2 {}

impl Default for Pow2 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pow2 {
    pub fn new() -> Self {
        Pow2 {
            classes: std::array::from_fn(|_| ClassState {
                lock: SpinLock::new(),
                free: UnsafeCell::new(ptr::null_mut()),
                chunks: UnsafeCell::new(ptr::null_mut()),
            }),
            counters: Arc::new(Counters::default()),
        }
    }

    fn chunk_of(ptr: *mut u8) -> *mut ChunkHeader {
        ptr.map_addr(|addr| addr & !(CHUNK_BYTES - 1)).cast()
    }

    /// Carves a fresh chunk for `class` onto its free list. Lock held by the caller.
    unsafe fn grow(&self, class: usize) -> bool {
        let size = self.class_size(class);
        // SAFETY: (test fixture) a non-zero, valid layout.
        let Some(chunk) = NonNull::new(unsafe {
            System.alloc(Layout::from_size_align(CHUNK_BYTES, CHUNK_BYTES).unwrap())
        }) else {
            return false;
        };
        self.counters
            .mapped_bytes
            .fetch_add(CHUNK_BYTES, Ordering::Relaxed);
        let state = &self.classes[class];
        let chunk = chunk.as_ptr();
        // SAFETY: the chunk is fresh, CHUNK_BYTES long and aligned; the class lock is held.
        unsafe {
            chunk.cast::<ChunkHeader>().write(ChunkHeader {
                tag: class,
                next: *state.chunks.get(),
                len: 0,
            });
            *state.chunks.get() = chunk;
            let mut offset = HEADER_BYTES.max(size);
            while offset + size <= CHUNK_BYTES {
                let block = chunk.add(offset);
                block.cast::<*mut u8>().write(*state.free.get());
                *state.free.get() = block;
                offset += size;
            }
        }
        true
    }

    fn large_offset(layout: Layout) -> usize {
        HEADER_BYTES.max(layout.align())
    }
}

impl Drop for Pow2 {
    fn drop(&mut self) {
        for state in &self.classes {
            // SAFETY: `&mut self`: no other user; the list links chunks this fixture allocated.
            let mut chunk = unsafe { *state.chunks.get() };
            while !chunk.is_null() {
                // SAFETY: a chunk of this fixture; its header was written by `grow`.
                let next = unsafe { (*chunk.cast::<ChunkHeader>()).next };
                // SAFETY: allocated by `grow` with this layout; nothing uses it any more.
                unsafe {
                    System.dealloc(
                        chunk,
                        Layout::from_size_align(CHUNK_BYTES, CHUNK_BYTES).unwrap(),
                    )
                };
                chunk = next;
            }
        }
    }
}

// SAFETY: blocks come from System allocations this fixture owns, are disjoint and aligned
// to the class size (or the layout, for large ones).
unsafe impl Allocator for Pow2 {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if let Some(class) = self.class_of(layout) {
            let mut one = [ptr::null_mut()];
            if self.allocate_batch(class, &mut one) == 0 {
                return Err(AllocError);
            }
            return Ok(NonNull::slice_from_raw_parts(
                NonNull::new(one[0]).unwrap(),
                self.class_size(class),
            ));
        }
        let offset = Self::large_offset(layout);
        if offset >= CHUNK_BYTES {
            return Err(AllocError);
        }
        let total = layout.size().checked_add(offset).ok_or(AllocError)?;
        let region_layout = Layout::from_size_align(total, CHUNK_BYTES).map_err(|_| AllocError)?;
        // SAFETY: a valid, non-zero layout.
        let region = NonNull::new(unsafe { System.alloc(region_layout) }).ok_or(AllocError)?;
        // SAFETY: the region is fresh and at least HEADER_BYTES long.
        unsafe {
            region.as_ptr().cast::<ChunkHeader>().write(ChunkHeader {
                tag: LARGE,
                next: ptr::null_mut(),
                len: total,
            })
        };
        self.counters.live_blocks.fetch_add(1, Ordering::Relaxed);
        self.counters
            .mapped_bytes
            .fetch_add(total, Ordering::Relaxed);
        // SAFETY: `offset < total`, inside the region.
        let block = unsafe { NonNull::new_unchecked(region.as_ptr().add(offset)) };
        Ok(NonNull::slice_from_raw_parts(block, layout.size()))
    }

    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        match self.class_of(layout) {
            // SAFETY: forwarded from the caller: a live block of that class.
            Some(class) => unsafe { self.deallocate_batch(class, &[ptr.as_ptr()]) },
            // SAFETY: forwarded from the caller: a live large block.
            None => unsafe { self.deallocate_unsized(ptr) },
        }
    }
}

// SAFETY: a chunk's header says what it holds, so sizes and frees are exact.
unsafe impl UnsizedAllocator for Pow2 {
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize {
        let header = Self::chunk_of(ptr.as_ptr());
        // SAFETY: a live block lies in a chunk or region of this fixture, whose header is valid.
        let (tag, len) = unsafe { ((*header).tag, (*header).len) };
        if tag == LARGE {
            len - (ptr.as_ptr() as usize - header as usize)
        } else {
            self.class_size(tag)
        }
    }

    unsafe fn deallocate_unsized(&self, ptr: NonNull<u8>) {
        let header = Self::chunk_of(ptr.as_ptr());
        // SAFETY: as in `usable_size`.
        let (tag, len) = unsafe { ((*header).tag, (*header).len) };
        if tag == LARGE {
            self.counters.live_blocks.fetch_sub(1, Ordering::Relaxed);
            self.counters.mapped_bytes.fetch_sub(len, Ordering::Relaxed);
            // SAFETY: the region was allocated with this layout; the block is given up.
            unsafe {
                System.dealloc(
                    header.cast(),
                    Layout::from_size_align(len, CHUNK_BYTES).unwrap(),
                )
            };
        } else {
            // SAFETY: forwarded: a live small block of class `tag`.
            unsafe { self.deallocate_batch(tag, &[ptr.as_ptr()]) };
        }
    }
}

// SAFETY: batches use the same per-class lists as single blocks; class blocks are
// `16 << class` bytes, aligned to their size.
unsafe impl BatchAllocator for Pow2 {
    fn class_count(&self) -> usize {
        CLASS_COUNT
    }

    fn class_of(&self, layout: Layout) -> Option<usize> {
        let need = layout.size().max(layout.align()).max(SMALLEST_BYTES);
        let class = need.next_power_of_two().trailing_zeros() as usize
            - SMALLEST_BYTES.trailing_zeros() as usize;
        (class < CLASS_COUNT).then_some(class)
    }

    fn class_size(&self, class: usize) -> usize {
        SMALLEST_BYTES << class
    }

    unsafe fn class_of_block(&self, ptr: NonNull<u8>) -> Option<usize> {
        // SAFETY: a live block lies in a chunk or region of this fixture, whose header is valid.
        let tag = unsafe { (*Self::chunk_of(ptr.as_ptr())).tag };
        (tag != LARGE).then_some(tag)
    }

    fn allocate_batch(&self, class: usize, out: &mut [*mut u8]) -> usize {
        self.counters.batch_calls.fetch_add(1, Ordering::Relaxed);
        let state = &self.classes[class];
        state.lock.lock();
        let mut n = 0;
        // SAFETY: the class lock is held; listed blocks are free blocks of the class.
        unsafe {
            while n < out.len() {
                let head = *state.free.get();
                if head.is_null() {
                    if !self.grow(class) {
                        break;
                    }
                    continue;
                }
                *state.free.get() = head.cast::<*mut u8>().read();
                out[n] = head;
                n += 1;
            }
            state.lock.unlock();
        }
        self.counters.live_blocks.fetch_add(n, Ordering::Relaxed);
        n
    }

    unsafe fn deallocate_batch(&self, class: usize, blocks: &[*mut u8]) {
        self.counters.batch_calls.fetch_add(1, Ordering::Relaxed);
        let state = &self.classes[class];
        state.lock.lock();
        // SAFETY: the class lock is held; the caller gives up live blocks of the class.
        unsafe {
            for &block in blocks {
                assert_eq!(
                    (*Self::chunk_of(block)).tag,
                    class,
                    "block {block:p} returned to the wrong class"
                );
                block.cast::<*mut u8>().write(*state.free.get());
                *state.free.get() = block;
            }
            state.lock.unlock();
        }
        self.counters
            .live_blocks
            .fetch_sub(blocks.len(), Ordering::Relaxed);
    }
}

impl Introspect for Pow2 {
    fn check(&self) -> Result<(), InvariantError> {
        Ok(())
    }

    fn stats(&self) -> Option<Stats> {
        Some(Stats {
            live_blocks: self.counters.live_blocks.load(Ordering::Relaxed),
            mapped_bytes: self.counters.mapped_bytes.load(Ordering::Relaxed),
            ..Stats::default()
        })
    }
}
