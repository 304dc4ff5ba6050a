"""NetworkPolicies: default deny in the namespace, DNS egress, and per-app allowances.

Nothing reaches or leaves a pod unless a policy here says so:
- `BaselineNetworkPolicies`: deny all ingress and egress for every pod, then allow DNS.
- `AppNetworkPolicy`: the app port from anywhere (LoadBalancer) or from the ingress controller
  namespace and the stack's client apps; the metrics port from the monitoring namespace; and only
  the egress the app declares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import labels
from components.config import EgressRule, Ingress, NetworkSettings

NS_NAME_LABEL = "kubernetes.io/metadata.name"


def _namespace_selector(namespace: str) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels={NS_NAME_LABEL: namespace})


def namespace_peer(namespace: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """Every pod of one namespace (by its immutable kubernetes.io/metadata.name label)."""
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=_namespace_selector(namespace)
    )


def cidr_peers(cidrs: Sequence[str]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    """One peer per IP block."""
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
        for cidr in cidrs
    ]


def ingress_spec(
    ingress: Ingress, service_name: pulumi.Input[str], port_name: str = "http"
) -> k8s.networking.v1.IngressSpecArgs:
    """An Ingress routing `ingress.host` + path prefix to a Service port (TLS when a secret is
    configured). Used by the apps and the Jenkins UI."""
    return k8s.networking.v1.IngressSpecArgs(
        ingress_class_name=ingress.class_name,
        tls=[
            k8s.networking.v1.IngressTLSArgs(
                hosts=[ingress.host], secret_name=ingress.tls_secret_name
            )
        ]
        if ingress.tls_secret_name
        else None,
        rules=[
            k8s.networking.v1.IngressRuleArgs(
                host=ingress.host,
                http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                    paths=[
                        k8s.networking.v1.HTTPIngressPathArgs(
                            path=ingress.path,
                            path_type="Prefix",
                            backend=k8s.networking.v1.IngressBackendArgs(
                                service=k8s.networking.v1.IngressServiceBackendArgs(
                                    name=service_name,
                                    port=k8s.networking.v1.ServiceBackendPortArgs(name=port_name),
                                )
                            ),
                        )
                    ]
                ),
            )
        ],
    )


@dataclass(frozen=True)
class BaselineNetworkPoliciesArgs:
    """Inputs of the namespace-wide policies."""

    namespace: pulumi.Input[str]
    """Namespace the policies apply to."""
    instance: str
    """app.kubernetes.io/instance label value."""
    network: NetworkSettings
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
                                namespace_selector=_namespace_selector(args.network.dns_namespace),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels=dict(args.network.dns_pod_labels)
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
                namespace_selector=_namespace_selector(args.network.ingress_controller_namespace)
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
                    namespace_selector=_namespace_selector(args.network.monitoring_namespace)
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
