#!/usr/bin/env python3
"""Drives scripts/bench-tls.sh: what TLS costs one node's Get throughput, in one run, plaintext
and TLS alternating round by round, medians reported.

Each round starts a fresh node (plaintext, then TLS with a certificate from
cluster/configs/make-certificates.sh), fills 100,000 keys of 100 bytes, and runs
aerocache-bench Get at 50 in flight through the client; then h2load, 50 streams on one
connection, Gets one key (the wire alone, without the client's cost). CPU per call counts the
load generator and the node.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchlib import free_port, wait_port  # noqa: E402
from bench_vs_redis import children_cpu, cpu_seconds  # noqa: E402

KEYS, CONCURRENCY, VALUE = 100_000, 50, 100
WORK = tempfile.mkdtemp(prefix="bench-tls-")
CERTIFICATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster", "configs", "make-certificates.sh")


def start_node(bin_dir, tls):
    port = free_port()
    flags = ["--tls-cert", f"{WORK}/127.0.0.1/node.pem", "--tls-key", f"{WORK}/127.0.0.1/node.key"] if tls else []
    process = subprocess.Popen([f"{bin_dir}/aerocache-node", "--listen", f"127.0.0.1:{port}", "--log-level", "warning", *flags])
    wait_port(port)
    return port, process


def bench(bin_dir, port, tls, seconds, prefill=False):
    report = os.path.join(WORK, "bench.json")
    args = [f"{bin_dir}/aerocache-bench", "--endpoints", f"127.0.0.1:{port}", "--keys", str(KEYS), "--value-size", str(VALUE),
            "--concurrency", str(CONCURRENCY), "--mix", "get=100", "--duration", f"{seconds}s", "--warmup", "1s", "--json", report]
    if tls:
        args += ["--tls-ca", f"{WORK}/ca.pem"]
    if prefill:
        args += ["--prefill", "--duration", "0"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    if prefill:
        return None
    with open(report) as f:
        document = json.load(f)
    if document["errors"] or document["hit_ratio"] < 0.999:
        sys.exit(f"aerocache-bench: {document['errors']} errors, hit ratio {document['hit_ratio']}")
    return document["ops_per_sec"], document["latency_us"]["p50"], document["latency_us"]["p99"]


def h2load(port, tls, requests, pid):
    key = "key-00000001"
    message = bytes([1 << 3 | 2, len(key)]) + key.encode()
    body = os.path.join(WORK, "get.bin")
    with open(body, "wb") as f:
        f.write(b"\x00" + len(message).to_bytes(4, "big") + message)
    before = children_cpu() + cpu_seconds([pid])
    out = subprocess.run(["h2load", "-n", str(requests), "-c", "1", "-m", "50", "-t", "1", "-d", body,
                          "-H", "content-type: application/grpc", "-H", "te: trailers",
                          f"{'https' if tls else 'http'}://127.0.0.1:{port}/aerocache.v1.Cache/Get"],
                         check=True, capture_output=True, text=True).stdout
    cpu = children_cpu() + cpu_seconds([pid]) - before
    if f"{requests} succeeded" not in out:
        sys.exit(f"h2load: not every request succeeded\n{out}")
    return float(out.split("req/s")[0].split(",")[-1].strip()), cpu / requests * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--h2load-requests", type=int, default=200_000)
    args = parser.parse_args()
    subprocess.run([CERTIFICATES, WORK, "127.0.0.1"], check=True, capture_output=True)
    results = {False: [], True: []}
    for round_number in range(args.rounds):
        print(f"round {round_number + 1}")
        for tls in (False, True) if round_number % 2 == 0 else (True, False):
            port, process = start_node(args.bin, tls)
            try:
                bench(args.bin, port, tls, 0, prefill=True)
                ops, p50, p99 = bench(args.bin, port, tls, args.seconds)
                wire, cpu = h2load(port, tls, args.h2load_requests, process.pid)
            finally:
                process.terminate()
                process.wait(timeout=15)
            results[tls].append((ops, p50, p99, wire, cpu))
            print(f"  {'tls  ' if tls else 'plain'}: client Get {ops:,.0f}/s p50 {p50:.0f} p99 {p99:.0f} µs | "
                  f"h2load {wire:,.0f}/s, {cpu:.1f} µs CPU per call")
    ratios = [t[0] / p[0] for p, t in zip(results[False], results[True])]
    wire_ratios = [t[3] / p[3] for p, t in zip(results[False], results[True])]

    def median(tls, column):
        return statistics.median(r[column] for r in results[tls])
    print(f"\nmedians of {args.rounds} alternating rounds, one node, 100,000 keys of 100 bytes, 50 in flight")
    print("| | plaintext | TLS | TLS / plaintext |")
    print("|---|---|---|---|")
    print(f"| Get through the client (aerocache-bench), ops/s | {median(False, 0):,.0f} | {median(True, 0):,.0f} | "
          f"**{statistics.median(ratios):.2f}×** (rounds {', '.join(f'{r:.2f}' for r in ratios)}) |")
    print(f"| p50 / p99 µs | {median(False, 1):.0f} / {median(False, 2):.0f} | {median(True, 1):.0f} / {median(True, 2):.0f} | |")
    print(f"| Get by h2load (one connection, 50 streams), req/s | {median(False, 3):,.0f} | {median(True, 3):,.0f} | "
          f"{statistics.median(wire_ratios):.2f}× |")
    print(f"| h2load + node CPU µs per call | {median(False, 4):.1f} | {median(True, 4):.1f} | |")


if __name__ == "__main__":
    main()
