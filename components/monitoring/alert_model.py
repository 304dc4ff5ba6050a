"""What an app's alerts are about and how sensitive they are: `AlertThresholds` (durations
and ratios), `RuleTarget` (the app's job, namespace, container, workloads, HPAs, PDBs, from
the render) and the alert severities. Plain Python, no pulumi
(components/monitoring/alert_rules.py)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

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
    render: `components.monitoring.component.rule_target`)."""

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
