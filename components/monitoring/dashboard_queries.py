"""What the Grafana dashboards show, as plain data: one dashboard per app (traffic, errors,
latency, saturation, SLO burn, rollout state, alerts) and one per stack (every app of the
namespace side by side). No pulumi, no Grafana types: components/monitoring/dashboards.py turns
a `DashboardSpec` (components/monitoring/dashboard_model.py) into Grafana's dashboard JSON
model.

Every query reads only series that exist where the stack's rules run:
* the app's own metrics (app/server/metrics.py): `http_requests_total`,
  `http_request_duration_seconds_bucket`, `http_requests_in_flight`, `app_build_info`;
* the recording rules the app's PrometheusRule renders (`job:...`, alert_rules / slo_rules);
* the cluster series the rendered alerts already read (cAdvisor, kube-state-metrics, the Argo
  Rollouts controller), through the same selectors as those alerts (`alert_rules.selector` ...);
* `ALERTS`, the series Prometheus itself writes for every pending or firing alert.
A query over series that exist only while something fails (5xx responses, firing alerts) ends in
`or vector(0)`, so its panel shows 0 instead of "No data" when all is well.
"""

from __future__ import annotations

import re

from components.monitoring import alert_rules, slo_rules
from components.monitoring.alert_model import AlertThresholds, RuleTarget
from components.monitoring.dashboard_model import (
    BURN_WINDOWS,
    AppView,
    DashboardSpec,
    PanelSpec,
    Query,
    RowSpec,
    app_uid,
    or_zero,
    stack_uid,
)


def _job(target: RuleTarget, *extra: tuple[str, str, str]) -> str:
    return alert_rules.selector(
        ("job", "=", target.metrics_job), ("namespace", "=", target.namespace), *extra
    )


def _traffic(target: RuleTarget) -> RowSpec:
    sel = _job(target)
    return RowSpec(
        "Traffic",
        (
            PanelSpec(
                "Requests per second",
                "timeseries",
                "reqps",
                (
                    Query(f"job:http_requests:rate5m{sel}", "all routes"),
                    Query(f"sum by (path) (rate(http_requests_total{sel}[5m]))", "{{path}}"),
                ),
                "Every answered request (probes included), 5m rate, total and by route.",
            ),
            PanelSpec(
                "Responses by status code",
                "timeseries",
                "reqps",
                (Query(f"sum by (code) (rate(http_requests_total{sel}[5m]))", "{{code}}"),),
                "Responses per second by HTTP status code, 5m rate.",
            ),
        ),
    )


def _errors(target: RuleTarget, t: AlertThresholds) -> RowSpec:
    sel = _job(target)
    errors = _job(target, ("code", "=~", "5.."))
    return RowSpec(
        "Errors",
        (
            PanelSpec(
                "5xx ratio",
                "timeseries",
                "percentunit",
                (Query(f"job:http_request_errors:ratio_rate5m{sel}", "5xx / all"),),
                "Share of responses that are 5xx over 5m: the HighErrorRatio alert's series "
                "and threshold.",
                t.error_ratio,
            ),
            PanelSpec(
                "5xx per second",
                "timeseries",
                "reqps",
                (Query(or_zero(f"sum(rate(http_requests_total{errors}[5m]))"), "5xx"),),
                "5xx responses per second, 5m rate (0 when there are none).",
            ),
        ),
    )


def _latency(target: RuleTarget, t: AlertThresholds) -> RowSpec:
    sel = _job(target)
    buckets = f"job:http_request_duration_seconds_bucket:rate5m{sel}"
    return RowSpec(
        "Latency",
        (
            PanelSpec(
                "Request duration",
                "timeseries",
                "s",
                (
                    Query(f"histogram_quantile(0.5, {buckets})", "p50"),
                    Query(f"job:http_request_duration_seconds:p95_5m{sel}", "p95"),
                    Query(f"histogram_quantile(0.99, {buckets})", "p99"),
                ),
                "Request duration quantiles over 5m; the line is the HighLatencyP95 threshold.",
                t.p95_latency_seconds,
            ),
            PanelSpec(
                "p95 by route",
                "timeseries",
                "s",
                (
                    Query(
                        "histogram_quantile(0.95, sum by (path, le) "
                        f"(rate(http_request_duration_seconds_bucket{sel}[5m])))",
                        "{{path}}",
                    ),
                ),
                "p95 request duration per route template over 5m.",
            ),
        ),
    )


def _saturation(target: RuleTarget, t: AlertThresholds) -> RowSpec:
    pods = "|".join(alert_rules.pod_pattern(w) for w in target.workloads)
    ctr = (
        ("namespace", "=", target.namespace),
        ("pod", "=~", pods),
        ("container", "=", target.container),
    )
    ctr_sel = alert_rules.selector(*ctr)
    limit_sel = alert_rules.selector(*ctr, ("resource", "=", "memory"))
    by_pod = "max by (pod)"
    return RowSpec(
        "Saturation",
        (
            PanelSpec(
                "Requests in flight",
                "timeseries",
                "short",
                (Query(f"sum(http_requests_in_flight{_job(target)})", "in flight"),),
                "Requests being handled right now, over every pod.",
            ),
            PanelSpec(
                "Memory working set / limit",
                "timeseries",
                "percentunit",
                (
                    Query(
                        f"{by_pod} (container_memory_working_set_bytes{ctr_sel})\n/\n"
                        f"{by_pod} (kube_pod_container_resource_limits{limit_sel})",
                        "{{pod}}",
                    ),
                ),
                "Working set of the app container per pod over its memory limit "
                "(cAdvisor, kube-state-metrics); the line is MemoryNearLimit's threshold.",
                t.memory_limit_ratio,
            ),
            PanelSpec(
                "CPU throttled periods",
                "timeseries",
                "percentunit",
                (
                    Query(
                        f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{ctr_sel}"
                        f"[5m]))\n/\nsum by (pod) (rate(container_cpu_cfs_periods_total{ctr_sel}"
                        "[5m]))",
                        "{{pod}}",
                    ),
                ),
                "Share of CFS periods throttled per pod over 5m (cAdvisor); the line is "
                "CPUThrottling's threshold.",
                t.cpu_throttle_ratio,
            ),
            PanelSpec(
                "Container restarts (1h)",
                "timeseries",
                "short",
                (
                    Query(
                        f"{by_pod} (increase(kube_pod_container_status_restarts_total{ctr_sel}"
                        "[1h]))",
                        "{{pod}}",
                    ),
                ),
                "Restarts of the app container per pod over the last hour (kube-state-metrics).",
                float(t.restarts_per_hour),
            ),
        ),
    )


def _slo(target: RuleTarget, slo: slo_rules.SloTarget) -> RowSpec:
    sel = _job(target, ("slo", "=", "availability"))
    probes = "|".join(re.escape(p) for p in slo_rules.PROBE_PATHS)
    users = _job(target, ("path", "!~", probes))
    user_errors = _job(target, ("path", "!~", probes), ("code", "=~", "5.."))
    budget = repr(slo.budget)
    burn_alerts = [slo_rules.slo_alert_name(target.app, speed) for speed in ("Fast", "Slow")]
    firing = alert_rules.selector(
        ("alertname", "=~", alert_rules.alternatives(burn_alerts)),
        ("namespace", "=", target.namespace),
        ("alertstate", "=", "firing"),
    )
    spent = (
        f"{or_zero(f'sum(increase(http_requests_total{user_errors}[30d]))')}\n/\n"
        f"sum(increase(http_requests_total{users}[30d]))"
    )
    return RowSpec(
        f"SLO: {slo.objective_percent:g}% availability",
        (
            PanelSpec(
                "Error budget burn rate",
                "timeseries",
                "short",
                tuple(
                    Query(f"{slo_rules.error_ratio_record(w)}{sel} / {budget}", w)
                    for w in BURN_WINDOWS
                ),
                "How fast the error budget goes per window (1 = exactly the budget in 30 days); "
                "the fast-burn page fires above 14.4 in both 1h and 5m.",
                slo_rules.BURN_RATES[0].factor,
            ),
            PanelSpec(
                "Error budget left (30d)",
                "stat",
                "percentunit",
                (Query(f"1 - (\n{spent}\n) / {budget}", "left"),),
                "Share of the 30-day error budget not yet spent by user requests (probes left "
                "out), from the app's counters.",
            ),
            PanelSpec(
                "Burn-rate alerts firing",
                "stat",
                "short",
                (Query(or_zero(f"count(ALERTS{firing})"), "firing"),),
                "ErrorBudgetFastBurn (page) and ErrorBudgetSlowBurn (ticket) alerts firing now.",
                1.0,
            ),
        ),
    )


def _workload_panels(target: RuleTarget) -> tuple[PanelSpec, ...]:
    ns = ("namespace", "=", target.namespace)
    if target.workload_kind == "Rollout":
        phase = alert_rules.rollout_series("rollout_info", target)
        unavailable = alert_rules.rollout_series("rollout_info_replicas_unavailable", target)
        return (
            PanelSpec(
                "Rollout phase",
                "timeseries",
                "short",
                (Query(f"max by (rollout, phase) (\n{phase}\n)", "{{rollout}} {{phase}}"),),
                "The Argo Rollout's phase (Healthy, Progressing, Paused, Degraded ...) from "
                "the Argo Rollouts controller.",
            ),
            PanelSpec(
                "Unavailable replicas",
                "timeseries",
                "short",
                (Query(f"max by (rollout) (\n{unavailable}\n)", "{{rollout}}"),),
                "Replicas of the Rollout that are not available.",
            ),
        )
    dep = alert_rules.selector(ns, ("deployment", "=~", alert_rules.alternatives(target.workloads)))
    by_dep = "max by (deployment)"
    return (
        PanelSpec(
            "Unavailable replicas",
            "timeseries",
            "short",
            (
                Query(
                    f"{by_dep} (kube_deployment_status_replicas_unavailable{dep})",
                    "{{deployment}}",
                ),
            ),
            "Replicas of each Deployment of the release strategy that are not available.",
        ),
        PanelSpec(
            "Generations not yet rolled out",
            "timeseries",
            "short",
            (
                Query(
                    f"{by_dep} (kube_deployment_metadata_generation{dep})\n-\n"
                    f"{by_dep} (kube_deployment_status_observed_generation{dep})",
                    "{{deployment}}",
                ),
            ),
            "Spec generations the Deployment controller has not observed yet (0 when settled).",
        ),
    )


def _rollout(target: RuleTarget) -> RowSpec:
    panels = [
        PanelSpec(
            "Pods per version",
            "timeseries",
            "short",
            (Query(f"count by (version) (app_build_info{_job(target)})", "{{version}}"),),
            "Scraped pods per APP_VERSION: two lines while a release is rolling out.",
        ),
        *_workload_panels(target),
    ]
    if target.hpas:
        hpa = alert_rules.selector(
            ("namespace", "=", target.namespace),
            ("horizontalpodautoscaler", "=~", alert_rules.alternatives(target.hpas)),
        )
        by_hpa = "max by (horizontalpodautoscaler)"
        panels.append(
            PanelSpec(
                "Autoscaler replicas",
                "timeseries",
                "short",
                (
                    Query(
                        f"{by_hpa} (kube_horizontalpodautoscaler_status_current_replicas{hpa})",
                        "current",
                    ),
                    Query(f"{by_hpa} (kube_horizontalpodautoscaler_spec_min_replicas{hpa})", "min"),
                    Query(f"{by_hpa} (kube_horizontalpodautoscaler_spec_max_replicas{hpa})", "max"),
                ),
                "The HPA's current replicas between its bounds (kube-state-metrics).",
            )
        )
    return RowSpec("Rollout", tuple(panels))


def _alerts(namespace: str, names: tuple[str, ...]) -> RowSpec:
    def count(state: str) -> str:
        sel = alert_rules.selector(
            ("alertname", "=~", alert_rules.alternatives(names)),
            ("namespace", "=", namespace),
            ("alertstate", "=", state),
        )
        return or_zero(f"count(ALERTS{sel})")

    return RowSpec(
        "Alerts",
        (
            PanelSpec(
                "Alerts firing",
                "stat",
                "short",
                (Query(count("firing"), "firing"),),
                "Alerts of this dashboard's rules firing now.",
                1.0,
            ),
            PanelSpec(
                "Alerts pending",
                "stat",
                "short",
                (Query(count("pending"), "pending"),),
                "Alerts whose condition holds but whose `for:` has not passed yet.",
                1.0,
            ),
        ),
    )


def app_dashboard(view: AppView) -> DashboardSpec:
    """The dashboard of one app."""
    target, t = view.target, view.thresholds
    rows = [_traffic(target), _errors(target, t), _latency(target, t), _saturation(target, t)]
    if view.slo is not None:
        rows.append(_slo(target, view.slo))
    rows += [_rollout(target), _alerts(target.namespace, view.alert_names)]
    return DashboardSpec(
        uid=app_uid(target.namespace, target.app),
        title=f"{target.app} ({target.namespace})",
        tags=("appstack", target.namespace, target.app),
        rows=tuple(rows),
        links=((f"{target.namespace} overview", stack_uid(target.namespace)),),
    )


def _stack_apps(namespace: str, views: tuple[AppView, ...]) -> RowSpec:
    ns = alert_rules.selector(("namespace", "=", namespace))
    jobs = alert_rules.alternatives(sorted(v.target.metrics_job for v in views))
    up = alert_rules.selector(("namespace", "=", namespace), ("job", "=~", jobs))
    return RowSpec(
        "Apps",
        (
            PanelSpec(
                "Requests per second",
                "timeseries",
                "reqps",
                (Query(f"job:http_requests:rate5m{ns}", "{{job}}"),),
                "Every app's requests per second, 5m rate.",
            ),
            PanelSpec(
                "5xx ratio",
                "timeseries",
                "percentunit",
                (Query(f"job:http_request_errors:ratio_rate5m{ns}", "{{job}}"),),
                "Every app's share of 5xx responses over 5m.",
            ),
            PanelSpec(
                "p95 latency",
                "timeseries",
                "s",
                (Query(f"job:http_request_duration_seconds:p95_5m{ns}", "{{job}}"),),
                "Every app's p95 request duration over 5m.",
            ),
            PanelSpec(
                "Scrape targets up",
                "timeseries",
                "short",
                (Query(f"sum by (job) (up{up})", "{{job}}"),),
                "Pods Prometheus scrapes successfully, per app (0: TargetDown).",
            ),
            PanelSpec(
                "Versions serving",
                "timeseries",
                "short",
                (Query(f"count by (job, version) (app_build_info{ns})", "{{job}} {{version}}"),),
                "Scraped pods per app and APP_VERSION.",
            ),
        ),
    )


def stack_dashboard(namespace: str, views: tuple[AppView, ...]) -> DashboardSpec:
    """The dashboard of the stack: every app of the namespace side by side."""
    names = tuple(sorted(name for v in views for name in v.alert_names))
    burn = tuple(
        Query(
            f"{slo_rules.error_ratio_record('1h')}"
            f"{_job(v.target, ('slo', '=', 'availability'))} / {v.slo.budget!r}",
            v.target.app,
        )
        for v in views
        if v.slo is not None
    )
    apps = _stack_apps(namespace, views)
    rows = [apps]
    if burn:
        rows.append(
            RowSpec(
                "SLO",
                (
                    PanelSpec(
                        "Error budget burn rate (1h)",
                        "timeseries",
                        "short",
                        burn,
                        "Each app's 1h burn rate of its availability error budget.",
                        slo_rules.BURN_RATES[0].factor,
                    ),
                ),
            )
        )
    rows.append(_alerts(namespace, names))
    return DashboardSpec(
        uid=stack_uid(namespace),
        title=f"appstack {namespace}",
        tags=("appstack", namespace),
        rows=tuple(rows),
        links=tuple(
            (f"{v.target.app}", app_uid(namespace, v.target.app))
            for v in sorted(views, key=lambda v: v.target.app)
        ),
    )
