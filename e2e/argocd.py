"""A real Argo CD on the e2e control plane, for `make e2e-gitops` and, with the real nodes of
`make e2e-node`, `make e2e-gitops-node` (issue 32 item 6).

Real Argo CD, not a stand-in: the `argocd` binary `build.sh argocd` builds from the Go module
`github.com/argoproj/argo-cd/v3` (version: `e2e/tools/argocd/go.mod`), run as two processes of
the run on this host, as e2e/cluster.py runs the control plane (no pods, no images):

- `argocd-repo-server` (the multi-call binary with `ARGOCD_BINARY_NAME`), gRPC on loopback
  with the self-signed certificate it makes at start when none is mounted (the controller does
  not verify it unless `--repo-server-strict-tls`, as in the upstream install), cloning the
  manifests repository with Debian's git;
- `argocd-application-controller` with the run's admin kubeconfig and `--namespace argocd`
  (where it reads Applications and settings). It applies to the control plane registered as a
  cluster by its URL (`add_cluster`, a cluster Secret with the admin client certificate; the
  URL is on loopback, or on the host's bridge address with real nodes): Argo CD's built-in
  in-cluster destination needs a pod's service-account files;
- Debian's `redis-server` on loopback, their shared cache.

Beside them, what the upstream install manifests would create and these two read: the CRDs of
the module's `manifests/crds` (Application, AppProject, ApplicationSet), the namespace, the
`argocd-cm` (annotation resource tracking, the reconciliation period), `argocd-rbac-cm`,
`argocd-secret` (a random `server.secretkey`, written to the API only), the `default`
AppProject (which only the API server, not run here, would create at start) and a repository
Secret for the manifests repository. Neither the API server, the UI, Dex, notifications nor the
ApplicationSet controller runs: the controller polls git every `RESYNC_SECONDS` (what a
webhook through the API server would shorten).

The manifests repository is a bare git repository in the run's directory, cloned by the
repo-server over file:// (go-git's file transport and the git CLI both read it there).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster import REPO_ROOT, Cluster, ClusterError, free_port, go_module_dir
from e2e.cluster import _set_parent_death_signal as parent_death_signal
from e2e.kube import ApiError

ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
GOMOD = REPO_ROOT / "e2e" / "tools" / "argocd" / "go.mod"
NAMESPACE = "argocd"
CRD_FILES = (
    "manifests/crds/application-crd.yaml",
    "manifests/crds/appproject-crd.yaml",
    "manifests/crds/applicationset-crd.yaml",
)
#: How often the controller compares every Application with git (argocd-cm
#: `timeout.reconciliation`, upstream default 120 s); no jitter, so a figure is not a dice roll.
RESYNC_SECONDS = 5
FIELD_MANAGER = "appstack-e2e-argocd-install"
WRAPPERS = ("git-verify-wrapper.sh", "gpg-wrapper.sh")


def argocd_version() -> str:
    """The argo-cd/v3 version e2e/tools/argocd/go.mod pins."""
    match = re.search(
        rf"^\s*(?:require\s+)?{re.escape(ARGOCD_MODULE)}\s+(v\S+)", GOMOD.read_text(), re.M
    )
    if match is None:
        raise ClusterError(f"{GOMOD} does not require {ARGOCD_MODULE}")
    return match.group(1)


@dataclass
class ArgoProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class ArgoCD:
    """Argo CD's controller and repo-server against `cluster`; a context manager."""

    cluster: Cluster
    root: Path
    module: Path = field(init=False)
    processes: list[ArgoProcess] = field(default_factory=list, init=False)
    timings: dict[str, float] = field(default_factory=dict, init=False)

    @property
    def binary(self) -> Path:
        return self.cluster.binaries / "argocd"

    def __enter__(self) -> ArgoCD:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if not os.access(self.binary, os.X_OK):
            raise ClusterError(
                f"missing {self.binary}: build it with `make e2e-gitops-tools` "
                "(e2e/tools/build.sh argocd)"
            )
        for tool in ("git", "redis-server"):
            if shutil.which(tool) is None:
                raise ClusterError(f"`{tool}` is not on PATH: `make e2e-gitops-tools` installs it")
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("logs", "home", "tmp", "redis", "ssh", "tls", "gpg"):
            (self.root / sub).mkdir(exist_ok=True)
        started = time.monotonic()
        try:
            self.module = go_module_dir(f"{ARGOCD_MODULE}@{argocd_version()}")
            self._install_scripts()
            self._install_crds()
            self._install_settings()
            self._start_redis()
            self._start_repo_server()
            self._start_controller()
        except BaseException:
            self.stop()
            raise
        self.timings["gitops.argocd_start"] = time.monotonic() - started

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.popen.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        for proc in reversed(self.processes):
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(timeout=5)
        self.processes.clear()

    def assert_running(self) -> None:
        for proc in self.processes:
            if proc.popen.poll() is not None:
                raise ClusterError(
                    f"{proc.name} exited ({proc.popen.returncode}):\n{self.tail(proc)}"
                )

    def tail(self, proc: ArgoProcess, lines: int = 40) -> str:
        return "\n".join(proc.log.read_text(errors="replace").splitlines()[-lines:])

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{self.tail(p)}" for p in self.processes)

    # ---------------------------------------------------------------- parts

    def _install_scripts(self) -> None:
        """The scripts the upstream image puts on PATH beside the binary (its Dockerfile: COPY
        hack/gpg-wrapper.sh hack/git-verify-wrapper.sh /usr/local/bin/): the repo-server runs
        git-verify-wrapper.sh on every checked-out revision (util/git VerifyCommitSignature)
        and answers "permission denied" when it is missing."""
        scripts = self.root / "bin"
        scripts.mkdir(exist_ok=True)
        for name in WRAPPERS:
            target = scripts / name
            shutil.copyfile(self.module / "hack" / name, target)
            target.chmod(0o755)

    def _install_crds(self) -> None:
        module = self.module
        kube = self.cluster.kube
        names = []
        for rel in CRD_FILES:
            doc = yaml.safe_load((module / rel).read_text(encoding="utf-8"))
            doc.get("metadata", {}).pop("annotations", None)
            kube.apply(doc, field_manager=FIELD_MANAGER)
            names.append(doc["metadata"]["name"])
        kube.wait_established(names, "Argo CD CRDs")

    def _install_settings(self) -> None:
        kube = self.cluster.kube
        labels = {"app.kubernetes.io/part-of": "argocd"}
        objects: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm", "namespace": NAMESPACE, "labels": labels},
                "data": {
                    # Annotation tracking (v3's default, said explicitly): the rendered
                    # app.kubernetes.io/instance label is the stack's, part of selectors.
                    "application.resourceTrackingMethod": "annotation",
                    "timeout.reconciliation": f"{RESYNC_SECONDS}s",
                    "timeout.reconciliation.jitter": "0s",
                    # a host process has no in-cluster config: the control plane is registered
                    # as a cluster by its URL instead (add_cluster)
                    "cluster.inClusterEnabled": "false",
                },
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "argocd-rbac-cm", "namespace": NAMESPACE, "labels": labels},
                "data": {"policy.default": "role:readonly"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "argocd-secret", "namespace": NAMESPACE, "labels": labels},
                "type": "Opaque",
                "stringData": {"server.secretkey": secrets.token_urlsafe(32)},
            },
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": "default", "namespace": NAMESPACE},
                "spec": {  # what argocd-server's initializeDefaultProject creates
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                },
            },
        ]
        for obj in objects:
            kube.apply(obj, field_manager=FIELD_MANAGER)

    def add_repository(self, url: str) -> None:
        """A repository Secret (argocd.argoproj.io/secret-type: repository) for `url`, no
        credentials: what `argocd repo add <url>` writes."""
        self.cluster.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "repo-manifests",
                    "namespace": NAMESPACE,
                    "labels": {"argocd.argoproj.io/secret-type": "repository"},
                },
                "type": "Opaque",
                "stringData": {"type": "git", "url": url, "name": "manifests"},
            },
            field_manager=FIELD_MANAGER,
        )

    @property
    def server(self) -> str:
        """The control plane's API server URL, as Argo CD's cluster Secret names it."""
        return f"https://{self.cluster.address}:{self.cluster.apiserver_port}"

    def add_cluster(self) -> str:
        """The control plane as an Argo CD cluster (a Secret with `argocd.argoproj.io/secret-type:
        cluster`, what `argocd cluster add` writes), with the run's admin client certificate;
        returns its server URL, an Application's `destination.server`. Argo CD's built-in
        in-cluster destination (https://kubernetes.default.svc) reads a pod's service-account
        files (client-go rest.InClusterConfig), which a process on the host has not: it is
        switched off in argocd-cm."""
        pki = self.cluster.pki

        def b64(name: str) -> str:
            return base64.b64encode((pki / name).read_bytes()).decode()

        config = {
            "tlsClientConfig": {
                "caData": b64("ca.crt"),
                "certData": b64("admin.crt"),
                "keyData": b64("admin.key"),
            }
        }
        self.cluster.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "cluster-e2e",
                    "namespace": NAMESPACE,
                    "labels": {"argocd.argoproj.io/secret-type": "cluster"},
                },
                "type": "Opaque",
                "stringData": {
                    "name": "e2e",
                    "server": self.server,
                    "config": json.dumps(config),
                },
            },
            field_manager=FIELD_MANAGER,
        )
        return self.server

    def _env(self, binary_name: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.root / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.root / "home"),
            "TMPDIR": str(self.root / "tmp"),
            "ARGOCD_BINARY_NAME": binary_name,
            "ARGOCD_GPG_ENABLED": "false",
            # argocd-cm's timeout.reconciliation, as the upstream Deployments pass it to both
            # (manifests/base/*/: env from configMapKeyRef): the repo-server caches a branch's
            # head that long (revision-cache-expiration), the controller compares that often.
            "ARGOCD_RECONCILIATION_TIMEOUT": f"{RESYNC_SECONDS}s",
            "ARGOCD_RECONCILIATION_JITTER": "0s",
            "ARGOCD_SSH_DATA_PATH": str(self.root / "ssh"),
            "ARGOCD_TLS_DATA_PATH": str(self.root / "tls"),
            "ARGOCD_GNUPGHOME": str(self.root / "gpg"),
            "ARGOCD_GPG_DATA_PATH": str(self.root / "gpg"),
        }
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ArgoProcess:
        log = self.root / "logs" / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env=env,
                start_new_session=True,
                preexec_fn=parent_death_signal,
            )
        proc = ArgoProcess(name, popen, log)
        self.processes.append(proc)
        return proc

    def _wait_port(self, proc: ArgoProcess, port: int, timeout: float = 180) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise ClusterError(
                    f"{proc.name} exited ({proc.popen.returncode}):\n{self.tail(proc)}"
                )
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            time.sleep(0.5)
        raise ClusterError(
            f"{proc.name} not listening on {port} after {timeout:.0f}s:\n{self.tail(proc)}"
        )

    def _start_redis(self) -> None:
        self.redis_port = free_port()
        argv = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port),
            "--protected-mode", "yes", "--save", "", "--appendonly", "no",
            "--dir", str(self.root / "redis"), "--loglevel", "warning",
        ]  # fmt: skip
        proc = self._spawn("redis-server", argv)
        self._wait_port(proc, self.redis_port, timeout=30)

    def _start_repo_server(self) -> None:
        self.repo_server_port = free_port()
        argv = [
            str(self.binary),
            "--address", "127.0.0.1", "--port", str(self.repo_server_port),
            "--metrics-address", "127.0.0.1", "--metrics-port", str(free_port()),
            "--redis", f"127.0.0.1:{self.redis_port}",
            "--logformat", "text", "--loglevel", "info",
        ]  # fmt: skip
        proc = self._spawn("argocd-repo-server", argv, env=self._env("argocd-repo-server"))
        self._wait_port(proc, self.repo_server_port)

    def _start_controller(self) -> None:
        self.controller_metrics_port = free_port()
        argv = [
            str(self.binary),
            "--kubeconfig", str(self.cluster.kubeconfig), "--namespace", NAMESPACE,
            "--repo-server", f"127.0.0.1:{self.repo_server_port}",
            "--redis", f"127.0.0.1:{self.redis_port}",
            "--metrics-port", str(self.controller_metrics_port),
            "--self-heal-timeout-seconds", "2",
            "--status-processors", "2", "--operation-processors", "2",
            "--logformat", "text", "--loglevel", "info",
        ]  # fmt: skip
        name = "argocd-application-controller"
        proc = self._spawn(name, argv, env=self._env(name))
        self._wait_port(proc, self.controller_metrics_port)

    # ---------------------------------------------------------------- reading

    def application(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.cluster.kube.get("Application", name, NAMESPACE)
        return result

    def wait_synced(self, name: str, revision: str, timeout: float = 300) -> dict[str, Any]:
        """Until the Application is Synced at `revision`, Healthy, its last operation Succeeded."""

        def done() -> dict[str, Any] | None:
            self.assert_running()
            with suppress(ApiError):
                app = self.application(name)
                status = app.get("status") or {}
                sync = status.get("sync") or {}
                op = status.get("operationState") or {}
                op_revision = ((op.get("syncResult") or {}).get("revision")) or ""
                if (
                    sync.get("status") == "Synced"
                    and sync.get("revision") == revision
                    and (status.get("health") or {}).get("status") == "Healthy"
                    and op.get("phase") == "Succeeded"
                    and op_revision == revision
                ):
                    return app
            return None

        try:
            result: dict[str, Any] = self.cluster.kube.wait_for(
                f"Application {name} synced and healthy at {revision[:12]}", done, timeout=timeout
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nstatus: {self._status(name)}\n{self.logs()}") from None
        return result

    def wait_operation(self, name: str, revision: str, timeout: float = 300) -> dict[str, Any]:
        """Until the Application's last sync operation at `revision` Succeeded (its sync status
        may stay OutOfSync: an object kept by Prune=false)."""

        def done() -> dict[str, Any] | None:
            self.assert_running()
            with suppress(ApiError):
                app = self.application(name)
                op = (app.get("status") or {}).get("operationState") or {}
                if (
                    op.get("phase") == "Succeeded"
                    and (op.get("syncResult") or {}).get("revision") == revision
                ):
                    return app
            return None

        try:
            result: dict[str, Any] = self.cluster.kube.wait_for(
                f"Application {name} sync operation at {revision[:12]}", done, timeout=timeout
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nstatus: {self._status(name)}\n{self.logs()}") from None
        return result

    def _status(self, name: str) -> Any:
        with suppress(ApiError):
            status = self.application(name).get("status") or {}
            return {k: status.get(k) for k in ("sync", "health", "operationState", "conditions")}
        return None
