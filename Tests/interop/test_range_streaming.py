"""Range streaming (ring changes): StreamRange pages out what a node holds for a range of key
hashes, through real nodes; only members may call it, and garbage pages stay bounded."""
import os
import time

import grpc
import pytest

from cluster import SECRET_HEADER, Cluster
from conftest import Node, cache_pb2, free_port
from aerocache.v1 import peer_pb2, peer_pb2_grpc  # noqa: E402


def stream(stub, metadata, start, width, max_bytes):
    """Every page of a range; returns the records and how many pages it took."""
    records, offset, pages = [], 0, 0
    while True:
        reply = stub.StreamRange(peer_pb2.StreamRangeRequest(start=start, width=width, offset=offset, max_bytes=max_bytes),
                                 metadata=metadata, timeout=10)
        records += reply.records
        pages += 1
        assert pages < 10_000, "pages never end"
        if reply.done:
            return records, pages
        assert reply.records, "an empty page that is not the last"
        offset = reply.next


def test_a_range_streams_every_key_once_with_deletes_and_expiries_as_anti_entropy_sends_them():
    cluster = Cluster(1, "--anti-entropy-interval", "0")
    try:
        cache = cluster.stub(0)
        for i in range(400):
            cache.Set(cache_pb2.SetRequest(key=f"kept:{i}", value=b"v" * (i % 200)), timeout=10)
        for i in range(50):
            cache.Set(cache_pb2.SetRequest(key=f"deleted:{i}", value=b"x"), timeout=10)
            cache.Delete(cache_pb2.DeleteRequest(key=f"deleted:{i}"), timeout=10)
            cache.Set(cache_pb2.SetRequest(key=f"expiring:{i}", value=b"gone soon", ttl_ms=1000), timeout=10)
        cache.Increment(cache_pb2.IncrementRequest(key="hits", delta=5), timeout=10)
        time.sleep(1.5)  # the expiring keys expire

        stub, metadata = cluster.peer(0)
        whole, pages = stream(stub, metadata, start=0, width=0, max_bytes=2000)
        keys = [record.key for record in whole]
        assert len(keys) == len(set(keys)) and pages < 5, "pages are filled to 64 KiB at least, not 2,000 bytes"
        by_key = {record.key: record for record in whole}
        assert {f"kept:{i}" for i in range(400)} | {f"deleted:{i}" for i in range(50)} | {"hits"} <= set(keys)
        assert all(by_key[f"deleted:{i}"].tombstone for i in range(50))
        assert all(not by_key[f"expiring:{i}"].value for i in range(50) if f"expiring:{i}" in by_key), \
            "an expired value travelled with its bytes"
        assert by_key["kept:199"].value == b"v" * 199 and len(by_key["hits"].counter_windows) > 0

        # Two halves of the ring hold the same keys as the whole (but the expired ones: they
        # leave what replicas must agree on once a sweep has passed their expiry, which may be
        # between the two reads).
        first, _ = stream(stub, metadata, start=0, width=2**63, max_bytes=500)
        second, _ = stream(stub, metadata, start=2**63, width=2**63, max_bytes=1 << 30)
        lasting = sorted(key for key in keys if not key.startswith("expiring:"))
        assert sorted(r.key for r in first + second if not r.key.startswith("expiring:")) == lasting
        assert not set(r.key for r in first) & set(r.key for r in second)
    finally:
        cluster.stop_all()


def test_stream_range_is_for_members_only_and_garbage_pages_stay_bounded():
    cluster = Cluster(1, "--anti-entropy-interval", "0")
    try:
        cluster.stub(0).Set(cache_pb2.SetRequest(key="big", value=b"b" * (1 << 20)), timeout=10)
        cluster.stub(0).Set(cache_pb2.SetRequest(key="small", value=b"s"), timeout=10)
        forged, _ = cluster.peer(0, secret=False)
        with pytest.raises(grpc.RpcError) as info:
            forged.StreamRange(peer_pb2.StreamRangeRequest(width=0), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub, metadata = cluster.peer(0)
        # max_bytes 0 is taken as 64 KiB: the 1 MiB value fills a page by itself.
        records, pages = stream(stub, metadata, start=0, width=0, max_bytes=0)
        assert sorted(r.key for r in records) == ["big", "small"] and pages <= 2
        # An offset past the range's end, or a range holding nothing: one empty last page.
        reply = stub.StreamRange(peer_pb2.StreamRangeRequest(start=5, width=10, offset=2**64 - 1, max_bytes=100),
                                 metadata=metadata, timeout=10)
        assert reply.done and not reply.records
        assert cluster.stub(0).Get(cache_pb2.GetRequest(key="small"), timeout=10).value == b"s"
    finally:
        cluster.stop_all()


def test_a_node_that_has_not_joined_refuses_to_stream_rather_than_answer_an_empty_range():
    cluster = Cluster(1, "--anti-entropy-interval", "0")
    lonely = None
    try:
        lonely = Node(os.environ["AEROCACHE_NODE"], "--node-id", "lonely", "--seeds", f"127.0.0.1:{free_port()}",
                      "--cluster-secret-file", cluster.secret_file)
        channel = grpc.insecure_channel(lonely.address)
        stub = peer_pb2_grpc.PeerStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.StreamRange(peer_pb2.StreamRangeRequest(width=0, max_bytes=1000),
                             metadata=[(SECRET_HEADER, cluster.secret)], timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
        channel.close()
    finally:
        if lonely:
            lonely.stop()
        cluster.stop_all()
