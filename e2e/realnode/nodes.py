"""The real nodes as a whole: `NodeNetwork` (before the control plane, whose API server listens
on the nodes' bridge) and `RealNodes` (the nodes' processes and the add-ons, joined to a running
control plane). Both are context managers; clean-up runs on success, failure, Ctrl-C and
SIGTERM, and again at the start of the next run."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.cluster import Cluster, bin_dir
from e2e.realnode import addons, host
from e2e.realnode.cleanup import cleanup, cleanup_leftovers, leftovers
from e2e.realnode.host import NodeError, State
from e2e.realnode.layout import BASE, CNI_BIN, KWOK_TAINT, LAYOUT, NodeSpec
from e2e.realnode.network import host_network, node_network
from e2e.realnode.node import NODE_IMAGES, RealNode, kubeconfig

NODE_BINARIES = (
    "kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "runc",
)  # fmt: skip


def check_tools(binaries: Path) -> None:
    missing = [b for b in (*NODE_BINARIES, *NODE_IMAGES) if not (binaries / b).exists()]
    missing += [
        f"{CNI_BIN}/{p}" for p in ("bridge", "host-local", "loopback") if not (CNI_BIN / p).exists()
    ]
    missing += [t for t in ("nsenter", "ipset", "conntrack") if not _which(t)]
    if missing:
        raise NodeError(
            f"missing: {', '.join(missing)}; run scripts/install-node-deps.sh and "
            "`make e2e-node-tools`"
        )
    if os.geteuid() != 0:
        raise NodeError("real nodes need root (mounts, cgroups, network namespaces)")


def _which(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


@dataclass
class NodeNetwork:
    """Removes what an earlier run left, records the host's state, then builds the host bridge
    and every node's namespace; `stop()` removes everything and checks nothing is left."""

    layout: tuple[NodeSpec, ...] = LAYOUT
    binaries: Path = field(default_factory=bin_dir)
    state: State | None = field(default=None, init=False)
    cleanup_report: list[str] = field(default_factory=list, init=False)

    def __enter__(self) -> NodeNetwork:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        check_tools(self.binaries)
        self.cleanup_report = cleanup_leftovers()
        BASE.mkdir(parents=True)
        self.state = State.record()
        self.state.save()
        try:
            host_network(self.state)
            for spec in self.layout:
                node_network(spec, self.layout)
        except BaseException as exc:
            try:
                self.stop()
            except NodeError as cleanup_error:
                exc.add_note(f"cleanup after the failed start: {cleanup_error}")
            raise

    def stop(self) -> None:
        state = self.state or State.load()
        self.cleanup_report += cleanup(state)
        self.state = None
        left = leftovers(state.routes if state else None)
        if left:
            raise NodeError(f"the real nodes left: {left}")


@dataclass
class RealNodes:
    """The layout's nodes joined to `cluster` (started with `address=HOST_IP` over a
    NodeNetwork), kwok nodes tainted, CoreDNS and kube-router running."""

    cluster: Cluster
    layout: tuple[NodeSpec, ...] = LAYOUT
    binaries: Path = field(default_factory=bin_dir)
    nodes: list[RealNode] = field(default_factory=list, init=False)
    timings: dict[str, float] = field(default_factory=dict, init=False)

    def __enter__(self) -> RealNodes:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def logs(self) -> Path:
        return self.cluster.root / "logs"

    def node(self, name: str) -> RealNode:
        return next(n for n in self.nodes if n.name == name)

    def start(self) -> None:
        started = time.monotonic()
        try:
            self.cluster._leaf("kube-proxy", "/CN=system:kube-proxy", "", "clientAuth")
            kubeconfig(self.cluster.root / "kube-proxy.kubeconfig", self.cluster,
                       "kube-proxy", "kube-proxy")  # fmt: skip
            for spec in self.layout:
                node = RealNode(spec, self.cluster, self.binaries, self.logs)
                self.nodes.append(node)
                node.start()
            self._wait_ready()
            self.timings["node.count"] = len(self.nodes)
            self.timings["node.start_to_ready_s"] = time.monotonic() - started
            self._pod_cidrs()
            self._taint_kwok_nodes()
            addons_started = time.monotonic()
            addons.apply_all(self.cluster.kube, addons.kube_router_objects())
            addons.apply_all(self.cluster.kube, addons.coredns_objects())
            # Not awaited here (its first scrape takes a resolution): wait_metrics_api().
            addons.apply_all(self.cluster.kube, addons.metrics_server_objects(self.cluster))
            self._wait_addons()
            self.timings["node.addons_ready_s"] = time.monotonic() - addons_started
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        self.nodes.clear()
        self._untaint_kwok_nodes()

    def assert_running(self) -> None:
        for node in self.nodes:
            node.assert_running()

    # ---------------------------------------------------------------- parts

    def _wait_ready(self) -> None:
        names = {n.name for n in self.nodes}

        def ready() -> bool:
            self.assert_running()
            up = {
                n["metadata"]["name"]
                for n in self.cluster.kube.list("Node")
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
            }
            return names <= up

        try:
            self.cluster.kube.wait_for(f"nodes {sorted(names)} Ready", ready, timeout=240)
        except TimeoutError as exc:
            tails = "\n".join(
                f"--- {n.name} {p.name}\n{n.tail(p, 15)}" for n in self.nodes for p in n.processes
            )
            raise NodeError(f"{exc}\n{tails}") from None

    def _pod_cidrs(self) -> None:
        """Each node's pod range into Node.spec.podCIDR(s), as the node IPAM controller would
        (kube-controller-manager runs without --allocate-node-cidrs: the kwok nodes' pods take
        kwok's range). kube-proxy's NodeCIDR local detection and kube-router read it."""
        for node in self.nodes:
            cidr = node.spec.pod_cidr
            current = self.cluster.kube.get("Node", node.name)["spec"].get("podCIDR")
            if current != cidr:
                patch = {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
                self.cluster.kube.patch("Node", node.name, patch)

    def _wait_addons(self) -> None:
        def ready() -> bool:
            self.assert_running()
            return addons.ready(self.cluster.kube, len(self.nodes))

        try:
            self.cluster.kube.wait_for("CoreDNS and kube-router Ready", ready, timeout=300)
        except TimeoutError as exc:
            pods = self.cluster.kube.list("Pod", addons.NAMESPACE)
            states = [
                (p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status", {}).get(
                    "containerStatuses"))
                for p in pods
            ]  # fmt: skip
            raise NodeError(f"{exc}: {states}") from None

    def wait_metrics_api(self, timeout: float = 180) -> float:
        """Wait until the aggregated `v1beta1.metrics.k8s.io` is Available and serves every real
        node's NodeMetrics; the seconds it took from this call."""
        started = time.monotonic()
        names = {n.name for n in self.nodes}

        def served() -> bool:
            self.assert_running()
            if not addons.metrics_api_available(self.cluster.kube):
                return False
            doc = self.cluster.kube.request("GET", "apis/metrics.k8s.io/v1beta1/nodes")
            return names <= {item["metadata"]["name"] for item in doc.get("items") or []}

        try:
            self.cluster.kube.wait_for("metrics.k8s.io NodeMetrics of every real node", served,
                                       timeout=timeout, interval=2)  # fmt: skip
        except TimeoutError as exc:
            pods = self.cluster.kube.list("Pod", addons.NAMESPACE, "k8s-app=metrics-server")
            service = self.cluster.kube.get_or_none("APIService", addons.METRICS_API) or {}
            raise NodeError(
                f"{exc}: pods {[p.get('status') for p in pods]}, APIService {service.get('status')}"
            ) from None
        return time.monotonic() - started

    def _kwok_nodes(self) -> list[str]:
        return list(getattr(self.cluster, "node_names", []))

    def _taint_kwok_nodes(self) -> None:
        for name in self._kwok_nodes():
            node = self.cluster.kube.get("Node", name)
            taints = [t for t in node["spec"].get("taints") or [] if t["key"] != KWOK_TAINT["key"]]
            self.cluster.kube.patch("Node", name, {"spec": {"taints": [*taints, KWOK_TAINT]}})

    def _untaint_kwok_nodes(self) -> None:
        """Give the kwok nodes back as the cluster made them (the control plane may outlive the
        nodes)."""
        apiserver = getattr(self.cluster, "apiserver", None)
        if apiserver is None or apiserver.popen.poll() is not None:
            return
        for name in self._kwok_nodes():
            with contextlib.suppress(Exception):
                node = self.cluster.kube.get("Node", name)
                taints = node["spec"].get("taints") or []
                kept = [t for t in taints if t["key"] != KWOK_TAINT["key"]]
                if kept != taints:
                    self.cluster.kube.patch("Node", name, {"spec": {"taints": kept or None}})


def pods_on(cluster: Cluster, namespace: str, selector: str) -> dict[str, Any]:
    """name -> pod of the pods matching `selector` (a small helper for the tests)."""
    return {p["metadata"]["name"]: p for p in cluster.kube.list("Pod", namespace, selector)}


def main() -> int:
    """`python -m e2e.realnode`: a control plane and the real nodes, until Ctrl-C;
    `python -m e2e.realnode --cleanup`: only remove what an earlier run left."""
    import sys

    from e2e.cluster import ClusterError, install_signal_handlers
    from e2e.realnode.layout import HOST_IP, UNREACHABLE

    if "--cleanup" in sys.argv[1:]:
        for line in cleanup_leftovers() or ["nothing left by an earlier run"]:
            print(line)
        left = leftovers()
        print("left on the host:", left or "nothing")
        held = [r for r in host.unreachable_routes() if r in UNREACHABLE]
        if held:
            print("unreachable routes held (by a running node, or another harness):", held)
        return 1 if left else 0
    install_signal_handlers()
    try:
        with (
            NodeNetwork() as _net,
            Cluster(address=HOST_IP) as cluster,
            RealNodes(cluster) as nodes,
        ):
            print(
                f"{len(nodes.nodes)} nodes Ready in {nodes.timings['node.start_to_ready_s']:.1f}s"
                f"\nexport KUBECONFIG={cluster.kubeconfig}\nlogs: {nodes.logs}",
                flush=True,
            )
            while True:
                cluster.assert_running()
                nodes.assert_running()
                time.sleep(2)
    except KeyboardInterrupt:
        return 0
    except ClusterError as exc:
        print(f"e2e realnode: {exc}", file=sys.stderr)
        return 1
