"""`make e2e-node`: the NetworkPolicy matrix of the dev stack on the real nodes, its oracle the
render. The rendered Namespace and NetworkPolicies of `render_stack("dev")` are created as they
are; the destination is a stand-in for the app's pod (the busybox test image, not the app image)
with the rendered `web` pod template's labels and container ports, serving both; the sources
are pods in the namespaces the policies name or do not (ingress-nginx, the Jenkins agent's and
the image builder's namespaces with the labels of the rendered prod JCasC agent templates,
monitoring, another namespace, a peer in the app's own namespace). For every source and
port, `policy.netpol.verdict` over the rendered policies says allowed or refused and a real
connection attempt through kube-router's firewall agrees; the app's own egress (DNS to CoreDNS
allowed, anything else refused) too. The matrix is printed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.kube import Kube
from e2e.realnode.nodes import RealNodes
from policy.netpol import Cluster, Pod, verdict
from policy.netpol.model import pod_from_manifest
from stackctl.render.stack import render_stack
from tests.e2e.realnode_kit import (
    client_pod,
    delete_namespace,
    exec_in,
    fetch,
    pod_spec,
    restricted_namespace,
    wait_ready,
)
from tests.jenkins.helpers import agent_pods, cloud

pytestmark = pytest.mark.realnode

DEST = "web-stand-in"
OTHER_NS = "e2e-other"


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    keep = {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}
    return {**{k: v for k, v in obj.items() if k != "metadata"}, "metadata": keep}


@pytest.fixture(scope="module")
def world(kube: Kube, real_nodes: RealNodes) -> Iterator[dict[str, Any]]:
    dev = render_stack("dev").objects
    prod = render_stack("prod")
    app_ns = next(o for o in dev if o["kind"] == "Namespace")["metadata"]["name"]
    web = next(o for o in dev if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")
    template = web["spec"]["template"]
    agents = agent_pods(prod)
    agent_ns = {t["name"]: t.get("namespace") or "jenkins" for t in cloud(prod)["templates"]}
    # source name -> (namespace, labels)
    sources: dict[str, tuple[str, dict[str, str]]] = {
        "ingress-controller": ("ingress-nginx", {"app": "ingress-controller"}),
        "jenkins-agent": (agent_ns["pulumi"], agents["pulumi"]["metadata"]["labels"]),
        "image-builder": (agent_ns["builder"], agents["builder"]["metadata"]["labels"]),
        "jenkins-other": (agent_ns["pulumi"], {"app": "not-an-agent"}),
        "prometheus": ("monitoring", {"app": "prometheus"}),
        "other-namespace": (OTHER_NS, {"app": "client"}),
        "app-namespace-peer": (app_ns, {"app": "peer"}),
    }
    namespaces = sorted({ns for ns, _ in sources.values()} - {app_ns})
    kube.create(_clean(next(o for o in dev if o["kind"] == "Namespace")))
    for ns in namespaces:
        restricted_namespace(kube, ns)
    kube.wait_for(
        "default ServiceAccount", lambda: kube.get_or_none("ServiceAccount", "default", app_ns)
    )
    ports = [p for c in template["spec"]["containers"] for p in c.get("ports") or []]
    serve = " ; ".join(f"httpd -p {p['containerPort']} -h /www" for p in ports)
    spec = pod_spec(f"echo {DEST} > /www/index.html ; {serve} ; exec sleep 3600")
    spec["containers"][0]["ports"] = ports
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": DEST,
                "namespace": app_ns,
                "labels": template["metadata"]["labels"],
            },
            "spec": spec,
        }
    )
    for name, (ns, labels) in sources.items():
        kube.create(client_pod(name, ns, labels, None))
    pods = {DEST: wait_ready(kube, real_nodes, app_ns, [DEST])[DEST]}
    for name, (ns, _) in sources.items():
        pods.update(wait_ready(kube, real_nodes, ns, [name]))
    # The policies last: every pod is Ready (its readiness probe is an exec, not a connection).
    for obj in dev:
        if obj["kind"] == "NetworkPolicy":
            kube.create(_clean(obj))
    dest = pod_from_manifest({"metadata": template["metadata"], "spec": template["spec"]}, app_ns)
    dns = Pod("kube-system", {"k8s-app": "kube-dns"}, name="coredns")
    extra = [dest, dns, *(Pod(ns, labels, name=n) for n, (ns, labels) in sources.items())]
    oracle = Cluster.from_objects([o for o in dev if o["kind"] != "Deployment"], extra_pods=extra)
    yield {
        "pods": pods,
        "sources": sources,
        "ports": [int(p["containerPort"]) for p in ports],
        "oracle": oracle,
        "dest": dest,
        "dns": dns,
        "app_ns": app_ns,
    }
    for ns in [app_ns, *namespaces]:
        delete_namespace(kube, ns)


def _observe(nodes: RealNodes, world: dict[str, Any]) -> dict[tuple[str, int], bool]:
    ip = world["pods"][DEST]["status"]["podIP"]
    return {
        (src, port): fetch(nodes, world["pods"][src], f"http://{ip}:{port}/", seconds=2) == DEST
        for src in world["sources"]
        for port in world["ports"]
    }


def test_every_source_and_port_is_allowed_exactly_when_the_render_says_so(
    world: dict[str, Any], real_nodes: RealNodes, capsys: pytest.CaptureFixture[str]
) -> None:
    oracle: Cluster = world["oracle"]
    expected = {
        (src, port): verdict(oracle, Pod(ns, labels, name=src), world["dest"], port).allowed
        for src, (ns, labels) in world["sources"].items()
        for port in world["ports"]
    }
    assert any(expected.values()) and not all(expected.values()), expected
    # kube-router applies a policy on its watch event: wait until the observation agrees, then
    # require one more full round to agree as well.
    deadline, agreed, seen = time.monotonic() + 60, 0, {}
    while agreed < 2 and time.monotonic() < deadline:
        seen = _observe(real_nodes, world)
        agreed = agreed + 1 if seen == expected else 0
    lines = [f"{'source':<20}" + "".join(f"{p:>16}" for p in world["ports"])]
    for src in world["sources"]:
        cells = []
        for port in world["ports"]:
            want, got = expected[(src, port)], seen.get((src, port))
            mark = "allowed" if got else "refused"
            cells.append(f"{mark + ('' if want == got else ' (!)'):>16}")
        lines.append(f"{src:<20}" + "".join(cells))
    with capsys.disabled():
        print("\nNetworkPolicy matrix (dev render -> web stand-in; (!) = differs from render):")
        print("\n".join(lines))
    assert seen == expected, "\n".join(lines)


def test_the_apps_egress_reaches_dns_and_nothing_else(
    world: dict[str, Any], real_nodes: RealNodes
) -> None:
    oracle: Cluster = world["oracle"]
    web, dest = world["pods"][DEST], world["dest"]
    assert verdict(oracle, dest, world["dns"], 53, "UDP").allowed
    code, out = exec_in(real_nodes, web, "nslookup", f"{DEST}.{world['app_ns']}.svc.cluster.local")
    # The name does not exist (no Service): an NXDOMAIN answer proves the query got through.
    assert "NXDOMAIN" in out or code == 0, out
    peer = world["pods"]["other-namespace"]
    peer_pod = Pod(OTHER_NS, world["sources"]["other-namespace"][1], name="other-namespace")
    assert not verdict(oracle, dest, peer_pod, 8080).allowed
    assert fetch(real_nodes, web, f"http://{peer['status']['podIP']}:8080/", seconds=2) is None
