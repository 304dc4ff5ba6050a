"""The controller's /prometheus endpoint (prometheus plugin, unauthenticated) is reachable for
the monitoring namespace only (item 8): the Ingress routes it to a Service with no endpoints,
and the NetworkPolicy admits monitoring on the controller's port.

Oracle for the routing: the Ingress path rules of the API (networking/v1 HTTPIngressPath:
`Prefix` matches by path elements split on `/`; the longest matching path wins, and `Exact`
wins over `Prefix` of the same length)."""

from __future__ import annotations

from typing import Any

from policy.netpol import Cluster, Pod, verdict
from stackctl.render import RenderResult
from tests.conftest import one
from tests.jenkins.helpers import casc
from tests.renders import Renders


def _elements(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _matches(rule_path: str, path_type: str, request: str) -> bool:
    if path_type == "Exact":
        return rule_path == request
    want = _elements(rule_path)
    return _elements(request)[: len(want)] == want


def route(ingress: dict[str, Any], host: str, request: str) -> str | None:
    """The backend Service of `request` on `host`: longest match, Exact before Prefix."""
    best: tuple[int, int, str] | None = None
    for rule in ingress["spec"]["rules"]:
        if rule.get("host") != host:
            continue
        for p in rule["http"]["paths"]:
            if _matches(p["path"], p["pathType"], request):
                key = (
                    len(_elements(p["path"])),
                    p["pathType"] == "Exact",
                    p["backend"]["service"]["name"],
                )
                best = max(best, key) if best else key
    return best[2] if best else None


def _endpoints_exist(result: RenderResult, service: str) -> bool:
    svc = one(result.objects, "Service", service)
    return bool(svc["spec"].get("selector"))


def test_the_ingress_does_not_serve_metrics(renders: Renders) -> None:
    result = renders.stack("prod")
    ingress = one(result.objects, "Ingress", "jenkins")
    host = ingress["spec"]["rules"][0]["host"]
    path = casc(result)["unclassified"]["prometheusConfiguration"]["path"]
    for request in (f"/{path}", f"/{path}/", f"/{path}/metrics"):
        backend = route(ingress, host, request)
        assert backend is not None and not _endpoints_exist(result, backend), request
    for request in ("/", "/login", "/github-webhook/", f"/{path}x"):
        assert route(ingress, host, request) == "jenkins", request


def test_monitoring_still_scrapes_the_controller(renders: Renders) -> None:
    result = renders.stack("prod")
    monitor = one(result.objects, "ServiceMonitor", "jenkins")
    (endpoint,) = monitor["spec"]["endpoints"]
    path = casc(result)["unclassified"]["prometheusConfiguration"]["path"]
    assert endpoint["path"] == f"/{path}/"
    cluster = Cluster.from_objects(result.objects)
    controller = cluster.pod("jenkins", {"app.kubernetes.io/name": "jenkins"})
    prometheus = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
    stranger = Pod("default", {"app": "x"})
    assert verdict(cluster, prometheus, controller, 8080)
    assert not verdict(cluster, stranger, controller, 8080)
