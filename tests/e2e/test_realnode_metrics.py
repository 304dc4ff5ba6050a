"""`make e2e-node`: resource metrics of the real nodes. metrics-server (built here, a pod on a
real node, e2e/realnode/addons.py) serves `metrics.k8s.io` through the API server's aggregation
layer with CPU and memory of every real node and of busy pods on each; and each kubelet's
cAdvisor (`/metrics/cadvisor`, what Prometheus scrapes for the container alerts) labels every
container series with the namespace, pod and container that the API server says run on that
node, and reports no other node's containers, though four kubelets share one host and one
cgroup v1 hierarchy (each under its own cgroup root)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from e2e.kube import Kube
from e2e.realnode.layout import LAYOUT, NODE_LABEL
from e2e.realnode.nodes import RealNodes
from tests.e2e.realnode_kit import delete_namespace, pod_spec, restricted_namespace, wait_ready

pytestmark = pytest.mark.realnode

NS = "e2e-metrics"
# Two containers per pod, so that a series with the wrong container label shows.
BUSY, IDLE = "burn", "idle"
CADVISOR_METRICS = ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes")
CONTAINER_ID = re.compile(r"[0-9a-f]{64}$")


def _busy_pod(name: str, node: str) -> dict[str, Any]:
    """A busybox pod pinned to `node`: one container spinning in a shell loop (CPU-bound, held to
    a tenth of a core by its limit), one asleep."""
    spec = pod_spec("echo ready > /www/index.html && while :; do :; done", node)
    busy = spec["containers"][0]
    busy["name"] = BUSY
    busy["resources"] = {
        "requests": {"cpu": "10m", "memory": "8Mi"},
        "limits": {"cpu": "100m", "memory": "32Mi"},
    }
    idle = {
        **busy,
        "name": IDLE,
        "command": ["/bin/sh", "-c", "exec sleep 3600"],
        "readinessProbe": None,
        "ports": [],
        "volumeMounts": [],
    }
    spec["containers"].append({k: v for k, v in idle.items() if v not in (None, [])})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": spec}  # fmt: skip


def _busy_name(node: str) -> str:
    return f"busy-{node}"


@pytest.fixture(scope="module")
def busy(
    kube: Kube, real_nodes: RealNodes, figures: dict[str, float]
) -> Iterator[dict[str, dict[str, Any]]]:
    """node name -> its busy pod (Ready), with metrics.k8s.io serving every real node."""
    restricted_namespace(kube, NS)
    for spec in LAYOUT:
        kube.create(_busy_pod(_busy_name(spec.name), spec.name))
    pods = wait_ready(kube, real_nodes, NS, [_busy_name(s.name) for s in LAYOUT])
    figures["metrics.api_available_s"] = real_nodes.wait_metrics_api()
    yield {p["spec"]["nodeName"]: p for p in pods.values()}
    delete_namespace(kube, NS)


def _cpu_cores(quantity: str) -> float:
    """A CPU quantity as metrics.k8s.io writes it (`123456n`, `5m`, `1`) in cores."""
    units = {"n": 1e-9, "u": 1e-6, "m": 1e-3}
    if quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity)


def _bytes(quantity: str) -> float:
    """A memory quantity as metrics.k8s.io writes it (`1234Ki`, `5Mi`, plain bytes)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity)


def test_node_metrics_of_every_real_node(kube: Kube, busy: dict[str, dict[str, Any]]) -> None:
    """NodeMetrics of each real node with CPU and memory in use, and none of a kwok node (whose
    address routes off the machine: metrics-server is told to scrape the real nodes only)."""
    doc = kube.request("GET", "apis/metrics.k8s.io/v1beta1/nodes")
    usage = {item["metadata"]["name"]: item["usage"] for item in doc["items"]}
    assert set(usage) == {s.name for s in LAYOUT}, usage
    for node, value in usage.items():
        assert _cpu_cores(value["cpu"]) > 0, (node, value)
        assert _bytes(value["memory"]) > 0, (node, value)


def test_pod_metrics_of_busy_pods(kube: Kube, busy: dict[str, dict[str, Any]]) -> None:
    """PodMetrics of the busy pod on each node: both containers by the names the pod spec gives,
    the spinning one using CPU, both using memory."""

    def all_served() -> dict[str, Any] | None:
        doc = kube.request("GET", f"apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods")
        items = {item["metadata"]["name"]: item for item in doc["items"]}
        if not all(_busy_name(node) in items for node in busy):
            return None
        spinning = [c for item in items.values() for c in item["containers"] if c["name"] == BUSY]
        return items if all(_cpu_cores(c["usage"]["cpu"]) > 0 for c in spinning) else None

    items = kube.wait_for("PodMetrics of every busy pod", all_served, timeout=120, interval=2)
    for node in busy:
        containers = {c["name"]: c["usage"] for c in items[_busy_name(node)]["containers"]}
        assert set(containers) == {BUSY, IDLE}, containers
        assert _cpu_cores(containers[BUSY]["cpu"]) > 0, containers
        for name, usage in containers.items():
            assert _bytes(usage["memory"]) > 0, (name, usage)


def _scrape(kube: Kube, node: str) -> list[tuple[str, dict[str, str], float]]:
    """(metric, labels, value) of the CADVISOR_METRICS samples of `node`'s kubelet, read through
    the API server's node proxy (its kubelet client certificate, the node's InternalIP)."""
    text = kube.request("GET", f"api/v1/nodes/{node}/proxy/metrics/cadvisor")
    assert isinstance(text, str), type(text)
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in CADVISOR_METRICS:
                out.append((sample.name, dict(sample.labels), sample.value))
    return out


def _running_containers(kube: Kube) -> dict[str, dict[str, Any]]:
    """containerd container id -> {node, namespace, pod, uid, container} of every running
    container on a real node, from the API server's pod list (the oracle)."""
    key, value = NODE_LABEL
    real = {n["metadata"]["name"] for n in kube.list("Node", label_selector=f"{key}={value}")}
    out = {}
    for pod in kube.list("Pod"):
        node = pod["spec"].get("nodeName")
        if node not in real:
            continue
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if "running" not in (status.get("state") or {}):
                continue
            cid = status["containerID"].removeprefix("containerd://")
            out[cid] = {
                "node": node,
                "namespace": pod["metadata"]["namespace"],
                "pod": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
                "container": status["name"],
            }
    return out


def test_cadvisor_labels_per_kubelet(
    kube: Kube, real_nodes: RealNodes, busy: dict[str, dict[str, Any]], figures: dict[str, float]
) -> None:
    """On each kubelet's /metrics/cadvisor: every running container of its own pods (the API
    server's pod list: node, namespace, pod, uid, container id) has a CPU and a working-set
    series whose `namespace`, `pod` and `container` labels are the API's and whose cgroup (`id`)
    lies under this node's cgroup root and the pod's uid; no series names a pod or a container
    of another node, and no container cgroup goes unlabelled."""
    roots = {spec.name: f"/{spec.cgroup_root}/" for spec in LAYOUT}
    scrapes: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    expected: dict[str, dict[str, Any]] = {}

    def every_container_seen() -> bool:
        # A container's series appear once cAdvisor has noticed its cgroup: poll until all do.
        expected.clear()
        expected.update(_running_containers(kube))
        for spec in LAYOUT:
            scrapes[spec.name] = _scrape(kube, spec.name)
        for cid, want in expected.items():
            ids = {labels.get("id", "") for _, labels, _ in scrapes[want["node"]]}
            if not any(i.endswith(f"/{cid}") for i in ids):
                return False
        return True

    kube.wait_for("cAdvisor series of every running container", every_container_seen,
                  timeout=120, interval=3)  # fmt: skip
    by_pod = {(w["namespace"], w["pod"]): w for w in expected.values()}
    containers_of = {}
    for w in expected.values():
        containers_of.setdefault((w["namespace"], w["pod"]), set()).add(w["container"])
    checked = 0
    for node, samples in scrapes.items():
        for metric, labels, _ in samples:
            cgroup = labels.get("id", "")
            pod_key = (labels.get("namespace", ""), labels.get("pod", ""))
            cid = cgroup.rsplit("/", 1)[-1]
            if "/kubepods" in cgroup:
                # Only this node's cgroup root: cAdvisor's raw factory watches the kubelet's
                # own roots; another node's pods are not this kubelet's.
                assert cgroup.startswith(roots[node]), (node, metric, labels)
                if CONTAINER_ID.search(cgroup):
                    # A container's (or sandbox's) cgroup: labelled with its pod.
                    assert pod_key != ("", ""), (node, metric, labels, "unlabelled container")
            if pod_key != ("", ""):
                assert pod_key in by_pod, (node, metric, labels, "a pod the API does not know")
                owner = by_pod[pod_key]
                assert owner["node"] == node, (node, metric, labels, "another node's pod")
                assert f"pod{owner['uid']}" in cgroup, (node, metric, labels, owner)
            if labels.get("container"):
                # (A pod sandbox has the pod's labels but no container name: containerd
                # labels it with the kubelet's sandbox config, which names none.)
                assert labels["container"] in containers_of.get(pod_key, ()), (node, labels)
            if CONTAINER_ID.search(cgroup) and cid in expected:
                want = expected[cid]
                got = {k: labels.get(k) for k in ("namespace", "pod", "container")}
                assert got == {k: want[k] for k in got}, (node, metric, labels, want)
                checked += 1
        for cid, want in expected.items():
            if want["node"] != node:
                continue
            for metric in CADVISOR_METRICS:
                assert any(
                    m == metric and labels.get("id", "").endswith(f"/{cid}")
                    for m, labels, _ in samples
                ), (node, metric, want)
    # The spinning container's CPU counter has moved on its own node.
    for node, pod in busy.items():
        cpu = [
            value
            for metric, labels, value in scrapes[node]
            if metric == CADVISOR_METRICS[0]
            and labels.get("pod") == pod["metadata"]["name"]
            and labels.get("container") == BUSY
        ]
        assert cpu and max(cpu) > 0, (node, cpu)
    figures["metrics.cadvisor_container_series.count"] = checked
