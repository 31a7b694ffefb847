//! heapkit-tcache: being written.
