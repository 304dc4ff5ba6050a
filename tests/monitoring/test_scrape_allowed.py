"""Prometheus in the monitoring namespace can scrape every target the stack's ServiceMonitors
declare, through the stack's own NetworkPolicies (default deny included), and a pod of another
namespace cannot. Oracles: the render (ServiceMonitor -> Service by its selector and
namespaceSelector, endpoint port by name -> the Service's targetPort on each backend pod, as
prometheus-operator's endpoints role and the endpoints controller resolve it) and the
NetworkPolicy semantics of policy.netpol; the scraping pod is the operator's Prometheus pod
(labels as prometheus-operator v0.93.0 sets them on its StatefulSet: pkg/prometheus/statefulset.go)
in `appstack:network.monitoringNamespace`. `make e2e-monitoring-node` makes the same scrape for
real."""

from __future__ import annotations

from typing import Any

import pytest

from components import config as config_model
from policy.netpol import Cluster, Pod, selector_matches, verdict
from stackctl.render.stack import RenderResult, render_stack
from tests.monitoring.strategies import STRATEGIES, rendered

MONITORING = config_model.NetworkSettings().monitoring_namespace
PROMETHEUS_POD = Pod(
    MONITORING,
    {
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/instance": "kube-prometheus-stack-prometheus",
        "prometheus": "kube-prometheus-stack-prometheus",
    },
    name="prometheus-kube-prometheus-stack-prometheus-0",
)


def _render(name: str) -> RenderResult:
    return render_stack(name) if name == "prod" else rendered(name)


def scrape_targets(objects: list[dict[str, Any]]) -> list[tuple[str, Pod, int]]:
    """(ServiceMonitor, backend pod, container port) for every endpoint of every ServiceMonitor."""
    cluster = Cluster.from_objects(objects)
    out = []
    for sm in (o for o in objects if o["kind"] == "ServiceMonitor"):
        spec = sm["spec"]
        namespaces = spec["namespaceSelector"].get("matchNames") or [sm["metadata"]["namespace"]]
        services = [
            s
            for s in cluster.services
            if s["metadata"]["namespace"] in namespaces
            and selector_matches(spec["selector"], s["metadata"].get("labels") or {})
        ]
        assert services, f"ServiceMonitor {sm['metadata']['name']} selects no Service"
        for svc in services:
            for endpoint in spec["endpoints"]:
                (port,) = [p for p in svc["spec"]["ports"] if p.get("name") == endpoint["port"]]
                backends = cluster.service_backends(
                    svc["metadata"]["namespace"], svc["metadata"]["name"], int(port["port"])
                )
                assert backends, f"Service {svc['metadata']['name']} has no backend pod"
                out += [(sm["metadata"]["name"], pod, target) for pod, target in backends]
    return out


@pytest.mark.parametrize("name", ["prod", *STRATEGIES])
def test_prometheus_in_the_monitoring_namespace_reaches_every_scrape_target(name: str) -> None:
    objects = _render(name).objects
    cluster = Cluster.from_objects(objects)
    targets = scrape_targets(objects)
    assert targets
    for monitor, pod, port in targets:
        allowed = verdict(cluster, PROMETHEUS_POD, pod, port)
        assert allowed, f"{monitor}: {allowed.summary}"
        # ... and the same pod in another namespace is refused: the policy is what admits it.
        outsider = Pod("default", PROMETHEUS_POD.labels, name="prometheus-elsewhere")
        refused = verdict(cluster, outsider, pod, port)
        assert not refused, f"{monitor}: {refused.summary}"
