//! Memory fixed at start-up, step by step: declare the partitions, map the region once, then
//! watch a pool hand out and take back slots (index free list, newest first), refuse when full,
//! and catch a double release. The pool itself never allocates (the example's own printing
//! does: it is a teaching program, not a sealed one — see `ledger.rs` for that).
//!
//! `cargo run -p heapkit-fixed --example fixed_walkthrough`

use heapkit_fixed::{Prefault, Region, RegionLayout};
use heapkit_pages::MmapPages;

/// An account record: what a slot holds.
#[derive(Debug, Clone, Copy)]
struct Account {
    id: u64,
    balance: i64,
}

fn main() {
    let mut layout = RegionLayout::new();
    let accounts_id = layout.pool::<Account>("accounts", 4);
    let inbox_id = layout.ring::<u64>("inbox", 8);
    layout.bump("init", 1024);
    println!("The layout, declared before any memory exists:\n{layout}");

    let region = Region::new(layout, MmapPages::new(), Prefault::Touch).expect("the region fits");
    println!(
        "Mapped once: {} bytes, every page touched at start-up.\n",
        region.mapped_bytes()
    );

    let mut accounts = region.pool(accounts_id).expect("the pool is free to take");
    let show = |step: &str, used: usize, free: usize| {
        println!("{step:<62} | in use {used} | free {free}");
    };
    show(
        "pool \"accounts\", capacity 4",
        accounts.len(),
        accounts.available(),
    );

    let mut ids = Vec::new();
    for n in 0..4u64 {
        let id = accounts
            .try_acquire(Account {
                id: n,
                balance: 100,
            })
            .expect("room");
        show(
            &format!("try_acquire(account {n}) -> slot {}", id.index()),
            accounts.len(),
            accounts.available(),
        );
        ids.push(id);
    }
    match accounts.try_acquire(Account { id: 9, balance: 0 }) {
        Ok(_) => unreachable!("the pool holds 4"),
        Err(back) => show(
            &format!("try_acquire(account {}) -> refused: full", back.id),
            accounts.len(),
            accounts.available(),
        ),
    }

    let second = ids[1];
    let account = accounts.release(second).expect("slot 1 is in use");
    show(
        &format!("release(slot 1) -> account {} comes back", account.id),
        accounts.len(),
        accounts.available(),
    );
    match accounts.release(second) {
        Ok(_) => unreachable!("slot 1 is free"),
        Err(error) => show(
            &format!("release(slot 1) again -> {error}"),
            accounts.len(),
            accounts.available(),
        ),
    }
    let reused = accounts
        .try_acquire(Account { id: 4, balance: 7 })
        .expect("room again");
    show(
        &format!("try_acquire(account 4) -> slot {} reused", reused.index()),
        accounts.len(),
        accounts.available(),
    );
    let total: i64 = ids
        .iter()
        .filter_map(|&id| accounts.get(id))
        .map(|a| a.balance)
        .sum();
    println!("\nbalances held in the pool: {total}");
    accounts.check().expect("the free list is consistent");

    let mut inbox = region.ring(inbox_id).expect("the ring is free to take");
    for transfer in 1..=3u64 {
        inbox.push_back(transfer).expect("room in the ring");
    }
    println!(
        "ring \"inbox\": {} of {} queued, front {:?}",
        inbox.len(),
        inbox.capacity(),
        inbox.front()
    );
}
