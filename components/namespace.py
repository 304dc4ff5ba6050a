"""The stack's namespace: Pod Security admission 'restricted', a ResourceQuota sized from the
apps' worst strategy transition (config alone), a LimitRange, and the baseline NetworkPolicies."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pulumi
import pulumi_kubernetes as k8s

from appstack_grammar import format_bytes, format_cpu, parse_quantity
from components.app import release
from components.config import AppConfig, LimitRangeSettings, NamespaceQuota, NetworkSettings
from components.kube import labels
from components.kube.baseline import BaselineNetworkPolicies, BaselineNetworkPoliciesArgs

#: The ResourceQuota's annotation naming the `namespaceQuota.headroomPercent` that sized it.
HEADROOM_ANNOTATION = "appstack.io/quota-headroom-percent"
_COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


def strategy_variants(app: AppConfig, argo_allowed: bool) -> list[AppConfig]:
    """The app at its own sizes under every release strategy its config may switch to: rolling,
    blueGreen with the idle colour running, canary at each of `steps`, and, where the stack
    allows Argo Rollouts (`argo_allowed`: monitoring on), its blueGreen and canary Rollouts."""
    settings = app.release
    image = settings.canary_image or app.image
    plain: dict[str, object] = {"argo_rollouts": False, "blue_image": None, "green_image": None}
    updates: list[dict[str, object]] = [
        {**plain, "strategy": "rolling", "weight": 0, "canary_image": None},
        {**plain, "strategy": "blueGreen", "weight": 0, "canary_image": None},
    ]
    updates[1]["scale_down_idle"] = False
    for weight in settings.steps:
        updates.append({**plain, "strategy": "canary", "weight": weight, "canary_image": image})
    if argo_allowed:
        for strategy in ("blueGreen", "canary"):
            updates.append(
                {"argo_rollouts": True, "blue_image": None, "green_image": None, "weight": 0,
                 "strategy": strategy, "canary_image": None}
            )  # fmt: skip
    return [
        app,
        *(app.model_copy(update={"release": settings.model_copy(update=u)}) for u in updates),
    ]


def transition_pods(app_name: str, app: AppConfig, argo_allowed: bool) -> int:
    """The most pods the app can run at once during any one update that switches between two of
    its `strategy_variants` (or stays in one), at the app's sizes.

    While an update runs, every workload of the new strategy may be at its peak (rolling it
    out, `release.peak_pods_by_workload`), and every workload of the old strategy that the new
    one drops still runs: the engine deletes removed resources only after every create and
    update of the run. A workload both have (same kind and name) counts once, at the larger
    of its two peaks. The maximum over every ordered pair is a function of the app's config
    alone, and the same for every strategy the app may be in, so a strategy switch never
    changes the quota and never waits on it.
    """
    peaks = [
        release.peak_pods_by_workload(release.plan(app_name, variant), variant)
        for variant in strategy_variants(app, argo_allowed)
    ]
    return max(
        sum(max(old.get(key, 0), new.get(key, 0)) for key in old.keys() | new.keys())
        for old in peaks
        for new in peaks
    )


def quota_hard(
    apps: Mapping[str, AppConfig], quota: NamespaceQuota, argo_allowed: bool
) -> dict[str, str]:
    """ResourceQuota `hard`: per app its worst strategy transition (`transition_pods`), each pod
    at the app's requests and limits, times (1 + headroom)."""
    factor = Decimal(100 + quota.headroom_percent) / 100
    totals = dict.fromkeys(_COMPUTE, Decimal(0))
    pods = 0
    for app_name, app in apps.items():
        count = transition_pods(app_name, app, argo_allowed)
        pods += count
        per_pod = {
            "requests.cpu": parse_quantity(app.resources.requests.cpu),
            "limits.cpu": parse_quantity(app.resources.limits.cpu),
            "requests.memory": parse_quantity(app.resources.requests.memory),
            "limits.memory": parse_quantity(app.resources.limits.memory),
        }
        for key in _COMPUTE:
            totals[key] += count * per_pod[key]
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
    argo_allowed: bool = False
    """The stack may run Argo Rollouts (monitoring on): the quota holds a switch to them."""


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
        if args.quota.enabled:
            hard = quota_hard(args.apps, args.quota, args.argo_allowed)
            k8s.core.v1.ResourceQuota(
                f"{name}-quota",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="appstack-quota",
                    namespace=ns_name,
                    labels=meta_labels,
                    # Which headroom sized `hard`: `stackctl diff` names the headroom that
                    # holds a change's rollout from it (stackctl/diff/quota.py).
                    annotations={HEADROOM_ANNOTATION: str(args.quota.headroom_percent)},
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
