//! Laws: short properties that must hold for any input.
//!
//! quickcheck's generators (`Gen`, `Arbitrary`) produce the inputs; the loop that applies them is
//! ours, because quickcheck's runner only takes `'static` properties and the allocator factory
//! usually borrows from the test.

use crate::model::{free_all_and_check_stats, run_sequence, Model, Op};
use crate::suite::Suite;
use heapkit_core::{Allocator, Introspect};
use quickcheck::Gen;
use std::alloc::Layout;

fn small_layout(g: &mut Gen, suite: &Suite) -> Layout {
    let size = usize::arbitrary_in(g, 0, 4096.min(suite.max_size_bytes));
    let align =
        1usize << usize::arbitrary_in(g, 0, suite.max_align_bytes.trailing_zeros().min(6) as usize);
    Layout::from_size_align(size, align).unwrap_or(Layout::new::<u8>())
}

trait ArbitraryIn {
    fn arbitrary_in(g: &mut Gen, low: usize, high: usize) -> usize;
}

impl ArbitraryIn for usize {
    fn arbitrary_in(g: &mut Gen, low: usize, high: usize) -> usize {
        low + <usize as quickcheck::Arbitrary>::arbitrary(g) % (high - low + 1)
    }
}

/// Law: a block freed right after it was allocated leaves the allocator as it found it (by its
/// own check and stats), and zero-size blocks are aligned and empty.
fn alloc_free_round_trip<A: Allocator + Introspect>(
    suite: &Suite,
    a: &A,
    layout: Layout,
) -> Result<(), String> {
    let before = a.stats().map(|s| (s.live_bytes, s.live_blocks));
    let mut model = Model::default();
    match a.allocate(layout) {
        Ok(block) => {
            model.admit(block, layout, None)?;
        }
        Err(_) if suite.must_succeed(layout.size(), layout.align()) => {
            return Err(format!("{}: allocate({layout:?}) failed", suite.name))
        }
        Err(_) => return Ok(()),
    }
    free_all_and_check_stats(suite, a, &mut model)?;
    let after = a.stats().map(|s| (s.live_bytes, s.live_blocks));
    if suite.live_accounting && before != after {
        return Err(format!(
            "{}: alloc+free changed live stats {before:?} -> {after:?}",
            suite.name
        ));
    }
    Ok(())
}

/// Law: `allocate_zeroed` memory is zero even when it reuses a block that held data.
fn zeroed_after_reuse<A: Allocator + Introspect>(
    suite: &Suite,
    a: &A,
    layout: Layout,
) -> Result<(), String> {
    let dirty = [
        Op::Alloc {
            size: layout.size(),
            align_shift: layout.align().trailing_zeros(),
            zeroed: false,
        },
        Op::Free {
            index: 0,
            returned_len: false,
        },
        Op::Alloc {
            size: layout.size(),
            align_shift: layout.align().trailing_zeros(),
            zeroed: true,
        },
    ];
    run_sequence(suite, a, &dirty)
}

pub fn run<A: Allocator + Introspect>(suite: &Suite, make: &dyn Fn() -> A) {
    let tests = u64::from(suite.cases.max(1));
    for (name, law) in [
        (
            "alloc_free_round_trip",
            alloc_free_round_trip::<A> as fn(&Suite, &A, Layout) -> Result<(), String>,
        ),
        ("zeroed_after_reuse", zeroed_after_reuse::<A>),
    ] {
        let mut failure: Option<String> = None;
        let mut g = Gen::new(64);
        for _ in 0..tests {
            let layout = small_layout(&mut g, suite);
            let a = make();
            if let Err(message) = law(suite, &a, layout) {
                failure = Some(format!("{layout:?}: {message}"));
                break;
            }
        }
        if let Some(message) = failure {
            panic!("{}: law {name} failed for {message}", suite.name);
        }
    }
}
