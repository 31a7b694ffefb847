//! Bridges to the allocator traits of other crates: `allocator_api2::alloc::Allocator` of
//! allocator-api2 0.2 and of 0.4, and nightly's `core::alloc::Allocator`.
//!
//! The orphan rule forbids one blanket `impl<A: heapkit_core::Allocator> allocator_api2::...
//! for A`, so each crate invokes [`impl_foreign_allocators!`] for its own types. The macro's
//! output is guarded by `#[cfg(feature = "allocator-api2-02")]`,
//! `#[cfg(feature = "allocator-api2-04")]` and `#[cfg(feature = "nightly")]`, which are evaluated
//! in the *invoking* crate: each crate declares those features and forwards them to
//! heapkit-core's (`allocator-api2` is the older name of `allocator-api2-02`).
//!
//! The two allocator-api2 versions have the same `Allocator` trait (0.4 adds an impl for
//! `&mut A` and drops the `nightly` re-export of `core`'s); they are different traits to the
//! compiler, so a type implements each one that is enabled.

/// Implements `allocator_api2::alloc::Allocator` of allocator-api2 0.2 (feature
/// `allocator-api2-02`, also named `allocator-api2`) and of 0.4 (feature `allocator-api2-04`) and
/// `core::alloc::Allocator` (feature `nightly`) for a type that implements
/// [`heapkit_core::Allocator`](crate::Allocator), by forwarding every method.
///
/// ```ignore
/// heapkit_core::impl_foreign_allocators!(impl[P: PageSource] for Slab<P>);
/// heapkit_core::impl_foreign_allocators!(impl[] for Arena);
/// ```
#[macro_export]
macro_rules! impl_foreign_allocators {
    (impl[$($g:tt)*] for $t:ty) => {
        #[cfg(feature = "allocator-api2-02")]
        $crate::__impl_one_foreign_allocator!(
            [$($g)*] $t, $crate::__private::allocator_api2_02::alloc::Allocator,
            $crate::__private::allocator_api2_02::alloc::AllocError
        );
        #[cfg(feature = "allocator-api2-04")]
        $crate::__impl_one_foreign_allocator!(
            [$($g)*] $t, $crate::__private::allocator_api2_04::alloc::Allocator,
            $crate::__private::allocator_api2_04::alloc::AllocError
        );
        #[cfg(feature = "nightly")]
        $crate::__impl_one_foreign_allocator!(
            [$($g)*] $t, ::core::alloc::Allocator, ::core::alloc::AllocError
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_one_foreign_allocator {
    ([$($g:tt)*] $t:ty, $trait:path, $err:path) => {
        // SAFETY: every method forwards to heapkit's `Allocator`, whose contract is the same as
        // this trait's (it was shaped after it), including zero-size layouts.
        unsafe impl<$($g)*> $trait for $t {
            #[inline(always)]
            fn allocate(
                &self,
                layout: ::core::alloc::Layout,
            ) -> ::core::result::Result<::core::ptr::NonNull<[u8]>, $err> {
                <Self as $crate::Allocator>::allocate(self, layout).map_err(|_| $err)
            }
            #[inline]
            fn allocate_zeroed(
                &self,
                layout: ::core::alloc::Layout,
            ) -> ::core::result::Result<::core::ptr::NonNull<[u8]>, $err> {
                <Self as $crate::Allocator>::allocate_zeroed(self, layout).map_err(|_| $err)
            }
            #[inline(always)]
            unsafe fn deallocate(&self, ptr: ::core::ptr::NonNull<u8>, layout: ::core::alloc::Layout) {
                // SAFETY: the caller's promise is the same under both traits.
                unsafe { <Self as $crate::Allocator>::deallocate(self, ptr, layout) }
            }
            #[inline]
            unsafe fn grow(
                &self,
                ptr: ::core::ptr::NonNull<u8>,
                old_layout: ::core::alloc::Layout,
                new_layout: ::core::alloc::Layout,
            ) -> ::core::result::Result<::core::ptr::NonNull<[u8]>, $err> {
                // SAFETY: the caller's promise is the same under both traits.
                unsafe { <Self as $crate::Allocator>::grow(self, ptr, old_layout, new_layout) }
                    .map_err(|_| $err)
            }
            #[inline]
            unsafe fn grow_zeroed(
                &self,
                ptr: ::core::ptr::NonNull<u8>,
                old_layout: ::core::alloc::Layout,
                new_layout: ::core::alloc::Layout,
            ) -> ::core::result::Result<::core::ptr::NonNull<[u8]>, $err> {
                // SAFETY: the caller's promise is the same under both traits.
                unsafe { <Self as $crate::Allocator>::grow_zeroed(self, ptr, old_layout, new_layout) }
                    .map_err(|_| $err)
            }
            #[inline]
            unsafe fn shrink(
                &self,
                ptr: ::core::ptr::NonNull<u8>,
                old_layout: ::core::alloc::Layout,
                new_layout: ::core::alloc::Layout,
            ) -> ::core::result::Result<::core::ptr::NonNull<[u8]>, $err> {
                // SAFETY: the caller's promise is the same under both traits.
                unsafe { <Self as $crate::Allocator>::shrink(self, ptr, old_layout, new_layout) }
                    .map_err(|_| $err)
            }
        }
    };
}

crate::impl_foreign_allocators!(impl[A: crate::Allocator] for crate::Locked<A>);
crate::impl_foreign_allocators!(impl[A: crate::Allocator] for crate::Counting<A>);
crate::impl_foreign_allocators!(impl[G: core::alloc::GlobalAlloc] for crate::FromGlobal<G>);
