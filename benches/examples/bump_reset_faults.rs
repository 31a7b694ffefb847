//! Steady-state reset loops, heapkit-bump against bumpalo: minor page faults, chunks and time
//! per round. A round is `ALLOCS` allocations of one size, then `reset`. Faults are read from
//! `/proc/self/stat` (field 10, `minflt`) around each round, so they count the kernel's work
//! (a first touch of a page costs ~1-10 us on a VM), which the time alone hides in noise.
//!
//! `cargo run --release -p heapkit-benches --example bump_reset_faults [rounds] [allocs]`
//!
//! The interesting line is the last rounds: a steady-state loop should fault ~0 times.
//!
//! Then paired timing: after warm-up, rounds of the two arenas alternate (order swapped every
//! pair), and the median of the per-pair time ratios is printed, which a slow drift in machine
//! load (other jobs starting and stopping) affects far less than two separate runs.
//!
//! Last, the zeroed-allocation lines: one 8 MiB `allocate_zeroed` in a fresh arena, then one
//! page of it written. Skipping the memset on fresh `mmap` memory leaves the other pages
//! untouched (a handful of faults instead of 2048).

use std::hint::black_box;
use std::time::Instant;

use heapkit_bump::Arena;

const DEFAULT_ROUNDS: usize = 6;
const DEFAULT_ALLOCS: usize = 1_000_000;
/// Alternating round pairs timed by `paired`.
const PAIRS: usize = 41;
/// Rounds each arena runs before `paired` times anything (steady state from the third).
const WARM_ROUNDS: usize = 3;

use heapkit_testkit::minor_faults;

/// One round's figures.
struct Round {
    faults: u64,
    micros: u128,
    chunks: usize,
    chunk_bytes: usize,
}

fn print_round(name: &str, size_bytes: usize, index: usize, round: &Round, allocs: usize) {
    println!(
        "{name:<13} {size_bytes:>3} B round {index}: {:>7} faults  {:>3} chunks  {:>10} chunk bytes  {:>9} us  {:>6.2} ns/alloc",
        round.faults,
        round.chunks,
        round.chunk_bytes,
        round.micros,
        round.micros as f64 * 1000.0 / allocs as f64
    );
}

/// Runs `round` `rounds` times, measuring each.
fn measure(rounds: usize, mut round: impl FnMut() -> (usize, usize)) -> Vec<Round> {
    (0..rounds)
        .map(|_| {
            let faults_before = minor_faults();
            let start = Instant::now();
            let (chunks, chunk_bytes) = round();
            let micros = start.elapsed().as_micros();
            Round {
                faults: minor_faults() - faults_before,
                micros,
                chunks,
                chunk_bytes,
            }
        })
        .collect()
}

fn compare<const WORDS: usize>(rounds: usize, allocs: usize) {
    let size_bytes = WORDS * 8;
    let mut ours = Arena::new();
    let heapkit = measure(rounds, || {
        for i in 0..allocs {
            black_box(ours.alloc([i as u64; WORDS]));
        }
        // Counted before the reset: the chunks this round needed.
        let seen = (ours.chunk_count(), ours.allocated_bytes());
        ours.reset();
        seen
    });
    let mut theirs = bumpalo::Bump::new();
    let bumpalo = measure(rounds, || {
        for i in 0..allocs {
            black_box(theirs.alloc([i as u64; WORDS]));
        }
        // SAFETY: the chunk contents are not read, only counted.
        let chunks = unsafe { theirs.iter_allocated_chunks_raw() }.count();
        let seen = (chunks, theirs.allocated_bytes());
        theirs.reset();
        seen
    });
    for (index, round) in heapkit.iter().enumerate() {
        print_round("heapkit-bump", size_bytes, index, round, allocs);
    }
    for (index, round) in bumpalo.iter().enumerate() {
        print_round("bumpalo", size_bytes, index, round, allocs);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let allocs = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_ALLOCS);
    compare::<2>(rounds, allocs);
    compare::<8>(rounds, allocs);
    paired::<2>(PAIRS, allocs);
    paired::<8>(PAIRS, allocs);
    zeroed_buffer();
}

/// The median of a list of samples (sorts it).
fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Alternating steady-state rounds: median ns/alloc of each and median per-pair ratio.
fn paired<const WORDS: usize>(pairs: usize, allocs: usize) {
    let mut ours = Arena::new();
    let mut theirs = bumpalo::Bump::new();
    let mut ours_round = || {
        let start = Instant::now();
        for i in 0..allocs {
            black_box(ours.alloc([i as u64; WORDS]));
        }
        ours.reset();
        start.elapsed().as_nanos() as f64 / allocs as f64
    };
    let mut theirs_round = || {
        let start = Instant::now();
        for i in 0..allocs {
            black_box(theirs.alloc([i as u64; WORDS]));
        }
        theirs.reset();
        start.elapsed().as_nanos() as f64 / allocs as f64
    };
    for _ in 0..WARM_ROUNDS {
        ours_round();
        theirs_round();
    }
    let (mut ours_ns, mut theirs_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        let (a, b) = if pair % 2 == 0 {
            let a = ours_round();
            (a, theirs_round())
        } else {
            let b = theirs_round();
            (ours_round(), b)
        };
        ours_ns.push(a);
        theirs_ns.push(b);
        ratios.push(a / b);
    }
    println!(
        "paired {:>2} B x {allocs}, {pairs} pairs: heapkit-bump {:.2} ns/alloc, bumpalo {:.2} ns/alloc, median ratio {:.3}",
        WORDS * 8,
        median(&mut ours_ns),
        median(&mut theirs_ns),
        median(&mut ratios)
    );
}

/// Faults of one fresh 8 MiB zeroed buffer with one page written: heapkit (memset skipped on
/// fresh chunks), heapkit with an explicit memset (what `allocate_zeroed` did before), bumpalo.
fn zeroed_buffer() {
    use allocator_api2::alloc::Allocator as _;
    let layout = std::alloc::Layout::from_size_align(8 << 20, 8).unwrap();
    let faults = |name: &str, f: &dyn Fn()| {
        let before = minor_faults();
        f();
        println!(
            "{name:<26} 8 MiB zeroed, 1 page written: {:>5} faults",
            minor_faults() - before
        );
    };
    faults("heapkit-bump", &|| {
        let arena = Arena::new();
        let block = arena.allocate_zeroed(layout).unwrap().cast::<u8>();
        // SAFETY: the block has 8 MiB writable bytes.
        unsafe { block.as_ptr().write(black_box(1)) };
    });
    faults("heapkit-bump + memset", &|| {
        let arena = Arena::new();
        let block = arena.allocate(layout).unwrap().cast::<u8>();
        // SAFETY: as above.
        unsafe {
            block.as_ptr().write_bytes(0, layout.size());
            block.as_ptr().write(black_box(1));
        }
    });
    faults("bumpalo", &|| {
        let arena = bumpalo::Bump::new();
        let block = (&arena).allocate_zeroed(layout).unwrap().cast::<u8>();
        // SAFETY: as above.
        unsafe { block.as_ptr().write(black_box(1)) };
    });
}
