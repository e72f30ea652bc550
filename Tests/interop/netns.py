"""Network namespaces for the process-level tests: nodes on their own addresses, wired to a
hub namespace's bridges by veth pairs. Touches nothing on the host's own network."""
import os
import subprocess
import uuid


def ip(*args, namespace=None):
    command = (["ip", "netns", "exec", namespace] if namespace else []) + ["ip", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=10)


def can_make_namespaces():
    if os.geteuid() != 0:
        return False
    probe = f"ac-probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return made


def make_hub(hub, bridges):
    """The hub namespace with its bridges up."""
    ip("netns", "add", hub)
    ip("link", "set", "lo", "up", namespace=hub)
    for bridge in bridges:
        ip("link", "add", bridge, "type", "bridge", namespace=hub)
        ip("link", "set", bridge, "up", namespace=hub)


def attach(hub, bridge, namespace, port, address):
    """A new namespace whose eth0 has `address` (CIDR), its veth peer `port` on the hub's `bridge`."""
    ip("netns", "add", namespace)
    ip("link", "set", "lo", "up", namespace=namespace)
    ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace, namespace=hub)
    ip("link", "set", port, "master", bridge, namespace=hub)
    ip("link", "set", port, "up", namespace=hub)
    ip("addr", "add", address, "dev", "eth0", namespace=namespace)
    ip("link", "set", "eth0", "up", namespace=namespace)
