"""prometheus-operator objects per app: a ServiceMonitor on the app's metrics Service and a
PrometheusRule with its recording rules and alerts (components/monitoring/alert_rules.py).

Only created when `appstack:monitoring.enabled` is true: they are CRD-backed
(monitoring.coreos.com/v1) and a cluster without the operator would reject them. There is no
typed Args class for CRDs in pulumi-kubernetes, so these use `apiextensions.CustomResource`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import cast

import pulumi
import pulumi_kubernetes as k8s

from components.app import release
from components.app.pod import CONTAINER
from components.config import AppConfig, Monitoring
from components.kube import labels
from components.monitoring import alert_rules, slo_rules
from components.monitoring.dashboard_model import AppView, DashboardSpec
from components.monitoring.dashboard_queries import app_dashboard, stack_dashboard
from components.monitoring.dashboards import dashboard_json

API_VERSION = "monitoring.coreos.com/v1"
#: The `for:` durations config sets (`appstack:monitoring.alerts.<name>For`): every
#: `AlertThresholds` field ending in `_for`.
FOR_DURATIONS: tuple[str, ...] = tuple(
    f.name for f in fields(alert_rules.AlertThresholds) if f.name.endswith("_for")
)
METRICS_COMPONENT = "metrics"


def thresholds(settings: Monitoring) -> alert_rules.AlertThresholds:
    """Alert thresholds from config (the environment defaults set them per environment)."""
    alerts = settings.alerts
    return alert_rules.AlertThresholds(
        error_ratio=alerts.error_ratio,
        p95_latency_seconds=alerts.p95_latency_seconds,
        memory_limit_ratio=alerts.memory_limit_ratio,
        cpu_throttle_ratio=alerts.cpu_throttle_ratio,
        restarts_per_hour=alerts.restarts_per_hour,
        **{name: getattr(alerts, name) for name in FOR_DURATIONS},
    )


def rule_target(
    app_name: str, namespace: str, app: AppConfig, settings: Monitoring
) -> alert_rules.RuleTarget:
    """What one app's rules are about, from the same release plan the AppService renders: every
    workload of the strategy (colours, canary track, the Rollout) and its kind, the HPAs and
    PDBs, and the container name of the pod template. The scrape job is the app name (the
    ServiceMonitor sets `jobLabel` to app.kubernetes.io/name)."""
    plan = release.plan(app_name, app)
    return alert_rules.RuleTarget(
        app=app_name,
        namespace=namespace,
        metrics_job=app_name,
        container=CONTAINER,
        workloads=tuple(w.name for w in plan.workloads),
        workload_kind="Rollout" if plan.argo else "Deployment",
        hpas=tuple(a.name for a in plan.autoscalers),
        pdbs=tuple(b.name for b in plan.budgets),
        runbook_base_url=settings.runbook_base_url,
    )


def rule_groups(
    app_name: str, namespace: str, app: AppConfig, settings: Monitoring
) -> list[dict[str, object]]:
    """The PrometheusRule `spec.groups` of one app (+ its availability SLO: slo_rules)."""
    return alert_rules.app_rule_groups(
        rule_target(app_name, namespace, app, settings), thresholds(settings)
    ) + slo_rules.slo_groups_for(
        app_name,
        namespace,
        app.slo,
        settings.runbook_base_url,
        {str(w): value for w, value in settings.alerts.slo_windows.items()},
    )


def alert_groups(
    app_name: str, namespace: str, app: AppConfig, settings: Monitoring, environment: str
) -> list[dict[str, object]]:
    """The PrometheusRule `spec.groups` as rendered: `rule_groups` with the labels an on-call
    person routes and reads by on every alert, `app` and `environment` (beside `severity`, and
    `namespace` and `job` from the series; the runbook is the `runbook_url` annotation)."""
    extra = {"app": app_name, "environment": environment}
    groups = rule_groups(app_name, namespace, app, settings)
    return [
        {
            **group,
            "rules": [
                {**rule, "labels": {**cast("dict[str, str]", rule["labels"]), **extra}}
                if "alert" in rule
                else rule
                for rule in cast("list[dict[str, object]]", group["rules"])
            ],
        }
        for group in groups
    ]


def app_view(app_name: str, namespace: str, app: AppConfig, settings: Monitoring) -> AppView:
    """What an app's dashboard shows, from the same render as its PrometheusRule: the rule
    target, the thresholds, the SLO and the name of every alert of the rule groups."""
    groups = rule_groups(app_name, namespace, app, settings)
    slo = (
        slo_rules.SloTarget(app_name, namespace, app.slo.availability, settings.runbook_base_url)
        if app.slo.enabled
        else None
    )
    return AppView(
        target=rule_target(app_name, namespace, app, settings),
        thresholds=thresholds(settings),
        slo=slo,
        alert_names=tuple(
            str(rule["alert"])
            for group in groups
            for rule in cast("list[dict[str, object]]", group["rules"])
            if "alert" in rule
        ),
    )


def dashboard_config_map(
    resource: str,
    name: str,
    spec: DashboardSpec,
    namespace: pulumi.Input[str],
    meta_labels: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.ConfigMap:
    """A dashboard as the Grafana sidecar loads it: one data key `<uid>.json` in a ConfigMap
    carrying the sidecar's label (components/monitoring/dashboards.py)."""
    return k8s.core.v1.ConfigMap(
        resource,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=meta_labels),
        data={f"{spec.uid}.json": dashboard_json(spec)},
        opts=opts,
    )


def service_monitor_spec(
    app_name: str, instance: str, namespace: str, app: AppConfig, settings: Monitoring
) -> dict[str, object]:
    """ServiceMonitor on the app's metrics Service. With Argo Rollouts the pods'
    `rollouts-pod-template-hash` label is copied onto every series (`podTargetLabels`), so the
    release analysis can measure the new pods alone."""
    spec: dict[str, object] = {
        "jobLabel": labels.NAME,
        "selector": {
            "matchLabels": {
                **labels.selector_labels(app_name, instance),
                labels.COMPONENT: METRICS_COMPONENT,
            }
        },
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [
            {
                "port": "metrics",
                "path": "/metrics",
                "scheme": "http",
                "interval": settings.scrape_interval,
            }
        ],
    }
    if app.release.argo_rollouts:
        spec["podTargetLabels"] = [release.ARGO_REVISION_LABEL]
    return spec


@dataclass(frozen=True)
class AppMonitoringArgs:
    """Inputs of one app's monitoring objects."""

    app: str
    """App name."""
    config: AppConfig
    """The app's settings (HPA/PDB presence decides which alerts exist)."""
    namespace: str
    """Namespace of the app (the rules filter on it)."""
    namespace_input: pulumi.Input[str]
    """The same namespace as an Output of the Namespace resource (orders creation after it)."""
    instance: str
    """app.kubernetes.io/instance label value."""
    settings: Monitoring
    """Monitoring config: Prometheus selector labels, interval, runbooks, thresholds."""
    environment: str
    """The stack's environment (appstack:environment): the `environment` label of its alerts."""


class AppMonitoring(pulumi.ComponentResource):
    """ServiceMonitor + PrometheusRule of one app."""

    def __init__(
        self, name: str, args: AppMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:monitoring:AppMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        app = args.app
        meta_labels = {
            **labels.standard_labels(app, args.instance, "monitoring"),
            **args.settings.prometheus_selector_labels,
        }
        monitor = k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor",
            api_version=API_VERSION,
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=labels.resource_name(app), namespace=args.namespace_input, labels=meta_labels
            ),
            spec=service_monitor_spec(
                app, args.instance, args.namespace, args.config, args.settings
            ),
            opts=child,
        )
        rule = k8s.apiextensions.CustomResource(
            f"{name}-prometheusrule",
            api_version=API_VERSION,
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=labels.resource_name(app), namespace=args.namespace_input, labels=meta_labels
            ),
            spec={
                "groups": alert_groups(
                    app, args.namespace, args.config, args.settings, args.environment
                )
            },
            opts=child,
        )
        if args.settings.dashboards.enabled:
            view = app_view(app, args.namespace, args.config, args.settings)
            dashboard_config_map(
                f"{name}-dashboard",
                labels.resource_name(app, "dashboard"),
                app_dashboard(view),
                args.namespace_input,
                {**meta_labels, **args.settings.dashboards.sidecar_labels},
                child,
            )
        # CustomResource has no typed metadata output; the names are ours, tied to each resource.
        obj_name = labels.resource_name(app)
        self.service_monitor_name: pulumi.Output[str] = monitor.urn.apply(lambda _: obj_name)
        self.prometheus_rule_name: pulumi.Output[str] = rule.urn.apply(lambda _: obj_name)
        self.register_outputs(
            {
                "service_monitor_name": self.service_monitor_name,
                "prometheus_rule_name": self.prometheus_rule_name,
            }
        )


#: Name of the stack dashboard's ConfigMap: every app's own ends in `-dashboard`, so no app name
#: can collide with it.
STACK_DASHBOARD_NAME = "appstack-overview"


@dataclass(frozen=True)
class StackDashboardArgs:
    """Inputs of the stack's dashboard."""

    apps: dict[str, AppConfig]
    """Every app of the stack, by name."""
    namespace: str
    """Namespace of the apps."""
    namespace_input: pulumi.Input[str]
    """The same namespace as an Output of the Namespace resource (orders creation after it)."""
    instance: str
    """app.kubernetes.io/instance label value."""
    settings: Monitoring
    """Monitoring config: thresholds, SLO runbooks, the sidecar's labels."""


class StackDashboard(pulumi.ComponentResource):
    """The stack's Grafana dashboard: every app of the namespace side by side."""

    def __init__(
        self, name: str, args: StackDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:monitoring:StackDashboard", name, None, opts)
        views = tuple(
            app_view(app, args.namespace, config, args.settings)
            for app, config in sorted(args.apps.items())
        )
        meta_labels = {
            **labels.standard_labels(STACK_DASHBOARD_NAME, args.instance, "monitoring"),
            **args.settings.dashboards.sidecar_labels,
        }
        config_map = dashboard_config_map(
            f"{name}-configmap",
            STACK_DASHBOARD_NAME,
            stack_dashboard(args.namespace, views),
            args.namespace_input,
            meta_labels,
            pulumi.ResourceOptions(parent=self),
        )
        # The name is ours, tied to the resource (as AppMonitoring's outputs).
        self.config_map_name: pulumi.Output[str] = config_map.urn.apply(
            lambda _: STACK_DASHBOARD_NAME
        )
        self.register_outputs({"config_map_name": self.config_map_name})
