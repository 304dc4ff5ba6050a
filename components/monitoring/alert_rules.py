"""Alerting and recording rules for one appstack service, as plain Python data.

`app_rule_groups()` returns the `spec.groups` list of a prometheus-operator PrometheusRule; the
same list under a top-level `groups:` key (see `rules_file()`) is a standalone Prometheus rules
file that `promtool check rules` / `promtool test rules` accept. Nothing here imports pulumi: the
component that creates the PrometheusRule passes the returned list through unchanged.
Thresholds, the rule target and severities are components/monitoring/alert_model.py; the rules-file
format and the metric-name inventory components/monitoring/rules_file.py (both re-exported here).

Metrics the rules read:

* the app itself (scraped through the ServiceMonitor, so `job` = the Service name):
  `http_requests_total{job,namespace,method,code,path}` (counter) and
  `http_request_duration_seconds_bucket{job,namespace,method,path,le}` (histogram), plus `up`;
* cAdvisor (kubelet): `container_memory_working_set_bytes`,
  `container_cpu_cfs_throttled_periods_total`, `container_cpu_cfs_periods_total`;
* kube-state-metrics v2: `kube_pod_container_resource_limits`,
  `kube_pod_container_status_restarts_total`, `kube_pod_container_status_waiting_reason`,
  `kube_horizontalpodautoscaler_status_current_replicas`,
  `kube_horizontalpodautoscaler_spec_max_replicas`,
  `kube_horizontalpodautoscaler_spec_min_replicas`,
  `kube_poddisruptionbudget_status_pod_disruptions_allowed`, and for Deployments
  `kube_deployment_status_condition`, `kube_deployment_status_observed_generation`,
  `kube_deployment_metadata_generation`, `kube_deployment_status_replicas_unavailable`;
* the Argo Rollouts controller, for a Rollout (kube-state-metrics does not export the
  argoproj.io kinds unless given a custom-resource config): `rollout_info{namespace, name,
  strategy, traffic_router, phase}` and `rollout_info_replicas_unavailable{namespace, name}`
  (argo-rollouts v1.9.1 controller/metrics/prommetrics.go and rollouts.go).

Which pods, containers and workloads the rules are about comes from the render (`RuleTarget`):
the container name of the pod spec, the names of every workload of the release strategy (the
colours, the canary track, the Rollout) and their kind. Pod names follow the ReplicaSet
controller, for Deployments and Rollouts alike: `<workload>-<pod template hash>-<5 random>`.

Every alert expression aggregates `by` the labels that identify the object it is about
(`namespace` plus `job`, `pod`/`container`, `deployment`, `rollout`, `horizontalpodautoscaler`
or `poddisruptionbudget`), so the `{{ $labels.* }}` references in the annotations always resolve
and the alert's label set does not depend on which kube-state-metrics/kubelet instance was
scraped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from components.monitoring.alert_model import ALERT_KINDS as ALERT_KINDS
from components.monitoring.alert_model import DEFAULT_SEVERITIES as DEFAULT_SEVERITIES
from components.monitoring.alert_model import SEVERITIES as SEVERITIES
from components.monitoring.alert_model import WORKLOAD_KINDS as WORKLOAD_KINDS
from components.monitoring.alert_model import AlertThresholds as AlertThresholds
from components.monitoring.alert_model import RuleTarget as RuleTarget
from components.monitoring.rules_file import metric_names_used as metric_names_used
from components.monitoring.rules_file import referenced_metric_names as referenced_metric_names
from components.monitoring.rules_file import rules_file as rules_file

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_SEVERITIES",
    "SEVERITIES",
    "WORKLOAD_KINDS",
    "AlertThresholds",
    "RuleTarget",
    "alert_name",
    "alert_prefix",
    "app_rule_groups",
    "metric_names_used",
    "referenced_metric_names",
    "rules_file",
]


def alert_prefix(app: str) -> str:
    """CamelCase alert-name prefix of an app name: `web-api` -> `WebApi`, `web2` -> `Web2`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_.]", app) if part)


def alert_name(app: str, kind: str) -> str:
    """The emitted alert name of one alert kind, e.g. `alert_name("web-api", "TargetDown")`."""
    if kind not in DEFAULT_SEVERITIES:
        raise ValueError(f"unknown alert kind {kind!r}; known: {', '.join(ALERT_KINDS)}")
    return f"{alert_prefix(app)}{kind}"


def _num(value: float) -> str:
    """A PromQL number literal that round-trips the Python value."""
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.4g}%"


def _selector(*matchers: tuple[str, str, str]) -> str:
    """`{a="x", b=~"y"}` from (label, op, value) triples; values are already validated."""
    return "{" + ", ".join(f'{label}{op}"{value}"' for label, op, value in matchers) + "}"


def _resolve_severities(app: str, overrides: Mapping[str, str] | None) -> dict[str, str]:
    severities = dict(DEFAULT_SEVERITIES)
    prefix = alert_prefix(app)
    for key, severity in (overrides or {}).items():
        kind = key[len(prefix) :] if key.startswith(prefix) and key not in severities else key
        if kind not in severities:
            raise ValueError(
                f"severity_overrides: unknown alert {key!r}; use one of {', '.join(ALERT_KINDS)} "
                f"(optionally prefixed with {prefix!r})"
            )
        if severity not in SEVERITIES:
            raise ValueError(
                f"severity_overrides[{key!r}] must be one of {sorted(SEVERITIES)}, got {severity!r}"
            )
        severities[kind] = severity
    return severities


def _recording_rules(target: RuleTarget) -> list[dict[str, Any]]:
    sel = _selector(("job", "=", target.metrics_job), ("namespace", "=", target.namespace))
    err_sel = _selector(
        ("job", "=", target.metrics_job),
        ("namespace", "=", target.namespace),
        ("code", "=~", "5.."),
    )
    requests_rate = f"sum by (job, namespace) (rate(http_requests_total{sel}[5m]))"
    return [
        {"record": "job:http_requests:rate5m", "expr": requests_rate},
        {
            # `or 0 * ...` makes the error rate 0 (not absent) while there is traffic but no 5xx.
            "record": "job:http_request_errors:rate5m",
            "expr": (
                f"sum by (job, namespace) (rate(http_requests_total{err_sel}[5m]))\n"
                f"or\n0 * {requests_rate}"
            ),
        },
        {
            "record": "job:http_request_errors:ratio_rate5m",
            "expr": f"job:http_request_errors:rate5m{sel}\n/\njob:http_requests:rate5m{sel}",
        },
        {
            "record": "job:http_request_duration_seconds_bucket:rate5m",
            "expr": (
                f"sum by (job, namespace, le) (rate(http_request_duration_seconds_bucket{sel}[5m]))"
            ),
        },
        {
            "record": "job:http_request_duration_seconds:p95_5m",
            "expr": (
                f"histogram_quantile(0.95, job:http_request_duration_seconds_bucket:rate5m{sel})"
            ),
        },
    ]


def _alert(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    runbook_base_url: str,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{runbook_base_url.rstrip('/')}/{name}",
        },
    }


def _alerting_rules(
    target: RuleTarget, t: AlertThresholds, severities: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The app's alerts, in order: service (scrape, errors, latency), containers, HPA, the
    workload's rollout, PDB."""

    def rule(kind: str, expr: str, for_: str, summary: str, description: str) -> dict[str, Any]:
        return _alert(
            alert_name(target.app, kind),
            expr,
            for_,
            severities[kind],
            summary,
            description,
            target.runbook_base_url,
        )

    rules = _service_alerts(target, t, rule) + _container_alerts(target, t, rule)
    rules.extend(_hpa_alerts(target, t, rule))
    if target.workload_kind == "Rollout":
        rules.extend(_argo_rollout_alerts(target, t, rule))
    else:
        rules.extend(_deployment_alerts(target, t, rule))
    rules.extend(_pdb_alerts(target, t, rule))
    return rules


def _service_alerts(
    target: RuleTarget, t: AlertThresholds, rule: RuleFactory
) -> list[dict[str, Any]]:
    """TargetDown, HighErrorRatio and HighLatencyP95 from the app's scrape job."""
    job_sel = _selector(("job", "=", target.metrics_job), ("namespace", "=", target.namespace))
    return [
        rule(
            "TargetDown",
            f"(sum by (job, namespace) (up{job_sel}) == 0)\nor\nabsent(up{job_sel})",
            t.target_down_for,
            "{{ $labels.namespace }}/{{ $labels.job }}: no scrape target is up",
            "Every scrape target of job {{ $labels.job }} in namespace {{ $labels.namespace }} "
            f"has been down or missing from service discovery for {t.target_down_for}.",
        ),
        rule(
            "HighErrorRatio",
            f"job:http_request_errors:ratio_rate5m{job_sel} > {_num(t.error_ratio)}",
            t.error_ratio_for,
            "{{ $labels.namespace }}/{{ $labels.job }}: high HTTP 5xx ratio",
            "{{ $value | humanizePercentage }} of the requests to job {{ $labels.job }} in "
            "namespace {{ $labels.namespace }} failed with a 5xx over the last 5m "
            f"(threshold {_pct(t.error_ratio)}).",
        ),
        rule(
            "HighLatencyP95",
            f"job:http_request_duration_seconds:p95_5m{job_sel} > {_num(t.p95_latency_seconds)}",
            t.latency_for,
            "{{ $labels.namespace }}/{{ $labels.job }}: high p95 latency",
            "The p95 request duration of job {{ $labels.job }} in namespace "
            '{{ $labels.namespace }} is {{ $value | printf "%.3f" }}s over the last 5m '
            f"(threshold {_num(t.p95_latency_seconds)}s).",
        ),
    ]


def _container_alerts(
    target: RuleTarget, t: AlertThresholds, rule: RuleFactory
) -> list[dict[str, Any]]:
    """Memory, CPU throttling, restarts and crash loops of the app's container, in the pods of
    its workloads only (cAdvisor and kube-state-metrics series)."""
    ns = target.namespace
    pod_re = "|".join(_pod_pattern(w) for w in target.workloads)
    ctr = (("namespace", "=", ns), ("pod", "=~", pod_re), ("container", "=", target.container))
    ctr_sel = _selector(*ctr)
    by_ctr = "max by (namespace, pod, container)"
    sum_ctr = "sum by (namespace, pod, container)"
    where_ctr = "container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }}"
    # Range vectors keep a deleted pod's samples (staleness ends instant lookups only): the
    # restart and crash-loop alerts hold only for containers kube-state-metrics reports now.
    restarts = f"kube_pod_container_status_restarts_total{ctr_sel}"
    still_there = f"and on (namespace, pod, container)\n{by_ctr} ({restarts})"
    return [
        rule(
            "MemoryNearLimit",
            (
                f"{by_ctr} (container_memory_working_set_bytes{ctr_sel})\n/\n"
                f"{by_ctr} (kube_pod_container_resource_limits"
                f"{_selector(*ctr, ('resource', '=', 'memory'))})\n"
                f"> {_num(t.memory_limit_ratio)}"
            ),
            t.memory_for,
            "{{ $labels.namespace }}/{{ $labels.pod }}: memory near limit",
            f"The working set of {where_ctr} is "
            "{{ $value | humanizePercentage }} of its memory limit "
            f"(threshold {_pct(t.memory_limit_ratio)}); it risks being OOM-killed.",
        ),
        rule(
            "CPUThrottling",
            (
                f"{sum_ctr} (rate(container_cpu_cfs_throttled_periods_total{ctr_sel}[5m]))\n/\n"
                f"{sum_ctr} (rate(container_cpu_cfs_periods_total{ctr_sel}[5m]))\n"
                f"> {_num(t.cpu_throttle_ratio)}"
            ),
            t.cpu_throttle_for,
            "{{ $labels.namespace }}/{{ $labels.pod }}: CPU throttled",
            f"{{{{ $value | humanizePercentage }}}} of the CFS periods of {where_ctr} were "
            f"throttled over the last 5m (threshold {_pct(t.cpu_throttle_ratio)}).",
        ),
        rule(
            "PodRestarting",
            f"{by_ctr} (increase({restarts}[1h]))\n>= {_num(t.restarts_per_hour)}\n{still_there}",
            t.restarts_for,
            "{{ $labels.namespace }}/{{ $labels.pod }}: container restarting",
            f'The {where_ctr} restarted {{{{ $value | printf "%.0f" }}}} times in the last hour '
            f"(threshold {t.restarts_per_hour}).",
        ),
        rule(
            "CrashLooping",
            (
                f"{by_ctr} (max_over_time(kube_pod_container_status_waiting_reason"
                f"{_selector(*ctr, ('reason', '=', 'CrashLoopBackOff'))}[5m]))\n>= 1\n"
                f"{still_there}"
            ),
            t.crashloop_for,
            "{{ $labels.namespace }}/{{ $labels.pod }}: container in CrashLoopBackOff",
            f"The {where_ctr} has been waiting in CrashLoopBackOff for {t.crashloop_for}.",
        ),
    ]


def _hpa_alerts(target: RuleTarget, t: AlertThresholds, rule: RuleFactory) -> list[dict[str, Any]]:
    """HPAAtMaxReplicas for the app's HPAs (none without autoscaling)."""
    if not target.hpas:
        return []
    ns = target.namespace
    hpa_sel = _selector(
        ("namespace", "=", ns), ("horizontalpodautoscaler", "=~", _alternatives(target.hpas))
    )
    by_hpa = "max by (namespace, horizontalpodautoscaler)"
    return [
        rule(
            "HPAAtMaxReplicas",
            (
                f"{by_hpa} (kube_horizontalpodautoscaler_status_current_replicas{hpa_sel})\n"
                f">=\n{by_hpa} (kube_horizontalpodautoscaler_spec_max_replicas{hpa_sel})\n"
                # An HPA whose min equals its max is always "at max": not worth an alert.
                f"and\n{by_hpa} (kube_horizontalpodautoscaler_spec_max_replicas{hpa_sel})\n"
                f"!=\n{by_hpa} (kube_horizontalpodautoscaler_spec_min_replicas{hpa_sel})"
            ),
            t.hpa_at_max_for,
            "{{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }}: HPA at max",
            "HPA {{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} has run at its "
            "maximum of {{ $value }} replicas for "
            f"{t.hpa_at_max_for}; the service cannot scale out further.",
        )
    ]


def _pdb_alerts(target: RuleTarget, t: AlertThresholds, rule: RuleFactory) -> list[dict[str, Any]]:
    """PDBNoDisruptionsAllowed for the app's PDBs (none with the PDB off)."""
    if not target.pdbs:
        return []
    ns = target.namespace
    pdb_sel = _selector(
        ("namespace", "=", ns), ("poddisruptionbudget", "=~", _alternatives(target.pdbs))
    )
    return [
        rule(
            "PDBNoDisruptionsAllowed",
            (
                "max by (namespace, poddisruptionbudget) "
                f"(kube_poddisruptionbudget_status_pod_disruptions_allowed{pdb_sel}) == 0"
            ),
            t.pdb_no_disruptions_for,
            "{{ $labels.namespace }}/{{ $labels.poddisruptionbudget }}: no disruptions allowed",
            "PodDisruptionBudget {{ $labels.namespace }}/{{ $labels.poddisruptionbudget }} "
            f"has allowed no voluntary disruption for {t.pdb_no_disruptions_for}; node drains "
            "and cluster upgrades will block.",
        )
    ]


RuleFactory = Callable[[str, str, str, str, str], dict[str, Any]]
"""(kind, expr, for, summary, description) -> one alerting rule."""


def _alternatives(names: Sequence[str]) -> str:
    """A PromQL regex alternation matching exactly `names` (DNS-1123 labels: no regex
    metacharacters, so nothing needs escaping; PromQL anchors the whole regex)."""
    return "|".join(names)


#: names.SimpleNameGenerator (k8s.io/apiserver): a generateName base is cut to 58 characters
#: before the 5 random characters are appended.
_GENERATE_NAME_BASE = 58
#: rand.SafeEncodeString of a uint32 in decimal: the pod-template hash has 1 to 10 characters.
_HASH_MAX = 10


def _pod_pattern(workload: str) -> str:
    """Regex of the pods of a Deployment or Rollout: the ReplicaSet controller names them
    `<workload>-<pod template hash>-<5 random>` (generateName `<ReplicaSet>-`). Anchored on
    both dashes (PromQL regexes are fully anchored), so `web` never matches the pods of a
    sibling `web-api`. When `<workload>-<hash>-` can exceed the 58-character generateName base,
    its tail (the second dash, then hash characters) may be cut."""
    if len(workload) + _HASH_MAX + 2 <= _GENERATE_NAME_BASE:
        return f"{workload}-[a-z0-9]{{1,{_HASH_MAX}}}-[a-z0-9]{{5}}"
    return f"{workload}-[a-z0-9]{{1,{_HASH_MAX}}}-?[a-z0-9]{{5}}"


def _deployment_alerts(target: RuleTarget, t: AlertThresholds, rule: RuleFactory) -> list[Any]:
    """RolloutStuck and ReplicasUnavailable from kube-state-metrics' Deployment series."""
    ns = target.namespace
    dep = ("deployment", "=~", _alternatives(target.workloads))
    dep_sel = _selector(("namespace", "=", ns), dep)
    by_dep = "max by (namespace, deployment)"
    progressing_false = _selector(
        ("namespace", "=", ns), dep, ("condition", "=", "Progressing"), ("status", "=", "false")
    )
    where = "Deployment {{ $labels.namespace }}/{{ $labels.deployment }}"
    return [
        rule(
            "RolloutStuck",
            (
                f"{by_dep} (kube_deployment_status_condition{progressing_false})\n== 1\nor\n"
                f"{by_dep} (kube_deployment_status_observed_generation{dep_sel})\n!=\n"
                f"{by_dep} (kube_deployment_metadata_generation{dep_sel})"
            ),
            t.rollout_stuck_for,
            f"{where}: rollout stuck",
            f"The rollout of {where} has not progressed for {t.rollout_stuck_for} "
            "(Progressing=false or the controller has not observed the latest generation).",
        ),
        rule(
            "ReplicasUnavailable",
            f"{by_dep} (kube_deployment_status_replicas_unavailable{dep_sel}) > 0",
            t.replicas_unavailable_for,
            f"{where}: replicas unavailable",
            f"{where} has had {{{{ $value }}}} unavailable replicas for "
            f"{t.replicas_unavailable_for}.",
        ),
    ]


#: Rollout phases (argo-rollouts controller/metrics/rollouts.go `calculatePhase`) that need a
#: human: the progress deadline passed, ReplicaSet creation failed, an analysis aborted the
#: release, or the spec is invalid. `Paused` is not among them: a blue-green Rollout waits for
#: its manual promotion by design.
STUCK_ROLLOUT_PHASES = ("Timeout", "Error", "Abort", "InvalidSpec")


def _rollout_series(metric: str, target: RuleTarget, *matchers: tuple[str, str, str]) -> str:
    """`metric` of the app's Rollout from the Argo Rollouts controller, with the Rollout's
    namespace in `namespace` and its name in `rollout`.

    The controller exports `namespace` and `name` of the Rollout. Scraped without
    `honorLabels` (the argo-rollouts Helm chart's ServiceMonitor), Prometheus keeps the
    controller's own namespace in `namespace` and renames the Rollout's to
    `exported_namespace`; with `honorLabels: true` it stays in `namespace`. Both are read.
    """
    name = ("name", "=~", _alternatives(target.workloads))
    exported = _selector(name, ("exported_namespace", "=", target.namespace), *matchers)
    honoured = _selector(
        name, ("namespace", "=", target.namespace), ("exported_namespace", "=", ""), *matchers
    )
    as_rollout = 'label_replace({}, "rollout", "$1", "name", "(.+)")'
    moved = f'label_replace({metric}{exported}, "namespace", "$1", "exported_namespace", "(.+)")'
    return f"{as_rollout.format(moved)}\nor\n{as_rollout.format(metric + honoured)}"


def _argo_rollout_alerts(target: RuleTarget, t: AlertThresholds, rule: RuleFactory) -> list[Any]:
    """RolloutStuck and ReplicasUnavailable from the Argo Rollouts controller's metrics."""
    where = "Rollout {{ $labels.namespace }}/{{ $labels.rollout }}"
    stuck = ("phase", "=~", "|".join(STUCK_ROLLOUT_PHASES))
    return [
        rule(
            "RolloutStuck",
            (
                "max by (namespace, rollout, phase) (\n"
                f"{_rollout_series('rollout_info', target, stuck)}\n) == 1"
            ),
            t.rollout_stuck_for,
            f"{where}: rollout stuck",
            f"{where} has been in phase {{{{ $labels.phase }}}} for {t.rollout_stuck_for} "
            "(progress deadline exceeded, aborted by an analysis, or an invalid spec).",
        ),
        rule(
            "ReplicasUnavailable",
            (
                "max by (namespace, rollout) (\n"
                f"{_rollout_series('rollout_info_replicas_unavailable', target)}\n) > 0"
            ),
            t.replicas_unavailable_for,
            f"{where}: replicas unavailable",
            f"{where} has had {{{{ $value }}}} unavailable replicas for "
            f"{t.replicas_unavailable_for}.",
        ),
    ]


def app_rule_groups(
    target: RuleTarget,
    thresholds: AlertThresholds,
    severity_overrides: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The `spec.groups` of the service's PrometheusRule: `<app>.recording` and `<app>.alerts`.

    `severity_overrides` maps an alert kind (`"HighLatencyP95"`) or full alert name
    (`"WebHighLatencyP95"`) to `critical` or `warning`; unknown names raise ValueError.
    """
    severities = _resolve_severities(target.app, severity_overrides)
    return [
        {"name": f"{target.app}.recording", "rules": _recording_rules(target)},
        {"name": f"{target.app}.alerts", "rules": _alerting_rules(target, thresholds, severities)},
    ]


# The selectors the dashboards share with the alerts (components/monitoring/dashboard_queries.py),
# so a panel and the alert beside it read exactly the same series.
selector = _selector
pod_pattern = _pod_pattern
alternatives = _alternatives
rollout_series = _rollout_series
