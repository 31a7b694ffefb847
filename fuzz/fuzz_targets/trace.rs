//! Fuzz target `trace`: see `heapkit_fuzz::targets::trace`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heapkit_fuzz::targets::trace::run(data));
