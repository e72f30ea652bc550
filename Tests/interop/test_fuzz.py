"""A seeded fuzzer of the wire: random and mutated HTTP/2 frames against a live node.

Each round opens a connection and sends a random mix of valid calls, mutated calls (flipped
bytes, lying gRPC length prefixes, malformed protobuf), random frames, oversized header
blocks, streams opened and reset, and extreme flow-control windows; then it reads a little,
or nothing, and closes (politely or with a reset). Throughout, the node must stay up, answer
other clients, and keep its memory bounded.

Bounded in time (AEROCACHE_FUZZ_SECONDS, default 15) and replayable: AEROCACHE_FUZZ_SEED
picks the seed (the failure message names it).
"""
import os
import random
import socket
import struct
import time

import hpack

from conftest import assert_serving, cache_pb2
from aerocache.v1 import peer_pb2
from test_connection_limits import rss_bytes

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4
PATHS = ["/aerocache.v1.Cache/Get", "/aerocache.v1.Cache/Set", "/aerocache.v1.Cache/Increment",
         "/aerocache.v1.Cache/BatchGet", "/aerocache.v1.Peer/Replicate", "/aerocache.v1.Peer/Read",
         "/aerocache.v1.Peer/DigestRoots", "/aerocache.v1.Peer/DigestKeys", "/aerocache.v1.Peer/SyncRecords",
         "/aerocache.v1.Peer/StreamRange", "/grpc.health.v1.Health/Check", "/nope/Nope"]
U64 = [0, 1, 2**16, 2**32 - 1, 2**63 - 1, 2**64 - 1]


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream & 0x7FFFFFFF) + payload


def grpc_message(body, rng):
    length = len(body)
    if rng.random() < 0.15:
        length = rng.choice([0, length + 1, length * 7, 2**31 - 1, 2**32 - 1, rng.randrange(2**32)])
    return bytes([rng.choice([0, 0, 0, 1, 2, 255])]) + struct.pack(">I", length) + body


def peer_record(rng):
    """A peer Record as a lying or broken peer might send it (every field at its extremes)."""
    now = int(time.time() * 1000) << 16
    record = peer_pb2.Record(key=rng.choice([f"fuzz:{rng.randrange(50)}", "", "k" * rng.randrange(600)]),
                             value=os.urandom(rng.randrange(3000)), tombstone=rng.random() < 0.2,
                             value_dropped=rng.random() < 0.1, timestamp=rng.choice([now, rng.choice(U64)]),
                             node=rng.randrange(2**32), expires_at_unix_ms=rng.choice([0, -1, 2**63 - 1, now >> 16]),
                             expiry_timestamp=rng.choice(U64), expiry_node=rng.randrange(2**32))
    windows = rng.choice([0, 0, 0, 1, 3, 70])
    for _ in range(windows):
        window = record.counter_windows.add(timestamp=rng.choice([now, rng.choice(U64)]), node=rng.randrange(2**32),
                                            base=rng.choice([0, -2**63, 2**63 - 1]), converted=rng.random() < 0.5)
        # Over the limits (64 windows, 1,024 slots each) now and then, not in every window.
        for _ in range(rng.choice([0, 1, 5] if windows > 3 or rng.random() < 0.9 else [1100])):
            window.slots.add(id=rng.randrange(2**64), added=rng.choice(U64), subtracted=rng.choice(U64))
    if rng.random() < 0.1:
        record.metadata.update({f"m{i}": "v" * rng.randrange(100) for i in range(rng.randrange(200))})
    return record


def peer_body(rng):
    """A structurally valid peer call with hostile contents (peers are checked like clients)."""
    choice = rng.randrange(5)
    if choice == 0:
        return peer_pb2.ReplicateRequest(records=[peer_record(rng) for _ in range(rng.randrange(1, 20))])
    if choice == 1:
        return peer_pb2.SyncRecordsRequest(push=[peer_record(rng) for _ in range(rng.randrange(5))],
                                           want=[rng.randrange(2**64) for _ in range(rng.randrange(3000))])
    if choice == 2:
        return peer_pb2.DigestRootsRequest(pieces=[peer_pb2.DigestPiece(start=rng.randrange(2**64), width=rng.choice(U64),
                                                                        root=rng.randrange(2**64))
                                                   for _ in range(rng.randrange(3000))])
    if choice == 3:
        return peer_pb2.DigestKeysRequest(requests=[peer_pb2.BucketRequest(start=rng.randrange(2**64), width=rng.choice(U64),
                                                                           buckets=[rng.randrange(2**64)] * rng.randrange(40))
                                                    for _ in range(rng.randrange(500))])
    return peer_pb2.StreamRangeRequest(start=rng.randrange(2**64), width=rng.choice(U64), offset=rng.choice(U64),
                                       max_bytes=rng.choice([0, 1, 2**32 - 1]))


def request_body(rng):
    choice = rng.randrange(6)
    if choice == 5:
        body = peer_body(rng).SerializeToString()
    elif choice == 0:
        body = cache_pb2.GetRequest(key=rng.choice(["k", "fuzz", "x" * rng.randrange(600)])).SerializeToString()
    elif choice == 1:
        body = cache_pb2.SetRequest(key=f"fuzz:{rng.randrange(50)}", value=os.urandom(rng.randrange(2000)),
                                    ttl_ms=rng.choice([0, 1, 1000, -1, 2**62])).SerializeToString()
    elif choice == 2:
        body = cache_pb2.IncrementRequest(key=f"fuzz:c{rng.randrange(5)}", delta=rng.randrange(-5, 5)).SerializeToString()
    elif choice == 3:
        body = cache_pb2.BatchGetRequest(keys=[f"fuzz:{i}" for i in range(rng.randrange(1200))]).SerializeToString()
    else:
        body = os.urandom(rng.randrange(64))
    if body and rng.random() < 0.3:  # flip a few bytes
        mutable = bytearray(body)
        for _ in range(rng.randrange(1, 4)):
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        body = bytes(mutable)
    return body


def headers_block(encoder, rng, secret=None):
    headers = [(":method", rng.choice(["POST", "POST", "GET"])), (":scheme", "http"),
               (":path", rng.choice(PATHS) if rng.random() < 0.9 else "/" + "p" * rng.randrange(100_000)),
               (":authority", "fuzz"), ("content-type", rng.choice(["application/grpc", "application/grpc", "text/html"])),
               ("te", "trailers")]
    if rng.random() < 0.2:
        headers.append(("grpc-timeout", rng.choice(["1n", "10S", "99999999H", "bogus", "0m"])))
    if rng.random() < 0.1:
        headers.append(("x-padding", "v" * rng.randrange(70_000)))
    if secret is not None and headers[2][1].startswith("/aerocache.v1.Peer/") and rng.random() < 0.8:
        headers.append(("aerocache-cluster-secret", secret))  # a member gone wrong: the body is decoded
    elif rng.random() < 0.05:
        headers.append(("aerocache-cluster-secret", "guess" * rng.randrange(1, 10)))
    # Huffman-coding a 100 KB header in pure Python takes a tenth of a second: big blocks go
    # out literal, or the fuzzer spends its time encoding (it made 4 connections in 15 s).
    return encoder.encode(headers, huffman=rng.random() < 0.5 and all(len(value) < 1_000 for _, value in headers))


def one_round(port, rng, secret=None):
    """One connection of hostile traffic to the node at `port`; with `secret` (the cluster's),
    most peer calls carry it, so their bodies get past the members-only check and are decoded."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    encoder = hpack.Encoder()
    out = [PREFACE, frame(SETTINGS, 0, 0, struct.pack(">HI", 4, rng.choice([0, 65_535, 2**31 - 1])))]
    stream = 1
    for _ in range(rng.randrange(1, 40)):
        action = rng.random()
        if action < 0.55:  # a call, valid or mutated, possibly split, possibly cut short
            block = headers_block(encoder, rng, secret)
            if len(block) > 16_384 or rng.random() < 0.1:
                cut = rng.randrange(1, max(2, min(len(block), 16_384)))
                out.append(frame(HEADERS, 0, stream, block[:cut]))
                out.append(frame(CONTINUATION, END_HEADERS, stream, block[cut:cut + 16_384]))
            else:
                out.append(frame(HEADERS, END_HEADERS, stream, block))
            message = grpc_message(request_body(rng), rng)
            if rng.random() < 0.9:
                out.append(frame(DATA, END_STREAM if rng.random() < 0.9 else 0, stream, message[:16_384]))
            if rng.random() < 0.1:
                out.append(frame(RST_STREAM, 0, stream, struct.pack(">I", 8)))
            stream += 2
        elif action < 0.65:  # open and reset at once, many times
            for _ in range(rng.randrange(50)):
                out.append(frame(HEADERS, END_HEADERS, stream, headers_block(encoder, rng, secret)))
                out.append(frame(RST_STREAM, 0, stream, struct.pack(">I", 8)))
                stream += 2
        elif action < 0.75:
            out.append(frame(WINDOW_UPDATE, 0, rng.choice([0, stream - 2, stream + 2]),
                             struct.pack(">I", rng.choice([0, 1, 2**31 - 1]))))
        elif action < 0.85:
            out.append(frame(rng.choice([PING, PRIORITY, GOAWAY, SETTINGS, 0x20]), rng.randrange(256),
                             rng.choice([0, stream, rng.randrange(2**31)]), os.urandom(rng.randrange(20))))
        else:
            out.append(os.urandom(rng.randrange(1, 200)))
    try:
        sock.sendall(b"".join(out))
        if rng.random() < 0.5:
            sock.settimeout(0.05)
            try:
                while sock.recv(65_536):
                    pass
            except (socket.timeout, OSError):
                pass
    except OSError:
        pass  # the node closed a connection it could not make sense of: fine
    if rng.random() < 0.3:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_the_node_survives_a_seeded_wire_fuzzer(node):
    seed = int(os.environ.get("AEROCACHE_FUZZ_SEED", random.randrange(2**32)))
    seconds = float(os.environ.get("AEROCACHE_FUZZ_SECONDS", "15"))
    rng = random.Random(seed)
    before = rss_bytes(node)
    rounds = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        one_round(node.port, rng)
        rounds += 1
        if rounds % 50 == 0:
            assert node.alive(), f"the node died (AEROCACHE_FUZZ_SEED={seed}, round {rounds})"
            assert_serving(node.address)
    assert node.alive(), f"the node died (AEROCACHE_FUZZ_SEED={seed})"
    assert_serving(node.address)
    grown = rss_bytes(node) - before
    print(f"fuzzer: seed {seed}, {rounds} connections in {seconds:.0f} s, node grew {grown >> 20} MiB")
    assert grown < 96 << 20, f"the node grew by {grown >> 20} MiB (AEROCACHE_FUZZ_SEED={seed})"
