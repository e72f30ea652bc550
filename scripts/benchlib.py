"""Helpers shared by the benchmark drivers in scripts/."""
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time


_handed_out = set()


def free_port():
    """A loopback port nothing listens on now, below Linux's ephemeral range (32768..60999).

    Port 0 would hand out an ephemeral port, which the kernel may then give to any outgoing
    connection (a node dialling a peer) before the test's node binds it: a fresh CI run lost
    a node that way. Ports are drawn at random from 20000..32767 and never handed out twice
    by one process.
    """
    for _ in range(1000):
        port = random.randint(20000, 32767)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port in 20000..32767")


def wait_port(port, timeout=10):
    """Waits (bounded) until something accepts connections on the loopback port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listening on {port} after {timeout}s")


def run_bench(bin_dir, port, op, seconds, keys, value_size, concurrency, prefill=False, consistency=None):
    """Runs aerocache-bench against the node on `port` (`op`=100 of the mix, after a 1 s warmup)
    and returns its JSON report; exits with one line when any call failed."""
    report = os.path.join(tempfile.mkdtemp(), "run.json")
    args = [f"{bin_dir}/aerocache-bench", "--endpoints", f"127.0.0.1:{port}", "--keys", str(keys),
            "--value-size", str(value_size), "--concurrency", str(concurrency), "--mix", f"{op}=100",
            "--duration", f"{seconds}s", "--warmup", "1s", "--json", report]
    if consistency:
        args += ["--consistency", consistency]
    if prefill:
        args.append("--prefill")
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    with open(report) as f:
        document = json.load(f)
    if document["errors"]:
        sys.exit(f"aerocache-bench {op}: {document['errors']} errors: {document['errors_by_code']}")
    return document
