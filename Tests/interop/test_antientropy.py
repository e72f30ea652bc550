"""Anti-entropy alone (riak_test verify_aae style): hints and read repair off, 3 real nodes,
N = 3. A node restarted empty is refilled without a read touching its keys; what was deleted
or expired while it was down stays gone; a full replica is not refilled at the cost of evictions."""
import os
import time

import grpc
import pytest

from cluster import Cluster, wait_for
from conftest import cache_pb2
from aerocache.v1 import peer_pb2  # noqa: E402

ALONE = ("--hinted-handoff", "off", "--read-repair", "off")


def batch_set(stub, keys, ttl_ms=0):
    for start in range(0, len(keys), 200):
        entries = [cache_pb2.SetRequest(key=key, value=key.encode(), ttl_ms=ttl_ms) for key in keys[start:start + 200]]
        reply = stub.BatchSet(cache_pb2.BatchSetRequest(entries=entries, consistency=cache_pb2.CONSISTENCY_ALL),
                              timeout=30)
        assert len(reply.results) == len(entries), reply


def live_copies(cluster, indexes):
    return sum(cluster.keys(index) for index in indexes)


def background_thread(pid):
    """(nice value, CPU nanoseconds so far) of each of the node's threads named `background`."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                name, rest = f.read().split("(", 1)[1].rsplit(")", 1)
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                runtime = int(f.read().split()[0])
        except OSError:
            continue  # the thread ended meanwhile
        if name == "background":
            found.append((int(rest.split()[16]), runtime))
    return found


def test_a_node_restarted_empty_is_refilled_and_nothing_deleted_or_expired_comes_back():
    cluster = Cluster(3, *ALONE, metrics=True)
    try:
        cluster.wait_converged()
        kept = [f"kept:{i}" for i in range(3000)]
        deleted = [f"deleted:{i}" for i in range(200)]
        expiring = [f"expiring:{i}" for i in range(200)]
        for index in range(3):
            batch_set(cluster.stub(index), kept[index * 1000:(index + 1) * 1000])
        batch_set(cluster.stub(0), deleted)
        batch_set(cluster.stub(0), expiring, ttl_ms=4000)
        wait_for(lambda: live_copies(cluster, range(3)) == 3 * 3400, 30, "every write on every replica")

        cluster.kill(2)
        stub = cluster.stub(0)
        for key in deleted:
            reply = stub.Delete(cache_pb2.DeleteRequest(key=key, consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
            assert reply.deleted
        time.sleep(4.5)  # the expiring keys expire while node-2 is down
        cluster.start(2, "--bootstrap", "off")  # back empty: what refills it is the point
        restarted = time.monotonic()
        cluster.wait_state(2, "up", via=0)
        assert cluster.keys(2) < 3000, "hinted handoff and read repair are off: node-2 starts empty"

        # Nothing reads the keys: only anti-entropy can bring them back.
        wait_for(lambda: live_copies(cluster, range(3)) == 9000, 60, "9,000 live copies again")
        refill_seconds = time.monotonic() - restarted
        assert refill_seconds < 60
        assert cluster.keys(2) == 3000
        for key in deleted:
            record = cluster.record(2, key)
            assert record is None or record.tombstone, f"deleted {key} came back on node-2: {record}"
        for key in expiring:
            record = cluster.record(2, key)
            assert record is None or not record.value, f"expired {key} travelled to node-2 with its value: {record}"
        for key in kept[::300]:
            assert cluster.record(2, key).value == key.encode()
        node2 = cluster.stub(2)
        for key in deleted[:50] + expiring[:50]:
            assert not node2.Get(cache_pb2.GetRequest(key=key), timeout=10).found, f"{key} reads again"
        repaired = sum(cluster.metric(i, "aerocache_antientropy_repaired_keys_total") for i in range(3))
        assert repaired >= 3000, repaired
        assert cluster.metric(0, "aerocache_antientropy_rounds_total") > 0
        assert cluster.metric(0, "aerocache_antientropy_bytes_total") > 0
        print(f"refilled in {refill_seconds:.1f} s, {repaired:.0f} keys repaired")
    finally:
        cluster.stop_all()


def test_repair_runs_a_round_now_and_prints_what_it_repaired():
    cluster = Cluster(3, *ALONE, "--anti-entropy-interval", "0")
    try:
        cluster.wait_converged()
        cluster.kill(2)
        keys = [f"missed:{i}" for i in range(50)]
        for key in keys:
            cluster.stub(0).Set(cache_pb2.SetRequest(key=key, value=b"v", consistency=cache_pb2.CONSISTENCY_QUORUM),
                                timeout=10)
        cluster.start(2, "--bootstrap", "off")  # back empty: what refills it is the point
        cluster.wait_state(2, "up", via=0)
        time.sleep(1)
        assert cluster.keys(2) == 0, "with anti-entropy off, nothing refills node-2 by itself"
        threads = [background_thread(cluster.processes[index].pid) for index in (0, 2)]
        assert [[nice for nice, _ in found] for found in threads] == [[10], [10]]
        code, out, err = cluster.ctl("repair", "--node", "node-2", via=0)
        assert code == 0, err
        assert "with node-2:" in out and "repaired 50 keys" in out, out
        assert cluster.keys(2) == 50
        code, out, err = cluster.ctl("repair", via=1)
        assert code == 0 and "repaired 0 keys" in out, out + err
        code, out, err = cluster.ctl("repair", "--node", "node-9", via=0)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "node-9" in err, err
        # The round ran on each side's thread of low priority, so that serving gets the CPU first.
        for before, index in zip(threads, (0, 2)):
            after = background_thread(cluster.processes[index].pid)
            assert after[0][1] > before[0][1], f"node-{index}'s background thread did not run: {before} -> {after}"
    finally:
        cluster.stop_all()


def test_a_full_replica_is_not_refilled_at_the_cost_of_evictions():
    cluster = Cluster(2, *ALONE, "--anti-entropy-interval", "1s", "--replication-factor", "2", "--max-memory", "4MiB",
                      metrics=True)
    try:
        cluster.wait_converged()
        stub = cluster.stub(0)
        value = b"x" * 4000
        for start in range(0, 3000, 100):
            entries = [cache_pb2.SetRequest(key=f"big:{i}", value=value) for i in range(start, start + 100)]
            stub.BatchSet(cache_pb2.BatchSetRequest(entries=entries, consistency=cache_pb2.CONSISTENCY_ONE), timeout=30)
        evictions = [cluster.status(via=i)[f"node-{i}"]["evictions"] for i in range(2)]
        assert min(evictions) > 0, evictions
        time.sleep(2)  # rounds in flight finish
        before = [cluster.status(via=i)[f"node-{i}"]["evictions"] for i in range(2)]
        rounds = cluster.metric(0, "aerocache_antientropy_rounds_total")
        time.sleep(5)  # about five rounds
        after = [cluster.status(via=i)[f"node-{i}"]["evictions"] for i in range(2)]
        assert cluster.metric(0, "aerocache_antientropy_rounds_total") >= rounds + 3, "rounds ran meanwhile"
        assert after == before, f"anti-entropy kept pushing evicted keys back: {before} -> {after}"
    finally:
        cluster.stop_all()


def test_a_paused_replica_holding_old_values_takes_the_deletes_and_expiries_it_missed():
    cluster = Cluster(3, *ALONE, "--anti-entropy-interval", "0")
    try:
        cluster.wait_converged()
        deleted = [f"deleted:{i}" for i in range(100)]
        expired = [f"expired:{i}" for i in range(100)]
        batch_set(cluster.stub(0), deleted + expired)
        wait_for(lambda: cluster.keys(2) == 200, 15, "node-2 holding every key")
        cluster.pause(2)
        cluster.wait_state(2, "down", via=0)
        stub = cluster.stub(0)
        for key in deleted:
            stub.Delete(cache_pb2.DeleteRequest(key=key, consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
        # A newer write that expires while node-2 sleeps: its older, never-expiring value must not come back.
        for key in expired:
            stub.Set(cache_pb2.SetRequest(key=key, value=b"newer", ttl_ms=1500, consistency=cache_pb2.CONSISTENCY_QUORUM),
                     timeout=10)
        time.sleep(2)
        cluster.resume(2)
        cluster.wait_state(2, "up", via=0)
        node2 = cluster.stub(2)
        assert node2.Get(cache_pb2.GetRequest(key=deleted[0]), timeout=10).found, "node-2 missed the deletes"
        assert node2.Get(cache_pb2.GetRequest(key=expired[0]), timeout=10).found, "node-2 holds the older values"
        code, out, err = cluster.ctl("repair", via=0)
        assert code == 0, err
        for index in range(3):
            for key in deleted + expired:
                reply = cluster.stub(index).Get(cache_pb2.GetRequest(key=key), timeout=10)
                assert not reply.found, f"{key} reads {reply.value!r} on node-{index} after repair"
        assert cluster.keys(2) == 0
        # And the other way round: node-2 starting the round brings nothing back to its peers.
        code, out, err = cluster.ctl("repair", via=2)
        assert code == 0 and "repaired 0 keys" in out, out + err
        assert [cluster.keys(i) for i in range(3)] == [0, 0, 0]
    finally:
        cluster.stop_all()


def test_forged_and_garbage_anti_entropy_calls_are_refused_and_the_node_serves_on():
    cluster = Cluster(1, "--anti-entropy-interval", "0")
    try:
        stub, metadata = cluster.peer(0)
        forged, _ = cluster.peer(0, secret=False)
        with pytest.raises(grpc.RpcError) as info:
            forged.DigestRoots(peer_pb2.DigestRootsRequest(pieces=[peer_pb2.DigestPiece(start=0, width=1)]), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            stub.SyncRecords(peer_pb2.SyncRecordsRequest(want=list(range(5000))), metadata=metadata, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "4096" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            stub.DigestKeys(peer_pb2.DigestKeysRequest(requests=[peer_pb2.BucketRequest(start=i) for i in range(65)]),
                            metadata=metadata, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Pieces this node does not cut, garbage masks, unknown keys: answered, nothing changes.
        reply = stub.DigestRoots(peer_pb2.DigestRootsRequest(pieces=[peer_pb2.DigestPiece(start=5, width=0, root=1)]),
                                 metadata=metadata, timeout=10)
        assert reply.unmatched == 1 and not reply.differing
        reply = stub.DigestKeys(peer_pb2.DigestKeysRequest(requests=[peer_pb2.BucketRequest(start=5, buckets=[2**64 - 1] * 9)]),
                                metadata=metadata, timeout=10)
        assert not reply.key_hashes
        # A record from the future and a tombstone with a value are refused on their own.
        future = int(time.time() * 1000 + 3_600_000) << 16
        reply = stub.SyncRecords(peer_pb2.SyncRecordsRequest(push=[
            peer_pb2.Record(key="future", value=b"x", timestamp=future, node=7),
            peer_pb2.Record(key="bad", value=b"x", tombstone=True, timestamp=1 << 16, node=7),
            peer_pb2.Record(key="fine", value=b"ok", timestamp=int(time.time() * 1000) << 16, node=7)],
            want=[0, 2**64 - 1]), metadata=metadata, timeout=10)
        assert reply.applied == 1 and not reply.records
        assert cluster.stub(0).Get(cache_pb2.GetRequest(key="fine"), timeout=10).value == b"ok"
        assert not cluster.stub(0).Get(cache_pb2.GetRequest(key="future"), timeout=10).found
    finally:
        cluster.stop_all()
