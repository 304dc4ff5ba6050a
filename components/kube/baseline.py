"""The baseline of every namespace the stack creates (the app namespace, Jenkins' and the image
builder's): deny all ingress and egress for every pod, then allow DNS. Nothing reaches or leaves
a pod unless a policy on top of this says so."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_kubernetes as k8s

from components.kube import labels
from components.kube.network import namespace_selector


class ClusterDns(Protocol):
    """Where the cluster DNS pods run (components.config.NetworkSettings)."""

    @property
    def dns_namespace(self) -> str: ...
    @property
    def dns_pod_labels(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class BaselineNetworkPoliciesArgs:
    """Inputs of the namespace-wide policies."""

    namespace: pulumi.Input[str]
    """Namespace the policies apply to."""
    instance: str
    """app.kubernetes.io/instance label value."""
    dns: ClusterDns
    """Where cluster DNS runs."""


class BaselineNetworkPolicies(pulumi.ComponentResource):
    """Default deny (ingress and egress) for every pod of a namespace, plus DNS egress."""

    def __init__(
        self,
        name: str,
        args: BaselineNetworkPoliciesArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("appstack:network:BaselineNetworkPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        meta_labels = {
            labels.INSTANCE: args.instance,
            labels.PART_OF_KEY: labels.PART_OF,
            labels.MANAGED_BY_KEY: labels.MANAGED_BY,
        }
        deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="default-deny-all", namespace=args.namespace, labels=meta_labels
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
            ),
            opts=child,
        )
        dns_ports = [
            k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol=proto)
            for proto in ("UDP", "TCP")
        ]
        dns = k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-dns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="allow-dns-egress", namespace=args.namespace, labels=meta_labels
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                namespace_selector=namespace_selector(args.dns.dns_namespace),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels=dict(args.dns.dns_pod_labels)
                                ),
                            )
                        ],
                        ports=dns_ports,
                    )
                ],
            ),
            opts=child,
        )
        self.default_deny_name: pulumi.Output[str] = deny.metadata.name
        self.allow_dns_name: pulumi.Output[str] = dns.metadata.name
        self.register_outputs(
            {"default_deny_name": self.default_deny_name, "allow_dns_name": self.allow_dns_name}
        )
