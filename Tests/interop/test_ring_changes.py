"""The ring changes without losing a read: join, decommission, remove, a rolling restart with data lost.

Real nodes, N = 3, 2,000 keys written at quorum and 20 counters; a Get load at `one` (and at
`quorum` for the restart) runs through every live node throughout and counts every miss.
"""
import threading
import time

import grpc

from cluster import Cluster, wait_for
from conftest import cache_pb2, health_pb2, health_pb2_grpc
from aerocache.v1 import peer_pb2

KEYS = [f"ring:{i}" for i in range(2000)]
COUNTERS = [f"ring-counter:{i}" for i in range(20)]
BIG = "ring:big"  # a value of the largest size a client may set: it streams and is handed over whole
BIG_VALUE = bytes(range(256)) * 4096
COPIES = 3 * (len(KEYS) + len(COUNTERS) + 1)


def fill(cluster):
    """Writes every key at quorum (spread over the nodes) and counts the counters up; answers their values."""
    stubs = [cluster.stub(i) for i in sorted(cluster.processes)]
    for number, key in enumerate(KEYS):
        stubs[number % len(stubs)].Set(cache_pb2.SetRequest(key=key, value=f"v-{key}".encode(),
                                                            consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
    stubs[0].Set(cache_pb2.SetRequest(key=BIG, value=BIG_VALUE, consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
    for number, key in enumerate(COUNTERS):
        for step in range(3):
            stubs[(number + step) % len(stubs)].Increment(cache_pb2.IncrementRequest(key=key, delta=number + 1), timeout=10)
    return counter_values(cluster, 0)


def big_value_everywhere(cluster, indexes):
    """Whether every node in `indexes` reads the 1 MiB value whole at `one`."""
    return all(cluster.stub(i).Get(cache_pb2.GetRequest(key=BIG, consistency=cache_pb2.CONSISTENCY_ONE),
                                   timeout=10).value == BIG_VALUE for i in indexes)


def counter_values(cluster, via):
    stub = cluster.stub(via)
    return {key: stub.Get(cache_pb2.GetRequest(key=key, consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10).value
            for key in COUNTERS}


def copies(cluster, indexes):
    return sum(cluster.keys(i) for i in indexes)


class GetLoad:
    """Reads every key through every node in `targets`, a thread per node, round after round
    until stopped (or 300 s); a key not found is a miss, a failed call an error."""

    def __init__(self, cluster, targets, levels=(cache_pb2.CONSISTENCY_ONE,)):
        self.cluster = cluster
        self.levels = levels
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.misses = []
        self.errors = []
        self.reads = 0
        self.threads = {}
        for index in targets:
            self.add(index)

    def add(self, index):
        """Reads through node `index` (again: on a new channel, as the old one backs off from a node that was gone)."""
        with self.lock:
            active = threading.Event()
            active.set()
            self.threads[index] = (threading.Thread(target=self.run, args=(index, active), daemon=True), active)
            self.threads[index][0].start()

    def remove(self, index):
        """Stops reading through node `index`; answers once its reads have ended."""
        with self.lock:
            thread, active = self.threads.pop(index)
        active.clear()
        thread.join(timeout=30)

    def run(self, target, active):
        stub = self.cluster.stub(target)
        deadline = time.monotonic() + 300
        number = target * 97
        while active.is_set() and not self.stop_event.is_set() and time.monotonic() < deadline:
            key = KEYS[number % len(KEYS)]
            level = self.levels[number % len(self.levels)]
            number += 1
            try:
                reply = stub.Get(cache_pb2.GetRequest(key=key, consistency=level), timeout=5)
                if not reply.found:
                    self.misses.append((key, target, level))
            except grpc.RpcError as error:
                self.errors.append((key, target, error.code(), error.details()))
            with self.lock:
                self.reads += 1

    def stop(self):
        self.stop_event.set()
        for thread, _ in list(self.threads.values()):
            thread.join(timeout=30)
        return self


def serving(cluster, index):
    """Whether node `index` has joined (before, it answers every call UNAVAILABLE)."""
    try:
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(cluster.address(index)))
        return health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


class Writer:
    """Writes fresh keys at quorum through `targets` in a thread until stopped (bounded: 300 s,
    20,000 keys); remembers which were acknowledged and which failed."""

    def __init__(self, cluster, targets, prefix):
        self.stubs = [cluster.stub(i) for i in targets]
        self.prefix = prefix
        self.acknowledged = []
        self.failed = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        deadline = time.monotonic() + 300
        for number in range(20_000):
            if self.stop_event.is_set() or time.monotonic() > deadline:
                return
            key = f"{self.prefix}:{number}"
            try:
                self.stubs[number % len(self.stubs)].Set(cache_pb2.SetRequest(
                    key=key, value=f"v-{key}".encode(), consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
                self.acknowledged.append(key)
            except grpc.RpcError as error:
                self.failed.append((key, error.code(), error.details()))

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=30)
        return self


def readable_everywhere(cluster, keys, indexes):
    """The keys some node in `indexes` does not find at `one`."""
    missing = []
    for index in indexes:
        stub = cluster.stub(index)
        for key in keys:
            if not stub.Get(cache_pb2.GetRequest(key=key, consistency=cache_pb2.CONSISTENCY_ONE), timeout=10).found:
                missing.append((key, index))
    return missing


def test_a_fifth_node_joins_four_without_a_miss_and_takes_its_share():
    cluster = Cluster(5, "--anti-entropy-interval", "0", "--log-level", "info", metrics=True, started=4)  # streaming alone
    try:
        wait_for(lambda: all(cluster.converged(via=i, count=4) for i in range(4)), 30, "four nodes up in every view")
        counters = fill(cluster)
        wait_for(lambda: copies(cluster, range(4)) == COPIES, 30, f"{COPIES} copies on four nodes")
        load = GetLoad(cluster, range(4))
        writer = Writer(cluster, range(4), "during-join")
        time.sleep(1)
        cluster.start(4)
        wait_for(lambda: serving(cluster, 4), 20, "node-4 has joined")
        load.add(4)
        try:
            wait_for(lambda: all(cluster.status(via=i).get("node-4", {}).get("state") == "up" for i in range(5)), 60,
                     "node-4 up in every view")
        except AssertionError:
            print(cluster.log(4)[-5000:])
            for i in range(5):
                print(i, {k: v["state"] for k, v in cluster.status(via=i).items()})
            raise
        time.sleep(1)
        writer.stop()
        assert writer.failed == [], writer.failed[:5]
        assert len(writer.acknowledged) > 50
        # The old owners keep what they lost for a while (views that lag still read there), then drop it.
        total = COPIES + 3 * len(writer.acknowledged)
        wait_for(lambda: copies(cluster, range(5)) == total, 60, f"exactly {total} copies on five nodes")
        load.stop()
        assert load.reads > 2000
        assert load.misses == [], f"{len(load.misses)} misses of {load.reads} reads: {load.misses[:5]}"
        assert load.errors == [], f"{len(load.errors)} errors of {load.reads} reads: {load.errors[:5]}"
        newcomer = cluster.keys(4)
        share = total / 5
        assert abs(newcomer - share) <= share * 0.25, f"node-4 holds {newcomer}, its share is {share:.0f}"
        for via in range(5):
            assert counter_values(cluster, via) == counters
        assert big_value_everywhere(cluster, range(5))
        # Written while it joined: each on node-4 too where it is a replica (it took writes at once).
        assert readable_everywhere(cluster, writer.acknowledged, range(5)) == []
        assert cluster.metric(4, "aerocache_stream_bytes_total", {"direction": "in"}) > 100_000
        assert cluster.metric(4, "aerocache_stream_ranges_pending") == 0
        own = cluster.status(via=4)["node-4"]
        assert own["streaming"]["purpose"] == "joining" and own["streaming"]["done"], own
    finally:
        cluster.stop_all()


def test_decommission_hands_every_range_over_then_the_node_exits_0():
    cluster = Cluster(5, "--anti-entropy-interval", "0")  # streaming alone
    try:
        cluster.wait_converged(timeout=60)
        counters = fill(cluster)
        wait_for(lambda: copies(cluster, range(5)) == COPIES, 60, f"{COPIES} copies on five nodes")
        load = GetLoad(cluster, range(5))
        writer = Writer(cluster, range(4), "during-decommission")
        time.sleep(1)
        load.remove(4)  # it stops at the end: reads through it are not the point
        # Through the leaving node itself: the command follows it, then asks the others.
        code, out, err = cluster.ctl("decommission", "node-4", "--wait", "120s", via=4, timeout=150)
        assert code == 0, out + err
        assert "node-4 handed its ranges over and left the ring" in out
        assert cluster.processes[4].wait(timeout=30) == 0, cluster.log(4)
        writer.stop()
        assert writer.failed == [], writer.failed[:5]
        total = COPIES + 3 * len(writer.acknowledged)
        wait_for(lambda: copies(cluster, range(4)) == total, 30, f"exactly {total} copies on four nodes")
        assert readable_everywhere(cluster, writer.acknowledged, range(4)) == []
        load.stop()
        assert load.misses == [], f"{len(load.misses)} misses of {load.reads} reads: {load.misses[:5]}"
        assert load.errors == [], f"{len(load.errors)} errors of {load.reads} reads: {load.errors[:5]}"
        assert "node-4" not in cluster.status(via=1)
        for via in range(4):
            assert counter_values(cluster, via) == counters
        assert big_value_everywhere(cluster, range(4))
    finally:
        cluster.stop_all()


def test_decommission_and_remove_refuse_what_they_cannot_do():
    cluster = Cluster(3)
    try:
        cluster.wait_converged()
        code, _, err = cluster.ctl("remove", "node-2", via=0)
        assert code == 2 and "not down" in err and "decommission" in err, err
        code, _, err = cluster.ctl("remove", "node-9", via=0)
        assert code == 2 and "not a member" in err, err
        code, _, err = cluster.ctl("decommission", "node-9", via=0)
        assert code == 2 and "not a member" in err, err
        code, _, err = cluster.ctl("decommission", "node-2", via=0)
        assert code == 2 and "fewer" in err and "add a node first" in err, err
        # The node itself checks who is meant: a call sent to the wrong node changes nothing.
        from aerocache.v1 import admin_pb2, admin_pb2_grpc
        admin = admin_pb2_grpc.AdminStub(grpc.insecure_channel(cluster.address(1)))
        try:
            admin.Decommission(admin_pb2.DecommissionRequest(node_id="node-2"), timeout=10)
            raise AssertionError("node-1 took a decommission meant for node-2")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "not node-2" in error.details()
        assert all(cluster.alive(i) for i in range(3))
        assert all(state["state"] == "up" for state in cluster.status(via=2).values())
    finally:
        cluster.stop_all()


def test_remove_of_a_killed_node_re_replicates_its_ranges_within_60s():
    cluster = Cluster(4, "--anti-entropy-interval", "0")  # streaming alone, not anti-entropy
    try:
        cluster.wait_converged()
        counters = fill(cluster)
        wait_for(lambda: copies(cluster, range(4)) == COPIES, 30, f"{COPIES} copies on four nodes")
        cluster.kill(3)
        cluster.wait_state(3, "down", via=0, timeout=30)
        started = time.monotonic()
        code, out, err = cluster.ctl("remove", "node-3", "--wait", "60s", via=0, timeout=90)
        assert code == 0, out + err
        wait_for(lambda: copies(cluster, range(3)) == COPIES, 60 - (time.monotonic() - started),
                 f"exactly {COPIES} copies on the three survivors")
        for via in range(3):
            assert "node-3" not in cluster.status(via=via)
            assert counter_values(cluster, via) == counters
        assert big_value_everywhere(cluster, range(3))
    finally:
        cluster.stop_all()


def test_a_rolling_restart_with_data_lost_misses_no_read_at_one_or_quorum():
    cluster = Cluster(4, "--anti-entropy-interval", "0", "--hinted-handoff", "off", "--read-repair", "off")
    try:
        cluster.wait_converged()
        counters = fill(cluster)
        wait_for(lambda: copies(cluster, range(4)) == COPIES, 30, f"{COPIES} copies on four nodes")
        load = GetLoad(cluster, range(4), levels=(cache_pb2.CONSISTENCY_ONE, cache_pb2.CONSISTENCY_QUORUM))
        for index in range(4):
            load.remove(index)
            cluster.processes[index].terminate()
            assert cluster.processes[index].wait(timeout=30) == 0
            cluster.wait_state(index, "down", via=(index + 1) % 4, timeout=30)
            cluster.start(index)  # empty: a cache restarts without its data
            wait_for(lambda: serving(cluster, index), 20, f"node-{index} answers")
            load.add(index)
            wait_for(lambda: all(cluster.status(via=i).get(f"node-{index}", {}).get("state") == "up" for i in range(4)),
                     60, f"node-{index} up again in every view")
            assert cluster.keys(index) >= COPIES / 4 * 0.5, f"node-{index} came back refilled"
        time.sleep(1)
        load.stop()
        assert load.reads > 2000
        assert load.misses == [], f"{len(load.misses)} misses of {load.reads} reads: {load.misses[:5]}"
        assert load.errors == [], f"{len(load.errors)} errors of {load.reads} reads: {load.errors[:5]}"
        wait_for(lambda: copies(cluster, range(4)) == COPIES, 30, f"exactly {COPIES} copies again")
        for via in range(4):
            assert counter_values(cluster, via) == counters
        assert big_value_everywhere(cluster, range(4))
    finally:
        cluster.stop_all()


def test_a_sender_killed_mid_stream_the_joiner_goes_on_from_another_copy():
    # node-3 streams ~3 MiB at 128 KiB/s (about 20 s); node-1, one of the holders it streams
    # from, is killed once a fifth of the ranges are in. Nothing but streaming fills node-3.
    cluster = Cluster(4, "--anti-entropy-interval", "0", "--read-repair", "off", started=3)
    try:
        wait_for(lambda: all(cluster.converged(via=i, count=3) for i in range(3)), 30, "three nodes up in every view")
        counters = fill(cluster)
        padded = [f"pad:{i}" for i in range(1500)]
        stub = cluster.stub(0)
        for key in padded:
            stub.Set(cache_pb2.SetRequest(key=key, value=key.encode().ljust(2048, b"."),
                                          consistency=cache_pb2.CONSISTENCY_QUORUM), timeout=10)
        total = COPIES + 3 * len(padded)
        wait_for(lambda: copies(cluster, range(3)) == total, 30, f"{total} copies on three nodes")
        load = GetLoad(cluster, [0, 2])
        cluster.start(3, "--stream-rate", "128KiB")
        wait_for(lambda: serving(cluster, 3), 20, "node-3 has joined")

        def streamed_a_fifth():
            progress = cluster.status(via=3)["node-3"].get("streaming") or {}
            assert not progress.get("done"), f"node-3 finished streaming before node-1 was killed: {progress}"
            return progress.get("ranges_done", 0) * 5 >= progress.get("ranges_total", 1)
        wait_for(streamed_a_fifth, 30, "node-3 streamed a fifth of its ranges")
        cluster.kill(1)
        # One move at a time: node-1 cannot be removed while node-3 still joins (its ranges are listed).
        cluster.wait_state(1, "down", via=0, timeout=30)
        if cluster.status(via=0)["node-3"]["state"] == "joining":
            code, _, err = cluster.ctl("remove", "node-1", via=0)
            assert code == 2 and "node-3 is streaming its ranges in" in err, err
        wait_for(lambda: all(cluster.status(via=i).get("node-3", {}).get("state") == "up" for i in (0, 2, 3)), 90,
                 "node-3 up in every live view")
        load.add(3)
        time.sleep(1)
        load.stop()
        assert load.misses == [], f"{len(load.misses)} misses of {load.reads} reads: {load.misses[:5]}"
        assert load.errors == [], f"{len(load.errors)} errors of {load.reads} reads: {load.errors[:5]}"
        # Every key node-3 replicates is in its own store: it answers each at `one` itself.
        assert readable_everywhere(cluster, KEYS + padded, [3]) == []
        # With node-1 forgotten, the survivors take its copies: exactly N of each again, which
        # holds only if node-3 took every range it gained on joining.
        code, out, err = cluster.ctl("remove", "node-1", "--wait", "60s", via=0, timeout=90)
        assert code == 0, out + err
        wait_for(lambda: copies(cluster, [0, 2, 3]) == total, 60, f"exactly {total} copies on three nodes")
        for via in (0, 2, 3):
            assert counter_values(cluster, via) == counters
        assert big_value_everywhere(cluster, [0, 2, 3])
    finally:
        cluster.stop_all()


def test_a_node_removed_while_cut_off_stops_when_it_hears_of_it():
    # Paused past the failure detector, removed, resumed: it hears of its removal in gossip and
    # exits with one line instead of serving from a ring the others have left.
    cluster = Cluster(4)
    try:
        cluster.wait_converged()
        cluster.pause(3)
        cluster.wait_state(3, "down", via=0, timeout=30)
        code, out, err = cluster.ctl("remove", "node-3", via=0)
        assert code == 0, out + err
        wait_for(lambda: all("node-3" not in cluster.status(via=i) for i in range(3)), 15, "node-3 forgotten everywhere")
        cluster.resume(3)
        assert cluster.processes[3].wait(timeout=30) != 0
        log = cluster.log(3)
        assert "node-3 was removed from the cluster" in log, log[-2000:]
        time.sleep(2)  # its last gossip is in: it must not come back
        for via in range(3):
            assert "node-3" not in cluster.status(via=via)
            assert cluster.converged(via=via, count=3)
    finally:
        cluster.stop_all()


def test_the_founding_node_restarted_empty_without_seeds_is_refilled_before_it_serves_reads():
    # Operators restart nodes with the command line they started them with: node-0's has no
    # seeds. It founds a cluster of one until the others' gossip reaches it, then finds out it
    # was their member, takes its tokens back and refills before anyone reads from it.
    cluster = Cluster(4, "--anti-entropy-interval", "0", "--hinted-handoff", "off", "--read-repair", "off",
                      "--log-level", "info")
    try:
        cluster.wait_converged()
        counters = fill(cluster)
        wait_for(lambda: copies(cluster, range(4)) == COPIES, 30, f"{COPIES} copies on four nodes")
        load = GetLoad(cluster, [1, 2, 3], levels=(cache_pb2.CONSISTENCY_ONE, cache_pb2.CONSISTENCY_QUORUM))
        cluster.processes[0].terminate()
        assert cluster.processes[0].wait(timeout=30) == 0
        cluster.wait_state(0, "down", via=1, timeout=30)
        cluster.start(0, seeded=False)
        wait_for(lambda: all(cluster.status(via=i).get("node-0", {}).get("state") == "up" for i in range(4)), 60,
                 "node-0 up again in every view")
        load.add(0)
        time.sleep(1)
        load.stop()
        assert load.reads > 1000
        assert load.misses == [], f"{len(load.misses)} misses of {load.reads} reads: {load.misses[:5]}"
        assert load.errors == [], f"{len(load.errors)} errors of {load.reads} reads: {load.errors[:5]}"
        assert readable_everywhere(cluster, KEYS, [0]) == []
        assert "restarted without --seeds" in cluster.log(0)
        wait_for(lambda: copies(cluster, range(4)) == COPIES, 30, f"exactly {COPIES} copies again")
        for via in range(4):
            assert cluster.converged(via=via)
            assert counter_values(cluster, via) == counters
    finally:
        cluster.stop_all()


def test_a_refilling_node_answers_no_peer_read_until_it_holds_its_ranges():
    # A coordinator whose view lags may still ask it: "not found" would count as an answer.
    cluster = Cluster(3, "--anti-entropy-interval", "0", "--hinted-handoff", "off", "--read-repair", "off")
    try:
        cluster.wait_converged()
        fill(cluster)
        wait_for(lambda: copies(cluster, range(3)) == COPIES, 30, f"{COPIES} copies on three nodes")
        cluster.processes[2].terminate()
        assert cluster.processes[2].wait(timeout=30) == 0
        cluster.wait_state(2, "down", via=0, timeout=30)
        cluster.start(2, "--stream-rate", "64KiB")  # the 1 MiB value alone takes 16 s
        wait_for(lambda: serving(cluster, 2), 20, "node-2 answers")
        assert cluster.status(via=0)["node-2"]["state"] == "joining"
        stub, metadata = cluster.peer(2)
        try:
            stub.Read(peer_pb2.ReadRequest(keys=[KEYS[0]]), metadata=metadata, timeout=10)
            raise AssertionError("node-2 answered a peer read while refilling")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE and "streaming its ranges in" in error.details()
        wait_for(lambda: cluster.status(via=0)["node-2"]["state"] == "up", 60, "node-2 up")
        assert cluster.record(2, KEYS[0]).value == f"v-{KEYS[0]}".encode()
        assert big_value_everywhere(cluster, range(3))
    finally:
        cluster.stop_all()


def test_a_node_restarted_without_seeds_that_founded_alone_stops_when_its_cluster_reaches_it():
    # Its members paused past its 3 s founding window: it founds a cluster of its own. When
    # they reach it, it must not merge into them as a normal, empty member: it exits with one line.
    cluster = Cluster(3)
    try:
        cluster.wait_converged()
        cluster.kill(0)
        cluster.wait_state(0, "down", via=1, timeout=30)
        cluster.pause(1)
        cluster.pause(2)
        cluster.start(0, seeded=False)
        cluster.wait_serving(0)  # founded alone
        cluster.resume(1)
        cluster.resume(2)
        assert cluster.processes[0].wait(timeout=30) != 0
        log = cluster.log(0)
        assert "founded a cluster of its own before its cluster reached it" in log, log[-2000:]
        for via in (1, 2):
            assert cluster.status(via=via)["node-0"]["state"] == "down"
    finally:
        cluster.stop_all()
