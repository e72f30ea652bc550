"""Storage behaviour through the wire: batches, touch, the memory bound, eviction policies."""
import json
import os
import subprocess
import time

import grpc
import pytest

from conftest import Node, cache_pb2, cache_pb2_grpc


def admin_status(node):
    from aerocache.v1 import admin_pb2, admin_pb2_grpc
    with grpc.insecure_channel(node.address) as channel:
        return admin_pb2_grpc.AdminStub(channel).Status(admin_pb2.StatusRequest(), timeout=10).nodes[0]


def test_batch_get_and_set(stub):
    entries = [cache_pb2.SetRequest(key=f"batch:{i}", value=f"v{i}".encode(), metadata={"i": str(i)}) for i in range(50)]
    reply = stub.BatchSet(cache_pb2.BatchSetRequest(entries=entries))
    assert len(reply.results) == 50
    got = stub.BatchGet(cache_pb2.BatchGetRequest(keys=[f"batch:{i}" for i in range(50)] + ["batch:missing"]))
    assert [r.value for r in got.results[:50]] == [f"v{i}".encode() for i in range(50)]
    assert got.results[7].metadata["i"] == "7"
    assert not got.results[50].found


def test_a_bad_entry_fails_the_whole_batch(stub):
    entries = [cache_pb2.SetRequest(key="good", value=b"v"), cache_pb2.SetRequest(key="", value=b"v")]
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchSet(cache_pb2.BatchSetRequest(entries=entries))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not stub.Has(cache_pb2.HasRequest(key="good")).exists, "nothing of a refused batch is stored"
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchGet(cache_pb2.BatchGetRequest(keys=["k"] * 1001))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "1000" in info.value.details()


def test_touch(stub):
    stub.Set(cache_pb2.SetRequest(key="touched", value=b"v", ttl_ms=200))
    reply = stub.Touch(cache_pb2.TouchRequest(key="touched", ttl_ms=0))
    assert reply.found and reply.expires_at_unix_ms == 0
    time.sleep(0.4)
    assert stub.Has(cache_pb2.HasRequest(key="touched")).exists, "touch removed the expiry"
    assert not stub.Touch(cache_pb2.TouchRequest(key="never-there", ttl_ms=10)).found


def test_noeviction_refuses_writes_when_full():
    node = Node(os.environ["AEROCACHE_NODE"], "--max-memory", "256KiB", "--eviction-policy", "noeviction")
    try:
        with grpc.insecure_channel(node.address) as channel:
            stub = cache_pb2_grpc.CacheStub(channel)
            stored = 0
            with pytest.raises(grpc.RpcError) as info:
                for i in range(1000):
                    stub.Set(cache_pb2.SetRequest(key=f"k{i}", value=b"x" * 1000), timeout=10)
                    stored += 1
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "memory" in info.value.details()
            assert 100 < stored < 260
            assert stub.Get(cache_pb2.GetRequest(key="k0"), timeout=10).found, "nothing was evicted"
            assert stub.Delete(cache_pb2.DeleteRequest(key="k1"), timeout=10).deleted, "deletes still work"
        status = admin_status(node)
        assert status.evictions == 0 and status.memory_bytes <= 256 * 1024
    finally:
        assert node.stop() == 0


def test_eviction_keeps_memory_under_the_bound():
    node = Node(os.environ["AEROCACHE_NODE"], "--max-memory", "1MiB")
    try:
        with grpc.insecure_channel(node.address) as channel:
            stub = cache_pb2_grpc.CacheStub(channel)
            for start in range(0, 3000, 100):
                stub.BatchSet(cache_pb2.BatchSetRequest(entries=[
                    cache_pb2.SetRequest(key=f"k{i}", value=b"x" * 1000) for i in range(start, start + 100)]), timeout=10)
                assert admin_status(node).memory_bytes <= 1 << 20
            assert stub.Get(cache_pb2.GetRequest(key="k2999"), timeout=10).found
        status = admin_status(node)
        assert status.evictions > 1500
        assert status.memory_bytes > (1 << 20) * 0.8
    finally:
        assert node.stop() == 0


def test_bad_flags_are_one_line_and_exit_2(node):
    for flags, fragment in ((["--eviction-policy", "random"], "noeviction"), (["--max-memory", "lots"], "size"),
                            (["--listen", "nowhere"], "HOST:PORT"), (["--listen", node.address], "cannot listen")):
        result = subprocess.run([os.environ["AEROCACHE_NODE"], *flags], capture_output=True, timeout=20)
        assert result.returncode == 2, (flags, result)
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("aerocache-node: ") and fragment in lines[0], result.stderr


def test_bench_reports_the_contract_json(node, tmp_path):
    bench = os.path.join(os.path.dirname(os.environ["AEROCACHE_NODE"]), "aerocache-bench")
    report = tmp_path / "bench.json"
    subprocess.run([bench, "--endpoints", node.address, "--duration", "1s", "--warmup", "200ms", "--keys", "500",
                    "--concurrency", "8", "--mix", "get=80,set=20", "--key-distribution", "zipf", "--prefill",
                    "--json", str(report)], check=True, capture_output=True, timeout=60)
    document = json.loads(report.read_text())
    assert {"ops_per_sec", "operations", "errors", "hit_ratio", "latency_us", "config"} <= set(document)
    assert set(document["latency_us"]) == {"p50", "p90", "p99", "p999", "max"}
    assert document["operations"] > 100 and document["errors"] == 0
    assert document["hit_ratio"] == 1.0
    lat = document["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    # Open loop: about the asked rate.
    subprocess.run([bench, "--endpoints", node.address, "--duration", "1s", "--warmup", "0", "--rate", "500",
                    "--keys", "500", "--json", str(report)], check=True, capture_output=True, timeout=60)
    assert 350 <= json.loads(report.read_text())["ops_per_sec"] <= 650


def test_metrics_endpoint_serves_prometheus_text():
    import urllib.request
    from conftest import free_port
    metrics_port = free_port()
    node = Node(os.environ["AEROCACHE_NODE"], "--metrics-listen", f"127.0.0.1:{metrics_port}")
    try:
        with grpc.insecure_channel(node.address) as channel:
            stub = cache_pb2_grpc.CacheStub(channel)
            for i in range(5):
                stub.Set(cache_pb2.SetRequest(key=f"m{i}", value=b"v"), timeout=10)
            stub.Get(cache_pb2.GetRequest(key="m0"), timeout=10)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line and not line.startswith("#")}
        assert samples['aerocache_requests_total{op="set"}'] == 5
        assert samples['aerocache_requests_total{op="get"}'] == 1
        assert samples["aerocache_keys"] == 5
        assert samples["aerocache_memory_bytes"] > 0
        for name in ("aerocache_forwarded_requests_total", "aerocache_evictions_total", "aerocache_hints_pending",
                     "aerocache_antientropy_repaired_keys_total", "aerocache_request_duration_seconds_count"):
            assert name in samples, name
        assert samples["aerocache_request_duration_seconds_count"] == 6
    finally:
        assert node.stop() == 0
