"""cluster/, read as a deployment tool would: the Kubernetes YAML parses and has the kinds and
fields a StatefulSet deployment needs, every AEROCACHE_* setting names a real flag, the
Dockerfile installs only packages Debian 12 has, the dashboard asks only for metrics a node
serves, and the example token file and certificate script work with a real node.
"""
import glob
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest
import yaml

from cluster import wait_for
from conftest import Node, free_port

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CLUSTER = os.path.join(ROOT, "cluster")
NODE = os.environ["AEROCACHE_NODE"]
CTL = os.environ["AEROCACHE_CTL"]


def documents(pattern):
    found = []
    for path in sorted(glob.glob(os.path.join(CLUSTER, pattern))):
        with open(path) as f:
            found += [(os.path.basename(path), doc) for doc in yaml.safe_load_all(f) if doc is not None]
    assert found, f"no YAML under cluster/{pattern}"
    return found


def node_flags():
    """The flags `aerocache-node --help` lists, as AEROCACHE_<FLAG> names."""
    text = subprocess.run([NODE, "--help"], capture_output=True, text=True, check=True).stdout
    return {"AEROCACHE_" + flag.upper().replace("-", "_") for flag in re.findall(r"--([a-z][a-z0-9-]+)", text)}


@pytest.fixture(scope="module")
def kubernetes():
    by_kind = {}
    for name, doc in documents("kubernetes/*.yaml"):
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), f"{name}: {doc}"
        by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def test_the_statefulset_has_stable_names_probes_limits_and_a_decommissioning_prestop(kubernetes):
    assert {"Namespace", "StatefulSet", "Service", "PodDisruptionBudget", "Secret", "Certificate", "Issuer"} <= kubernetes.keys()
    # One namespace, the one the certificate's names assume.
    (namespace,) = kubernetes["Namespace"]
    for kind, objects in kubernetes.items():
        for obj in objects:
            if kind != "Namespace":
                assert obj["metadata"].get("namespace") == namespace["metadata"]["name"], (kind, obj["metadata"])
    (statefulset,) = kubernetes["StatefulSet"]
    headless = [s for s in kubernetes["Service"] if s["spec"].get("clusterIP") == "None"]
    assert len(headless) == 1 and statefulset["spec"]["serviceName"] == headless[0]["metadata"]["name"]
    assert headless[0]["spec"]["publishNotReadyAddresses"] is True, "joining pods must be found before they are ready"
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in kubernetes["Service"]:
        assert service["spec"]["selector"].items() <= labels.items()
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    probe = container["readinessProbe"]["exec"]["command"]
    assert probe[0].endswith("aerocachectl") and probe[-1] == "health", "readiness asks grpc.health.v1"
    limits = container["resources"]["limits"]
    assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= container["resources"]["requests"].keys()
    pre_stop = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert "decommission" in pre_stop and "$POD_NAME" in pre_stop
    assert '*-0) exit 0' in pre_stop, "the founding pod never decommissions (it would found a new cluster)"
    grace = statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= 9 * 60, "room for the decommission's --wait"
    env = {item["name"]: item.get("value") for item in container["env"]}
    settings = {name for name in env if name.startswith("AEROCACHE_")}
    unknown = settings - node_flags() - {"AEROCACHE_TOKEN_FILE"}  # the token file is aerocachectl's
    assert not unknown, f"not flags of aerocache-node: {unknown}"
    assert {"AEROCACHE_TLS_CERT", "AEROCACHE_TLS_KEY", "AEROCACHE_TLS_CA", "AEROCACHE_AUTH_TOKEN_FILE"} <= settings
    # Entries stay under the memory limit.
    assert int(env["AEROCACHE_MAX_MEMORY"].removesuffix("MiB")) * 2**20 < int(limits["memory"].removesuffix("Gi")) * 2**30
    # Every secret file the settings name is mounted.
    mounts = [mount["mountPath"] for mount in container["volumeMounts"]]
    for name in ["AEROCACHE_TLS_CERT", "AEROCACHE_TLS_KEY", "AEROCACHE_TLS_CA", "AEROCACHE_AUTH_TOKEN_FILE", "AEROCACHE_TOKEN_FILE"]:
        assert any(env[name].startswith(path + "/") for path in mounts), name
    # Keys and tokens are not world-readable.
    for volume in statefulset["spec"]["template"]["spec"]["volumes"]:
        assert volume["secret"]["defaultMode"] == 0o440, volume
    (budget,) = kubernetes["PodDisruptionBudget"]
    assert budget["spec"]["maxUnavailable"] == 1 and budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_certificate_serves_both_ends_and_the_probe_address(kubernetes):
    node_certificate = [c for c in kubernetes["Certificate"] if not c["spec"].get("isCA")]
    assert len(node_certificate) == 1
    spec = node_certificate[0]["spec"]
    assert {"server auth", "client auth"} <= set(spec["usages"])
    assert "127.0.0.1" in spec["ipAddresses"]
    assert any(name.endswith(".aerocache-peers.aerocache.svc.cluster.local") for name in spec["dnsNames"])


def test_the_example_tokens_are_a_token_file_the_node_takes(kubernetes):
    (secret,) = [s for s in kubernetes["Secret"] if s["metadata"]["name"] == "aerocache-tokens"]
    with tempfile.TemporaryDirectory() as directory:
        for text in [secret["stringData"]["tokens"], open(os.path.join(CLUSTER, "configs", "tokens.example")).read()]:
            path = os.path.join(directory, "tokens")
            with open(path, "w") as f:
                f.write(text)
            node = Node(NODE, "--auth-token-file", path)
            try:
                admin = [line.split()[0] for line in text.splitlines() if line.endswith(" admin") and not line.startswith("#")][0]
                result = subprocess.run([CTL, "--endpoints", node.address, "status"], capture_output=True, text=True,
                                        env={**os.environ, "AEROCACHE_TOKEN": admin}, timeout=30)
                assert result.returncode == 0, result.stderr
            finally:
                assert node.stop() == 0
    assert secret["stringData"]["admin-token"] in secret["stringData"]["tokens"]


def test_every_machine_config_names_real_flags():
    flags = node_flags()
    configs = sorted(glob.glob(os.path.join(CLUSTER, "configs", "*.env")))
    assert len(configs) >= 3
    ids = set()
    for path in configs:
        settings = dict(line.split("=", 1) for line in open(path).read().splitlines() if line and not line.startswith("#"))
        assert settings.keys() <= flags, f"{path}: {settings.keys() - flags}"
        ids.add(settings["AEROCACHE_NODE_ID"])
    assert len(ids) == len(configs), "each machine has its own node id"
    unit = open(os.path.join(CLUSTER, "systemd", "aerocache-node.service")).read()
    assert "EnvironmentFile=/etc/aerocache/aerocache.env" in unit and "ExecStart=/usr/local/bin/aerocache-node" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit


def test_the_dockerfile_installs_only_debian_12_packages():
    text = open(os.path.join(CLUSTER, "docker", "Dockerfile")).read()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(bases) == 2 and all("bookworm" in base for base in bases), bases  # Debian 12
    packages = set()
    for command in re.findall(r"apt-get install ([^&\n]+)", text):
        packages |= {word for word in command.split() if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", word)}
    assert {"libnghttp2-14", "libjemalloc2", "libnghttp2-dev"} <= packages
    with open("/etc/os-release") as f:
        assert 'VERSION_ID="12"' in f.read(), "the check asks this machine's Debian 12 package lists"
    for package in sorted(packages):
        shown = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
        assert shown.returncode == 0 and f"Package: {package}" in shown.stdout, f"{package} is not a Debian 12 package"
    products = re.findall(r'\.executable\(\s*name:\s*"([^"]+)"', open(os.path.join(ROOT, "Package.swift")).read())
    for binary in re.findall(r"--product (\S+)", text):
        assert binary in products, binary


def test_the_dashboard_and_the_scrape_config_ask_for_what_a_node_serves():
    dashboard = json.load(open(os.path.join(CLUSTER, "grafana", "aerocache-dashboard.json")))
    wanted = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            wanted |= set(re.findall(r"\b(aerocache_[a-z_]+)", target["expr"]))
    assert len(wanted) >= 12
    (_, prometheus), = documents("prometheus/prometheus.yml")
    assert any(job["job_name"].startswith("aerocache") for job in prometheus["scrape_configs"])
    port = free_port()
    node = Node(NODE, "--metrics-listen", f"127.0.0.1:{port}")
    try:
        def served():
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            return {re.match(r"^(\w+)", line).group(1) for line in text.splitlines() if line and not line.startswith("#")}
        wait_for(lambda: wanted <= served(), 15, f"the node serving {sorted(wanted - served())}")
    finally:
        assert node.stop() == 0


def test_the_certificate_script_makes_what_a_tls_node_serves_with():
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run([os.path.join(CLUSTER, "configs", "make-certificates.sh"), directory, "127.0.0.1"],
                       check=True, capture_output=True)
        files = os.path.join(directory, "127.0.0.1")
        node = Node(NODE, "--tls-cert", f"{files}/node.pem", "--tls-key", f"{files}/node.key",
                    "--tls-ca", f"{directory}/ca.pem")
        try:
            # With a CA and no seeds it waits 3 s for members that may know it, then founds.
            def health():
                result = subprocess.run([CTL, "--endpoints", node.address, "--tls-ca", f"{directory}/ca.pem", "health"],
                                        capture_output=True, text=True, timeout=30)
                assert result.returncode in (0, 1), result.stderr
                return result.stdout.strip() == "SERVING"
            wait_for(health, 20, "the TLS node serving")
        finally:
            assert node.stop() == 0


def test_systemctl_reload_never_stops_a_node():
    # ExecReload sends SIGHUP, whose default action ends a process: a node with nothing to
    # read again keeps serving.
    node = Node(NODE, "--log-level", "notice")
    try:
        for _ in range(3):
            node.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)  # a signal's default action is immediate; half a second is ample
        result = subprocess.run([CTL, "--endpoints", node.address, "health"], capture_output=True, text=True, timeout=30)
        assert node.alive() and result.returncode == 0, result.stderr
    finally:
        assert node.stop() == 0
