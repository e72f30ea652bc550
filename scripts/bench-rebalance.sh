#!/usr/bin/env bash
# Ring changes, measured: a 4th node joins 3 (N = 3) holding 1M keys of 100 B, with a Get load
# through node-0, against the same load just before, same release build, same run: how long
# the join takes, the share of copies it moves against the ideal, and Get throughput during it.
#
#   scripts/bench-rebalance.sh [KEYS]      (default 1000000; takes about 5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages libnghttp2-dev libjemalloc-dev
install_needed
swift build -c release >/dev/null
exec python3 scripts/bench_rebalance.py --bin .build/release --keys "${1:-1000000}"
