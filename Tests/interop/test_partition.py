"""A real network partition: four nodes, each in its own network namespace, split two against two.

The test builds its own network and touches nothing on the host: a hub namespace holds two
bridges, and each node's namespace is wired to the hub by a veth pair. All ports start on
bridge A; the partition moves nodes 2 and 3 to bridge B (the halves can no longer reach each
other); healing moves them back. Nobody tells the nodes anything: they must notice both.
"""
import json
import os
import subprocess
import time
import uuid

import pytest

from cluster import make_secret_file, wait_or_kill
from netns import attach, can_make_namespaces, ip, make_hub

NODES = 4
PORT = 7400


pytestmark = pytest.mark.skipif(not can_make_namespaces(), reason="needs root and network namespaces (ip netns)")


class NamespacedCluster:
    def __init__(self):
        tag = uuid.uuid4().hex[:5]
        self.hub = f"ac-hub-{tag}"
        self.namespaces = [f"ac-n{index}-{tag}" for index in range(NODES)]
        self.ports = [f"ac{tag}p{index}" for index in range(NODES)]  # the hub's end of each veth (< 16 chars)
        self.processes = {}
        self.node_binary = os.environ["AEROCACHE_NODE"]
        self.secret_file = make_secret_file()
        self.ctl_binary = os.environ["AEROCACHE_CTL"]

    def address(self, index):
        return f"10.99.0.{index + 1}:{PORT}"

    def build_network(self):
        make_hub(self.hub, ("bra", "brb"))
        for index, namespace in enumerate(self.namespaces):
            attach(self.hub, "bra", namespace, self.ports[index], f"10.99.0.{index + 1}/24")

    def start(self, index):
        seeds = [] if index == 0 else ["--seeds", self.address(0)]
        self.processes[index] = subprocess.Popen(
            ["ip", "netns", "exec", self.namespaces[index], self.node_binary, "--listen", self.address(index),
             "--node-id", f"node-{index}", *seeds, "--cluster-secret-file", self.secret_file, "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # `ip netns exec` execs: this pid is the node's

    def move(self, indexes, bridge):
        for index in indexes:
            ip("link", "set", self.ports[index], "master", bridge, namespace=self.hub)

    def ctl(self, index, *args):
        result = subprocess.run(["ip", "netns", "exec", self.namespaces[index], self.ctl_binary,
                                 "--endpoints", self.address(index), *args], capture_output=True, timeout=30)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    def states(self, index):
        """How node `index` sees every member: {id: state}."""
        code, out, err = self.ctl(index, "status", "--json")
        if code != 0:
            return {}
        return {node["id"]: node["state"] for node in json.loads(out)["nodes"]}

    def keys(self, index):
        code, out, _ = self.ctl(index, "status", "--json")
        return next(node["keys"] for node in json.loads(out)["nodes"] if node["id"] == f"node-{index}") if code == 0 else -1

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.3)
        raise AssertionError(f"{what}: not within {timeout}s")

    def tear_down(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        wait_or_kill(self.processes.values())
        for namespace in [*self.namespaces, self.hub]:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        os.unlink(self.secret_file)


@pytest.fixture
def cluster():
    cluster = NamespacedCluster()
    try:
        cluster.build_network()
        for index in range(NODES):
            cluster.start(index)
        yield cluster
    finally:
        cluster.tear_down()


def test_a_partition_heals_by_itself_and_writes_made_during_it_reach_every_replica(cluster):
    everyone = {f"node-{index}" for index in range(NODES)}
    cluster.wait_for(lambda: all(set(cluster.states(i)) == everyone and set(cluster.states(i).values()) == {"up"}
                                 for i in range(NODES)), 30, "all four nodes up in every view")

    left, right = [0, 1], [2, 3]
    cluster.move(right, "brb")
    cluster.wait_for(lambda: all(cluster.states(i).get(f"node-{j}") == "down" for i in left for j in right)
                     and all(cluster.states(i).get(f"node-{j}") == "down" for i in right for j in left),
                     15, "each half sees the other as down")
    views = {i: cluster.states(i) for i in range(NODES)}
    assert all(views[i].get(f"node-{j}") == "up" for i in left for j in left if i != j), f"a half stays whole: {views}"
    assert all(views[i].get(f"node-{j}") == "up" for i in right for j in right if i != j), f"a half stays whole: {views}"

    # Writes during the partition, with consistency one, on the left: each key has a replica
    # on the right (3 replicas on 4 nodes), which gets a hint instead of the write.
    written = [f"split:{n}" for n in range(40)]
    for key in written:
        code, _, err = cluster.ctl(0, "set", key, "during-the-split", "--consistency", "one")
        assert code == 0, err

    cluster.move(right, "bra")
    cluster.wait_for(lambda: all(set(cluster.states(i).values()) == {"up"} and len(cluster.states(i)) == NODES
                                 for i in range(NODES)), 20, "every view back to four up nodes after healing")
    # Hinted handoff delivers what the right half missed: every key on exactly its 3 replicas.
    cluster.wait_for(lambda: sum(cluster.keys(i) for i in range(NODES)) == 3 * len(written), 60,
                     "every key written during the partition on 3 replicas")
    for key in written[:5]:
        code, out, err = cluster.ctl(3, "get", key, "--consistency", "quorum")
        assert code == 0 and "during-the-split" in out, err
