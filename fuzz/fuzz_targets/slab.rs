//! Fuzz target `slab`: see `heapkit_fuzz::targets::slab`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heapkit_fuzz::targets::slab::run(data));
