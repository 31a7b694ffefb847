//! heapkit-bump: being written.
