"""Argo Rollouts specs of a release plan (plain dicts: CRDs have no typed Args): the Rollout's
strategy and the error-ratio AnalysisTemplate (components/app/release.py, argoRollouts)."""

from __future__ import annotations

from typing import Any

from components.app.release import ARGO_SCALE_DOWN_DELAY_SECONDS, CANARY, ReleasePlan
from components.config import AppConfig, Monitoring

REVISION_ARG = "pod-template-hash"
"""AnalysisTemplate arg: the `rollouts-pod-template-hash` of the pods under analysis."""
REVISION_METRIC_LABEL = "rollouts_pod_template_hash"
"""The pod label `rollouts-pod-template-hash` as a target label: the ServiceMonitor's
`podTargetLabels` copy it onto every scraped series, its name sanitized to a Prometheus label
name (prometheus-operator: invalid characters become `_`)."""


def error_ratio_query(job: str, namespace: str) -> str:
    """The 5xx ratio of the pods whose `rollouts-pod-template-hash` is the analysis arg, over
    5m: only the new pods (the canary, the preview), so stable traffic does not dilute it. No
    traffic (no series or NaN) reads as 0."""
    scope = (
        f'job="{job}",namespace="{namespace}",{REVISION_METRIC_LABEL}="{{{{args.{REVISION_ARG}}}}}"'
    )
    errors = f'sum(rate(http_requests_total{{{scope},code=~"5.."}}[5m]))'
    requests = f"sum(rate(http_requests_total{{{scope}}}[5m]))"
    return f"(({errors}) / ({requests}) >= 0) or on() vector(0)"


def duration(seconds: int) -> str:
    """An Argo Rollouts duration string (Go time.ParseDuration): whole minutes as `<n>m`, else
    `<n>s`."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def analysis_spec(
    app_name: str, namespace: str, monitoring: Monitoring, address: str, app: AppConfig
) -> dict[str, Any]:
    """AnalysisTemplate spec: the error ratio of the pods under analysis must stay at or below
    the alert threshold (appstack:monitoring.alerts.errorRatio) in every measurement
    (`release.analysisCount`, one every `release.analysisIntervalSeconds`); one failure
    aborts."""
    release = app.release
    return {
        "args": [{"name": REVISION_ARG}],
        "metrics": [
            {
                "name": "error-ratio",
                "interval": duration(release.analysis_interval_seconds),
                "count": release.analysis_count,
                "failureLimit": 0,
                "successCondition": f"result[0] <= {monitoring.alerts.error_ratio:g}",
                "provider": {
                    "prometheus": {
                        "address": address,
                        "query": error_ratio_query(app_name, namespace),
                    }
                },
            }
        ],
    }


def argo_strategy(plan_: ReleasePlan, app: AppConfig, analysis_name: str) -> dict[str, Any]:
    """Rollout `spec.strategy`: blueGreen with a pre-promotion analysis of the preview pods, a
    manual promotion gate and a post-promotion analysis, or canary through the configured
    steps, each followed by a pause and the analysis."""
    release = app.release
    # The newest ReplicaSet's hash (the canary, the preview): the analysis measures its pods
    # only (Rollout spec: args[].valueFrom.podTemplateHashValue, "Stable" or "Latest").
    analysis = {
        "templates": [{"templateName": analysis_name}],
        "args": [{"name": REVISION_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}],
    }
    if release.strategy == "blueGreen":
        return {
            "blueGreen": {
                "activeService": plan_.route("").name,
                "previewService": plan_.route("preview").name,
                "autoPromotionEnabled": False,
                "scaleDownDelaySeconds": ARGO_SCALE_DOWN_DELAY_SECONDS[release.scale_down_idle],
                # Before the manual promotion: the preview pods; after it: the same pods, now
                # serving production traffic.
                "prePromotionAnalysis": analysis,
                "postPromotionAnalysis": analysis,
            }
        }
    steps: list[dict[str, Any]] = []
    for weight in release.steps:
        steps.append({"setWeight": weight})
        if release.step_pause_seconds > 0:
            steps.append({"pause": {"duration": f"{release.step_pause_seconds}s"}})
        steps.append({"analysis": analysis})
    canary: dict[str, Any] = {
        "maxSurge": app.rollout.max_surge,
        "maxUnavailable": 0,
        "steps": steps,
    }
    if app.ingress.enabled:  # Argo Rollouts writes the ingress-nginx canary Ingress itself
        canary["stableService"] = plan_.route("").name
        canary["canaryService"] = plan_.route(CANARY).name
        canary["trafficRouting"] = {"nginx": {"stableIngress": plan_.route("").name}}
    return {"canary": canary}
