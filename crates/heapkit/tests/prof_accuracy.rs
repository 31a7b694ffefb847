//! The profile's accuracy with the default mean (512 KiB), through `HeapKit` as the global
//! allocator: three known functions hold known amounts (112 MiB live in all); the top three
//! in-use sites must be theirs, each within ±10% of the truth, and in-use must fall to zero
//! when they free everything. A churn function allocates and frees 1 GiB in 4 KiB blocks: its
//! allocated-since-start figure must be within ±10% too, and its in-use zero.
//!
//! The estimate's relative error is about `sqrt(mean / bytes)` for blocks much smaller than
//! the mean (1 GiB: 2.2%) and vanishes for blocks much larger than it (`1 - exp(-size/mean)`
//! tends to 1), which is why the live sites use blocks of 2 and 4 MiB: 16 MiB of 4 KiB blocks
//! would have an error of ~18%.

use heapkit::prof;
use heapkit::HeapKit;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: HeapKit = HeapKit::new();

const MIB: usize = 1 << 20;
const ALPHA_BYTES: usize = 16 * 4 * MIB;
const BETA_BYTES: usize = 16 * 2 * MIB;
const GAMMA_BYTES: usize = 4 * 4 * MIB;
const CHURN_BYTES: usize = 1 << 30;

fn blocks(count: usize, size: usize) -> Vec<Vec<u8>> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        held.push(black_box(vec![1u8; size]));
    }
    held
}

#[inline(never)]
fn alloc_alpha() -> Vec<Vec<u8>> {
    black_box(blocks(16, 4 * MIB))
}

#[inline(never)]
fn alloc_beta() -> Vec<Vec<u8>> {
    black_box(blocks(16, 2 * MIB))
}

#[inline(never)]
fn alloc_gamma() -> Vec<Vec<u8>> {
    black_box(blocks(4, 4 * MIB))
}

#[inline(never)]
fn churn() {
    for _ in 0..CHURN_BYTES / 4096 {
        drop(black_box(vec![0u8; 4096]));
    }
}

/// Which of the known functions a site's stack passes through, if any.
fn owner(site: &prof::Site) -> Option<&'static str> {
    for &frame in &site.frames {
        for name in prof::symbol_names(frame) {
            for known in ["alloc_alpha", "alloc_beta", "alloc_gamma", "churn"] {
                if name.ends_with(known) {
                    return Some(known);
                }
            }
        }
    }
    None
}

fn totals(function: &str) -> (u64, u64) {
    prof::sites()
        .iter()
        .filter(|site| owner(site) == Some(function))
        .fold((0, 0), |(inuse, alloc), site| {
            (inuse + site.inuse_bytes, alloc + site.alloc_bytes)
        })
}

fn assert_near(what: &str, estimate: u64, truth: usize) {
    let error = (estimate as f64 - truth as f64).abs() / truth as f64;
    println!(
        "{what}: estimated {estimate}, true {truth} ({:+.2}%)",
        (estimate as f64 / truth as f64 - 1.0) * 100.0
    );
    assert!(
        error <= 0.10,
        "{what}: estimated {estimate} bytes, true {truth} ({:.1}% off)",
        error * 100.0
    );
}

#[test]
#[cfg_attr(miri, ignore)] // the unwinder
fn top_sites_are_the_known_functions_within_ten_percent() {
    assert_eq!(prof::sample_mean_bytes(), prof::DEFAULT_SAMPLE_MEAN_BYTES);
    prof::activate();
    let alpha = alloc_alpha();
    let beta = alloc_beta();
    let gamma = alloc_gamma();
    churn();

    let mut sites = prof::sites();
    sites.sort_by_key(|site| std::cmp::Reverse(site.inuse_bytes));
    let mut top: Vec<_> = sites[..3].iter().map(|site| owner(site)).collect();
    top.sort();
    assert_eq!(
        top,
        [Some("alloc_alpha"), Some("alloc_beta"), Some("alloc_gamma")]
    );
    assert_near("alpha in use", totals("alloc_alpha").0, ALPHA_BYTES);
    assert_near("beta in use", totals("alloc_beta").0, BETA_BYTES);
    assert_near("gamma in use", totals("alloc_gamma").0, GAMMA_BYTES);
    let (churn_inuse, churn_alloc) = totals("churn");
    assert_eq!(churn_inuse, 0, "churn frees everything");
    assert_near("churn allocated", churn_alloc, CHURN_BYTES);
    assert_eq!(prof::dropped_samples(), 0);

    dumps_are_pprof_and_svg();

    drop((alpha, beta, gamma));
    for function in ["alloc_alpha", "alloc_beta", "alloc_gamma"] {
        assert_eq!(totals(function).0, 0, "{function} freed everything");
    }
    prof::deactivate();
}

/// Part of the test above (the profiler's state is the process's): the dumps of what it holds.
fn dumps_are_pprof_and_svg() {
    let mut pprof = Vec::new();
    prof::write_pprof(prof::Kind::InUse, &mut pprof).expect("pprof");
    assert_eq!(&pprof[..2], &[0x1f, 0x8b], "gzip magic");
    let mut svg = Vec::new();
    prof::write_flamegraph(prof::Kind::Allocated, &mut svg).expect("svg");
    let svg = String::from_utf8(svg).expect("utf-8");
    assert!(
        svg.contains("<svg") && svg.contains("alloc_gamma"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}
