#!/bin/bash
# Peak RSS per allocator and workload, each in a fresh process. From the workspace root:
# crates/heapkit/examples/rss.sh
set -eu
cargo build --release -p heapkit --no-default-features --features std --example rss >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/examples/rss
for w in batch producer_consumer larson; do
  for a in heapkit mimalloc jemalloc system; do "$bin" "$a" "$w"; done
done
