"""One real node for the e2e control plane (`make e2e-node`): containerd, runc, bridge CNI and a
kubelet of the control plane's release, all built or installed by the repo (e2e/tools/build.sh
node, scripts/install-node-deps.sh).

Layout (one node; everything the run creates carries the names below, so a later run can find
and remove what a killed one left):

- base directory `NODE_BASE` (default /var/lib/appstack-e2e-node): containerd's root, state and
  socket, the kubelet's --root-dir, pod logs, CNI config and IPAM data, the run's state file;
- network: a Linux bridge `BRIDGE` created by the run, holding the node address `NODE_IP`
  (the kubelet's --node-ip, its serving address) in `NODE_CIDR`; pods get addresses of the same
  /24 from the `bridge` + `host-local` CNI plugins (no gateway, no masquerade: pods have no
  route off the bridge). The host gets `unreachable` routes for the cluster's pod and service
  ranges and this node's /16 while the run lasts, so a misrouted packet is refused on the host
  instead of leaving through its default route;
- cgroups (v1 controllers + cgroup2 at /sys/fs/cgroup/unified, the hybrid layout here): the
  kubelet's `cgroupRoot` `CGROUP_ROOT`, created beforehand in every v1 controller (cpuset with
  cpus/mems copied from its parent), cgroupfs driver, `failCgroupV1: false`;
- host settings the kubelet and CNI change (`SYSCTLS`): recorded before anything starts, put
  back at the end;
- scheduling: the node is labelled `NODE_LABEL` and carries no taint; every kwok node gets the
  taint `KWOK_TAINT` (NoSchedule) while a real node is present. So a pod that tolerates nothing
  (a stack's pod) can only land on a real node, and a pod meant for kwok tolerates the taint and
  selects `type=kwok`; real-node test pods also select `NODE_LABEL`.

`RealNode.start()` first removes whatever a killed earlier run left (`cleanup_leftovers`), writes
the state file, then starts; `stop()` (also on failure, Ctrl-C and SIGTERM through the context
manager) stops and removes everything, and checks that nothing is left (`leftovers()`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.cluster import (
    POD_CIDR,
    SERVICE_CIDR,
    Cluster,
    ClusterError,
    _set_parent_death_signal,
    bin_dir,
    free_port,
)
from e2e.engine import tool_versions

NODE_BASE = Path(os.environ.get("APPSTACK_E2E_NODE_ROOT") or "/var/lib/appstack-e2e-node")
NODE_NAME = "real-node-0"
BRIDGE = "ae2e-node0"
NODE_CIDR = "10.245.0.0/24"
NODE_IP = "10.245.0.1"
POD_RANGE = ("10.245.0.10", "10.245.0.250")
# The host refuses these while a node runs (cluster pod/service ranges, kwok's fake node address,
# this node's /16 around its /24).
UNREACHABLE = (POD_CIDR, SERVICE_CIDR, "10.245.0.0/16", "10.0.0.1/32")
CGROUP_ROOT = "appstack-e2e-node0"
CGROUP_FS = Path("/sys/fs/cgroup")
CNI_BIN = Path("/usr/lib/cni")
NODE_LABEL = ("appstack.e2e/node", "real")
KWOK_TAINT = {"key": "appstack.e2e/simulated", "value": "true", "effect": "NoSchedule"}
# What a kubelet sets at start (pkg/kubelet/cm setupKernelTunables; kernel.keys.* by
# pkg/kubelet/cm/container_manager_linux.go) and what CNI's bridge plugin may set.
SYSCTLS = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
)
# iptables chains a kubelet or the CNI plugins create (makeIPTablesUtilChains is off and the
# bridge has no masquerade, so none is expected; any that appears during the run is removed).
IPTABLES_CHAIN_PREFIXES = ("KUBE-", "CNI-")
NODE_BINARIES = ("kubelet", "containerd", "containerd-shim-runc-v2", "ctr", "runc")
NODE_IMAGES = ("node-images/pause.oci.tar", "node-images/busybox.oci.tar")


class NodeError(ClusterError):
    """The real node could not be started or cleaned up (the message says which part and why)."""


def _run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            values[name] = _sysctl_path(name).read_text().strip()
    return values


def restore_sysctls(saved: dict[str, str]) -> list[str]:
    """Write back every recorded value that differs now; returns what was changed back."""
    restored = []
    for name, value in saved.items():
        path = _sysctl_path(name)
        try:
            now = path.read_text().strip()
        except OSError:
            continue
        if now != value:
            path.write_text(value + "\n")
            restored.append(f"{name} {now} -> {value}")
    return restored


def v1_controllers() -> list[Path]:
    """The cgroup v1 hierarchies (one directory per mount under /sys/fs/cgroup)."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup":
            found.append(Path(fields[1]))
    return sorted(found)


def cgroup_dirs() -> list[Path]:
    """Where this node's cgroup root lives (or would): every v1 hierarchy and cgroup2."""
    return [c / CGROUP_ROOT for c in v1_controllers()] + [CGROUP_FS / "unified" / CGROUP_ROOT]


def _mountinfo_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        raw = line.split()[4]
        points.append(raw.encode().decode("unicode_escape"))  # \040 etc.
    return points


def mounts_under(base: Path) -> list[str]:
    prefix = str(base).rstrip("/") + "/"
    return [p for p in _mountinfo_points() if p == str(base) or p.startswith(prefix)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def processes_of(base: Path) -> list[int]:
    """Processes of this node: those whose command line names the base directory (kubelet,
    containerd, shims) and those in the node's cgroups (pod sandboxes and containers)."""
    return sorted(set(daemons_of(base)) | set(pod_processes()))


def daemons_of(base: Path) -> list[int]:
    """The kubelet, containerd and the shims: their command lines name the base directory."""
    me = os.getpid()
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else me
        if pid != me and str(base) in _cmdline(pid):
            pids.add(pid)
    return sorted(pids)


def pod_processes() -> list[int]:
    """Every process in the node's cgroups (pod sandboxes and containers)."""
    pids: set[int] = set()
    for root in cgroup_dirs():
        if not root.is_dir():
            continue
        for procs in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
    return sorted(pids)


def bridge_exists() -> bool:
    return _run("ip", "link", "show", BRIDGE, check=False).returncode == 0


def unreachable_routes() -> list[str]:
    """The host's unreachable routes as CIDRs (`ip route` prints a /32 without its length)."""
    out = _run("ip", "route", "show", "type", "unreachable").stdout
    return [
        str(ipaddress.ip_network(line.split()[1], strict=False))
        for line in out.splitlines()
        if len(line.split()) > 1
    ]


def iptables_chains() -> set[tuple[str, str, str]]:
    """(front end, table, chain) of every chain the legacy and nft iptables front ends list."""
    chains = set()
    for tool in ("iptables-legacy-save", "iptables-nft-save"):
        if shutil.which(tool) is None:
            continue
        table = ""
        for line in _run(tool, check=False).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                chains.add((tool, table, line[1:].split()[0]))
    return chains


def _iptables_of(save_tool: str) -> str:
    return save_tool.replace("-save", "")


def remove_iptables_chains(chains: set[tuple[str, str, str]]) -> list[str]:
    """Delete the given chains and every rule that jumps to them."""
    removed = []
    for tool, table, chain in sorted(chains):
        ipt = _iptables_of(tool)
        for line in _run(tool, "-t", table, check=False).stdout.splitlines():
            if line.startswith("-A ") and f"-j {chain}" in line.split(" ", 2)[2] + " ":
                rule = line.split()[1:]
                _run(ipt, "-t", table, "-D", *rule, check=False)
        _run(ipt, "-t", table, "-F", chain, check=False)
        if _run(ipt, "-t", table, "-X", chain, check=False).returncode == 0:
            removed.append(f"{ipt} -t {table} {chain}")
    return removed


@dataclass
class State:
    """What a run changed on the host, written before each change (base/state.json), so that
    the next run can undo what a killed one left."""

    harness_pid: int
    sysctls: dict[str, str]
    routes: list[str] = field(default_factory=list)
    iptables_before: list[list[str]] = field(default_factory=list)

    @staticmethod
    def path() -> Path:
        return NODE_BASE / "state.json"

    def save(self) -> None:
        self.path().write_text(json.dumps(self.__dict__, indent=2))

    @classmethod
    def load(cls) -> State | None:
        try:
            doc = json.loads(cls.path().read_text())
        except (OSError, ValueError):
            return None
        return cls(
            harness_pid=int(doc.get("harness_pid", 0)),
            sysctls=dict(doc.get("sysctls") or {}),
            routes=list(doc.get("routes") or []),
            iptables_before=[list(c) for c in doc.get("iptables_before") or []],
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def cleanup(state: State | None) -> list[str]:
    """Remove everything a run of this node creates; returns what it did. Safe to run on a clean
    host and more than once. Processes are found by base directory and cgroup, never by name."""
    done: list[str] = []
    # 1. processes: the kubelet first (it would restart containers), containerd and the shims
    # get SIGTERM, then SIGKILL; pod processes get SIGKILL at once (a container's PID 1, such as
    # httpd, ignores SIGTERM, and the pods are being thrown away).
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        daemons = daemons_of(NODE_BASE)
        pods = pod_processes()
        pids = sorted(set(daemons) | set(pods))
        if not pids:
            break
        _kill_all([p for p in daemons if "kubelet" in _cmdline(p).split(" ", 1)[0]], sig)
        _kill_all(pods, signal.SIGKILL)
        _kill_all(daemons, sig)
        done.append(f"{sig.name} {len(daemons)} node processes, SIGKILL {len(pods)} pod processes")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
    left = [p for p in processes_of(NODE_BASE) if _alive(p)]
    if left:
        raise NodeError(f"processes of the node survive SIGKILL: {left}")
    # 2. mounts (deepest first): overlay rootfs, shm, netns bind mounts, kubelet volumes and the
    # kubelet's own bind mount of its root dir.
    for _ in range(5):
        points = sorted(set(mounts_under(NODE_BASE)), key=lambda p: p.count("/"), reverse=True)
        if not points:
            break
        for point in points:
            if _run("umount", point, check=False).returncode != 0:
                _run("umount", "-l", point, check=False)
        done.append(f"unmounted {len(points)}")
    if mounts_under(NODE_BASE):
        raise NodeError(f"mounts left under {NODE_BASE}: {mounts_under(NODE_BASE)}")
    # 3. network: the bridge (pod veths went with their network namespaces), the routes.
    if bridge_exists():
        _run("ip", "link", "delete", BRIDGE)
        done.append(f"deleted bridge {BRIDGE}")
    for cidr in state.routes if state else []:
        if cidr in unreachable_routes():
            _run("ip", "route", "delete", "unreachable", cidr, check=False)
            done.append(f"deleted route unreachable {cidr}")
    # 4. iptables chains that appeared during the run.
    if state is not None:
        before = {(c[0], c[1], c[2]) for c in state.iptables_before if len(c) == 3}
        new = {c for c in iptables_chains() - before if c[2].startswith(IPTABLES_CHAIN_PREFIXES)}
        done += [f"removed {c}" for c in remove_iptables_chains(new)]
    # 5. cgroups, deepest first, in every hierarchy.
    for root in cgroup_dirs():
        if not root.is_dir():
            continue
        for _ in range(20):
            dirs = sorted(
                (d for d in root.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
            )
            for d in [*dirs, root]:
                with contextlib.suppress(OSError):
                    d.rmdir()
            if not root.exists():
                break
            time.sleep(0.5)
        if root.exists():
            raise NodeError(f"cgroup {root} cannot be removed")
        done.append(f"removed cgroup {root}")
    # 6. host settings.
    if state is not None:
        done += [f"restored {r}" for r in restore_sysctls(state.sysctls)]
    # 7. files.
    if NODE_BASE.exists():
        shutil.rmtree(NODE_BASE)
        done.append(f"removed {NODE_BASE}")
    return done


def leftovers(added_routes: list[str] | None = None) -> list[str]:
    """What of a node is still on the host (empty after a clean stop). Routes count only when
    named (the routes a run added): another run may hold the same unreachable routes."""
    found = []
    if processes_of(NODE_BASE):
        found.append(f"processes {processes_of(NODE_BASE)}")
    if mounts_under(NODE_BASE):
        found.append(f"mounts {mounts_under(NODE_BASE)}")
    if bridge_exists():
        found.append(f"bridge {BRIDGE}")
    found += [f"cgroup {d}" for d in cgroup_dirs() if d.exists()]
    found += [f"route unreachable {r}" for r in unreachable_routes() if r in (added_routes or [])]
    if NODE_BASE.exists():
        found.append(f"directory {NODE_BASE}")
    return found


def cleanup_leftovers() -> list[str]:
    """At start: undo a run that was killed before its own cleanup (a CI timeout)."""
    state = State.load()
    other = state.harness_pid if state is not None else 0
    if other not in (0, os.getpid()) and _alive(other) and "python" in _cmdline(other):
        raise NodeError(f"another real-node run (pid {other}) is using {NODE_BASE}")
    if state is None and not leftovers():
        return []
    return cleanup(state)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class RealNode:
    """One kubelet + containerd joined to `cluster`; a context manager."""

    cluster: Cluster
    binaries: Path = field(default_factory=bin_dir)
    processes: list[Proc] = field(default_factory=list, init=False)
    state: State | None = field(default=None, init=False)
    timings: dict[str, float] = field(default_factory=dict, init=False)
    cleanup_report: list[str] = field(default_factory=list, init=False)

    def __enter__(self) -> RealNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- paths

    @property
    def logs(self) -> Path:
        return self.cluster.root / "logs"

    @property
    def containerd_socket(self) -> Path:
        return NODE_BASE / "containerd" / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return NODE_BASE / "kubelet"

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        started = time.monotonic()
        self._check_tools()
        self.cleanup_report = cleanup_leftovers()
        NODE_BASE.mkdir(parents=True)
        self.state = State(
            harness_pid=os.getpid(),
            sysctls=read_sysctls(),
            iptables_before=[list(c) for c in sorted(iptables_chains())],
        )
        self.state.save()
        try:
            self._network()
            self._cgroups()
            self._start_containerd()
            self._import_images()
            self._start_kubelet()
            self._wait_ready()
            self._taint_kwok_nodes()
        except BaseException as exc:
            try:
                self.stop()
            except NodeError as cleanup_error:
                exc.add_note(f"cleanup after the failed start: {cleanup_error}")
            raise
        self.timings["node.start_to_ready_s"] = time.monotonic() - started

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
        self._untaint_kwok_nodes()
        state = self.state or State.load()
        self.cleanup_report += cleanup(state)
        self.state = None
        left = leftovers(state.routes if state else None)
        if left:
            raise NodeError(f"the real node left: {left}")

    # ---------------------------------------------------------------- parts

    def _check_tools(self) -> None:
        missing = [b for b in (*NODE_BINARIES, *NODE_IMAGES) if not (self.binaries / b).exists()]
        missing += [
            f"{CNI_BIN}/{p}" for p in ("bridge", "host-local", "loopback")
            if not (CNI_BIN / p).exists()
        ]  # fmt: skip
        if missing:
            raise NodeError(
                f"missing: {', '.join(missing)}; run scripts/install-node-deps.sh and "
                "`make e2e-node-tools`"
            )
        if os.geteuid() != 0:
            raise NodeError("a real node needs root (mounts, cgroups, bridges)")

    def _network(self) -> None:
        assert self.state is not None
        for cidr in UNREACHABLE:
            if cidr not in unreachable_routes():
                self.state.routes.append(cidr)
                self.state.save()
                _run("ip", "route", "add", "unreachable", cidr)
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{NODE_IP}/{NODE_CIDR.split('/')[1]}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        net_d = NODE_BASE / "cni" / "net.d"
        net_d.mkdir(parents=True)
        first, last = POD_RANGE
        conflist = {
            "cniVersion": "1.0.0",
            "name": "appstack-e2e",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    # No gateway and no masquerade: pods reach the node address on the bridge
                    # and nothing else (no default route in the pod).
                    "isGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(NODE_BASE / "cni" / "ipam"),
                        "ranges": [[{"subnet": NODE_CIDR, "rangeStart": first, "rangeEnd": last}]],
                    },
                }
            ],
        }
        (net_d / "10-appstack-e2e.conflist").write_text(json.dumps(conflist, indent=2))

    def _cgroups(self) -> None:
        for ctrl in v1_controllers():
            path = ctrl / CGROUP_ROOT
            path.mkdir(exist_ok=True)
            if (ctrl / "cpuset.cpus").exists():
                for name in ("cpuset.cpus", "cpuset.mems"):
                    (path / name).write_text((ctrl / name).read_text())

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.logs / f"node-{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=NODE_BASE,
                env=env,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        proc = Proc(name, popen, log)
        self.processes.append(proc)
        return proc

    def tail(self, proc: Proc, lines: int = 40) -> str:
        return "\n".join(proc.log.read_text(errors="replace").splitlines()[-lines:])

    def _env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.binaries}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(NODE_BASE),
        }

    def _start_containerd(self) -> None:
        versions = tool_versions()
        base = NODE_BASE / "containerd"
        base.mkdir()
        cri_runtime = "plugins.'io.containerd.cri.v1.runtime'"
        config = f"""version = 3
root = "{base / "root"}"
state = "{base / "state"}"
# NRI would open a socket under /var/run/nri; nothing here uses it.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{self.containerd_socket}.ttrpc"

[{cri_runtime}]
  # This machine lacks CAP_SYS_RESOURCE: a sandbox cannot lower its oom_score_adj below ours.
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted under the state dir, not /run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{cri_runtime}.containerd]
  default_runtime_name = "runc"

[{cri_runtime}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri_runtime}.containerd.runtimes.runc.options]
  BinaryName = "{self.binaries / "runc"}"
  SystemdCgroup = false

[{cri_runtime}.cni]
  bin_dirs = ["{CNI_BIN}"]
  conf_dir = "{NODE_BASE / "cni" / "net.d"}"
  max_conf_num = 1

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{versions["PAUSE_IMAGE"]}"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""
        path = base / "config.toml"
        path.write_text(config)
        self.containerd = self._spawn(
            "containerd",
            [str(self.binaries / "containerd"), "--config", str(path), "--log-level", "info"],
            env=self._env(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.containerd.popen.poll() is not None:
                raise NodeError(f"containerd exited:\n{self.tail(self.containerd)}")
            if self._ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise NodeError(f"containerd not serving after 60s:\n{self.tail(self.containerd)}")

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(
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
            path = str(self.binaries / archive)
            self._ctr("images", "import", "--snapshotter", "overlayfs", path)
        names = self._ctr("images", "list", "--quiet").stdout.split()
        versions = tool_versions()
        for want in (versions["PAUSE_IMAGE"], versions["BUSYBOX_IMAGE"]):
            if want not in names:
                raise NodeError(f"image {want} not in containerd after import: {names}")

    def _node_credentials(self) -> Path:
        """A client certificate for system:node:<name> (Node authorizer, NodeRestriction) and
        its kubeconfig, signed by the cluster's CA."""
        name = f"kubelet-{NODE_NAME}"
        self.cluster._leaf(name, f"/O=system:nodes/CN=system:node:{NODE_NAME}", "", "clientAuth")
        pki = self.cluster.pki
        kubeconfig = self.kubelet_root / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "e2e",
                            "cluster": {
                                "server": self.cluster.kube.creds.server,
                                "certificate-authority": str(pki / "ca.crt"),
                            },
                        }
                    ],
                    "users": [
                        {
                            "name": NODE_NAME,
                            "user": {
                                "client-certificate": str(pki / f"{name}.crt"),
                                "client-key": str(pki / f"{name}.key"),
                            },
                        }
                    ],
                    "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": NODE_NAME}}],
                    "current-context": "e2e",
                }
            )
        )
        kubeconfig.chmod(0o600)
        return kubeconfig

    def _start_kubelet(self) -> None:
        self.kubelet_root.mkdir()
        kubeconfig = self._node_credentials()
        self.kubelet_port = free_port()
        self.kubelet_healthz_port = free_port()
        key, value = NODE_LABEL
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # cgroup v1 (hybrid) here: kubelets >= 1.35 refuse it unless told (KEP-5573).
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{CGROUP_ROOT}",
            "address": NODE_IP,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.kubelet_healthz_port,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.cluster.pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "imageServiceEndpoint": f"unix://{self.containerd_socket}",
            "podLogsDir": str(NODE_BASE / "pod-logs"),
            # No iptables state from the kubelet (KUBE-IPTABLES-HINT, KUBE-FIREWALL).
            "makeIPTablesUtilChains": False,
            "protectKernelDefaults": False,
            "failSwapOn": False,
            # Pods get no DNS from the host (nothing may resolve names off this machine).
            "resolvConf": "",
            "clusterDomain": "cluster.local",
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
        self.kubelet = self._spawn(
            "kubelet",
            [
                str(self.binaries / "kubelet"),
                f"--config={path}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.kubelet_root / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--node-labels={key}={value}",
                "--v=2",
            ],
            env=self._env(),
        )

    def _wait_ready(self) -> None:
        def ready() -> bool:
            for proc in (self.containerd, self.kubelet):
                if proc.popen.poll() is not None:
                    raise NodeError(f"{proc.name} exited:\n{self.tail(proc)}")
            node = self.cluster.kube.get_or_none("Node", NODE_NAME)
            conds = (node or {}).get("status", {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

        try:
            self.cluster.kube.wait_for(f"node {NODE_NAME} Ready", ready, timeout=180)
        except TimeoutError as exc:
            raise NodeError(f"{exc}\nkubelet log:\n{self.tail(self.kubelet)}") from None

    def _taint_kwok_nodes(self) -> None:
        for name in getattr(self.cluster, "node_names", []):
            node = self.cluster.kube.get("Node", name)
            taints = [t for t in node["spec"].get("taints") or [] if t["key"] != KWOK_TAINT["key"]]
            self.cluster.kube.patch("Node", name, {"spec": {"taints": [*taints, KWOK_TAINT]}})

    def _untaint_kwok_nodes(self) -> None:
        """Give the kwok nodes back as the cluster made them (the control plane may outlive
        the node, as with `python -m e2e.node`'s Ctrl-C)."""
        apiserver = getattr(self.cluster, "apiserver", None)
        if apiserver is None or apiserver.popen.poll() is not None:
            return
        for name in getattr(self.cluster, "node_names", []):
            with contextlib.suppress(Exception):
                node = self.cluster.kube.get("Node", name)
                taints = node["spec"].get("taints") or []
                kept = [t for t in taints if t["key"] != KWOK_TAINT["key"]]
                if kept != taints:
                    self.cluster.kube.patch("Node", name, {"spec": {"taints": kept or None}})

    # ---------------------------------------------------------------- health

    def assert_running(self) -> None:
        dead = [p for p in self.processes if p.popen.poll() is not None]
        if dead:
            raise NodeError("; ".join(f"{p.name} exited:\n{self.tail(p)}" for p in dead))


@contextlib.contextmanager
def real_node(cluster: Cluster) -> Iterator[RealNode]:
    with RealNode(cluster) as node:
        yield node


def main() -> int:
    """`python -m e2e.node`: a control plane plus one real node, until Ctrl-C;
    `python -m e2e.node --cleanup`: only remove what an earlier run left."""
    import sys

    from e2e.cluster import install_signal_handlers

    if "--cleanup" in sys.argv[1:]:
        for line in cleanup_leftovers() or ["nothing left by an earlier run"]:
            print(line)
        left = leftovers()
        print("left on the host:", left or "nothing")
        held = [r for r in unreachable_routes() if r in UNREACHABLE]
        if held:
            print("unreachable routes held (by a running node, or another harness):", held)
        return 1 if left else 0
    install_signal_handlers()
    try:
        with Cluster() as cluster, RealNode(cluster) as node:
            print(
                f"node {NODE_NAME} Ready in {node.timings['node.start_to_ready_s']:.1f}s\n"
                f"export KUBECONFIG={cluster.kubeconfig}\nlogs: {node.logs}",
                flush=True,
            )
            while True:
                cluster.assert_running()
                node.assert_running()
                time.sleep(2)
    except KeyboardInterrupt:
        return 0
    except ClusterError as exc:
        print(f"e2e node: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
