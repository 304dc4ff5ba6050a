"""HorizontalPodAutoscaler settings of an app: what it scales on and how fast (the HPAs
themselves, one per workload the release plan autoscales, are AppService's)."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.config import AppConfig


def hpa_behavior(app: AppConfig) -> k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs:
    """Scale up fast (double, or +4 pods, every 15 s); scale down slowly (over the
    `autoscaling.scaleDownStabilizationSeconds` window, 300 s by default, at most 10 % a
    minute)."""
    return k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
        scale_up=k8s.autoscaling.v2.HPAScalingRulesArgs(
            stabilization_window_seconds=0,
            select_policy="Max",
            policies=[
                k8s.autoscaling.v2.HPAScalingPolicyArgs(
                    type="Percent", value=100, period_seconds=15
                ),
                k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Pods", value=4, period_seconds=15),
            ],
        ),
        scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
            stabilization_window_seconds=app.autoscaling.scale_down_stabilization_seconds,
            select_policy="Min",
            policies=[
                k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=10, period_seconds=60)
            ],
        ),
    )


def hpa_metrics(app: AppConfig) -> list[k8s.autoscaling.v2.MetricSpecArgs]:
    """CPU and memory utilisation, and optionally requests per second per pod."""
    metrics = [
        k8s.autoscaling.v2.MetricSpecArgs(
            type="Resource",
            resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                name=resource,
                target=k8s.autoscaling.v2.MetricTargetArgs(
                    type="Utilization", average_utilization=target
                ),
            ),
        )
        for resource, target in (
            ("cpu", app.autoscaling.cpu_utilization),
            ("memory", app.autoscaling.memory_utilization),
        )
    ]
    rps = app.autoscaling.requests_per_second
    if rps is not None:
        metrics.append(
            k8s.autoscaling.v2.MetricSpecArgs(
                type="Pods",
                pods=k8s.autoscaling.v2.PodsMetricSourceArgs(
                    metric=k8s.autoscaling.v2.MetricIdentifierArgs(name="http_requests_per_second"),
                    target=k8s.autoscaling.v2.MetricTargetArgs(
                        type="AverageValue", average_value=f"{rps:g}"
                    ),
                ),
            )
        )
    return metrics
