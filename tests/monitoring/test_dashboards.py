"""The Grafana dashboards (issue 30 item 4), judged from the render: what the ConfigMaps carry is
what Grafana's sidecar loads. Oracles: promtool (Prometheus' own parser and evaluator), the
running reference app's /metrics, the rendered PrometheusRules, and grafana-foundation-sdk's
models (generated from Grafana's dashboard schema)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard

from components import config as config_model
from components.monitoring.rules_file import referenced_metric_names
from stackctl.render.stack import RenderResult, render_config, render_stack
from tests.app.test_server import Service, start_service, stop
from tests.conftest import base_raw, with_app
from tests.tooling import run_tool

SIDECAR_LABEL = ("grafana_dashboard", "1")  # kube-prometheus-stack grafana.sidecar.dashboards
ARGO = {"release": {"strategy": "canary", "argoRollouts": True}}
VARIANTS: dict[str, dict[str, Any]] = {
    "rolling-hpa": {"autoscaling": {"enabled": True}},
    "blue-green": {"release": {"strategy": "blueGreen"}},
    "argo-canary": ARGO,
    "slo-off": {"slo": {"enabled": False}},
}


def _raw(variant: str, **monitoring: Any) -> dict[str, Any]:
    raw = with_app(base_raw("dev", **VARIANTS[variant]), "api")
    raw["monitoring"] = {"enabled": True, **monitoring}
    return raw


@cache
def _render(variant: str) -> RenderResult:
    return render_config(config_model.load(_raw(variant)), "dev")


def _dashboard_maps(result: RenderResult) -> list[dict[str, Any]]:
    return [
        o
        for o in result.objects
        if o["kind"] == "ConfigMap"
        and o["metadata"].get("labels", {}).get(SIDECAR_LABEL[0]) == SIDECAR_LABEL[1]
    ]


def _dashboards(result: RenderResult) -> list[dict[str, Any]]:
    return [json.loads(text) for o in _dashboard_maps(result) for text in o["data"].values()]


def _exprs(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def _rule_groups(result: RenderResult) -> list[dict[str, Any]]:
    return [g for o in result.objects if o["kind"] == "PrometheusRule" for g in o["spec"]["groups"]]


def _all_renders() -> list[RenderResult]:
    return [_render(v) for v in VARIANTS] + [render_stack("prod"), render_stack("staging")]


def test_one_dashboard_per_app_and_one_per_stack_when_monitoring_is_on() -> None:
    result = _render("rolling-hpa")
    titles = sorted(b["title"] for b in _dashboards(result))
    assert titles == ["api (shop)", "appstack shop", "web (shop)"]
    uids = [b["uid"] for b in _dashboards(result)]
    assert len(set(uids)) == 3 and all(len(u) <= 40 for u in uids)


def test_no_dashboard_when_monitoring_is_off_or_dashboards_are_off() -> None:
    dev = render_stack("dev")  # the shipped dev stack: monitoring off
    assert not config_model.load(base_raw("dev")).monitoring.enabled
    assert [o for o in dev.objects if "dashboard" in o["metadata"]["name"]] == []
    assert _dashboard_maps(dev) == []
    off = render_config(config_model.load(_raw("rolling-hpa", dashboards={"enabled": False})), "x")
    assert _dashboard_maps(off) == []
    assert [o for o in off.objects if o["kind"] == "PrometheusRule"]  # monitoring itself is on


def test_the_sidecar_label_comes_from_config() -> None:
    raw = _raw("rolling-hpa", dashboards={"sidecarLabels": {"team/dashboards": "shop"}})
    result = render_config(config_model.load(raw), "x")
    maps = [o for o in result.objects if o["metadata"].get("labels", {}).get("team/dashboards")]
    assert len(maps) == 3
    assert _dashboard_maps(result) == []  # the default label is replaced, not added


def test_each_configmap_holds_one_dashboard_named_by_its_uid_within_the_size_limit() -> None:
    for cm in _dashboard_maps(_render("argo-canary")):
        ((key, text),) = cm["data"].items()
        assert key == f"{json.loads(text)['uid']}.json"
        # a ConfigMap's data may not exceed 1 MiB (k8s.io/api core/v1 MaxSecretSize / ConfigMap)
        assert len(text.encode()) < 1024 * 1024


def test_dashboards_round_trip_through_grafanas_schema_types() -> None:
    """grafana-foundation-sdk's `Dashboard` model is generated from Grafana's dashboard schema:
    the rendered JSON decodes into it and encodes back to the same document."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    for board in _dashboards(_render("argo-canary")) + _dashboards(render_stack("prod")):
        decoded = Dashboard.from_json(board)
        again = json.loads(json.dumps(decoded, cls=JSONEncoder))
        assert again == board
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))  # Grafana keys panel state by id
        assert board["schemaVersion"] >= 36


def test_every_panel_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool compiles each query as the expression of a recording rule."""
    rules = [
        {"record": f"dashboard:query:{i}", "expr": expr}
        for i, expr in enumerate(
            sorted({e for r in _all_renders() for b in _dashboards(r) for _, e in _exprs(b)})
        )
    ]
    assert len(rules) > 60
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = run_tool("promtool", "check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Sample names the running reference app exports once it has served a request."""
    service: Service = start_service(tmp_path_factory.mktemp("app"))
    try:
        service.get("/")
        yield {name for name, _ in service.samples()}
    finally:
        stop(service.proc)


def test_every_series_a_panel_reads_is_exported_recorded_or_read_by_the_alerts(
    exported: set[str],
) -> None:
    """App series: the app's /metrics; `job:` series: a recording rule of the render; cluster
    series (cAdvisor, kube-state-metrics, Argo Rollouts): one the rendered alerts read too (their
    names are judged by the promtool alert tests); `ALERTS`: Prometheus' own alert series."""
    for result in _all_renders():
        groups = _rule_groups(result)
        recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
        read_by_alerts = referenced_metric_names(groups)
        for board in _dashboards(result):
            panels = [{"name": "p", "rules": [{"expr": e} for _, e in _exprs(board)]}]
            read = referenced_metric_names(panels)
            unknown = read - exported - recorded - read_by_alerts - {"ALERTS"}
            assert unknown == set(), (board["title"], unknown)
            app_series = {n for n in read if n.startswith(("http_", "app_"))}
            assert app_series <= exported, board["title"]
            assert {n for n in read if n.startswith("job:")} <= recorded, board["title"]


def _expr_of(board: dict[str, Any], title: str) -> str:
    (expr,) = [e for t, e in _exprs(board) if t == title]
    return expr


def test_error_only_queries_read_zero_when_nothing_fails(tmp_path: Path) -> None:
    """Evaluated by promtool over a healthy app (200s only, no alert): the queries of series that
    exist only on failure show 0, not "No data"; the budget left is whole."""
    board = next(b for b in _dashboards(_render("rolling-hpa")) if b["title"] == "web (shop)")
    zero_panels = ("5xx per second", "Burn-rate alerts firing", "Alerts firing", "Alerts pending")
    cases = [
        {"expr": _expr_of(board, title), "eval_time": "20m", "exp_samples": [{"value": 0}]}
        for title in zero_panels
    ]
    cases.append(
        {
            "expr": _expr_of(board, "Error budget left (30d)"),
            "eval_time": "20m",
            "exp_samples": [{"value": 1}],
        }
    )
    labels = 'job="web", namespace="shop", method="GET", path="/"'
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'http_requests_total{{{labels}, code="200"}}', "values": "0+60x30"}
                ],
                "promql_expr_test": cases,
            }
        ],
    }
    path = tmp_path / "zero.test.yml"
    path.write_text(yaml.safe_dump(test))
    proc = run_tool("promtool", "test", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_panels_follow_the_workloads_of_the_release_strategy() -> None:
    argo = next(b for b in _dashboards(_render("argo-canary")) if b["title"] == "web (shop)")
    titles = {t for t, _ in _exprs(argo)}
    assert "Rollout phase" in titles and "Generations not yet rolled out" not in titles
    green = next(b for b in _dashboards(_render("blue-green")) if b["title"] == "web (shop)")
    unavailable = _expr_of(green, "Unavailable replicas")
    assert 'deployment=~"web-blue|web-green"' in unavailable
    no_slo = next(b for b in _dashboards(_render("slo-off")) if b["title"] == "web (shop)")
    assert not any("slo_errors" in e for _, e in _exprs(no_slo))
