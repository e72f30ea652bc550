#!/usr/bin/env bash
# Process-level tests with standard gRPC clients: Python grpcio (client code generated from
# proto/ here) for interop, python-hyper h2 on raw sockets for hostile and broken clients.
#
#   scripts/interop-test.sh [PATH_TO_aerocache-node [PYTEST_ARGS...]]   (default: .build/debug/aerocache-node)
set -euo pipefail
cd "$(dirname "$0")/.."

node_bin=$(realpath "${1:-.build/debug/aerocache-node}")
venv=.venv-interop
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check \
  grpcio==1.85.1 grpcio-tools==1.85.1 grpcio-health-checking==1.85.1 h2==4.4.1 xxhash==3.6.0 pyyaml==6.0.2 pytest

gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I proto --python_out="$gen" --grpc_python_out="$gen" aerocache/v1/cache.proto aerocache/v1/admin.proto aerocache/v1/peer.proto

# Extra arguments go to pytest; naming test files (Tests/interop/test_x.py) runs just those.
targets=(Tests/interop)
for arg in "${@:2}"; do [[ $arg == Tests/* ]] && targets=(); done
AEROCACHE_NODE=$node_bin AEROCACHE_CTL=$(dirname "$node_bin")/aerocachectl AEROCACHE_PYGEN=$gen "$venv/bin/python" -m pytest -q -p no:cacheprovider "${targets[@]}" "${@:2}"
