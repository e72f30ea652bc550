"""Finding 10: the smaller holes, each with real nodes.

A TTL too long for the clock, a node whose seeds never answer, a restarted member's first
record, two node ids that stamp the same version number, a tombstone a peer sent without
an expiry.
"""
import json
import subprocess
import time

import grpc
import pytest
import xxhash

from cluster import Cluster, wait_for
from conftest import cache_pb2, cache_pb2_grpc, free_port, health_pb2, health_pb2_grpc
from aerocache.v1 import peer_pb2  # noqa: E402


def status_code(call, request):
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value


def test_a_ttl_past_ten_years_is_refused_not_wrapped(stub):
    for ttl in (2**62, 10 * 365 * 24 * 3_600_000 + 1):
        error = status_code(stub.Set, cache_pb2.SetRequest(key="forever", value=b"v", ttl_ms=ttl))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "10 years" in error.details()
        error = status_code(stub.Increment, cache_pb2.IncrementRequest(key="forever", delta=1, ttl_ms=ttl))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    stub.Set(cache_pb2.SetRequest(key="decade", value=b"v", ttl_ms=10 * 365 * 24 * 3_600_000), timeout=10)
    assert stub.Get(cache_pb2.GetRequest(key="decade"), timeout=10).found


def test_a_node_whose_seeds_never_answer_serves_nothing_until_it_joins():
    cluster = Cluster(1)
    try:
        port = free_port()
        process = subprocess.Popen([cluster.binary, "--listen", f"127.0.0.1:{port}", "--seeds", f"127.0.0.1:{free_port()}",
                                    "--cluster-secret-file", cluster.secret_file, "--log-level", "error"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(channel).result(timeout=20)
            stub = cache_pb2_grpc.CacheStub(channel)
            for call, request in ((stub.Set, cache_pb2.SetRequest(key="k", value=b"v")),
                                  (stub.Get, cache_pb2.GetRequest(key="k")),
                                  (stub.Increment, cache_pb2.IncrementRequest(key="c", delta=1))):
                error = status_code(call, request)
                assert error.code() == grpc.StatusCode.UNAVAILABLE and "not joined" in error.details()
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
        finally:
            process.terminate()
            process.wait(timeout=15)
    finally:
        cluster.stop_all()


def ring_of(cluster, via):
    code, out, err = cluster.ctl("ring", "--json", via=via)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def three():
    cluster = Cluster(3)
    try:
        cluster.wait_converged()
        yield cluster
    finally:
        cluster.stop_all()


def test_a_restarted_member_keeps_its_place_in_the_ring(three):
    before = ring_of(three, 0)
    # Each member's share of the ring: equal shares on an equal epoch, the same tokens.
    tokens = {node["id"]: node["share"] for node in before["nodes"]}
    # A restarted member's first record carries no tokens (it has not joined again yet); a
    # peer that gossips it must not take the member out of the ring.
    stub, metadata = three.peer(0)
    restarted = peer_pb2.MemberRecord(id="node-2", address=three.address(2), incarnation=int(time.time() * 1000),
                                      heartbeat=1)
    stub.Gossip(peer_pb2.GossipMessage(settings=peer_pb2.ClusterSettings(replication_factor=3, tokens_per_node=256),
                                       members=[restarted]), metadata=metadata, timeout=10)
    after = ring_of(three, 0)
    assert after["epoch"] == before["epoch"]
    assert {node["id"]: node["share"] for node in after["nodes"]} == tokens
    # A real restart: the same tokens, the same ring.
    three.kill(2)
    three.start(2)
    three.wait_converged()
    for via in range(3):
        ring = ring_of(three, via)
        assert ring["epoch"] == before["epoch"] and {n["id"]: n["share"] for n in ring["nodes"]} == tokens


def colliding_ids():
    """Two node ids whose version numbers (the low 32 bits of their xxHash64) are equal."""
    seen = {}
    for index in range(2_000_000):
        id = f"twin-{index}"
        number = xxhash.xxh64_intdigest(id.encode()) & 0xFFFF_FFFF
        if number in seen:
            return seen[number], id
        seen[number] = id
    raise AssertionError("no collision found")


def test_a_node_whose_id_stamps_a_taken_version_number_is_refused():
    first, second = colliding_ids()
    cluster = Cluster(1, ids=[first])
    try:
        result = subprocess.run([cluster.binary, "--listen", f"127.0.0.1:{free_port()}", "--node-id", second,
                                 "--seeds", cluster.address(0), "--cluster-secret-file", cluster.secret_file,
                                 "--log-level", "error"], capture_output=True, timeout=30)
        lines = result.stderr.decode().strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert "same version number" in lines[0] and first in lines[0]
    finally:
        cluster.stop_all()


def test_a_tombstone_a_peer_sent_without_expiry_is_swept():
    cluster = Cluster(1, "--tombstone-grace", "2s", "--anti-entropy-interval", "0")
    try:
        stub, metadata = cluster.peer(0)
        timestamp = int(time.time() * 1000) << 16
        reply = stub.Replicate(peer_pb2.ReplicateRequest(records=[
            peer_pb2.Record(key="dropped", tombstone=True, expires_at_unix_ms=0, timestamp=timestamp, node=5)]),
            metadata=metadata, timeout=10)
        assert reply.applied == 1
        code, out, _ = cluster.ctl("status", "--json")
        assert json.loads(out)["nodes"][0]["entries"] == 1
        wait_for(lambda: json.loads(cluster.ctl("status", "--json")[1])["nodes"][0]["entries"] == 0, 10,
                 "the tombstone swept after its grace")
    finally:
        cluster.stop_all()


@pytest.mark.parametrize("flag", ["--listen", "--metrics-listen"])
def test_a_port_in_use_is_one_readable_line_and_a_clean_exit(flag):
    """A taken port (gRPC or metrics) ends the node with exit 2 and one line naming the address:
    the metrics case crashed the node on an unkept promise ("leaking promise") before."""
    import os
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        listen = address if flag == "--listen" else f"127.0.0.1:{free_port()}"
        metrics = ["--metrics-listen", address] if flag == "--metrics-listen" else []
        result = subprocess.run([os.environ["AEROCACHE_NODE"], "--listen", listen, *metrics],
                                capture_output=True, timeout=30, env={**os.environ, "SWIFTNIO_STRICT": "true"})
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2, lines
    assert any(f"cannot listen on {address}: Address already in use" in line for line in lines), lines
    assert not any("Fatal error" in line or "crashed" in line for line in lines), lines
