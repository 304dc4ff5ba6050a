"""Network policies: the namespace baseline (default deny + DNS) and the allowances of the
controller and the agents."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.jenkins.context import Ctx
from components.jenkins.names import AGENT_APP, APP, HTTP_PORT
from components.kube import labels
from components.kube.baseline import BaselineNetworkPolicies, BaselineNetworkPoliciesArgs
from components.kube.network import (
    cidr_peers,
    namespace_peer,
    namespace_selector,
)


def _ports(*ports: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(port=p, protocol="TCP") for p in ports]


def baseline(ctx: Ctx) -> None:
    BaselineNetworkPolicies(
        f"{ctx.name}-baseline",
        BaselineNetworkPoliciesArgs(
            namespace=ctx.namespace, instance=ctx.instance, dns=ctx.network
        ),
        opts=ctx.opts(),
    )


def _controller_ingress(ctx: Ctx) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
    s = ctx.settings
    agent_peer = k8s.networking.v1.NetworkPolicyPeerArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ctx.agent_selector)
    )
    rules = [
        # Agents (WebSocket) and the monitoring namespace (/prometheus/) on the HTTP port.
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=[agent_peer, namespace_peer(ctx.network.monitoring_namespace)],
            ports=_ports(HTTP_PORT),
        )
    ]
    if s.service.type == "LoadBalancer":
        # From anywhere, as for a public app: with externalTrafficPolicy Cluster the client
        # address is SNATed, so the client filter is the LoadBalancer's source ranges.
        rules.append(k8s.networking.v1.NetworkPolicyIngressRuleArgs(ports=_ports(HTTP_PORT)))
    if s.ingress.enabled:
        rules.append(
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[namespace_peer(ctx.network.ingress_controller_namespace)],
                ports=_ports(HTTP_PORT),
            )
        )
    return rules


def controller_and_agents(ctx: Ctx) -> None:
    """Controller: in from agents, monitoring, LB/ingress; out to the API server
    (kubeApiCidrs x kubeApiPorts) and the plugin site / SCM on 443. Agents: out to the
    controller and to agentEgressCidrs on 443 plus agentApiPorts (the clusters they deploy to)."""
    s = ctx.settings
    k8s.networking.v1.NetworkPolicy(
        f"{ctx.name}-controller-netpol",
        metadata=ctx.meta("network-policy", labels.resource_name(APP, "controller")),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ctx.selector),
            policy_types=["Ingress", "Egress"],
            ingress=_controller_ingress(ctx),
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=cidr_peers(s.effective_kube_api_cidrs), ports=_ports(*s.kube_api_ports)
                ),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=cidr_peers(s.effective_plugin_site_cidrs), ports=_ports(443)
                ),
            ],
        ),
        opts=ctx.opts(),
    )
    external_ports = {a.external_port for a in ctx.verified_apps if a.external_port}
    agent_ports = sorted({443, *s.agent_api_ports, *external_ports})
    k8s.networking.v1.NetworkPolicy(
        f"{ctx.name}-agents-netpol",
        metadata=ctx.meta("network-policy", labels.resource_name(AGENT_APP), app=AGENT_APP),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ctx.agent_selector),
            # No ingress rule: nothing connects to an agent (exec goes through the API).
            policy_types=["Ingress", "Egress"],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ctx.selector)
                        )
                    ],
                    ports=_ports(HTTP_PORT),
                ),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=cidr_peers(s.effective_agent_egress_cidrs), ports=_ports(*agent_ports)
                ),
                *_pipeline_egress(ctx),
            ],
        ),
        opts=ctx.opts(),
    )


def _pipeline_egress(ctx: Ctx) -> list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]:
    """The paths the pipeline's own steps take, each derived from config: the API server of
    this cluster (kubeApiCidrs x kubeApiPorts: kubeconfigs of the deploy steps), this stack's
    apps at their pods (a health URL on a LoadBalancer address inside the cluster is
    translated by kube-proxy to a pod, so the policy sees the pod's port), and other stacks'
    apps verified at their cluster address (`pipeline.verifyTargets`)."""
    s = ctx.settings
    rules = [
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=cidr_peers(s.effective_kube_api_cidrs), ports=_ports(*s.kube_api_ports)
        )
    ]
    for app in ctx.verified_apps:
        rules.append(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=namespace_selector(app.namespace),
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(app.selector)),
                    )
                ],
                ports=_ports(app.port),
            )
        )
    for target in s.pipeline.verify_targets:
        rules.append(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=namespace_selector(target.namespace),
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(
                            match_labels={labels.PART_OF_KEY: labels.PART_OF}
                        ),
                    )
                ],
                ports=_ports(*target.ports),
            )
        )
    return rules
