#!/usr/bin/env python3
"""Drives scripts/bench-antientropy.sh: what anti-entropy costs and how fast it heals, measured
on 3 nodes (N = 3, hints and read repair off) holding KEYS keys, side by side with the same
cluster at --anti-entropy-interval 0, same build, same run.

1. In sync: one round's bytes per piece (a token range cut at shard bounds) from
   `aerocachectl repair`, and the CPU the nodes spend over an idle minute, on against off.
2. Heal: node-2 paused (SIGSTOP) while 100k keys are overwritten at quorum, then resumed;
   the time until the other nodes' rounds have repaired them all.
3. Get during a heal: the same divergence again, then a Get load through node-0 while it
   heals, against the same load on the cluster with anti-entropy off.
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
    def __init__(self, bin_dir, interval, nodes=3):
        self.bin_dir = bin_dir
        self.ports = [free_port() for _ in range(nodes)]
        self.metrics_ports = [free_port() for _ in range(nodes)]
        self.processes = []
        for index in range(nodes):
            seeds = [] if index == 0 else ["--seeds", f"127.0.0.1:{self.ports[0]}"]
            self.processes.append(subprocess.Popen([
                f"{bin_dir}/aerocache-node", "--listen", f"127.0.0.1:{self.ports[index]}", "--node-id", f"node-{index}",
                "--cluster-secret-file", SECRET_FILE, "--log-level", "warning", "--max-memory", "4GiB",
                "--hinted-handoff", "off", "--read-repair", "off", "--anti-entropy-interval", interval,
                "--metrics-listen", f"127.0.0.1:{self.metrics_ports[index]}", *seeds]))
            wait_port(self.ports[index])
        self.wait(lambda: sum(n["state"] == "up" for n in self.status().values()) == nodes, 30, "every node up")

    def ctl(self, *args, via=0):
        result = subprocess.run([f"{self.bin_dir}/aerocachectl", "--endpoints", f"127.0.0.1:{self.ports[via]}", *args],
                                capture_output=True, timeout=900)
        if result.returncode != 0:
            sys.exit(f"aerocachectl {' '.join(args)}: {result.stderr.decode().strip()}")
        return result.stdout.decode()

    def status(self, via=0):
        return {node["id"]: node for node in json.loads(self.ctl("status", "--json", via=via))["nodes"]}

    def keys(self):
        return [self.status(via=i)[f"node-{i}"]["keys"] for i in range(len(self.ports))]

    def metric(self, index, name):
        import urllib.request
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[index]}/metrics", timeout=10).read().decode()
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.split(" ")[0] == name)

    def repaired(self):
        return sum(self.metric(i, "aerocache_antientropy_repaired_keys_total") for i in range(len(self.ports)))

    def cpu_seconds(self):
        """User + system CPU of every node so far."""
        total = 0
        for process in self.processes:
            with open(f"/proc/{process.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    @staticmethod
    def wait(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        sys.exit(f"not within {timeout}s: {what}")

    def stop(self):
        for process in self.processes:
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in self.processes:
            process.wait(timeout=30)


def load(cluster, keys, overwrite=0):
    """Writes `keys` keys (or overwrites the first `overwrite`) through node-0 at quorum."""
    subprocess.run([f"{cluster.bin_dir}/aerocache-bench", "--endpoints", f"127.0.0.1:{cluster.ports[0]}",
                    "--keys", str(overwrite or keys), "--value-size", "100", "--concurrency", "50", "--mix", "set=100",
                    "--consistency", "quorum", "--prefill", "--duration", "0"], check=True, stdout=subprocess.DEVNULL)


def diverge(cluster, keys):
    """Pauses node-2, overwrites 100k keys, resumes it; returns when node-0 sees it up again."""
    cluster.processes[2].send_signal(signal.SIGSTOP)
    cluster.wait(lambda: cluster.status()["node-2"]["state"] != "up", 30, "node-2 seen down")
    load(cluster, keys, overwrite=DIVERGENT)
    cluster.processes[2].send_signal(signal.SIGCONT)
    cluster.wait(lambda: cluster.status()["node-2"]["state"] == "up", 30, "node-2 seen up")


DIVERGENT = 100_000


def get_during_heal(cluster, keys, seconds, heal):
    """Gets through node-0 for 1 s of warmup and `seconds` measured; with `heal`, a round is
    started beside them at once. Returns ops/s, p99 µs and how long the round took (None
    without heal): a round that outlasts the Gets did not share the machine with all of them."""
    started = time.monotonic()
    finished = []
    if heal:
        repair = subprocess.Popen([f"{cluster.bin_dir}/aerocachectl", "--endpoints", f"127.0.0.1:{cluster.ports[0]}", "repair"],
                                  stdout=subprocess.DEVNULL)
        waiter = threading.Thread(target=lambda: (repair.wait(timeout=600), finished.append(time.monotonic() - started)))
        waiter.start()
    document = run_bench(cluster.bin_dir, cluster.ports[0], "get", seconds, keys=keys, value_size=100, concurrency=50)
    if heal:
        waiter.join()
    return document["ops_per_sec"], document["latency_us"]["p99"], finished[0] if finished else None


def seconds(value):
    return "not ended" if value is None else f"{value:.1f} s"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--idle-seconds", type=int, default=60)
    parser.add_argument("--get-seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    on = off = None
    try:
        # Both clusters run side by side (an idle one costs next to nothing) and are measured
        # in alternation, so a drift in the machine's speed falls on both alike.
        on, off = Cluster(args.bin, "10s"), Cluster(args.bin, "0")
        for cluster in (on, off):
            load(cluster, args.keys)
            cluster.wait(lambda: cluster.keys() == [args.keys] * 3, 120, f"{args.keys} keys on every node")
        report = json.loads(on.ctl("repair", "--json"))
        pieces = sum(p["compared"] for p in report["peers"])
        bytes_per_piece = sum(p["bytes"] for p in report["peers"]) / max(pieces, 1)
        differing_in_sync = sum(p["differing"] for p in report["peers"])

        cpu = (on.cpu_seconds(), off.cpu_seconds())
        time.sleep(args.idle_seconds)
        idle = [(cluster.cpu_seconds() - before) / args.idle_seconds for cluster, before in zip((on, off), cpu)]

        before = on.repaired()
        diverge(on, args.keys)
        started = time.monotonic()
        on.wait(lambda: on.repaired() - before >= DIVERGENT, 300, "100k keys repaired")
        heal_seconds = time.monotonic() - started
        report = json.loads(on.ctl("repair", "--json", via=2))
        differing_after = sum(p["differing"] for p in report["peers"])

        pairs = []
        for round_index in range(args.rounds):
            order = [(on, True), (off, False)] if round_index % 2 == 0 else [(off, False), (on, True)]
            measured = {}
            for cluster, heal in order:
                diverge(cluster, args.keys)
                measured[heal] = get_during_heal(cluster, args.keys, args.get_seconds, heal)
            pairs.append((measured[True], measured[False]))
            # Let the rest of the heal finish before the next divergence.
            on.ctl("repair")
    finally:
        for cluster in (on, off):
            if cluster:
                cluster.stop()
    ratios = sorted(with_heal[0] / without[0] for with_heal, without in pairs)
    print(json.dumps({"bytes_per_piece": bytes_per_piece, "pieces_per_peer": pieces / max(len(report["peers"]), 1),
                      "idle_cpu_share": {"on": idle[0], "off": idle[1]}, "heal_seconds": heal_seconds,
                      "get_pairs": pairs}, indent=2))
    print(f"\nanti-entropy on 3 nodes, N = 3, {args.keys:,} keys, same build and run, against --anti-entropy-interval 0:")
    print(f"  in sync: {bytes_per_piece:.0f} bytes per piece (a range cut at shard bounds) per round "
          f"(target <= 4096), {pieces} pieces compared, {differing_in_sync} differing")
    print(f"  idle CPU of the 3 nodes over {args.idle_seconds} s: {idle[0] * 100:.2f}% of a core on, {idle[1] * 100:.2f}% off "
          f"-> anti-entropy costs {(idle[0] - idle[1]) * 100:.2f}% of a core (target <= 1%)")
    print(f"  {DIVERGENT:,} divergent keys healed in {heal_seconds:.1f} s from node-2's return, rounds every 10 s "
          f"(target <= 30 s); {differing_after} pieces differing after")
    print(f"  Get through node-0 during a heal vs without anti-entropy (paired, 1 s warmup + {args.get_seconds} s each; "
          "the round's time from the start): "
          + ", ".join(f"{w[0]:,.0f}/s p99 {w[1]} us (round {seconds(w[2])}) vs {o[0]:,.0f}/s p99 {o[1]} us" for w, o in pairs))
    print(f"  ratio median {ratios[len(ratios) // 2]:.2f}x (all: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.80)")


if __name__ == "__main__":
    main()
