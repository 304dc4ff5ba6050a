"""Every network path the pipeline takes, judged by the NetworkPolicy evaluator (policy/netpol)
over the renders of the shipped stacks (Pulumi.dev.yaml + Pulumi.prod.yaml: Jenkins runs in the
prod stack and verifies both). Both ends come from the render: the source pods (the agent pod
templates of the rendered JCasC, the controller StatefulSet), the destinations (the health URLs
`stackctl verify` reads from the stack outputs, resolved through the rendered Services; the API
server CIDRs; the registry of the rendered IMAGE_REPOSITORY), and every NetworkPolicy of both
stacks."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import pytest

from policy.netpol import Cluster, External, Pod, verdict
from policy.netpol.model import pod_from_manifest
from stackctl.render import RenderResult
from tests.jenkins.helpers import agent_pods, casc, cloud
from tests.renders import Renders

JENKINS_NS = "jenkins"


def _address_in(cidr: str) -> str:
    """A host address inside `cidr` (a public documentation address for 0.0.0.0/0)."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.prefixlen == 0:
        return "198.51.100.7"
    return str(net.network_address + (1 if net.num_addresses > 1 else 0))


@pytest.fixture(scope="module")
def stacks(renders_module: Renders) -> dict[str, RenderResult]:
    return {name: renders_module.stack(name) for name in ("dev", "prod")}


@pytest.fixture(scope="module")
def renders_module() -> Renders:
    return Renders()


@pytest.fixture(scope="module")
def world(stacks: dict[str, RenderResult]) -> tuple[Cluster, dict[str, Pod]]:
    prod = stacks["prod"]
    templates = {t["name"]: t for t in cloud(prod)["templates"]}
    pods = {
        name: pod_from_manifest(pod, templates[name].get("namespace") or JENKINS_NS)
        for name, pod in agent_pods(prod).items()
    }
    objects = [o for r in stacks.values() for o in r.objects]
    cluster = Cluster.from_objects(objects, extra_pods=list(pods.values()))
    pods["controller"] = cluster.pod(JENKINS_NS, {"app.kubernetes.io/name": "jenkins"})
    return cluster, pods


def _settings(stacks: dict[str, RenderResult]) -> dict[str, Any]:
    env = casc(stacks["prod"])["jenkins"]["globalNodeProperties"][0]["envVars"]["env"]
    return {e["key"]: e["value"] for e in env}


def _health_destinations(
    cluster: Cluster, result: RenderResult, app: str
) -> list[tuple[Pod | External, int]]:
    """Where the health URL of `app` leads, as the network sees it: a cluster DNS name is the
    Service's backend pods on their target port; any other host is an outside address on the
    URL's port, and (kube-proxy answers a LoadBalancer address inside the cluster) also the
    Service's backends."""
    url = urlsplit(result.outputs["health_urls"][app])
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url.hostname or ""
    namespace = result.outputs["namespace"]
    service = result.outputs["services"][app]
    svc_port = port
    out: list[tuple[Pod | External, int]] = []
    if not host.endswith(".svc.cluster.local"):
        out.append((External(_address_in("0.0.0.0/0")), port))
        spec = next(
            o["spec"]
            for o in result.objects
            if o["kind"] == "Service" and o["metadata"]["name"] == service
        )
        svc_port = spec["ports"][0]["port"]
    else:
        assert host == f"{service}.{namespace}.svc.cluster.local", host
    backends = cluster.service_backends(namespace, service, svc_port)
    assert backends, f"{result.stack}: no pod behind {namespace}/{service}:{svc_port}"
    out += backends
    return out


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_agent_reaches_every_health_url_verify_reads(
    stack: str, stacks: dict[str, RenderResult], world: tuple[Cluster, dict[str, Pod]]
) -> None:
    cluster, pods = world
    result = stacks[stack]
    refused = [
        v.summary
        for app in result.outputs["health_urls"]
        for dest, port in _health_destinations(cluster, result, app)
        if not (v := verdict(cluster, pods["pulumi"], dest, port))
    ]
    assert not refused, refused


def test_controller_and_agents_reach_the_api_server(
    stacks: dict[str, RenderResult], world: tuple[Cluster, dict[str, Pod]]
) -> None:
    cluster, pods = world
    policy = next(
        o
        for o in stacks["prod"].objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "jenkins-controller"
    )
    api_blocks = [p["ipBlock"]["cidr"] for p in policy["spec"]["egress"][0]["to"]]
    api_ports = [p["port"] for p in policy["spec"]["egress"][0]["ports"]]
    refused = [
        v.summary
        for who in ("controller", "pulumi")
        for cidr in api_blocks
        for port in api_ports
        if not (v := verdict(cluster, pods[who], External(_address_in(cidr)), port))
    ]
    assert not refused, refused


def test_agents_reach_the_controller_registry_and_backend(
    stacks: dict[str, RenderResult], world: tuple[Cluster, dict[str, Pod]]
) -> None:
    cluster, pods = world
    svc = cloud(stacks["prod"])["jenkinsUrl"]
    url = urlsplit(svc)
    name, namespace = (url.hostname or "").split(".")[:2]
    registry = _settings(stacks)["IMAGE_REPOSITORY"].split("/", 1)[0]
    registry_port = int(registry.rsplit(":", 1)[1]) if ":" in registry else 443
    outside = External(_address_in("0.0.0.0/0"))
    checks = [
        (pods[who], dest, port)
        for who in ("pulumi", "builder")
        for dest, port in cluster.service_backends(namespace, name, url.port or 80)
    ]
    checks += [
        (pods["builder"], outside, registry_port),  # push (build-image.sh)
        (pods["pulumi"], outside, 443),  # the state backend (s3, azblob, gs, Pulumi Cloud)
        (pods["pulumi"], outside, 443),  # git and package indexes of `make test`
    ]
    refused = [
        v.summary for src, dest, port in checks if not (v := verdict(cluster, src, dest, port))
    ]
    assert not refused, refused


def test_the_oracle_refuses_what_the_policies_leave_out(
    world: tuple[Cluster, dict[str, Pod]],
) -> None:
    """The evaluator is not vacuous here: other ports and pods stay refused."""
    cluster, pods = world
    dev_web = cluster.pod("appstack-dev", {"app.kubernetes.io/name": "web"})
    assert not verdict(cluster, pods["pulumi"], dev_web, 9090)  # metrics: monitoring only
    assert not verdict(cluster, pods["controller"], dev_web, 8080)  # only agents verify
    assert not verdict(cluster, pods["pulumi"], External("198.51.100.7"), 22)
