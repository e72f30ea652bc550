"""A standard gRPC client (Python grpcio, generated from proto/) against a real aerocache-node."""
import time
import grpc
import pytest

from conftest import cache_pb2, health_pb2


def rpc_error(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10, **kwargs)
    return info.value


def test_set_get_has_delete(stub):
    reply = stub.Set(cache_pb2.SetRequest(key="user:profile:123", value=b'{"name":"ada"}',
                                          metadata={"userId": "123", "source": "db"}))
    assert reply.expires_at_unix_ms == 0
    got = stub.Get(cache_pb2.GetRequest(key="user:profile:123"))
    assert got.found and got.value == b'{"name":"ada"}'
    assert dict(got.metadata) == {"userId": "123", "source": "db"}
    assert got.expires_at_unix_ms == 0
    assert stub.Has(cache_pb2.HasRequest(key="user:profile:123")).exists
    assert stub.Delete(cache_pb2.DeleteRequest(key="user:profile:123")).deleted
    assert not stub.Has(cache_pb2.HasRequest(key="user:profile:123")).exists
    missing = stub.Get(cache_pb2.GetRequest(key="user:profile:123"))
    assert not missing.found and missing.value == b""


def test_ttl_sets_an_absolute_expiry_and_expires(stub):
    before = int(time.time() * 1000)
    reply = stub.Set(cache_pb2.SetRequest(key="flash", value=b"x", ttl_ms=300))
    # The node reads a coarse clock (a few ms resolution): allow 10 ms of slack.
    assert before + 300 - 10 <= reply.expires_at_unix_ms <= int(time.time() * 1000) + 300 + 10
    assert stub.Get(cache_pb2.GetRequest(key="flash")).expires_at_unix_ms == reply.expires_at_unix_ms
    deadline = time.monotonic() + 5
    while stub.Has(cache_pb2.HasRequest(key="flash")).exists:
        assert time.monotonic() < deadline, "entry with a 300 ms TTL still present after 5 s"
        time.sleep(0.05)


def test_increment(stub):
    assert stub.Increment(cache_pb2.IncrementRequest(key="rate:1.2.3.4", delta=1, ttl_ms=60_000)).value == 1
    assert stub.Increment(cache_pb2.IncrementRequest(key="rate:1.2.3.4", delta=9)).value == 10
    assert stub.Get(cache_pb2.GetRequest(key="rate:1.2.3.4")).value == b"10"
    stub.Set(cache_pb2.SetRequest(key="not-a-number", value=b"abc"))
    err = rpc_error(stub.Increment, cache_pb2.IncrementRequest(key="not-a-number", delta=1))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_health_check(health):
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    named = health.Check(health_pb2.HealthCheckRequest(service="aerocache.v1.Cache"))
    assert named.status == health_pb2.HealthCheckResponse.SERVING
    err = rpc_error(health.Check, health_pb2.HealthCheckRequest(service="nope.Service"))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_method_is_unimplemented(channel):
    call = channel.unary_unary("/aerocache.v1.Cache/Nope", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    err = rpc_error(call, b"")
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/aerocache.v1.Cache/Nope" in err.details()
    service = channel.unary_unary("/no.such.Service/Get", request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
    assert rpc_error(service, b"").code() == grpc.StatusCode.UNIMPLEMENTED


def test_oversized_request_is_resource_exhausted(stub):
    err = rpc_error(stub.Set, cache_pb2.SetRequest(key="huge", value=b"x" * (5 << 20)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit" in err.details()
    assert stub.Get(cache_pb2.GetRequest(key="huge")).found is False


def test_bad_input_is_invalid_argument_naming_the_limit(stub, channel):
    cases = [
        (stub.Set, cache_pb2.SetRequest(key="", value=b"v"), "empty"),
        (stub.Get, cache_pb2.GetRequest(key="k" * 513), "512"),
        (stub.Set, cache_pb2.SetRequest(key="big", value=b"v" * ((1 << 20) + 1)), "1048576"),
        (stub.Set, cache_pb2.SetRequest(key="meta", value=b"v", metadata={"k": "v" * 1024}), "1024"),
        (stub.Set, cache_pb2.SetRequest(key="neg", value=b"v", ttl_ms=-1), "negative"),
    ]
    for call, request, fragment in cases:
        err = rpc_error(call, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (request, err)
        assert fragment in err.details(), err.details()
    # A key that is not UTF-8 cannot be built with the generated class: send raw bytes.
    raw_get = channel.unary_unary("/aerocache.v1.Cache/Get", request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
    err = rpc_error(raw_get, b"\x0a\x02\xff\xfe")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in err.details()
    # Non-ASCII text in grpc-message is percent-encoded on the wire and decoded by the client.
    err = rpc_error(stub.Get, cache_pb2.GetRequest(key="ключ" * 100))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "800 bytes" in err.details()


def test_messages_split_across_frames(stub):
    # 1 MiB crosses many 16 KiB DATA frames in both directions.
    value = bytes(range(256)) * 4096
    stub.Set(cache_pb2.SetRequest(key="blob", value=value))
    assert stub.Get(cache_pb2.GetRequest(key="blob")).value == value


def test_200_concurrent_calls_on_one_connection(stub):
    for i in range(200):
        stub.Set(cache_pb2.SetRequest(key=f"c{i}", value=str(i).encode()))
    futures = [stub.Get.future(cache_pb2.GetRequest(key=f"c{i}"), timeout=20) for i in range(200)]
    counters = [stub.Increment.future(cache_pb2.IncrementRequest(key="concurrent", delta=1), timeout=20)
                for _ in range(200)]
    # Every future carries its own 20 s deadline, so these waits are bounded.
    assert [f.result().value for f in futures] == [str(i).encode() for i in range(200)]
    assert sorted(f.result().value for f in counters) == list(range(1, 201))


def test_deadline_is_propagated(node):
    """The node reads grpc-timeout: a call whose deadline passed before it could start is
    answered DEADLINE_EXCEEDED by the node itself; a generous one succeeds."""
    from test_robustness import H2Client, get_request
    client = H2Client(node)
    stream = client.start(extra=[("grpc-timeout", "1m")])  # 1 ms
    time.sleep(0.05)  # the request ends after its deadline
    client.send(stream, get_request("nothing"), end=True)
    headers, _, _ = client.result(stream)
    assert headers["grpc-status"] == "4" and "deadline" in headers.get("grpc-message", ""), headers
    stream = client.start(extra=[("grpc-timeout", "10S")])
    client.send(stream, get_request("nothing"), end=True)
    headers, _, _ = client.result(stream)
    assert headers["grpc-status"] == "0", headers
    client.close()

