//! Fuzz target `bins`: see `heapkit_fuzz::targets::bins`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heapkit_fuzz::targets::bins::run(data));
