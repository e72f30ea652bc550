#!/usr/bin/env bash
# aerocache-bench against one release aerocache-node and redis-benchmark against Redis, on this
# machine, in the same run: Get and Set at 50 in flight, 100k keys, 100-byte values.
#
#   scripts/bench-vs-redis.sh [ROUNDS] [SECONDS]      (default 3 rounds of 5 s; medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_command redis-server redis-server
need_command redis-benchmark redis-tools
need_packages libnghttp2-dev libjemalloc-dev
install_needed
swift build -c release >/dev/null
exec python3 scripts/bench_vs_redis.py --bin .build/release --rounds "${1:-3}" --seconds "${2:-5}"
