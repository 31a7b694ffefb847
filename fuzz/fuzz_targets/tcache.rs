//! Fuzz target `tcache`: see `heapkit_fuzz::targets::tcache`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heapkit_fuzz::targets::tcache::run(data));
