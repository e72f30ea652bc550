#!/usr/bin/env python3
"""Drives scripts/bench-vs-redis.sh: alternating rounds, medians, ratios."""
import argparse
import statistics
import subprocess
import sys
import time

from benchlib import free_port, run_bench, wait_port  # noqa: E402

KEYS, CONCURRENCY, VALUE = 100_000, 50, 100






def aerocache(bin_dir, port, op, seconds, prefill=False):
    document = run_bench(bin_dir, port, op, seconds, keys=KEYS, value_size=VALUE, concurrency=CONCURRENCY, prefill=prefill)
    if op == "get" and document["hit_ratio"] < 0.999:
        sys.exit(f"aerocache-bench get: hit ratio {document['hit_ratio']}")
    return document["ops_per_sec"], document["latency_us"]["p50"], document["latency_us"]["p99"], document["bench_cpu_us_per_op"]


def redis(port, op, seconds, rate_hint):
    requests = max(int(rate_hint * seconds), 100_000)
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(CONCURRENCY), "-P", "1", "-n", str(requests),
                          "-r", str(KEYS), "-d", str(VALUE), "-t", op, "--csv"],
                         check=True, capture_output=True, text=True).stdout
    header, row = [line for line in out.splitlines() if line.strip()][:2]
    columns = [c.strip('"') for c in header.split(",")]
    values = dict(zip(columns, [v.strip('"') for v in row.split(",")]))
    return float(values["rps"]), float(values["p50_latency_ms"]) * 1000, float(values["p99_latency_ms"]) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    node_port, redis_port = free_port(), free_port()
    node = subprocess.Popen([f"{args.bin}/aerocache-node", "--listen", f"127.0.0.1:{node_port}", "--log-level", "warning"])
    server = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                               "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    results = {op: {"aero": [], "redis": []} for op in ("get", "set")}
    try:
        wait_port(node_port)
        wait_port(redis_port)
        # Both stores hold every key before the first Get round.
        aerocache(args.bin, node_port, "set", 1, prefill=True)
        redis(redis_port, "set", 1, KEYS * 3)
        for round_number in range(args.rounds):
            for op in ("get", "set"):
                a = aerocache(args.bin, node_port, op, args.seconds)
                r = redis(redis_port, op, args.seconds, a[0])
                results[op]["aero"].append(a)
                results[op]["redis"].append(r)
                print(f"round {round_number + 1} {op}: aerocache {a[0]:,.0f}/s p50 {a[1]} µs p99 {a[2]} µs "
                      f"(bench CPU {a[3]:.1f} µs/op) | redis {r[0]:,.0f}/s p50 {r[1]:.0f} µs p99 {r[2]:.0f} µs", flush=True)
    finally:
        for process in (node, server):
            process.terminate()
            process.wait(timeout=15)

    med = statistics.median
    print("\n| op | aerocache ops/s | redis ops/s | ratio | aerocache p50 / p99 µs | redis p50 / p99 µs | p50 ratio | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    line = []
    for op in ("get", "set"):
        a, r = results[op]["aero"], results[op]["redis"]
        ops = med(x[0] for x in a) / med(x[0] for x in r)
        p50 = med(x[1] for x in a) / med(x[1] for x in r)
        p99 = med(x[2] for x in a) / med(x[2] for x in r)
        print(f"| {op} | {med(x[0] for x in a):,.0f} | {med(x[0] for x in r):,.0f} | {ops:.2f}x | "
              f"{med(x[1] for x in a):.0f} / {med(x[2] for x in a):.0f} | {med(x[1] for x in r):.0f} / {med(x[2] for x in r):.0f} | "
              f"{p50:.2f}x | {p99:.2f}x |")
        line.append(f"{op} {ops:.2f}x ops/s, p50 {p50:.2f}x, p99 {p99:.2f}x")
    print(f"\nratios vs redis (median of {args.rounds}, c={CONCURRENCY}, {KEYS} keys, {VALUE} B): " + "; ".join(line))


if __name__ == "__main__":
    main()
