#!/usr/bin/env python3
"""Drives scripts/bench-vs-redis.sh: AeroCache against Redis on this machine, in one run,
setups alternating round by round, medians reported.

1. one node (aerocache-bench through the client) against one Redis (redis-benchmark):
   Get and Set at 50 in flight, serial Get latency;
2. a 3-node and a 5-node AeroCache (N = 3, quorum Set) against a Redis Cluster of 3 masters
   and 3 replicas (redis-benchmark --cluster): Get and Set at 50 in flight;
3. clients that do not route: h2load (50 streams) against one node of the 5, against a
   single node, and the cluster's CPU per call for a key the node holds and one it forwards.

Each side's CPU per operation counts the load generator and every server process.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, wait_port  # noqa: E402

KEYS, CONCURRENCY, VALUE = 100_000, 50, 100
WORK = tempfile.mkdtemp(prefix="bench-vs-redis-")


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class AeroCluster:
    """`size` aerocache-node processes (N = 3), node-0 the seed of the others."""

    def __init__(self, bin_dir, size):
        self.bin_dir = bin_dir
        self.ports = [free_port() for _ in range(size)]
        secret = os.path.join(WORK, f"secret-{self.ports[0]}")
        with open(secret, "w") as f:
            f.write(os.urandom(24).hex())
        self.processes = []
        for index, port in enumerate(self.ports):
            seeds = ["--seeds", f"127.0.0.1:{self.ports[0]}"] if index else []
            self.processes.append(subprocess.Popen(
                [f"{bin_dir}/aerocache-node", "--listen", f"127.0.0.1:{port}", "--node-id", f"node-{index}",
                 "--cluster-secret-file", secret, "--log-level", "warning", *seeds]))
            if index == 0:
                self.wait_up(1)
        self.wait_up(size)

    @property
    def endpoints(self):
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @property
    def pids(self):
        return [process.pid for process in self.processes]

    def wait_up(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = subprocess.run([f"{self.bin_dir}/aerocachectl", "--endpoints", f"127.0.0.1:{self.ports[0]}",
                                     "status", "--json"], capture_output=True)
            if result.returncode == 0 and sum(n["state"] == "up" for n in json.loads(result.stdout)["nodes"]) == count:
                return
            time.sleep(0.2)
        sys.exit(f"{count} AeroCache nodes not up within {timeout}s")

    def owners(self, key):
        result = subprocess.run([f"{self.bin_dir}/aerocachectl", "--endpoints", f"127.0.0.1:{self.ports[0]}",
                                 "owners", key, "--json"], capture_output=True, check=True)
        return [owner["address"] for owner in json.loads(result.stdout)["owners"]]

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=15)


class Redis:
    """One Redis, or a Redis Cluster of 3 masters and 3 replicas."""

    def __init__(self, cluster=False):
        self.cluster = cluster
        self.ports = [free_port() for _ in range(6 if cluster else 1)]
        self.processes = []
        for port in self.ports:
            extra = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"] if cluster else []
            self.processes.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                 "--dir", WORK, *extra], stdout=subprocess.DEVNULL))
        for port in self.ports:
            wait_port(port)
        if cluster:
            subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                            "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True)
            deadline = time.monotonic() + 30
            while not all("cluster_state:ok" in subprocess.run(["redis-cli", "-p", str(p), "cluster", "info"],
                                                               capture_output=True, text=True).stdout
                          for p in self.ports):
                if time.monotonic() > deadline:
                    sys.exit("the Redis Cluster did not come up")
                time.sleep(0.2)

    @property
    def pids(self):
        return [process.pid for process in self.processes]

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=15)


def aerocache(bin_dir, cluster, op, seconds, concurrency=CONCURRENCY, prefill=False):
    """aerocache-bench through the client: (ops/s, p50 µs, p99 µs, CPU µs per op: bench + nodes; the bench's own during
    the run; the nodes')."""
    report = os.path.join(WORK, "aero.json")
    args = [f"{bin_dir}/aerocache-bench", "--endpoints", cluster.endpoints, "--keys", str(KEYS),
            "--value-size", str(VALUE), "--concurrency", str(concurrency), "--mix", f"{op}=100",
            "--duration", f"{seconds}s", "--warmup", "1s", "--json", report]
    if op == "set" and len(cluster.ports) > 1:
        args += ["--consistency", "quorum"]
    if prefill:
        args += ["--prefill", "--duration", "0"]
    before, nodes_before = children_cpu(), cpu_seconds(cluster.pids)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    nodes = cpu_seconds(cluster.pids) - nodes_before
    cpu = children_cpu() - before + nodes
    if prefill:
        return None
    with open(report) as f:
        document = json.load(f)
    if document["errors"]:
        sys.exit(f"aerocache-bench {op}: {document['errors']} errors: {document['errors_by_code']}")
    if op == "get" and document["hit_ratio"] < 0.999:
        sys.exit(f"aerocache-bench get: hit ratio {document['hit_ratio']}")
    total_ops = document["operations"] / document["config"]["duration_s"] * (document["config"]["duration_s"] + 1)
    return (document["ops_per_sec"], document["latency_us"]["p50"], document["latency_us"]["p99"], cpu / total_ops * 1e6,
            document["bench_cpu_us_per_op"], nodes / total_ops * 1e6)


def redis(server, op, seconds, rate_hint, clients=CONCURRENCY):
    """redis-benchmark: (ops/s, p50 µs, p99 µs, CPU µs per op: redis-benchmark + servers)."""
    requests = max(int(rate_hint * seconds), 20_000)
    cluster = ["--cluster"] if server.cluster else []
    before, servers_before = children_cpu(), cpu_seconds(server.pids)
    out = subprocess.run(["redis-benchmark", "-p", str(server.ports[0]), *cluster, "-c", str(clients), "-P", "1",
                          "-n", str(requests), "-r", str(KEYS), "-d", str(VALUE), "-t", op, "--csv"],
                         check=True, capture_output=True, text=True).stdout
    cpu = children_cpu() - before + cpu_seconds(server.pids) - servers_before
    lines = [line for line in out.splitlines() if line.strip()]
    header = next(line for line in lines if line.startswith('"test"'))
    row = next(line for line in lines if line.startswith(f'"{op.upper()}"'))
    columns = [c.strip('"') for c in header.split(",")]
    values = dict(zip(columns, [v.strip('"') for v in row.split(",")]))
    return float(values["rps"]), float(values["p50_latency_ms"]) * 1000, float(values["p99_latency_ms"]) * 1000, cpu / requests * 1e6


def h2load_get(port, key, requests, pids):
    """h2load Get of one key at 50 streams on one connection: (req/s, cluster CPU µs per call)."""
    message = bytes([1 << 3 | 2, len(key)]) + key.encode()
    body = os.path.join(WORK, f"get-{key}.bin")
    with open(body, "wb") as f:
        f.write(b"\x00" + len(message).to_bytes(4, "big") + message)
    before = cpu_seconds(pids)
    out = subprocess.run(["h2load", "-n", str(requests), "-c", "1", "-m", "50", "-t", "1", "-d", body,
                          "-H", "content-type: application/grpc", "-H", "te: trailers",
                          f"http://127.0.0.1:{port}/aerocache.v1.Cache/Get"],
                         check=True, capture_output=True, text=True).stdout
    cpu = cpu_seconds(pids) - before
    if f"{requests} succeeded" not in out:
        sys.exit(f"h2load: not every request succeeded\n{out}")
    rps = float(out.split("req/s")[0].split(",")[-1].strip())
    return rps, cpu / requests * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--h2load-requests", type=int, default=200_000)
    args = parser.parse_args()
    for tool in ("redis-server", "redis-benchmark", "redis-cli", "h2load"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing")

    running = []
    try:
        single, three, five = (AeroCluster(args.bin, n) for n in (1, 3, 5))
        running += [single, three, five]
        redis_single, redis_cluster = Redis(), Redis(cluster=True)
        running += [redis_single, redis_cluster]
        for cluster in (single, three, five):
            aerocache(args.bin, cluster, "set", 1, prefill=True)
        for server in (redis_single, redis_cluster):
            redis(server, "set", 1, KEYS * 3)
        # The h2load keys: one node-0 of the 5 holds, one it must forward.
        held = next(f"key-{i}" for i in range(1000) if five.owners(f"key-{i}")[0] == f"127.0.0.1:{five.ports[0]}")
        forwarded = next(f"key-{i}" for i in range(1000) if f"127.0.0.1:{five.ports[0]}" not in five.owners(f"key-{i}"))
        for key in (held, forwarded):
            subprocess.run([f"{args.bin}/aerocachectl", "--endpoints", single.endpoints, "set", key, "v" * VALUE],
                           check=True, capture_output=True)
            subprocess.run([f"{args.bin}/aerocachectl", "--endpoints", five.endpoints, "set", key, "v" * VALUE],
                           check=True, capture_output=True)

        rows = {}

        def add(name, aero, red):
            rows.setdefault(name, []).append((aero, red))
            print(f"  {name}: aerocache {aero[0]:,.0f}/s p50 {aero[1]:.0f} p99 {aero[2]:.0f} µs, {aero[3]:.1f} µs CPU/op "
                  f"({aero[4]:.1f} client) "
                  f"| redis {red[0]:,.0f}/s p50 {red[1]:.0f} p99 {red[2]:.0f} µs, {red[3]:.1f} µs CPU/op "
                  f"| {aero[0] / red[0]:.2f}x", flush=True)

        h2 = {"single": [], "held": [], "forwarded": []}
        for round_number in range(args.rounds):
            print(f"round {round_number + 1}", flush=True)
            for op in ("get", "set"):
                a = aerocache(args.bin, single, op, args.seconds)
                add(f"1 node {op}", a, redis(redis_single, op, args.seconds, a[0]))
            a = aerocache(args.bin, single, "get", args.seconds, concurrency=1)
            add("1 node serial get", a, redis(redis_single, "get", args.seconds, a[0], clients=1))
            for name, cluster in (("3 nodes", three), ("5 nodes", five)):
                for op in ("get", "set"):
                    a = aerocache(args.bin, cluster, op, args.seconds)
                    add(f"{name} {op}", a, redis(redis_cluster, op, args.seconds, a[0]))
            h2["single"].append(h2load_get(single.ports[0], held, args.h2load_requests, single.pids))
            h2["held"].append(h2load_get(five.ports[0], held, args.h2load_requests, five.pids))
            h2["forwarded"].append(h2load_get(five.ports[0], forwarded, args.h2load_requests, five.pids))
            print("  h2load Get m50: " + ", ".join(f"{k} {v[-1][0]:,.0f}/s ({v[-1][1]:.1f} µs CPU)" for k, v in h2.items()),
                  flush=True)
    finally:
        for setup in running:
            setup.stop()
        shutil.rmtree(WORK, ignore_errors=True)

    med = statistics.median
    targets = {"1 node get": 1.3, "5 nodes get": 1.2, "5 nodes set": 0.7}
    print(f"\nmedians of {args.rounds} rounds, {KEYS:,} keys, {VALUE}-byte values, {CONCURRENCY} in flight "
          "(serial: 1); AeroCache N = 3 with quorum Set; Redis Cluster 3 masters + 3 replicas")
    print("| setup | AeroCache ops/s | Redis ops/s | ratio | target | AeroCache p50 / p99 µs | Redis p50 / p99 µs "
          "| CPU µs/op AeroCache (client + nodes) / Redis |")
    print("|---|---|---|---|---|---|---|---|")
    for name, pairs in rows.items():
        aero = [a for a, _ in pairs]
        red = [r for _, r in pairs]
        ratio = med(a[0] / r[0] for a, r in pairs)
        target = f">= {targets[name]}x" if name in targets else ""
        if name == "1 node serial get":
            ratio_p50 = med(a[1] for a in aero) / med(r[1] for r in red)
            target = f"p50 {ratio_p50:.2f}x (<= 1.5x)"
        print(f"| {name} | {med(a[0] for a in aero):,.0f} | {med(r[0] for r in red):,.0f} | {ratio:.2f}x | {target} "
              f"| {med(a[1] for a in aero):.0f} / {med(a[2] for a in aero):.0f} | {med(r[1] for r in red):.0f} / "
              f"{med(r[2] for r in red):.0f} | {med(a[3] for a in aero):.1f} ({med(a[4] for a in aero):.1f} + "
              f"{med(a[5] for a in aero):.1f}) / {med(r[3] for r in red):.1f} |")
    single_rps = med(x[0] for x in h2["single"])
    print("\nclients that do not route (h2load, 50 streams on one connection, Get of one key):")
    for name, label in (("held", "a key it holds"), ("forwarded", "a key it must forward")):
        rps = med(x[0] for x in h2[name])
        print(f"  one of 5 nodes, {label}: {rps:,.0f}/s = {rps / single_rps:.2f}x of a single node "
              f"({single_rps:,.0f}/s); cluster CPU {med(x[1] for x in h2[name]):.1f} µs per call")
    cost = med(x[1] for x in h2["forwarded"]) / med(x[1] for x in h2["held"])
    print(f"  a forwarded call costs the cluster {cost:.2f}x the CPU of a local one (target <= 2x; "
          f"single node {med(x[1] for x in h2['single']):.1f} µs per call)")


if __name__ == "__main__":
    main()
