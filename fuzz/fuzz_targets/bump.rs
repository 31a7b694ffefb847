//! Fuzz target `bump`: see `heapkit_fuzz::targets::bump`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heapkit_fuzz::targets::bump::run(data));
