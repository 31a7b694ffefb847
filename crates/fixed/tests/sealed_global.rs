//! The process's `#[global_allocator]` is a `StaticAllocator`: after `seal()`, a `Vec::push`
//! anywhere is caught with a message naming the state.
//!
//! A sealed global allocator stops the test harness itself (it allocates to print results),
//! so this file has its own `main` (`harness = false`): the parent re-runs this binary as a
//! child with `HEAPKIT_FIXED_CHILD=<scenario>` and checks how the child died and what it wrote
//! to stderr.

use core::alloc::Layout;
use heapkit_core::{Allocator, GlobalAdapter};
use heapkit_fixed::{OnViolation, State, StaticAllocator, SystemHeap, SYSTEM_HEAP};
use std::process::Command;

static POLICY_REFUSE: StaticAllocator<SystemHeap> =
    StaticAllocator::with_policy(SYSTEM_HEAP, OnViolation::Refuse);

#[global_allocator]
static GLOBAL: GlobalAdapter<StaticAllocator<SystemHeap>> =
    GlobalAdapter::new(StaticAllocator::new(SYSTEM_HEAP));

const CHILD_VAR: &str = "HEAPKIT_FIXED_CHILD";

fn main() {
    if cfg!(miri) {
        println!("sealed_global: skipped under Miri (spawns processes)");
        return;
    }
    match std::env::var(CHILD_VAR).ok().as_deref() {
        Some("push-after-seal") => child_push_after_seal(),
        Some("alloc-in-deinit") => child_alloc_in_deinit(),
        Some("init-then-no-alloc") => child_init_then_no_alloc(),
        Some("double-release") => child_double_release(),
        Some(other) => panic!("unknown scenario {other}"),
        None => parent(),
    }
}

/// Allocates freely in Init, seals, then pushes past a Vec's capacity.
fn child_push_after_seal() {
    let mut numbers: Vec<u32> = Vec::with_capacity(4);
    numbers.extend([1, 2, 3, 4]);
    GLOBAL.inner().seal().unwrap();
    numbers.push(5); // needs to grow: caught
    unreachable!("the sealed allocator let a Vec grow");
}

/// Seal, move to Deinit: freeing is fine, a new allocation is caught.
fn child_alloc_in_deinit() {
    let kept = vec![7u8; 100];
    GLOBAL.inner().seal().unwrap();
    GLOBAL.inner().begin_deinit().unwrap();
    drop(kept); // allowed in Deinit
    let _late = Box::new(1u64); // caught
    unreachable!("the allocator let Deinit allocate");
}

/// Everything allocated at init; after sealing, work that does not allocate runs fine.
fn child_init_then_no_alloc() {
    let mut table = vec![0u64; 1024];
    GLOBAL.inner().seal().unwrap();
    for (i, slot) in table.iter_mut().enumerate() {
        *slot = (i as u64) * 3;
    }
    let sum: u64 = table.iter().sum();
    assert_eq!(GLOBAL.inner().state(), State::Static);
    // Writes without allocating: a stack buffer and a raw write.
    let line = b"sealed and done\n";
    // SAFETY: a valid buffer for the call.
    unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
    // Shutdown frees (std's runtime releases a few buffers at exit): move to Deinit first.
    GLOBAL.inner().begin_deinit().unwrap();
    std::process::exit(if sum == 3 * 1023 * 1024 / 2 { 0 } else { 1 });
}

/// With the `checked` feature, releasing a pool slot twice aborts with the pool's name.
fn child_double_release() {
    use heapkit_fixed::{Prefault, Region, RegionLayout};
    let mut layout = RegionLayout::new();
    let id = layout.pool::<u64>("orders", 4);
    let pages = heapkit_pages::BufferPages::owned(8192, 4096).unwrap();
    let region = Region::new(layout, pages, Prefault::Lazy).unwrap();
    let mut pool = region.pool(id).unwrap();
    let slot = pool.try_acquire(1).unwrap();
    pool.release(slot).unwrap();
    let _ = pool.release(slot); // aborts with `checked`
    std::process::exit(3);
}

fn run_child(scenario: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD_VAR, scenario)
        .output()
        .unwrap()
}

fn parent() {
    let mut passed = 0;

    let out = run_child("push-after-seal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child should have aborted");
    assert!(
        stderr
            .contains("heapkit-fixed: StaticAllocator: grow of 32 bytes (align 4) in state Static"),
        "unexpected stderr: {stderr}"
    );
    assert!(stderr.contains("memory is fixed after init"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
    }
    println!("test push_after_seal_aborts_with_the_state ... ok");
    passed += 1;

    let out = run_child("alloc-in-deinit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("allocate of 8 bytes (align 8) in state Deinit"),
        "unexpected stderr: {stderr}"
    );
    assert!(
        stderr.contains("only deallocation is allowed during deinit"),
        "{stderr}"
    );
    println!("test alloc_in_deinit_aborts_but_free_is_allowed ... ok");
    passed += 1;

    let out = run_child("init-then-no-alloc");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"sealed and done\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("test work_without_allocation_runs_after_seal ... ok");
    passed += 1;

    let out = run_child("double-release");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "checked") {
        assert!(!out.status.success());
        assert!(
            stderr.contains("heapkit-fixed: pool \"orders\": bad release: slot 0 is not acquired"),
            "unexpected stderr: {stderr}"
        );
        println!("test checked_double_release_aborts_naming_the_pool ... ok");
    } else {
        assert_eq!(
            out.status.code(),
            Some(3),
            "without `checked` the error is returned"
        );
        println!("test unchecked_double_release_returns_an_error ... ok");
    }
    passed += 1;

    // The Refuse policy, called directly: the error comes back instead of an abort.
    POLICY_REFUSE.seal().unwrap();
    assert!(POLICY_REFUSE.allocate(Layout::new::<u64>()).is_err());
    assert_eq!(POLICY_REFUSE.violations(), 1);
    println!("test refuse_policy_returns_an_error ... ok");
    passed += 1;

    println!("\ntest result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}
