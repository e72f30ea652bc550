#!/usr/bin/env python3
"""Drives h2load and redis-benchmark side by side; see scripts/bench-transport.sh."""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, wait_port  # noqa: E402

VALUE = b"v" * 100
KEY = "key-1"






def grpc_body(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def h2load(port, body_file, requests, streams):
    out = subprocess.run(
        ["h2load", "-n", str(requests), "-c", "1", "-m", str(streams), "-t", "1", "-d", body_file,
         "-H", "content-type: application/grpc", "-H", "te: trailers",
         f"http://127.0.0.1:{port}/aerocache.v1.Cache/Get"],
        check=True, capture_output=True, text=True).stdout
    succeeded = int(re.search(r"(\d+) succeeded", out).group(1))
    if succeeded != requests:
        sys.exit(f"h2load: only {succeeded} of {requests} succeeded\n{out}")
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
    return rps, to_us(mean)


def to_us(text):
    number = float(re.match(r"[\d.]+", text).group(0))
    return number * 1000 if text.endswith("ms") else number / 1000 if text.endswith("ns") else number * 1e6 if text.endswith("s") and not text.endswith("us") else number


def redis_bench(port, requests, clients):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(clients), "-P", "1", "-n", str(requests),
         "-t", "get", "-d", "100", "--csv"],
        check=True, capture_output=True, text=True).stdout
    row = [line for line in out.splitlines() if line.startswith('"GET"')][0]
    values = [v.strip('"') for v in row.split(",")]
    return float(values[1]), float(values[2]) * 1000  # rps, mean latency in µs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--serial-requests", type=int, default=40_000)
    args = parser.parse_args()

    node_port, redis_port = free_port(), free_port()
    node = subprocess.Popen([args.node, "--listen", f"127.0.0.1:{node_port}", "--log-level", "warning"])
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                              "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    try:
        wait_port(node_port)
        wait_port(redis_port)
        time.sleep(0.5)
        idle_rss = rss_mib(node.pid)

        work = tempfile.mkdtemp()
        get_file = os.path.join(work, "get.bin")
        set_file = os.path.join(work, "set.bin")
        with open(get_file, "wb") as f:
            f.write(grpc_body(field(1, KEY.encode())))
        with open(set_file, "wb") as f:
            f.write(grpc_body(field(1, KEY.encode()) + field(2, VALUE)))
        url = f"http://127.0.0.1:{node_port}/aerocache.v1.Cache/"
        headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
        subprocess.run(["nghttp", "-d", set_file, *headers, url + "Set"], check=True, capture_output=True)
        check = subprocess.run(["nghttp", "-v", "-d", get_file, *headers, url + "Get"],
                               check=True, capture_output=True).stdout
        if b"grpc-status: 0" not in check or VALUE not in check:
            sys.exit(f"nghttp: Get did not answer grpc-status 0 with the 100-byte value:\n{check[-600:]!r}")
        # redis-benchmark -t get reads the key "key:__rand_int__"; give it a 100-byte value.
        subprocess.run(["redis-cli", "-p", str(redis_port), "set", "key:__rand_int__", VALUE.decode()],
                       check=True, capture_output=True)

        h2_rps, redis_rps, cpu_us, h2_serial, redis_serial = [], [], [], [], []
        for round_number in range(args.rounds):
            before = cpu_seconds(node.pid)
            rps, _ = h2load(node_port, get_file, args.requests, 50)
            cpu_us.append((cpu_seconds(node.pid) - before) / args.requests * 1e6)
            h2_rps.append(rps)
            redis_rps.append(redis_bench(redis_port, args.requests, 50)[0])
            h2_serial.append(h2load(node_port, get_file, args.serial_requests, 1)[1])
            redis_serial.append(redis_bench(redis_port, args.serial_requests, 1)[1])
            print(f"round {round_number + 1}: aerocache {h2_rps[-1]:,.0f} Get/s (m50), {h2_serial[-1]:.0f} µs serial, "
                  f"{cpu_us[-1]:.2f} µs CPU/Get | redis {redis_rps[-1]:,.0f} GET/s (c50), {redis_serial[-1]:.0f} µs serial",
                  flush=True)
        busy_rss = rss_mib(node.pid)

        med = statistics.median
        throughput_ratio = med(h2_rps) / med(redis_rps)
        latency_ratio = med(h2_serial) / med(redis_serial)
        print()
        print("| measure | aerocache-node (h2load) | redis 7 (redis-benchmark) | ratio | target |")
        print("|---|---|---|---|---|")
        print(f"| Get throughput, 50 in flight | {med(h2_rps):,.0f}/s | {med(redis_rps):,.0f}/s | "
              f"{throughput_ratio:.2f}x | >= 1.3x |")
        print(f"| serial Get, mean latency | {med(h2_serial):.0f} µs | {med(redis_serial):.0f} µs | "
              f"{latency_ratio:.2f}x | <= 2.0x |")
        print(f"| server CPU per Get at 50 in flight | {med(cpu_us):.2f} µs | | | <= 10 µs |")
        print(f"| resident memory, idle / after load | {idle_rss:.1f} / {busy_rss:.1f} MiB | | | idle <= 64 MiB |")
        print()
        ok = throughput_ratio >= 1.3 and latency_ratio <= 2.0 and med(cpu_us) <= 10 and idle_rss <= 64
        print(f"ratios (median of {args.rounds}): throughput {throughput_ratio:.2f}x redis, serial latency "
              f"{latency_ratio:.2f}x redis, CPU/Get {med(cpu_us):.2f} us, idle RSS {idle_rss:.1f} MiB "
              f"-> {'all targets met' if ok else 'TARGET MISSED'}")
    finally:
        for process in (node, redis):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
