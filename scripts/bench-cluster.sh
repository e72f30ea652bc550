#!/usr/bin/env bash
# Replication cost, measured: aerocache-bench through one node of a 3-node cluster (N = 3,
# quorum writes) against a single node of the same release build, in the same run.
#
#   scripts/bench-cluster.sh [ROUNDS] [SECONDS]      (default 3 rounds of 5 s; medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for package in libnghttp2-dev libjemalloc-dev; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
if ((${#missing[@]})); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; fi
swift build -c release >/dev/null
exec python3 scripts/bench_cluster.py --bin .build/release --rounds "${1:-3}" --seconds "${2:-5}"
