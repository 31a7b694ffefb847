//! Large alignments: blocks aligned to 4 MiB, 64 MiB and 1 GiB (a `Box` of a
//! `#[repr(align(4194304))]` type, a huge page, a GPU or DMA buffer), allocated, written, grown,
//! shrunk, zeroed and freed, with the allocator's `check()` after every step.
//!
//! 1 GiB alignment costs the allocator about 1 GiB of address space for a moment (a mapping is
//! over-sized to reach the boundary, then trimmed); it touches only the pages the test writes.

use crate::pattern::{fill_slice, first_mismatch_in};
use crate::Suite;
use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{Allocator, Introspect};
use std::format;
use std::string::String;

/// The alignments [`Suite::run_large_alignments`] asks for.
pub const LARGE_ALIGNMENTS_BYTES: [usize; 3] = [4 << 20, 64 << 20, 1 << 30];

/// Sizes asked at each alignment: a small object, and one past a chunk (a huge block).
const SIZES_BYTES: [usize; 2] = [64, (3 << 20) + 123];

pub(crate) fn run<A: Allocator + Introspect>(suite: &Suite, a: &A) {
    for align in LARGE_ALIGNMENTS_BYTES {
        for size in SIZES_BYTES {
            if let Err(what) = round_trip(a, size, align) {
                panic!("{}: {size} B aligned to {align} B: {what}", suite.name);
            }
        }
        if let Err(what) = zeroed(a, align) {
            panic!("{}: zeroed, aligned to {align} B: {what}", suite.name);
        }
    }
    if suite.live_accounting {
        if let Some(stats) = a.stats() {
            assert!(
                stats.live_bytes == 0 && stats.live_blocks == 0,
                "{}: everything was freed but stats say live: {stats}",
                suite.name
            );
        }
    }
}

fn checked<A: Introspect>(a: &A, step: &str) -> Result<(), String> {
    a.check().map_err(|e| format!("check() after {step}: {e}"))
}

/// The block must be aligned and at least `layout.size()` long.
fn accept(block: NonNull<[u8]>, layout: Layout, step: &str) -> Result<NonNull<u8>, String> {
    let ptr = block.cast::<u8>();
    if ptr.as_ptr() as usize % layout.align() != 0 {
        return Err(format!("{step} gave {ptr:p}, not aligned"));
    }
    if block.len() < layout.size() {
        return Err(format!("{step} gave {} B", block.len()));
    }
    Ok(ptr)
}

/// The first `len` bytes of `ptr` must still hold the pattern of `seed`.
///
/// # Safety
/// `ptr` is a live block of at least `len` bytes.
unsafe fn verify(ptr: NonNull<u8>, len: usize, seed: u8, step: &str) -> Result<(), String> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) };
    match first_mismatch_in(bytes, seed) {
        None => Ok(()),
        Some(at) => Err(format!("{step} lost byte {at}")),
    }
}

fn round_trip<A: Allocator + Introspect>(a: &A, size: usize, align: usize) -> Result<(), String> {
    let layout = Layout::from_size_align(size, align).map_err(|e| format!("{e}"))?;
    let block = a
        .allocate(layout)
        .map_err(|_| String::from("allocate refused"))?;
    let ptr = accept(block, layout, "allocate")?;
    // SAFETY: a fresh block of at least `size` bytes.
    let bytes = unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), size) };
    fill_slice(bytes, 7, 0);
    checked(a, "allocate")?;
    let bigger = Layout::from_size_align(2 * size, align).map_err(|e| format!("{e}"))?;
    // SAFETY: `ptr` is live with `layout`; `bigger` is larger with the same alignment.
    let grown = unsafe { a.grow(ptr, layout, bigger) }.map_err(|_| String::from("grow refused"))?;
    let ptr = accept(grown, bigger, "grow")?;
    // SAFETY: the grown block keeps the first `size` bytes.
    unsafe { verify(ptr, size, 7, "grow")? };
    checked(a, "grow")?;
    let smaller = Layout::from_size_align(size / 2, align).map_err(|e| format!("{e}"))?;
    // SAFETY: `ptr` is live with `bigger`; `smaller` is smaller with the same alignment.
    let shrunk = unsafe { a.shrink(ptr, bigger, smaller) };
    let shrunk = shrunk.map_err(|_| String::from("shrink refused"))?;
    let ptr = accept(shrunk, smaller, "shrink")?;
    // SAFETY: the shrunk block keeps the first `size / 2` bytes.
    unsafe { verify(ptr, size / 2, 7, "shrink")? };
    checked(a, "shrink")?;
    // SAFETY: live with `smaller`, freed once.
    unsafe { a.deallocate(ptr, smaller) };
    checked(a, "deallocate")
}

fn zeroed<A: Allocator + Introspect>(a: &A, align: usize) -> Result<(), String> {
    let layout = Layout::from_size_align(8192, align).map_err(|e| format!("{e}"))?;
    let block = a
        .allocate_zeroed(layout)
        .map_err(|_| String::from("allocate_zeroed refused"))?;
    let ptr = accept(block, layout, "allocate_zeroed")?;
    // SAFETY: a fresh block of at least 8192 bytes.
    let bytes = unsafe { core::slice::from_raw_parts(ptr.as_ptr(), layout.size()) };
    let nonzero = bytes.iter().position(|&b| b != 0);
    // SAFETY: live with `layout`, freed once.
    unsafe { a.deallocate(ptr, layout) };
    match nonzero {
        None => checked(a, "allocate_zeroed"),
        Some(at) => Err(format!("byte {at} of a zeroed block is not zero")),
    }
}
