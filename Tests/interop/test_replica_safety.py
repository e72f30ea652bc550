"""Findings 2 to 8: each path by which a healthy cluster lost or corrupted data, replayed with
real nodes (a replica paused with SIGSTOP, killed with kill -9, restarted empty, a clock
minutes off), asserting the promise that path broke.

Three nodes with replication factor 3: every node holds every key, so any node can be the
replica that missed a write.
"""
import concurrent.futures
import os
import subprocess
import tempfile
import time

import grpc
import pytest
import xxhash

from cluster import Cluster, wait_for
from conftest import cache_pb2
from aerocache.v1 import peer_pb2  # noqa: E402

QUORUM = cache_pb2.CONSISTENCY_QUORUM


@pytest.fixture
def make_cluster():
    started = []

    def make(*flags, metrics=False, size=3):
        # Anti-entropy off: each scenario sets up a stale replica and checks one path
        # (test_antientropy.py covers anti-entropy's part).
        cluster = Cluster(size, "--anti-entropy-interval", "0", *flags, metrics=metrics)
        started.append(cluster)  # stopped at the end whatever happens next
        cluster.wait_converged()
        return cluster
    yield make
    for cluster in started:
        cluster.stop_all()


def isolate(cluster, index, others=(0, 1)):
    """Pauses node `index` until the others see it down: writes then skip it."""
    cluster.pause(index)
    for other in others:
        cluster.wait_state(index, "down", via=other)


def bring_back(cluster, index, via=(0, 1)):
    """Resumes node `index` and waits until it and the others see each other up."""
    cluster.resume(index)
    for other in via:
        cluster.wait_state(index, "up", via=other)
        cluster.wait_state(other, "up", via=index)


def value_on(cluster, index, key):
    """What node `index` answers for `key` at consistency one (None: not found)."""
    reply = cluster.stub(index).Get(cache_pb2.GetRequest(key=key, consistency=cache_pb2.CONSISTENCY_ONE), timeout=10)
    return reply.value if reply.found else None


def everywhere(cluster, key, value, indexes=(0, 1, 2)):
    cluster.stub(0).Set(cache_pb2.SetRequest(key=key, value=value, consistency=cache_pb2.CONSISTENCY_ALL), timeout=10)
    assert all(value_on(cluster, i, key) == value for i in indexes)


# Finding 2 -----------------------------------------------------------------------------------

def test_a_touch_on_a_stale_replica_changes_only_the_expiry(make_cluster):
    cluster = make_cluster("--hinted-handoff", "off", "--read-repair", "off")
    everywhere(cluster, "session", b"v1")
    everywhere(cluster, "gone", b"v1")
    isolate(cluster, 2)
    cluster.stub(0).Set(cache_pb2.SetRequest(key="session", value=b"v2", consistency=QUORUM), timeout=10)
    cluster.stub(0).Delete(cache_pb2.DeleteRequest(key="gone", consistency=QUORUM), timeout=10)
    bring_back(cluster, 2)
    assert value_on(cluster, 2, "session") == b"v1", "node-2 missed v2 (no hints, no repair)"
    # node-2 holds the key, so it coordinates the touches itself.
    touched = cluster.stub(2).Touch(cache_pb2.TouchRequest(key="session", ttl_ms=3_600_000), timeout=10)
    assert touched.found
    cluster.stub(2).Touch(cache_pb2.TouchRequest(key="gone", ttl_ms=3_600_000), timeout=10)
    for index in (0, 1):
        reply = cluster.stub(index).Get(cache_pb2.GetRequest(key="session", consistency=cache_pb2.CONSISTENCY_ONE),
                                        timeout=10)
        assert reply.value == b"v2", f"node-{index} lost the acknowledged v2 to a touch"
        assert reply.expires_at_unix_ms == touched.expires_at_unix_ms, "the touch changed the expiry"
        assert value_on(cluster, index, "gone") is None, f"a touch brought the deleted key back on node-{index}"
    assert cluster.stub(0).Get(cache_pb2.GetRequest(key="session", consistency=QUORUM), timeout=10).value == b"v2"
    assert not cluster.stub(0).Get(cache_pb2.GetRequest(key="gone", consistency=QUORUM), timeout=10).found


# Finding 3 -----------------------------------------------------------------------------------

def increment(cluster, index, key, delta=1):
    return cluster.stub(index).Increment(cache_pb2.IncrementRequest(key=key, delta=delta, ttl_ms=600_000),
                                         timeout=10).value


def test_a_counter_survives_its_first_replica_restarting_empty(make_cluster):
    cluster = make_cluster()
    key = cluster.key_owned_by([0])
    assert [increment(cluster, 0, key) for _ in range(10)][-1] == 10
    cluster.kill(0)
    cluster.start(0, "--bootstrap", "off")  # back empty, not refilled by streaming
    cluster.wait_converged()
    assert cluster.keys(0) == 0, "node-0 came back empty"
    assert increment(cluster, 0, key) == 11, "the count went on, it did not start again"
    for index in range(3):
        wait_for(lambda: value_on(cluster, index, key) == b"11", 10, f"11 on node-{index}")


def test_a_counter_taken_over_by_a_stale_replica_goes_on(make_cluster):
    cluster = make_cluster()
    key = cluster.key_owned_by([0, 1])
    isolate(cluster, 1, others=(0, 2))
    for _ in range(10):
        increment(cluster, 0, key)  # node-1 misses them (its hints wait for it)
    cluster.kill(0)                  # the coordinator dies before node-1 hears of them
    cluster.resume(1)
    cluster.wait_state(1, "up", via=2)
    cluster.wait_state(2, "up", via=1)
    cluster.wait_state(0, "down", via=1)
    assert increment(cluster, 1, key) == 11, "node-1 counted from its stale copy"
    wait_for(lambda: value_on(cluster, 2, key) == b"11", 10, "11 on node-2")


def test_increments_through_every_replica_at_once_all_count(make_cluster):
    cluster = make_cluster()
    key = cluster.key_owned_by([0])

    def count(index):
        return [increment(cluster, index, key, delta=index + 1) for _ in range(50)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        seen = list(pool.map(count, range(3)))
    for values in seen:
        assert values == sorted(values), "a replica's answers never go backwards"
    total = 50 * (1 + 2 + 3)
    for index in range(3):
        wait_for(lambda: value_on(cluster, index, key) == str(total).encode(), 10, f"{total} on node-{index}")


# Finding 4 -----------------------------------------------------------------------------------

def test_an_expired_write_replayed_late_still_replaces_the_older_value(make_cluster):
    cluster = make_cluster()
    everywhere(cluster, "flag", b"v1")
    isolate(cluster, 2)
    cluster.stub(0).Set(cache_pb2.SetRequest(key="flag", value=b"v2", ttl_ms=2_000, consistency=QUORUM), timeout=10)
    time.sleep(2.5)  # v2 has expired before node-2 can hear of it
    bring_back(cluster, 2)
    wait_for(lambda: value_on(cluster, 2, "flag") is None, 10,
             "node-2 serving nothing once the newer (expired) v2 is replayed to it, instead of v1")
    assert hints_pending(cluster, 0) == 0


def test_read_repair_cannot_copy_an_older_value_over_an_expired_newer_one(make_cluster):
    cluster = make_cluster("--hinted-handoff", "off")
    everywhere(cluster, "flag", b"v1")
    isolate(cluster, 2)
    cluster.stub(0).Set(cache_pb2.SetRequest(key="flag", value=b"v2", ttl_ms=1_000, consistency=QUORUM), timeout=10)
    time.sleep(4)  # v2 expired and swept on node-0 and node-1
    bring_back(cluster, 2)
    assert value_on(cluster, 2, "flag") == b"v1", "node-2 still holds v1"
    reply = cluster.stub(2).Get(cache_pb2.GetRequest(key="flag", consistency=QUORUM), timeout=10)
    assert not reply.found, "a quorum read returned the older v1"
    for index in range(3):
        wait_for(lambda: value_on(cluster, index, "flag") is None, 10, f"flag gone on node-{index}")


def hints_pending(cluster, index):
    code, out, err = cluster.ctl("ring", "--json", via=index)
    assert code == 0, err
    import json
    return json.loads(out)["hints_pending"]


# Finding 5 -----------------------------------------------------------------------------------

def test_a_delete_survives_memory_pressure_on_the_replicas_that_saw_it(make_cluster):
    cluster = make_cluster("--hinted-handoff", "off", "--max-memory", "4MiB")
    everywhere(cluster, "deleted", b"old")
    isolate(cluster, 2)
    cluster.stub(0).Delete(cache_pb2.DeleteRequest(key="deleted", consistency=QUORUM), timeout=10)
    filler = b"f" * 20_000
    stub = cluster.stub(0)
    for i in range(600):  # 12 MiB through 4 MiB nodes: most entries are evicted
        stub.Set(cache_pb2.SetRequest(key=f"fill:{i}", value=filler, consistency=cache_pb2.CONSISTENCY_ONE), timeout=10)
    assert all(cluster.status(via=i)[f"node-{i}"]["evictions"] > 100 for i in (0, 1))
    bring_back(cluster, 2)
    for via in (0, 1):
        assert not cluster.stub(via).Get(cache_pb2.GetRequest(key="deleted", consistency=QUORUM), timeout=10).found, \
            "the deleted key came back from node-2's old copy"


def test_hints_are_bounded_in_bytes_and_what_is_dropped_is_counted(make_cluster):
    cluster = make_cluster("--max-memory", "16MiB", metrics=True)  # hints get an eighth: 2 MiB
    isolate(cluster, 2)
    value = b"h" * 100_000
    for i in range(60):  # 6 MiB of writes node-2 misses
        cluster.stub(0).Set(cache_pb2.SetRequest(key=f"hinted:{i}", value=value, consistency=QUORUM), timeout=10)
    assert cluster.metric(0, "aerocache_hints_dropped_total") > 0
    assert hints_pending(cluster, 0) * len(value) <= 2 << 20
    bring_back(cluster, 2)
    assert cluster.log(0).count("the hint store is full") == 1, "one log line per episode"


# Finding 6 -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clock_shift_library():
    """Builds the LD_PRELOAD shim that shifts one process's wall clock (see clockshift.c)."""
    directory = tempfile.mkdtemp()
    library = os.path.join(directory, "clockshift.so")
    source = os.path.join(os.path.dirname(__file__), "clockshift.c")
    compiler = next(c for c in ("cc", "clang", "gcc") if subprocess.run(["which", c], capture_output=True).returncode == 0)
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", library, source], check=True)
    yield library
    os.unlink(library)
    os.rmdir(directory)


def test_a_node_whose_clock_jumps_five_minutes_ahead_wins_no_write(make_cluster, clock_shift_library):
    cluster = make_cluster(metrics=True)
    shift = tempfile.NamedTemporaryFile("w", delete=False)
    shift.write("0")
    shift.close()
    try:
        cluster.kill(2)
        cluster.start(2, env={"LD_PRELOAD": clock_shift_library, "AEROCACHE_CLOCK_SHIFT_FILE": shift.name})
        cluster.wait_converged()
        everywhere(cluster, "skewed", b"v1")
        with open(shift.name, "w") as f:
            f.write("300000")  # node-2's wall clock jumps 5 minutes ahead
        time.sleep(0.15)  # the shim reads the shift every 100 ms
        # A write before node-2 notices is stamped 5 minutes ahead: peers refuse it (not acknowledged).
        early = write_error(cluster, 2, "probe")
        assert early != "", "a write stamped 5 minutes ahead was acknowledged"
        # Stamped and refused by the peers; otherwise refused before stamping (node-2 already
        # noticed, or saw its peers' heartbeats as 5 minutes old).
        stamped_ahead = "acknowledged" in early
        # node-2 notices that its clock is far from both peers' and stamps nothing.
        wait_for(lambda: "clock" in write_error(cluster, 2, "other-probe"), 10, "node-2 refusing to coordinate writes")
        cluster.stub(0).Set(cache_pb2.SetRequest(key="skewed", value=b"v2", consistency=QUORUM), timeout=10)
        for index in range(3):
            wait_for(lambda: value_on(cluster, index, "skewed") == b"v2", 10, f"v2 on node-{index}")
        # A record stamped by a clock 5 minutes fast is refused by the others, not acknowledged.
        stub, metadata = cluster.peer(0)
        future = (int(time.time() * 1000) + 300_000) << 16
        reply = stub.Replicate(peer_pb2.ReplicateRequest(records=[peer_pb2.Record(key="skewed", value=b"fast",
                                                                                 timestamp=future, node=99)]),
                               metadata=metadata, timeout=10)
        assert list(reply.rejected) == [0]
        assert cluster.metric(0, "aerocache_rejected_records_total", {"reason": "clock_skew"}) >= 1
        cluster.stub(1).Set(cache_pb2.SetRequest(key="skewed", value=b"v3", consistency=QUORUM), timeout=10)
        for index in range(3):
            wait_for(lambda: value_on(cluster, index, "skewed") == b"v3", 10, f"v3 on node-{index}: a later write wins")
        with open(shift.name, "w") as f:
            f.write("0")  # fixed: node-2 coordinates again (but not on the store shard of "probe", where
            # it stamped versions 5 minutes ahead before it noticed, until its clock catches up)
        fresh = next(f"fresh:{i}" for i in range(1000) if shard(f"fresh:{i}") not in (shard("probe"), shard("other-probe")))
        wait_for(lambda: write_error(cluster, 2, fresh) == "", 15, "node-2 taking writes again")
        if stamped_ahead:
            late = write_error(cluster, 2, "probe")
            assert "went back" in late, f"no write below what it stamped ahead ({early!r}, then {late!r})"
    finally:
        os.unlink(shift.name)


def shard(key):
    """The store shard (of 64) that holds `key`."""
    return xxhash.xxh64_intdigest(key.encode()) >> 58


def write_error(cluster, index, key="probe"):
    try:
        cluster.stub(index).Set(cache_pb2.SetRequest(key=key, value=b"p"), timeout=10)
        return ""
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        return error.details()


# Finding 7 -----------------------------------------------------------------------------------

def test_one_mebibyte_values_replicate_at_quorum_and_through_hints(make_cluster):
    cluster = make_cluster()
    value = os.urandom(1 << 20)

    def put(i):
        cluster.stub(i % 3).Set(cache_pb2.SetRequest(key=f"big:{i}", value=value, consistency=QUORUM), timeout=30)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(16)))  # UNAVAILABLE once: four queued 1 MiB writes passed the request limit
    isolate(cluster, 2)
    for i in range(10):
        cluster.stub(0).Set(cache_pb2.SetRequest(key=f"late:{i}", value=value, consistency=QUORUM), timeout=30)
    bring_back(cluster, 2)
    wait_for(lambda: all(cluster.record(2, f"late:{i}") is not None for i in range(10)), 30,
             "node-2 receiving 10 MiB of hints")
    assert cluster.record(2, "late:9").value == value


# Finding 8 -----------------------------------------------------------------------------------

def test_a_paused_replica_slows_no_quorum_read(make_cluster):
    cluster = make_cluster()
    everywhere(cluster, "fast", b"v")
    cluster.pause(2)  # not yet suspected: still asked, never answers
    try:
        started = time.monotonic()
        slowest = 0.0
        while time.monotonic() - started < 1.5:
            began = time.monotonic()
            assert cluster.stub(0).Get(cache_pb2.GetRequest(key="fast", consistency=QUORUM), timeout=10).value == b"v"
            slowest = max(slowest, time.monotonic() - began)
        assert slowest < 0.5, f"a quorum read waited {slowest:.2f}s for the paused replica"
    finally:
        cluster.resume(2)


def test_a_paused_replica_does_not_grow_the_coordinator(make_cluster):
    cluster = make_cluster("--max-memory", "64MiB")
    value = os.urandom(1 << 20)
    cluster.stub(0).Set(cache_pb2.SetRequest(key="warm", value=value), timeout=10)
    before = cluster.rss_bytes(0)
    cluster.pause(2)
    try:
        for i in range(300):  # 300 MiB for a replica that takes none of it
            cluster.stub(0).Set(cache_pb2.SetRequest(key=f"flood:{i}", value=value, consistency=QUORUM), timeout=30)
        grown = cluster.rss_bytes(0) - before
        status = cluster.status()["node-0"]
        assert status["memory_bytes"] <= 64 << 20, status
        assert grown < 160 << 20, f"node-0 grew by {grown >> 20} MiB for a paused peer"
    finally:
        cluster.resume(2)
