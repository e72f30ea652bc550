#!/usr/bin/env python3
"""Drives scripts/bench-rebalance.sh: a 4th node joins 3 (N = 3) holding KEYS keys of 100 B.

1. Baseline: a Get load through node-0 (aerocache-bench, 50 in flight) for GET_SECONDS.
2. The same load again, with node-3 started 1 s in: it streams its ranges at --stream-rate
   (default 8 MiB/s) and turns up. The join's time runs from its start until node-0 sees it
   `up`; the share it took is its keys against the ideal (3/4 of the keys: N copies over 4 nodes).
3. The copies once the old owners dropped what they lost: exactly N per key.

Run with the release build; figures are for the README.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, run_bench, wait_port

SECRET_FILE = os.path.join(tempfile.mkdtemp(), "cluster-secret")
with open(SECRET_FILE, "w") as secret_file:
    secret_file.write(os.urandom(24).hex())


class Cluster:
    def __init__(self, bin_dir, nodes, started):
        self.bin_dir = bin_dir
        self.ports = [free_port() for _ in range(nodes)]
        self.processes = {}
        for index in range(started):
            self.start(index)
        self.wait(lambda: sum(n["state"] == "up" for n in self.status().values()) == started, 30, "every node up")

    def start(self, index):
        seeds = [] if index == 0 else ["--seeds", f"127.0.0.1:{self.ports[0]}"]
        self.processes[index] = subprocess.Popen([
            f"{self.bin_dir}/aerocache-node", "--listen", f"127.0.0.1:{self.ports[index]}", "--node-id", f"node-{index}",
            "--cluster-secret-file", SECRET_FILE, "--log-level", "warning", "--max-memory", "4GiB", *seeds])
        wait_port(self.ports[index])

    def ctl(self, *args, via=0):
        result = subprocess.run([f"{self.bin_dir}/aerocachectl", "--endpoints", f"127.0.0.1:{self.ports[via]}", *args],
                                capture_output=True, timeout=600)
        if result.returncode != 0:
            sys.exit(f"aerocachectl {' '.join(args)}: {result.stderr.decode().strip()}")
        return result.stdout.decode()

    def status(self, via=0):
        return {node["id"]: node for node in json.loads(self.ctl("status", "--json", via=via))["nodes"]}

    def keys(self, index):
        return self.status(via=index)[f"node-{index}"]["keys"]

    @staticmethod
    def wait(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return time.monotonic()
            time.sleep(0.2)
        sys.exit(f"not within {timeout}s: {what}")

    def stop(self):
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--get-seconds", type=int, default=15)
    args = parser.parse_args()
    cluster = Cluster(args.bin, 4, 3)
    try:
        subprocess.run([f"{args.bin}/aerocache-bench", "--endpoints", f"127.0.0.1:{cluster.ports[0]}",
                        "--keys", str(args.keys), "--value-size", "100", "--concurrency", "50", "--mix", "set=100",
                        "--consistency", "quorum", "--prefill", "--duration", "0"], check=True, stdout=subprocess.DEVNULL)
        cluster.wait(lambda: all(cluster.keys(i) == args.keys for i in range(3)), 120, f"{args.keys} keys on each node")

        baseline = run_bench(args.bin, cluster.ports[0], "get", args.get_seconds, keys=args.keys, value_size=100,
                             concurrency=50)
        joined = {}

        def join():
            time.sleep(1)  # the bench's warmup
            started = time.monotonic()
            cluster.start(3)
            cluster.wait(lambda: cluster.status().get("node-3", {}).get("state") == "up", 300, "node-3 up")
            joined["seconds"] = time.monotonic() - started

        joiner = threading.Thread(target=join)
        joiner.start()
        during = run_bench(args.bin, cluster.ports[0], "get", args.get_seconds, keys=args.keys, value_size=100,
                           concurrency=50)
        joiner.join()
        moved = cluster.keys(3)
        streamed = cluster.status(via=3)["node-3"]["streaming"]
        # The old owners drop what they lost 10 s after node-3 is up everywhere.
        cluster.wait(lambda: sum(cluster.keys(i) for i in range(4)) == 3 * args.keys, 120, "exactly N copies")
    finally:
        cluster.stop()
    ideal = args.keys * 3 / 4
    ratio = during["ops_per_sec"] / baseline["ops_per_sec"]
    print(json.dumps({"join_seconds": joined["seconds"], "moved_copies": moved, "ideal": ideal,
                      "streamed": streamed, "get_baseline": baseline["ops_per_sec"], "get_during": during["ops_per_sec"],
                      "p99_baseline_us": baseline["latency_us"]["p99"], "p99_during_us": during["latency_us"]["p99"]},
                     indent=2))
    print(f"\na 4th node joins 3 (N = 3) holding {args.keys:,} keys of 100 B, --stream-rate 8MiB (default):")
    print(f"  joined (started -> up in node-0's view) in {joined['seconds']:.1f} s (target <= 60 s); "
          f"streamed {streamed['bytes'] / 1_048_576:.1f} MiB over {streamed['ranges_total']} ranges")
    print(f"  copies moved to it: {moved:,} against the ideal {ideal:,.0f} = {moved / ideal:.3f}x (target within 10%)")
    print(f"  Get through node-0, 50 in flight, {args.get_seconds} s with the join running from 1 s in: "
          f"{during['ops_per_sec']:,.0f}/s (p99 {during['latency_us']['p99']} us) against {baseline['ops_per_sec']:,.0f}/s "
          f"(p99 {baseline['latency_us']['p99']} us) without = {ratio:.2f}x (target >= 0.70)"
          + ("" if joined["seconds"] >= args.get_seconds - 1 else
             f"; the join ended {args.get_seconds - 1 - joined['seconds']:.1f} s before the Gets did"))
    print(f"  afterwards exactly {3 * args.keys:,} copies on 4 nodes (the old owners dropped what they lost)")


if __name__ == "__main__":
    main()
