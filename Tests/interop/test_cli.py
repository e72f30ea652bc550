"""aerocachectl against a real node: every data command, exit codes 0/1/2, one-line errors."""
import json
import os
import subprocess
import time

import pytest


@pytest.fixture(scope="module")
def ctl(node):
    binary = os.environ["AEROCACHE_CTL"]

    def run(*args, stdin=None, endpoints=None):
        result = subprocess.run([binary, *args], input=stdin, capture_output=True, timeout=30,
                                env={**os.environ, "AEROCACHE_ENDPOINTS": endpoints or node.address})
        return result.returncode, result.stdout, result.stderr.decode()
    return run


def one_line_error(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("aerocachectl: "), stderr
    assert "Traceback" not in stderr and "Fatal error" not in stderr
    return lines[0]


def test_set_get_with_ttl_and_metadata(ctl):
    assert ctl("set", "user:1", '{"name":"ada"}', "--ttl", "30s", "--meta", "source=db", "--meta", "id=1")[0] == 0
    code, out, _ = ctl("get", "user:1")
    assert code == 0 and out == b'{"name":"ada"}'
    code, out, _ = ctl("--json", "get", "user:1", "--with-metadata")
    document = json.loads(out)
    assert code == 0 and document["value"] == '{"name":"ada"}'
    assert document["metadata"] == {"source": "db", "id": "1"}
    assert document["expires_at_unix_ms"] > time.time() * 1000
    code, out, _ = ctl("get", "user:1", "--with-metadata")
    assert out == b'id: 1\nsource: db\n\n{"name":"ada"}'


def test_get_missing_exits_1_with_nothing_on_stdout(ctl):
    code, out, err = ctl("get", "no-such-key")
    assert (code, out, err) == (1, b"", "")


def test_value_from_stdin_keeps_bytes(ctl):
    payload = bytes(range(256)) * 10
    assert ctl("set", "binary", "-", stdin=payload)[0] == 0
    assert ctl("get", "binary")[1] == payload
    document = json.loads(ctl("get", "binary", "--json")[1])
    assert "value_base64" in document


def test_has_del(ctl):
    ctl("set", "h", "v")
    assert ctl("has", "h")[0] == 0
    assert ctl("del", "h")[0] == 0
    assert ctl("has", "h")[0] == 1
    assert ctl("del", "h")[0] == 0, "deleting a missing key succeeds"


def test_incr(ctl):
    assert ctl("incr", "counter")[1] == b"1\n"
    assert ctl("incr", "counter", "--by", "41")[1] == b"42\n"
    assert ctl("incr", "counter", "--by=-2")[1] == b"40\n"
    ctl("set", "word", "abc")
    code, _, err = ctl("incr", "word")
    assert code == 2 and "FAILED_PRECONDITION" in one_line_error(err)


def test_ttl(ctl):
    ctl("set", "forever", "v")
    assert ctl("ttl", "forever")[1] == b"-1\n"
    ctl("set", "brief", "v", "--ttl", "90")
    assert int(ctl("ttl", "brief")[1]) in (89, 90)
    ctl("set", "half", "v", "--ttl", "0.5")
    assert ctl("ttl", "half")[1] == b"1\n"
    assert ctl("ttl", "never-set")[0] == 1
    ctl("set", "quick", "v", "--ttl", "200ms")
    deadline = time.monotonic() + 5
    while ctl("get", "quick")[0] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("args,fragment", [
    (["set", "", "v"], "INVALID_ARGUMENT: key must not be empty"),
    (["set", "k" * 513, "v"], "512"),
    (["set", "meta", "v", "--meta", "k=" + "v" * 1024], "1024"),
    (["set", "neg", "v", "--ttl=-1"], "negative"),
    (["set", "bad", "v", "--ttl", "soon"], "duration"),
    (["set", "m", "v", "--meta", "novalue"], "K=V"),
    (["get"], "key"),
    (["frobnicate"], "unknown subcommand 'frobnicate'"),
    (["--json", "--timeout", "2s", "frobnicate"], "unknown subcommand 'frobnicate'"),
    (["--json"], "a subcommand must follow the global options"),
])
def test_bad_input_is_one_line_and_exit_2(ctl, args, fragment):
    code, out, err = ctl(*args)
    assert code == 2 and out == b""
    assert fragment in one_line_error(err)


def test_oversized_value_from_stdin(ctl):
    code, _, err = ctl("set", "big", "-", stdin=b"x" * ((1 << 20) + 1))
    assert code == 2 and "1048576" in one_line_error(err)


def test_unreachable_node_is_one_line(ctl):
    code, _, err = ctl("get", "k", endpoints="127.0.0.1:1")
    assert code == 2 and "UNAVAILABLE" in one_line_error(err)


def test_next_endpoint_is_tried(ctl, node):
    ctl("set", "fallback", "yes")
    assert ctl("get", "fallback", endpoints=f"127.0.0.1:1,{node.address}")[1] == b"yes"


def test_help_for_every_command(ctl):
    for command in ["set", "get", "has", "del", "incr", "ttl"]:
        code, out, _ = ctl(command, "--help")
        assert code == 0 and b"USAGE" in out


def test_status(ctl, node):
    ctl("set", "status-probe", "v")
    code, out, _ = ctl("status", "--json")
    assert code == 0
    nodes = json.loads(out)["nodes"]
    assert len(nodes) == 1
    me = nodes[0]
    assert set(me) >= {"id", "address", "state", "keys", "memory_bytes", "ring_epoch"}
    assert me["address"] == node.address and me["state"] == "up"
    assert me["keys"] >= 1 and me["memory_bytes"] > 0
    code, out, _ = ctl("status")
    assert code == 0 and b"ADDRESS" in out and node.address.encode() in out
