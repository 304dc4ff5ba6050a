"""The nodes' network (e2e/realnode/layout.py says what goes where): host bridge, one network
namespace per node joined by a veth, routes, and the CNI configuration of each node."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.cluster import SERVICE_CIDR
from e2e.realnode import host
from e2e.realnode.host import State
from e2e.realnode.layout import (
    HOST_BRIDGE,
    HOST_IP,
    LAYOUT,
    NETNS_PREFIX,
    NODE_NET,
    UNREACHABLE,
    VETH_PREFIX,
    NodeSpec,
)

PREFIX_LEN = NODE_NET.split("/")[1]


def _in(spec: NodeSpec, *args: str) -> None:
    host.run("ip", "netns", "exec", spec.netns, *args)


def _sysctl_in(spec: NodeSpec, name: str, value: str) -> None:
    # `ip netns exec` remounts /sys for the namespace; /proc/sys/net is the namespace's own.
    _in(spec, "sh", "-c", f"echo {value} > /proc/sys/{name.replace('.', '/')}")


def host_network(state: State) -> None:
    """The host side: unreachable routes (recorded in the state before each is added), the
    bridge with the host's address on it."""
    for cidr in UNREACHABLE:
        if cidr not in host.unreachable_routes():
            state.routes.append(cidr)
            state.save()
            host.run("ip", "route", "add", "unreachable", cidr)
    host.run("ip", "link", "add", HOST_BRIDGE, "type", "bridge")
    host.run("ip", "addr", "add", f"{HOST_IP}/{PREFIX_LEN}", "dev", HOST_BRIDGE)
    host.run("ip", "link", "set", HOST_BRIDGE, "up")


def node_network(spec: NodeSpec, nodes: tuple[NodeSpec, ...] = LAYOUT) -> None:
    """One node's namespace, its veth on the bridge, its routes and forwarding (inside the
    namespace only: the host's ip_forward stays as it is, the host bridges and does not route)."""
    host.run("ip", "netns", "add", spec.netns)
    host.run("ip", "link", "add", spec.veth, "type", "veth", "peer", "name", "eth0",
             "netns", spec.netns)  # fmt: skip
    host.run("ip", "link", "set", spec.veth, "master", HOST_BRIDGE, "up")
    _in(spec, "ip", "link", "set", "lo", "up")
    _in(spec, "ip", "addr", "add", f"{spec.ip}/{PREFIX_LEN}", "dev", "eth0")
    _in(spec, "ip", "link", "set", "eth0", "up")
    for other in nodes:
        if other != spec:
            _in(spec, "ip", "route", "add", other.pod_cidr, "via", other.ip)
    # ClusterIPs: kube-proxy's DNAT (nat OUTPUT/PREROUTING) rewrites them in this namespace; one
    # that no rule rewrote goes to the host, which refuses it (unreachable route).
    _in(spec, "ip", "route", "add", SERVICE_CIDR, "via", HOST_IP)
    _sysctl_in(spec, "net.ipv4.ip_forward", "1")
    _sysctl_in(spec, "net.bridge.bridge-nf-call-iptables", "1")
    host.run("ip", "route", "add", spec.pod_cidr, "via", spec.ip)


def cni_config(spec: NodeSpec, net_d: Path, ipam_dir: Path) -> None:
    """bridge + host-local: pods on the namespace's bridge `cbr0`, whose address is their
    gateway; no masquerade (pod addresses are routed, the host knows each node's range)."""
    net_d.mkdir(parents=True)
    conflist = {
        "cniVersion": "1.0.0",
        "name": "appstack-e2e",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cbr0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": spec.pod_cidr, "gateway": spec.gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }
    (net_d / "10-appstack-e2e.conflist").write_text(json.dumps(conflist, indent=2))


def client_netns(index: int) -> tuple[str, str]:
    """(network namespace, host veth) of the run's outside client `index`: the node prefixes
    (`ae2e-nc<i>`, `ae2e-vc<i>`), so that the clean-up of a killed run finds and removes them."""
    return f"{NETNS_PREFIX}c{index}", f"{VETH_PREFIX}c{index}"


def add_client(index: int, address: str, via: NodeSpec, reach: tuple[str, ...]) -> str:
    """A client outside the cluster in a network namespace of its own on the host bridge,
    holding `address` (a /32 of the run's 10.245.0.0/16, inside or outside NODE_NET): routes
    to the node `via` (on the bridge) and through it to each address of `reach` (the
    LoadBalancer stand-in); `via` gets the route back. Nothing else routes to it. Returns the
    namespace's name; `remove_client` undoes it all."""
    netns, veth = client_netns(index)
    host.run("ip", "netns", "add", netns)
    host.run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
    host.run("ip", "link", "set", veth, "master", HOST_BRIDGE, "up")
    inside = ["ip", "netns", "exec", netns]
    host.run(*inside, "ip", "link", "set", "lo", "up")
    host.run(*inside, "ip", "addr", "add", f"{address}/32", "dev", "eth0")
    host.run(*inside, "ip", "link", "set", "eth0", "up")
    host.run(*inside, "ip", "route", "add", f"{via.ip}/32", "dev", "eth0")
    for target in reach:
        host.run(*inside, "ip", "route", "add", f"{target}/32", "via", via.ip)
    _in(via, "ip", "route", "replace", f"{address}/32", "dev", "eth0")
    return netns


def remove_client(index: int, address: str, via: NodeSpec) -> None:
    """Delete the client's namespace (its veth pair goes with it) and `via`'s route to it."""
    netns, _ = client_netns(index)
    host.run("ip", "netns", "delete", netns, check=False)
    host.run("ip", "netns", "exec", via.netns, "ip", "route", "del", f"{address}/32",
             check=False)  # fmt: skip
