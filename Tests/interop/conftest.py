"""Fixtures for the process-level tests: a real aerocache-node started per test module."""
import os
import signal
import socket
import subprocess
import sys
import time

HOW_TO_RUN = ("run these through scripts/interop-test.sh .build/debug/aerocache-node [pytest args]: "
              "it makes the Python venv and the generated stubs, and names the binaries")
try:
    import grpc
    import pytest
except ImportError as missing:
    sys.exit(f"{missing}; {HOW_TO_RUN}")
if "AEROCACHE_NODE" not in os.environ:
    sys.exit(f"AEROCACHE_NODE is not set; {HOW_TO_RUN}")

sys.path.insert(0, os.environ.get("AEROCACHE_PYGEN", os.path.join(os.path.dirname(__file__), "gen")))

# One home for the helpers the tests and the benchmark drivers share (free_port).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))

from aerocache.v1 import cache_pb2, cache_pb2_grpc  # noqa: E402
from benchlib import free_port  # noqa: E402,F401  (imported from here by the test modules)
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402  (grpcio-health-checking: the standard client)


class Node:
    """One aerocache-node process on a loopback port; stopped by its pid."""

    def __init__(self, binary, *args):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [binary, "--listen", self.address, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_serving()

    def wait_serving(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"node exited: {self.process.stderr.read().decode()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"node on {self.address} did not start within {timeout}s")

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        """SIGTERM (graceful shutdown); returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def node():
    binary = os.environ["AEROCACHE_NODE"]
    n = Node(binary)
    yield n
    assert n.stop() == 0, "graceful shutdown exits 0"


@pytest.fixture(scope="module")
def channel(node):
    ch = grpc.insecure_channel(node.address)
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def stub(channel):
    return cache_pb2_grpc.CacheStub(channel)


@pytest.fixture(scope="module")
def health(channel):
    return health_pb2_grpc.HealthStub(channel)


def assert_serving(address):
    """A fresh client on a fresh connection gets an answer: the node still serves others."""
    with grpc.insecure_channel(address) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = cache_pb2_grpc.CacheStub(ch)
        stub.Set(cache_pb2.SetRequest(key="still-serving", value=b"yes"), timeout=5)
        assert stub.Get(cache_pb2.GetRequest(key="still-serving"), timeout=5).value == b"yes"
