#!/usr/bin/env bash
# A CA and one certificate per machine, for mutual TLS between nodes and TLS for clients:
#
#   cluster/configs/make-certificates.sh OUT_DIR 10.0.0.11 10.0.0.12 10.0.0.13
#
# Writes OUT_DIR/ca.pem (give it to every node and client), ca.key (keep it offline), and
# OUT_DIR/<address>/node.pem + node.key for each machine (its address as the subject
# alternative name; usable as server and client). Valid for a year.
set -euo pipefail
out=${1:?usage: make-certificates.sh OUT_DIR ADDRESS...}
shift
mkdir -p "$out"
cd "$out"
if [[ ! -s ca.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=aerocache-ca -keyout ca.key -out ca.pem 2>/dev/null
fi
for address in "$@"; do
  mkdir -p "$address"
  if [[ $address =~ ^[0-9.]+$|: ]]; then san="IP:$address"; else san="DNS:$address"; fi
  printf "subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n" "$san" >"$address/node.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$address" \
    -keyout "$address/node.key" -out "$address/node.csr" 2>/dev/null
  openssl x509 -req -in "$address/node.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
    -extfile "$address/node.ext" -out "$address/node.pem" 2>/dev/null
  rm -f "$address/node.csr" "$address/node.ext"
  echo "$out/$address/node.pem"
done
