#!/usr/bin/env bash
# The wire, side by side with Redis: h2load against a release aerocache-node and
# redis-benchmark against redis-server, on this machine, in the same run, 100-byte values.
#
#   scripts/bench-transport.sh [ROUNDS]        (default 3; medians are reported)
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
need_command h2load nghttp2-client
need_command redis-server redis-server
need_command redis-benchmark redis-tools
need_packages libnghttp2-dev libjemalloc-dev
install_needed

swift build -c release --product aerocache-node >/dev/null
exec python3 scripts/bench_transport.py --node .build/release/aerocache-node --rounds "${1:-3}"
