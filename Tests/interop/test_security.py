"""TLS and tokens, from the outside: a 3-node cluster on TLS with mutual TLS between nodes (no
cluster secret at all) and a token file, called by grpcio over TLS with each role, by
plaintext, by a certificate from another CA, and through aerocachectl. The nodes keep
serving through every refusal.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import grpc
import pytest

from cluster import wait_for
from conftest import Node, cache_pb2, cache_pb2_grpc, free_port, health_pb2, health_pb2_grpc
from aerocache.v1 import admin_pb2, admin_pb2_grpc, peer_pb2, peer_pb2_grpc  # noqa: E402

TOKENS = {"read": "r" * 8 + "-read-token-0001", "write": "w" * 8 + "-write-token-001", "admin": "a" * 8 + "-admin-token-001"}


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)


def make_certificate(directory, ca, name):
    """A certificate for 127.0.0.1 and localhost, for servers and clients, signed by `ca`."""
    with open(os.path.join(directory, f"{name}.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=directory)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write_tokens(path, tokens):
    with open(path, "w") as f:
        f.write("# TOKEN ROLE\n")
        for role, token in tokens.items():
            f.write(f"{token} {role}\n")


class SecureCluster:
    def __init__(self, size=3):
        self.dir = tempfile.mkdtemp(prefix="aerocache-tls-")
        make_ca(self.dir, "ca")
        make_ca(self.dir, "rogue-ca")
        make_certificate(self.dir, "ca", "node")
        make_certificate(self.dir, "rogue-ca", "rogue")
        self.tokens_file = self.path("tokens")
        write_tokens(self.tokens_file, TOKENS)
        self.ports = [free_port() for _ in range(size)]
        self.processes = []
        self.logs = []
        try:
            for index in range(size):
                seeds = ["--seeds", self.address(0)] if index else []
                log = tempfile.TemporaryFile()
                self.logs.append(log)
                self.processes.append(subprocess.Popen(
                    [os.environ["AEROCACHE_NODE"], "--listen", self.address(index), "--node-id", f"node-{index}",
                     "--tls-cert", self.path("node.pem"), "--tls-key", self.path("node.key"),
                     "--tls-ca", self.path("ca.pem"), "--auth-token-file", self.tokens_file,
                     "--log-level", "debug", *seeds], stdout=subprocess.DEVNULL, stderr=log))
                wait_for(lambda: self.serving(index), 20, f"node-{index} serving over TLS")
            wait_for(self.converged, 30, "every node up in node-0's view")
        except BaseException:
            self.stop()
            raise

    def path(self, name):
        return os.path.join(self.dir, name)

    def address(self, index):
        return f"127.0.0.1:{self.ports[index]}"

    def channel(self, index, client="none"):
        """A grpcio channel over TLS; `client` names a certificate to present (node, rogue)."""
        key = read(self.path(f"{client}.key")) if client != "none" else None
        chain = read(self.path(f"{client}.pem")) if client != "none" else None
        credentials = grpc.ssl_channel_credentials(root_certificates=read(self.path("ca.pem")),
                                                   private_key=key, certificate_chain=chain)
        return grpc.secure_channel(self.address(index), credentials)

    def serving(self, index):
        assert self.processes[index].poll() is None, f"node-{index} exited: {self.log(index)}"
        try:
            with self.channel(index) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                return reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    def ctl(self, *args, token="admin", via=0, tls=True):
        env = {**os.environ}
        env.pop("AEROCACHE_TOKEN", None)
        if token:
            env["AEROCACHE_TOKEN"] = TOKENS.get(token, token)
        tls_args = ["--tls-ca", self.path("ca.pem")] if tls else []
        result = subprocess.run([os.environ["AEROCACHE_CTL"], "--endpoints", self.address(via), *tls_args, *args],
                                capture_output=True, timeout=30, env=env)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    def converged(self):
        code, out, _ = self.ctl("status", "--json")
        nodes = json.loads(out)["nodes"] if code == 0 else []
        return len(nodes) == len(self.ports) and all(n["state"] == "up" for n in nodes)

    def log(self, index):
        self.logs[index].seek(0)
        return self.logs[index].read().decode(errors="replace")

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = SecureCluster()
    try:
        yield c
    finally:
        c.stop()


def bearer(role):
    return [("authorization", f"Bearer {TOKENS.get(role, role)}")]


def code_of(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()


def test_each_role_over_tls_from_grpcio(cluster):
    with cluster.channel(1) as channel:
        cache = cache_pb2_grpc.CacheStub(channel)
        admin = admin_pb2_grpc.AdminStub(channel)
        write = cache_pb2.SetRequest(key="tls:role", value=b"v1")
        get = cache_pb2.GetRequest(key="tls:role")
        # No token, or one the node does not know: UNAUTHENTICATED.
        assert code_of(lambda: cache.Get(get, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(lambda: cache.Get(get, timeout=5, metadata=bearer("x" * 24))) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(lambda: cache.Get(get, timeout=5, metadata=[("authorization", TOKENS["read"])])) == \
            grpc.StatusCode.UNAUTHENTICATED  # without the Bearer scheme
        # read: reads only.
        assert code_of(lambda: cache.Set(write, timeout=5, metadata=bearer("read"))) == grpc.StatusCode.PERMISSION_DENIED
        assert not cache.Get(get, timeout=5, metadata=bearer("read")).found
        # write: writes and reads, no admin commands.
        cache.Set(write, timeout=5, metadata=bearer("write"))
        assert cache.Get(get, timeout=5, metadata=bearer("read")).value == b"v1"
        assert cache.Increment(cache_pb2.IncrementRequest(key="tls:count", delta=2), timeout=5,
                               metadata=bearer("write")).value == 2
        assert code_of(lambda: admin.Repair(admin_pb2.RepairRequest(), timeout=30, metadata=bearer("write"))) == \
            grpc.StatusCode.PERMISSION_DENIED
        assert code_of(lambda: admin.Remove(admin_pb2.RemoveRequest(node_id="nobody"), timeout=5,
                                            metadata=bearer("read"))) == grpc.StatusCode.PERMISSION_DENIED
        # admin: everything.
        admin.Repair(admin_pb2.RepairRequest(), timeout=60, metadata=bearer("admin"))
        assert cache.Get(get, timeout=5, metadata=bearer("admin")).value == b"v1"
        # The health check takes no token (probes call it).
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_writes_replicate_over_mutual_tls_without_a_secret(cluster):
    # ALL needs both other replicas to acknowledge: their Replicate calls went over mutual
    # TLS, the node certificate standing for the cluster secret no node was given.
    with cluster.channel(0) as channel:
        cache = cache_pb2_grpc.CacheStub(channel)
        for index in range(20):
            cache.Set(cache_pb2.SetRequest(key=f"tls:all:{index}", value=b"x", consistency=cache_pb2.CONSISTENCY_ALL),
                      timeout=10, metadata=bearer("write"))
    for node in range(3):
        with cluster.channel(node) as channel:
            cache = cache_pb2_grpc.CacheStub(channel)
            for index in range(20):
                assert cache.Get(cache_pb2.GetRequest(key=f"tls:all:{index}", consistency=cache_pb2.CONSISTENCY_ALL),
                                 timeout=10, metadata=bearer("read")).value == b"x"


def test_peer_calls_need_a_certificate_from_the_cluster_ca(cluster):
    request = peer_pb2.ReadRequest(keys=["tls:role"])
    # TLS without a client certificate, admin token or not: not a member.
    with cluster.channel(0) as channel:
        peer = peer_pb2_grpc.PeerStub(channel)
        assert code_of(lambda: peer.Read(request, timeout=5, metadata=bearer("admin"))) == grpc.StatusCode.UNAUTHENTICATED
    # A certificate another CA signed: the handshake fails, nothing is called.
    with cluster.channel(0, client="rogue") as channel:
        peer = peer_pb2_grpc.PeerStub(channel)
        assert code_of(lambda: peer.Read(request, timeout=5)) == grpc.StatusCode.UNAVAILABLE
    # The cluster's own: a member. It forwards its clients' reads and writes without a token,
    # but admin commands need an admin token from it too.
    with cluster.channel(0, client="node") as channel:
        peer_pb2_grpc.PeerStub(channel).Read(request, timeout=5)
        cache_pb2_grpc.CacheStub(channel).Set(cache_pb2.SetRequest(key="tls:member", value=b"m"), timeout=5)
        admin = admin_pb2_grpc.AdminStub(channel)
        assert code_of(lambda: admin.Remove(admin_pb2.RemoveRequest(node_id="nobody"), timeout=5)) == \
            grpc.StatusCode.UNAUTHENTICATED
        assert code_of(lambda: admin.Repair(admin_pb2.RepairRequest(), timeout=30, metadata=bearer("write"))) == \
            grpc.StatusCode.PERMISSION_DENIED
    assert cluster.serving(0)


def test_two_authorization_headers_are_refused(cluster):
    with cluster.channel(1) as channel:
        cache = cache_pb2_grpc.CacheStub(channel)
        for headers in [bearer("x" * 24) + bearer("admin"), bearer("admin") + bearer("x" * 24), bearer("read") + bearer("admin")]:
            assert code_of(lambda: cache.Get(cache_pb2.GetRequest(key="k"), timeout=5, metadata=headers)) == \
                grpc.StatusCode.UNAUTHENTICATED


def test_plaintext_to_a_tls_node_fails_cleanly(cluster):
    started = time.monotonic()
    with grpc.insecure_channel(cluster.address(2)) as channel:
        code = code_of(lambda: cache_pb2_grpc.CacheStub(channel).Get(cache_pb2.GetRequest(key="k"), timeout=5,
                                                                     metadata=bearer("read")))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 4, "refused at the handshake, not left to its deadline"
    # The CLI says so in one line and exits 2.
    code, out, err = cluster.ctl("get", "k", via=2, tls=False)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert cluster.serving(2)


def test_aerocachectl_with_tls_and_each_token(cluster):
    assert cluster.ctl("set", "tls:cli", "hello", token="write")[0] == 0
    code, out, _ = cluster.ctl("get", "tls:cli", token="read", via=1)
    assert (code, out.strip()) == (0, "hello")
    code, _, err = cluster.ctl("set", "tls:cli", "other", token="read")
    assert code == 2 and "PERMISSION_DENIED" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cluster.ctl("get", "tls:cli", token=None)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "token" in err.lower(), err
    code, _, err = cluster.ctl("repair", token="write")
    assert code == 2 and "admin" in err, err
    assert cluster.ctl("repair", token="admin")[0] == 0
    # From a file as well as the environment.
    with open(cluster.path("read.token"), "w") as f:
        f.write(TOKENS["read"] + "\n")
    code, out, _ = cluster.ctl("--token-file", cluster.path("read.token"), "get", "tls:cli", token=None)
    assert (code, out.strip()) == (0, "hello")


def reloads(cluster, index, what, why):
    """How many times node `index` logged reading `what` again because of `why`."""
    return sum(1 for line in cluster.log(index).splitlines() if what in line and f"why={why}" in line)


def test_the_token_file_is_reloaded_on_sighup(cluster):
    fresh = "f" * 8 + "-fresh-token-0001"
    tokens = {**TOKENS, "write": fresh}  # the old write token is gone
    with cluster.channel(0) as channel:
        cache = cache_pb2_grpc.CacheStub(channel)
        set_request = cache_pb2.SetRequest(key="tls:reload", value=b"1")
        try:
            signalled = reloads(cluster, 0, "token file reloaded", "SIGHUP")
            write_tokens(cluster.tokens_file, tokens)
            cluster.processes[0].send_signal(signal.SIGHUP)
            # The signal did it (the file watch, every 10 s, might as well: count its lines apart).
            wait_for(lambda: reloads(cluster, 0, "token file reloaded", "SIGHUP") > signalled, 10, "a reload on SIGHUP")
            cache.Set(set_request, timeout=5, metadata=bearer(fresh))
            assert code_of(lambda: cache.Set(set_request, timeout=5, metadata=bearer("write"))) == \
                grpc.StatusCode.UNAUTHENTICATED
            # A file that no longer parses leaves the tokens as they were, and the log names
            # the line, never its fields (here the token and the role are swapped).
            with open(cluster.tokens_file, "w") as f:
                f.write(f"admin {fresh}\n")
            cluster.processes[0].send_signal(signal.SIGHUP)
            wait_for(lambda: "token file not reloaded" in cluster.log(0), 10, "the bad file refused")
            assert fresh not in cluster.log(0)
            cache.Set(set_request, timeout=5, metadata=bearer(fresh))
        finally:
            signalled = reloads(cluster, 0, "token file reloaded", "SIGHUP")
            write_tokens(cluster.tokens_file, TOKENS)
            cluster.processes[0].send_signal(signal.SIGHUP)
            wait_for(lambda: reloads(cluster, 0, "token file reloaded", "SIGHUP") > signalled, 10, "the tokens restored")
    assert cluster.serving(0)


def test_a_changed_token_file_is_read_again_without_a_signal(cluster):
    # As a Kubernetes Secret volume changes it: a new file renamed over the old one.
    added = "n" * 8 + "-noticed-token-001"
    with cluster.channel(2) as channel:
        cache = cache_pb2_grpc.CacheStub(channel)
        request = cache_pb2.GetRequest(key="tls:role")
        assert code_of(lambda: cache.Get(request, timeout=5, metadata=bearer(added))) == grpc.StatusCode.UNAUTHENTICATED
        noticed = reloads(cluster, 2, "token file reloaded", "a file changed")
        try:
            write_tokens(cluster.tokens_file + ".new", {**TOKENS, "read": added})
            os.rename(cluster.tokens_file + ".new", cluster.tokens_file)

            def accepted():
                try:
                    cache.Get(request, timeout=5, metadata=bearer(added))
                    return True
                except grpc.RpcError:
                    return False
            wait_for(accepted, 30, "node-2 taking the token added to its file")
            assert reloads(cluster, 2, "token file reloaded", "a file changed") > noticed
        finally:
            noticed = reloads(cluster, 2, "token file reloaded", "a file changed")
            write_tokens(cluster.tokens_file + ".new", TOKENS)
            os.rename(cluster.tokens_file + ".new", cluster.tokens_file)
    wait_for(lambda: reloads(cluster, 2, "token file reloaded", "a file changed") > noticed, 30, "the first tokens back")


def test_a_connection_that_sends_nothing_is_closed(cluster):
    # Over TLS: no handshake. In plaintext: no HTTP/2 preface, or part of it. Each would hold a
    # slot for ever. A connection that sent its whole start (preface and SETTINGS) stays open.
    plain = Node(os.environ["AEROCACHE_NODE"])
    try:
        with socket.create_connection(("127.0.0.1", plain.port), timeout=20) as whole:
            whole.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
            for port, first_bytes in ((cluster.ports[1], b""), (plain.port, b""), (plain.port, b"PRI * HTTP/2")):
                with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
                    raw.sendall(first_bytes)
                    started = time.monotonic()
                    while raw.recv(4096):  # a plaintext node sends its SETTINGS first; then the close
                        pass
                    assert 8 < time.monotonic() - started < 19, (port, first_bytes)
            # Over 10 s later (each wait above took at least 8), the whole start is still open.
            whole.setblocking(False)
            while True:  # the node's SETTINGS and ACK, then nothing: open (a close reads as b"")
                try:
                    chunk = whole.recv(4096)
                except BlockingIOError:
                    break
                assert chunk, "the node closed a connection that had sent its whole start"
    finally:
        assert plain.stop() == 0
    assert cluster.serving(1)


def served_certificate(cluster, index):
    """The DER certificate node `index` presents to a new TLS connection."""
    context = ssl.create_default_context(cafile=cluster.path("ca.pem"))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", cluster.ports[index]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            return tls.getpeercert(binary_form=True)


def test_certificates_are_reloaded_on_sighup(cluster):
    before = served_certificate(cluster, 0)
    saved = {name: read(cluster.path(name)) for name in ("node.pem", "node.key")}
    try:
        make_certificate(cluster.dir, "ca", "node")  # a new key and certificate, same CA and names
        renewed = ssl.PEM_cert_to_DER_cert(read(cluster.path("node.pem")).decode())
        assert renewed != before
        signalled = reloads(cluster, 0, "TLS files reloaded", "SIGHUP")
        cluster.processes[0].send_signal(signal.SIGHUP)
        wait_for(lambda: reloads(cluster, 0, "TLS files reloaded", "SIGHUP") > signalled, 10, "a reload on SIGHUP")
        wait_for(lambda: served_certificate(cluster, 0) == renewed, 10, "node-0 serving the renewed certificate")
        # A file that no longer loads leaves the certificate in use.
        with open(cluster.path("node.key"), "w") as f:
            f.write("not a key\n")
        cluster.processes[0].send_signal(signal.SIGHUP)
        wait_for(lambda: "TLS files not reloaded" in cluster.log(0), 10, "the broken key refused")
        assert served_certificate(cluster, 0) == renewed
        assert cluster.serving(0)
    finally:
        for name, content in saved.items():
            with open(cluster.path(name), "wb") as f:
                f.write(content)
        cluster.processes[0].send_signal(signal.SIGHUP)
        wait_for(lambda: served_certificate(cluster, 0) == before, 10, "the first certificate back")


def test_tokens_never_reach_the_logs(cluster):
    # Every test above ran with the nodes logging at debug level.
    for index in range(3):
        log = cluster.log(index)
        for token in TOKENS.values():
            assert token not in log
