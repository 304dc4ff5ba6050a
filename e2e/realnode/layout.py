"""Where the real nodes live: names, addresses, directories and cgroups (one place, so that the
clean-up of a killed run finds everything by name).

Network (every node address, pod and service address is inside a network namespace the run
creates, or on the run's own bridge):

- host bridge `HOST_BRIDGE` holding `HOST_IP` in `NODE_NET`: the API server listens there
  (`Cluster(address=HOST_IP)`), so every node namespace reaches it;
- node i: network namespace `ae2e-n<i>` (its kubelet, containerd, kube-proxy and the kube-router
  pod run in it), a veth pair `ae2e-v<i>` (host side, on the bridge) / `eth0` (node side) with
  the node address 10.245.0.<11+i>; a CNI bridge `cbr0` in the namespace is the gateway
  10.245.<128+i>.1 of the node's pod range 10.245.<128+i>.0/24 (Node.spec.podCIDR);
- routes: the host reaches each pod range via its node; each node reaches the other nodes' pod
  ranges via their nodes and the service range via the host (where kube-proxy's DNAT in the
  node namespace has already rewritten it); nothing has a default route, and the host has
  `unreachable` routes for the cluster's pod and service ranges, 10.245.0.0/16 around all of
  the above, and kwok's fake node address, so a misrouted packet is refused on the host
  instead of leaving through its default route.

Zones (the prod stack spreads `web` over `topology.kubernetes.io/zone` and
`kubernetes.io/hostname`, both `DoNotSchedule`, maxSkew 1): two nodes in zone a, one in b and one
in c, the zone names of the kwok nodes (tainted nodes still count as domains under the default
`nodeTaintsPolicy: Ignore`, so real nodes in other zones would leave the kwok zones at 0 pods and
refuse a second pod anywhere). Three replicas land one per zone; draining the zone-a node that
holds one moves it to the other zone-a node, the only placement both constraints allow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from e2e.cluster import POD_CIDR, SERVICE_CIDR, ZONES

BASE = Path(os.environ.get("APPSTACK_E2E_NODE_ROOT") or "/var/lib/appstack-e2e-node")
HOST_BRIDGE = "ae2e-br0"
HOST_IP = "10.245.0.1"
NODE_NET = "10.245.0.0/24"
# All real nodes' pod ranges (kube-proxy's clusterCIDR; each node has a /24 of it).
REAL_POD_CIDR = "10.245.128.0/17"
DNS_IP = "10.96.0.10"
# The LoadBalancer stand-in address (e2e/realapp.py): the LB emulator of e2e/cluster.py writes it
# into every LoadBalancer Service's status in a real-node session, and the host routes it to the
# nodes, where kube-proxy's LoadBalancer rules serve it.
LB_IP = "10.245.0.100"
CLUSTER_DOMAIN = "cluster.local"
UNREACHABLE = (POD_CIDR, SERVICE_CIDR, "10.245.0.0/16", "10.0.0.1/32")
NETNS_PREFIX = "ae2e-n"
VETH_PREFIX = "ae2e-v"
CGROUP_PREFIX = "appstack-e2e-node"
# What the one-node layout of an earlier version of this harness created (removed if found).
LEGACY_BRIDGES = ("ae2e-node0",)
NODE_LABEL = ("appstack.e2e/node", "real")
KWOK_TAINT = {"key": "appstack.e2e/simulated", "value": "true", "effect": "NoSchedule"}
CNI_BIN = Path("/usr/lib/cni")


@dataclass(frozen=True)
class NodeSpec:
    """One real node: its index fixes every name and address it has."""

    index: int
    zone: str

    @property
    def name(self) -> str:
        return f"real-node-{self.index}"

    @property
    def netns(self) -> str:
        return f"{NETNS_PREFIX}{self.index}"

    @property
    def veth(self) -> str:
        return f"{VETH_PREFIX}{self.index}"

    @property
    def ip(self) -> str:
        return f"10.245.0.{11 + self.index}"

    @property
    def pod_cidr(self) -> str:
        return f"10.245.{128 + self.index}.0/24"

    @property
    def gateway(self) -> str:
        return f"10.245.{128 + self.index}.1"

    @property
    def base(self) -> Path:
        return BASE / self.name

    @property
    def cgroup_root(self) -> str:
        return f"{CGROUP_PREFIX}{self.index}"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns


LAYOUT = (
    NodeSpec(0, ZONES[0]),
    NodeSpec(1, ZONES[0]),
    NodeSpec(2, ZONES[1]),
    NodeSpec(3, ZONES[2]),
)
