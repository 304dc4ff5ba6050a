"""`make e2e-monitoring`: a real Prometheus (Debian 2.42, e2e/prometheus.py) judges the stack's
rendered rules and dashboards against the reference app running as a process on loopback.

Not the operator path yet: the targets are static (the labels a ServiceMonitor gives them), not
discovered by prometheus-operator on real nodes, and there is no kube-state-metrics or cAdvisor,
so the alerts and panels over cluster series have nothing to read here (listed, not hidden).
The stack under test is rendered from config only; `monitoring.alerts.errorRatioFor` is the one
setting shortened for the test (5s instead of 5m); every window is the production one.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components import config as config_model
from components.monitoring.rules_file import referenced_metric_names, rules_file
from e2e.prometheus import Prometheus, ScrapeTarget, free_port
from stackctl.render.stack import RenderResult, render_config
from tests.app.test_server import LOCALHOST, launch, request, service_env
from tests.conftest import base_raw

pytestmark = pytest.mark.monitoring

APP, NAMESPACE = "web", "shop"
FAULT_RATIO = "0.5"
#: Series only the cluster exports (cAdvisor, kube-state-metrics, the Argo Rollouts controller):
#: absent in this tier, so the panels reading them return nothing until the real-node tier.
CLUSTER_PREFIXES = ("container_", "kube_", "rollout_")


def _render() -> RenderResult:
    raw = base_raw("dev")
    raw["monitoring"] = {"enabled": True, "alerts": {"errorRatioFor": "5s"}}
    return render_config(config_model.load(raw), "e2e-monitoring")


@dataclass
class App:
    """The reference app as a process on fixed loopback ports (restarts keep the target)."""

    root: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: Any = None

    def start(self, **env: str) -> None:
        environment = service_env(
            HOST=LOCALHOST, PORT=str(self.port), METRICS_PORT=str(self.metrics_port), **env
        )
        self.proc, _, _ = launch(self.root, environment)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if request(self.port, "/health/ready", timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the app did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class Load:
    """Steady user traffic (GET /, ~5 per second) and the kubelet's probes, in a thread."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tick = 0
        while not self.stop_event.is_set():
            for path in ["/"] + (["/health", "/health/ready"] if tick % 5 == 0 else []):
                # OSError: the app restarting (Prometheus sees the gap too)
                with contextlib.suppress(OSError):
                    request(self.app.port, path, timeout=2)
            tick += 1
            self.stop_event.wait(0.2)

    def burst(self, count: int) -> None:
        """`count` good user requests as fast as four clients send them."""
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: request(self.app.port, "/", timeout=5), range(count)))


@dataclass
class World:
    prom: Prometheus
    app: App
    load: Load
    render: RenderResult


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("monitoring")
    render = _render()
    groups = [
        g for o in render.objects if o["kind"] == "PrometheusRule" for g in o["spec"]["groups"]
    ]
    app = App(root)
    app.start()
    load = Load(app)
    load.thread.start()
    target = ScrapeTarget(APP, NAMESPACE, app.metrics_port)
    try:
        with Prometheus(root / "prometheus", [target], rules_file(groups)) as prom:
            _wait(lambda: _series(prom, "job:http_requests:rate5m") > 0, 60, "first recorded rate")
            yield World(prom, app, load, render)
    finally:
        load.stop_event.set()
        load.thread.join(timeout=10)
        app.stop()


def _series(prom: Prometheus, expr: str) -> int:
    answer = prom.query(expr)
    assert answer["status"] == "success", (expr, answer)
    return len(answer["data"]["result"])


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def _rules(render: RenderResult) -> list[dict[str, Any]]:
    return [
        r
        for o in render.objects
        if o["kind"] == "PrometheusRule"
        for g in o["spec"]["groups"]
        for r in g["rules"]
    ]


def test_every_rule_loads_healthy_and_every_recording_rule_yields_series(world: World) -> None:
    records = {r["record"] for r in _rules(world.render) if "record" in r}
    assert len(records) == 12  # 5 job: rules + 7 SLO windows
    _wait(lambda: all(_series(world.prom, name) > 0 for name in records), 60, "recorded series")
    health = world.prom.rule_health()
    assert len(health) == len(_rules(world.render))
    assert [h for h in health if h[1] != "ok"] == []


def test_at_steady_state_no_alert_is_firing_or_pending(world: World) -> None:
    time.sleep(5)  # several evaluations of every rule over healthy traffic
    assert world.prom.alerts() == []


def _panel_queries(render: RenderResult) -> list[tuple[str, str, str]]:
    out = []
    for obj in render.objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["labels"].get("grafana_dashboard"):
            for text in obj["data"].values():
                board = json.loads(text)
                for panel in board["panels"]:
                    for target in panel.get("targets", []):
                        out.append((board["title"], panel["title"], target["expr"]))
    return out


def _reads_cluster_series(expr: str) -> bool:
    names = referenced_metric_names([{"rules": [{"expr": expr}]}])
    return any(n.startswith(CLUSTER_PREFIXES) for n in names)


def test_every_dashboard_query_is_valid_and_returns_series_unless_it_reads_the_cluster(
    world: World,
) -> None:
    queries = _panel_queries(world.render)
    assert {board for board, _, _ in queries} == {f"{APP} ({NAMESPACE})", f"appstack {NAMESPACE}"}
    empty = []
    for board, panel, expr in queries:
        answer = world.prom.query(expr)
        assert answer["status"] == "success", (board, panel, answer.get("error"))
        if not answer["data"]["result"]:
            empty.append((board, panel, expr))
    # Exactly the panels over cAdvisor / kube-state-metrics / Argo series are empty here.
    assert [(b, p) for b, p, e in empty if not _reads_cluster_series(e)] == []
    assert {p for _, p, _ in empty} == {p for _, p, e in queries if _reads_cluster_series(e)}


def _alert_states(prom: Prometheus) -> dict[str, str]:
    return {a["labels"]["alertname"]: a["state"] for a in prom.alerts()}


def test_a_fault_fires_the_error_ratio_and_burn_rate_alerts_and_they_clear_after_it(
    world: World, figures: dict[str, float]
) -> None:
    high, fast, slow = "WebHighErrorRatio", "WebErrorBudgetFastBurn", "WebErrorBudgetSlowBurn"
    world.app.stop()
    world.app.start(FAULT_ERROR_RATIO=FAULT_RATIO)
    fault_at = time.monotonic()
    fired: dict[str, float] = {}

    def both_firing() -> bool:
        for name, state in _alert_states(world.prom).items():
            if state == "firing" and name not in fired:
                fired[name] = time.monotonic() - fault_at
        return {high, fast} <= fired.keys()

    _wait(both_firing, 180, f"{high} and {fast} firing")
    assert slow in fired or _alert_states(world.prom).get(slow) in {"pending", "firing"}
    figures["monitoring.fault_to_error_ratio_alert_firing_s"] = fired[high]
    figures["monitoring.fault_to_fast_burn_alert_firing_s"] = fired[fast]

    world.app.stop()
    world.app.start()  # the fault switch off
    cleared_at = time.monotonic()
    sent = 0

    def resolved() -> bool:
        nonlocal sent
        if not {high, fast, slow} & _alert_states(world.prom).keys():
            return True
        # The burn windows (up to 3d) hold the fault's errors; good traffic brings each ratio
        # back under its threshold, as it does in production, only sooner.
        world.load.burst(500)
        sent += 500
        return False

    _wait(resolved, 420, "the error alerts resolved")
    figures["monitoring.fault_off_to_alerts_resolved_s"] = time.monotonic() - cleared_at
    print(f"good requests sent until the error alerts resolved: {sent}")
    _wait(lambda: world.prom.alerts() == [], 60, "no alert pending or firing")
