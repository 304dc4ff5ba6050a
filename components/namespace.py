"""The stack's namespace: Pod Security admission 'restricted', a ResourceQuota sized from the
apps' worst case, a LimitRange, and the baseline NetworkPolicies."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pulumi
import pulumi_kubernetes as k8s

from appstack_grammar import format_bytes, format_cpu, parse_quantity
from components import labels, release
from components.config import AppConfig, LimitRangeSettings, NamespaceQuota, NetworkSettings
from components.network import BaselineNetworkPolicies, BaselineNetworkPoliciesArgs


def quota_hard(apps: Mapping[str, AppConfig], quota: NamespaceQuota) -> dict[str, str]:
    """ResourceQuota `hard` for the apps' worst case: every app at the peak pod count of its
    release strategy (components.release.peak_pods), times (1 + headroom)."""
    factor = Decimal(100 + quota.headroom_percent) / 100
    totals = {
        "requests.cpu": Decimal(0),
        "requests.memory": Decimal(0),
        "limits.cpu": Decimal(0),
        "limits.memory": Decimal(0),
    }
    pods = 0
    for app_name, app in apps.items():
        count = release.peak_pods(release.plan(app_name, app), app)
        pods += count
        totals["requests.cpu"] += count * parse_quantity(app.resources.requests.cpu)
        totals["limits.cpu"] += count * parse_quantity(app.resources.limits.cpu)
        totals["requests.memory"] += count * parse_quantity(app.resources.requests.memory)
        totals["limits.memory"] += count * parse_quantity(app.resources.limits.memory)
    hard = {
        key: format_cpu(value * factor) if key.endswith("cpu") else format_bytes(value * factor)
        for key, value in totals.items()
    }
    hard["pods"] = str(math.ceil(pods * factor))
    hard["services.loadbalancers"] = str(
        sum(1 for a in apps.values() if a.service.type == "LoadBalancer")
    )
    # The quota counts the node ports of LoadBalancer Services too: each of their ports gets one
    # unless allocateLoadBalancerNodePorts is false (kubernetes pkg/quota/v1/evaluator/core/
    # services.go). Counting NodePort only made prod's own quota refuse its LoadBalancer
    # (`exceeded quota: appstack-quota, requested: services.nodeports=1`, found by make e2e).
    hard["services.nodeports"] = str(
        sum(1 for a in apps.values() if a.service.type in ("NodePort", "LoadBalancer"))
    )
    return hard


@dataclass(frozen=True)
class AppNamespaceArgs:
    """Inputs of the namespace component."""

    name: str
    """Namespace name."""
    instance: str
    """app.kubernetes.io/instance label value."""
    apps: Mapping[str, AppConfig]
    """The apps that will run here (sizes the quota)."""
    quota: NamespaceQuota
    """Quota settings."""
    limit_range: LimitRangeSettings
    """LimitRange defaults."""
    network: NetworkSettings
    """DNS location for the baseline policies."""


def _resource_map(cpu: str, memory: str, storage: str) -> dict[str, str]:
    return {"cpu": cpu, "memory": memory, "ephemeral-storage": storage}


class AppNamespace(pulumi.ComponentResource):
    """Namespace with restricted Pod Security admission, quota, limits and default deny."""

    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("appstack:namespace:AppNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.name, labels=labels.namespace_labels(args.name, args.instance)
            ),
            opts=child,
        )
        ns_name = ns.metadata.name
        meta_labels = {
            labels.INSTANCE: args.instance,
            labels.PART_OF_KEY: labels.PART_OF,
            labels.MANAGED_BY_KEY: labels.MANAGED_BY,
        }
        if args.quota.enabled:
            k8s.core.v1.ResourceQuota(
                f"{name}-quota",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="appstack-quota", namespace=ns_name, labels=meta_labels
                ),
                spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=quota_hard(args.apps, args.quota)),
                opts=child,
            )
        lr = args.limit_range
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="appstack-limits", namespace=ns_name, labels=meta_labels
            ),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default_request=_resource_map(
                            lr.default_request.cpu,
                            lr.default_request.memory,
                            lr.default_request.ephemeral_storage,
                        ),
                        default=_resource_map(
                            lr.default_limit.cpu,
                            lr.default_limit.memory,
                            lr.default_limit.ephemeral_storage,
                        ),
                    )
                ]
            ),
            opts=child,
        )
        BaselineNetworkPolicies(
            f"{name}-baseline",
            BaselineNetworkPoliciesArgs(
                namespace=ns_name, instance=args.instance, network=args.network
            ),
            opts=child,
        )
        self.name = ns_name
        self.register_outputs({"name": self.name})
