#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with the Swift toolchain (run as root):
# installs what is missing, builds once (debug), then runs every layer:
#   1. generated protobuf code is current (scripts/generate-proto.sh --check)
#   2. Swift tests: core, framing, real nodes over loopback (swift test)
#   3. process level: Python grpcio interop and raw-HTTP/2 robustness against aerocache-node
#   4. fault tests, quick (scripts/fault-tests.sh --quick): kill -9, SIGSTOP, clock jumps and a partition
#      during writes, judged by aerocache-check
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
need_packages libnghttp2-dev libjemalloc-dev pkg-config iproute2
python3 -c 'import venv, ensurepip' 2>/dev/null || missing_packages+=(python3-venv)
install_needed

echo "== generated code"
scripts/generate-proto.sh --check

echo "== build"
swift build --build-tests

echo "== swift tests"
swift test --skip-build

echo "== interop and robustness (grpcio, h2) against .build/debug/aerocache-node"
scripts/interop-test.sh .build/debug/aerocache-node --ignore=Tests/interop/test_faults.py

echo "== fault tests (quick): aerocache-check judges what a fault did to acknowledged writes"
scripts/fault-tests.sh --quick .build/debug
