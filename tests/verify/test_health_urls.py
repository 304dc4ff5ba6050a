"""The `health_urls` stack output that `stackctl verify` reads: derived from the rendered
Service / Ingress and the app's readiness probe, one per app."""

from __future__ import annotations

from tests.conftest import Render, base_raw, one, pod_spec, with_app


def readiness_path(result: object, app: str) -> str:
    deployment = one(result.objects, "Deployment", app)  # type: ignore[attr-defined]
    probe = pod_spec(deployment)["containers"][0]["readinessProbe"]
    return str(probe["httpGet"]["path"])


def test_load_balancer_app_is_checked_on_its_assigned_address(render: Render) -> None:
    result = render(base_raw("prod", service={"port": 8443}))
    service = one(result.objects, "Service", "web")
    assert service["spec"]["type"] == "LoadBalancer"
    address = result.outputs["addresses"]["web"]  # the LB hostname the (mock) cloud assigned
    assert result.outputs["health_urls"]["web"] == (
        f"http://{address}:8443{readiness_path(result, 'web')}"
    )


def test_ingress_host_wins_and_tls_means_https(render: Render) -> None:
    raw = base_raw(
        "prod",
        probes={"readiness": {"path": "/ready"}},
        ingress={"enabled": True, "host": "shop.example.com", "tlsSecretName": "shop-tls"},
    )
    result = render(raw)
    ingress = one(result.objects, "Ingress", "web")
    host = ingress["spec"]["rules"][0]["host"]
    assert ingress["spec"]["tls"][0]["hosts"] == [host]
    assert result.outputs["health_urls"]["web"] == f"https://{host}/ready"
    assert readiness_path(result, "web") == "/ready"


def test_cluster_ip_app_gets_its_cluster_dns_name_and_every_app_has_a_url(render: Render) -> None:
    result = render(with_app(base_raw("dev"), "api", port=8081))
    urls = result.outputs["health_urls"]
    assert set(urls) == set(result.outputs["services"]) == {"web", "api"}
    assert urls["api"] == "http://api.shop.svc.cluster.local:80/health/ready"
    assert urls["api"].removeprefix("http://").startswith(result.outputs["addresses"]["api"])
