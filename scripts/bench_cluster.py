#!/usr/bin/env python3
"""Drives scripts/bench-cluster.sh: one node against three (N = 3, quorum writes), same build, same run."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, run_bench  # noqa: E402

CONCURRENCY = 50




SECRET_FILE = os.path.join(tempfile.mkdtemp(), "cluster-secret")
with open(SECRET_FILE, "w") as secret:
    secret.write(os.urandom(24).hex())


def start(bin_dir, ports, index):
    seeds = [] if index == 0 else ["--seeds", f"127.0.0.1:{ports[0]}"]
    return subprocess.Popen([f"{bin_dir}/aerocache-node", "--listen", f"127.0.0.1:{ports[index]}", "--node-id", f"node-{index}",
                             "--cluster-secret-file", SECRET_FILE, "--log-level", "warning", *seeds])


def wait_up(bin_dir, port, count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = subprocess.run([f"{bin_dir}/aerocachectl", "--endpoints", f"127.0.0.1:{port}", "status", "--json"],
                                capture_output=True)
        if result.returncode == 0 and sum(n["state"] == "up" for n in json.loads(result.stdout)["nodes"]) == count:
            return
        time.sleep(0.2)
    sys.exit(f"{count} nodes not up within {timeout}s")


def bench(bin_dir, port, op, seconds, prefill=False):
    document = run_bench(bin_dir, port, op, seconds, keys=100_000, value_size=100, concurrency=CONCURRENCY,
                         prefill=prefill, consistency="quorum" if op == "set" else None)
    return document["ops_per_sec"], document["latency_us"]["p50"], document["latency_us"]["p99"]


def start_cluster(bin_dir, nodes):
    """Starts `nodes` nodes joined into one cluster; returns (first port, processes)."""
    ports = [free_port() for _ in range(nodes)]
    processes = []
    for index in range(nodes):
        processes.append(start(bin_dir, ports, index))
        if index == 0:
            wait_up(bin_dir, ports[0], 1)
    wait_up(bin_dir, ports[0], nodes)
    return ports[0], processes


def run(bin_dir, rounds, seconds):
    """Both setups run side by side (idle nodes cost next to nothing) and are measured in
    alternation, so a drift in the machine's speed falls on both alike."""
    processes = []
    try:
        single, started = start_cluster(bin_dir, 1)
        processes += started
        cluster, started = start_cluster(bin_dir, 3)
        processes += started
        results = {setup: {"set": [], "get": []} for setup in ("single", "cluster")}
        for port in (single, cluster):
            bench(bin_dir, port, "set", 1, prefill=True)
        for round_index in range(rounds):
            order = [("single", single), ("cluster", cluster)]
            if round_index % 2:
                order.reverse()
            for op in ("set", "get"):
                for setup, port in order:
                    results[setup][op].append(bench(bin_dir, port, op, seconds))
        return results["single"], results["cluster"]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    global CONCURRENCY
    CONCURRENCY = args.concurrency
    single, cluster = run(args.bin, args.rounds, args.seconds)
    med = statistics.median
    print("| op | 1 node ops/s (p50/p99 µs) | 3 nodes, N=3 ops/s (p50/p99 µs) | ratio | target |")
    print("|---|---|---|---|---|")
    ratios = {}
    for op, target in (("set", ">= 0.5x (quorum)"), ("get", ">= 0.9x")):
        one, three = single[op], cluster[op]
        ratio = med(x[0] for x in three) / med(x[0] for x in one)
        ratios[op] = ratio
        print(f"| {op} | {med(x[0] for x in one):,.0f} ({med(x[1] for x in one):.0f}/{med(x[2] for x in one):.0f}) | "
              f"{med(x[0] for x in three):,.0f} ({med(x[1] for x in three):.0f}/{med(x[2] for x in three):.0f}) | "
              f"{ratio:.2f}x | {target} |")
    for op in ("set", "get"):
        paired = [three[0] / one[0] for one, three in zip(single[op], cluster[op])]
        print(f"{op} ratio per round (paired runs): {', '.join(f'{r:.2f}' for r in paired)}")
    ok = ratios["set"] >= 0.5 and ratios["get"] >= 0.9
    print(f"\ncluster ratios (median of {args.rounds}, through one node, c={CONCURRENCY}, 100k keys, 100 B): quorum set "
          f"{ratios['set']:.2f}x, get {ratios['get']:.2f}x of one node -> {'all targets met' if ok else 'TARGET MISSED'}")


if __name__ == "__main__":
    main()
