"""Every alert of the rendered PrometheusRules, in every release strategy, through
`promtool test rules` on the series the cluster would export for the rendered pods
(tests/monitoring/series.py): a firing case naming the pods, containers and workloads of every
colour / track / ReplicaSet, and a silent case (tests/monitoring/alert_cases.py)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from app.server import DURATION_BUCKETS
from components import config as config_model
from components.monitoring.alert_rules import ALERT_KINDS
from stackctl.render.stack import render_config
from tests.conftest import PROD_IMAGE
from tests.monitoring import series as gen
from tests.monitoring.alert_cases import APP, NAME_LABEL, Case, cases, promtool_tests
from tests.monitoring.strategies import STRATEGIES, loaded, rendered
from tests.release.helpers import blue_green, canary
from tests.tooling import dump_yaml, run_tool

pytestmark = pytest.mark.slow

# Argo Rollouts controller scraped as the argo-rollouts Helm chart does (no honorLabels: the
# Rollout's namespace in `exported_namespace`) and with honorLabels (kept in `namespace`).
VARIANTS = [(name, False) for name in STRATEGIES] + [
    (name, True) for name in STRATEGIES if name.startswith("argo")
]


def app_groups(objects: list[dict[str, Any]], app: str = APP) -> list[dict[str, Any]]:
    """The rendered rule groups of the app under test (`<app>.recording`, `<app>.alerts`); the
    sibling's and Jenkins' groups are left out, they only slow promtool down."""
    return [
        group
        for obj in objects
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
        if group["name"].startswith(f"{app}.")
    ]


def rule_groups(name: str) -> list[dict[str, Any]]:
    return app_groups(rendered(name).objects)


def strategy_cases(name: str, honor_labels: bool = False) -> dict[str, list[Case]]:
    cluster = gen.cluster(rendered(name).objects, argo_honor_labels=honor_labels)
    return cases(cluster, loaded(name))


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def rules_read_by(groups: list[dict[str, Any]], alertname: str) -> list[dict[str, Any]]:
    """The rule groups cut to alert `alertname` and the recording rules its expression reads,
    transitively, in their groups and order. The alert's value at any time depends on those
    alone, so promtool judges it exactly as with every group loaded; the rest (the SLO windows
    of up to 3 days above all) only costs evaluation time."""
    recorded: dict[str, list[dict[str, Any]]] = {}
    for group in groups:
        for rule in group["rules"]:
            if "record" in rule:
                recorded.setdefault(rule["record"], []).append(rule)
    alert = [r for g in groups for r in g["rules"] if r.get("alert") == alertname]
    assert alert, f"no alert {alertname} in the rendered groups"
    read: set[str] = set()
    pending = [rule["expr"] for rule in alert]
    while pending:
        for name in _METRIC_NAME.findall(pending.pop()):
            if name in recorded and name not in read:
                read.add(name)
                pending += [rule["expr"] for rule in recorded[name]]
    cut = []
    for group in groups:
        rules = [
            r for r in group["rules"] if r.get("alert") == alertname or r.get("record") in read
        ]
        if rules:
            cut.append({**group, "rules": rules})
    return cut


def write_rules_test(
    tmp_path: Path, stem: str, groups: list[dict[str, Any]], tests: list[dict[str, Any]]
) -> str:
    """`<stem>.rules.yml` with `groups` and the `promtool test rules` file `<stem>.test.yml`
    running `tests` on them; returns the test file's name."""
    rules = tmp_path / f"{stem}.rules.yml"
    rules.write_text(dump_yaml({"groups": groups}, sort_keys=False), encoding="utf-8")
    doc = {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests}
    test_path = tmp_path / f"{stem}.test.yml"
    test_path.write_text(dump_yaml(doc, sort_keys=False, width=1000), encoding="utf-8")
    return test_path.name


def promtool_test_rules(tmp_path: Path, test_files: list[str]) -> None:
    result = run_tool("promtool", "test", "rules", *test_files, cwd=tmp_path)
    assert result.returncode == 0, (
        f"promtool test rules failed (exit {result.returncode})\n"
        f"--- stdout\n{result.stdout[-20000:]}\n--- stderr\n{result.stderr[-5000:]}"
    )


def run_promtool(tmp_path: Path, groups: list[dict[str, Any]], tests: list[dict[str, Any]]) -> None:
    """Every test group through one `promtool test rules` run: one test file per alert, each
    loading the rules that alert reads (rules_read_by)."""
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        (alertname,) = {t["alertname"] for t in test["alert_rule_test"]}
        by_alert.setdefault(alertname, []).append(test)
    promtool_test_rules(
        tmp_path,
        [
            write_rules_test(tmp_path, alertname, rules_read_by(groups, alertname), alert_tests)
            for alertname, alert_tests in by_alert.items()
        ],
    )


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_alert_of_the_render_has_a_firing_and_a_silent_case(name: str) -> None:
    emitted = {
        rule["alert"]
        for group in rule_groups(name)
        if group["name"] == f"{APP}.alerts"
        for rule in group["rules"]
    }
    found = strategy_cases(name)
    assert len(emitted) == len(found), (sorted(emitted), sorted(found))
    assert set(found) <= set(ALERT_KINDS)
    for kind, kind_cases in found.items():
        assert any(case.firing for case in kind_cases), f"{kind}: no case where it fires"
        assert any(not case.firing for case in kind_cases), f"{kind}: no silent case"


@pytest.mark.parametrize(
    ("name", "honor_labels"),
    VARIANTS,
    ids=[f"{n}{'-honorLabels' if h else ''}" for n, h in VARIANTS],
)
def test_every_alert_fires_for_every_workload_and_stays_silent_otherwise(
    tmp_path: Path, name: str, honor_labels: bool
) -> None:
    groups = rule_groups(name)
    run_promtool(tmp_path, groups, promtool_tests(groups, strategy_cases(name, honor_labels), name))


# The longest app name the config allows (40): `<app>-canary-<hash>-` exceeds the 58 characters
# of a generateName base, so the ReplicaSet controller's pod names lose their second dash.
LONG = "checkout-service-for-the-web-storefront1"


@pytest.mark.parametrize(
    "raw",
    [
        canary("prod", weight=25, replicas=4, autoscaling={"enabled": False}),
        blue_green("prod", active="green"),
    ],
    ids=["canary", "blueGreen"],
)
def test_the_alerts_find_the_pods_of_the_longest_app_name(
    tmp_path: Path, raw: dict[str, Any]
) -> None:
    raw = copy.deepcopy(raw)
    raw["apps"] = {LONG: raw["apps"]["web"], "web": {"image": PROD_IMAGE, "service": {}}}
    raw["apps"]["web"]["service"] = {"type": "ClusterIP"}
    raw["monitoring"] = {"enabled": True}
    cfg = config_model.load(raw)
    objects = render_config(cfg, "long").objects
    cluster = gen.cluster(objects)
    # 63 characters, or 62 when the template's hash happens to encode in 9 characters (the
    # ReplicaSet controller's pod-template-hash is a 32-bit FNV hash, safe-encoded: 9 or 10)
    assert max(len(p.name) for p in cluster.pods if p.labels[NAME_LABEL] == LONG) >= 62
    groups = app_groups(objects, LONG)
    found = cases(cluster, cfg, LONG, "web")
    run_promtool(tmp_path, groups, promtool_tests(groups, found, "long", LONG))


@pytest.mark.parametrize("name", ["rolling-hpa", "blueGreen-hpa", "argo-canary-ingress"])
def test_recording_rules_aggregate_every_pod_of_the_job(tmp_path: Path, name: str) -> None:
    """The recorded request rate, error rate and ratio and p95 sum every scraped pod of the app
    (all colours, tracks and ReplicaSets) into one series per job and namespace, whatever target
    labels the ServiceMonitor adds (e.g. `rollouts_pod_template_hash`)."""
    cluster = gen.cluster(rendered(name).objects)
    targets = gen.app_targets(cluster, APP)
    assert len({t.pod.owner for t in targets} | {t.pod.revision for t in targets}) >= 2
    job = {"job": targets[0].labels["job"], "namespace": targets[0].labels["namespace"]}
    series: list[tuple[str, str]] = []
    for t in targets:
        series += [
            gen.http_requests(t, "200", "0+90x30"),
            gen.http_requests(t, "500", "0+6x30"),
            gen.http_requests(t, "502", "0+4x30"),
        ]
        # every request in the app's (0.1 s, 0.25 s] bucket: p95 = 0.1 + 0.95 x 0.15
        series += gen.duration_buckets(t, {0.25: 100}, DURATION_BUCKETS)
    selector = "{" + ", ".join(f'{k}="{v}"' for k, v in job.items()) + "}"

    def check(record: str, value: float) -> dict[str, Any]:
        # promtool compares sample values exactly: round away the float noise of rate()
        return {
            "expr": f"round({record}{selector}, 0.0001)",
            "eval_time": "20m",
            "exp_samples": [{"labels": selector, "value": round(value, 4)}],
        }

    n = len(targets)
    groups = rule_groups(name)
    test = {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [
            check("job:http_requests:rate5m", n * 100 / 60),
            check("job:http_request_errors:rate5m", n * 10 / 60),
            check("job:http_request_errors:ratio_rate5m", 0.1),
            check("job:http_request_duration_seconds:p95_5m", 0.1 + 0.95 * 0.15),
        ],
    }
    promtool_test_rules(tmp_path, [write_rules_test(tmp_path, "recording", groups, [test])])
