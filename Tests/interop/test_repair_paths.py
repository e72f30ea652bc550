"""Each repair path alone, on 3 real nodes: hinted handoff off leaves a restarted node empty;
read repair on refills it from quorum reads."""
import time

import pytest

from cluster import Cluster, wait_for
from conftest import cache_pb2

KEYS = [f"repair:{i}" for i in range(40)]


def start_cluster(*flags):
    # Anti-entropy off: each path is tested alone (test_antientropy.py tests anti-entropy alone).
    cluster = Cluster(3, "--anti-entropy-interval", "0", *flags)
    cluster.wait_converged()
    return cluster


def miss_writes_then_restart(cluster):
    """Kills node-2, writes KEYS through node-0 (quorum), restarts node-2 empty."""
    cluster.kill(2)
    stub = cluster.stub(0)
    for key in KEYS:
        stub.Set(cache_pb2.SetRequest(key=key, value=key.encode(), consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
    cluster.start(2, "--bootstrap", "off")  # no streaming: each repair path alone
    wait_for(lambda: cluster.status()["node-2"]["state"] == "up", 15, "node-2 back up")


def keys_on_node_2(cluster):
    return cluster.status(via=2)["node-2"]["keys"]


def test_without_hinted_handoff_nothing_is_replayed():
    cluster = start_cluster("--hinted-handoff", "off", "--read-repair", "off")
    try:
        miss_writes_then_restart(cluster)
        # Hints would be replayed within a gossip round or two (200 ms each); give them 3 s.
        time.sleep(3)
        assert keys_on_node_2(cluster) == 0
        # Quorum reads still answer (2 replicas hold every key) but, with read repair off, repair nothing.
        stub = cluster.stub(0)
        for key in KEYS:
            reply = stub.Get(cache_pb2.GetRequest(key=key, consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
            assert reply.found and reply.value == key.encode()
        time.sleep(1)
        assert keys_on_node_2(cluster) == 0
    finally:
        cluster.stop_all()


def test_read_repair_alone_refills_a_replica_from_quorum_reads():
    cluster = start_cluster("--hinted-handoff", "off")
    try:
        miss_writes_then_restart(cluster)
        assert keys_on_node_2(cluster) == 0, "no hints: node-2 starts empty"
        stub = cluster.stub(0)
        for key in KEYS:
            reply = stub.Get(cache_pb2.GetRequest(key=key, consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
            assert reply.found and reply.value == key.encode()
        wait_for(lambda: keys_on_node_2(cluster) == len(KEYS), 10, "read repair refilling node-2")
    finally:
        cluster.stop_all()
