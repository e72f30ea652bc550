"""Real aerocache-node processes on loopback for the cluster tests: start, kill -9, pause, restart.

Every node shares a cluster secret (a file made here); every process is stopped by its pid.
AEROCACHE_NO_SECRET=1 starts nodes without one (to run a test against a build from before secrets).
"""
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import grpc

from conftest import cache_pb2, cache_pb2_grpc, free_port, health_pb2, health_pb2_grpc
from aerocache.v1 import peer_pb2, peer_pb2_grpc  # noqa: E402

SECRET_HEADER = "aerocache-cluster-secret"


def wait_or_kill(processes, timeout=15):
    """Waits (bounded) for each process to exit; kills the ones that do not."""
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def make_secret_file():
    handle = tempfile.NamedTemporaryFile("w", prefix="aerocache-secret-", delete=False)
    handle.write(secrets.token_urlsafe(32) + "\n")
    handle.close()
    return handle.name


def wait_for(predicate, timeout, what, interval=0.2):
    """Polls `predicate` until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s")


class Cluster:
    """`size` nodes, node-0 the seed of the others, with replication factor 3 unless flags say."""

    def __init__(self, size, *flags, metrics=False, env=None, ids=None,
                 secret=os.environ.get("AEROCACHE_NO_SECRET") != "1", started=None, hosts=None):
        """`started`: how many of the `size` nodes start now (all by default); `start` the others later.
        `hosts`: each node's own loopback address (default 127.0.0.1 for all), so a firewall
        rule can name one node (the fault tests' partitions)."""
        self.hosts = hosts or ["127.0.0.1"] * size
        self.flags = list(flags)
        self.ids = ids or [f"node-{index}" for index in range(size)]
        self.binary = os.environ["AEROCACHE_NODE"]
        self.ctl_binary = os.environ["AEROCACHE_CTL"]
        self.secret_file = make_secret_file() if secret else None
        self.ports = [free_port() for _ in range(size)]
        self.metrics_ports = [free_port() for _ in range(size)] if metrics else None
        self.env = env or {}
        self.processes = {}
        self.logs = {}
        try:
            for index in range(size if started is None else started):
                self.start(index)
                if index == 0:
                    # A founder with a secret waits 3 s for members that may know it, then founds.
                    self.wait_serving(0)
        except BaseException:
            self.stop_all()  # a node that failed to start leaves none running
            raise

    @property
    def secret(self):
        with open(self.secret_file) as f:
            return f.read().strip()

    def address(self, index):
        return f"{self.hosts[index]}:{self.ports[index]}"

    def command(self, index, *extra, seeded=True):
        # node-0 founds the cluster; restarted, it joins it again through node-1 (without seeds
        # it founds a cluster of one until gossip reaches it; seeded=False does that).
        if not seeded:
            seeds = []
        elif index == 0:
            seeds = ["--seeds", self.address(1)] if 0 in self.processes and len(self.ports) > 1 else []
        else:
            seeds = ["--seeds", self.address(0)]
        secret = ["--cluster-secret-file", self.secret_file] if self.secret_file else []
        metrics = ["--metrics-listen", f"127.0.0.1:{self.metrics_ports[index]}"] if self.metrics_ports else []
        return [self.binary, "--listen", self.address(index), "--node-id", self.ids[index], *seeds, *secret, *metrics,
                "--log-level", "warning", *self.flags, *extra]

    def start(self, index, *extra, wrapper=(), env=None, seeded=True):
        log = tempfile.TemporaryFile()
        self.logs[index] = log
        self.processes[index] = subprocess.Popen(
            [*wrapper, *self.command(index, *extra, seeded=seeded)], stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, **self.env, **(env or {})})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.processes[index].poll() is None, f"node-{index} exited: {self.log(index)}"
            try:
                with socket.create_connection((self.hosts[index], self.ports[index]), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"node-{index} did not start")

    def wait_serving(self, index, timeout=20):
        """Waits until node `index` has its tokens (before, it answers every call UNAVAILABLE)."""
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(self.address(index)))

        def serving():
            try:
                return health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == \
                    health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                return False
        wait_for(serving, timeout, f"node-{index} serving")

    def log(self, index):
        log = self.logs[index]
        log.seek(0)
        return log.read().decode(errors="replace")

    def kill(self, index):
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(timeout=10)

    def pause(self, index):
        self.processes[index].send_signal(signal.SIGSTOP)

    def resume(self, index):
        self.processes[index].send_signal(signal.SIGCONT)

    def alive(self, index):
        return self.processes[index].poll() is None

    def stop_all(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        wait_or_kill(self.processes.values())
        if self.secret_file and os.path.exists(self.secret_file):
            os.unlink(self.secret_file)

    def ctl(self, *args, via=0, timeout=30):
        result = subprocess.run([self.ctl_binary, "--endpoints", self.address(via), *args],
                                capture_output=True, timeout=timeout)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    def status(self, via=0):
        code, out, err = self.ctl("status", "--json", via=via)
        assert code == 0, err
        return {node["id"]: node for node in json.loads(out)["nodes"]}

    def keys(self, index):
        return self.status(via=index)[f"node-{index}"]["keys"]

    def converged(self, via, count=None):
        """Whether node `via` sees every node up, all on one ring epoch."""
        code, out, _ = self.ctl("status", "--json", via=via)
        nodes = json.loads(out)["nodes"] if code == 0 else []
        return (len(nodes) == (count or len(self.ports)) and all(n["state"] == "up" for n in nodes)
                and len({n["ring_epoch"] for n in nodes}) == 1)

    def wait_converged(self, indexes=None, timeout=30):
        """Waits until the nodes see each other up on one ring (the caller stops the cluster if not)."""
        indexes = list(range(len(self.ports))) if indexes is None else indexes
        try:
            wait_for(lambda: all(self.converged(via=i) for i in indexes), timeout, "every node up in every view")
        except BaseException:
            self.stop_all()
            raise

    def wait_state(self, index, state, via, timeout=15):
        return wait_for(lambda: self.status(via=via).get(f"node-{index}", {}).get("state") == state, timeout,
                        f"node-{index} seen {state} by node-{via}")

    def stub(self, index):
        return cache_pb2_grpc.CacheStub(grpc.insecure_channel(self.address(index)))

    def peer(self, index, secret=True):
        """A Peer client for node `index`: with the cluster secret, or (secret=False) without it."""
        channel = grpc.insecure_channel(self.address(index), options=[("grpc.max_receive_message_length", 64 << 20),
                                                                      ("grpc.max_send_message_length", 64 << 20)])
        stub = peer_pb2_grpc.PeerStub(channel)
        metadata = [(SECRET_HEADER, self.secret)] if secret and self.secret_file else []
        return stub, metadata

    def record(self, index, key):
        """What node `index` holds for `key` (tombstones included), read with the secret; None when nothing."""
        stub, metadata = self.peer(index)
        reply = stub.Read(peer_pb2.ReadRequest(keys=[key]), metadata=metadata, timeout=10)
        return reply.records[0] if reply.found[0] else None

    def owners(self, key, via=0):
        code, out, err = self.ctl("owners", key, "--json", via=via)
        assert code == 0, err
        return [int(owner["id"].split("-")[1]) for owner in json.loads(out)["owners"]]

    def key_owned_by(self, replicas, prefix="key", exclude=()):
        """A key whose replicas, in preference order, start with `replicas` and include none of `exclude`."""
        for i in range(100_000):
            key = f"{prefix}:{i}"
            owners = self.owners(key)
            if owners[:len(replicas)] == list(replicas) and not set(exclude) & set(owners):
                return key
        raise AssertionError(f"no key owned by {replicas}")

    def metric(self, index, name, labels=None):
        """The value of a Prometheus sample at node `index` (0 when absent)."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[index]}/metrics", timeout=10).read().decode()
        total = 0.0
        for line in text.splitlines():
            match = re.match(r"^(\w+)(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
            if not match or match.group(1) != name:
                continue
            if labels and not all(f'{k}="{v}"' in (match.group(2) or "") for k, v in labels.items()):
                continue
            total += float(match.group(3))
        return total

    def rss_bytes(self, index):
        with open(f"/proc/{self.processes[index].pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")
