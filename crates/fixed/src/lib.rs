//! heapkit-fixed: being written.
