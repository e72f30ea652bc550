#!/usr/bin/env python3
"""Drives the memory measurements of scripts/bench-memory.sh."""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, wait_port  # noqa: E402

ENTRIES = 1_000_000
KEY_BYTES, VALUE_BYTES = 16, 100






def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def node(bin_dir, port, *flags):
    return subprocess.Popen([f"{bin_dir}/aerocache-node", "--listen", f"127.0.0.1:{port}", "--log-level", "warning", *flags])


def status(bin_dir, port):
    out = subprocess.run([f"{bin_dir}/aerocachectl", "--endpoints", f"127.0.0.1:{port}", "status", "--json"],
                         check=True, capture_output=True, timeout=10).stdout
    return json.loads(out)["nodes"][0]


def per_entry_overhead(bin_dir):
    port = free_port()
    process = node(bin_dir, port, "--max-memory", "4GiB")
    try:
        wait_port(port)
        idle = rss_bytes(process.pid)
        subprocess.run([f"{bin_dir}/aerocache-bench", "--endpoints", f"127.0.0.1:{port}", "--keys", str(ENTRIES),
                        "--value-size", str(VALUE_BYTES), "--prefill", "--duration", "0", "--concurrency", "8"],
                       check=True, stdout=subprocess.DEVNULL)
        time.sleep(1)
        held = status(bin_dir, port)
        assert held["keys"] == ENTRIES, held
        aero_rss = rss_bytes(process.pid)
        accounted = held["memory_bytes"]
    finally:
        stop(process)

    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                              "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        value = "v" * VALUE_BYTES
        with tempfile.NamedTemporaryFile("wb", delete=False) as f:
            for i in range(ENTRIES):
                key = f"key:{i:012d}"
                f.write(f"*3\r\n$3\r\nSET\r\n${len(key)}\r\n{key}\r\n${VALUE_BYTES}\r\n{value}\r\n".encode())
            commands = f.name
        with open(commands, "rb") as f:
            subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f, check=True, stdout=subprocess.DEVNULL)
        os.unlink(commands)
        count = int(subprocess.run(["redis-cli", "-p", str(port), "dbsize"], capture_output=True, check=True).stdout)
        assert count == ENTRIES, count
        time.sleep(1)
        redis_rss = rss_bytes(redis.pid)
    finally:
        stop(redis)

    payload = ENTRIES * (KEY_BYTES + VALUE_BYTES)
    aero = (aero_rss - payload) / ENTRIES
    red = (redis_rss - payload) / ENTRIES
    print(f"1M entries (16-byte keys, 100-byte values): resident {aero_rss / 2**20:.0f} MiB (idle {idle / 2**20:.0f} MiB) "
          f"vs redis {redis_rss / 2**20:.0f} MiB")
    print(f"  bytes per entry beyond the payload: aerocache {aero:.0f}, redis {red:.0f} ({aero / red:.2f}x); "
          f"accounted by the store {accounted / ENTRIES:.0f} per entry")
    return aero, red


def bounded_memory(bin_dir, bound_mib=64, value_size=8192, seconds=10):
    port = free_port()
    process = node(bin_dir, port, "--max-memory", f"{bound_mib}MiB")
    samples = []
    try:
        wait_port(port)
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    s = status(bin_dir, port)
                    samples.append((s["memory_bytes"], rss_bytes(process.pid), s["evictions"]))
                except Exception:  # noqa: BLE001 - a missed sample is not a failure
                    pass
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        sampler.start()
        report = os.path.join(tempfile.mkdtemp(), "push.json")
        subprocess.run([f"{bin_dir}/aerocache-bench", "--endpoints", f"127.0.0.1:{port}", "--keys", "1000000",
                        "--value-size", str(value_size), "--mix", "set=100", "--duration", f"{seconds}s",
                        "--warmup", "0", "--json", report], check=True, stdout=subprocess.DEVNULL)
        done.set()
        sampler.join()
        final = status(bin_dir, port)
        samples.append((final["memory_bytes"], rss_bytes(process.pid), final["evictions"]))
        with open(report) as f:
            pushed = json.load(f)["operations"] * value_size
    finally:
        stop(process)
    bound = bound_mib * 2**20
    peak_accounted = max(s[0] for s in samples)
    peak_rss = max(s[1] for s in samples)
    print(f"--max-memory {bound_mib}MiB, {pushed / 2**30:.2f} GiB of {value_size}-byte values pushed: "
          f"peak accounted {peak_accounted / 2**20:.1f} MiB ({peak_accounted / bound:.3f}x the bound, "
          f"{len(samples)} samples), peak resident {peak_rss / 2**20:.0f} MiB, evictions {samples[-1][2]}")
    return pushed, peak_accounted / bound, peak_rss


def engine(bin_dir):
    out = subprocess.run([f"{bin_dir}/aerocache-engine-bench", str(ENTRIES), "2", "2000000"],
                         check=True, capture_output=True, text=True).stdout
    print("storage engine alone, 1M keys, 2 threads:")
    for line in out.splitlines():
        print("  " + line)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    args = parser.parse_args()
    aero, red = per_entry_overhead(args.bin)
    pushed, ratio, rss = bounded_memory(args.bin)
    engine(args.bin)
    ok = aero <= 120 and ratio <= 1.05 and pushed >= 2**30
    print(f"\nmemory: {aero:.0f} B/entry overhead (redis {red:.0f}; target <= 120), bounded node at "
          f"{ratio:.3f}x its bound with {pushed / 2**30:.2f} GiB pushed (target <= 1.05x), resident {rss / 2**20:.0f} MiB "
          f"-> {'all targets met' if ok else 'TARGET MISSED'}")


if __name__ == "__main__":
    main()
