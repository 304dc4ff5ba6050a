"""`make e2e-node`: the data plane of the real nodes (e2e/realnode). Pods on different nodes
reach each other, a Service's ClusterIP is served through kube-proxy, its name resolves through
CoreDNS (and nothing outside the cluster does), and kube-router enforces NetworkPolicies: every
claim checked by a real connection attempt from inside a pod."""

from __future__ import annotations

import ipaddress
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.cluster import POD_CIDR, SERVICE_CIDR
from e2e.kube import Kube
from e2e.realnode.layout import HOST_IP, KWOK_TAINT, LAYOUT, NODE_LABEL
from e2e.realnode.nodes import RealNodes
from tests.e2e.realnode_kit import (
    PORT,
    client_pod,
    delete_namespace,
    exec_in,
    fetch,
    restricted_namespace,
    scheduled_to_ready,
    server_pod,
    wait_ready,
)

pytestmark = pytest.mark.realnode

NS = "e2e-realnet"
SERVICE = "web"
# Servers and clients on different nodes and zones (layout: nodes 0 and 1 in zone a, 2 in b,
# 3 in c).
PLACEMENT = {
    "server-a": ("server", LAYOUT[0].name),
    "server-b": ("server", LAYOUT[2].name),
    "client-allowed": ("allowed", LAYOUT[3].name),
    "client-other": ("other", LAYOUT[1].name),
}


@pytest.fixture(scope="module")
def pods(
    kube: Kube, real_nodes: RealNodes, figures: dict[str, float]
) -> Iterator[dict[str, dict[str, Any]]]:
    restricted_namespace(kube, NS)
    for name, (role, node) in PLACEMENT.items():
        if role == "server":
            kube.create(server_pod(name, NS, {"app": "server"}, node))
        else:
            kube.create(client_pod(name, NS, {"role": role}, node))
    ready = wait_ready(kube, real_nodes, NS, list(PLACEMENT))
    figures["node.pods_scheduled_to_ready_max_s"] = max(
        scheduled_to_ready(p) for p in ready.values()
    )
    yield ready
    delete_namespace(kube, NS)


def _route(*args: str) -> str:
    """`ip ARGS` on the host, e.g. `route get` (a routing table lookup: nothing is sent)."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).strip()


def _refused(lookup: str) -> bool:
    """An `unreachable` route, or none at all (`Network is unreachable`)."""
    return "unreachable" in lookup.lower() or "No route to host" in lookup


def test_nothing_routes_off_the_machine() -> None:
    """The host refuses the cluster's pod and service ranges and kwok's fake node address
    (unreachable routes), and a node namespace has no route but to the bridge, the other nodes'
    pod ranges and (for kube-proxy's DNAT) the service range via the host."""
    for cidr in (POD_CIDR, SERVICE_CIDR, "10.0.0.1/32"):
        net = ipaddress.ip_network(cidr)
        address = str(net.network_address + 7 if net.num_addresses > 7 else net.network_address)
        assert _refused(_route("route", "get", address)), cidr
    for spec in LAYOUT:
        ns = ["netns", "exec", spec.netns, "ip"]
        assert _refused(_route(*ns, "route", "get", "192.0.2.1")), spec.netns
        assert f"via {HOST_IP}" in _route(*ns, "route", "get", "10.96.0.10"), spec.netns
        routes = _route(*ns, "route", "show")
        assert "default" not in routes, routes


def test_every_real_node_is_ready_in_its_zone_and_the_kwok_nodes_are_tainted(
    kube: Kube, real_nodes: RealNodes
) -> None:
    nodes = {n["metadata"]["name"]: n for n in kube.list("Node")}
    key, value = NODE_LABEL
    for spec in LAYOUT:
        node = nodes[spec.name]
        labels = node["metadata"]["labels"]
        assert labels[key] == value and labels["topology.kubernetes.io/zone"] == spec.zone
        assert node["spec"]["podCIDR"] == spec.pod_cidr
        assert not node["spec"].get("taints"), node["spec"].get("taints")
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses["InternalIP"] == spec.ip
    kwok = [n for n in nodes.values() if n["metadata"]["labels"].get("type") == "kwok"]
    assert kwok, "the kwok nodes are gone"
    for node in kwok:
        assert KWOK_TAINT in (node["spec"].get("taints") or []), node["metadata"]["name"]


def test_pods_on_different_nodes_reach_each_other(
    pods: dict[str, dict[str, Any]], real_nodes: RealNodes
) -> None:
    for client, server in (("client-other", "server-b"), ("client-allowed", "server-a")):
        assert pods[client]["spec"]["nodeName"] != pods[server]["spec"]["nodeName"]
        url = f"http://{pods[server]['status']['podIP']}:{PORT}/"
        assert fetch(real_nodes, pods[client], url) == server, f"{client} -> {server}"


def _service(kube: Kube) -> dict[str, Any]:
    existing = kube.get_or_none("Service", SERVICE, NS)
    if existing:
        return dict(existing)
    return kube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NS},
            "spec": {
                "selector": {"app": "server"},
                "ports": [{"name": "http", "port": 80, "targetPort": PORT}],
            },
        }
    )


def test_a_service_clusterip_is_served_through_kube_proxy(
    pods: dict[str, dict[str, Any]], real_nodes: RealNodes, kube: Kube
) -> None:
    ip = _service(kube)["spec"]["clusterIP"]
    client = pods["client-allowed"]
    seen: set[str | None] = set()
    deadline = time.monotonic() + 60
    while seen != {"server-a", "server-b"} and time.monotonic() < deadline:
        seen.add(fetch(real_nodes, client, f"http://{ip}:80/"))
        seen.discard(None)  # kube-proxy may not have synced the endpoints yet
    assert seen == {"server-a", "server-b"}, f"ClusterIP {ip} answered by {seen}"


def test_a_service_name_resolves_through_coredns_and_nothing_else_does(
    pods: dict[str, dict[str, Any]], real_nodes: RealNodes, kube: Kube
) -> None:
    ip = _service(kube)["spec"]["clusterIP"]
    client = pods["client-other"]
    name = f"{SERVICE}.{NS}.svc.cluster.local"
    code, out = exec_in(real_nodes, client, "nslookup", name)
    assert code == 0 and f"Address: {ip}" in out, out
    # The search path the kubelet wrote (ClusterFirst): the short name resolves through the
    # first search domain (busybox's nslookup asks every search domain at once and exits 1
    # because the others answer NXDOMAIN, so its exit code says nothing here).
    _, out = exec_in(real_nodes, client, "nslookup", SERVICE)
    assert f"Name:\t{name}\nAddress: {ip}" in out, out
    # No upstream: a name outside the cluster domain is not resolved.
    code, out = exec_in(real_nodes, client, "nslookup", "example.com.")
    assert code != 0, out


def _policy(name: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def _reach(nodes: RealNodes, pods: dict[str, dict[str, Any]], client: str) -> bool:
    url = f"http://{pods['server-a']['status']['podIP']}:{PORT}/"
    return fetch(nodes, pods[client], url, seconds=2) == "server-a"


def _settles(
    nodes: RealNodes, pods: dict[str, dict[str, Any]], want: dict[str, bool], timeout: float = 45
) -> dict[str, bool]:
    """Try until every client's reachability is as wanted (kube-router syncs on the policy's
    watch event) and stays so for a second round; the last observation."""
    deadline = time.monotonic() + timeout
    got: dict[str, bool] = {}
    stable = 0
    while time.monotonic() < deadline and stable < 2:
        got = {client: _reach(nodes, pods, client) for client in want}
        stable = stable + 1 if got == want else 0
    return got


def test_network_policies_refuse_and_allow_real_connections(
    pods: dict[str, dict[str, Any]], real_nodes: RealNodes, kube: Kube
) -> None:
    everyone = {"client-allowed": True, "client-other": True}
    assert _settles(real_nodes, pods, everyone) == everyone, "no policy yet: both reach"
    kube.create(_policy("deny-all", []))
    nobody = {"client-allowed": False, "client-other": False}
    assert _settles(real_nodes, pods, nobody) == nobody, "default deny: both refused"
    allow = [
        {
            "from": [{"podSelector": {"matchLabels": {"role": "allowed"}}}],
            "ports": [{"port": PORT, "protocol": "TCP"}],
        }
    ]
    kube.create(_policy("allow-role-allowed", allow))
    only = {"client-allowed": True, "client-other": False}
    assert _settles(real_nodes, pods, only) == only, "only role=allowed reaches"
    kube.delete("NetworkPolicy", "deny-all", NS)
    kube.delete("NetworkPolicy", "allow-role-allowed", NS)
    assert _settles(real_nodes, pods, everyone) == everyone, "policies removed: both reach"
