"""promtool unit-test cases for every alert of `components.alert_rules`, and the harness that
turns them into a `promtool test rules` file.

Each alert kind has firing cases (exact alert labels and the alert value, from which the expected
annotations are rendered with the rule's own annotation templates) and silent cases
(`exp_alerts: []`). promtool compares labels *and* annotations exactly, so a firing case also
pins the value the expression computes (it is interpolated into the description).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.alert_rules import AlertThresholds, RuleTarget, alert_name, app_rule_groups

SAMPLE_TARGET = RuleTarget(
    app="web",
    namespace="shop",
    metrics_job="web",
    hpa="web",
    pdb="web",
    runbook_base_url="https://runbooks.example.com/appstack",
)
THRESHOLDS = AlertThresholds()
EVALUATION_INTERVAL = "1m"

POD = "web-6d4cf56db6-x7k2p"
# A sibling Deployment `web-api` in the same namespace: its pods must never match `web`'s alerts.
OTHER_POD = "web-api-7f9b8c5d4-q2w3e"
KSM = 'job="kube-state-metrics", instance="10.0.9.9:8080"'
KUBELET = 'job="kubelet", metrics_path="/metrics/cadvisor", instance="10.0.1.1:10250"'


@dataclass(frozen=True)
class Firing:
    """One expected alert: its labels (without alertname/severity) and its value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Case:
    name: str
    series: Sequence[tuple[str, str]]
    eval_time: str
    firing: Sequence[Firing] = field(default_factory=tuple)


def _ctr(metric: str, pod: str = POD, container: str = "web", extra: str = KUBELET) -> str:
    return f'{metric}{{namespace="shop", pod="{pod}", container="{container}", {extra}}}'


def http_series(code: str) -> str:
    return (
        f'http_requests_total{{job="web", namespace="shop", instance="10.0.0.1:8080", pod="{POD}",'
        f' method="GET", path="/", code="{code}"}}'
    )


def latency_buckets(per_minute: Mapping[str, int]) -> list[tuple[str, str]]:
    return [
        (
            'http_request_duration_seconds_bucket{job="web", namespace="shop", '
            f'instance="10.0.0.1:8080", method="GET", path="/", le="{le}"}}',
            f"0+{count}x40",
        )
        for le, count in per_minute.items()
    ]


def _up(pod: str, job: str = "web") -> str:
    return f'up{{job="{job}", namespace="shop", instance="10.0.0.1:8080", pod="{pod}"}}'


def _hpa(metric: str) -> str:
    return f'{metric}{{namespace="shop", horizontalpodautoscaler="web", {KSM}}}'


def _dep(metric: str, extra: str = "") -> str:
    return f'{metric}{{namespace="shop", deployment="web", {extra}{KSM}}}'


def _pdb() -> str:
    return f'namespace="shop", poddisruptionbudget="web", {KSM}'


def _progressing(true: int, false: int) -> list[tuple[str, str]]:
    return [
        (
            _dep("kube_deployment_status_condition", f'condition="Progressing", status="{s}", '),
            f"{v}+0x30",
        )
        for s, v in (("true", true), ("false", false), ("unknown", 0))
    ]


def _generations(observed: int, metadata: int) -> list[tuple[str, str]]:
    return [
        (_dep("kube_deployment_status_observed_generation"), f"{observed}+0x30"),
        (_dep("kube_deployment_metadata_generation"), f"{metadata}+0x30"),
    ]


JOB = {"job": "web", "namespace": "shop"}
CONTAINER = {"namespace": "shop", "pod": POD, "container": "web"}
DEPLOYMENT = {"namespace": "shop", "deployment": "web"}
HPA = {"namespace": "shop", "horizontalpodautoscaler": "web"}
PDB = {"namespace": "shop", "poddisruptionbudget": "web"}

FIRING_LATENCY = {"0.1": 10, "0.25": 50, "0.5": 80, "1": 100, "2.5": 100, "+Inf": 100}
SILENT_LATENCY = {"0.1": 50, "0.25": 90, "0.5": 98, "1": 100, "2.5": 100, "+Inf": 100}

# alert kind -> cases. Values are computed by hand from the series (interval 1m):
CASES: dict[str, list[Case]] = {
    "TargetDown": [
        Case(
            "every target down for longer than `for`",
            [(_up(POD), "0+0x15"), (_up("web-6d4cf56db6-a1b2c"), "0+0x15")],
            "10m",
            [Firing(JOB, 0)],
        ),
        Case(
            "no up series for the job at all (target gone from discovery)",
            [(_up("other-5c6d7e8f9-zzzzz", job="other"), "1+0x15")],
            "10m",
            [Firing(JOB, 1)],
        ),
        Case(
            "one of two targets still up",
            [(_up(POD), "1+0x15"), (_up("web-6d4cf56db6-a1b2c"), "0+0x15")],
            "10m",
        ),
        Case("down for less than `for` (pending only)", [(_up(POD), "1+0x5 0+0x10")], "8m"),
    ],
    "HighErrorRatio": [
        # 6 of 100 requests per minute fail: ratio 0.06 > 0.05
        Case(
            "error ratio 6% above 5%",
            [(http_series("200"), "0+94x30"), (http_series("500"), "0+6x30")],
            "20m",
            [Firing(JOB, 0.06)],
        ),
        Case(
            "error ratio 4% below 5%",
            [(http_series("200"), "0+96x30"), (http_series("503"), "0+4x30")],
            "20m",
        ),
        Case(
            "4xx are not errors",
            [(http_series("200"), "0+50x30"), (http_series("404"), "0+50x30")],
            "20m",
        ),
    ],
    "HighLatencyP95": [
        # p95 rank 95 of 100 falls in (0.5, 1]: 0.5 + (95-80)/(100-80) * 0.5 = 0.875
        Case("p95 0.875s above 0.5s", latency_buckets(FIRING_LATENCY), "25m", [Firing(JOB, 0.875)]),
        # p95 rank 95 falls in (0.25, 0.5]: 0.25 + (95-90)/(98-90) * 0.25 = 0.40625
        Case("p95 0.406s below 0.5s", latency_buckets(SILENT_LATENCY), "25m"),
    ],
    "MemoryNearLimit": [
        Case(
            "working set 95% of the limit",
            [
                (_ctr("container_memory_working_set_bytes"), "950000000+0x30"),
                (
                    _ctr(
                        "kube_pod_container_resource_limits",
                        extra=f'resource="memory", unit="byte", node="n1", {KSM}',
                    ),
                    "1000000000+0x30",
                ),
            ],
            "20m",
            [Firing(CONTAINER, 0.95)],
        ),
        Case(
            "working set 80% of the limit; a sibling app at 99% is ignored",
            [
                (_ctr("container_memory_working_set_bytes"), "800000000+0x30"),
                (
                    _ctr(
                        "kube_pod_container_resource_limits",
                        extra=f'resource="memory", unit="byte", node="n1", {KSM}',
                    ),
                    "1000000000+0x30",
                ),
                (
                    _ctr("container_memory_working_set_bytes", OTHER_POD, "web-api"),
                    "990000000+0x30",
                ),
                (
                    _ctr(
                        "kube_pod_container_resource_limits",
                        OTHER_POD,
                        "web-api",
                        extra=f'resource="memory", unit="byte", node="n1", {KSM}',
                    ),
                    "1000000000+0x30",
                ),
            ],
            "20m",
        ),
    ],
    "CPUThrottling": [
        Case(
            "30% of CFS periods throttled",
            [
                (_ctr("container_cpu_cfs_throttled_periods_total"), "0+30x40"),
                (_ctr("container_cpu_cfs_periods_total"), "0+100x40"),
            ],
            "25m",
            [Firing(CONTAINER, 0.3)],
        ),
        Case(
            "10% of CFS periods throttled",
            [
                (_ctr("container_cpu_cfs_throttled_periods_total"), "0+10x40"),
                (_ctr("container_cpu_cfs_periods_total"), "0+100x40"),
            ],
            "25m",
        ),
    ],
    "PodRestarting": [
        # 5 restarts at 61m; at 70m increase over [10m, 70m] is exactly 5, active for 9m > 5m
        Case(
            "5 restarts within the hour",
            [(_ctr("kube_pod_container_status_restarts_total", extra=KSM), "0+0x60 5+0x30")],
            "70m",
            [Firing(CONTAINER, 5)],
        ),
        Case(
            "2 restarts within the hour",
            [(_ctr("kube_pod_container_status_restarts_total", extra=KSM), "0+0x60 2+0x30")],
            "70m",
        ),
    ],
    "CrashLooping": [
        Case(
            "waiting in CrashLoopBackOff for 20m",
            [
                (
                    _ctr(
                        "kube_pod_container_status_waiting_reason",
                        extra=f'reason="CrashLoopBackOff", {KSM}',
                    ),
                    "1+0x30",
                )
            ],
            "20m",
            [Firing(CONTAINER, 1)],
        ),
        Case(
            "waiting for another reason; a sibling app crash-looping is ignored",
            [
                (
                    _ctr(
                        "kube_pod_container_status_waiting_reason",
                        extra=f'reason="ContainerCreating", {KSM}',
                    ),
                    "1+0x30",
                ),
                (
                    _ctr(
                        "kube_pod_container_status_waiting_reason",
                        OTHER_POD,
                        "web-api",
                        extra=f'reason="CrashLoopBackOff", {KSM}',
                    ),
                    "1+0x30",
                ),
            ],
            "20m",
        ),
    ],
    "HPAAtMaxReplicas": [
        Case(
            "5 of max 5 replicas for 20m",
            [
                (_hpa("kube_horizontalpodautoscaler_status_current_replicas"), "5+0x30"),
                (_hpa("kube_horizontalpodautoscaler_spec_max_replicas"), "5+0x30"),
                (_hpa("kube_horizontalpodautoscaler_spec_min_replicas"), "2+0x30"),
            ],
            "20m",
            [Firing(HPA, 5)],
        ),
        Case(
            "4 of max 5 replicas",
            [
                (_hpa("kube_horizontalpodautoscaler_status_current_replicas"), "4+0x30"),
                (_hpa("kube_horizontalpodautoscaler_spec_max_replicas"), "5+0x30"),
                (_hpa("kube_horizontalpodautoscaler_spec_min_replicas"), "2+0x30"),
            ],
            "20m",
        ),
        Case(
            "min == max: always at max, not alerted",
            [
                (_hpa("kube_horizontalpodautoscaler_status_current_replicas"), "5+0x30"),
                (_hpa("kube_horizontalpodautoscaler_spec_max_replicas"), "5+0x30"),
                (_hpa("kube_horizontalpodautoscaler_spec_min_replicas"), "5+0x30"),
            ],
            "20m",
        ),
    ],
    "RolloutStuck": [
        Case(
            "Progressing=false (progress deadline exceeded)",
            [*_progressing(true=0, false=1), *_generations(3, 3)],
            "20m",
            [Firing(DEPLOYMENT, 1)],
        ),
        Case(
            "observed generation lags the spec generation",
            [*_progressing(true=1, false=0), *_generations(2, 3)],
            "20m",
            [Firing(DEPLOYMENT, 2)],
        ),
        Case(
            "progressing and generation observed",
            [*_progressing(true=1, false=0), *_generations(3, 3)],
            "20m",
        ),
    ],
    "ReplicasUnavailable": [
        Case(
            "1 replica unavailable for 20m",
            [(_dep("kube_deployment_status_replicas_unavailable"), "1+0x30")],
            "20m",
            [Firing(DEPLOYMENT, 1)],
        ),
        Case(
            "all replicas available",
            [(_dep("kube_deployment_status_replicas_unavailable"), "0+0x30")],
            "20m",
        ),
        Case(
            "unavailable for less than `for` (rolling update)",
            [(_dep("kube_deployment_status_replicas_unavailable"), "0+0x10 1+0x10")],
            "20m",
        ),
    ],
    "PDBNoDisruptionsAllowed": [
        Case(
            "no disruption allowed for 70m",
            [(f"kube_poddisruptionbudget_status_pod_disruptions_allowed{{{_pdb()}}}", "0+0x90")],
            "70m",
            [Firing(PDB, 0)],
        ),
        Case(
            "one disruption allowed",
            [(f"kube_poddisruptionbudget_status_pod_disruptions_allowed{{{_pdb()}}}", "1+0x90")],
            "70m",
        ),
        Case(
            "no disruption allowed for only 40m",
            [(f"kube_poddisruptionbudget_status_pod_disruptions_allowed{{{_pdb()}}}", "0+0x40")],
            "40m",
        ),
    ],
}


# ---------------------------------------------------------------------------------------------
# Rendering the expected annotations exactly as Prometheus' text/template would.

_LABEL_RE = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
_VALUE_RE = re.compile(r'\{\{\s*\$value\s*(?:\|\s*(humanizePercentage|printf\s+"([^"]*)")\s*)?\}\}')


def go_float(value: float) -> str:
    """`{{ $value }}`: Go prints a float64 with %v (shortest repr, integers without `.0`)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _render_value(match: re.Match[str], value: float) -> str:
    func, fmt = match.group(1), match.group(2)
    if func is None:
        return go_float(value)
    if func == "humanizePercentage":
        return f"{value * 100:.4g}%"
    return fmt % value  # printf with %.Nf, identical in Go and Python


def render(template: str, labels: Mapping[str, str], value: float) -> str:
    """Render the subset of Prometheus annotation templating the rules use."""
    out = _LABEL_RE.sub(lambda m: labels[m.group(1)], template)
    out = _VALUE_RE.sub(lambda m: _render_value(m, value), out)
    if "{{" in out:
        raise AssertionError(f"template construct not supported by the test renderer: {out!r}")
    return out


def alert_rules(groups: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def promtool_test_file(
    rules_path: str, kind: str, groups: Sequence[Mapping[str, Any]], app: str = "web"
) -> dict[str, Any]:
    """A `promtool test rules` document with one test group per case of `kind`."""
    name = alert_name(app, kind)
    rule = alert_rules(groups)[name]
    tests = []
    for case in CASES[kind]:
        exp_alerts = [
            {
                "exp_labels": {**firing.labels, **rule["labels"]},
                "exp_annotations": {
                    key: render(text, firing.labels, firing.value)
                    for key, text in rule["annotations"].items()
                },
            }
            for firing in case.firing
        ]
        tests.append(
            {
                "name": f"{name}: {case.name}",
                "interval": EVALUATION_INTERVAL,
                "input_series": [{"series": s, "values": v} for s, v in case.series],
                "alert_rule_test": [
                    {"eval_time": case.eval_time, "alertname": name, "exp_alerts": exp_alerts}
                ],
            }
        )
    return {
        "rule_files": [rules_path],
        "evaluation_interval": EVALUATION_INTERVAL,
        "tests": tests,
    }


def sample_groups() -> list[dict[str, Any]]:
    return app_rule_groups(SAMPLE_TARGET, THRESHOLDS)
