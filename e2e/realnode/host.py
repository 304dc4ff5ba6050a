"""What the real nodes change on the host, read and undone: processes, mounts, cgroups,
network namespaces and links, routes, iptables chains and ipsets, sysctls; and the state file
that lets the next run undo what a killed one left."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from e2e.cluster import ClusterError
from e2e.realnode.layout import BASE, CGROUP_PREFIX, NETNS_PREFIX

CGROUP_FS = Path("/sys/fs/cgroup")
# What a kubelet sets at start (pkg/kubelet/cm setupKernelTunables; kernel.keys.* by
# pkg/kubelet/cm/container_manager_linux.go) and what CNI's bridge plugin may set; the host
# values, global (not per network namespace) except the last two, which the run sets only inside
# node namespaces and records in case a plugin touches the host's.
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
# Host iptables chains and ipsets a node component could create if it ran outside its node
# namespace (kubelet, CNI, kube-proxy, kube-router): none is expected on the host.
IPTABLES_CHAIN_PREFIXES = ("KUBE-", "CNI-")
IPSET_PREFIXES = ("KUBE-", "kube-router")


class NodeError(ClusterError):
    """The real nodes could not be started or cleaned up (the message says which part and why)."""


def run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


# ---------------------------------------------------------------- sysctls


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


# ---------------------------------------------------------------- cgroups


def v1_controllers() -> list[Path]:
    """The cgroup v1 hierarchies (one directory per mount under /sys/fs/cgroup)."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup":
            found.append(Path(fields[1]))
    return sorted(found)


def cgroup_dirs(root: str) -> list[Path]:
    """Where a node's cgroup root lives (or would): every v1 hierarchy and cgroup2."""
    return [c / root for c in v1_controllers()] + [CGROUP_FS / "unified" / root]


def node_cgroup_roots() -> list[Path]:
    """Every node cgroup root present (any index, also one a different layout left)."""
    found = []
    for hierarchy in [*v1_controllers(), CGROUP_FS / "unified"]:
        with contextlib.suppress(OSError):
            found += [d for d in hierarchy.iterdir() if d.name.startswith(CGROUP_PREFIX)]
    return sorted(found)


def make_cgroup_root(root: str) -> None:
    for ctrl in v1_controllers():
        path = ctrl / root
        path.mkdir(exist_ok=True)
        if (ctrl / "cpuset.cpus").exists():
            for name in ("cpuset.cpus", "cpuset.mems"):
                (path / name).write_text((ctrl / name).read_text())


def remove_cgroup(root: Path) -> None:
    """Remove a cgroup directory tree, deepest first (retrying while the kernel releases it)."""
    import time

    for _ in range(20):
        dirs = sorted(
            (d for d in root.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
        )
        for d in [*dirs, root]:
            with contextlib.suppress(OSError):
                d.rmdir()
        if not root.exists():
            return
        time.sleep(0.5)
    raise NodeError(f"cgroup {root} cannot be removed")


# ---------------------------------------------------------------- mounts and processes


def _mountinfo_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        raw = line.split()[4]
        points.append(raw.encode().decode("unicode_escape"))  # \040 etc.
    return points


def mounts_under(base: Path) -> list[str]:
    prefix = str(base).rstrip("/") + "/"
    return [p for p in _mountinfo_points() if p == str(base) or p.startswith(prefix)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def daemons_of(base: Path = BASE) -> list[int]:
    """kubelets, containerds, shims and kube-proxies: their command lines name the base dir."""
    me = os.getpid()
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else me
        if pid != me and str(base) in cmdline(pid):
            pids.add(pid)
    return sorted(pids)


def pod_processes() -> list[int]:
    """Every process in a node's cgroups (pod sandboxes and containers)."""
    pids: set[int] = set()
    for root in node_cgroup_roots():
        for procs in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
    return sorted(pids)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# ---------------------------------------------------------------- network


def netns_list() -> list[str]:
    """The run's network namespaces (by name prefix) present on the host."""
    out = run("ip", "netns", "list", check=False).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith(NETNS_PREFIX))


def link_exists(name: str) -> bool:
    return run("ip", "link", "show", name, check=False).returncode == 0


def unreachable_routes() -> list[str]:
    """The host's unreachable routes as CIDRs (`ip route` prints a /32 without its length)."""
    out = run("ip", "route", "show", "type", "unreachable").stdout
    return [
        str(ipaddress.ip_network(line.split()[1], strict=False))
        for line in out.splitlines()
        if len(line.split()) > 1
    ]


def routes_via(gateway_prefix: str) -> list[str]:
    """Host routes whose next hop starts with `gateway_prefix` (the node addresses)."""
    out = run("ip", "route", "show").stdout
    found = []
    for line in out.splitlines():
        words = line.split()
        if "via" in words and words[words.index("via") + 1].startswith(gateway_prefix):
            found.append(words[0])
    return found


def iptables_chains() -> set[tuple[str, str, str]]:
    """(front end, table, chain) of every chain the legacy and nft iptables front ends list."""
    chains = set()
    for tool in ("iptables-legacy-save", "iptables-nft-save"):
        if shutil.which(tool) is None:
            continue
        table = ""
        for line in run(tool, check=False).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                chains.add((tool, table, line[1:].split()[0]))
    return chains


def remove_iptables_chains(chains: set[tuple[str, str, str]]) -> list[str]:
    """Delete the given chains and every rule that jumps to them."""
    removed = []
    for tool, table, chain in sorted(chains):
        ipt = tool.replace("-save", "")
        for line in run(tool, "-t", table, check=False).stdout.splitlines():
            if line.startswith("-A ") and f"-j {chain}" in line.split(" ", 2)[2] + " ":
                rule = line.split()[1:]
                run(ipt, "-t", table, "-D", *rule, check=False)
        run(ipt, "-t", table, "-F", chain, check=False)
        if run(ipt, "-t", table, "-X", chain, check=False).returncode == 0:
            removed.append(f"{ipt} -t {table} {chain}")
    return removed


def ipsets() -> set[str]:
    """The host's ipsets (none is the run's: kube-router runs in the node namespaces)."""
    if shutil.which("ipset") is None:
        return set()
    return set(run("ipset", "list", "-n", check=False).stdout.split())


# ---------------------------------------------------------------- state


@dataclass
class State:
    """What a run changed on the host, written before each change (BASE/state.json), so that
    the next run can undo what a killed one left."""

    harness_pid: int
    sysctls: dict[str, str]
    routes: list[str] = field(default_factory=list)
    iptables_before: list[list[str]] = field(default_factory=list)
    ipsets_before: list[str] = field(default_factory=list)

    @staticmethod
    def path() -> Path:
        return BASE / "state.json"

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
            ipsets_before=list(doc.get("ipsets_before") or []),
        )

    @classmethod
    def record(cls) -> State:
        return cls(
            harness_pid=os.getpid(),
            sysctls=read_sysctls(),
            iptables_before=[list(c) for c in sorted(iptables_chains())],
            ipsets_before=sorted(ipsets()),
        )
