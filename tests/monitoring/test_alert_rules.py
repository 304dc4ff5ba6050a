"""Pure-Python checks of components.monitoring.alert_rules: thresholds, optional alerts, required
fields, validation, severities, the rules-file dump and the metric-name extraction."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components.monitoring.alert_rules import (
    ALERT_KINDS,
    DEFAULT_SEVERITIES,
    AlertThresholds,
    RuleTarget,
    alert_name,
    alert_prefix,
    app_rule_groups,
    metric_names_used,
    referenced_metric_names,
    rules_file,
)
from tests.monitoring.alert_cases import alert_rules

RUNBOOKS = "https://runbooks.example.com/appstack"
SAMPLE_TARGET = RuleTarget(
    app="web",
    namespace="shop",
    metrics_job="web",
    container="app",
    workloads=("web",),
    workload_kind="Deployment",
    hpas=("web",),
    pdbs=("web",),
    runbook_base_url=RUNBOOKS,
)


def sample_groups() -> list[dict[str, Any]]:
    return app_rule_groups(SAMPLE_TARGET, AlertThresholds())


DURATION = re.compile(r"^(\d+(ms|[smhdwy]))+$")


def _rule(groups: list[dict[str, Any]], kind: str, app: str = "web") -> dict[str, Any]:
    return dict(alert_rules(groups)[alert_name(app, kind)])


def _with(**changes: Any) -> list[dict[str, Any]]:
    return app_rule_groups(SAMPLE_TARGET, AlertThresholds(**changes))


# --- structure -------------------------------------------------------------------------------


def test_two_groups_named_after_the_app() -> None:
    groups = sample_groups()
    assert [g["name"] for g in groups] == ["web.recording", "web.alerts"]
    assert all("record" in r for r in groups[0]["rules"])
    assert all("alert" in r for r in groups[1]["rules"])


def test_recording_rules_follow_the_naming_convention_and_filter_on_job_and_namespace() -> None:
    recording = sample_groups()[0]["rules"]
    names = [r["record"] for r in recording]
    assert {
        "job:http_requests:rate5m",
        "job:http_request_errors:ratio_rate5m",
        "job:http_request_duration_seconds:p95_5m",
    } <= set(names)
    for rule in recording:
        assert re.fullmatch(r"job:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]
        for selector in re.findall(r"\{[^}]*\}", rule["expr"]):
            assert 'job="web"' in selector and 'namespace="shop"' in selector, rule
        # the output keeps exactly `job` and `namespace`: asserted by promtool in
        # test_alert_rules_promtool.py::test_recording_rules_values


@pytest.mark.parametrize("kind", ALERT_KINDS)
def test_every_alert_has_for_severity_summary_description_runbook(kind: str) -> None:
    rule = _rule(sample_groups(), kind)
    name = alert_name("web", kind)
    assert DURATION.match(rule["for"]), rule["for"]
    assert rule["labels"]["severity"] == DEFAULT_SEVERITIES[kind]
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert annotations["runbook_url"] == f"{RUNBOOKS}/{name}"
    assert 'namespace="shop"' in rule["expr"]


def test_alert_names_are_camel_case_of_the_app() -> None:
    assert alert_prefix("web-api") == "WebApi"
    assert alert_prefix("web") == "Web"
    assert alert_prefix("a1-b2-c3") == "A1B2C3"
    target = dataclasses.replace(SAMPLE_TARGET, app="web-api", metrics_job="web-api")
    names = set(alert_rules(app_rule_groups(target, AlertThresholds())))
    assert "WebApiHighErrorRatio" in names and "WebApiHPAAtMaxReplicas" in names
    assert all(name.startswith("WebApi") for name in names)


def test_runbook_base_url_trailing_slash_is_not_doubled() -> None:
    target = dataclasses.replace(SAMPLE_TARGET, runbook_base_url=RUNBOOKS + "/")
    rule = _rule(app_rule_groups(target, AlertThresholds()), "TargetDown")
    assert rule["annotations"]["runbook_url"] == f"{RUNBOOKS}/WebTargetDown"


def test_metrics_job_other_than_app_is_used_for_app_metrics_only() -> None:
    target = dataclasses.replace(SAMPLE_TARGET, metrics_job="web-metrics")
    groups = app_rule_groups(target, AlertThresholds())
    assert 'up{job="web-metrics", namespace="shop"}' in _rule(groups, "TargetDown")["expr"]
    assert 'deployment=~"web"' in _rule(groups, "RolloutStuck")["expr"]
    assert all('job="web"' not in r["expr"] for r in groups[0]["rules"])


def test_hpa_and_pdb_names_are_used_in_their_alerts() -> None:
    target = dataclasses.replace(SAMPLE_TARGET, hpas=("web-blue", "web-green"), pdbs=("web-pdb",))
    groups = app_rule_groups(target, AlertThresholds())
    hpa_expr = _rule(groups, "HPAAtMaxReplicas")["expr"]
    assert 'horizontalpodautoscaler=~"web-blue|web-green"' in hpa_expr
    assert 'poddisruptionbudget=~"web-pdb"' in _rule(groups, "PDBNoDisruptionsAllowed")["expr"]


# --- optional alerts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hpa", "pdb", "absent"),
    [
        ((), ("web",), {"HPAAtMaxReplicas"}),
        (("web",), (), {"PDBNoDisruptionsAllowed"}),
        ((), (), {"HPAAtMaxReplicas", "PDBNoDisruptionsAllowed"}),
        (("web",), ("web",), set()),
    ],
)
def test_hpa_and_pdb_alerts_only_when_the_objects_exist(
    hpa: tuple[str, ...], pdb: tuple[str, ...], absent: set[str]
) -> None:
    groups = app_rule_groups(
        dataclasses.replace(SAMPLE_TARGET, hpas=hpa, pdbs=pdb), AlertThresholds()
    )
    names = set(alert_rules(groups))
    assert names == {alert_name("web", k) for k in ALERT_KINDS if k not in absent}
    metrics = referenced_metric_names(groups)
    assert any(m.startswith("kube_horizontalpodautoscaler_") for m in metrics) == bool(hpa)
    assert any(m.startswith("kube_poddisruptionbudget_") for m in metrics) == bool(pdb)


def test_a_rollout_is_watched_through_the_argo_rollouts_controller_metrics() -> None:
    target = dataclasses.replace(SAMPLE_TARGET, workload_kind="Rollout")
    metrics = referenced_metric_names(app_rule_groups(target, AlertThresholds()))
    assert not any(m.startswith("kube_deployment_") for m in metrics)
    assert {"rollout_info", "rollout_info_replicas_unavailable"} <= metrics


# --- thresholds drive the expressions --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "field", "value", "fragment"),
    [
        ("HighErrorRatio", "error_ratio", 0.07, "> 0.07"),
        ("HighLatencyP95", "p95_latency_seconds", 1.25, "> 1.25"),
        ("MemoryNearLimit", "memory_limit_ratio", 0.8, "> 0.8"),
        ("CPUThrottling", "cpu_throttle_ratio", 0.4, "> 0.4"),
        ("PodRestarting", "restarts_per_hour", 5, ">= 5"),
    ],
)
def test_thresholds_come_from_alert_thresholds(
    kind: str, field: str, value: float, fragment: str
) -> None:
    default_expr = _rule(sample_groups(), kind)["expr"]
    expr = _rule(_with(**{field: value}), kind)["expr"]
    assert fragment in expr and fragment not in default_expr
    assert expr.replace(fragment, "") == default_expr.replace(
        f"{fragment.split()[0]} {getattr(AlertThresholds(), field)}", ""
    )


def test_threshold_is_quoted_in_the_description() -> None:
    assert (
        "(threshold 7%)"
        in _rule(_with(error_ratio=0.07), "HighErrorRatio")["annotations"]["description"]
    )
    assert (
        "(threshold 1.25s)"
        in _rule(_with(p95_latency_seconds=1.25), "HighLatencyP95")["annotations"]["description"]
    )


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("TargetDown", "target_down_for"),
        ("HighErrorRatio", "error_ratio_for"),
        ("HighLatencyP95", "latency_for"),
        ("MemoryNearLimit", "memory_for"),
        ("CPUThrottling", "cpu_throttle_for"),
        ("PodRestarting", "restarts_for"),
        ("CrashLooping", "crashloop_for"),
        ("HPAAtMaxReplicas", "hpa_at_max_for"),
        ("RolloutStuck", "rollout_stuck_for"),
        ("ReplicasUnavailable", "replicas_unavailable_for"),
        ("PDBNoDisruptionsAllowed", "pdb_no_disruptions_for"),
    ],
)
def test_for_durations_come_from_alert_thresholds(kind: str, field: str) -> None:
    assert _rule(sample_groups(), kind)["for"] == getattr(AlertThresholds(), field)
    assert _rule(_with(**{field: "2h30m"}), kind)["for"] == "2h30m"


def test_default_thresholds() -> None:
    t = AlertThresholds()
    assert (t.error_ratio, t.p95_latency_seconds, t.memory_limit_ratio) == (0.05, 0.5, 0.9)
    assert (t.cpu_throttle_ratio, t.restarts_per_hour) == (0.25, 3)
    assert (t.hpa_at_max_for, t.pdb_no_disruptions_for) == ("15m", "1h")


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("error_ratio", 0),
        ("error_ratio", 1.5),
        ("error_ratio", -0.1),
        ("error_ratio", float("nan")),
        ("error_ratio", "0.05"),
        ("memory_limit_ratio", 0.0),
        ("memory_limit_ratio", 1.01),
        ("cpu_throttle_ratio", 2),
        ("cpu_throttle_ratio", True),
        ("p95_latency_seconds", 0),
        ("p95_latency_seconds", -1),
        ("p95_latency_seconds", float("inf")),
        ("restarts_per_hour", 0),
        ("restarts_per_hour", 2.5),
        ("restarts_per_hour", True),
        ("hpa_at_max_for", "15"),
        ("hpa_at_max_for", "15 m"),
        ("hpa_at_max_for", "m"),
        ("pdb_no_disruptions_for", "1hour"),
        ("pdb_no_disruptions_for", "30m1h"),
        ("pdb_no_disruptions_for", ""),
        ("target_down_for", "-5m"),
        ("error_ratio_for", 300),
    ],
)
def test_invalid_thresholds_raise_naming_the_field_and_value(field: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(field)) as excinfo:
        AlertThresholds(**{field: bad})
    assert repr(bad) in str(excinfo.value)


@pytest.mark.parametrize(
    "duration", ["0", "30s", "5m", "1h30m", "1d", "2w", "1y", "500ms", "1h0m0s"]
)
def test_valid_durations_accepted(duration: str) -> None:
    assert AlertThresholds(hpa_at_max_for=duration).hpa_at_max_for == duration


def test_ratio_of_exactly_one_is_valid() -> None:
    assert AlertThresholds(memory_limit_ratio=1).memory_limit_ratio == 1


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("app", "Web"),
        ("app", "web_api"),
        ("app", ""),
        ("app", "-web"),
        ("namespace", "shop.prod"),
        ("metrics_job", ""),
        ("metrics_job", 'we"b'),
        ("container", "App"),
        ("workload_kind", "StatefulSet"),
        ("workloads", ()),
        ("workloads", ("web.x",)),
        ("hpas", ("",)),
        ("hpas", ("Web HPA",)),
        ("pdbs", ("web_pdb",)),
        ("runbook_base_url", "runbooks.example.com"),
        ("runbook_base_url", "https://runbooks.example.com/a b"),
    ],
)
def test_invalid_target_raises_naming_the_field(field: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(f"RuleTarget.{field}")) as excinfo:
        dataclasses.replace(SAMPLE_TARGET, **{field: bad})
    assert repr(bad) in str(excinfo.value)


# --- severities ------------------------------------------------------------------------------


def test_severity_overrides_by_kind_or_full_name() -> None:
    groups = app_rule_groups(
        SAMPLE_TARGET,
        AlertThresholds(),
        {"HighLatencyP95": "critical", "WebTargetDown": "warning"},
    )
    assert _rule(groups, "HighLatencyP95")["labels"]["severity"] == "critical"
    assert _rule(groups, "TargetDown")["labels"]["severity"] == "warning"
    assert _rule(groups, "HighErrorRatio")["labels"]["severity"] == "critical"
    assert _rule(groups, "MemoryNearLimit")["labels"]["severity"] == "warning"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"NoSuchAlert": "warning"}, "NoSuchAlert"),
        ({"OtherTargetDown": "warning"}, "OtherTargetDown"),
        ({"TargetDown": "page"}, "'page'"),
    ],
)
def test_bad_severity_overrides_raise(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        app_rule_groups(SAMPLE_TARGET, AlertThresholds(), overrides)


# --- rules file and metric names -------------------------------------------------------------


def test_rules_file_round_trips_and_is_deterministic() -> None:
    groups = sample_groups()
    text = rules_file(groups)
    assert text == rules_file(sample_groups())
    assert yaml.safe_load(text) == {"groups": groups}
    assert text.startswith("groups:\n- name: web.recording\n  rules:\n  - record: ")
    # fixed key order within alerting rules, whatever order the input dicts had
    shuffled = [
        {"rules": [dict(reversed(list(r.items()))) for r in g["rules"]], "name": g["name"]}
        for g in groups
    ]
    assert rules_file(shuffled) == text
    first_alert = text[text.index("  - alert: WebTargetDown") :]
    keys = re.findall(r"^    (\w+):", first_alert, flags=re.M)[:4]
    assert keys == ["expr", "for", "labels", "annotations"]


def test_metric_names_used_are_the_app_exported_base_names() -> None:
    assert metric_names_used(sample_groups()) == {
        "http_requests_total",
        "http_request_duration_seconds",
    }


def test_referenced_metric_names_are_the_scraped_dependencies() -> None:
    assert referenced_metric_names(sample_groups()) == {
        "up",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "container_memory_working_set_bytes",
        "container_cpu_cfs_throttled_periods_total",
        "container_cpu_cfs_periods_total",
        "kube_pod_container_resource_limits",
        "kube_pod_container_status_restarts_total",
        "kube_pod_container_status_waiting_reason",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "kube_deployment_status_condition",
        "kube_deployment_status_observed_generation",
        "kube_deployment_metadata_generation",
        "kube_deployment_status_replicas_unavailable",
        "kube_poddisruptionbudget_status_pod_disruptions_allowed",
    }


def test_metric_names_used_on_hand_written_groups() -> None:
    groups = [
        {
            "name": "g",
            "rules": [
                {
                    "alert": "A",
                    "expr": "histogram_quantile(0.9, sum by (le, http_path) (rate("
                    'http_server_seconds_bucket{code=~"5..", http_x="y"}[5m]))) > 1e3 '
                    "and on (job) http_in_flight > 0 or http_server_seconds_count offset 5m",
                },
                {"record": "job:http_x:sum", "expr": "sum(http_server_seconds_sum)"},
            ],
        }
    ]
    assert metric_names_used(groups) == {"http_server_seconds", "http_in_flight"}


@settings(max_examples=60, deadline=None)
@given(
    app=st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True),
    ratio=st.floats(min_value=1e-6, max_value=1.0, allow_nan=False),
    latency=st.floats(min_value=1e-3, max_value=120.0, allow_nan=False),
    restarts=st.integers(min_value=1, max_value=1000),
)
def test_any_valid_input_gives_complete_parseable_rules(
    app: str, ratio: float, latency: float, restarts: int
) -> None:
    target = RuleTarget(app, "ns", app, "app", (app,), "Deployment", (app,), (app,), RUNBOOKS)
    thresholds = AlertThresholds(
        error_ratio=ratio, p95_latency_seconds=latency, restarts_per_hour=restarts
    )
    groups = app_rule_groups(target, thresholds)
    assert yaml.safe_load(rules_file(groups)) == {"groups": groups}
    rules = alert_rules(groups)
    assert set(rules) == {alert_name(app, kind) for kind in ALERT_KINDS}
    assert f"> {ratio!r}" in rules[alert_name(app, "HighErrorRatio")]["expr"]
    assert f"> {latency!r}" in rules[alert_name(app, "HighLatencyP95")]["expr"]
    assert f">= {restarts}" in rules[alert_name(app, "PodRestarting")]["expr"]
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", alert_prefix(app))
