//! Fuzz target `fixed`: see `heapkit_fuzz::targets::fixed`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heapkit_fuzz::targets::fixed::run(data));
