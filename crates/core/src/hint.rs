//! Hints to the code generator that a fast path needs and the language cannot say.
//!
//! # Why a fast path wants one address register
//!
//! A thread cache's `malloc` loads a bin's head, loads the first block's link, and stores that
//! link back as the new head; the next `malloc` loads the head again. That store-then-load is
//! the loop's critical path. Recent x86 cores can hand a load the value of an earlier store to
//! the same place with no forwarding latency at all, but only when the two are recognised as
//! the same location from their form: the same base register and displacement. Given
//! `bins + class * 16`, LLVM folds the index into the load (`mov (%rcx,%rdx,1)`) and adds it
//! before the store (`mov %rax,(%rcx)`), so the pair no longer matches and every `malloc` waits
//! for ordinary store forwarding. A C model of the loop measured the difference on this machine:
//! 7.4 TSC ticks per `malloc` with the indexed load against 4.2 with both through one register
//! (benches/c/phases.c under LD_PRELOAD).
//!
//! [`in_register`] computes an address into a register the compiler must then use as it is, so
//! every access to that structure is `disp(%reg)`.
//!
//! [`opaque_usize`] does the same for an integer, so that a bound test of it is compiled as
//! written (heapkit-slab's chunk map).

/// Returns `ptr` unchanged, after making the compiler hold it in one register: loads and stores
/// through the result use that register as their base, with no index folded in (see the module
/// docs for why a fast path cares).
///
/// Costs nothing at run time (an empty `asm!` that reads and writes one register). Under Miri,
/// and on targets other than x86-64, it is the identity.
#[inline(always)]
pub fn in_register<T>(ptr: *mut T) -> *mut T {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        let mut ptr = ptr;
        // `nomem` is the truth here: the template never dereferences the pointer, it only has
        // to receive it in a register (which is what the lint cannot know).
        #[allow(clippy::pointers_in_nomem_asm_block)]
        // SAFETY: the template is empty: it reads and writes no memory, changes no flags and
        // leaves the register holding `ptr` as it was, so the pointer (and its provenance) is
        // the one passed in.
        unsafe {
            core::arch::asm!(
                "/* {0} */",
                inout(reg) ptr,
                options(pure, nomem, nostack, preserves_flags)
            )
        };
        ptr
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        ptr
    }
}

/// Returns `value` unchanged, after making the compiler hold it in a register as it is: a test
/// of it is then compiled as written, not folded back into a test of whatever it was computed
/// from (LLVM turns `(a >> k) < n` into `a < n << k`, which on x86-64 needs a 64-bit constant
/// loaded first). Costs nothing at run time; the identity under Miri and off x86-64.
#[inline(always)]
pub fn opaque_usize(value: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        let mut value = value;
        // SAFETY: the template is empty: it reads and writes no memory, changes no flags and
        // leaves the register holding `value` as it was.
        unsafe {
            core::arch::asm!(
                "/* {0} */",
                inout(reg) value,
                options(pure, nomem, nostack, preserves_flags)
            )
        };
        value
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::{in_register, opaque_usize};

    #[test]
    fn opaque_usize_is_the_identity() {
        for value in [0, 1, 0xfffff, 1 << 20, usize::MAX] {
            assert_eq!(opaque_usize(value), value);
        }
    }

    #[test]
    fn in_register_is_the_identity() {
        let mut words = [1u64, 2, 3];
        let base = words.as_mut_ptr();
        for index in 0..words.len() {
            // SAFETY: `index` is within `words`.
            let slot = in_register(unsafe { base.add(index) });
            assert_eq!(slot, base.wrapping_add(index));
            // SAFETY: `slot` points into `words`, with the provenance of `base`.
            unsafe { *slot += 10 };
        }
        assert_eq!(words, [11, 12, 13]);
    }
}
