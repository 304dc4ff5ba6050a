"""Monitoring: the ServiceMonitor of /prometheus/ and the Jenkins PrometheusRule."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.jenkins import alerts
from components.jenkins.context import Ctx
from components.jenkins.names import APP
from components.kube import labels


def monitoring(ctx: Ctx, ui: pulumi.Resource) -> None:
    if not ctx.monitoring.enabled:
        return
    mon = ctx.monitoring
    ns_name = ctx.settings.namespace
    mon_labels = {
        **labels.standard_labels(APP, ctx.instance, "monitoring"),
        **mon.prometheus_selector_labels,
    }

    def metadata() -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=labels.resource_name(APP), namespace=ctx.namespace, labels=mon_labels
        )

    k8s.apiextensions.CustomResource(
        f"{ctx.name}-servicemonitor",
        api_version="monitoring.coreos.com/v1",
        kind="ServiceMonitor",
        metadata=metadata(),
        spec={
            "jobLabel": labels.NAME,
            "selector": {"matchLabels": {**ctx.selector, labels.COMPONENT: "controller"}},
            "namespaceSelector": {"matchNames": [ns_name]},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/prometheus/",
                    "scheme": "http",
                    "interval": mon.scrape_interval,
                }
            ],
        },
        opts=ctx.opts(depends_on=[ui]),
    )
    k8s.apiextensions.CustomResource(
        f"{ctx.name}-prometheusrule",
        api_version="monitoring.coreos.com/v1",
        kind="PrometheusRule",
        metadata=metadata(),
        spec={
            "groups": alerts.jenkins_rule_groups(
                alerts.JenkinsAlertTarget(
                    namespace=ns_name, job=APP, runbook_base_url=mon.runbook_base_url
                )
            )
        },
        opts=ctx.opts(),
    )
