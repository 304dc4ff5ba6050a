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

if os.environ.get("APPSTACK_E2E") != "1":
    collect_ignore_glob = ["test_*.py"]

FIGURES: dict[str, float] = {}


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    from e2e.cluster import Cluster, install_signal_handlers

    install_signal_handlers()
    with Cluster() as running:
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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("e2e figures (wall time, this machine; a benchmark, not a test)")
    for name, seconds in FIGURES.items():
        terminalreporter.write_line(f"{name:<48} {seconds:7.1f} s")
