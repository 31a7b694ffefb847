#!/bin/bash
# Instructions per alloc+free pair (callgrind, start-up subtracted): runs the `pair` example at
# N and 2N iterations for each allocator and mode and prints (Ir(2N) - Ir(N)) / N.
# Usage (from the workspace root): benches/examples/pair-instr.sh [size_bytes]
set -eu
size=${1:-32}
cargo build --release -p heapkit-benches --example pair >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/examples/pair
N=200000
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" "$size" 2>&1 \
  | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
for a in heapkit mimalloc jemalloc system; do
  for m in hot lifo fifo; do
    one=$(ir $a $m $N); two=$(ir $a $m $((2 * N)))
    printf '%-9s %-5s %6.1f instr/pair\n' "$a" "$m" "$(echo "($two - $one) / $N" | bc -l)"
  done
done
