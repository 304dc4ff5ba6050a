"""`make e2e-app`: the NetworkPolicy matrix of dev and prod on the real nodes, over the real app
(issue 28 item 5), its oracle the render.

The destinations are the app's own pods that the `real_app` fixture deployed (app/Dockerfile's
image, `stackctl deploy`): one live pod of every app each stack renders, on every container port
its rendered pod template declares (the app's http and metrics ports). The sources:

- every app of both stacks: the app's own live pod (its real labels, namespace and container;
  the attempt is the app's Python in its own container), so app -> app crosses both the
  source's egress and the destination's ingress policies;
- every peer the rendered policies admit by namespace (ingress-nginx, monitoring with the pod
  labels the peer names, if any), a pod with the Jenkins agent's labels in the agents' namespace
  (the rendered prod JCasC agent template, tests/jenkins/helpers.py), a pod without them in the
  same namespace, and a pod in another namespace: busybox client pods (the test image, not the
  app's) under `restricted`;
- the host (`HOST_IP`, outside the cluster) straight to the pod address, and through the
  LoadBalancer stand-in address `LB_IP` (e2e/realapp.py) to every port a LoadBalancer Service
  of the render carries.

For every cell, `policy.netpol.verdict` over the rendered policies of both deployed stack files
(`render_stack(env, engine project)`) says allowed or refused, and the real connection attempt
through kube-router's firewall agrees; the matrix is printed. The app's egress: DNS to CoreDNS
allowed by the render and answered for real.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from e2e.kube import ApiError, Kube
from e2e.realapp import RealApp
from e2e.realnode.layout import HOST_IP, LAYOUT
from e2e.realnode.nodes import RealNodes
from policy.netpol import Cluster, External, Pod, verdict
from policy.netpol.model import Endpoint, pod_from_manifest
from stackctl.render.stack import render_stack
from tests.e2e.realnode_kit import (
    client_pod,
    connects,
    delete_namespace,
    exec_in,
    restricted_namespace,
    wait_ready,
)
from tests.jenkins.helpers import agent_pods, cloud

pytestmark = pytest.mark.realapp

ENVS = ("dev", "prod")
OTHER_NS = "e2e-matrix-other"
NAME_LABEL = "kubernetes.io/metadata.name"

# Inside the app's container: exit 0 when `url` answers HTTP at all, 1 when the connection fails.
PY_CONNECT = (
    "import sys, urllib.request, urllib.error\n"
    "try:\n"
    "    urllib.request.urlopen(sys.argv[1], timeout=2)\n"
    "except urllib.error.HTTPError:\n"
    "    pass\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
)
PY_RESOLVE = "import socket, sys; print(socket.gethostbyname(sys.argv[1]))"


@dataclass
class App:
    """A destination (and source): one live pod of a rendered app."""

    key: str  # env/app
    model: Pod  # the rendered pod template, as the evaluator sees it
    pod: dict[str, Any]  # the live pod connected to
    peer: dict[str, Any]  # the live pod connecting from (another replica when there is one)
    ports: list[tuple[str, int]]  # (name, containerPort) of the rendered template
    lb_ports: dict[int, int]  # containerPort -> LoadBalancer Service port
    lb_ip: str | None


@dataclass
class Source:
    name: str
    kind: str  # "app" | "client" | "host" | "lb"
    endpoint: Endpoint | None  # what the evaluator judges (None for the LoadBalancer row)
    pod: dict[str, Any] | None = None


def _lb_ports(
    objects: list[dict[str, Any]], template: dict[str, Any], ports: list[tuple[str, int]]
) -> dict[int, int]:
    """containerPort -> Service port of every rendered LoadBalancer Service selecting the app."""
    labels = template["metadata"]["labels"]
    by_name = dict(ports)
    out: dict[int, int] = {}
    for svc in objects:
        spec = svc.get("spec") or {}
        if svc["kind"] != "Service" or spec.get("type") != "LoadBalancer":
            continue
        if not all(labels.get(k) == v for k, v in (spec.get("selector") or {}).items()):
            continue
        for port in spec["ports"]:
            target = port.get("targetPort", port["port"])
            out[by_name[target] if isinstance(target, str) else int(target)] = port["port"]
    return out


def _declared_peers(objects: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, str]]]:
    """Every peer an ingress rule of the render admits by namespace name: name -> (namespace,
    pod labels: the peer's podSelector, or a label naming the peer's role when it has none)."""
    peers: dict[str, tuple[str, dict[str, str]]] = {}
    for pol in objects:
        if pol["kind"] != "NetworkPolicy":
            continue
        for rule in pol["spec"].get("ingress") or []:
            for peer in rule.get("from") or []:
                ns = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get(
                    NAME_LABEL
                )
                if not ns:
                    continue
                labels = dict((peer.get("podSelector") or {}).get("matchLabels") or {})
                name = ns if not labels else f"{ns}/{labels.get('app.kubernetes.io/name', 'peer')}"
                role = "prometheus" if ns == "monitoring" else "client"
                peers.setdefault(name, (ns, labels or {"app.kubernetes.io/name": role}))
    return peers


@pytest.fixture(scope="module")
def world(real_app: RealApp, kube: Kube, real_nodes: RealNodes) -> Iterator[dict[str, Any]]:
    renders = {env: render_stack(env, real_app.engine.project).objects for env in ENVS}
    objects = [o for env in ENVS for o in renders[env]]
    apps: list[App] = []
    for env in ENVS:
        stack = real_app.stacks[env]
        for dep in renders[env]:
            if dep["kind"] != "Deployment" or dep["metadata"]["namespace"] != stack.namespace:
                continue
            name, template = dep["metadata"]["name"], dep["spec"]["template"]
            live = sorted(real_app.pods(env, name), key=lambda p: p["metadata"]["name"])
            assert live, f"{env}: no live pod of {name}"
            ports = [
                (p["name"], int(p["containerPort"]))
                for c in template["spec"]["containers"]
                for p in c.get("ports") or []
            ]
            model = pod_from_manifest(
                {"metadata": template["metadata"], "spec": template["spec"]}, stack.namespace
            )
            lb_ip = next(
                (s["loadBalancerIP"] for s in stack.services.values() if s["loadBalancerIP"]), None
            )
            lb = _lb_ports(renders[env], template, ports)
            apps.append(App(f"{env}/{name}", model, live[0], live[-1], ports, lb, lb_ip))
    # Client pods: the rendered peers, the Jenkins agent (and a non-agent beside it), another
    # namespace.
    prod_shipped = render_stack("prod")  # Jenkins is off on this site; its agents are not
    agent = agent_pods(prod_shipped)["pulumi"]
    agent_ns = next(
        t.get("namespace") or "jenkins"
        for t in cloud(prod_shipped)["templates"]
        if t["name"] == "pulumi"
    )
    clients: dict[str, tuple[str, dict[str, str]]] = {}
    for name, (ns, labels) in sorted(_declared_peers(objects).items()):
        clients[name] = (ns, labels)
    clients["jenkins-agent"] = (agent_ns, agent["metadata"]["labels"])
    clients["jenkins-non-agent"] = (agent_ns, {"app.kubernetes.io/name": "not-an-agent"})
    clients["other-namespace"] = (OTHER_NS, {"app.kubernetes.io/name": "client"})
    # no two rows for one identity (a declared peer may be the agent itself)
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    for name, (ns, labels) in list(clients.items()):
        ident = (ns, tuple(sorted(labels.items())))
        if ident in seen:
            del clients[seen[ident]]
        seen[ident] = name
    # The cluster runs exactly the rendered policies in every namespace of the matrix (so the
    # render is the whole oracle: no policy of another test or tier hides in a peer namespace).
    for ns in sorted(
        {real_app.stacks[env].namespace for env in ENVS} | {n for n, _ in clients.values()}
    ):
        live = {p["metadata"]["name"]: p["spec"] for p in kube.list("NetworkPolicy", ns)}
        want = {
            o["metadata"]["name"]: o["spec"]
            for o in objects
            if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == ns
        }
        assert live == want, (ns, sorted(live), sorted(want))
    existing = {n["metadata"]["name"] for n in kube.list("Namespace")}
    made = sorted({ns for ns, _ in clients.values()} - existing)
    for ns in made:
        restricted_namespace(kube, ns)
    pod_names = {name: f"matrix-{i}" for i, name in enumerate(clients)}
    try:
        for name, (ns, labels) in clients.items():
            kube.create(client_pod(pod_names[name], ns, labels, None))
        live_clients = {
            name: wait_ready(kube, real_nodes, ns, [pod_names[name]])[pod_names[name]]
            for name, (ns, _) in clients.items()
        }
        sources = [Source(a.key, "app", a.model, a.peer) for a in apps]
        sources += [
            Source(name, "client", Pod(ns, labels, name=name), live_clients[name])
            for name, (ns, labels) in clients.items()
        ]
        sources += [
            Source(f"host {HOST_IP}", "host", External(HOST_IP)),
            Source("host via LoadBalancer", "lb", None),
        ]
        dns = Pod("kube-system", {"k8s-app": "kube-dns"}, name="coredns")
        extra = [a.model for a in apps] + [dns]
        extra += [s.endpoint for s in sources if s.kind == "client" and isinstance(s.endpoint, Pod)]
        oracle = Cluster.from_objects(
            [o for o in objects if o["kind"] != "Deployment"], extra_pods=extra
        )
        yield {"apps": apps, "sources": sources, "oracle": oracle, "dns": dns}
    finally:
        for name, (ns, _) in clients.items():
            if ns not in made:
                try:
                    kube.delete("Pod", pod_names[name], ns)
                except ApiError as exc:
                    if exc.status != 404:
                        raise
        for ns in made:
            delete_namespace(kube, ns)


Cell = tuple[str, str, int]  # source, destination app, port


def _expected(world: dict[str, Any]) -> dict[Cell, bool]:
    oracle: Cluster = world["oracle"]
    out: dict[Cell, bool] = {}
    for src in world["sources"]:
        for app in world["apps"]:
            for _, port in app.ports:
                if src.kind == "lb":
                    if port not in app.lb_ports:
                        continue  # no LoadBalancer carries this port: no cell
                    # The pod sees the client, or (kube-proxy's masquerade) a node: the render
                    # must say the same for each, or the cell would depend on the route taken.
                    said = {
                        verdict(oracle, External(ip), app.model, port).allowed
                        for ip in [HOST_IP, *(spec.ip for spec in LAYOUT)]
                    }
                    assert len(said) == 1, (app.key, port, said)
                    out[(src.name, app.key, port)] = said.pop()
                elif src.kind == "app" and src.pod is app.pod:
                    continue  # a pod's connection to itself never leaves it: no policy applies
                elif src.endpoint is not None:
                    out[(src.name, app.key, port)] = verdict(
                        oracle, src.endpoint, app.model, port
                    ).allowed
    return out


def _host_connects(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _observe(world: dict[str, Any], nodes: RealNodes, cells: list[Cell]) -> dict[Cell, bool]:
    sources = {s.name: s for s in world["sources"]}
    apps = {a.key: a for a in world["apps"]}
    seen: dict[Cell, bool] = {}
    for src_name, key, port in cells:
        src, app = sources[src_name], apps[key]
        url = f"http://{app.pod['status']['podIP']}:{port}/"
        if src.kind == "lb":
            seen[(src_name, key, port)] = _host_connects(
                f"http://{app.lb_ip}:{app.lb_ports[port]}/"
            )
        elif src.kind == "host":
            seen[(src_name, key, port)] = _host_connects(url)
        elif src.kind == "app":
            assert src.pod is not None
            code, _ = exec_in(nodes, src.pod, "python", "-c", PY_CONNECT, url)
            seen[(src_name, key, port)] = code == 0
        else:
            assert src.pod is not None
            seen[(src_name, key, port)] = connects(nodes, src.pod, url)
    return seen


def test_every_source_app_and_port_is_allowed_exactly_when_the_render_says_so(
    world: dict[str, Any], real_nodes: RealNodes, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _expected(world)
    assert any(expected.values()) and not all(expected.values()), expected
    cells = list(expected)
    # kube-router applies a new pod's address to its ipsets on its watch event: wait until the
    # observation agrees, then require one more full round to agree as well.
    deadline, agreed, seen = time.monotonic() + 180, 0, {}
    while agreed < 2 and time.monotonic() < deadline:
        seen = _observe(world, real_nodes, cells)
        agreed = agreed + 1 if seen == expected else 0
    columns = [(a.key, name, port) for a in world["apps"] for name, port in a.ports]
    width = max(len(f"{k}:{n}/{p}") for k, n, p in columns) + 2
    lines = [f"{'source':<28}" + "".join(f"{f'{k}:{n}/{p}':>{width}}" for k, n, p in columns)]
    for src in world["sources"]:
        row = []
        for key, _, port in columns:
            cell = (src.name, key, port)
            if cell not in expected:
                row.append(f"{'-':>{width}}")
                continue
            got = seen.get(cell)
            mark = "allowed" if got else "refused"
            row.append(f"{mark + ('' if got == expected[cell] else ' (!)'):>{width}}")
        lines.append(f"{src.name:<28}" + "".join(row))
    with capsys.disabled():
        print(
            "\nNetworkPolicy matrix (dev and prod renders -> the real app's pods; "
            "- = no such path (no LoadBalancer port, or a pod to itself); "
            "(!) = differs from the render):"
        )
        print("\n".join(lines))
    assert seen == expected, "\n".join(lines)


def test_the_apps_egress_reaches_dns(world: dict[str, Any], real_nodes: RealNodes) -> None:
    """Every app's pod resolves a cluster name through CoreDNS, as the render allows."""
    oracle: Cluster = world["oracle"]
    for app in world["apps"]:
        assert verdict(oracle, app.model, world["dns"], 53, "UDP").allowed, app.key
        code, out = exec_in(
            real_nodes, app.pod, "python", "-c", PY_RESOLVE, "kubernetes.default.svc.cluster.local"
        )
        assert code == 0, (app.key, out)
