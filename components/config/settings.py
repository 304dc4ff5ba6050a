"""Stack-wide settings: network facts, namespace quota and limits, monitoring."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from appstack_grammar import prometheus_duration_seconds
from components.config.app import (
    ResourceList,
)
from components.config.base import (
    DNS1123,
    Cidr,
    HttpUrl,
    LabelKey,
    LabelValue,
    Model,
    PrometheusDuration,
    SecretKey,
    SubdomainName,
)


class PipelineAgents(Model):
    """CI agent pods that verify this stack's apps at their cluster address (the pipeline's
    `stackctl verify` from a Jenkins agent in the same cluster): one peer, namespace AND pod
    labels (NetworkPolicyPeer with both selectors)."""

    namespace: DNS1123
    """Namespace of the agent pods (appstack:jenkins.namespace of the stack running Jenkins)."""
    pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "jenkins-agent"}, min_length=1
    )
    """Labels of the agent pods (components/jenkins/agents.py agent_pod_labels)."""


class NetworkSettings(Model):
    """Where traffic comes from and goes to, cluster-wide."""

    ingress_controller_namespace: DNS1123 = "ingress-nginx"
    """Namespace of the ingress controller allowed to reach ClusterIP services."""
    monitoring_namespace: DNS1123 = "monitoring"
    """Namespace of Prometheus, allowed to scrape the metrics port."""
    dns_namespace: DNS1123 = "kube-system"
    """Namespace of the cluster DNS."""
    dns_pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"k8s-app": "kube-dns"}
    )
    """Labels of the cluster DNS pods."""
    pipeline_agents: list[PipelineAgents] = Field(default_factory=list)
    """CI agents allowed to reach every app's HTTP port (ClusterIP apps verified in-cluster by
    a Jenkins agent: docs/ci.md, "Network paths of the pipeline")."""
    api_server_cidrs: list[Cidr] = Field(default_factory=list)
    """Addresses the Kubernetes API server connects to pods from: an app reachable only inside
    the cluster (no Ingress, ClusterIP) admits them on its port, so `stackctl verify` can
    check it through the API server's service proxy from outside (stackctl/ops/api_proxy.py)."""


class NamespaceQuota(Model):
    """ResourceQuota derived from the apps' worst case (max replicas + surge)."""

    enabled: bool = True
    """Create a ResourceQuota."""
    headroom_percent: int = Field(default=25, ge=0, le=500)
    """Extra room above the computed worst case."""


class LimitRangeSettings(Model):
    """LimitRange defaults for containers that declare nothing."""

    default_request: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="50m", memory="64Mi", ephemeral_storage="32Mi")
    )
    """Requests applied when a container sets none."""
    default_limit: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="500m", memory="256Mi", ephemeral_storage="256Mi")
    )
    """Limits applied when a container sets none."""


#: The windows of the SLO burn-rate alerts (SRE workbook table 5-8), each as the (long, short)
#: pair of one burn rate; components/monitoring/slo_rules.py BURN_RATES holds the same pairs.
SLO_WINDOW_PAIRS: tuple[tuple[str, str], ...] = (
    ("1h", "5m"),
    ("6h", "30m"),
    ("1d", "2h"),
    ("3d", "6h"),
)
SloWindow = Literal["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
"""A window of the SLO recording rules (slo_rules.WINDOWS)."""


class AlertSettings(Model):
    """Alert thresholds (per environment through the environment defaults)."""

    error_ratio: float = Field(default=0.05, gt=0, le=1)
    """Alert when 5xx / all requests over 5m exceeds this."""
    p95_latency_seconds: float = Field(default=0.5, gt=0)
    """Alert when p95 latency over 5m exceeds this."""
    memory_limit_ratio: float = Field(default=0.9, gt=0, le=1)
    """Alert when working set / memory limit exceeds this."""
    cpu_throttle_ratio: float = Field(default=0.25, gt=0, le=1)
    """Alert when throttled / total CFS periods exceeds this."""
    restarts_per_hour: int = Field(default=3, ge=1)
    """Alert when a container restarts more often than this in an hour."""
    # How long each condition must hold before its alert fires (the rule's `for:`). The
    # defaults are the production values; a test stack may shorten them here, never in code.
    error_ratio_for: PrometheusDuration = "5m"
    """`for:` of <App>HighErrorRatio."""
    latency_for: PrometheusDuration = "10m"
    """`for:` of <App>HighLatencyP95."""
    memory_for: PrometheusDuration = "15m"
    """`for:` of <App>MemoryNearLimit."""
    cpu_throttle_for: PrometheusDuration = "15m"
    """`for:` of <App>CPUThrottling."""
    restarts_for: PrometheusDuration = "5m"
    """`for:` of <App>PodRestarting."""
    crashloop_for: PrometheusDuration = "15m"
    """`for:` of <App>CrashLooping."""
    target_down_for: PrometheusDuration = "5m"
    """`for:` of <App>TargetDown."""
    hpa_at_max_for: PrometheusDuration = "15m"
    """`for:` of <App>HPAAtMaxReplicas."""
    rollout_stuck_for: PrometheusDuration = "15m"
    """`for:` of <App>RolloutStuck."""
    replicas_unavailable_for: PrometheusDuration = "15m"
    """`for:` of <App>ReplicasUnavailable."""
    pdb_no_disruptions_for: PrometheusDuration = "1h"
    """`for:` of <App>PDBNoDisruptionsAllowed."""
    slo_windows: dict[SloWindow, PrometheusDuration] = Field(default_factory=dict)
    """Shortened SLO burn-rate windows (a test stack's; never shorten prod's): each SRE
    workbook window (5m, 30m, 1h, 2h, 6h, 1d, 3d) mapped to the range its recording rule reads
    instead (the record keeps the workbook window's name). Empty (default): the workbook's."""

    @model_validator(mode="after")
    def _short_windows_stay_shorter(self) -> AlertSettings:
        ranges: dict[str, str] = {w: w for pair in SLO_WINDOW_PAIRS for w in pair}
        ranges.update({str(w): value for w, value in self.slo_windows.items()})
        for window, value in ranges.items():
            if prometheus_duration_seconds(value) <= 0:
                raise PydanticCustomError(
                    "slo_window",
                    "sloWindows.{window} must be longer than 0, got {value}",
                    {"window": window, "value": value},
                )
        for long, short in SLO_WINDOW_PAIRS:
            if prometheus_duration_seconds(ranges[short]) >= prometheus_duration_seconds(
                ranges[long]
            ):
                raise PydanticCustomError(
                    "slo_window",
                    "sloWindows: the short window {short} ({short_range}) of a burn rate must "
                    "stay shorter than its long window {long} ({long_range})",
                    {
                        "short": short,
                        "short_range": ranges[short],
                        "long": long,
                        "long_range": ranges[long],
                    },
                )
        return self


class Dashboards(Model):
    """Grafana dashboards (components/monitoring/dashboards.py) as ConfigMaps in the apps'
    namespace, loaded by the Grafana sidecar of kube-prometheus-stack (docs/slo.md)."""

    enabled: bool = True
    """Render a dashboard per app and one for the stack (only with monitoring.enabled)."""
    sidecar_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"}, min_length=1
    )
    """Labels the Grafana sidecar selects dashboard ConfigMaps by (kube-prometheus-stack values
    `grafana.sidecar.dashboards.label` / `labelValue`: grafana_dashboard "1")."""


class AlertRouting(Model):
    """Alertmanager routing of the stack's alerts: one AlertmanagerConfig in the apps' namespace
    (components/monitoring/routing.py), a webhook receiver per severity, each URL read from a
    Secret that ops create in the apps' namespace (never in the stack files)."""

    enabled: bool = False
    """Render the AlertmanagerConfig (needs appstack:monitoring.enabled and the Secret)."""
    webhook_secret: SubdomainName = "alertmanager-webhooks"
    """Secret in the apps' namespace holding the receivers' webhook URLs."""
    critical_key: SecretKey = "critical"
    """Key of the Secret with the URL that gets `severity: critical` alerts (pages)."""
    warning_key: SecretKey = "warning"
    """Key of the Secret with the URL that gets `severity: warning` alerts (tickets)."""
    group_wait: PrometheusDuration = "30s"
    """How long a new group of alerts waits for more before the first notification."""
    group_interval: PrometheusDuration = "5m"
    """How long before a group that changed is notified again."""
    repeat_interval: PrometheusDuration = "4h"
    """How long before an unchanged firing group is notified again."""


class Monitoring(Model):
    """prometheus-operator objects; off by default because the CRDs may be missing."""

    enabled: bool = False
    """Create ServiceMonitor and PrometheusRule objects (needs the prometheus-operator CRDs)."""
    prometheus_selector_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"}
    )
    """Labels the cluster's Prometheus selects ServiceMonitors and rules by."""
    scrape_interval: PrometheusDuration = "30s"
    """Scrape interval."""
    runbook_base_url: HttpUrl = "https://runbooks.example.com/appstack"
    """Base of every alert's runbook_url."""
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    """Alert thresholds."""
    dashboards: Dashboards = Field(default_factory=Dashboards)
    """Grafana dashboards (ConfigMaps for the Grafana sidecar)."""
    alert_routing: AlertRouting = Field(default_factory=AlertRouting)
    """Alertmanager routes of the stack's alerts (an AlertmanagerConfig), off by default."""
