"""Three machines, as far as one host can make them: three nodes in three network namespaces,
each with its own address on a bridge (veth pairs to a hub namespace), a fourth namespace
for the clients. The cluster forms across them with TLS on (each node's certificate names its
own address, from cluster/configs/make-certificates.sh; mutual TLS between nodes, no cluster
secret) and tokens required, configured the way cluster/configs/ configures machines
(AEROCACHE_* settings), and passes the basic checks.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from cluster import wait_for, wait_or_kill
from netns import attach, can_make_namespaces, make_hub

pytestmark = pytest.mark.skipif(not can_make_namespaces(), reason="needs root and network namespaces (ip netns)")

MACHINES = 3
PORT = 7400
TOKENS = {"read": "read-token-0123456789", "write": "write-token-0123456789", "admin": "admin-token-0123456789"}
CERTIFICATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cluster", "configs",
                            "make-certificates.sh")


class Machines:
    def __init__(self):
        tag = uuid.uuid4().hex[:5]
        self.hub = f"ac-mh-{tag}"
        self.namespaces = [f"ac-m{index}-{tag}" for index in range(MACHINES)] + [f"ac-mc-{tag}"]  # the last: clients
        self.ports = [f"ac{tag}m{index}" for index in range(MACHINES + 1)]
        self.dir = tempfile.mkdtemp(prefix="aerocache-machines-")
        self.processes = {}
        self.logs = {}

    def host(self, index):
        return f"10.98.0.{index + 1}"

    def address(self, index):
        return f"{self.host(index)}:{PORT}"

    def build(self):
        make_hub(self.hub, ("br0",))
        for index, namespace in enumerate(self.namespaces):
            attach(self.hub, "br0", namespace, self.ports[index], f"{self.host(index)}/24")
        subprocess.run([CERTIFICATES, self.dir, *[self.host(i) for i in range(MACHINES)]], check=True, capture_output=True)
        with open(os.path.join(self.dir, "tokens"), "w") as f:
            f.writelines(f"{token} {role}\n" for role, token in TOKENS.items())

    def settings(self, index):
        """What /etc/aerocache/aerocache.env would hold on machine `index` (cluster/configs/node-a.env)."""
        files = os.path.join(self.dir, self.host(index))
        return {
            "AEROCACHE_NODE_ID": f"node-{index}", "AEROCACHE_LISTEN": self.address(index),
            "AEROCACHE_SEEDS": self.address(0), "AEROCACHE_REPLICATION_FACTOR": "3",
            "AEROCACHE_TLS_CERT": f"{files}/node.pem", "AEROCACHE_TLS_KEY": f"{files}/node.key",
            "AEROCACHE_TLS_CA": f"{self.dir}/ca.pem", "AEROCACHE_AUTH_TOKEN_FILE": f"{self.dir}/tokens",
            "AEROCACHE_LOG_FORMAT": "json", "AEROCACHE_LOG_LEVEL": "notice",
        }

    def start(self, index):
        log = tempfile.TemporaryFile()
        self.logs[index] = log
        env = {key: value for key, value in os.environ.items() if not key.startswith("AEROCACHE_")}
        self.processes[index] = subprocess.Popen(
            ["ip", "netns", "exec", self.namespaces[index], os.environ["AEROCACHE_NODE"]],
            env={**env, **self.settings(index)}, stdout=subprocess.DEVNULL, stderr=log)

    def ctl(self, *args, via=0, token="admin", tls=True, timeout=30):
        """aerocachectl from the clients' namespace."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("AEROCACHE_")}
        if token:
            env["AEROCACHE_TOKEN"] = TOKENS[token]
        tls_args = ["--tls-ca", f"{self.dir}/ca.pem"] if tls else []
        result = subprocess.run(["ip", "netns", "exec", self.namespaces[-1], os.environ["AEROCACHE_CTL"],
                                 "--endpoints", self.address(via), *tls_args, *args],
                                capture_output=True, timeout=timeout, env=env)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    def status(self, via):
        code, out, _ = self.ctl("status", "--json", via=via)
        return {node["id"]: node for node in json.loads(out)["nodes"]} if code == 0 else {}

    def all_up(self, via, count=MACHINES):
        nodes = self.status(via)
        return len(nodes) == count and all(node["state"] == "up" for node in nodes.values())

    def wait_for(self, predicate, timeout, what):
        """cluster.wait_for, with the tail of every node's log when it fails."""
        try:
            wait_for(predicate, timeout, what, interval=0.3)
        except AssertionError as error:
            raise AssertionError(f"{error}; logs: " + " | ".join(self.log(i)[-600:] for i in self.processes)) from None

    def log(self, index):
        self.logs[index].seek(0)
        return self.logs[index].read().decode(errors="replace")

    def tear_down(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        wait_or_kill(self.processes.values())
        for namespace in [*self.namespaces, self.hub]:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["rm", "-rf", self.dir])


@pytest.fixture(scope="module")
def machines():
    machines = Machines()
    try:
        machines.build()
        for index in range(MACHINES):
            machines.start(index)
        machines.wait_for(lambda: all(machines.all_up(i) for i in range(MACHINES)), 60,
                          "three machines up in every view")
        yield machines
    finally:
        machines.tear_down()


def test_writes_reach_every_machine_and_read_back_through_each(machines):
    for index in range(30):
        code, _, err = machines.ctl("set", f"mh:{index}", f"value-{index}", "--consistency", "all",
                                    via=index % MACHINES, token="write")
        assert code == 0, err
    for via in range(MACHINES):
        for index in range(30):
            code, out, err = machines.ctl("get", f"mh:{index}", "--consistency", "all", via=via, token="read")
            assert (code, out.strip()) == (0, f"value-{index}"), err
    # N = 3 on three machines: every machine holds every key.
    machines.wait_for(lambda: all(node["keys"] >= 30 for node in machines.status(0).values()), 20,
                      "each machine holding the 30 keys")


def test_roles_and_plaintext_are_refused_across_machines(machines):
    code, _, err = machines.ctl("set", "mh:denied", "x", via=1, token="read")
    assert code == 2 and "PERMISSION_DENIED" in err, err
    code, _, err = machines.ctl("get", "mh:0", via=2, token=None)
    assert code == 2 and "UNAUTHENTICATED" in err, err
    code, _, err = machines.ctl("get", "mh:0", via=2, tls=False)
    assert code == 2 and "UNAVAILABLE" in err and len(err.strip().splitlines()) == 1, err
    assert machines.ctl("repair", via=0, token="admin")[0] == 0


def test_a_machine_that_fails_is_seen_down_and_refilled_when_back(machines):
    machines.processes[2].kill()
    machines.processes[2].wait()
    machines.wait_for(lambda: machines.status(0).get("node-2", {}).get("state") == "down", 20, "node-2 seen down")
    # Quorum writes go on with two of three machines.
    for index in range(10):
        code, _, err = machines.ctl("set", f"mh:during:{index}", "d", via=index % 2, token="write")
        assert code == 0, err
    machines.start(2)
    machines.wait_for(lambda: all(machines.all_up(i) for i in range(MACHINES)), 60, "node-2 back up")
    machines.wait_for(lambda: machines.status(2).get("node-2", {}).get("keys", 0) >= 40, 60,
                      "node-2 refilled with every key")
    code, out, _ = machines.ctl("get", "mh:during:3", "--consistency", "one", via=2, token="read")
    assert (code, out.strip()) == (0, "d")


def test_the_founding_machine_restarted_rejoins_and_refills(machines):
    # Machine A's seeds name only itself: restarted, it must wait for the others' gossip and
    # take its place back (refilling), not found a cluster of its own at once. Under mutual
    # TLS there is no secret to tell it peers may reach it: the certificates do.
    machines.processes[0].kill()
    machines.processes[0].wait()
    machines.wait_for(lambda: machines.status(1).get("node-0", {}).get("state") == "down", 20, "node-0 seen down")
    machines.start(0)
    # From its first moment back, a read through it finds every key or fails: it never
    # answers from an empty store (a miss, exit 1).
    misses, deadline = [], time.monotonic() + 12
    while time.monotonic() < deadline and not machines.all_up(1):
        for index in range(0, 30, 3):
            code, out, _ = machines.ctl("get", f"mh:{index}", "--consistency", "one", via=0, token="read", timeout=10)
            if code == 1:
                misses.append(index)
    assert not misses, f"node-0 answered {len(misses)} reads from an empty store: {misses}"
    machines.wait_for(lambda: all(machines.all_up(i) for i in range(MACHINES)), 60, "node-0 back up in every view")
    assert "founded a cluster" not in machines.log(0), machines.log(0)[-2000:]
    machines.wait_for(lambda: machines.status(0).get("node-0", {}).get("keys", 0) >= 40, 60, "node-0 refilled")
    code, out, err = machines.ctl("get", "mh:during:7", "--consistency", "one", via=0, token="read")
    assert (code, out.strip()) == (0, "d"), err
