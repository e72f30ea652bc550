#!/usr/bin/env bash
# Anti-entropy, measured: 3 nodes (N = 3) holding 1M keys, with anti-entropy on (default
# interval) against the same cluster with --anti-entropy-interval 0, same release build, same
# run: bytes per range pair per round in sync, idle CPU, heal time of 100k divergent keys,
# and Get throughput during a heal.
#
#   scripts/bench-antientropy.sh [KEYS]      (default 1000000; takes about 10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages libnghttp2-dev libjemalloc-dev
install_needed
swift build -c release >/dev/null
exec python3 scripts/bench_antientropy.py --bin .build/release --keys "${1:-1000000}"
