"""`make e2e-app`: the reference app really running on the real nodes (issue 28 items 4 and 5,
issue 27 item 7), deployed by the `real_app` fixture (tests/e2e/conftest.py, e2e/realapp.py):
app/Dockerfile built by buildah, pushed to the run's registry (TLS, basic auth), pulled by every
node's containerd with the stack's own pull Secret, dev and prod of the shipped stack files
deployed by `stackctl deploy <env> --image web=<repo>@sha256:<digest>`.

Oracles: the render of the deployed stack files (`stackctl render` over the engine's project:
probes, security context, spread constraints, NetworkPolicies judged by `policy.netpol`), the
kubelet's own records (pod conditions, containerStatuses, Events), what the container reports
about itself (`ctr task exec` in the app container: its process spec, uid, capabilities and
seccomp filter), the app's own metrics, and real connections.

Marked `realapp`: `make e2e` and `make e2e-node` deselect it, `make e2e-app` selects it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from e2e.kube import ApiError, Kube
from e2e.realapp import REPOSITORY, RealApp, node_netns_get
from e2e.realnode.layout import HOST_IP, LAYOUT, LB_IP, NODE_LABEL
from policy.netpol import Cluster, External, verdict
from policy.netpol.model import pod_from_manifest
from stackctl.render.stack import render_stack
from tests.e2e.realnode_kit import exec_in

pytestmark = pytest.mark.realapp

ENVS = ("dev", "prod")
REAL_NODES = {spec.name: spec for spec in LAYOUT}


@pytest.fixture(scope="module")
def stack_renders(real_app: RealApp) -> dict[str, list[dict[str, Any]]]:
    """The render of each deployed stack file (the engine's project, as deployed)."""
    return {env: render_stack(env, real_app.engine.project).objects for env in ENVS}


def rendered(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def scheduled_to_ready(pod: dict[str, Any]) -> float:
    conds = {c["type"]: c["lastTransitionTime"] for c in pod["status"]["conditions"]}
    return (_stamp(conds["Ready"]) - _stamp(conds["PodScheduled"])).total_seconds()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|µs|us|ns|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float:
    """Seconds of a Go `time.Duration` string (`1m2.5s`, `812ms`)."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def pull_events(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    doc = kube.request("GET", f"api/v1/namespaces/{namespace}/events")
    return [e for e in doc.get("items") or [] if e.get("reason") in ("Pulled", "Failed")]


# ================================================================ running, Ready, pulled


def test_every_pod_of_dev_and_prod_runs_ready_on_a_real_node_under_restricted(
    real_app: RealApp, kube: Kube, stack_renders: dict[str, list[dict[str, Any]]],
    figures: dict[str, float],
) -> None:  # fmt: skip
    key, value = NODE_LABEL
    for env in ENVS:
        stack = real_app.stacks[env]
        ns = kube.get("Namespace", stack.namespace)["metadata"]["labels"]
        want = rendered(stack_renders[env], "Namespace", stack.namespace)["metadata"]["labels"]
        assert (
            ns["pod-security.kubernetes.io/enforce"]
            == "restricted"
            == (want["pod-security.kubernetes.io/enforce"])
        ), ns
        pods = kube.list("Pod", stack.namespace)
        deployment = rendered(stack_renders[env], "Deployment", "web")
        assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {key: value}
        hpa = [o for o in stack_renders[env] if o["kind"] == "HorizontalPodAutoscaler"]
        want_pods = hpa[0]["spec"]["minReplicas"] if hpa else deployment["spec"]["replicas"]
        assert len(pods) == want_pods, [p["metadata"]["name"] for p in pods]
        for pod in pods:
            name = pod["metadata"]["name"]
            assert pod["spec"]["nodeName"] in REAL_NODES, f"{name} on {pod['spec']['nodeName']}"
            assert pod["status"]["phase"] == "Running", (name, pod["status"]["phase"])
            assert any(
                c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"]
            ), name
            ip = ipaddress.ip_address(pod["status"]["podIP"])
            assert ip in ipaddress.ip_network(REAL_NODES[pod["spec"]["nodeName"]].pod_cidr)
            # the image by digest, as the kubelet resolved and ran it
            (container,) = pod["status"]["containerStatuses"]
            assert pod["spec"]["containers"][0]["image"] == stack.images["web"]
            assert container["imageID"].endswith(real_app.digest), container["imageID"]
            assert container["ready"] and container["restartCount"] == 0, container
            assert [s["name"] for s in pod["spec"]["imagePullSecrets"]] == (
                [s["name"] for s in deployment["spec"]["template"]["spec"]["imagePullSecrets"]]
            )
        figures[f"app.{env}.pod_scheduled_to_ready_max_s"] = max(
            scheduled_to_ready(p) for p in pods
        )


def test_the_nodes_pulled_the_digest_from_the_registry_with_the_stacks_pull_secret(
    real_app: RealApp, kube: Kube, figures: dict[str, float]
) -> None:
    """The kubelets' own Events say each pod's image was pulled (imagePullPolicy Always), the
    registry's access log shows the manifest fetched by digest from node addresses as the pull
    Secret's user, and the Secret holds exactly the registry's credentials."""
    pulls: list[float] = []
    for env in ENVS:
        stack = real_app.stacks[env]
        events = pull_events(kube, stack.namespace)
        failed = [e["message"] for e in events if e["reason"] == "Failed"]
        assert not failed, failed
        pulled = [e["message"] for e in events if e["reason"] == "Pulled"]
        assert pulled, f"no Pulled event in {stack.namespace}"
        for message in pulled:
            assert stack.images["web"] in message, message
            took = re.search(r"Successfully pulled image \S+ in (\S+) \(", message)
            assert took, message  # pulled, not "already present" (imagePullPolicy Always)
            pulls.append(go_duration(took.group(1)))
        secret = kube.get("Secret", "registry-credentials", stack.namespace)
        auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
        entry = auths[real_app.registry.host]
        assert base64.b64decode(entry["auth"]).decode() == (
            f"{real_app.registry.user}:{real_app.registry.password}"
        )
    figures["app.image_pull_max_s"] = max(pulls)
    figures["app.image_pull_min_s"] = min(pulls)
    log = (real_app.registry.root / "registry.log").read_text(errors="replace")
    manifest = f"/v2/{REPOSITORY}/manifests/{real_app.digest}"
    node_ips = {spec.ip for spec in LAYOUT}
    # logrus text lines (distribution's "response completed"); values quoted only when needed
    as_user = re.compile(r'auth\.user\.name="?' + re.escape(real_app.registry.user) + r'"?(\s|$)')
    fetched_by = {
        m.group(1)
        for line in log.splitlines()
        if manifest in line and as_user.search(line) and "http.response.status=200" in line
        if (m := re.search(r'http\.request\.remoteaddr="?([0-9.]+)', line))
    }
    nodes_with_pods = {
        REAL_NODES[p["spec"]["nodeName"]].ip for env in ENVS for p in real_app.pods(env)
    }
    assert fetched_by & node_ips >= nodes_with_pods, (fetched_by, nodes_with_pods)


# ================================================================ inside the container

# What the app container finds out about itself, run by its own interpreter (python-slim based
# image: no shell tools needed). /var/tmp is world-writable (1777) in the image: a refused
# write there is the read-only root filesystem, not a missing permission.
SELF_REPORT = """
import errno, json, os, stat
def attempt(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "written"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "capeff": status["CapEff"].strip(), "capprm": status["CapPrm"].strip(),
    "seccomp": status["Seccomp"].strip(), "nonewprivs": status["NoNewPrivs"].strip(),
    "var_tmp_mode": oct(stat.S_IMODE(os.stat("/var/tmp").st_mode)),
    "write_var_tmp": attempt("/var/tmp/e2e-probe"),
    "write_app_code": attempt("/srv/app/e2e-probe"),
    "write_tmp": attempt("/tmp/e2e-probe"),
    "root_readonly": bool(os.statvfs("/").f_flag & os.ST_RDONLY),
}))
"""


def test_the_security_context_is_in_force_inside_the_app_container(
    real_app: RealApp, stack_renders: dict[str, list[dict[str, Any]]]
) -> None:
    for env in ENVS:
        spec = rendered(stack_renders[env], "Deployment", "web")["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        want_uid = container["securityContext"].get("runAsUser", spec["securityContext"].get(
            "runAsUser"))  # fmt: skip
        for pod in real_app.pods(env):
            code, out = exec_in(real_app.nodes, pod, "python", "-c", SELF_REPORT)
            assert code == 0, out
            report = json.loads(out.splitlines()[-1])
            name = pod["metadata"]["name"]
            assert report["uid"] == want_uid != 0, (name, report)
            assert int(report["capeff"], 16) == 0 == int(report["capprm"], 16), (name, report)
            assert report["seccomp"] == "2", (name, report)  # 2 = filter mode (RuntimeDefault)
            assert report["nonewprivs"] == "1", (name, report)  # allowPrivilegeEscalation false
            assert report["var_tmp_mode"] == "0o1777", report
            assert report["root_readonly"] and report["write_var_tmp"] == "EROFS", (name, report)
            assert report["write_app_code"] != "written", (name, report)  # root-owned, read-only
            assert report["write_tmp"] == "written", (name, report)  # the emptyDir /tmp


# ================================================================ probes


def app_metrics(real_app: RealApp, pod: dict[str, Any], port: int) -> dict[tuple[str, str], float]:
    """(path, code) -> http_requests_total of the app, read inside its container on loopback."""
    script = (
        "import urllib.request\n"
        f"print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=5)"
        ".read().decode())"
    )
    code, out = exec_in(real_app.nodes, pod, "python", "-c", script)
    assert code == 0, out
    counts: dict[tuple[str, str], float] = {}
    for line in out.splitlines():
        if line.startswith("http_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            counts[(labels["path"], labels["code"])] = float(line.rsplit(" ", 1)[1])
    return counts


def test_the_probes_are_served_by_the_app(
    real_app: RealApp,
    stack_renders: dict[str, list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app's own request counter, per route: every probe path of the rendered pod spec
    answered 200 and keeps being asked (nobody but the kubelet reaches a pod's probe paths
    here: the policies admit no other client of dev and the test sends none)."""
    env = "dev"
    spec = rendered(stack_renders[env], "Deployment", "web")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probes = {kind: container[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    paths = {p["httpGet"]["path"] for p in probes.values()}
    assert all(ports[p["httpGet"]["port"]] == ports["http"] for p in probes.values())
    longest = max(p["periodSeconds"] for p in probes.values())
    pod = real_app.pods(env)[0]
    before = app_metrics(real_app, pod, ports["metrics"])
    time.sleep(2 * longest + 3)
    after = app_metrics(real_app, pod, ports["metrics"])
    lines = []
    for path in sorted(paths):
        grew = after.get((path, "200"), 0) - before.get((path, "200"), 0)
        periods = sorted(
            p["periodSeconds"] for p in probes.values() if p["httpGet"]["path"] == path
        )
        lines.append(f"{path}: {after.get((path, '200'), 0):.0f} x 200, +{grew:.0f} in "
                     f"{2 * longest + 3}s (probe periods {periods}s)")  # fmt: skip
        assert before.get((path, "200"), 0) >= 1, (path, before)
        assert grew >= 1, (path, before, after)
        assert not [k for k in after if k[0] == path and k[1] != "200"], after
    with capsys.disabled():
        print(f"\nprobe requests counted by the app ({pod['metadata']['name']}):")
        print("\n".join(lines))


# ================================================================ spread


def test_prods_zone_spread_holds_on_the_real_nodes(
    real_app: RealApp, kube: Kube, stack_renders: dict[str, list[dict[str, Any]]]
) -> None:
    """Every rendered topology spread constraint of prod, checked as the scheduler defines
    skew: over the domains of the nodes the pod may land on (nodeAffinityPolicy Honor: the
    nodeSelector), max - min pods per domain <= maxSkew."""
    spec = rendered(stack_renders["prod"], "Deployment", "web")["spec"]["template"]["spec"]
    constraints = spec["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} >= {"topology.kubernetes.io/zone"}
    eligible = {
        n["metadata"]["name"]: n["metadata"]["labels"]
        for n in kube.list("Node")
        if all(n["metadata"]["labels"].get(k) == v for k, v in spec["nodeSelector"].items())
    }
    assert set(eligible) == set(REAL_NODES), eligible
    pods = real_app.pods("prod")
    for c in constraints:
        key = c["topologyKey"]
        counts = Counter({labels[key]: 0 for labels in eligible.values()})
        counts.update(eligible[p["spec"]["nodeName"]][key] for p in pods)
        assert max(counts.values()) - min(counts.values()) <= c["maxSkew"], (key, counts)
    zones = Counter(eligible[p["spec"]["nodeName"]]["topology.kubernetes.io/zone"] for p in pods)
    assert len(zones) == len({spec.zone for spec in LAYOUT}), zones


# ================================================================ traffic


def _get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_requests_from_the_host_reach_the_app_through_the_loadbalancer_and_clusterip(
    real_app: RealApp,
) -> None:
    prod = real_app.stacks["prod"]
    lb = prod.services["web"]["loadBalancerIP"]
    assert lb == LB_IP, prod.services
    # The LoadBalancer stand-in address: host -> a node's kube-proxy (source ranges checked)
    for _ in range(5):
        status, body = _get(real_app.lb_url("prod"))
        assert status == 200, body
        assert json.loads(body)["service"] == "appstack", body
    status, body = _get(real_app.lb_url("prod", path="/health/ready"))
    assert (status, json.loads(body)) == (200, {"status": "ready"})
    # The ClusterIP through kube-proxy of every node (from inside the node's namespace)
    for spec in LAYOUT:
        status, body = node_netns_get(spec.netns, real_app.cluster_ip_url("prod"))
        assert status == 200, (spec.name, body)
        assert json.loads(body)["service"] == "appstack", body


# Clients of the LoadBalancer outside the cluster, each in a network namespace of the run
# (e2e/realnode/network.py `add_client`): one address inside prod's rendered source ranges,
# one outside them; both in the run's 10.245.0.0/16, neither a node, pod or Service address.
LB_CLIENTS = ("10.245.0.60", "10.245.1.10")


def test_a_loadbalancer_client_is_served_exactly_when_the_source_ranges_hold_its_address(
    real_app: RealApp, stack_renders: dict[str, list[dict[str, Any]]]
) -> None:
    """kube-proxy, not a NetworkPolicy, enforces `loadBalancerSourceRanges` at the
    LoadBalancer address: the render's ranges say which client is served, the render's
    policies admit both (and the nodes kube-proxy masquerades them to), and the refused
    client is served through the same node at the Service's NodePort, to which the ranges do
    not apply, so its refusal at the LoadBalancer address is the ranges' and nothing else's."""
    from e2e.realnode.network import add_client, remove_client

    objects = stack_renders["prod"]
    service = rendered(objects, "Service", "web")
    assert service["spec"]["type"] == "LoadBalancer"
    ranges = [ipaddress.ip_network(r) for r in service["spec"]["loadBalancerSourceRanges"]]
    expected = {ip: any(ipaddress.ip_address(ip) in net for net in ranges) for ip in LB_CLIENTS}
    assert sorted(expected.values()) == [False, True], (ranges, expected)
    namespace = real_app.stacks["prod"].namespace
    oracle, web = web_oracle(objects, namespace)
    target = service["spec"]["ports"][0]["targetPort"]  # the container port, by name
    template = rendered(objects, "Deployment", "web")["spec"]["template"]["spec"]
    port = next(
        int(p["containerPort"])
        for c in template["containers"]
        for p in c.get("ports") or []
        if target in (p.get("name"), p["containerPort"])
    )
    for source in [*LB_CLIENTS, *(spec.ip for spec in LAYOUT)]:
        assert verdict(oracle, External(source), web, port).allowed, source
    live = real_app.kube.get("Service", "web", namespace)
    node_port = live["spec"]["ports"][0]["nodePort"]
    via = LAYOUT[0]
    lb_url = f"http://{LB_IP}:{live['spec']['ports'][0]['port']}/"
    seen: dict[str, bool] = {}
    try:
        for index, ip in enumerate(LB_CLIENTS):
            netns = add_client(index, ip, via, (LB_IP,))
            answers = [node_netns_get(netns, lb_url, timeout=3) for _ in range(3)]
            served = [status == 200 for status, _ in answers]
            assert len(set(served)) == 1, (ip, answers)  # the same verdict every time
            seen[ip] = served[0]
            if not seen[ip]:  # the control: this client, node and app, outside the ranges' rule
                status, body = node_netns_get(netns, f"http://{via.ip}:{node_port}/", timeout=3)
                assert status == 200, (ip, "NodePort", body)
    finally:
        for index, ip in enumerate(LB_CLIENTS):
            remove_client(index, ip, via)
    assert seen == expected, {"ranges": [str(r) for r in ranges], "seen": seen}


# ================================================================ verify through the API server


def web_oracle(objects: list[dict[str, Any]], namespace: str) -> tuple[Cluster, Any]:
    """The policy evaluator over a render, and the rendered `web` pod as its destination."""
    template = rendered(objects, "Deployment", "web")["spec"]["template"]
    meta_spec = {"metadata": template["metadata"], "spec": template["spec"]}
    dest = pod_from_manifest(meta_spec, namespace)
    policies = [o for o in objects if o["kind"] != "Deployment"]
    return Cluster.from_objects(policies, extra_pods=[dest]), dest


@pytest.fixture(scope="module")
def dev_oracle(
    real_app: RealApp, stack_renders: dict[str, list[dict[str, Any]]]
) -> Iterator[tuple[Cluster, Any]]:
    yield web_oracle(stack_renders["dev"], real_app.stacks["dev"].namespace)


def conntrack_sources(real_app: RealApp, pod: dict[str, Any], port: int) -> set[str]:
    """Source addresses of the TCP connections to `pod`:`port` its node's conntrack saw."""
    netns = REAL_NODES[pod["spec"]["nodeName"]].netns
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, "conntrack", "-L", "-p", "tcp",
         "--orig-dst", pod["status"]["podIP"], "--orig-port-dst", str(port)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    return set(re.findall(r"src=([0-9.]+) dst=" + re.escape(pod["status"]["podIP"]), proc.stdout))


def test_stackctl_verify_dev_goes_through_the_api_servers_service_proxy(
    real_app: RealApp, dev_oracle: tuple[Cluster, Any], figures: dict[str, float]
) -> None:
    """Issue 27 item 7 on real nodes: `stackctl verify dev` with the deploy kubeconfig and no
    VERIFY_URLS reaches dev's ClusterIP app through the API server (on the host), whose
    connection the pod sees from HOST_IP, the address `network.apiServerCidrs` names."""
    oracle, dest = dev_oracle
    namespace = real_app.stacks["dev"].namespace
    assert verdict(oracle, External(HOST_IP), dest, 8080).allowed
    assert not verdict(oracle, External(HOST_IP), dest, 9090).allowed
    result = real_app.engine.stackctl("verify", "dev", "--timeout", "120")
    proxied = f"/api/v1/namespaces/{namespace}/services/http:web:80/proxy/health/ready"
    assert proxied in result.stdout and "200 ready" in result.stdout, result.stdout
    figures["app.verify_dev_via_proxy_s"] = result.seconds
    # the pod saw the API server's connections come from the host's bridge address
    sources = set().union(*(conntrack_sources(real_app, p, 8080) for p in real_app.pods("dev")))
    # (the others: the kubelet's probes, from the node's side of its pod bridge)
    assert HOST_IP in sources, sources
    # the CI script's path: no VERIFY_URLS, the deploy kubeconfig as a file (KUBECONFIG, as a
    # Jenkins file credential or a GitLab "File" variable hands it over)
    env = {k: v for k, v in real_app.engine.env.items() if k != "VERIFY_URLS"}
    assert "KUBERNETES_SERVICE_HOST" not in env and os.path.isfile(env["KUBECONFIG"])
    env.update({"PYTHON": str(real_app.engine.project / ".venv" / "bin" / "python"),
                "VERIFY_TIMEOUT": "120"})  # fmt: skip
    proc = subprocess.run(
        [str(real_app.engine.project / "scripts" / "ci" / "verify.sh"), "dev"],
        cwd=real_app.engine.project, env=env, capture_output=True, text=True, check=False,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proxied in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_the_policy_refuses_the_api_server_where_the_render_says_so(
    real_app: RealApp, kube: Kube, dev_oracle: tuple[Cluster, Any]
) -> None:
    """The same API server path to dev's metrics port (Service web-metrics), which the render
    admits only from the monitoring namespace: refused by kube-router, and the API server
    answers with an error instead of the page."""
    oracle, dest = dev_oracle
    assert not verdict(oracle, External(HOST_IP), dest, 9090).allowed
    namespace = real_app.stacks["dev"].namespace
    path = f"api/v1/namespaces/{namespace}/services/http:web-metrics:9090/proxy/metrics"
    refused = Kube(kube.creds, timeout=45)
    try:
        body = refused.request("GET", path)
    except ApiError as exc:
        assert exc.status >= 500, exc
    except OSError:
        pass  # the API server is still waiting on a dropped connection: refused as well
    else:
        raise AssertionError(f"the metrics port answered through the API server: {body!r:.200}")
    # while the app port answers on the same path
    assert kube.request(
        "GET", f"api/v1/namespaces/{namespace}/services/http:web:80/proxy/health/ready"
    ) == {"status": "ready"}


def test_without_api_server_cidrs_the_proxy_path_is_refused(
    real_app: RealApp, stack_renders: dict[str, list[dict[str, Any]]]
) -> None:
    """The rule is what admits the path: dev deployed without `network.apiServerCidrs` renders
    no ipBlock rule, the evaluator refuses HOST_IP, and `stackctl verify dev` fails; deployed
    with it again, verify passes."""

    def drop(doc: dict[str, Any]) -> None:
        doc["config"]["appstack:network"].pop("apiServerCidrs")

    def restore(doc: dict[str, Any]) -> None:
        doc["config"]["appstack:network"]["apiServerCidrs"] = [f"{HOST_IP}/32"]

    real_app.deploy("dev", edit=drop)
    try:
        dev = render_stack("dev", real_app.engine.project).objects
        oracle, dest = web_oracle(dev, real_app.stacks["dev"].namespace)
        assert not verdict(oracle, External(HOST_IP), dest, 8080).allowed
        # A policy change cuts no established connection (kube-router accepts ESTABLISHED
        # before its policy chains), and the API server keeps its proxy connection to the pod
        # alive between requests: found by the first run, where verify kept passing. So the
        # pods are replaced (the Deployment makes new ones, new addresses): the API server
        # must dial anew, as it does for every pod a rollout brings.
        namespace = real_app.stacks["dev"].namespace
        old = {p["metadata"]["name"] for p in real_app.pods("dev")}
        for name in old:
            real_app.kube.delete("Pod", name, namespace)
        real_app.kube.wait_for(
            "dev's pods replaced",
            lambda: {p["metadata"]["name"] for p in real_app.pods("dev")}.isdisjoint(old),
            timeout=120,
        )
        real_app.wait_settled(namespace)
        # kube-router applies the changed policy on its watch event: give it that time
        deadline = time.monotonic() + 60
        failed = real_app.engine.stackctl("verify", "dev", "--timeout", "15", check=False)
        while failed.returncode == 0 and time.monotonic() < deadline:
            time.sleep(2)
            failed = real_app.engine.stackctl("verify", "dev", "--timeout", "15", check=False)
        assert failed.returncode == 1, failed.stdout + failed.stderr
    finally:
        real_app.deploy("dev", edit=restore)
    ok = real_app.engine.stackctl("verify", "dev", "--timeout", "120")
    assert "200 ready" in ok.stdout, ok.stdout
