"""`make e2e-node-bench` (`python -m e2e.realnode.bench [N ...]`): figures of the real nodes per
node count, a benchmark and not a test. For each count N (default 1 2 4) a fresh control plane
and the first N nodes of the layout: time from start to every node Ready, to CoreDNS and
kube-router Ready, and from scheduled to Ready of one `restricted` busybox pod per node
(created at once; the slowest and the mean). Printed and merged into out/e2e-figures.json as
`node.n<N>.<figure>`."""

from __future__ import annotations

import sys
import time
from typing import Any

from e2e import figures as figures_file
from e2e.cluster import Cluster, ClusterError, install_signal_handlers
from e2e.engine import tool_versions
from e2e.kube import Kube
from e2e.realnode.layout import HOST_IP, LAYOUT, NODE_LABEL
from e2e.realnode.nodes import NodeNetwork, RealNodes

NAMESPACE = "e2e-bench"


def _pod(name: str, node: str) -> dict[str, Any]:
    key, value = NODE_LABEL
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "nodeSelector": {key: value, "kubernetes.io/hostname": node},
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": tool_versions()["BUSYBOX_IMAGE"],
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", "exec sleep 3600"],
                    "readinessProbe": {"exec": {"command": ["sh", "-c", ":"]}, "periodSeconds": 1},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def _pods_scheduled_to_ready(kube: Kube, nodes: RealNodes) -> list[float]:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    kube.wait_for(
        "ServiceAccount", lambda: kube.get_or_none("ServiceAccount", "default", NAMESPACE)
    )
    names = {f"bench-{n.name}": n.name for n in nodes.nodes}
    for name, node in names.items():
        kube.create(_pod(name, node))
    scheduled: dict[str, float] = {}
    ready: dict[str, float] = {}
    deadline = time.monotonic() + 180
    while len(ready) < len(names) and time.monotonic() < deadline:
        nodes.assert_running()
        for pod in kube.list("Pod", NAMESPACE):
            name, now = pod["metadata"]["name"], time.monotonic()
            if pod["spec"].get("nodeName"):
                scheduled.setdefault(name, now)
            conds = (pod.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                ready.setdefault(name, now)
        time.sleep(0.1)
    if len(ready) < len(names):
        raise ClusterError(f"bench pods not Ready after 180s: {sorted(set(names) - set(ready))}")
    return [ready[n] - scheduled[n] for n in names]


def measure(count: int) -> dict[str, float]:
    layout = LAYOUT[:count]
    with (
        NodeNetwork(layout=layout),
        Cluster(address=HOST_IP) as cluster,
        RealNodes(cluster, layout=layout) as nodes,
    ):
        spans = _pods_scheduled_to_ready(cluster.kube, nodes)
        prefix = f"node.n{count}."
        return {
            prefix + "start_to_ready_s": nodes.timings["node.start_to_ready_s"],
            prefix + "addons_ready_s": nodes.timings["node.addons_ready_s"],
            prefix + "pod_scheduled_to_ready_max_s": max(spans),
            prefix + "pod_scheduled_to_ready_mean_s": sum(spans) / len(spans),
        }


def main(argv: list[str]) -> int:
    counts = [int(a) for a in argv] or [1, 2, len(LAYOUT)]
    bad = [c for c in counts if not 1 <= c <= len(LAYOUT)]
    if bad:
        print(f"e2e bench: node counts must be 1..{len(LAYOUT)}, got {bad}", file=sys.stderr)
        return 2
    install_signal_handlers()
    figures: dict[str, float] = {}
    try:
        for count in counts:
            figures.update(measure(count))
    except ClusterError as exc:
        print(f"e2e bench: {exc}", file=sys.stderr)
        return 1
    for name, value in figures.items():
        print(f"{name:<44} {value:7.1f} s")
    print(f"(written to {figures_file.merge(figures)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
