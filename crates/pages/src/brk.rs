//! `BrkPages`: one contiguous heap at the program break.
//!
//! # Why glibc's main arena uses `brk`
//! The break is the end of the process's data segment. Moving it with `sbrk` grows the heap
//! *contiguously*: the new bytes start exactly where the old heap ended. A boundary-tag allocator
//! like ptmalloc2 exploits that: the top chunk simply gets bigger, with no new headers, no gaps
//! between mappings, and one system call per growth. Shrinking is just as cheap, but only from
//! the top: memory below a live block at the top can never be returned, which is the classic
//! "my RSS never goes down" complaint. `mmap` has neither property: each mapping lands wherever
//! the kernel likes, but any one of them can be returned independently.
//!
//! # One per process
//! There is one break per process and `sbrk` is not thread-safe, so the first `BrkPages` that
//! maps memory *claims* the break for the whole process (a process-wide flag) and every other
//! instance is refused with `AllocError` until the owner is dropped. Calls on the owner are
//! serialised by a process-wide lock. The C library's own `malloc` may also move the break;
//! glibc copes with foreign `sbrk` calls, and this source never shrinks the break unless the
//! break is still exactly where it left it. Use it in programs where heapkit owns the heap, or
//! keep the other user of `sbrk` on one thread.

use crate::args::{check_extend_args, check_map_args};
use crate::mmap::os_page_size;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use heapkit_core::{AllocError, PageSource, SpinLock};

/// The process-wide claim on the break.
static BREAK_CLAIMED: AtomicBool = AtomicBool::new(false);
/// Serialises every `sbrk` this module makes.
static BREAK_LOCK: SpinLock = SpinLock::new();

/// Page runs from the program break (`sbrk`). Runs are contiguous, so [`PageSource::extend`]
/// works whenever nobody else moved the break; `unmap` gives memory back only from the top.
#[derive(Debug)]
pub struct BrkPages {
    owner: AtomicBool,
    /// Where this source last left the break (0 before its first growth).
    top_addr: AtomicUsize,
    mapped_bytes: AtomicUsize,
}

impl Default for BrkPages {
    fn default() -> Self {
        Self::new()
    }
}

struct BreakGuard;

impl BreakGuard {
    fn take() -> Self {
        BREAK_LOCK.lock();
        BreakGuard
    }
}

impl Drop for BreakGuard {
    fn drop(&mut self) {
        // SAFETY: a guard exists only while this thread holds the lock.
        unsafe { BREAK_LOCK.unlock() }
    }
}

fn current_break() -> usize {
    // SAFETY: sbrk(0) only reads the break.
    unsafe { libc::sbrk(0) as usize }
}

/// Moves the break by `delta` bytes; returns the old break (a pointer with the provenance the
/// kernel's memory has for this process).
fn move_break(delta: isize) -> Result<*mut u8, AllocError> {
    // SAFETY: moving the break up maps fresh memory nobody uses; callers only move it down over
    // memory this source owns and no longer uses.
    let old = unsafe { libc::sbrk(delta as libc::intptr_t) };
    if old as isize == -1 {
        return Err(AllocError);
    }
    Ok(old.cast::<u8>())
}

impl BrkPages {
    /// A source that has not claimed the break yet (it does on its first `map`).
    pub const fn new() -> Self {
        BrkPages {
            owner: AtomicBool::new(false),
            top_addr: AtomicUsize::new(0),
            mapped_bytes: AtomicUsize::new(0),
        }
    }

    /// Whether this instance owns the process's break.
    pub fn owns_break(&self) -> bool {
        self.owner.load(Ordering::Relaxed)
    }

    fn claim(&self) -> Result<(), AllocError> {
        if self.owns_break() {
            return Ok(());
        }
        if BREAK_CLAIMED
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(AllocError);
        }
        self.owner.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The address where this source left the break, if it still is the break.
    fn our_break_still_top(&self) -> Option<usize> {
        let top = self.top_addr.load(Ordering::Relaxed);
        (top != 0 && top == current_break()).then_some(top)
    }
}

impl Drop for BrkPages {
    fn drop(&mut self) {
        if self.owns_break() {
            BREAK_CLAIMED.store(false, Ordering::Release);
        }
    }
}

// SAFETY: every run lies between an old and a new break this source set while holding the lock,
// so runs are fresh, disjoint memory; they stay valid until the break is moved below them, which
// only `unmap` does, and only over the run it is given.
unsafe impl PageSource for BrkPages {
    fn page_size(&self) -> usize {
        os_page_size()
    }

    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        let page_bytes = os_page_size();
        let align_bytes = check_map_args(page_bytes, len_bytes, align_bytes)?;
        let _guard = BreakGuard::take();
        self.claim()?;
        let old_break = current_break();
        let start = old_break
            .checked_next_multiple_of(align_bytes)
            .ok_or(AllocError)?;
        let grow_bytes = (start - old_break)
            .checked_add(len_bytes)
            .ok_or(AllocError)?;
        if grow_bytes > isize::MAX as usize {
            return Err(AllocError);
        }
        let got = move_break(grow_bytes as isize)?;
        if got as usize != old_break {
            // Another user moved the break between our two calls (only possible if it bypasses
            // our lock). The bytes we got are still ours, but the padding was computed for the
            // wrong start: leave them in the break and refuse rather than hand out a misaligned run.
            return Err(AllocError);
        }
        self.top_addr
            .store(old_break + grow_bytes, Ordering::Relaxed);
        self.mapped_bytes.fetch_add(grow_bytes, Ordering::Relaxed);
        // SAFETY: `start` lies inside the range sbrk just returned, which starts at a non-null
        // address, so the offset stays in bounds and the result is non-null.
        Ok(unsafe { NonNull::new_unchecked(got.add(start - old_break)) })
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        let _guard = BreakGuard::take();
        let end = ptr.as_ptr() as usize + len_bytes;
        if self.our_break_still_top() == Some(end) && move_break(-(len_bytes as isize)).is_ok() {
            self.top_addr
                .store(ptr.as_ptr() as usize, Ordering::Relaxed);
            self.mapped_bytes.fetch_sub(len_bytes, Ordering::Relaxed);
        } else {
            // Not at the top: the break cannot shrink past live memory, so only the physical
            // pages go back. The addresses stay in the break (and in `mapped_bytes`).
            // SAFETY: the caller gives us a page-aligned range it no longer uses.
            unsafe { self.purge(ptr, len_bytes) };
        }
    }

    unsafe fn purge(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: the caller promises a page-aligned range of a live run whose contents are no
        // longer needed; MADV_DONTNEED on brk memory drops its pages and later reads see zero.
        unsafe { libc::madvise(ptr.as_ptr().cast(), len_bytes, libc::MADV_DONTNEED) };
    }

    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        check_extend_args(os_page_size(), end.as_ptr() as usize, extra_bytes)?;
        if extra_bytes > isize::MAX as usize {
            return Err(AllocError);
        }
        let _guard = BreakGuard::take();
        if self.our_break_still_top() != Some(end.as_ptr() as usize) {
            return Err(AllocError);
        }
        move_break(extra_bytes as isize)?;
        self.top_addr
            .store(end.as_ptr() as usize + extra_bytes, Ordering::Relaxed);
        self.mapped_bytes.fetch_add(extra_bytes, Ordering::Relaxed);
        Ok(())
    }

    fn maps_zeroed(&self) -> bool {
        // Linux hands out zero pages when the break grows, and frees them when it shrinks.
        true
    }

    fn mapped_bytes(&self) -> usize {
        self.mapped_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    // One test function, because the break is a process-wide resource.
    #[test]
    fn brk_grows_contiguously_shrinks_from_the_top_and_is_claimed_once() {
        let pages = BrkPages::new();
        let page = os_page_size();
        let run = pages.map(4 * page, 64 * 1024).unwrap();
        assert_eq!(run.as_ptr() as usize % (64 * 1024), 0);
        assert!(pages.owns_break());

        let other = BrkPages::new();
        assert!(
            other.map(page, page).is_err(),
            "a second source must not take the break"
        );

        // SAFETY: the run is ours.
        unsafe { run.as_ptr().write_bytes(0x5A, 4 * page) };
        // SAFETY: the end of a live run.
        let end = unsafe { NonNull::new_unchecked(run.as_ptr().add(4 * page)) };
        pages.extend(end, 2 * page).unwrap();
        // SAFETY: the run now spans 6 pages.
        unsafe { run.as_ptr().add(5 * page).write(1) };
        assert!(pages.extend(run, page).is_err(), "extend only at the top");

        let before = pages.mapped_bytes();
        // SAFETY: the last two pages are ours and unused.
        unsafe { pages.unmap(NonNull::new_unchecked(run.as_ptr().add(4 * page)), 2 * page) };
        assert_eq!(pages.mapped_bytes(), before - 2 * page);
        assert_eq!(current_break(), run.as_ptr() as usize + 4 * page);
        drop(pages);
        assert!(
            other.map(page, page).is_ok(),
            "the break is free after the owner drops"
        );
    }
}
