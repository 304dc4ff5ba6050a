"""One app's NetworkPolicy, on top of the namespace's default deny (components/kube/baseline.py):
the app port from anywhere (LoadBalancer) or from the ingress controller namespace and the
stack's client apps; the metrics port from the monitoring namespace; and only the egress the app
declares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.config import EgressRule, NetworkSettings
from components.kube import labels
from components.kube.network import cidr_peers, namespace_peer, namespace_selector


@dataclass(frozen=True)
class AppNetworkPolicyArgs:
    """Inputs of one app's policy."""

    app: str
    """App name; its selector labels pick the pods."""
    namespace: pulumi.Input[str]
    """Namespace of the app."""
    instance: str
    """app.kubernetes.io/instance label value."""
    port: int
    """Container port of the app."""
    metrics_port: int
    """Container port of /metrics."""
    public: bool
    """True when a LoadBalancer/NodePort exposes the app: the app port is open to any source."""
    network: NetworkSettings
    """Ingress controller and monitoring namespaces."""
    client_apps: Sequence[str] = field(default_factory=tuple)
    """Apps of this stack that declared egress to this one."""
    egress: Sequence[EgressRule] = field(default_factory=tuple)
    """Outbound traffic the app declared."""
    internal: bool = False
    """Reachable only inside the cluster (no Ingress, ClusterIP): checked from outside through
    the API server's service proxy, whose connections come from `network.apiServerCidrs`."""


def _peers_for(rule: EgressRule, instance: str) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    if rule.app is not None:
        return [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels=labels.selector_labels(rule.app, instance)
                )
            )
        ]
    if rule.namespace is not None:
        return [namespace_peer(rule.namespace)]
    return cidr_peers(rule.cidrs)


def app_ingress_rules(
    args: AppNetworkPolicyArgs,
) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
    """Who may reach the app: its port (public, or from ingress controller and clients) and
    its metrics port from the monitoring namespace."""
    app_port = [k8s.networking.v1.NetworkPolicyPortArgs(port=args.port, protocol="TCP")]
    rules: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs] = []
    if args.public:
        rules.append(k8s.networking.v1.NetworkPolicyIngressRuleArgs(ports=app_port))
    else:
        peers = [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=namespace_selector(args.network.ingress_controller_namespace)
            )
        ]
        peers += [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels=labels.selector_labels(client, args.instance)
                )
            )
            for client in sorted(args.client_apps)
        ]
        # CI agents that verify the app at its cluster address: namespace AND pod labels in
        # one peer, so other pods of that namespace stay out.
        peers += [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=namespace_selector(agents.namespace),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(agents.pod_labels)),
            )
            for agents in args.network.pipeline_agents
        ]
        rules.append(k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=peers, ports=app_port))
    if args.internal and args.network.api_server_cidrs:
        # The service proxy (`stackctl verify` from outside the cluster): the API server dials a
        # pod of the Service on its target port from its own address.
        rules.append(
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=cidr_peers(args.network.api_server_cidrs), ports=app_port
            )
        )
    rules.append(
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=[
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    namespace_selector=namespace_selector(args.network.monitoring_namespace)
                )
            ],
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=args.metrics_port, protocol="TCP")],
        )
    )
    return rules


class AppNetworkPolicy(pulumi.ComponentResource):
    """The allowances of one app on top of the namespace's default deny."""

    def __init__(
        self, name: str, args: AppNetworkPolicyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:network:AppNetworkPolicy", name, None, opts)
        egress = [
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=_peers_for(rule, args.instance),
                ports=[
                    k8s.networking.v1.NetworkPolicyPortArgs(port=p.port, protocol=p.protocol)
                    for p in rule.ports
                ],
            )
            for rule in args.egress
        ]
        policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=labels.resource_name(args.app),
                namespace=args.namespace,
                labels=labels.standard_labels(args.app, args.instance, "network-policy"),
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels=labels.selector_labels(args.app, args.instance)
                ),
                policy_types=["Ingress", "Egress"] if egress else ["Ingress"],
                ingress=app_ingress_rules(args),
                egress=egress or None,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policy_name: pulumi.Output[str] = policy.metadata.name
        self.register_outputs({"policy_name": self.policy_name})
