"""A real Kubernetes control plane on loopback, with kwok-simulated nodes, for `make e2e`.

What `Cluster.start()` brings up, from the binaries `make e2e-tools` built from Go modules
(`$APPSTACK_E2E_BIN`, default `~/.cache/appstack-e2e/bin`):

- a CA, the API server's serving certificate, an admin client certificate (`O=system:masters`)
  and the service-account signing key pair, generated with `openssl` in a temp dir; a second CA
  (front-proxy) and the API server's client certificate of it for the aggregation layer
  (requestheader flags, `--enable-aggregator-routing`: metrics-server's APIService on the real
  nodes);
- etcd (data dir in the temp dir), kube-apiserver (authorization Node,RBAC; its default
  admission plugins, PodSecurity included, so the `restricted` label on our namespaces is
  enforced by the real admission plugin), kube-controller-manager (service-account tokens,
  `--use-service-account-credentials`, the Deployment/ReplicaSet/StatefulSet/HPA/endpoint/PV
  controllers; the HPA's sync period HPA_SYNC_PERIOD) and kube-scheduler;
- kwok, managing six Node objects over three zones (`topology.kubernetes.io/zone`), with the
  upstream stages (node-initialize, node heartbeat with lease, pod-ready/complete/delete) read
  from kwok's module zip: pods get scheduled by the real scheduler and kwok marks them running
  and ready;
- the upstream CustomResourceDefinitions of ServiceMonitor/PrometheusRule (prometheus-operator
  v0.93.0) and Rollout/AnalysisTemplate (argo-rollouts v1.10.2), read from those projects' Go
  module zips (the same releases as tests/schemas/crd/SOURCES.md);
- a default StorageClass without a provisioner and pre-created hostPath PersistentVolumes, so the
  PV controller binds claims (JENKINS_HOME) as a provisioner would;
- a LoadBalancer emulator: no cloud controller runs here, so a thread does what one does and
  writes `status.loadBalancer.ingress` (a loopback IP) on every Service of type LoadBalancer.
  The Kubernetes provider waits for exactly that field before it reports such a Service ready
  (pulumi-kubernetes `provider/pkg/await/service.go`, `processServiceEvent`).

Everything runs in its own process group with a parent-death signal, and `stop()` (also on
Ctrl-C / SIGTERM through the context manager and the signal handler) stops every process and
removes the temp dir. `python -m e2e.cluster` starts one for manual use and prints KUBECONFIG.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from e2e.kube import ApiError, Credentials, Kube

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = Path.home() / ".cache" / "appstack-e2e" / "bin"
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

# Upstream releases whose CRDs we install: the releases ../shared/crd-schemas was taken from.
CRD_MODULES = {
    "github.com/prometheus-operator/prometheus-operator@v0.93.0": (
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ),
    "github.com/argoproj/argo-rollouts@v1.10.2": (
        "manifests/crds/rollout-crd.yaml",
        "manifests/crds/analysis-template-crd.yaml",
    ),
}
#: Modules whose go.mod asks for a newer Go than the machine's: downloaded with the toolchain
#: their tools family builds with (e2e/tools/build.sh), else `go mod download` answers
#: "requires go >= 1.26.10 (running go 1.26.8; GOTOOLCHAIN=local)" and gives no directory.
GO_TOOLCHAINS = {"github.com/argoproj/argo-rollouts@v1.10.2": "go1.27.3"}
KWOK_MODULE = "sigs.k8s.io/kwok"
KWOK_FALLBACK_VERSION = "v0.8.0"
# The default stages kwokctl writes into a kwok config (E2E-NOTES §6; kwok's
# pkg/kwokctl/runtime/config.go), from kwok's module zip.
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")

ZONES = ("e2e-zone-a", "e2e-zone-b", "e2e-zone-c")
NODES_PER_ZONE = 2
NODE_ALLOCATABLE = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi"}
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
STORAGE_CLASS = "e2e-local"
PERSISTENT_VOLUMES = 4
PV_SIZE = "100Gi"
LB_FIELD_MANAGER = "appstack-e2e-cloud-controller"
LB_IP = "127.0.0.1"
# The CN of the API server's client certificate towards aggregated API servers
# (--requestheader-allowed-names).
FRONT_PROXY_CLIENT = "front-proxy-client"
HPA_SYNC_PERIOD = "5s"


class ClusterError(RuntimeError):
    """The control plane could not be started (the message says which part and why)."""


def bin_dir() -> Path:
    return Path(os.environ.get("APPSTACK_E2E_BIN") or DEFAULT_BIN)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec
    # PR_SET_PDEATHSIG (1): the kernel kills the child if the harness dies (even by SIGKILL).
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def go_module_dir(module_at_version: str) -> Path:
    """Directory of a module in the Go module cache, downloading it through the module proxy."""
    env = dict(os.environ)
    if module_at_version in GO_TOOLCHAINS:
        env["GOTOOLCHAIN"] = GO_TOOLCHAINS[module_at_version]
    try:
        proc = subprocess.run(
            ["go", "mod", "download", "-json", module_at_version],
            capture_output=True,
            text=True,
            check=False,
            cwd=tempfile.gettempdir(),  # outside any module: plain download of module@version
            timeout=600,
            env=env,
        )
    except FileNotFoundError as exc:
        raise ClusterError("`go` is not on PATH (needed to fetch CRDs and kwok stages)") from exc
    try:
        info = json.loads(proc.stdout or "{}")
    except ValueError:
        info = {}
    if proc.returncode != 0 or not info.get("Dir"):
        detail = info.get("Error") or proc.stderr.strip() or proc.stdout.strip()
        raise ClusterError(f"go mod download {module_at_version} failed: {detail}")
    return Path(info["Dir"])


def kwok_version() -> str:
    """kwok's version as pinned by the e2e tools module (e2e/tools/**/go.mod)."""
    env = os.environ.get("APPSTACK_E2E_KWOK_VERSION")
    if env:
        return env
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(KWOK_MODULE)}\s+(v\S+)", re.M)
    for gomod in sorted((REPO_ROOT / "e2e" / "tools").glob("**/go.mod")):
        match = pattern.search(gomod.read_text(encoding="utf-8"))
        if match:
            return match.group(1)
    return KWOK_FALLBACK_VERSION


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    """The control plane; use as a context manager or call start()/stop()."""

    binaries: Path = field(default_factory=bin_dir)
    # Where the API server listens and what it advertises: loopback for `make e2e`; the host's
    # address on the real nodes' bridge for `make e2e-node` (e2e/realnode), so that kubelets,
    # kube-proxy and pods in the nodes' network namespaces reach it.
    address: str = "127.0.0.1"
    # The address the LoadBalancer emulator gives LoadBalancer Services and Ingresses: loopback
    # for `make e2e` (kwok pods serve nothing); the real nodes' LoadBalancer stand-in (routed to
    # the nodes' kube-proxy, e2e/realapp.py) in a real-node session.
    lb_ip: str = LB_IP
    keep: bool = field(default_factory=lambda: os.environ.get("APPSTACK_E2E_KEEP") == "1")
    root: Path = field(init=False)
    kubeconfig: Path = field(init=False)
    kube: Kube = field(init=False)
    processes: list[Process] = field(default_factory=list, init=False)
    _stop_lb: threading.Event = field(default_factory=threading.Event, init=False)
    _lb_thread: threading.Thread | None = field(default=None, init=False)
    _stopped: bool = field(default=False, init=False)

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._check_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="appstack-e2e-"))
        (self.root / "logs").mkdir()
        try:
            self._certificates()
            self._start_etcd()
            self._start_apiserver()
            self._start_controller_manager()
            self._start_scheduler()
            self._install_crds()
            self._storage()
            self._start_kwok()
            self._nodes()
            self._wait_for_controllers()
            self._start_lb_emulator()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop_lb.set()
        if self._lb_thread is not None:
            self._lb_thread.join(timeout=5)
        for proc in reversed(self.processes):
            if proc.popen.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(self.processes):
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(timeout=5)
        if hasattr(self, "root") and self.root.exists():
            if self.keep:
                print(f"e2e: kept {self.root} (APPSTACK_E2E_KEEP=1)", file=sys.stderr)
            else:
                shutil.rmtree(self.root, ignore_errors=True)

    # ---------------------------------------------------------------- parts

    def _check_binaries(self) -> None:
        missing = [
            b
            for b in (*CONTROL_PLANE_BINARIES, "kwok")
            if not os.access(self.binaries / b, os.X_OK)
        ]
        if missing:
            raise ClusterError(
                f"missing in {self.binaries}: {', '.join(missing)}; build them with "
                "`make e2e-tools` (or set APPSTACK_E2E_BIN)"
            )

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(
            ["openssl", *args], cwd=self.pki, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise ClusterError(f"openssl {args[0]} failed: {proc.stderr.strip()}")

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    def _certificates(self) -> None:
        self.pki.mkdir()
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=appstack-e2e-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip
        extra_ip = "" if self.address == "127.0.0.1" else f"IP:{self.address},"
        sans = (
            f"IP:127.0.0.1,{extra_ip}IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
        )
        self._leaf("apiserver", "/CN=kube-apiserver", f"subjectAltName={sans}\n", "serverAuth")
        self._leaf("admin", "/O=system:masters/CN=appstack-e2e-admin", "", "clientAuth")
        # The API server's client certificate towards kubelets (pods/log, exec, port-forward on
        # real nodes, e2e/node.py); kwok nodes serve none of these.
        self._leaf(
            "apiserver-kubelet-client",
            "/O=system:masters/CN=kube-apiserver-kubelet-client",
            "",
            "clientAuth",
        )
        # The aggregation layer (an APIService such as metrics-server's v1beta1.metrics.k8s.io
        # on the real nodes): the API server proxies to the extension server with this client
        # certificate, of a CA of its own as kubeadm's front-proxy-ca (the extension server
        # trusts requests it signed to carry the user in X-Remote-* headers, so the cluster CA,
        # which signs every client, must not be that CA).
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "front-proxy-ca.key", "-out", "front-proxy-ca.crt",
            "-subj", "/CN=appstack-e2e-front-proxy-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )  # fmt: skip
        self._leaf("front-proxy-client", f"/CN={FRONT_PROXY_CLIENT}", "", "clientAuth",
                   ca="front-proxy-ca")  # fmt: skip
        self._openssl("genrsa", "-out", "sa.key", "2048")
        self._openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        for key in self.pki.glob("*.key"):
            key.chmod(0o600)
        self.apiserver_port = free_port()
        server = f"https://{self.address}:{self.apiserver_port}"
        self.kubeconfig = self.root / "kubeconfig"
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "appstack-e2e",
                            "cluster": {
                                "server": server,
                                "certificate-authority": str(self.pki / "ca.crt"),
                            },
                        }
                    ],
                    "users": [
                        {
                            "name": "admin",
                            "user": {
                                "client-certificate": str(self.pki / "admin.crt"),
                                "client-key": str(self.pki / "admin.key"),
                            },
                        }
                    ],
                    "contexts": [
                        {
                            "name": "appstack-e2e",
                            "context": {"cluster": "appstack-e2e", "user": "admin"},
                        }
                    ],
                    "current-context": "appstack-e2e",
                },
                indent=2,
            )
        )
        self.kubeconfig.chmod(0o600)
        self.kube = Kube(
            Credentials(
                server=server,
                ca_file=self.pki / "ca.crt",
                cert_file=self.pki / "admin.crt",
                key_file=self.pki / "admin.key",
            )
        )

    def _leaf(self, name: str, subject: str, extra: str, usage: str, ca: str = "ca") -> None:
        """pki/<name>.crt/.key signed by pki/<ca>.crt (the cluster CA unless told)."""
        ext = self.pki / f"{name}.ext"
        ext.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\n{extra}"
        )
        self._openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject,
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", ext.name,
        )  # fmt: skip

    def _spawn(self, name: str, args: list[str]) -> Process:
        log = self.root / "logs" / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(self.binaries / name), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                start_new_session=True,  # own process group: stop() signals the whole group
                preexec_fn=_set_parent_death_signal,
            )
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def _wait_http_ok(self, proc: Process, what: str, check: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise ClusterError(
                    f"{proc.name} exited ({proc.popen.returncode}):\n{self.tail(proc)}"
                )
            with suppress(Exception):
                if check():
                    return
            time.sleep(0.5)
        raise ClusterError(f"{what} not ready after {timeout:.0f}s:\n{self.tail(proc)}")

    def tail(self, proc: Process, lines: int = 30) -> str:
        text = proc.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = self._spawn(
            "etcd",
            [
                "--name=e2e",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=e2e=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # throwaway data: no fsync on a shared disk
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            import urllib.request

            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as resp:
                return b'"health":"true"' in resp.read()

        self._wait_http_ok(proc, "etcd", healthy)

    def _start_apiserver(self) -> None:
        pki = self.pki
        self.apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP",
                # Default admission plugins stay on (PodSecurity among them); NodeRestriction
                # as a real cluster has it.
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=false",
                # A loopback address cannot be an Endpoints address: no reconciler for the
                # `kubernetes` Service then (nothing under kwok reaches the API through it). On
                # the real nodes' bridge, pods (CoreDNS, kube-router) reach it at its ClusterIP
                # through kube-proxy, so the lease reconciler publishes the address.
                "--endpoint-reconciler-type="
                + ("none" if self.address == "127.0.0.1" else "lease"),
                "--profiling=false",
                "--enable-priority-and-fairness=false",
                # Aggregation layer (kube-apiserver's documented flags for it): who may pass
                # the user on in headers, and the client certificate it proxies with.
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                # To an APIService's endpoint (the pod address), not its ClusterIP: the API
                # server runs on the host, where the service range is unreachable (kube-proxy
                # runs in the nodes' namespaces); the host routes the pod ranges to the nodes.
                "--enable-aggregator-routing=true",
            ],
        )
        self._wait_http_ok(
            self.apiserver,
            "kube-apiserver",
            lambda: self.kube.request("GET", "readyz") == "ok",
            timeout=180,
        )

    def _component_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--leader-elect=false",
        ]

    def _start_controller_manager(self) -> None:
        self.controller_manager = self._spawn(
            "kube-controller-manager",
            [
                *self._component_args(),
                f"--service-account-private-key-file={self.pki / 'sa.key'}",
                f"--root-ca-file={self.pki / 'ca.crt'}",
                "--use-service-account-credentials=true",
                "--controllers=*",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # The HPA controller's period (default 15 s): each scale decision waits for one;
                # on the real nodes it reads metrics-server's metrics.k8s.io.
                f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
                "--profiling=false",
            ],
        )

    def _start_scheduler(self) -> None:
        self.scheduler = self._spawn(
            "kube-scheduler", [*self._component_args(), "--profiling=false"]
        )

    def _install_crds(self) -> None:
        docs = []
        for module, files in CRD_MODULES.items():
            mod_dir = go_module_dir(module)
            for rel in files:
                docs.append(yaml.safe_load((mod_dir / rel).read_text(encoding="utf-8")))
        self.kube.install_crds(docs, field_manager="appstack-e2e", what="CRDs")
        self.crds = [doc["metadata"]["name"] for doc in docs]

    def _storage(self) -> None:
        self.kube.create(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": STORAGE_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "kubernetes.io/no-provisioner",
                "reclaimPolicy": "Retain",
                "volumeBindingMode": "Immediate",
            }
        )
        for i in range(PERSISTENT_VOLUMES):
            path = self.root / "volumes" / f"pv-{i}"
            path.mkdir(parents=True)
            self.kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"e2e-pv-{i}"},
                    "spec": {
                        "capacity": {"storage": PV_SIZE},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": STORAGE_CLASS,
                        "hostPath": {"path": str(path), "type": "Directory"},
                    },
                }
            )

    def _start_kwok(self) -> None:
        version = kwok_version()
        mod_dir = go_module_dir(f"{KWOK_MODULE}@{version}")
        # kwok applies no defaults to a KwokConfiguration read from --config (zero parallelism is
        # refused): the values of its generated defaults, spelled out
        # (pkg/apis/config/v1alpha1/zz_generated.defaults.go).
        options = {
            "podPlayStageParallelism": 4,
            "nodePlayStageParallelism": 4,
            "nodeLeaseParallelism": 4,
            "podsOnNodeSyncParallelism": 1,
            "enablePodsOnNodeSyncListPager": True,
            "enablePodsOnNodeSyncStreamWatch": False,
        }
        kwok_config = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            "options": options,
        }
        docs = [yaml.safe_dump(kwok_config)]
        docs += [(mod_dir / rel).read_text(encoding="utf-8") for rel in KWOK_STAGES]
        config = self.root / "kwok.yaml"
        config.write_text("\n---\n".join(docs))
        key, value = KWOK_NODE_ANNOTATION
        self.kwok = self._spawn(
            "kwok",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--config={config}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={key}={value}",
                f"--cidr={POD_CIDR}",
                "--node-ip=10.0.0.1",
                "--node-lease-duration-seconds=40",
            ],
        )

    def _nodes(self) -> None:
        key, value = KWOK_NODE_ANNOTATION
        self.node_names = []
        for zone in ZONES:
            for i in range(NODES_PER_ZONE):
                name = f"kwok-{zone.removeprefix('e2e-')}-{i}"
                self.node_names.append(name)
                self.kube.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {
                            "name": name,
                            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
                            "labels": {
                                "kubernetes.io/hostname": name,
                                "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64",
                                "topology.kubernetes.io/region": "e2e",
                                "topology.kubernetes.io/zone": zone,
                                "type": "kwok",
                            },
                        },
                        "status": {
                            "allocatable": NODE_ALLOCATABLE,
                            "capacity": NODE_ALLOCATABLE,
                        },
                    }
                )

        def all_ready() -> bool:
            if self.kwok.popen.poll() is not None:
                raise ClusterError(f"kwok exited:\n{self.tail(self.kwok)}")
            nodes = self.kube.list("Node")
            ready = [
                n
                for n in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
            ]
            return len(ready) == len(self.node_names)

        self.kube.wait_for("kwok nodes Ready", all_ready, timeout=120)

    def _wait_for_controllers(self) -> None:
        # The service-account controller creates `default` in every namespace, the root-CA
        # publisher `kube-root-ca.crt`: both prove kube-controller-manager is running.
        for proc in (self.controller_manager, self.scheduler):
            if proc.popen.poll() is not None:
                raise ClusterError(f"{proc.name} exited:\n{self.tail(proc)}")
        self.kube.wait_for(
            "kube-controller-manager (default ServiceAccount)",
            lambda: self.kube.get_or_none("ServiceAccount", "default", "default"),
            timeout=120,
        )
        self.kube.wait_for(
            "kube-controller-manager (kube-root-ca.crt)",
            lambda: self.kube.get_or_none("ConfigMap", "kube-root-ca.crt", "default"),
            timeout=120,
        )

    # ---------------------------------------------------------------- cloud controller stand-in

    def _start_lb_emulator(self) -> None:
        self._lb_thread = threading.Thread(target=self._lb_loop, name="lb-emulator", daemon=True)
        self._lb_thread.start()

    def _lb_loop(self) -> None:
        """Assign every LoadBalancer Service an ingress IP, as a cloud controller would, and
        every Ingress an address, as an ingress controller (ingress-nginx) would: the provider
        awaits `status.loadBalancer.ingress` on both (provider/pkg/await/service.go and
        ingress.go)."""
        while not self._stop_lb.wait(1.0):
            with suppress(ApiError, OSError):
                for svc in self.kube.list("Service"):
                    if (svc.get("spec") or {}).get("type") == "LoadBalancer":
                        self._assign_address(svc, {"ip": self.lb_ip, "ipMode": "VIP"})
                for ing in self.kube.list("Ingress"):
                    self._assign_address(ing, {"ip": self.lb_ip})

    def _assign_address(self, obj: dict[str, Any], address: dict[str, str]) -> None:
        if ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            return
        meta = obj["metadata"]
        self.kube.patch(
            obj["kind"],
            meta["name"],
            {"status": {"loadBalancer": {"ingress": [address]}}},
            namespace=meta["namespace"],
            subresource="status",
            field_manager=LB_FIELD_MANAGER,
        )

    # ---------------------------------------------------------------- health

    # ---------------------------------------------------------------- faults (issue 29)

    def restart_apiserver(self) -> float:
        """Stop kube-apiserver (SIGTERM to its group) and start it again on the same port,
        certificates and etcd; returns the seconds it was not serving."""
        started = time.monotonic()
        old = self.apiserver.popen
        with suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGTERM)
        try:
            old.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(old.pid, signal.SIGKILL)
            old.wait(timeout=10)
        self.processes = [p for p in self.processes if p.popen is not old]
        self._start_apiserver()
        return time.monotonic() - started

    def pause_apiserver(self, seconds: float) -> None:
        """Make kube-apiserver unreachable for `seconds`: SIGSTOP, then SIGCONT (connections
        are accepted by the kernel but never answered, as with a network partition)."""
        pid = self.apiserver.popen.pid
        os.killpg(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.killpg(pid, signal.SIGCONT)

    def assert_running(self) -> None:
        """Raise if any control-plane process died (called between e2e steps)."""
        dead = [p for p in self.processes if p.popen.poll() is not None]
        if dead:
            raise ClusterError(
                "; ".join(f"{p.name} exited ({p.popen.returncode}):\n{self.tail(p)}" for p in dead)
            )


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so context managers and fixtures clean up."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_keyboard_interrupt)


def main() -> int:
    install_signal_handlers()
    started = time.monotonic()
    try:
        with Cluster() as cluster:
            print(
                f"control plane up in {time.monotonic() - started:.1f}s\n"
                f"export KUBECONFIG={cluster.kubeconfig}\n"
                f"logs: {cluster.root / 'logs'}\nCtrl-C stops it and removes {cluster.root}",
                flush=True,
            )
            while True:
                cluster.assert_running()
                time.sleep(2)
    except KeyboardInterrupt:
        return 0
    except ClusterError as exc:
        print(f"e2e cluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
