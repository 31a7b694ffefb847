//! heapkit-slab: being written.
