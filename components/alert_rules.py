"""Alerting and recording rules for one appstack service, as plain Python data.

`app_rule_groups()` returns the `spec.groups` list of a prometheus-operator PrometheusRule; the
same list under a top-level `groups:` key (see `rules_file()`) is a standalone Prometheus rules
file that `promtool check rules` / `promtool test rules` accept. Nothing here imports pulumi: the
component that creates the PrometheusRule passes the returned list through unchanged.

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

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import yaml

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

#: Severities an alert may carry (the `severity` label Alertmanager routes on).
SEVERITIES: frozenset[str] = frozenset({"critical", "warning"})

#: Every alert kind this module can emit, with its default severity. The emitted alert name is
#: `<App><Kind>`, e.g. `WebApiHighErrorRatio`.
DEFAULT_SEVERITIES: Mapping[str, str] = {
    "TargetDown": "critical",
    "HighErrorRatio": "critical",
    "HighLatencyP95": "warning",
    "MemoryNearLimit": "warning",
    "CPUThrottling": "warning",
    "PodRestarting": "warning",
    "CrashLooping": "critical",
    "HPAAtMaxReplicas": "warning",
    "RolloutStuck": "warning",
    "ReplicasUnavailable": "warning",
    "PDBNoDisruptionsAllowed": "warning",
}

#: Alert kinds in the order they appear in the `<app>.alerts` group.
ALERT_KINDS: tuple[str, ...] = tuple(DEFAULT_SEVERITIES)

# Prometheus duration syntax (model.ParseDuration): units in descending order, each at most once.
_DURATION_RE = re.compile(
    r"^(?:0|(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?)$"
)
# Kubernetes DNS-1123 label (Deployment/Service/namespace names used as app and namespace).
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_METRIC_TOKEN_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_HISTOGRAM_SUFFIX_RE = re.compile(r"_(bucket|count|sum)$")


def _is_duration(value: object) -> bool:
    return isinstance(value, str) and value != "" and _DURATION_RE.match(value) is not None


@dataclass(frozen=True)
class AlertThresholds:
    """Thresholds and `for` durations of the per-app alerts. Every field has a sane default."""

    #: HighErrorRatio fires above this share of 5xx responses among all requests (5m rate).
    error_ratio: float = 0.05
    #: How long the error ratio must stay above `error_ratio` before HighErrorRatio fires.
    error_ratio_for: str = "5m"
    #: HighLatencyP95 fires when the 5m p95 request duration exceeds this many seconds.
    p95_latency_seconds: float = 0.5
    #: How long p95 latency must stay above `p95_latency_seconds` before HighLatencyP95 fires.
    latency_for: str = "10m"
    #: MemoryNearLimit fires above this container working set / memory limit ratio.
    memory_limit_ratio: float = 0.9
    #: How long memory must stay above `memory_limit_ratio` before MemoryNearLimit fires.
    memory_for: str = "15m"
    #: CPUThrottling fires above this share of throttled CFS periods (5m rate).
    cpu_throttle_ratio: float = 0.25
    #: How long throttling must stay above `cpu_throttle_ratio` before CPUThrottling fires.
    cpu_throttle_for: str = "15m"
    #: PodRestarting fires when a container restarted at least this many times in the last hour.
    restarts_per_hour: int = 3
    #: How long the restart count must stay at/above `restarts_per_hour` before PodRestarting fires.
    restarts_for: str = "5m"
    #: How long a container must be seen in CrashLoopBackOff before CrashLooping fires.
    crashloop_for: str = "15m"
    #: How long every scrape target may be down or missing before TargetDown fires.
    target_down_for: str = "5m"
    #: How long the HPA may sit at its max replicas before HPAAtMaxReplicas fires.
    hpa_at_max_for: str = "15m"
    #: How long a rollout may be stalled (not progressing / generation lag) before RolloutStuck.
    rollout_stuck_for: str = "15m"
    #: How long replicas may be unavailable before ReplicasUnavailable fires.
    replicas_unavailable_for: str = "15m"
    #: How long the PDB may allow zero disruptions before PDBNoDisruptionsAllowed fires.
    pdb_no_disruptions_for: str = "1h"

    def __post_init__(self) -> None:
        for name in ("error_ratio", "memory_limit_ratio", "cpu_throttle_ratio"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not 0 < value <= 1
            ):
                raise ValueError(f"AlertThresholds.{name} must be a ratio in (0, 1], got {value!r}")
        latency = self.p95_latency_seconds
        if (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or latency <= 0
        ):
            raise ValueError(
                "AlertThresholds.p95_latency_seconds must be a finite number of seconds > 0, "
                f"got {latency!r}"
            )
        restarts = self.restarts_per_hour
        if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
            raise ValueError(
                f"AlertThresholds.restarts_per_hour must be an integer >= 1, got {restarts!r}"
            )
        for field in fields(self):
            if field.name.endswith("_for"):
                value = getattr(self, field.name)
                if not _is_duration(value):
                    raise ValueError(
                        f"AlertThresholds.{field.name} must be a Prometheus duration "
                        f"such as '5m' or '1h30m', got {value!r}"
                    )


WORKLOAD_KINDS: frozenset[str] = frozenset({"Deployment", "Rollout"})
"""Kinds of workload an app runs as: apps/v1 Deployments or one argoproj.io/v1alpha1 Rollout."""


@dataclass(frozen=True)
class RuleTarget:
    """The Kubernetes objects and scrape job one service's rules are about (read from the
    render: `components.monitoring.rule_target`)."""

    #: App name: alert-name prefix and rule-group names (DNS-1123 label).
    app: str
    #: Namespace the workloads, Services, HPAs and PDBs live in.
    namespace: str
    #: The `job` label Prometheus gives the scraped targets (ServiceMonitor `jobLabel`).
    metrics_job: str
    #: Name of the app's container in the pod spec (the container-scoped alerts select it).
    container: str
    #: Names of every workload that runs the app's pods (colours, canary track, the Rollout).
    workloads: tuple[str, ...]
    #: Kind of those workloads: "Deployment" or "Rollout".
    workload_kind: str
    #: HPAs of the app (none: no HPAAtMaxReplicas alert).
    hpas: tuple[str, ...]
    #: PodDisruptionBudgets of the app (none: no PDBNoDisruptionsAllowed alert).
    pdbs: tuple[str, ...]
    #: Runbook base URL; each alert's runbook_url is f"{runbook_base_url}/{AlertName}".
    runbook_base_url: str

    def __post_init__(self) -> None:
        for name in ("app", "namespace", "container"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL_RE.match(value):
                raise ValueError(f"RuleTarget.{name} must be a DNS-1123 label, got {value!r}")
        job = self.metrics_job
        if not isinstance(job, str) or job == "" or any(c in job for c in '"\\\n'):
            raise ValueError(
                "RuleTarget.metrics_job must be a non-empty string without quotes, backslashes "
                f"or newlines, got {job!r}"
            )
        if self.workload_kind not in WORKLOAD_KINDS:
            raise ValueError(
                f"RuleTarget.workload_kind must be one of {sorted(WORKLOAD_KINDS)}, "
                f"got {self.workload_kind!r}"
            )
        if not self.workloads:
            raise ValueError(
                f"RuleTarget.workloads must name at least one workload, got {self.workloads!r}"
            )
        for name in ("workloads", "hpas", "pdbs"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or any(
                not isinstance(v, str) or len(v) > 63 or not _DNS_LABEL_RE.match(v) for v in values
            ):
                raise ValueError(
                    f"RuleTarget.{name} must be a tuple of DNS-1123 labels, got {values!r}"
                )
        url = self.runbook_base_url
        if (
            not isinstance(url, str)
            or not re.match(r"^https?://[^\s/]+", url)
            or any(c.isspace() for c in url)
        ):
            raise ValueError(
                f"RuleTarget.runbook_base_url must be an http(s) URL without spaces, got {url!r}"
            )


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
    app, ns = target.app, target.namespace
    job_sel = _selector(("job", "=", target.metrics_job), ("namespace", "=", ns))
    pod_re = "|".join(_pod_pattern(w) for w in target.workloads)
    ctr = (("namespace", "=", ns), ("pod", "=~", pod_re), ("container", "=", target.container))
    ctr_sel = _selector(*ctr)
    by_ctr = "max by (namespace, pod, container)"
    sum_ctr = "sum by (namespace, pod, container)"
    where_ctr = "container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }}"

    def rule(kind: str, expr: str, for_: str, summary: str, description: str) -> dict[str, Any]:
        return _alert(
            alert_name(app, kind),
            expr,
            for_,
            severities[kind],
            summary,
            description,
            target.runbook_base_url,
        )

    rules = [
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
            (
                f"{by_ctr} (increase(kube_pod_container_status_restarts_total{ctr_sel}[1h]))\n"
                f">= {_num(t.restarts_per_hour)}"
            ),
            t.restarts_for,
            "{{ $labels.namespace }}/{{ $labels.pod }}: container restarting",
            f'The {where_ctr} restarted {{{{ $value | printf "%.0f" }}}} times in the last hour '
            f"(threshold {t.restarts_per_hour}).",
        ),
        rule(
            "CrashLooping",
            (
                f"{by_ctr} (max_over_time(kube_pod_container_status_waiting_reason"
                f"{_selector(*ctr, ('reason', '=', 'CrashLoopBackOff'))}[5m]))\n>= 1"
            ),
            t.crashloop_for,
            "{{ $labels.namespace }}/{{ $labels.pod }}: container in CrashLoopBackOff",
            f"The {where_ctr} has been waiting in CrashLoopBackOff for {t.crashloop_for}.",
        ),
    ]
    if target.hpas:
        hpa_sel = _selector(
            ("namespace", "=", ns), ("horizontalpodautoscaler", "=~", _alternatives(target.hpas))
        )
        by_hpa = "max by (namespace, horizontalpodautoscaler)"
        rules.append(
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
        )
    if target.workload_kind == "Rollout":
        rules.extend(_argo_rollout_alerts(target, t, rule))
    else:
        rules.extend(_deployment_alerts(target, t, rule))
    if target.pdbs:
        pdb_sel = _selector(
            ("namespace", "=", ns), ("poddisruptionbudget", "=~", _alternatives(target.pdbs))
        )
        rules.append(
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
        )
    return rules


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


_GROUP_KEY_ORDER = ("name", "interval", "limit", "rules")
_RULE_KEY_ORDER = ("record", "alert", "expr", "for", "labels", "annotations")


def _ordered(mapping: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    rank = {key: i for i, key in enumerate(order)}
    keys = sorted(mapping, key=lambda k: (rank.get(k, len(order)), k))
    return {key: mapping[key] for key in keys}


def _canonical_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    out = _ordered(rule, _RULE_KEY_ORDER)
    for key in ("labels", "annotations"):
        if isinstance(out.get(key), Mapping):
            out[key] = dict(sorted(out[key].items()))
    return out


class _RulesDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (PromQL) as literal `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_RulesDumper.add_representer(str, _represent_str)


def rules_file(groups: Iterable[Mapping[str, Any]]) -> str:
    """A Prometheus rules file (`groups:`) with a fixed key order, for promtool or a ConfigMap."""
    doc = {
        "groups": [
            {
                **_ordered(group, _GROUP_KEY_ORDER),
                "rules": [_canonical_rule(rule) for rule in group.get("rules", [])],
            }
            for group in groups
        ]
    }
    return yaml.dump(
        doc, Dumper=_RulesDumper, sort_keys=False, default_flow_style=False, width=1000
    )


def _strip_non_metric_text(expr: str) -> str:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    expr = re.sub(r"\{[^{}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range / subquery durations
    # label lists of aggregations and vector matching
    return re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)


_PROMQL_WORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
)


def referenced_metric_names(groups: Iterable[Mapping[str, Any]]) -> set[str]:
    """Metric names the rule expressions read that the groups do not record themselves.

    Function names, keywords, label names/values and durations are ignored; names recorded by a
    `record:` rule of `groups` (`job:...`) are left out, so what remains must be scraped.
    """
    groups = list(groups)
    recorded = {
        rule["record"] for group in groups for rule in group.get("rules", []) if "record" in rule
    }
    names: set[str] = set()
    for group in groups:
        for rule in group.get("rules", []):
            text = _strip_non_metric_text(str(rule.get("expr", "")))
            for match in _METRIC_TOKEN_RE.finditer(text):
                token = match.group()
                rest = text[match.end() :].lstrip()
                if rest.startswith("(") or token.lower() in _PROMQL_WORDS:
                    continue  # function call or keyword
                before = text[: match.start()]
                if before and (before[-1].isdigit() or before[-1] == "."):
                    continue  # exponent/suffix of a number literal, e.g. 1e5
                names.add(token)
    return names - recorded


def metric_names_used(groups: Iterable[Mapping[str, Any]]) -> set[str]:
    """Base names of the app-exported metrics (`http_*`) the rules read.

    Histogram series suffixes (`_bucket`, `_count`, `_sum`) are stripped, so the result for
    `app_rule_groups()` is `{"http_requests_total", "http_request_duration_seconds"}`; recorded
    series (`job:...`) and cluster metrics (cAdvisor, kube-state-metrics, `up`) are excluded.
    """
    return {
        _HISTOGRAM_SUFFIX_RE.sub("", name)
        for name in referenced_metric_names(groups)
        if name.startswith("http_")
    }
