//! A small in-memory ledger in TigerBeetle's style: everything allocated at startup, the
//! global allocator sealed, then batches of transfers with zero allocation.
//!
//! ```text
//! cargo run --release -p heapkit-fixed --example ledger -- <accounts_max> <transfers_max> [batches]
//! cargo run --release -p heapkit-fixed --example ledger -- 10000 1000000
//! cargo run --release -p heapkit-fixed --example ledger -- 10000 100000000000   # too big:
//!     exits at startup with the bytes asked for, the partitions and MemAvailable
//! ```
//!
//! Any allocation after `seal()` — a `format!`, a `Vec::push`, a library that allocates behind
//! our back — aborts with `heapkit-fixed: StaticAllocator: ... in state Static`.

use heapkit_core::GlobalAdapter;
use heapkit_fixed::{
    Pool, Prefault, Region, RegionLayout, Ring, SlotId, StaticAllocator, SystemHeap, SYSTEM_HEAP,
};
use heapkit_pages::MmapPages;
use heapkit_testkit::Xorshift64;
use std::process::ExitCode;
use std::time::Instant;

#[global_allocator]
static GLOBAL: GlobalAdapter<StaticAllocator<SystemHeap>> =
    GlobalAdapter::new(StaticAllocator::new(SYSTEM_HEAP));

/// Transfers per batch (TigerBeetle's batch size is 8190).
const BATCH_MAX: usize = 8190;

#[derive(Copy, Clone, Debug, Default)]
struct Account {
    id: u64,
    debits_posted: u64,
    credits_posted: u64,
}

#[derive(Copy, Clone, Debug)]
struct Transfer {
    id: u64,
    debit_account: u32,
    credit_account: u32,
    amount: u64,
}

/// Why a transfer was rejected: counted, never printed per transfer (printing may allocate).
#[derive(Copy, Clone)]
enum Rejection {
    SameAccount,
    ZeroAmount,
    Overflow,
    LedgerFull,
}

#[derive(Default)]
struct Counters {
    committed: u64,
    last_committed_id: u64,
    rejected: [u64; 4],
}

struct Ledger<'r> {
    accounts: Pool<'r, Account>,
    /// Account number → slot: an init-time `Vec`, allocated before sealing.
    account_slots: Vec<SlotId<Account>>,
    transfers: Pool<'r, Transfer>,
    inbox: Ring<'r, Transfer>,
    counters: Counters,
}

impl Ledger<'_> {
    fn commit(&mut self, t: Transfer) -> Result<(), Rejection> {
        if t.debit_account == t.credit_account {
            return Err(Rejection::SameAccount);
        }
        if t.amount == 0 {
            return Err(Rejection::ZeroAmount);
        }
        let debit = self.account_slots[t.debit_account as usize];
        let credit = self.account_slots[t.credit_account as usize];
        let credits = self.accounts.get(credit).map_or(0, |a| a.credits_posted);
        let debits = self.accounts.get(debit).map_or(0, |a| a.debits_posted);
        let (Some(new_debits), Some(new_credits)) =
            (debits.checked_add(t.amount), credits.checked_add(t.amount))
        else {
            return Err(Rejection::Overflow);
        };
        // The ledger's capacity is part of its design: when the store is full, say so.
        self.transfers
            .try_acquire(t)
            .map_err(|_| Rejection::LedgerFull)?;
        self.accounts.get_mut(debit).unwrap().debits_posted = new_debits;
        self.accounts.get_mut(credit).unwrap().credits_posted = new_credits;
        Ok(())
    }

    /// Drains the inbox: one batch, no allocation.
    fn process_batch(&mut self) {
        while let Some(transfer) = self.inbox.pop_front() {
            match self.commit(transfer) {
                Ok(()) => {
                    debug_assert!(transfer.id > self.counters.last_committed_id);
                    self.counters.committed += 1;
                    self.counters.last_committed_id = transfer.id;
                }
                Err(why) => self.counters.rejected[why as usize] += 1,
            }
        }
    }

    /// Debits equal credits, always: double-entry's invariant.
    fn balanced(&self) -> bool {
        let (mut debits, mut credits) = (0u128, 0u128);
        for &slot in &self.account_slots {
            let account = self.accounts.get(slot).unwrap();
            debits += u128::from(account.debits_posted);
            credits += u128::from(account.credits_posted);
        }
        debits == credits
    }
}

fn parse_args() -> Result<(usize, usize, usize), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| -> Result<usize, String> {
        match args.get(i) {
            Some(text) => text.parse().map_err(|_| format!("not a number: {text:?}")),
            None => Ok(default),
        }
    };
    let accounts_max = number(0, 10_000)?;
    let transfers_max = number(1, 1_000_000)?;
    let batches = number(2, transfers_max.div_ceil(BATCH_MAX) + 1)?;
    if accounts_max < 2 || accounts_max > u32::MAX as usize {
        return Err("accounts_max must be between 2 and 2^32 - 1".into());
    }
    Ok((accounts_max, transfers_max, batches))
}

fn main() -> ExitCode {
    let (accounts_max, transfers_max, batches) = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("usage: ledger <accounts_max> <transfers_max> [batches]: {message}");
            return ExitCode::from(2);
        }
    };

    // ---- Init: everything that can fail, fails here. ----
    let mut layout = RegionLayout::new();
    let accounts_id = layout.pool::<Account>("accounts", accounts_max);
    let transfers_id = layout.pool::<Transfer>("transfers", transfers_max);
    let inbox_id = layout.ring::<Transfer>("inbox", BATCH_MAX);
    let started = Instant::now();
    let region = match Region::new(layout, MmapPages::new(), Prefault::Populate) {
        Ok(region) => region,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(1);
        }
    };
    println!(
        "region reserved and pre-faulted in {:.1} ms:\n{}",
        started.elapsed().as_secs_f64() * 1e3,
        region.layout()
    );
    let mut ledger = Ledger {
        accounts: region.pool(accounts_id).unwrap(),
        account_slots: Vec::with_capacity(accounts_max),
        transfers: region.pool(transfers_id).unwrap(),
        inbox: region.ring(inbox_id).unwrap(),
        counters: Counters::default(),
    };
    for id in 0..accounts_max as u64 {
        let slot = ledger
            .accounts
            .try_acquire(Account {
                id,
                ..Account::default()
            })
            .unwrap();
        ledger.account_slots.push(slot);
    }
    debug_assert!(ledger.accounts.get(ledger.account_slots[1]).unwrap().id == 1);

    // ---- Static: from here on, any allocation aborts the process. ----
    GLOBAL.inner().seal().unwrap();
    // The book's figures (docs/07) were drawn from this generator and seed.
    let mut rng = Xorshift64::new(0x2545_F491_4F6C_DD1D);
    let started = Instant::now();
    let mut next_id = 0u64;
    for _ in 0..batches {
        while !ledger.inbox.is_full() {
            let r = rng.next_u64();
            next_id += 1;
            let transfer = Transfer {
                id: next_id,
                debit_account: (r % accounts_max as u64) as u32,
                credit_account: ((r >> 32) % accounts_max as u64) as u32,
                amount: (r >> 48) % 1000,
            };
            // Cannot fail: the loop stops when the ring is full.
            let _ = ledger.inbox.push_back(transfer);
        }
        ledger.process_batch();
    }
    let elapsed = started.elapsed();
    let c = &ledger.counters;
    let total = c.committed + c.rejected.iter().sum::<u64>();
    // `println!` writes into stdout's buffer, allocated by the first print (during init).
    println!(
        "sealed: {batches} batches, {total} transfers in {:.1} ms ({:.1} M/s), zero allocations",
        elapsed.as_secs_f64() * 1e3,
        total as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "committed {} (last id {}); rejected: same account {}, zero amount {}, overflow {}, ledger full {}",
        c.committed, c.last_committed_id, c.rejected[0], c.rejected[1], c.rejected[2], c.rejected[3]
    );
    println!(
        "transfers stored {}/{}; debits == credits: {}",
        ledger.transfers.len(),
        ledger.transfers.capacity(),
        ledger.balanced()
    );
    assert_eq!(GLOBAL.inner().violations(), 0);

    // ---- Deinit: orderly shutdown frees what init allocated. ----
    GLOBAL.inner().begin_deinit().unwrap();
    drop(ledger);
    drop(region);
    ExitCode::SUCCESS
}
