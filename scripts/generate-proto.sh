#!/usr/bin/env bash
# Regenerates Sources/AeroCacheProto from proto/ with protoc and protoc-gen-swift.
#
#   scripts/generate-proto.sh          regenerate (commit the result)
#   scripts/generate-proto.sh --check  exit 1 when the committed code is stale
#
# The generated Swift is committed so that builds never need protoc or the plugin.
# generated-from.sha256 records the inputs (proto files + swift-protobuf version), which
# lets the test suite notice an edited .proto that was not regenerated without building
# the plugin.
set -euo pipefail
cd "$(dirname "$0")/.."

out=Sources/AeroCacheProto
protos=(aerocache/v1/cache.proto aerocache/v1/admin.proto aerocache/v1/peer.proto grpc/health/v1/health.proto)
protobuf_version=$(sed -n 's/.*swift-protobuf.git", exact: "\([0-9.]*\)".*/\1/p' Package.swift)

fingerprint() {
  { echo "swift-protobuf $protobuf_version"; for p in "${protos[@]}"; do sha256sum "proto/$p"; done; } | sha256sum | cut -d' ' -f1
}

if [[ "${1:-}" == "--check" ]]; then
  if [[ "$(cat "$out/generated-from.sha256")" != "$(fingerprint)" ]]; then
    echo "generated protobuf code is stale: run scripts/generate-proto.sh and commit the result" >&2
    exit 1
  fi
  echo "generated protobuf code matches proto/"
  exit 0
fi

source scripts/lib.sh
need_command protoc protobuf-compiler
install_needed
swift build -c release --product protoc-gen-swift --scratch-path .build-protoc
plugin=.build-protoc/release/protoc-gen-swift
rm -f "$out"/*.pb.swift
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
  --swift_out="$out" -I proto "${protos[@]}"
fingerprint > "$out/generated-from.sha256"
echo "generated: $(ls "$out"/*.pb.swift | tr '\n' ' ')"
