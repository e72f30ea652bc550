"""Hostile and broken clients at the HTTP/2 level: each leaves the node serving everyone else."""
import os
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import pytest

from conftest import assert_serving, cache_pb2


def raw_socket(node):
    return socket.create_connection(("127.0.0.1", node.port), timeout=5)


def closed_by_peer(sock, timeout=5.0):
    """Reads until the node closes the connection; True if it did within `timeout`."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


class H2Client:
    """A hand-driven HTTP/2 client (python-hyper h2) that can send what grpcio never would."""

    def __init__(self, node):
        self.sock = raw_socket(node)
        config = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                           normalize_outbound_headers=False, validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def start(self, path="/aerocache.v1.Cache/Get", content_type="application/grpc", extra=()):
        stream = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "test"),
                   ("content-type", content_type), ("te", "trailers"), *extra]
        self.conn.send_headers(stream, headers)
        self.flush()
        return stream

    def send(self, stream, data, end=False):
        self.conn.send_data(stream, data, end_stream=end)
        self.flush()

    def result(self, stream, timeout=5.0):
        """Headers + trailers of `stream` as one dict, its body, and whether it was reset."""
        headers, body, reset = {}, b"", None
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        while time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                break
            for event in self.conn.receive_data(data):
                if getattr(event, "stream_id", None) != stream:
                    continue
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    headers.update({k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                                    for k, v in event.headers})
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamReset):
                    reset = event.error_code
                    self.flush()
                    return headers, body, reset
                elif isinstance(event, h2.events.StreamEnded):
                    self.flush()
                    return headers, body, reset
            self.flush()
        raise AssertionError(f"stream {stream} did not end within {timeout}s")

    def close(self):
        self.sock.close()


def framed(message: bytes, flag=0) -> bytes:
    return struct.pack(">BI", flag, len(message)) + message


def get_request(key: str) -> bytes:
    return framed(cache_pb2.GetRequest(key=key).SerializeToString())


@pytest.fixture(autouse=True)
def seeded(stub):
    stub.Set(cache_pb2.SetRequest(key="seed", value=b"v" * 100))


def test_random_bytes_close_only_that_connection(node, channel, stub):
    sock = raw_socket(node)
    sock.sendall(os.urandom(4096))
    assert closed_by_peer(sock)
    sock.close()
    assert stub.Get(cache_pb2.GetRequest(key="seed")).value == b"v" * 100, "an open connection keeps working"
    assert_serving(node.address)


def test_bad_preface_closes_only_that_connection(node):
    sock = raw_socket(node)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert closed_by_peer(sock)
    sock.close()
    assert_serving(node.address)


def test_headers_with_a_bad_path(node):
    client = H2Client(node)
    # Unknown method: a Trailers-Only answer with UNIMPLEMENTED.
    stream = client.start(path="/aerocache.v1.Cache/DoesNotExist")
    client.send(stream, get_request("seed"), end=True)
    headers, _, _ = client.result(stream)
    assert headers[":status"] == "200" and headers["grpc-status"] == "12"
    # Not a path at all: nghttp2 treats the request as malformed and resets the stream.
    stream = client.start(path="no-slash")
    client.send(stream, get_request("seed"), end=True)
    headers, _, reset = client.result(stream)
    assert reset is not None or headers.get("grpc-status") not in (None, "0")
    # Wrong content type: HTTP 415.
    stream = client.start(content_type="text/plain")
    client.send(stream, get_request("seed"), end=True)
    headers, _, _ = client.result(stream)
    assert headers[":status"] == "415"
    # The same connection still answers a good call.
    stream = client.start()
    client.send(stream, get_request("seed"), end=True)
    headers, body, _ = client.result(stream)
    assert headers["grpc-status"] == "0"
    assert cache_pb2.GetResponse.FromString(body[5:]).value == b"v" * 100
    client.close()
    assert_serving(node.address)


def test_prefix_and_message_split_at_every_byte(node):
    client = H2Client(node)
    payload = get_request("seed")
    for cut in range(1, len(payload)):
        stream = client.start()
        client.send(stream, payload[:cut])
        client.send(stream, payload[cut:], end=True)
        headers, body, _ = client.result(stream)
        assert headers["grpc-status"] == "0", (cut, headers)
        assert cache_pb2.GetResponse.FromString(body[5:]).value == b"v" * 100
    client.close()


def test_compression_without_negotiation(node):
    client = H2Client(node)
    stream = client.start()
    client.send(stream, framed(cache_pb2.GetRequest(key="seed").SerializeToString(), flag=1), end=True)
    headers, _, _ = client.result(stream)
    assert headers["grpc-status"] == "13"  # INTERNAL: compressed flag with no grpc-encoding
    stream = client.start(extra=[("grpc-encoding", "gzip")])
    client.send(stream, get_request("seed"), end=True)
    headers, _, _ = client.result(stream)
    assert headers["grpc-status"] == "12" and headers.get("grpc-accept-encoding") == "identity"
    client.close()


def test_stream_reset_mid_call(node):
    client = H2Client(node)
    stream = client.start()
    client.send(stream, framed(b"\x0a\x04se")[:8])  # prefix promises more than is sent
    client.conn.reset_stream(stream)
    client.flush()
    stream = client.start()
    client.send(stream, get_request("seed"), end=True)
    headers, _, _ = client.result(stream)
    assert headers["grpc-status"] == "0", "the connection survives a reset stream"
    client.close()
    assert_serving(node.address)


def test_client_vanishes_mid_call(node):
    for _ in range(20):
        client = H2Client(node)
        stream = client.start()
        client.send(stream, framed(b"x" * 1000)[:500])
        # Abort with RST (SO_LINGER 0) halfway through the request.
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    assert node.alive()
    assert_serving(node.address)


def test_oversized_request_is_refused_before_it_is_all_sent(node):
    client = H2Client(node)
    stream = client.start(path="/aerocache.v1.Cache/Set")
    client.send(stream, struct.pack(">BI", 0, 64 << 20))  # claims 64 MiB, sends only the prefix
    headers, _, _ = client.result(stream)
    assert headers["grpc-status"] == "8" and "limit" in headers["grpc-message"]
    client.close()
    assert_serving(node.address)
