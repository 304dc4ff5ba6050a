"""The stack's namespace: Pod Security admission 'restricted', a ResourceQuota sized from the
apps' worst case, a LimitRange, and the baseline NetworkPolicies."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import pulumi
import pulumi_kubernetes as k8s

from appstack_grammar import format_bytes, format_cpu, parse_quantity
from components.app import release
from components.config import AppConfig, LimitRangeSettings, NamespaceQuota, NetworkSettings
from components.kube import labels
from components.kube.baseline import BaselineNetworkPolicies, BaselineNetworkPoliciesArgs

#: The stack output in which every update records each workload's share of the quota. The next
#: update reads it back (components/stack.py) so that the workloads it deletes still count.
QUOTA_USAGE_OUTPUT = "quota_usage"
_COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


@dataclass(frozen=True)
class Usage:
    """What one workload can hold of the quota at its peak, before headroom."""

    pods: int
    """Peak pods (components.app.release.peak_pods_by_workload)."""
    compute: Mapping[str, Decimal]
    """Peak requests and limits of cpu (cores) and memory (bytes), keyed as in the quota."""

    def as_output(self) -> dict[str, object]:
        return {"pods": self.pods, **{key: str(value) for key, value in self.compute.items()}}

    @classmethod
    def from_output(cls, value: object) -> Usage | None:
        """The usage an earlier update exported; None for anything else (an older program)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("pods"), int | float):
            return None
        try:
            compute = {key: Decimal(str(value[key])) for key in _COMPUTE}
        except (KeyError, ArithmeticError):
            return None
        return cls(int(value["pods"]), compute)


def workload_usage(apps: Mapping[str, AppConfig]) -> dict[str, Usage]:
    """Each workload's peak share of the quota, keyed `<kind>/<name>` (one namespace)."""
    usage: dict[str, Usage] = {}
    for app_name, app in apps.items():
        per_pod = {
            "requests.cpu": parse_quantity(app.resources.requests.cpu),
            "limits.cpu": parse_quantity(app.resources.limits.cpu),
            "requests.memory": parse_quantity(app.resources.requests.memory),
            "limits.memory": parse_quantity(app.resources.limits.memory),
        }
        peaks = release.peak_pods_by_workload(release.plan(app_name, app), app)
        for key, count in peaks.items():
            usage[key] = Usage(count, {k: count * per_pod[k] for k in _COMPUTE})
    return usage


def carried_over(previous: object, current: Mapping[str, Usage]) -> list[Usage]:
    """The workloads of the last update (its `quota_usage` output) that this one deletes.

    The engine deletes a removed resource only after every create and update of the run, so the
    old workloads' pods keep counting against the quota while the new ones start: leaving
    blue-green, say, runs both colours beside the new Deployment until it is ready. Sized
    without them, the quota refuses the new pods and the update waits for the provider's
    timeout (found by `make e2e`). The next update, with nothing left to delete, returns the
    quota to its steady size.
    """
    if not isinstance(previous, Mapping):
        return []
    carried = []
    for key, value in sorted(previous.items()):
        usage = Usage.from_output(value)
        if key not in current and usage is not None:
            carried.append(usage)
    return carried


def quota_hard(
    apps: Mapping[str, AppConfig], quota: NamespaceQuota, usages: Sequence[Usage]
) -> dict[str, str]:
    """ResourceQuota `hard` for the apps' worst case: `usages` (every workload at the peak pod
    count of its release strategy, `workload_usage`, plus the workloads this update deletes,
    `carried_over`), times (1 + headroom)."""
    factor = Decimal(100 + quota.headroom_percent) / 100
    totals = {key: sum((u.compute[key] for u in usages), Decimal(0)) for key in _COMPUTE}
    hard = {
        key: format_cpu(value * factor) if key.endswith("cpu") else format_bytes(value * factor)
        for key, value in totals.items()
    }
    hard["pods"] = str(math.ceil(sum(u.pods for u in usages) * factor))
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
    previous_usage: pulumi.Input[object] = None
    """The last update's `quota_usage` output (None: no earlier update, or a render)."""


def _resource_map(cpu: str, memory: str, storage: str) -> dict[str, str]:
    return {"cpu": cpu, "memory": memory, "ephemeral-storage": storage}


class AppNamespace(pulumi.ComponentResource):
    """Namespace with restricted Pod Security admission, quota, limits and default deny."""

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
        # Each workload's peak share of the quota (plain data; the stack exports it).
        self.usage: dict[str, Usage] = workload_usage(args.apps)
        if args.quota.enabled:
            hard = pulumi.Output.from_input(args.previous_usage).apply(
                lambda previous: quota_hard(
                    args.apps,
                    args.quota,
                    [*self.usage.values(), *carried_over(previous, self.usage)],
                )
            )
            k8s.core.v1.ResourceQuota(
                f"{name}-quota",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="appstack-quota", namespace=ns_name, labels=meta_labels
                ),
                spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=hard),
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
                namespace=ns_name, instance=args.instance, dns=args.network
            ),
            opts=child,
        )
        self.name: pulumi.Output[str] = ns_name
        self.register_outputs({"name": self.name})
