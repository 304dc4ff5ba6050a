"""`make e2e-node`: the prod stack's spread rules on the real nodes. A Deployment with the
rendered prod `web` Deployment's selector, pod labels, strategy and topologySpreadConstraints,
its HPA's minReplicas and its PodDisruptionBudget (the oracle is the render: `render_stack
("prod")`), running the busybox test image in place of the app, lands one replica per zone and
per node; a drain (cordon, then the Eviction API, as `kubectl drain` does) of a node holding
one moves it to the only node both constraints allow: the other node of the same zone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.kube import ApiError, Kube
from e2e.realnode.layout import LAYOUT
from e2e.realnode.nodes import RealNodes
from stackctl.render.stack import render_stack
from tests.e2e.realnode_kit import (
    SERVER,
    delete_namespace,
    pod_spec,
    ready,
    restricted_namespace,
)

pytestmark = pytest.mark.realnode

NS = "e2e-realspread"
ZONE = "topology.kubernetes.io/zone"


def _rendered(kind: str, name: str) -> dict[str, Any]:
    for obj in render_stack("prod").objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return dict(obj)
    raise AssertionError(f"the prod render has no {kind} {name}")


@pytest.fixture(scope="module")
def prod() -> dict[str, dict[str, Any]]:
    return {
        "deployment": _rendered("Deployment", "web"),
        "hpa": _rendered("HorizontalPodAutoscaler", "web"),
        "pdb": _rendered("PodDisruptionBudget", "web"),
    }


def _pods(kube: Kube, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    labels = deployment["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    pods = kube.list("Pod", NS, selector)
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _zone_of(kube: Kube) -> dict[str, str]:
    return {n["metadata"]["name"]: n["metadata"]["labels"].get(ZONE, "") for n in kube.list("Node")}


def _wait_spread(
    kube: Kube, nodes: RealNodes, deployment: dict[str, Any], replicas: int
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 240
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        nodes.assert_running()
        pods = _pods(kube, deployment)
        if len(pods) == replicas and all(ready(p) for p in pods):
            return pods
        time.sleep(0.5)
    placed = [(p["spec"].get("nodeName"), p["status"].get("phase")) for p in pods]
    raise AssertionError(f"{replicas} Ready replicas expected: {placed}")


@pytest.fixture(scope="module")
def spread(
    kube: Kube, real_nodes: RealNodes, prod: dict[str, dict[str, Any]], figures: dict[str, float]
) -> Iterator[dict[str, Any]]:
    rendered = prod["deployment"]
    template = rendered["spec"]["template"]
    replicas = prod["hpa"]["spec"]["minReplicas"]
    spec = pod_spec(SERVER)
    spec["containers"][0]["env"] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    spec["topologySpreadConstraints"] = template["spec"]["topologySpreadConstraints"]
    # Only on the real nodes (kwok nodes are tainted; this keeps the test pod's nodeSelector).
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": rendered["spec"]["selector"],
            "strategy": rendered["spec"]["strategy"],
            "template": {"metadata": {"labels": template["metadata"]["labels"]}, "spec": spec},
        },
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": NS},
        "spec": prod["pdb"]["spec"],
    }
    restricted_namespace(kube, NS)
    kube.create(pdb)
    started = time.monotonic()
    kube.create(deployment)
    _wait_spread(kube, real_nodes, deployment, replicas)
    figures["node.spread_deployment_ready_s"] = time.monotonic() - started
    yield deployment
    for spec_ in LAYOUT:
        kube.patch("Node", spec_.name, {"spec": {"unschedulable": None}})
    delete_namespace(kube, NS)


def test_prod_spread_places_one_replica_per_zone_and_node(
    spread: dict[str, Any], kube: Kube, real_nodes: RealNodes, prod: dict[str, dict[str, Any]]
) -> None:
    replicas = prod["hpa"]["spec"]["minReplicas"]
    pods = _pods(kube, spread)
    zone_of = _zone_of(kube)
    hosts = [p["spec"]["nodeName"] for p in pods]
    assert set(hosts) <= {s.name for s in LAYOUT}, hosts
    assert len(set(hosts)) == replicas, f"two replicas on one node: {hosts}"
    zones = [zone_of[h] for h in hosts]
    assert len(set(zones)) == min(replicas, len({s.zone for s in LAYOUT})), zones


def test_a_drain_reschedules_under_the_spread_rules(
    spread: dict[str, Any], kube: Kube, real_nodes: RealNodes, figures: dict[str, float]
) -> None:
    zone_of = _zone_of(kube)
    zone_a = [s.name for s in LAYOUT if s.zone == LAYOUT[0].zone]
    assert len(zone_a) == 2, "the layout needs two nodes in the first zone for a drain"
    before = _pods(kube, spread)
    victim = next(p for p in before if p["spec"]["nodeName"] in zone_a)
    drained = victim["spec"]["nodeName"]
    other = next(n for n in zone_a if n != drained)
    # kubectl drain: cordon, then evict every pod through the Eviction API (the PDB decides).
    kube.patch("Node", drained, {"spec": {"unschedulable": True}})
    name = victim["metadata"]["name"]
    started = time.monotonic()
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": NS},
    }
    try:
        kube.request("POST", f"api/v1/namespaces/{NS}/pods/{name}/eviction", eviction)
    except ApiError as exc:
        raise AssertionError(f"eviction of {name} refused: {exc}") from None
    after = _wait_spread(kube, real_nodes, spread, len(before))
    figures["node.eviction_to_replacement_ready_s"] = time.monotonic() - started
    moved = [
        p for p in after if p["metadata"]["name"] not in {q["metadata"]["name"] for q in before}
    ]
    assert len(moved) == 1, [p["metadata"]["name"] for p in after]
    assert moved[0]["spec"]["nodeName"] == other, (
        f"the replacement landed on {moved[0]['spec']['nodeName']}, not {other}"
    )
    hosts = [p["spec"]["nodeName"] for p in after]
    assert drained not in hosts and len(set(hosts)) == len(hosts)
    assert len({zone_of[h] for h in hosts}) == len({zone_of[p["spec"]["nodeName"]] for p in before})
