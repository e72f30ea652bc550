#!/usr/bin/env bash
# Replication cost, measured: aerocache-bench through one node of a 3-node cluster (N = 3,
# quorum writes) against a single node of the same release build, in the same run.
#
#   scripts/bench-cluster.sh [ROUNDS] [SECONDS]      (default 3 rounds of 5 s; medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages libnghttp2-dev libjemalloc-dev
install_needed
swift build -c release >/dev/null
exec python3 scripts/bench_cluster.py --bin .build/release --rounds "${1:-3}" --seconds "${2:-5}"
