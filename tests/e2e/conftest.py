"""`make e2e`: the real engine against a real control plane.

Collected only with APPSTACK_E2E=1 (set by `make e2e`), so `make test` stays fast and needs no
Go. The session starts one control plane (e2e/cluster.py) and one engine world
(e2e/engine.py) and tears both down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e import figures as figures_file

if os.environ.get("APPSTACK_E2E") != "1":
    collect_ignore_glob = ["test_*.py"]

FIGURES: dict[str, float] = {}
NODE_CLEANUP: list[str] = []
KEPT_LOGS: list[str] = []


# Tiers whose tests run on the real nodes (e2e/realnode): make e2e-node, make e2e-app.
REAL_NODE_MARKERS = ("realnode", "realapp", "gitopsnode")


def _realnode_session(request: Any) -> bool:
    return any(
        item.get_closest_marker(marker)
        for item in request.session.items
        for marker in REAL_NODE_MARKERS
    )


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
    from e2e.cluster import LB_IP, Cluster, install_signal_handlers

    install_signal_handlers()
    address, lb_ip = "127.0.0.1", LB_IP
    if _realnode_session(request):
        from e2e.realnode.layout import HOST_IP
        from e2e.realnode.layout import LB_IP as LB_STAND_IN

        request.getfixturevalue("node_network")
        address, lb_ip = HOST_IP, LB_STAND_IN
    with Cluster(address=address, lb_ip=lb_ip) as running:
        yield running


@pytest.fixture(scope="session")
def engine(request: Any, cluster: Any) -> Iterator[Any]:
    from e2e.engine import Engine

    eng = Engine(root=cluster.root / "engine", kubeconfig=cluster.kubeconfig)
    eng.root.mkdir()
    try:
        eng.setup()
        yield eng
    finally:
        # A failed run keeps the commands' log and every component's log (control plane,
        # nodes, registry: the cluster's logs/) outside the temporary directory removed next.
        if request.session.testsfailed or eng.kept_logs.exists():
            kept = eng.keep_logs(cluster.root / "logs")
            KEPT_LOGS.append(f"{kept} (engine.log: every pulumi/stackctl command; logs/)")
    FIGURES.update(eng.timings)
    log = os.environ.get("APPSTACK_E2E_LOG")
    if log:
        # Keep the commands' output (no secrets: the passphrase never reaches it) for CI.
        with open(log, "w", encoding="utf-8") as out:
            out.write(eng.log.read_text(encoding="utf-8") if eng.log.exists() else "")


@pytest.fixture(scope="session")
def s3_gateway() -> Iterator[Any]:
    """A team state backend for the run: versitygw (e2e/s3.py) on a free loopback port, its
    own data dir and per-run credentials, with the state bucket created over the S3 API by
    stackctl's own client (stackctl/ops/s3.py, so its signing meets a real server's check)."""
    from e2e.s3 import S3Gateway
    from stackctl.ops.s3 import S3Client

    with S3Gateway() as gateway:
        S3Client.for_backend(gateway.backend_url, gateway.environment).create_bucket()
        FIGURES["failure.s3.gateway_start_s"] = gateway.start_seconds
        yield gateway


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
def app_registry(real_nodes: Any) -> Iterator[Any]:
    """The run's OCI registry (e2e/registry.py: distribution, per-run CA, TLS, basic auth) on
    the host's bridge address, which every real node reaches."""
    from e2e.realnode.layout import HOST_IP
    from e2e.registry import Registry

    with Registry(address=HOST_IP) as registry:
        yield registry


@pytest.fixture(scope="session")
def real_app(real_nodes: Any, engine: Any, kube: Any, app_registry: Any) -> Iterator[Any]:
    """dev and prod of the shipped stack files running on the real nodes (`make e2e-app`,
    e2e/realapp.py), for every test that needs the app really running.

    Yields an `e2e.realapp.RealApp` after, in this order: the app image (app/Dockerfile built by
    buildah, cached) pushed to `app_registry`; every node's containerd trusting the run's CA for
    it; the LoadBalancer stand-in address routed to the nodes; `stackctl deploy dev` then
    `stackctl deploy prod` with `--image <app>=<registry>/appstack/web@<digest>` for every app,
    each waited for until every pod is Running and Ready. What it offers:

    - `real_app.digest`, `real_app.ref()`: the built image's digest and reference;
    - `real_app.stacks["dev" | "prod"]` (`Deployed`): `namespace`, `images` (app -> reference),
      `services` (name -> `clusterIP`, `ports` by name, `loadBalancerIP`), `deploy_seconds`;
    - `real_app.pods(env, app)`: the app's live pods; `lb_url(env)`, `cluster_ip_url(env)`;
    - `real_app.deploy(env, digest=None, edit=None, timing=None)`: deploy another digest and/or
      a config change (`edit(doc)` edits the stack file's document, committed first) through
      the same `stackctl deploy`, then wait until settled; returns the new `Deployed`;
    - `real_app.variant(name)`: push another image of the app (same layers, one more config
      label) and return its digest, for an image bump;
    - `real_app.engine` (its `stackctl`/`pulumi`), `real_app.kube`, `real_app.nodes`.

    Figures: `app.deploy_dev_s`, `app.deploy_prod_s` (wall time of each first deploy) and the
    image push/build times. The LoadBalancer route is removed at the end; the stacks are left
    to the cluster's own teardown."""
    from e2e.realapp import (
        RealApp,
        app_image_archive,
        push_archive,
        route_lb_ip,
        trust_registry,
        unroute_lb_ip,
    )

    timings: dict[str, float] = {}
    started = time.monotonic()
    archive = app_image_archive(timings)
    timings["app.image_archive_s"] = time.monotonic() - started
    started = time.monotonic()
    digest = push_archive(archive, app_registry, "e2e")
    timings["app.image_push_s"] = time.monotonic() - started
    trust_registry(real_nodes, app_registry)
    route_lb_ip(real_nodes)
    app = RealApp(engine, kube, real_nodes, app_registry, digest, timings=timings)
    try:
        app.deploy("dev", timing="app.deploy_dev_s")
        app.deploy("prod", timing="app.deploy_prod_s")
        yield app
    finally:
        FIGURES.update(app.timings)  # the deploys' wall times come with the engine's timings
        unroute_lb_ip()


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
    if KEPT_LOGS:
        terminalreporter.section("logs of the failed run, kept (out/e2e-logs)")
        for line in KEPT_LOGS:
            terminalreporter.write_line(line)
    if NODE_CLEANUP:
        terminalreporter.section("real nodes cleanup (e2e/realnode; leftovers checked empty)")
        for line in NODE_CLEANUP:
            terminalreporter.write_line(line)
    if not FIGURES:
        return
    terminalreporter.section("e2e figures (wall time, this machine; a benchmark, not a test)")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name:<48} {value:7.1f}{figures_file.unit(name)}")
    terminalreporter.write_line(f"(written to {figures_file.FIGURES_FILE})")
