//! heapkit-bins: being written.
