"""Finding 1: peer calls only from peers, and every peer record checked like a client request.

Each forged call is sent twice: without the cluster secret (refused whole, UNAUTHENTICATED),
and with it but with garbage contents (refused record by record, and counted). The node
keeps serving throughout.
"""
import time

import grpc
import pytest

from cluster import Cluster, wait_for
from conftest import assert_serving, cache_pb2
from aerocache.v1 import peer_pb2  # noqa: E402

MAX_U64 = 2**64 - 1


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(4, metrics=True)
    try:
        c.wait_converged()
        yield c
    finally:
        c.stop_all()


def now_timestamp(offset_ms=0):
    """A hybrid-logical-clock timestamp for the wall clock plus `offset_ms`."""
    return (int(time.time() * 1000) + offset_ms) << 16


def member(id, address, tokens=(), incarnation=None):
    return peer_pb2.MemberRecord(id=id, address=address, tokens=list(tokens),
                                 incarnation=incarnation or int(time.time() * 1000), heartbeat=1)


def settings():
    return peer_pb2.ClusterSettings(replication_factor=3, tokens_per_node=256)


def forged_calls():
    """One call of each Peer method, as a stranger would send it."""
    return [
        ("Join", peer_pb2.JoinRequest(member=member("intruder", "127.0.0.1:1"), settings=settings())),
        ("Gossip", peer_pb2.GossipMessage(settings=settings(), members=[member("intruder", "127.0.0.1:1", range(256))])),
        ("Replicate", peer_pb2.ReplicateRequest(records=[peer_pb2.Record(key="owned", value=b"forged",
                                                                        timestamp=MAX_U64, node=1)])),
        ("Read", peer_pb2.ReadRequest(keys=["anything"])),
    ]


def test_every_peer_call_without_the_secret_is_unauthenticated(cluster):
    for metadata in ([], [("aerocache-cluster-secret", "not-the-secret-at-all")]):
        stub, _ = cluster.peer(0, secret=False)
        for method, request in forged_calls():
            with pytest.raises(grpc.RpcError) as info:
                getattr(stub, method)(request, metadata=metadata, timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, (method, info.value.details())
    states = {id: node["state"] for id, node in cluster.status().items()}
    assert set(states) == {f"node-{i}" for i in range(4)} and set(states.values()) == {"up"}, states
    assert_serving(cluster.address(0))


def test_a_client_cannot_claim_its_call_was_forwarded(cluster):
    # With 4 nodes and 3 replicas, node-0 holds no copy of this key: a call marked `forwarded`
    # from a client must still go to the key's replicas instead of being stored on node-0.
    key = next(f"forwarded:{i}" for i in range(1000) if 0 not in cluster.owners(f"forwarded:{i}"))
    cluster.stub(0).Set(cache_pb2.SetRequest(key=key, value=b"v", forwarded=True), timeout=10)
    wait_for(lambda: all(cluster.record(i, key) is not None for i in cluster.owners(key)), 10, "the key on its replicas")
    assert cluster.record(0, key) is None, "node-0 took a copy of a key it does not own"
    # A client's batch read marked `forwarded` is not answered from node-0's empty store.
    reply = cluster.stub(0).BatchGet(cache_pb2.BatchGetRequest(keys=[key], forwarded=True), timeout=10)
    assert reply.results[0].found and reply.results[0].value == b"v"


def test_garbage_records_with_the_secret_are_refused_one_by_one(cluster):
    stub, metadata = cluster.peer(1)
    good = peer_pb2.Record(key="good", value=b"kept", timestamp=now_timestamp(), node=7)
    records = [
        peer_pb2.Record(key="k" * 70_000, value=b"x", timestamp=now_timestamp(), node=7),  # trapped the node once
        peer_pb2.Record(key="meta", metadata={"m": "x" * 70_000}, timestamp=now_timestamp(), node=7),
        peer_pb2.Record(key="pinned", value=b"forever", timestamp=MAX_U64, node=7),  # would win every later write
        peer_pb2.Record(key="neg", value=b"x", expires_at_unix_ms=-5, timestamp=now_timestamp(), node=7),
        peer_pb2.Record(key="dead", value=b"x", tombstone=True, timestamp=now_timestamp(), node=7),
        good,
    ]
    reply = stub.Replicate(peer_pb2.ReplicateRequest(records=records), metadata=metadata, timeout=10)
    assert list(reply.rejected) == [0, 1, 2, 3, 4] and reply.applied == 1
    assert cluster.record(1, "good").value == b"kept"
    assert cluster.record(1, "pinned") is None
    for reason, least in (("key", 1), ("metadata", 1), ("clock_skew", 1), ("expiry", 1), ("value", 1)):
        assert cluster.metric(1, "aerocache_rejected_records_total", {"reason": reason}) >= least, reason
    # A set of "pinned" wins normally: nothing pinned it.
    cluster.stub(1).Set(cache_pb2.SetRequest(key="pinned", value=b"normal"), timeout=10)
    assert cluster.stub(1).Get(cache_pb2.GetRequest(key="pinned"), timeout=10).value == b"normal"
    assert_serving(cluster.address(1))


def test_a_read_of_a_million_keys_is_refused_at_once(cluster):
    stub, metadata = cluster.peer(2)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        stub.Read(peer_pb2.ReadRequest(keys=["k"] * 1_000_000), metadata=metadata, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "1000" in info.value.details()
    assert time.monotonic() - started < 10
    assert_serving(cluster.address(2))


def test_forged_member_records_with_the_secret_are_refused(cluster):
    stub, metadata = cluster.peer(3)
    with pytest.raises(grpc.RpcError) as info:
        stub.Join(peer_pb2.JoinRequest(member=member("joiner", "127.0.0.1:1", tokens=[1, 2, 3]), settings=settings()),
                  metadata=metadata, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    future = int(time.time() * 1000) + 3_600_000
    refused = [
        member("evil-tokens", "127.0.0.1:2", tokens=range(5)),            # a token count no member has
        member("evil-address", "not an address", tokens=range(256)),
        member("node-0", "127.0.0.1:9", tokens=range(256), incarnation=future),  # redirecting a real member
    ]
    before = cluster.metric(3, "aerocache_rejected_records_total", {"reason": "member"})
    stub.Gossip(peer_pb2.GossipMessage(settings=settings(), members=refused), metadata=metadata, timeout=10)
    assert cluster.metric(3, "aerocache_rejected_records_total", {"reason": "member"}) >= before + 3
    status = cluster.status(via=3)
    assert set(status) == {f"node-{i}" for i in range(4)}, status
    assert status["node-0"]["address"] == cluster.address(0)
    assert_serving(cluster.address(3))
