//! Instructions per arena-per-request, for callgrind: `per_request_instr heapkit|heapkit-global|bumpalo
//! REQUESTS BLOCKS BLOCK_BYTES` makes a fresh arena per request, allocates BLOCKS blocks of
//! BLOCK_BYTES (one byte written in each) and drops it, REQUESTS times: the loop of
//! `arena_pool`'s `per_request` group, without criterion, so that
//!
//! `valgrind --tool=callgrind target/release/examples/per_request_instr heapkit 20000 64 64`
//!
//! divided by REQUESTS gives instructions per request (start-up included, about 0.2 M).

use heapkit_benches::arena::{bumpalo_request, heapkit_bump_request};
use std::alloc::Layout;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (Some(which), [requests, blocks, block_bytes]) = (args.first(), numbers.as_slice()) else {
        eprintln!(
            "usage: per_request_instr heapkit|heapkit-global|bumpalo REQUESTS BLOCKS BLOCK_BYTES"
        );
        return ExitCode::from(2);
    };
    let Ok(layout) = Layout::from_size_align((*block_bytes).max(8), 8) else {
        eprintln!("per_request_instr: BLOCK_BYTES too large");
        return ExitCode::from(2);
    };
    for _ in 0..*requests {
        match which.as_str() {
            "heapkit" => heapkit_bump_request(heapkit_bump::DefaultChunks, *blocks, layout),
            "heapkit-global" => heapkit_bump_request(heapkit_bump::GLOBAL_CHUNKS, *blocks, layout),
            "bumpalo" => bumpalo_request(*blocks, layout),
            other => {
                eprintln!("per_request_instr: unknown arena {other:?}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}
