"""A cluster-internal app is verified from outside the cluster through the API server's service
proxy, without a hand-set variable (issue 27 item 7).

Oracles: the render (the `health_urls` output of a ClusterIP app, its Service and Deployment:
the proxy dials the Service's target port on a pod, so the app's NetworkPolicy must admit
`appstack:network.apiServerCidrs` on the container port that target port names); the
documented proxy path (Kubernetes docs, "Manually constructing apiserver proxy URLs":
`/api/v1/namespaces/<ns>/services/[https:]<name>[:<port>]/proxy/<path>`), served here by a
stand-in API server that checks the path and the kubeconfig's bearer token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from stackctl.errors import UserError
from stackctl.ops import api_proxy
from stackctl.ops.verify import fetch
from tests.conftest import Render, base_raw, find, one

TOKEN = "e2e-token-not-a-secret"
CIDRS = ["172.20.0.0/16", "10.0.0.5/32"]


def dev(**app: Any) -> dict[str, Any]:
    raw = base_raw("dev", **app)
    raw["network"] = {"apiServerCidrs": CIDRS}
    return raw


class StandInApiServer(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        proxied = self.path.startswith("/api/v1/namespaces/shop/services/http:web:80/proxy/")
        ok = proxied and self.headers.get("Authorization") == f"Bearer {TOKEN}"
        body = json.dumps({"status": "ready"} if ok else {"kind": "Status"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig(tmp_path: Path, server: str, user: dict[str, Any]) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "deploy",
                "contexts": [{"name": "deploy", "context": {"cluster": "c", "user": "u"}}],
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    return path


def test_a_cluster_ip_app_is_checked_through_the_api_server_proxy(
    render: Render, api_server: str, tmp_path: Path
) -> None:
    url = render(dev()).outputs["health_urls"]["web"]
    assert url == "http://web.shop.svc.cluster.local:80/health/ready"
    env = {"KUBECONFIG": str(kubeconfig(tmp_path, api_server, {"token": TOKEN}))}
    routed, access = api_proxy.route({"web": url}, env)
    assert routed["web"] == (
        f"{api_server}/api/v1/namespaces/shop/services/http:web:80/proxy/health/ready"
    )
    assert access is not None
    answer = fetch(routed["web"], 5.0, access)
    assert answer.ready, answer.detail
    assert StandInApiServer.seen[-1] == (
        "/api/v1/namespaces/shop/services/http:web:80/proxy/health/ready",
        f"Bearer {TOKEN}",
    )
    assert not fetch(routed["web"], 5.0).ready  # without the kubeconfig's credentials: 401


def test_inside_the_cluster_or_without_a_kubeconfig_the_url_is_used_as_it_is(
    tmp_path: Path, api_server: str
) -> None:
    url = {"web": "http://web.shop.svc.cluster.local:80/health/ready"}
    config = str(kubeconfig(tmp_path, api_server, {"token": TOKEN}))
    inside = {"KUBECONFIG": config, "KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    assert api_proxy.route(url, inside) == (url, None)
    assert api_proxy.route(url, {"KUBECONFIG": str(tmp_path / "missing")}) == (url, None)


def test_an_outside_address_is_never_proxied(tmp_path: Path, api_server: str) -> None:
    env = {"KUBECONFIG": str(kubeconfig(tmp_path, api_server, {"token": TOKEN}))}
    urls = {"web": "http://web.lb.example.com/health/ready", "api": "https://api.example.com/r"}
    assert api_proxy.route(urls, env) == (urls, None)


def test_a_plugin_user_is_one_clear_error(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, "https://api.example.com", {"exec": {"command": "aws"}})
    with pytest.raises(UserError, match="authenticates through a plugin"):
        api_proxy.load_access(path)


def test_the_network_policy_admits_the_api_server_on_the_port_the_service_targets(
    render: Render,
) -> None:
    objects = render(dev()).objects
    service = one(objects, "Service", "web")
    target = service["spec"]["ports"][0]["targetPort"]
    container = one(objects, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == target)
    policy = one(objects, "NetworkPolicy", "web")
    admitted = [
        rule
        for rule in policy["spec"]["ingress"]
        if {p.get("ipBlock", {}).get("cidr") for p in rule.get("from", [])} == set(CIDRS)
    ]
    assert [r["ports"] for r in admitted] == [[{"port": port, "protocol": "TCP"}]]


@pytest.mark.parametrize(
    "app",
    [
        {"ingress": {"enabled": True, "host": "web.example.com"}},
        {"service": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24"]}},
    ],
    ids=["ingress", "load-balancer"],
)
def test_an_app_reachable_from_outside_gets_no_api_server_rule(
    render: Render, app: dict[str, Any]
) -> None:
    policy = one(render(dev(**app)).objects, "NetworkPolicy", "web")
    blocks = [p for r in policy["spec"]["ingress"] for p in r.get("from", []) if "ipBlock" in p]
    assert blocks == []


def test_without_api_server_cidrs_there_is_no_rule(render: Render) -> None:
    policies = find(render(base_raw("dev")).objects, "NetworkPolicy")
    assert not [
        p for pol in policies for r in pol["spec"].get("ingress") or [] for p in r.get("from", [])
        if "ipBlock" in p
    ]  # fmt: skip
