//! Chapter 1: how a process gets memory. Maps memory with heapkit-pages' `BrkPages` and
//! `MmapPages`, prints the lines of `/proc/self/maps` that appeared, then times page faults.
//!
//! `cargo run --release --manifest-path docs/programs/Cargo.toml --bin maps`
//!
//! The program's own allocations (the `String`s that hold `/proc/self/maps`) go through
//! heapkit-slab over `mmap`, not glibc's malloc, so that glibc never moves the program break:
//! whatever `[heap]` line appears was made by `BrkPages` alone.

use core::ptr::NonNull;
use heapkit_core::{GlobalAdapter, PageSource};
use heapkit_pages::{os_page_size, BrkPages, MmapPages};
use heapkit_slab::Slab;
use std::time::Instant;

#[global_allocator]
static GLOBAL: GlobalAdapter<Slab<MmapPages>> = GlobalAdapter::new(Slab::new(MmapPages::new()));

/// Pages touched by the page-fault measurement: 64 MiB with 4 KiB pages.
const FAULT_PAGES: usize = 16 * 1024;

fn maps() -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .expect("Linux: /proc/self/maps")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Prints the lines of `before` that are gone (`-`) and the lines of `after` that are new
/// (`+`): a mapping that grew shows as its old line and its new one.
fn print_changed_lines(before: &[String], after: &[String]) {
    for line in before.iter().filter(|l| !after.contains(l)) {
        println!("  - {line}");
    }
    for line in after.iter().filter(|l| !before.contains(l)) {
        println!("  + {line}");
    }
}

fn minor_faults() -> i64 {
    // SAFETY: getrusage writes into the struct we pass; all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_minflt
}

fn sbrk0() -> usize {
    // SAFETY: sbrk(0) only reads the break.
    unsafe { libc::sbrk(0) as usize }
}

/// Writes one byte per page of `run` and returns (ns per page, minor faults per page).
fn touch(run: NonNull<u8>, pages: usize, page_bytes: usize) -> (f64, f64) {
    let faults_before = minor_faults();
    let start = Instant::now();
    for page in 0..pages {
        // SAFETY: `run` is a live mapping of `pages` pages.
        unsafe { run.as_ptr().add(page * page_bytes).write_volatile(1) };
    }
    let elapsed_ns = start.elapsed().as_nanos() as f64;
    let faults = (minor_faults() - faults_before) as f64;
    (elapsed_ns / pages as f64, faults / pages as f64)
}

fn main() {
    let page_bytes = os_page_size();
    println!("page size: {page_bytes} B");

    // brk: the heap grows contiguously at the program break.
    let brk = BrkPages::new();
    let before = maps();
    let break_before = sbrk0();
    let first = brk.map(64 * 1024, page_bytes).expect("sbrk 64 KiB");
    let more = brk.extend(unsafe_end(first, 64 * 1024), 64 * 1024);
    let break_after = sbrk0();
    println!("\nBrkPages: map(64 KiB) then extend(+64 KiB)");
    println!(
        "  break {break_before:#x} -> {break_after:#x} (+{} KiB); extend {}",
        (break_after - break_before) >> 10,
        if more.is_ok() {
            "grew in place"
        } else {
            "was refused"
        }
    );
    print_changed_lines(&before, &maps());

    // mmap: each run is a mapping of its own, anywhere the kernel likes.
    let mmap = MmapPages::new();
    let before = maps();
    let small = mmap.map(256 * 1024, page_bytes).expect("mmap 256 KiB");
    let aligned = mmap
        .map(2 << 20, 2 << 20)
        .expect("mmap 2 MiB aligned to 2 MiB");
    println!("\nMmapPages: map(256 KiB), then map(2 MiB, aligned to 2 MiB)");
    println!(
        "  runs at {:#x} and {:#x} (the second is 2 MiB-aligned: {})",
        small.as_ptr() as usize,
        aligned.as_ptr() as usize,
        (aligned.as_ptr() as usize).is_multiple_of(2 << 20)
    );
    print_changed_lines(&before, &maps());

    // What a page fault costs: the first touch of each page faults, the second does not.
    let len_bytes = FAULT_PAGES * page_bytes;
    let run = mmap.map(len_bytes, page_bytes).expect("mmap 64 MiB");
    let (first_ns, first_faults) = touch(run, FAULT_PAGES, page_bytes);
    let (second_ns, second_faults) = touch(run, FAULT_PAGES, page_bytes);
    // SAFETY: the run is ours and its contents are not needed.
    unsafe { mmap.purge(run, len_bytes) };
    let (purged_ns, purged_faults) = touch(run, FAULT_PAGES, page_bytes);
    println!(
        "\nPage faults: write one byte to each of {FAULT_PAGES} pages ({} MiB)",
        len_bytes >> 20
    );
    println!("  first touch      {first_ns:>7.0} ns/page  {first_faults:.2} minor faults/page");
    println!("  second touch     {second_ns:>7.0} ns/page  {second_faults:.2} minor faults/page");
    println!("  after purge      {purged_ns:>7.0} ns/page  {purged_faults:.2} minor faults/page  (MADV_DONTNEED)");
    println!(
        "  => one fault costs about {:.1} us ({}x a touch of a resident page)",
        (first_ns - second_ns) / 1000.0,
        (first_ns / second_ns.max(0.1)).round()
    );

    // SAFETY: every run is unused from here on.
    unsafe {
        mmap.unmap(run, len_bytes);
        mmap.unmap(aligned, 2 << 20);
        mmap.unmap(small, 256 * 1024);
        if more.is_ok() {
            brk.unmap(first, 128 * 1024);
        } else {
            brk.unmap(first, 64 * 1024);
        }
    }
}

/// The end of a `len_bytes` run at `run` (for `extend`).
fn unsafe_end(run: NonNull<u8>, len_bytes: usize) -> NonNull<u8> {
    // SAFETY: one past the end of a live run is in bounds for `add` and never null.
    unsafe { NonNull::new_unchecked(run.as_ptr().add(len_bytes)) }
}
