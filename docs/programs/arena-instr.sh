#!/bin/bash
# Instructions per `alloc([u64; 2])` call (callgrind, start-up subtracted): runs
# `arena instr N` and `arena instr 2N` (and the bumpalo twin) and prints (Ir(2N) - Ir(N)) / N.
# Chunk refills are included (a new chunk every few thousand calls), as in real use.
# Usage (from the workspace root): docs/programs/arena-instr.sh
set -eu
cd "$(dirname "$0")"
# The target folder comes from .cargo/config.toml (target/docs-programs) unless CARGO_TARGET_DIR is set.
cargo build --release --quiet --bin arena
bin=${CARGO_TARGET_DIR:-../../target/docs-programs}/release/arena
N=1000000
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
  | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
for mode in instr instr-bumpalo; do
  one=$(ir $mode $N); two=$(ir $mode $((2 * N)))
  printf '%-14s %6.2f instructions per alloc([u64; 2])\n' "$mode" "$(echo "($two - $one) / $N" | bc -l)"
done
