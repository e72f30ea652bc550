#!/usr/bin/env bash
# Fault-injection tests: real aerocache-node processes, a fault each (kill -9, restart empty...),
# and aerocache-check recording every outcome and verifying nothing acknowledged was lost.
# Each test prints a PASS line with its figures.
#
#   scripts/fault-tests.sh [--quick] [BIN_DIR] [PYTEST_ARGS...]   (BIN_DIR default: .build/debug)
#
# --quick (run by scripts/test.sh) leaves out the longer faults. BIN_DIR holds aerocache-node,
# aerocachectl and aerocache-check, already built. The tests run in a network namespace the
# script makes (root), so the partitions' nft rules touch only it.
set -euo pipefail

mode=full
bin_dir=
pytest_args=()
for arg in "$@"; do
  if [[ $arg == --quick ]]; then mode=quick
  elif [[ -z $bin_dir && ${#pytest_args[@]} -eq 0 && -d $arg ]]; then bin_dir=$(realpath "$arg")
  else pytest_args+=("$arg")
  fi
done
cd "$(dirname "$0")/.."
bin_dir=${bin_dir:-$(realpath .build/debug)}
for binary in aerocache-node aerocachectl aerocache-check; do
  [[ -x $bin_dir/$binary ]] || { echo "fault-tests: $bin_dir/$binary is missing (swift build first)" >&2; exit 2; }
done
started=$(date +%s)
run=(scripts/interop-test.sh "$bin_dir/aerocache-node" Tests/interop/test_faults.py -s "${pytest_args[@]}")
# The tests run in a network namespace of their own (its own loopback), where the partitions'
# nft rules touch nothing of the host's. The venv is made outside first (pip may need the network).
namespace=aerocache-faults-$$
if [[ $(id -u) == 0 ]]; then
  source scripts/lib.sh
  need_packages iproute2 nftables
  install_needed
  ip netns add "$namespace"
  trap 'ip netns pids "$namespace" 2>/dev/null | xargs -r kill -9; ip netns del "$namespace" 2>/dev/null || true' EXIT
  ip netns exec "$namespace" ip link set lo up
  scripts/interop-test.sh "$bin_dir/aerocache-node" Tests/interop/test_faults.py --collect-only -q >/dev/null
  AEROCACHE_FAULTS=$mode AEROCACHE_FAULTS_NETNS=$namespace ip netns exec "$namespace" "${run[@]}"
else
  echo "fault-tests: no network namespace (needs root): the partition tests are skipped"
  AEROCACHE_FAULTS=$mode "${run[@]}"
fi
echo "fault tests ($mode): $(( $(date +%s) - started )) s"
