//! `JunkPages`: the page source every target runs over.
//!
//! A fresh `BufferPages::owned` per run would cost a large `malloc` and, under AddressSanitizer,
//! poisoning and unpoisoning its whole shadow: more than the run itself. So the process keeps
//! its buffers (one per size and per concurrent user, in a global table so that LeakSanitizer
//! sees them as reachable), and every run borrows one. Reuse would make runs depend
//! on what earlier runs left behind; filling every run that is mapped, purged or unmapped with
//! junk makes the contents an allocator may see a function of the current input alone.

use core::ptr::NonNull;
use heapkit_core::{AllocError, PageSource};
use heapkit_pages::BufferPages;
use std::sync::Mutex;

/// The byte written into freshly mapped and extended runs.
pub const MAP_JUNK: u8 = 0xA5;
/// The byte written into purged and unmapped runs.
pub const FREE_JUNK: u8 = 0xDB;
/// The page size of every target's source (x86-64's).
pub const PAGE_BYTES: usize = 4096;
/// The largest scratch buffer a target may ask for.
pub const SCRATCH_BYTES_MAX: usize = 256 << 20;

/// A scratch buffer: its length, its address, and whether a `JunkPages` holds it.
struct Scratch {
    len_bytes: usize,
    addr: usize,
    lent: bool,
}

/// Every scratch buffer of the process (a few: one per target size per test thread).
static SCRATCH: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());

/// A page source over a scratch buffer of `len_bytes`, junk-filling as described in the module
/// docs. Gives the buffer back when dropped.
pub struct JunkPages {
    inner: BufferPages<'static>,
    addr: usize,
}

impl JunkPages {
    /// Borrows a free scratch buffer of `len_bytes` (allocating one when none is free).
    ///
    /// # Panics
    /// When `len_bytes` is not a page multiple up to [`SCRATCH_BYTES_MAX`].
    pub fn new(len_bytes: usize) -> JunkPages {
        assert!(len_bytes > 0 && len_bytes <= SCRATCH_BYTES_MAX);
        assert!(len_bytes.is_multiple_of(PAGE_BYTES));
        let mut scratch = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
        let free = scratch
            .iter_mut()
            .find(|s| s.len_bytes == len_bytes && !s.lent);
        let addr = match free {
            Some(free) => {
                free.lent = true;
                free.addr
            }
            None => {
                let buffer: &'static mut [u8] = Vec::leak(vec![0u8; len_bytes]);
                let addr = buffer.as_mut_ptr() as usize;
                scratch.push(Scratch {
                    len_bytes,
                    addr,
                    lent: true,
                });
                addr
            }
        };
        drop(scratch);
        // SAFETY: the buffer was leaked (it lives for the process), and the lent flag set above
        // under the lock guarantees that no other `JunkPages` holds it until this one drops.
        let buffer = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len_bytes) };
        let inner = BufferPages::with_page_size(buffer, PAGE_BYTES)
            .expect("a page-multiple buffer makes a valid BufferPages");
        JunkPages { inner, addr }
    }

    /// The source underneath.
    pub fn inner(&self) -> &BufferPages<'static> {
        &self.inner
    }
}

impl Drop for JunkPages {
    fn drop(&mut self) {
        let mut scratch = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mine) = scratch.iter_mut().find(|s| s.addr == self.addr) {
            mine.lent = false;
        }
    }
}

/// Fills `len_bytes` at `ptr` with `byte`.
///
/// # Safety
/// The range is writable.
unsafe fn junk(ptr: NonNull<u8>, len_bytes: usize, byte: u8) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_bytes(ptr.as_ptr(), byte, len_bytes) }
}

// SAFETY: every call is forwarded to a `BufferPages`, whose runs have the required properties;
// the junk writes stay inside runs the caller owns at that moment.
unsafe impl PageSource for JunkPages {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        let run = self.inner.map(len_bytes, align_bytes)?;
        // SAFETY: the run was just mapped with `len_bytes` bytes.
        unsafe { junk(run, len_bytes, MAP_JUNK) };
        Ok(run)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: the caller gives back a range of a live run that nothing uses any more.
        unsafe {
            junk(ptr, len_bytes, FREE_JUNK);
            self.inner.unmap(ptr, len_bytes);
        }
    }

    unsafe fn purge(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: the caller promises the range is inside a live run and no longer needed;
        // purged contents are unspecified, so junk is a legal outcome.
        unsafe {
            self.inner.purge(ptr, len_bytes);
            junk(ptr, len_bytes, FREE_JUNK);
        }
    }

    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        self.inner.extend(end, extra_bytes)?;
        // SAFETY: the pages `end..end + extra_bytes` now belong to the caller's run.
        unsafe { junk(end, extra_bytes, MAP_JUNK) };
        Ok(())
    }

    fn maps_zeroed(&self) -> bool {
        false
    }

    fn mapped_bytes(&self) -> usize {
        self.inner.mapped_bytes()
    }
}
