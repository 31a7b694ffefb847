//! The issue's workload for instruction counts: `rounds` rounds of `allocs` allocations of
//! `size` bytes then a reset, in one arena, after one warm-up round. Only `measured_rounds` is
//! meant to be counted, so the figure is instructions per allocation with the reset amortised,
//! free of the noise a shared machine puts in wall-clock time:
//!
//! ```text
//! cargo build --release -p heapkit-benches --example bump_callgrind_rounds
//! valgrind --tool=callgrind --toggle-collect='*measured_rounds*' --callgrind-out-file=/tmp/cg.%p \
//!     target/release/examples/bump_callgrind_rounds heapkit 64 4 1000000
//! ```
//!
//! (arguments: `heapkit` or `bumpalo`, size 16 or 64, rounds, allocations per round). The
//! program prints the chunk count and the minor page faults of the measured rounds.

use std::hint::black_box;

use heapkit_bump::Arena;

use heapkit_testkit::minor_faults;

/// What both arenas offer the workload.
trait Round {
    fn alloc_words<const WORDS: usize>(&self, i: u64);
    fn reset_all(&mut self);
    fn chunks(&mut self) -> usize;
}

impl Round for Arena {
    #[inline(always)]
    fn alloc_words<const WORDS: usize>(&self, i: u64) {
        black_box(self.alloc([i; WORDS]));
    }
    fn reset_all(&mut self) {
        self.reset();
    }
    fn chunks(&mut self) -> usize {
        self.chunk_count()
    }
}

impl Round for bumpalo::Bump {
    #[inline(always)]
    fn alloc_words<const WORDS: usize>(&self, i: u64) {
        black_box(self.alloc([i; WORDS]));
    }
    fn reset_all(&mut self) {
        self.reset();
    }
    fn chunks(&mut self) -> usize {
        self.iter_allocated_chunks().count()
    }
}

fn one_round<A: Round, const WORDS: usize>(arena: &mut A, allocs: usize) -> usize {
    for i in 0..allocs as u64 {
        arena.alloc_words::<WORDS>(i);
    }
    let chunks = arena.chunks();
    arena.reset_all();
    chunks
}

#[inline(never)]
fn measured_rounds<A: Round, const WORDS: usize>(
    arena: &mut A,
    rounds: usize,
    allocs: usize,
) -> usize {
    let mut chunks = 0;
    for _ in 0..rounds {
        chunks = one_round::<A, WORDS>(arena, allocs);
    }
    chunks
}

fn run<A: Round, const WORDS: usize>(mut arena: A, rounds: usize, allocs: usize) {
    one_round::<A, WORDS>(&mut arena, allocs);
    let faults_before = minor_faults();
    let chunks = measured_rounds::<A, WORDS>(&mut arena, rounds, allocs);
    let faults = minor_faults() - faults_before;
    println!(
        "{} B x {allocs} x {rounds} rounds: {chunks} chunks in the last round, {faults} minor faults",
        WORDS * 8
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let which = args.first().map_or("heapkit", String::as_str);
    let (size_bytes, rounds, allocs) = (arg(1, 16), arg(2, 4), arg(3, 1_000_000));
    match (which, size_bytes) {
        ("heapkit", 16) => run::<Arena, 2>(Arena::new(), rounds, allocs),
        ("heapkit", 64) => run::<Arena, 8>(Arena::new(), rounds, allocs),
        ("bumpalo", 16) => run::<bumpalo::Bump, 2>(bumpalo::Bump::new(), rounds, allocs),
        ("bumpalo", 64) => run::<bumpalo::Bump, 8>(bumpalo::Bump::new(), rounds, allocs),
        _ => eprintln!("usage: bump_callgrind_rounds heapkit|bumpalo 16|64 [rounds] [allocs]"),
    }
}
