"""What an operator watches: the metrics the contract names (requests by op and status,
latency, keys, memory, evictions, hints, anti-entropy, membership changes, connections) and
JSON logs, one line per membership change and per error.
"""
import json
import re
import urllib.request

import grpc
import pytest

from cluster import Cluster, wait_for
from conftest import cache_pb2

CONTRACT_METRICS = [
    "aerocache_requests_total", "aerocache_responses_total", "aerocache_request_duration_seconds_bucket",
    "aerocache_forwarded_requests_total", "aerocache_keys", "aerocache_memory_bytes", "aerocache_evictions_total",
    "aerocache_hints_pending", "aerocache_hints_dropped_total", "aerocache_antientropy_repaired_keys_total",
    "aerocache_antientropy_rounds_total", "aerocache_antientropy_bytes_total", "aerocache_rejected_records_total",
    "aerocache_stream_bytes_total", "aerocache_stream_ranges_pending", "aerocache_membership_changes_total",
    "aerocache_connections",
]


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(3, "--log-format", "json", "--log-level", "notice", "--anti-entropy-interval", "2s", metrics=True)
    try:
        c.wait_converged()
        yield c
    finally:
        c.stop_all()


def scrape(cluster, index):
    return urllib.request.urlopen(f"http://127.0.0.1:{cluster.metrics_ports[index]}/metrics", timeout=10).read().decode()


def json_lines(cluster, index):
    lines = [line for line in cluster.log(index).splitlines() if line.strip()]
    assert lines, "the node logged nothing"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_every_metric_of_the_contract_is_served(cluster):
    stub = cluster.stub(0)
    stub.Set(cache_pb2.SetRequest(key="obs:present", value=b"v"), timeout=5)
    wait_for(lambda: cluster.metric(0, "aerocache_antientropy_rounds_total") > 0, 30, "an anti-entropy round")
    names = {re.match(r"^(\w+)", line).group(1) for line in scrape(cluster, 0).splitlines()
             if line and not line.startswith("#")}
    missing = [name for name in CONTRACT_METRICS if name not in names]
    assert not missing, f"not served: {missing}"
    # Latency buckets fine enough for calls of tens of microseconds (the default starts at 5 ms).
    assert re.search(r'aerocache_request_duration_seconds_bucket\{le="0\.0001"\}', scrape(cluster, 0))


def test_answers_are_counted_by_op_and_status(cluster):
    stub = cluster.stub(1)

    def gets_answered():
        return sum(cluster.metric(i, "aerocache_responses_total", {"op": op, "code": "OK"})
                   for i in range(3) for op in ("get", "batch_get"))
    before_ok = gets_answered()
    before_bad = cluster.metric(1, "aerocache_responses_total", {"op": "set", "code": "INVALID_ARGUMENT"})
    for index in range(10):
        stub.Get(cache_pb2.GetRequest(key=f"obs:get:{index}", consistency=cache_pb2.CONSISTENCY_ONE), timeout=5)
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as error:
            stub.Set(cache_pb2.SetRequest(key="", value=b"v"), timeout=5)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A Get that node-1 forwards to the key's replica is counted once, where it arrived.
    assert gets_answered() - before_ok == 10
    assert cluster.metric(1, "aerocache_responses_total", {"op": "set", "code": "INVALID_ARGUMENT"}) - before_bad == 3


def test_open_connections_are_counted(cluster):
    # The peers' connections, at least, and this client's once it has called.
    channel = grpc.insecure_channel(cluster.address(2))
    try:
        from conftest import cache_pb2_grpc
        cache_pb2_grpc.CacheStub(channel).Has(cache_pb2.HasRequest(key="obs:conn"), timeout=5)
        assert cluster.metric(2, "aerocache_connections") >= 3
    finally:
        channel.close()


def test_logs_are_json_with_one_line_per_membership_change(cluster):
    for index in range(3):
        for line in json_lines(cluster, index):
            assert {"time", "level", "logger", "message"} <= line.keys(), line
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["time"]), line
    def node_1_lines():
        return [line for line in json_lines(cluster, 0) if line.get("member") == "node-1"]
    before = cluster.metric(0, "aerocache_membership_changes_total", {"state": "down"})
    cluster.kill(2)
    try:
        wait_for(lambda: any(line.get("member") == "node-2" and line.get("state") == "down"
                             for line in json_lines(cluster, 0)), 30, "node-0 logs node-2 down")
        assert cluster.metric(0, "aerocache_membership_changes_total", {"state": "down"}) == before + 1
        changes = [line for line in json_lines(cluster, 0) if line.get("member") == "node-2" and line.get("state") == "down"]
        assert len(changes) == 1, changes  # one line per change, not one per gossip round
        assert changes[0]["message"] == "member node-2 is now down" and changes[0]["level"] == "notice"
    finally:
        cluster.start(2)
        cluster.wait_converged()
    wait_for(lambda: any(line.get("member") == "node-2" and line.get("state") == "up" and line.get("was") != "unknown"
                         for line in json_lines(cluster, 0)), 30, "node-0 logs node-2 up again")
    # node-1's lines each say something new: never the state it was already in.
    states = [line["state"] for line in node_1_lines()]
    assert all(a != b for a, b in zip(states, states[1:])), states
