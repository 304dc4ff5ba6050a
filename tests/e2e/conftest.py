"""`make e2e`: the real engine against a real control plane.

Collected only with APPSTACK_E2E=1 (set by `make e2e`), so `make test` stays fast and needs no
Go. The session starts one control plane (e2e/cluster.py) and one engine world
(e2e/engine.py) and tears both down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from e2e import figures as figures_file

if os.environ.get("APPSTACK_E2E") != "1":
    collect_ignore_glob = ["test_*.py"]

FIGURES: dict[str, float] = {}
NODE_CLEANUP: list[str] = []


def _realnode_session(request: Any) -> bool:
    return any(item.get_closest_marker("realnode") for item in request.session.items)


@pytest.fixture(scope="session")
def node_network() -> Iterator[Any]:
    """The real nodes' bridge and network namespaces (e2e/realnode), built before the control
    plane, whose API server listens on the bridge; removed (and checked) last."""
    from e2e.realnode.nodes import NodeNetwork

    with NodeNetwork() as network:
        yield network
    NODE_CLEANUP.extend(network.cleanup_report)


@pytest.fixture(scope="session")
def cluster(request: Any) -> Iterator[Any]:
    from e2e.cluster import Cluster, install_signal_handlers

    install_signal_handlers()
    address = "127.0.0.1"
    if _realnode_session(request):
        from e2e.realnode.layout import HOST_IP

        request.getfixturevalue("node_network")
        address = HOST_IP
    with Cluster(address=address) as running:
        yield running


@pytest.fixture(scope="session")
def engine(cluster: Any) -> Iterator[Any]:
    from e2e.engine import Engine

    eng = Engine(root=cluster.root / "engine", kubeconfig=cluster.kubeconfig)
    eng.root.mkdir()
    eng.setup()
    yield eng
    FIGURES.update(eng.timings)
    log = os.environ.get("APPSTACK_E2E_LOG")
    if log:
        # Keep the commands' output (no secrets: the passphrase never reaches it) for CI.
        with open(log, "w", encoding="utf-8") as out:
            out.write(eng.log.read_text(encoding="utf-8") if eng.log.exists() else "")


@pytest.fixture(scope="session")
def kube(cluster: Any) -> Any:
    return cluster.kube


@pytest.fixture(scope="session")
def real_nodes(cluster: Any) -> Iterator[Any]:
    """The real nodes (e2e/realnode) joined to the session's control plane, with kube-proxy,
    CoreDNS and kube-router; only the tests marked `realnode` (make e2e-node) ask for them."""
    from e2e.realnode.nodes import RealNodes

    with RealNodes(cluster) as nodes:
        FIGURES.update(nodes.timings)
        yield nodes


@pytest.fixture(scope="session")
def figures() -> dict[str, float]:
    """Figures (name -> number) a test reports; printed and written to out/e2e-figures.json."""
    return FIGURES


def pytest_sessionfinish(session: Any) -> None:
    if not FIGURES:
        return
    # Merge: each tier (make e2e, make e2e-node, ...) adds its figures under stable names.
    figures_file.merge(FIGURES)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if NODE_CLEANUP:
        terminalreporter.section("real nodes cleanup (e2e/realnode; leftovers checked empty)")
        for line in NODE_CLEANUP:
            terminalreporter.write_line(line)
    if not FIGURES:
        return
    terminalreporter.section("e2e figures (wall time, this machine; a benchmark, not a test)")
    for name, value in FIGURES.items():
        unit = "" if name.endswith(".count") else " s"  # seconds, but for counts
        terminalreporter.write_line(f"{name:<48} {value:7.1f}{unit}")
    terminalreporter.write_line(f"(written to {figures_file.FIGURES_FILE})")
