#!/usr/bin/env bash
# Memory, side by side with Redis (release builds, this machine, same run):
#  1. bytes of resident memory per entry beyond the payload, 1M entries of 16-byte keys and
#     100-byte values, for aerocache-node and redis-server;
#  2. a node with --max-memory 64MiB while a writer pushes over 1 GiB through it: the
#     accounted memory against the bound, and resident memory;
#  3. the storage engine alone: ns per get and per set with 1M keys on 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_command redis-server redis-server
need_command redis-cli redis-tools
need_packages libnghttp2-dev libjemalloc-dev
install_needed
swift build -c release >/dev/null
exec python3 scripts/bench_memory.py --bin .build/release
