"""One real node in its network namespace: containerd, a kubelet and kube-proxy of the control
plane's release (e2e/tools/build.sh node), each started through `nsenter --net` so that it
shares the host's mount namespace (cgroups, the node's directories) and has the node's network."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.cluster import Cluster, _set_parent_death_signal
from e2e.engine import tool_versions
from e2e.realnode import host
from e2e.realnode.addons import metrics_server_image
from e2e.realnode.host import NodeError
from e2e.realnode.layout import (
    CLUSTER_DOMAIN,
    CNI_BIN,
    DNS_IP,
    NODE_LABEL,
    REAL_POD_CIDR,
    NodeSpec,
)
from e2e.realnode.network import cni_config

NODE_IMAGES = (
    "node-images/pause.oci.tar",
    "node-images/busybox.oci.tar",
    "node-images/coredns.oci.tar",
    "node-images/kube-router.oci.tar",
    "node-images/metrics-server.oci.tar",
)
KUBELET_PORT = 10250  # the default: each node has its own network namespace


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def kubeconfig(path: Path, cluster: Cluster, user: str, cert: str) -> Path:
    """A kubeconfig for a client certificate `cert` (pki/<cert>.crt/.key) of the cluster's CA."""
    pki = cluster.pki
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "e2e",
                "cluster": {
                    "server": cluster.kube.creds.server,
                    "certificate-authority": str(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{cert}.crt"),
                    "client-key": str(pki / f"{cert}.key"),
                },
            }
        ],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
        "current-context": "e2e",
    }
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return path


@dataclass
class RealNode:
    """One node's processes; `RealNodes` (e2e/realnode/nodes.py) owns the network and clean-up."""

    spec: NodeSpec
    cluster: Cluster
    binaries: Path
    logs: Path
    processes: list[Proc] = field(default_factory=list, init=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def containerd_socket(self) -> Path:
        return self.spec.base / "containerd" / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.spec.base / "kubelet"

    # ---------------------------------------------------------------- processes

    def _spawn(self, name: str, args: list[str]) -> Proc:
        log = self.logs / f"{self.name}-{name}.log"
        env = {
            "PATH": f"{self.binaries}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.spec.base),
        }
        with log.open("wb") as out:
            popen = subprocess.Popen(
                ["nsenter", f"--net={self.spec.netns_path}", "--", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.spec.base,
                env=env,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        proc = Proc(name, popen, log)
        self.processes.append(proc)
        return proc

    def tail(self, proc: Proc, lines: int = 40) -> str:
        return "\n".join(proc.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        for proc in reversed(self.processes):
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(timeout=5)
        self.processes.clear()

    def assert_running(self) -> None:
        dead = [p for p in self.processes if p.popen.poll() is not None]
        if dead:
            raise NodeError("; ".join(f"{p.name} exited:\n{self.tail(p)}" for p in dead))

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        """containerd (images imported), then kubelet and kube-proxy; Ready is awaited by
        RealNodes for all nodes at once."""
        self.spec.base.mkdir(parents=True)
        host.make_cgroup_root(self.spec.cgroup_root)
        cni_config(self.spec, self.spec.base / "cni" / "net.d", self.spec.base / "cni" / "ipam")
        self._start_containerd()
        self._import_images()
        self._start_kubelet()
        self._start_kube_proxy()

    def _start_containerd(self) -> None:
        versions = tool_versions()
        base = self.spec.base / "containerd"
        base.mkdir()
        cri = "plugins.'io.containerd.cri.v1.runtime'"
        config = f"""version = 3
root = "{base / "root"}"
state = "{base / "state"}"
# NRI would open a socket under /var/run/nri; nothing here uses it.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{self.containerd_socket}.ttrpc"

[{cri}]
  # This machine lacks CAP_SYS_RESOURCE: a sandbox cannot lower its oom_score_adj below ours.
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted under the state dir, not /run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{cri}.containerd]
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{self.binaries / "runc"}"
  SystemdCgroup = false

[{cri}.cni]
  bin_dirs = ["{CNI_BIN}"]
  conf_dir = "{self.spec.base / "cni" / "net.d"}"
  max_conf_num = 1

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{versions["PAUSE_IMAGE"]}"

[plugins.'io.containerd.cri.v1.images'.registry]
  # A registry host's CA and mirrors go in <config_path>/<host>/hosts.toml (+ its ca.crt):
  # containerd's documented certs.d layout. Empty unless a run adds a registry.
  config_path = "{base / "certs.d"}"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""
        (base / "certs.d").mkdir()
        path = base / "config.toml"
        path.write_text(config)
        proc = self._spawn(
            "containerd",
            [str(self.binaries / "containerd"), "--config", str(path), "--log-level", "info"],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise NodeError(f"{self.name}: containerd exited:\n{self.tail(proc)}")
            if self.ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise NodeError(f"{self.name}: containerd not serving after 60s:\n{self.tail(proc)}")

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return host.run(
            str(self.binaries / "ctr"),
            "--address",
            str(self.containerd_socket),
            "--namespace",
            "k8s.io",
            *args,
            check=check,
            timeout=120,
        )

    def _import_images(self) -> None:
        for archive in NODE_IMAGES:
            self.ctr("images", "import", "--snapshotter", "overlayfs",
                     str(self.binaries / archive))  # fmt: skip
        names = self.ctr("images", "list", "--quiet").stdout.split()
        versions = tool_versions()
        wanted = [versions[key] for key in ("PAUSE_IMAGE", "BUSYBOX_IMAGE", "COREDNS_IMAGE",
                                            "KUBE_ROUTER_IMAGE")]  # fmt: skip
        for image in (*wanted, metrics_server_image()):
            if image not in names:
                raise NodeError(f"{self.name}: image {image} not imported: {names}")

    def _start_kubelet(self) -> None:
        self.kubelet_root.mkdir()
        cert = f"kubelet-{self.name}"
        self.cluster._leaf(cert, f"/O=system:nodes/CN=system:node:{self.name}", "", "clientAuth")
        config_file = kubeconfig(self.kubelet_root / "kubeconfig", self.cluster, self.name, cert)
        # Its serving certificate from the cluster CA (not a self-signed one in --cert-dir), so
        # that its clients verify it: metrics-server with --kubelet-certificate-authority.
        serving = f"kubelet-serving-{self.name}"
        sans = f"subjectAltName=IP:{self.spec.ip},DNS:{self.name}\n"
        self.cluster._leaf(serving, f"/CN={self.name}", sans, "serverAuth")
        key, value = NODE_LABEL
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # cgroup v1 (hybrid) here: kubelets >= 1.35 refuse it unless told (KEP-5573).
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.spec.cgroup_root}",
            "address": self.spec.ip,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "tlsCertFile": str(self.cluster.pki / f"{serving}.crt"),
            "tlsPrivateKeyFile": str(self.cluster.pki / f"{serving}.key"),
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.cluster.pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "imageServiceEndpoint": f"unix://{self.containerd_socket}",
            "podLogsDir": str(self.spec.base / "pod-logs"),
            # No iptables state from the kubelet (KUBE-IPTABLES-HINT, KUBE-FIREWALL).
            "makeIPTablesUtilChains": False,
            "protectKernelDefaults": False,
            "failSwapOn": False,
            # Pods resolve through the cluster DNS only (CoreDNS, no upstream): no host
            # resolv.conf is passed on.
            "resolvConf": "",
            "clusterDNS": [DNS_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "maxPods": 30,
            "serializeImagePulls": False,
            "registerNode": True,
            "nodeStatusUpdateFrequency": "5s",
            "syncFrequency": "10s",
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "evictionHard": {"memory.available": "100Mi"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
        }
        path = self.kubelet_root / "config.yaml"
        path.write_text(json.dumps(config, indent=2))
        labels = f"{key}={value},topology.kubernetes.io/zone={self.spec.zone},"
        labels += "topology.kubernetes.io/region=e2e"
        self._spawn(
            "kubelet",
            [
                str(self.binaries / "kubelet"),
                f"--config={path}",
                f"--kubeconfig={config_file}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.kubelet_root / 'pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.spec.ip}",
                f"--node-labels={labels}",
                # cAdvisor's containerd factory (github.com/google/cadvisor v0.56.2,
                # container/containerd/factory.go) reads container labels (pod, namespace,
                # container) from the containerd at this cAdvisor flag, by default
                # /run/containerd/containerd.sock: not this node's. Without it every container
                # cgroup falls to the raw factory, without labels, and /metrics/cadvisor
                # reports container series with empty pod/container labels. Pointed at the
                # node's own containerd, a container of another node (same host, same cgroup
                # v1 hierarchy) is unknown to it and outside this kubelet's raw cgroup roots
                # (/<cgroupRoot>/kubepods), so it is not reported.
                f"--containerd={self.containerd_socket}",
                "--v=2",
            ],
        )

    def _start_kube_proxy(self) -> None:
        """iptables mode in the node's namespace. conntrack sizing off (maxPerCore 0, timeouts
        0): nf_conntrack_max and the hash size are not writable outside the initial namespace
        and are the host's, which the run does not change."""
        base = self.spec.base / "kube-proxy"
        base.mkdir()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(self.cluster.root / "kube-proxy.kubeconfig")},
            "hostnameOverride": self.name,
            "bindAddress": self.spec.ip,
            "clusterCIDR": REAL_POD_CIDR,
            "detectLocalMode": "NodeCIDR",
            "healthzBindAddress": f"{self.spec.ip}:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "iptables": {"syncPeriod": "10s", "minSyncPeriod": "1s"},
        }
        path = base / "config.yaml"
        path.write_text(json.dumps(config, indent=2))
        self._spawn(
            "kube-proxy",
            [str(self.binaries / "kube-proxy"), f"--config={path}", "--v=2"],
        )
