#!/usr/bin/env bash
# AeroCache against Redis on this machine, in one run: one node through the client against one
# Redis; 3 and 5 nodes (N = 3, quorum Set) against a Redis Cluster of 3 masters + 3 replicas;
# h2load against one node of 5 against a single node (clients that do not route).
#
#   scripts/bench-vs-redis.sh [ROUNDS] [SECONDS]      (default 3 rounds of 5 s; medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_command redis-server redis-server
need_command redis-benchmark redis-tools
need_command redis-cli redis-tools
need_command h2load nghttp2-client
need_packages libnghttp2-dev libjemalloc-dev
install_needed
swift build -c release >/dev/null
exec python3 scripts/bench_vs_redis.py --bin .build/release --rounds "${1:-3}" --seconds "${2:-5}"
