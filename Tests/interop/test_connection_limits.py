"""Finding 9: one client cannot exhaust a node.

A client that asks for large answers and never reads them, a load balancer opening and
closing connections all day, a header too long to quote: the node's memory stays bounded
and every call gets an answer.
"""
import socket
import time

import h2.config
import h2.connection
import h2.settings

from conftest import assert_serving, cache_pb2
from test_robustness import H2Client, get_request


def rss_bytes(node):
    with open(f"/proc/{node.process.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_client_that_never_reads_its_answers_holds_a_bounded_amount(node, stub):
    # The stated bound: a connection holds at most 8 MiB of requests and unsent answers, plus
    # one answer and one socket read, before the node stops reading from it.
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
