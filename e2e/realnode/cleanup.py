"""Remove everything the real nodes create, on success, failure, Ctrl-C, and at the start of
the next run (a CI timeout kills the harness before its own clean-up): `cleanup()` undoes,
`leftovers()` lists what is still there (empty after a clean stop)."""

from __future__ import annotations

import os
import shutil
import signal
import time

from e2e.realnode import host
from e2e.realnode.host import NodeError, State
from e2e.realnode.layout import BASE, HOST_BRIDGE, LEGACY_BRIDGES, NODE_NET, VETH_PREFIX


def _stop_processes(done: list[str]) -> None:
    """kubelets first (they would restart containers), then containerd, shims and kube-proxy
    get SIGTERM, then SIGKILL; pod processes get SIGKILL at once (a container's PID 1, such as
    httpd, ignores SIGTERM, and the pods are being thrown away). Found by base directory and
    cgroup, never by name."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        daemons = host.daemons_of(BASE)
        pods = host.pod_processes()
        pids = sorted(set(daemons) | set(pods))
        if not pids:
            break
        host.kill_all([p for p in daemons if "kubelet" in host.cmdline(p).split(" ", 1)[0]], sig)
        host.kill_all(pods, signal.SIGKILL)
        host.kill_all(daemons, sig)
        done.append(f"{sig.name} {len(daemons)} node processes, SIGKILL {len(pods)} pod processes")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(host.alive(p) for p in pids):
            time.sleep(0.2)
    left = [p for p in sorted(set(host.daemons_of(BASE)) | set(host.pod_processes()))]
    left = [p for p in left if host.alive(p)]
    if left:
        raise NodeError(f"processes of the nodes survive SIGKILL: {left}")


def _unmount(done: list[str]) -> None:
    """Deepest first: overlay rootfs, shm, pod netns bind mounts, kubelet volumes and the
    kubelet's own bind mounts of its root dir."""
    for _ in range(5):
        points = sorted(set(host.mounts_under(BASE)), key=lambda p: p.count("/"), reverse=True)
        if not points:
            break
        for point in points:
            if host.run("umount", point, check=False).returncode != 0:
                host.run("umount", "-l", point, check=False)
        done.append(f"unmounted {len(points)}")
    if host.mounts_under(BASE):
        raise NodeError(f"mounts left under {BASE}: {host.mounts_under(BASE)}")


def _network(state: State | None, done: list[str]) -> None:
    """Node namespaces (their veths, CNI bridges, iptables rules, ipsets and conntrack go with
    them), the host bridge, the routes the run added, host chains and ipsets that appeared."""
    for ns in host.netns_list():
        host.run("ip", "netns", "delete", ns)
        done.append(f"deleted netns {ns}")
    for link in (HOST_BRIDGE, *LEGACY_BRIDGES):
        if host.link_exists(link):
            host.run("ip", "link", "delete", link)
            done.append(f"deleted link {link}")
    out = host.run("ip", "-o", "link", "show").stdout
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(VETH_PREFIX):
            host.run("ip", "link", "delete", name, check=False)
            done.append(f"deleted link {name}")
    for cidr in host.routes_via(NODE_NET.rsplit(".", 1)[0] + "."):
        host.run("ip", "route", "delete", cidr, check=False)
        done.append(f"deleted route {cidr}")
    for cidr in state.routes if state else []:
        if cidr in host.unreachable_routes():
            host.run("ip", "route", "delete", "unreachable", cidr, check=False)
            done.append(f"deleted route unreachable {cidr}")
    if state is not None:
        before = {(c[0], c[1], c[2]) for c in state.iptables_before if len(c) == 3}
        new = {
            c for c in host.iptables_chains() - before
            if c[2].startswith(host.IPTABLES_CHAIN_PREFIXES)
        }  # fmt: skip
        done += [f"removed {c}" for c in host.remove_iptables_chains(new)]
        for name in sorted(host.ipsets() - set(state.ipsets_before)):
            if name.startswith(host.IPSET_PREFIXES):
                host.run("ipset", "destroy", name, check=False)
                done.append(f"destroyed host ipset {name}")


def cleanup(state: State | None) -> list[str]:
    """Remove everything a run of the nodes creates; returns what it did. Safe on a clean host
    and more than once."""
    done: list[str] = []
    _stop_processes(done)
    _unmount(done)
    _network(state, done)
    removed: dict[str, int] = {}
    for root in host.node_cgroup_roots():
        host.remove_cgroup(root)
        removed[root.name] = removed.get(root.name, 0) + 1
    done += [f"removed cgroup {name} ({n} hierarchies)" for name, n in sorted(removed.items())]
    if state is not None:
        done += [f"restored {r}" for r in host.restore_sysctls(state.sysctls)]
    if BASE.exists():
        shutil.rmtree(BASE)
        done.append(f"removed {BASE}")
    return done


def leftovers(added_routes: list[str] | None = None) -> list[str]:
    """What of the nodes is still on the host. Unreachable routes count only when named (the
    ones a run added): another harness may hold the same routes."""
    found = []
    procs = sorted(set(host.daemons_of(BASE)) | set(host.pod_processes()))
    if procs:
        found.append(f"processes {procs}")
    if host.mounts_under(BASE):
        found.append(f"mounts {host.mounts_under(BASE)}")
    found += [f"netns {ns}" for ns in host.netns_list()]
    found += [f"link {b}" for b in (HOST_BRIDGE, *LEGACY_BRIDGES) if host.link_exists(b)]
    found += [f"route {r}" for r in host.routes_via(NODE_NET.rsplit(".", 1)[0] + ".")]
    found += [f"cgroup {d}" for d in host.node_cgroup_roots()]
    found += [
        f"route unreachable {r}" for r in host.unreachable_routes() if r in (added_routes or [])
    ]
    found += [
        f"host iptables chain {c}" for c in host.iptables_chains()
        if c[2].startswith(("KUBE-ROUTER", "KUBE-SVC", "KUBE-SEP", "KUBE-NWPLCY", "KUBE-POD-FW"))
    ]  # fmt: skip
    found += [f"host ipset {s}" for s in host.ipsets() if s.startswith(host.IPSET_PREFIXES)]
    if BASE.exists():
        found.append(f"directory {BASE}")
    return found


def cleanup_leftovers() -> list[str]:
    """At start: undo a run that was killed before its own clean-up."""
    state = State.load()
    other = state.harness_pid if state is not None else 0
    if other not in (0, os.getpid()) and host.alive(other) and "python" in host.cmdline(other):
        raise NodeError(f"another real-node run (pid {other}) is using {BASE}")
    if state is None and not leftovers():
        return []
    return cleanup(state)
