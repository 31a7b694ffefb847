//! Out of memory: the allocator over a source that fails on purpose.

use crate::model::{check_after, free_all_and_check_stats, Model};
use crate::suite::Suite;
use heapkit_core::{Allocator, Introspect, PageSource};
use heapkit_pages::FailingPages;
use std::alloc::Layout;

/// The request used to exhaust the allocator once the source fails: large enough that no
/// allocator serves many of them from memory it already holds.
const EXHAUST_BLOCK_BYTES: usize = if cfg!(miri) { 4096 } else { 256 * 1024 };
/// A bound on the attempts to reach a failure.
const EXHAUST_ATTEMPTS_MAX: usize = if cfg!(miri) { 64 } else { 512 };

fn fail(suite: &Suite, message: String) -> ! {
    panic!("{}: out-of-memory test: {message}", suite.name)
}

fn admit<A: Allocator>(model: &mut Model, a: &A, layout: Layout) -> Result<bool, String> {
    match a.allocate(layout) {
        Ok(block) => model.admit(block, layout, None).map(|_| true),
        Err(_) => Ok(false),
    }
}

/// With the source failing, allocate until a request fails; everything live must survive.
fn exhaust<A: Allocator + Introspect>(
    suite: &Suite,
    a: &A,
    model: &mut Model,
) -> Result<(), String> {
    let size = EXHAUST_BLOCK_BYTES.min(suite.max_size_bytes);
    let layout = Layout::from_size_align(size, 16).map_err(|e| e.to_string())?;
    for _ in 0..EXHAUST_ATTEMPTS_MAX {
        if !admit(model, a, layout)? {
            check_after(suite, a, &"a refused allocation")?;
            return model.verify_all();
        }
    }
    Err(format!("{EXHAUST_ATTEMPTS_MAX} allocations of {size} B succeeded although the page source fails every map"))
}

/// Growing a block far beyond what is held must fail cleanly, keeping the block.
fn refused_grow<A: Allocator + Introspect>(
    suite: &Suite,
    a: &A,
    model: &mut Model,
) -> Result<(), String> {
    let layout = Layout::from_size_align(64, 16).map_err(|e| e.to_string())?;
    let Some(block) = a.allocate(layout).ok() else {
        return Ok(());
    };
    let entry = model.admit(block, layout, None)?;
    let huge = Layout::from_size_align(64 << 20, 16).map_err(|e| e.to_string())?;
    // SAFETY: `entry` is live with `layout`, and the new size is larger.
    if let Ok(grown) = unsafe { a.grow(entry.ptr, layout, huge) } {
        return Err(format!(
            "growing to 64 MiB succeeded at {:p} although the source fails",
            grown.cast::<u8>()
        ));
    }
    check_after(suite, a, &"a refused grow")?;
    Model::verify(&entry, entry.len)
}

fn scenario<P, A>(
    suite: &Suite,
    pages: &dyn Fn() -> P,
    make: &dyn Fn(FailingPages<P>) -> A,
) -> Result<(), String>
where
    P: PageSource,
    A: Allocator + Introspect,
{
    let source = FailingPages::new(pages());
    let plan = source.plan();
    let a = make(source);
    let mut model = Model::default();
    for size in [8usize, 24, 100, 1000, 5000] {
        let layout = Layout::from_size_align(size.min(suite.max_size_bytes), 8)
            .map_err(|e| e.to_string())?;
        if !admit(&mut model, &a, layout)? {
            return Err(format!(
                "allocate({layout:?}) failed before any fault was injected"
            ));
        }
    }
    plan.fail_every_map();
    exhaust(suite, &a, &mut model)?;
    refused_grow(suite, &a, &mut model)?;
    plan.heal();
    let layout = Layout::from_size_align(EXHAUST_BLOCK_BYTES.min(suite.max_size_bytes), 16)
        .map_err(|e| e.to_string())?;
    if !admit(&mut model, &a, layout)? {
        return Err("allocation still fails after memory became available again".into());
    }
    free_all_and_check_stats(suite, &a, &mut model)
}

/// A fresh allocator whose first maps fail: construction and the first requests must fail
/// cleanly (no panic) and succeed once memory is available.
fn early_failures<P, A>(
    suite: &Suite,
    pages: &dyn Fn() -> P,
    make: &dyn Fn(FailingPages<P>) -> A,
) -> Result<(), String>
where
    P: PageSource,
    A: Allocator + Introspect,
{
    for maps_allowed in 0..4 {
        let source = FailingPages::new(pages());
        let plan = source.plan();
        plan.fail_after_maps(maps_allowed);
        let a = make(source);
        let mut model = Model::default();
        for size in [16usize, 3000, 70_000] {
            let layout = Layout::from_size_align(size.min(suite.max_size_bytes), 16)
                .map_err(|e| e.to_string())?;
            admit(&mut model, &a, layout)?;
            check_after(suite, &a, &"an allocation under a map budget")?;
        }
        plan.heal();
        let layout = Layout::from_size_align(16, 16).map_err(|e| e.to_string())?;
        if !admit(&mut model, &a, layout)? {
            return Err(format!(
                "after {maps_allowed} allowed maps and a heal, a 16 B allocation fails"
            ));
        }
        free_all_and_check_stats(suite, &a, &mut model)?;
    }
    Ok(())
}

pub fn run<P, A>(suite: &Suite, pages: &dyn Fn() -> P, make: &dyn Fn(FailingPages<P>) -> A)
where
    P: PageSource,
    A: Allocator + Introspect,
{
    if let Err(message) = scenario(suite, pages, make) {
        fail(suite, message);
    }
    if let Err(message) = early_failures(suite, pages, make) {
        fail(suite, message);
    }
}
