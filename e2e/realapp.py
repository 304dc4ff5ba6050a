"""The reference app on the real nodes (`make e2e-app`): built, pushed, pulled and run for real.

- **Image.** `app/Dockerfile`, unchanged, built by buildah on the stand-in base of e2e/image.py
  (a stand-in: Debian bookworm's Python under the name the Dockerfile's FROM uses). The built
  image is cached as an OCI archive under `$E2E_CACHE/images/app-<key>.oci.tar`, keyed by the
  files of `app/` and the stand-in's key, so a run that holds the real-node lock does not spend
  minutes building (`python -m e2e.realapp build-image` fills the cache beforehand; a run with
  an empty cache builds it itself).
- **Registry.** The run's distribution registry (e2e/registry.py: per-run CA, TLS, htpasswd) on
  the host's bridge address `HOST_IP`, which every node namespace reaches. The archive is copied
  to it by skopeo; the digest is the one the registry serves (`--digestfile`).
- **Trust.** Each node's containerd trusts the run's CA for that registry host and nothing more:
  `<config_path>/<host:port>/hosts.toml` with `ca = <its ca.crt>` (containerd's documented
  certs.d layout, docs/hosts.md; `config_path` is set by e2e/realnode/node.py and read on every
  pull, so it can be written after containerd started). No credentials are on the nodes: the
  kubelet pulls with the stack's own pull Secret (`appstack:registry` with `pullSecret: true`,
  components/registry.py) from the pod's `imagePullSecrets`.
- **Stacks.** dev and prod from the shipped stack files, changed only where a site differs
  (`site_config`): the registry (server, user; the password set as a Pulumi secret through
  stdin), the nodes (every app's `nodeSelector` = the real nodes' label, the stack's own
  placement config), addresses (dev: `network.apiServerCidrs` = the API server's source address
  as the pods see it; prod: the LoadBalancer's `loadBalancerSourceRanges` = the host's bridge
  network, where this run's clients are). Jenkins is off in prod: its image and plugins come
  from Jenkins' own artifact repository, which is not reachable here, so its controller cannot
  run on a real node. prod's signed-images gate (`imageSigning.required`) is off: it needs
  cosign (`make e2e-sign-tools`, not a dependency of this tier) and is proven by `make
  e2e-sign`; everything else of prod is as shipped.
- **Deploy.** `stackctl deploy <env> --yes --image <app>=<repo>@sha256:<digest>` for every app
  the stack defines, under the real engine (e2e/engine.py), with the policy pack.
- **LoadBalancer stand-in.** No cloud load balancer here: the LB emulator of e2e/cluster.py gives
  every LoadBalancer Service the address `LB_IP` (layout.py) and the host routes that address to
  the nodes (`ip route ... nexthop via <node>...`), where kube-proxy's LoadBalancer rules (source
  ranges included) DNAT it to a pod, as a MetalLB-style L2/L3 announcement would deliver it.
  Traffic stays inside the run's namespaces (10.245.x.x).

`RealApp` is the session object the `real_app` fixture of tests/e2e/conftest.py yields.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.engine import Engine
from e2e.image import DOCKERFILE, Buildah, cache_dir, dockerfile_base, run, standin_key
from e2e.kube import Kube
from e2e.realnode.layout import HOST_IP, LB_IP, NODE_LABEL, NODE_NET
from e2e.realnode.nodes import RealNodes
from e2e.registry import Registry

REPOSITORY = "appstack/web"
ENVIRONMENTS = ("dev", "prod")
APP_DIR = DOCKERFILE.parent


class RealAppError(RuntimeError):
    """A step of putting the app on the real nodes failed (the message says which)."""


# ---------------------------------------------------------------------------------- the image


def app_image_key(base: str) -> str:
    """Hash of what the app image is built from: every file under app/ (no caches) and the
    stand-in base's own key."""
    h = hashlib.sha256(standin_key(base).encode())
    for path in sorted(APP_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(str(path.relative_to(APP_DIR)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def app_image_archive(timings: dict[str, float] | None = None) -> Path:
    """The app image as a cached OCI archive (built by buildah when its key is new)."""
    base = dockerfile_base()
    archive = cache_dir() / "images" / f"app-{app_image_key(base)}.oci.tar"
    if archive.exists():
        return archive
    builder = Buildah(root=Path(tempfile.mkdtemp(prefix="appstack-buildah-")))
    try:
        builder.setup()
        builder.standin_base(base)
        tag = f"localhost/{REPOSITORY}:e2e"
        builder.build(DOCKERFILE, APP_DIR, tag)
        archive.parent.mkdir(parents=True, exist_ok=True)
        tmp = archive.with_suffix(f".{os.getpid()}.tmp")
        builder("push", "--quiet", tag, f"oci-archive:{tmp}:{tag}", what="buildah push (archive)")
        tmp.rename(archive)
        if timings is not None:  # under this tier's names (e2e-supply keeps its own)
            timings.update({k.replace("supply.", "app.", 1): v for k, v in builder.timings.items()})
    finally:
        shutil.rmtree(builder.root, ignore_errors=True)
    return archive


def push_archive(archive: Path, registry: Registry, tag: str) -> str:
    """skopeo copy of the archive to `<registry>/<REPOSITORY>:<tag>`; the digest the registry
    now serves for it."""
    digest_file = Path(tempfile.mkdtemp(prefix="appstack-digest-")) / "digest"
    try:
        run(
            [
                "skopeo", "copy", "--quiet", "--dest-authfile", str(registry.auth_file),
                "--dest-cert-dir", str(registry.cert_dir), "--digestfile", str(digest_file),
                f"oci-archive:{archive}", f"docker://{registry.host}/{REPOSITORY}:{tag}",
            ],
            f"skopeo copy to {registry.host}",
        )  # fmt: skip
        digest = digest_file.read_text().strip()
    finally:
        shutil.rmtree(digest_file.parent, ignore_errors=True)
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise RealAppError(f"skopeo wrote no digest ({digest!r})")
    served = registry.manifest_digest(REPOSITORY, tag)
    if served != digest:
        raise RealAppError(f"the registry serves {served} for {tag}, skopeo pushed {digest}")
    return digest


# ---------------------------------------------------------------------------------- the nodes


def hosts_toml(registry: Registry, ca: Path) -> str:
    """containerd's hosts.toml for the registry: HTTPS with the run's CA, pull and resolve."""
    return (
        f'server = "https://{registry.host}"\n\n'
        f'[host."https://{registry.host}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        f'  ca = "{ca}"\n'
    )


def trust_registry(nodes: RealNodes, registry: Registry) -> list[Path]:
    """Every node's containerd trusts the run's CA for the registry host (certs.d)."""
    written = []
    for node in nodes.nodes:
        host_dir = node.spec.base / "containerd" / "certs.d" / registry.host
        host_dir.mkdir(parents=True, exist_ok=True)
        ca = host_dir / "ca.crt"
        shutil.copyfile(registry.ca_file, ca)
        (host_dir / "hosts.toml").write_text(hosts_toml(registry, ca))
        written.append(host_dir / "hosts.toml")
    return written


def route_lb_ip(nodes: RealNodes) -> None:
    """The host sends the LoadBalancer stand-in address to the nodes (equal-cost next hops),
    as a network announcing a MetalLB-style address would; kube-proxy there serves it."""
    hops: list[str] = []
    for node in nodes.nodes:
        hops += ["nexthop", "via", node.spec.ip]
    subprocess.run(["ip", "route", "replace", f"{LB_IP}/32", *hops], check=True,
                   capture_output=True)  # fmt: skip


def unroute_lb_ip() -> None:
    subprocess.run(["ip", "route", "del", f"{LB_IP}/32"], check=False, capture_output=True)


def node_netns_get(netns: str, url: str, timeout: float = 5) -> tuple[int, str]:
    """GET `url` from inside a node's network namespace (its kube-proxy rules apply to the
    connection: nat OUTPUT); (HTTP status or 0 when the connection failed, body or error)."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        f"    r = urllib.request.urlopen(sys.argv[1], timeout={timeout})\n"
        "    print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
        "except OSError as e:\n"
        "    print(0); print(type(e).__name__, e)\n"
    )
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", script, url],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout + 20,
    )
    status, _, body = proc.stdout.partition("\n")
    if not status.strip().isdigit():
        return 0, (proc.stdout + proc.stderr).strip()
    return int(status), body.strip()


# ---------------------------------------------------------------------------------- the stacks


def site_config(doc: Mapping[str, Any], env: str, registry: Registry) -> dict[str, Any]:
    """The shipped stack file `doc` with only what differs on this site (module docstring)."""
    out: dict[str, Any] = json.loads(json.dumps(doc))
    config = out["config"]
    config["appstack:registry"] = {
        "server": registry.host,
        "username": registry.user,
        "pullSecret": True,
    }
    key, value = NODE_LABEL
    for settings in config["appstack:apps"].values():
        settings["nodeSelector"] = {key: value}
        service = settings.get("service") or {}
        if "loadBalancerSourceRanges" in service:
            service["loadBalancerSourceRanges"] = [NODE_NET]
    network = config.setdefault("appstack:network", {})
    # The API server dials pods from the host's bridge address (it runs on the host).
    network["apiServerCidrs"] = [f"{HOST_IP}/32"]
    if env == "prod":
        config["appstack:jenkins"] = {"enabled": False}
        config.setdefault("appstack:imageSigning", {})["required"] = False
    return out


@dataclass
class Deployed:
    """One stack on the real nodes, as the last deploy left it."""

    env: str
    namespace: str
    images: dict[str, str]
    """app -> the `<repo>@sha256:<digest>` reference it runs."""
    services: dict[str, dict[str, Any]]
    """Service name -> {"clusterIP", "ports" (name -> port), "loadBalancerIP" (or None)}."""
    deploy_seconds: float


@dataclass
class RealApp:
    """dev and prod on the real nodes; see the `real_app` fixture (tests/e2e/conftest.py)."""

    engine: Engine
    kube: Kube
    nodes: RealNodes
    registry: Registry
    digest: str
    """The digest of the built app image in the registry."""
    stacks: dict[str, Deployed] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _initialised: set[str] = field(default_factory=set)

    @property
    def repository(self) -> str:
        return f"{self.registry.host}/{REPOSITORY}"

    def ref(self, digest: str | None = None) -> str:
        return f"{self.repository}@{digest or self.digest}"

    def variant(self, name: str, env: Mapping[str, str] | None = None) -> str:
        """Another image of the app for an image bump: the built image's manifest with one more
        config label (`io.appstack.e2e.variant=<name>`), pushed as tag `variant-<name>`; same
        layers (nothing to rebuild, little to pull), a different digest. Returns that digest.
        `env` adds variables to the image config's `Env` (the app's documented switches, e.g.
        `FAULT_CRASH_ON_START`: a bad version built for the purpose, deployed like any other)."""
        manifest_types = "application/vnd.oci.image.manifest.v1+json"
        got = self.registry.api(
            "GET", f"/v2/{REPOSITORY}/manifests/{self.digest}", headers={"Accept": manifest_types}
        )
        if got.status != 200:
            raise RealAppError(f"manifest {self.digest}: HTTP {got.status}")
        manifest = json.loads(got.body)
        blob = self.registry.api("GET", f"/v2/{REPOSITORY}/blobs/{manifest['config']['digest']}")
        if blob.status != 200:
            raise RealAppError(f"config blob of {self.digest}: HTTP {blob.status}")
        config = json.loads(blob.body)
        labels = config.setdefault("config", {}).setdefault("Labels", {}) or {}
        config["config"]["Labels"] = {**labels, "io.appstack.e2e.variant": name}
        if env:
            kept = [e for e in config["config"].get("Env") or [] if e.split("=", 1)[0] not in env]
            config["config"]["Env"] = kept + [f"{key}={value}" for key, value in env.items()]
        data = json.dumps(config, sort_keys=True).encode()
        manifest["config"] = {
            **manifest["config"],
            "digest": self.registry.push_blob(REPOSITORY, data),
            "size": len(data),
        }
        manifest.setdefault("mediaType", manifest_types)
        return self.registry.push_manifest(REPOSITORY, f"variant-{name}", manifest)

    def apps(self, env: str) -> list[str]:
        return sorted(self.engine.read_config(env)["config"]["appstack:apps"])

    def init(self, env: str) -> None:
        """`pulumi stack init`, the site's changes in the stack file, the registry password as
        a secret (stdin: in no command line, no log)."""
        if env in self._initialised:
            return
        self.engine.init_stack(env)
        self.engine.write_config(env, site_config(self.engine.read_config(env), env, self.registry))
        proc = subprocess.run(
            [
                str(self.engine.binaries / "pulumi"), "config", "set", "--secret", "--path",
                "appstack:registry.password", "--stack", env, "--non-interactive",
            ],
            input=self.registry.password,
            cwd=self.engine.project,
            env=self.engine.env,
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RealAppError(f"pulumi config set appstack:registry.password: {proc.stderr}")
        self.engine.commit(f"e2e: {env} on the real nodes, pulling from {self.registry.host}")
        self._initialised.add(env)

    def deploy(
        self,
        env: str,
        digest: str | None = None,
        *,
        edit: Callable[[dict[str, Any]], None] | None = None,
        timing: str | None = None,
        timeout: float = 600,
    ) -> Deployed:
        """`stackctl deploy <env> --image <app>=<repo>@<digest>` for every app of the stack
        (default: the built digest); `edit` may change the stack file's document first
        (committed, so the update's history names it). Waits until every workload of the
        namespace is available and every pod of it Ready."""
        self.init(env)
        if edit is not None:
            doc = self.engine.read_config(env)
            edit(doc)
            self.engine.write_config(env, doc)
            self.engine.commit(f"e2e: {env} config change")
        images = {app: self.ref(digest) for app in self.apps(env)}
        args = [arg for app, ref in images.items() for arg in ("--image", f"{app}={ref}")]
        result = self.engine.stackctl("deploy", env, "--yes", *args, policy_cli=True,
                                      timing=timing)  # fmt: skip
        namespace = self.engine.read_config(env)["config"]["appstack:namespace"]
        self.wait_settled(namespace, timeout=timeout)
        services = {
            svc["metadata"]["name"]: {
                "clusterIP": svc["spec"].get("clusterIP"),
                "ports": {p.get("name") or str(p["port"]): p["port"] for p in svc["spec"]["ports"]},
                "loadBalancerIP": next(
                    (
                        i.get("ip")
                        for i in (svc.get("status") or {}).get("loadBalancer", {}).get("ingress")
                        or []
                    ),
                    None,
                ),
            }
            for svc in self.kube.list("Service", namespace)
        }
        self.stacks[env] = Deployed(env, namespace, images, services, result.seconds)
        return self.stacks[env]

    def wait_settled(self, namespace: str, timeout: float = 600) -> None:
        """Every Deployment rolled out at its wanted replicas (after the HPA's minimum) and
        every pod of the namespace Running and Ready; the nodes are checked while waiting."""
        deadline = time.monotonic() + timeout
        problems: list[str] = ["not checked yet"]
        while time.monotonic() < deadline:
            self.nodes.assert_running()
            problems = self._unsettled(namespace)
            if not problems:
                return
            time.sleep(1)
        raise RealAppError(f"{namespace} not settled after {timeout:.0f}s: {problems}")

    def _unsettled(self, namespace: str) -> list[str]:
        problems = []
        for hpa in self.kube.list("HorizontalPodAutoscaler", namespace):
            # A Deployment, or an Argo Rollout (argoRollouts), through its scale subresource.
            ref = hpa["spec"]["scaleTargetRef"]
            target = self.kube.get_or_none(ref["kind"], ref["name"], namespace)
            if target is None:
                problems.append(f"{ref['kind']} {ref['name']}: the HPA's target does not exist")
            elif (target["spec"].get("replicas") or 0) < hpa["spec"].get("minReplicas", 1):
                problems.append(f"{ref['name']}: below the HPA minimum")
        for ro in self.kube.list("Rollout", namespace):
            # The Argo Rollouts controller has read the Rollout's spec (its status says so);
            # the steps it walks from there are the tests' to wait for.
            observed = (ro.get("status") or {}).get("observedGeneration")
            if observed != str(ro["metadata"]["generation"]):
                problems.append(f"Rollout {ro['metadata']['name']}: generation not observed")
        for dep in self.kube.list("Deployment", namespace):
            status, want = dep.get("status") or {}, dep["spec"].get("replicas", 1)
            name = dep["metadata"]["name"]
            if status.get("observedGeneration", 0) < dep["metadata"]["generation"]:
                problems.append(f"{name}: generation not observed")
            elif status.get("updatedReplicas", 0) != want or status.get("readyReplicas", 0) != want:
                problems.append(f"{name}: {status.get('readyReplicas', 0)}/{want} ready")
            elif status.get("replicas", 0) != want:
                problems.append(f"{name}: {status.get('replicas')} pods, want {want}")
        for pod in self.kube.list("Pod", namespace):
            if pod["metadata"].get("deletionTimestamp"):
                problems.append(f"{pod['metadata']['name']}: terminating")
            elif not pod_ready(pod):
                phase = (pod.get("status") or {}).get("phase")
                problems.append(f"{pod['metadata']['name']}: {phase}, not Ready")
        return problems

    def pods(self, env: str, app: str = "web") -> list[dict[str, Any]]:
        """The app's pods in the env's namespace (by the stack's selector labels)."""
        namespace = self.stacks[env].namespace
        selector = f"app.kubernetes.io/name={app},app.kubernetes.io/instance={env}"
        return [
            p
            for p in self.kube.list("Pod", namespace, selector)
            if not p["metadata"].get("deletionTimestamp")
        ]

    def lb_url(self, env: str, service: str = "web", path: str = "/") -> str:
        svc = self.stacks[env].services[service]
        if not svc["loadBalancerIP"]:
            raise RealAppError(f"{env}: Service {service} has no LoadBalancer address")
        return f"http://{svc['loadBalancerIP']}:{svc['ports']['http']}{path}"

    def cluster_ip_url(self, env: str, service: str = "web", path: str = "/") -> str:
        svc = self.stacks[env].services[service]
        return f"http://{svc['clusterIP']}:{svc['ports']['http']}{path}"


def pod_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conds = status.get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
    return ready and status.get("phase") == "Running"


# ---------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """`python -m e2e.realapp build-image`: build (or find) the cached app image archive."""
    parser = argparse.ArgumentParser(prog="python -m e2e.realapp")
    parser.add_argument("command", choices=["build-image"])
    parser.parse_args(argv)
    timings: dict[str, float] = {}
    started = time.monotonic()
    archive = app_image_archive(timings)
    print(f"{archive} ({time.monotonic() - started:.1f}s) {timings or '(cached)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
