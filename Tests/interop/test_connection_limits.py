"""Finding 9: one client cannot exhaust a node.

A client that asks for large answers and never reads them, a load balancer opening and
closing connections all day, a header too long to quote: the node's memory stays bounded
and every call gets an answer.
"""
import concurrent.futures
import os
import socket
import struct
import time

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings

from conftest import assert_serving, cache_pb2, cache_pb2_grpc
from test_robustness import H2Client, framed, get_request


def rss_bytes(node):
    with open(f"/proc/{node.process.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_client_that_never_reads_its_answers_holds_a_bounded_amount(node, stub):
    # The stated bound: a connection holds at most 8 MiB of large requests and unsent answers,
    # plus the first 16 KiB of each stream; past it, completed calls wait to run.
    stub.Set(cache_pb2.SetRequest(key="huge", value=b"h" * (1 << 20)), timeout=10)
    before = rss_bytes(node)
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    config = h2.config.H2Configuration(client_side=True)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    # The largest windows a client may announce: nothing in HTTP/2 makes the node wait.
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    conn.increment_flow_control_window(2**31 - 1 - 65_535)
    sock.sendall(conn.data_to_send())
    payload = get_request("huge")
    for _ in range(1024):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", "/aerocache.v1.Cache/Get"),
                                   (":authority", "t"), ("content-type", "application/grpc"), ("te", "trailers")])
        conn.send_data(stream, payload, end_stream=True)
        sock.sendall(conn.data_to_send())
    time.sleep(3)  # the node does what it will with 1 GiB of answers nobody reads
    grown = rss_bytes(node) - before
    assert grown < 48 << 20, f"the node grew by {grown >> 20} MiB for one client that reads nothing"
    assert_serving(node.address)
    sock.close()
    assert_serving(node.address)


def test_twenty_thousand_bare_connections_leave_nothing_behind(node):
    def connect_and_close(count):
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            sock.close()

    connect_and_close(2_000)  # the allocator's caches settle
    time.sleep(0.5)
    before = rss_bytes(node)
    connect_and_close(20_000)
    time.sleep(1)
    grown = rss_bytes(node) - before
    assert grown < 4 << 20, f"20,000 connections left {grown >> 10} KiB behind"
    assert_serving(node.address)


def test_a_path_too_long_to_quote_still_gets_an_answer(node):
    client = H2Client(node)
    stream = client.start(path="/" + "a" * 80_000)  # Huffman-coded under 64 KiB, 80,000 bytes decoded
    client.send(stream, get_request("seed"), end=True)
    headers, _, reset = client.result(stream)
    assert reset is not None or headers.get("grpc-status") == "12", headers
    assert len(headers.get("grpc-message", "")) <= 4096
    stream = client.start(extra=[("grpc-encoding", "g" * 66_000)])
    client.send(stream, get_request("seed"), end=True)
    headers, _, reset = client.result(stream)
    assert reset is not None or headers.get("grpc-status") == "12", headers
    # The connection still answers a good call.
    stream = client.start()
    client.send(stream, get_request("seed"), end=True)
    headers, _, _ = client.result(stream)
    assert headers["grpc-status"] == "0"
    client.close()
    assert_serving(node.address)


def test_answers_larger_than_the_connection_budget_still_flow(node):
    # More than the 8 MiB a connection may hold: the answers go out as the client reads them.
    channel = grpc.insecure_channel(node.address, options=[("grpc.max_receive_message_length", 64 << 20)])
    stub = cache_pb2_grpc.CacheStub(channel)
    value = os.urandom(1 << 20)
    for i in range(12):
        stub.Set(cache_pb2.SetRequest(key=f"large:{i}", value=value), timeout=10)
    reply = stub.BatchGet(cache_pb2.BatchGetRequest(keys=[f"large:{i}" for i in range(12)]), timeout=20)
    assert [r.value == value for r in reply.results] == [True] * 12
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        values = list(pool.map(lambda i: stub.Get(cache_pb2.GetRequest(key=f"large:{i % 12}"), timeout=20).value,
                               range(48)))
    assert all(v == value for v in values)


class Answers:
    """What a hand-driven HTTP/2 client heard, per stream: headers (with trailers), and whether it ended."""

    def __init__(self, client):
        self.client = client
        self.headers = {}
        self.ended = set()

    def read(self):
        """Reads once (up to 0.2 s) and records what arrived; False when nothing came."""
        self.client.sock.settimeout(0.2)
        try:
            received = self.client.sock.recv(65_536)
        except socket.timeout:
            return False
        assert received, "the node closed the connection"
        for event in self.client.conn.receive_data(received):
            stream = getattr(event, "stream_id", None)
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                self.headers.setdefault(stream, {}).update({k.decode(): v.decode() for k, v in event.headers})
            elif isinstance(event, h2.events.DataReceived):
                self.client.conn.acknowledge_received_data(event.flow_controlled_length, stream)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                self.ended.add(stream)
        self.client.flush()
        return True

    def send_all(self, stream, data, timeout=10.0):
        """Sends `data` on `stream` as fast as the node's flow-control windows allow."""
        deadline = time.monotonic() + timeout
        while data:
            window = min(self.client.conn.local_flow_control_window(stream), self.client.conn.max_outbound_frame_size)
            if window <= 0:
                assert time.monotonic() < deadline, "the node gives no more window: it holds bytes it should have let go"
                self.read()
                continue
            self.client.send(stream, data[:window])
            data = data[window:]

    def wait_ended(self, streams, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not set(streams) <= self.ended:
            assert time.monotonic() < deadline, f"streams {sorted(set(streams) - self.ended)} never ended"
            self.read()


def test_calls_cut_short_by_their_deadline_give_their_bytes_back(node):
    client = H2Client(node)
    answers = Answers(client)
    warm = client.start()
    client.send(warm, get_request("nothing"), end=True)
    answers.wait_ended([warm])  # the node's SETTINGS and windows are known now
    batch = cache_pb2.BatchSetRequest(entries=[cache_pb2.SetRequest(key=f"big:{i}", value=b"b" * (1 << 20)) for i in range(3)])
    body = framed(batch.SerializeToString())
    cut_short = []
    for _ in range(14):  # 14 × 400 KB of request bodies, never finished, under a 20 ms deadline
        stream = client.start(path="/aerocache.v1.Cache/BatchSet", extra=[("grpc-timeout", "20m")])
        answers.send_all(stream, body[:400_000])
        cut_short.append(stream)
    answers.wait_ended(cut_short)
    assert all(answers.headers.get(s, {}).get("grpc-status") == "4" for s in cut_short if s in answers.headers)
    # Those bytes no longer count: a 3 MiB call on the same connection goes through.
    stream = client.start(path="/aerocache.v1.Cache/BatchSet")
    answers.send_all(stream, body)
    client.conn.end_stream(stream)
    client.flush()
    answers.wait_ended([stream])
    assert answers.headers[stream].get("grpc-status") == "0", answers.headers[stream]
    client.close()


def test_connections_past_the_limit_are_closed_and_the_rest_served():
    import subprocess
    from conftest import Node
    limited = Node(os.environ["AEROCACHE_NODE"], "--max-connections", "20")
    try:
        time.sleep(0.3)  # the start-up probe's connection is gone
        held = [socket.create_connection(("127.0.0.1", limited.port), timeout=5) for _ in range(20)]
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", limited.port), timeout=5)
        extra.settimeout(5)
        assert extra.recv(1024) == b"", "the connection past the limit is closed"
        extra.close()
        for sock in held[:10]:
            sock.close()
        time.sleep(0.3)
        assert_serving(limited.address)  # room again once some closed
        for sock in held[10:]:
            sock.close()
    finally:
        assert limited.stop() == 0


def test_many_large_requests_at_once_all_complete(node):
    # 24 Sets of 1 MiB on one connection: more than the 8 MiB budget holds. Each gets the
    # window for its message in turn, as the budget frees, so none waits forever.
    channel = grpc.insecure_channel(node.address, options=[("grpc.max_send_message_length", 64 << 20)])
    stub = cache_pb2_grpc.CacheStub(channel)
    value = os.urandom(1 << 20)
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        list(pool.map(lambda i: stub.Set(cache_pb2.SetRequest(key=f"concurrent:{i}", value=value), timeout=30), range(24)))
    assert stub.Get(cache_pb2.GetRequest(key="concurrent:23"), timeout=10).value == value
    channel.close()


def test_a_request_larger_than_the_default_budget_completes():
    from conftest import Node
    large = Node(os.environ["AEROCACHE_NODE"], "--max-value-size", "12MiB", "--max-request-size", "16MiB")
    try:
        channel = grpc.insecure_channel(large.address, options=[("grpc.max_send_message_length", 64 << 20),
                                                               ("grpc.max_receive_message_length", 64 << 20)])
        stub = cache_pb2_grpc.CacheStub(channel)
        value = os.urandom(11 << 20)
        stub.Set(cache_pb2.SetRequest(key="eleven", value=value), timeout=30)
        assert stub.Get(cache_pb2.GetRequest(key="eleven"), timeout=30).value == value
        channel.close()
    finally:
        assert large.stop() == 0


def test_many_requests_of_the_largest_size_at_once_all_complete():
    # 32 Sets of 4 MiB (the largest request) on one connection, sent round-robin by grpcio:
    # the streams still waiting must not take the connection window from the one given its
    # turn (on the previous transport 16 of them never completed).
    from conftest import Node
    large = Node(os.environ["AEROCACHE_NODE"], "--max-value-size", "8MiB", "--max-request-size", "8MiB")
    try:
        channel = grpc.insecure_channel(large.address, options=[("grpc.max_send_message_length", 64 << 20)])
        stub = cache_pb2_grpc.CacheStub(channel)
        value = os.urandom(4 << 20)
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda i: stub.Set(cache_pb2.SetRequest(key=f"largest:{i}", value=value), timeout=30),
                          range(32)))
        channel.close()
    finally:
        assert large.stop() == 0


def test_large_requests_behind_unread_answers_stay_within_the_bound(node, stub):
    # A client that reads no answers, then sends 300 Sets of 1 MiB one after the other: with
    # the budget full of answers, a large request gets no more than the first window of its
    # stream, 16 KiB (the previous transport let each in turn arrive, then held it: 300 MiB).
    stub.Set(cache_pb2.SetRequest(key="huge", value=b"h" * (1 << 20)), timeout=10)
    before = rss_bytes(node)
    client = H2Client(node)
    for _ in range(16):
        stream = client.start()
        client.send(stream, get_request("huge"), end=True)
    body = framed(cache_pb2.SetRequest(key="pile", value=b"p" * (1 << 20)).SerializeToString())
    pending = {}
    for _ in range(300):
        pending[client.start("/aerocache.v1.Cache/Set")] = body
    client.sock.settimeout(0.05)
    deadline = time.monotonic() + 8
    while pending and time.monotonic() < deadline:
        stream = next(iter(pending))  # one at a time, oldest first
        window = min(client.conn.local_flow_control_window(stream), client.conn.max_outbound_frame_size)
        while window > 0 and pending.get(stream):
            data = pending[stream]
            client.conn.send_data(stream, data[:window], end_stream=len(data) <= window)
            pending[stream] = data[window:]
            window = min(client.conn.local_flow_control_window(stream), client.conn.max_outbound_frame_size)
        if not pending[stream]:
            del pending[stream]
        client.flush()
        try:
            received = client.sock.recv(1 << 20)  # window updates; answers are never acknowledged
            assert received, "the node closed the connection"
            client.conn.receive_data(received)
            client.flush()
        except socket.timeout:
            pass
    grown = rss_bytes(node) - before
    assert grown < 48 << 20, f"the node grew by {grown >> 20} MiB for one client that reads nothing"
    assert pending, "every Set was let in although no answer was read"
    assert_serving(node.address)
    client.sock.close()
    assert_serving(node.address)


def test_a_request_that_stops_sending_gives_its_share_back(node):
    # Two Sets announce 4 MiB each, get the window for it (the connection's whole budget), and
    # send nothing more. After 14 s (10 s, plus 4 MiB at 1 MiB/s) they are answered
    # DEADLINE_EXCEEDED, and a third Set, waiting for its turn meanwhile, completes (before,
    # it waited for ever).
    client = H2Client(node)
    answers = Answers(client)
    stalled = []
    for _ in range(2):
        stream = client.start("/aerocache.v1.Cache/Set")
        client.send(stream, struct.pack(">BI", 0, (4 << 20) - 16) + b"\x0a" * 1000)
        stalled.append(stream)
    waiting = client.start("/aerocache.v1.Cache/Set")
    answers.send_all(waiting, framed(cache_pb2.SetRequest(key="after-stall", value=b"a" * (1 << 20)).SerializeToString()),
                     timeout=30)
    client.send(waiting, b"", end=True)
    answers.wait_ended([*stalled, waiting], timeout=30)
    assert [answers.headers[s].get("grpc-status") for s in stalled] == ["4", "4"], answers.headers
    assert "did not arrive within 13999 ms of its turn" in answers.headers[stalled[0]].get("grpc-message", "")
    assert answers.headers[waiting].get("grpc-status") == "0", answers.headers[waiting]
    client.sock.close()
    assert_serving(node.address)
