"""The verdict on one connection: source, destination, port and protocol (policy/netpol/__init__
lists the upstream rules this implements)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policy.netpol.model import Cluster, Endpoint, External, Pod
from policy.netpol.selectors import selector_matches

Direction = Literal["Ingress", "Egress"]


@dataclass(frozen=True)
class Side:
    """One direction's decision: whether the pod is isolated and which policies allowed it."""

    isolated: bool
    allowed_by: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.isolated or bool(self.allowed_by)


@dataclass(frozen=True)
class Verdict:
    """Egress of the source and ingress of the destination (an external end has no policy)."""

    egress: Side
    ingress: Side
    summary: str

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    def __bool__(self) -> bool:
        return self.allowed


def policy_types(policy: Mapping[str, Any]) -> list[str]:
    """`policyTypes`, defaulted as the API server does (networking/v1 NetworkPolicySpec: Ingress
    always, Egress when there are egress rules)."""
    spec = policy.get("spec") or {}
    given = spec.get("policyTypes")
    if given:
        return [str(t) for t in given]
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _selects(policy: Mapping[str, Any], pod: Pod) -> bool:
    meta = policy.get("metadata") or {}
    return meta.get("namespace") == pod.namespace and selector_matches(
        (policy.get("spec") or {}).get("podSelector") or {}, pod.labels
    )


def _ip_in_block(ip: str, block: Mapping[str, Any]) -> bool:
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(str(block["cidr"]), strict=False)
    if addr.version != net.version or addr not in net:
        return False
    return not any(
        addr.version == ex.version and addr in ex
        for ex in (ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or [])
    )


def _peer_matches(
    peer: Mapping[str, Any], policy_ns: str, other: Endpoint, cluster: Cluster
) -> bool:
    if "ipBlock" in peer:
        ip = other.ip
        return ip is not None and _ip_in_block(ip, peer["ipBlock"])
    if not isinstance(other, Pod):
        return False
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        if other.namespace != policy_ns:  # podSelector alone: the policy's namespace only
            return False
    elif not selector_matches(ns_sel, cluster.namespace(other.namespace)):
        return False
    pod_sel = peer.get("podSelector")
    return pod_sel is None or selector_matches(pod_sel, other.labels)


def _port_matches(rule_port: Mapping[str, Any], dest: Endpoint, port: int, protocol: str) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    given = rule_port.get("port")
    if given is None:  # all ports of this protocol
        return True
    if isinstance(given, str):  # named: only the destination pod's container port of that name
        if not isinstance(dest, Pod):
            return False
        resolved = dest.named_port(given, protocol)
        return resolved is not None and resolved == port
    end = rule_port.get("endPort")
    return int(given) <= port <= (int(end) if end is not None else int(given))


def _rule_matches(
    rule: Mapping[str, Any],
    peers_key: str,
    policy_ns: str,
    other: Endpoint,
    dest: Endpoint,
    port: int,
    protocol: str,
    cluster: Cluster,
) -> bool:
    ports = rule.get("ports")
    if ports and not any(_port_matches(p, dest, port, protocol) for p in ports):
        return False
    peers = rule.get(peers_key)
    return not peers or any(_peer_matches(p, policy_ns, other, cluster) for p in peers)


def _side(
    cluster: Cluster,
    direction: Direction,
    pod: Pod,
    other: Endpoint,
    dest: Endpoint,
    port: int,
    protocol: str,
) -> Side:
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolated = False
    allowed: list[str] = []
    for policy in cluster.policies:
        if not _selects(policy, pod) or direction not in policy_types(policy):
            continue
        isolated = True
        meta = policy.get("metadata") or {}
        for rule in (policy.get("spec") or {}).get(rules_key) or []:
            if _rule_matches(rule, peers_key, pod.namespace, other, dest, port, protocol, cluster):
                allowed.append(f"{meta.get('namespace')}/{meta.get('name')}")
                break
    return Side(isolated, tuple(allowed))


_OPEN = Side(isolated=False, allowed_by=())


def verdict(
    cluster: Cluster, source: Endpoint, dest: Endpoint, port: int, protocol: str = "TCP"
) -> Verdict:
    """Whether `source` may open a `protocol` connection to `dest` on `port` (the port the
    destination pod listens on: after Service translation)."""
    egress = (
        _side(cluster, "Egress", source, dest, dest, port, protocol)
        if isinstance(source, Pod)
        else _OPEN
    )
    ingress = (
        _side(cluster, "Ingress", dest, source, dest, port, protocol)
        if isinstance(dest, Pod)
        else _OPEN
    )
    parts = []
    for name, side in (("egress", egress), ("ingress", ingress)):
        if side.isolated:
            state = f"allowed by {', '.join(side.allowed_by)}" if side.allowed else "refused"
            parts.append(f"{name} {state}")
    summary = f"{source} -> {dest} {port}/{protocol}: " + ("; ".join(parts) or "not isolated")
    return Verdict(egress, ingress, summary)


__all__ = ["External", "Verdict", "policy_types", "verdict"]
