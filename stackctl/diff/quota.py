"""Does a change fit the namespace ResourceQuota of its new render while it rolls out?

The program sizes the quota from the config being applied (components/namespace.py
`quota_hard`: a function of config alone), so during an update the quota already has its new
values while the old pods still hold their old requests. Quota admission counts every pod of
the namespace when a pod is created (kubernetes plugin/pkg/admission/resourcequota, the
`requests.*` / `limits.*` / `pods` usage of the pods that exist), so a change that lowers the
apps' sizes can leave the new pods refused with `exceeded quota` until the rollout's progress
deadline. `quota_risks` computes, from the two renders alone, the most the namespace holds at
once during the change and compares it with the `hard` values the new render declares.

Per workload of the namespace (Deployment, Rollout, StatefulSet, DaemonSet, ReplicaSet), with
O its pods before (replicas, or the HPA maximum when an HPA scales it: the HPA may have scaled
it there) at the old per-pod amounts and N its pods after at the new ones:

- only before (a strategy switch drops it): O old pods; the engine deletes removed resources
  after every create and update of the run, so they run through the whole update;
- only after: its peak, N plus the rollout's extra pods (below), at the new amounts;
- in both, pod template unchanged: no pod is recreated; the larger of the two peaks;
- in both, pod template changed (the pods roll), as the controller runs the rollout:
  - a Deployment (`RollingUpdate`, maxUnavailable 0, surge S; kubernetes
    pkg/controller/deployment/rolling.go: old + new never exceed N + S) and an Argo canary
    without traffic routing (same bound with its maxSurge, argo-rollouts
    utils/replicaset/canary.go `CalculateReplicaCountsForBasicCanary`): the larger of
    "every old pod and S new" and "S old pods and every new one" (the usage is linear in the
    split, so one of the two ends is the peak);
  - an Argo blueGreen Rollout (the new ReplicaSet runs at full size beside the old until
    promotion) and an Argo canary with traffic routing (the stable ReplicaSet stays at 100 %
    while the canary grows, `CalculateReplicaCountsForTrafficRoutedCanary`): every old pod and
    every new one;
  - any other kind (one pod replaced at a time): the larger count at the larger amounts.

Containers without requests or limits get the LimitRange defaults of the render, as the
LimitRanger admission plugin sets them; a pod's amount is the larger of its containers' sum and
its largest init container (the quota's pod usage, kubernetes pkg/quota/v1/evaluator/core/
pods.go `PodUsageFunc`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from stackctl.diff import rules
from stackctl.diff.model import Change, Ref, Snapshot, ref_of

COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
KEYS = ("pods", *COMPUTE)
#: The config key that scales every `hard` value (components/config/settings.py, 0..500).
HEADROOM_KEY = "appstack:namespaceQuota.headroomPercent"
HEADROOM_MAX = 500
#: The annotation on the rendered ResourceQuota saying which headroomPercent sized it
#: (components/namespace.py), so the diff can name the value that makes a change fit.
HEADROOM_ANNOTATION = "appstack.io/quota-headroom-percent"

_SUFFIX = {
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60), "n": Decimal("1e-9"), "u": Decimal("1e-6"),
    "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(1000), "M": Decimal("1e6"),
    "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18"),
}  # fmt: skip

Amounts = dict[str, Decimal]


def amount(value: Any) -> Decimal:
    """A Kubernetes quantity in base units (cores, bytes), exact."""
    match = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)",
                         str(value))  # fmt: skip
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    return Decimal(match.group(1)) * _SUFFIX[match.group(2)]


def show(key: str, value: Decimal) -> str:
    """`value` as the quota would print it: cpu in millicores, memory in Mi, pods as a count."""
    if key.endswith("cpu"):
        return f"{int((value * 1000).to_integral_value(rounding=ROUND_CEILING))}m"
    if key.endswith("memory"):
        return f"{int((value / 2**20).to_integral_value(rounding=ROUND_CEILING))}Mi"
    return str(int(value.to_integral_value(rounding=ROUND_CEILING)))


def _defaults(snapshot: Snapshot, namespace: str) -> dict[str, dict[str, Any]]:
    """The Container defaults of the namespace's LimitRanges: {"requests": .., "limits": ..}."""
    found: dict[str, dict[str, Any]] = {"requests": {}, "limits": {}}
    for obj in snapshot.objects:
        if obj.get("kind") != "LimitRange" or ref_of(obj)[1] != namespace:
            continue
        for item in (obj.get("spec") or {}).get("limits") or []:
            if item.get("type") == "Container":
                found["requests"].update(item.get("defaultRequest") or {})
                found["limits"].update(item.get("default") or {})
    return found


def per_pod(workload: Mapping[str, Any], defaults: Mapping[str, Mapping[str, Any]]) -> Amounts:
    """Requests and limits of one pod of `workload` as quota admission counts them."""
    pod = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}

    def of(container: Mapping[str, Any]) -> Amounts:
        resources = container.get("resources") or {}
        out: Amounts = {}
        for key in COMPUTE:
            kind, resource = key.split(".")
            value = (resources.get(kind) or {}).get(resource)
            if value is None and kind == "requests":  # API default: requests = limits
                value = (resources.get("limits") or {}).get(resource)
            if value is None:
                value = defaults[kind].get(resource)
            if value is None and kind == "requests":
                value = defaults["limits"].get(resource)
            out[key] = amount(value) if value is not None else Decimal(0)
        return out

    main = [of(c) for c in pod.get("containers") or []]
    init = [of(c) for c in pod.get("initContainers") or []]
    return {
        key: max([sum((c[key] for c in main), Decimal(0)), *(c[key] for c in init)])
        for key in COMPUTE
    } | {"pods": Decimal(1)}


def _surge(value: Any, count: int) -> int:
    """intstr maxSurge: an int, or a percent of `count` rounded up (deployment util)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(count * Decimal(value[:-1]) / 100)
    return int(value)


@dataclass(frozen=True)
class Workload:
    """One workload of a render as the quota sees it."""

    ref: Ref
    pods: int
    """Replicas, or the HPA maximum when an HPA scales it."""
    extra: int
    """Pods a rollout adds beside `pods` at most (surge; a full set for Argo blueGreen and
    traffic-routed canary); -1 for kinds that replace one pod at a time."""
    full_set: bool
    """The rollout runs every new pod beside every old one (Argo blueGreen, routed canary)."""
    each: Amounts
    template: Any


def workloads(snapshot: Snapshot, namespace: str) -> dict[Ref, Workload]:
    """The workloads of `namespace` in `snapshot`."""
    hpas: dict[Ref, int] = {}
    for obj in snapshot.objects:
        if obj.get("kind") == "HorizontalPodAutoscaler" and ref_of(obj)[1] == namespace:
            spec = obj.get("spec") or {}
            target = spec.get("scaleTargetRef") or {}
            hpas[(str(target.get("kind")), namespace, str(target.get("name")))] = int(
                spec.get("maxReplicas", 1)
            )
    defaults = _defaults(snapshot, namespace)
    found: dict[Ref, Workload] = {}
    for obj in snapshot.objects:
        ref = ref_of(obj)
        if ref[0] not in rules.WORKLOAD_KINDS or ref[1] != namespace:
            continue
        spec = obj.get("spec") or {}
        pods = hpas.get(ref, int(spec.get("replicas", 1)))
        strategy = spec.get("strategy") or {}
        full_set, extra = False, -1
        if ref[0] == "Deployment" and strategy.get("type", "RollingUpdate") == "RollingUpdate":
            extra = _surge((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"), pods)
        elif ref[0] == "Rollout" and "blueGreen" in strategy:
            preview = (strategy.get("blueGreen") or {}).get("previewReplicaCount")
            full_set, extra = True, int(preview) if preview is not None else pods
        elif ref[0] == "Rollout":
            canary = strategy.get("canary") or {}
            if canary.get("trafficRouting"):
                full_set, extra = True, pods
            else:
                extra = _surge(canary.get("maxSurge", "25%"), pods)
        found[ref] = Workload(ref, pods, extra, full_set, per_pod(obj, defaults),
                              spec.get("template"))  # fmt: skip
    return found


def _peak(w: Workload) -> Amounts:
    return {key: (w.pods + max(w.extra, 0)) * w.each[key] for key in KEYS}


def _rolled(old: Workload, new: Workload) -> Amounts:
    """Old pods at the old amounts beside new ones at the new, as the rollout runs."""
    out: Amounts = {}
    for key in KEYS:
        a, b = old.each[key], new.each[key]
        if new.full_set:
            out[key] = old.pods * a + new.pods * b
        elif new.extra >= 0:
            surge = new.extra
            out[key] = max(
                old.pods * a + min(surge, new.pods) * b, min(surge, old.pods) * a + new.pods * b
            )
        else:
            out[key] = max(old.pods, new.pods) * max(a, b)
    return out


def demand(before: Snapshot, after: Snapshot, namespace: str) -> tuple[Amounts, dict[Ref, Amounts]]:
    """The most `namespace` holds at once while `after` is applied over `before`, in total and
    per workload (module docstring)."""
    old, new = workloads(before, namespace), workloads(after, namespace)
    per: dict[Ref, Amounts] = {}
    for ref in sorted(old.keys() | new.keys()):
        o, n = old.get(ref), new.get(ref)
        if n is None:
            assert o is not None
            per[ref] = {key: o.pods * o.each[key] for key in KEYS}
        elif o is None:
            per[ref] = _peak(n)
        elif o.template == n.template:
            per[ref] = {key: max(_peak(o)[key], _peak(n)[key]) for key in KEYS}
        else:
            per[ref] = _rolled(o, n)
    total = {key: sum((p[key] for p in per.values()), Decimal(0)) for key in KEYS}
    return total, per


def _headroom(quota: Mapping[str, Any], total: Amounts, over: list[str]) -> int | None:
    """The smallest headroomPercent whose hard values hold `total` on every exceeded key, given
    the headroom the render was sized with (the `hard` is base x (1 + headroom/100)); None when
    the render does not say which headroom it used."""
    annotations = (quota.get("metadata") or {}).get("annotations") or {}
    used = annotations.get(HEADROOM_ANNOTATION)
    if used is None:
        return None
    factor = (100 + Decimal(str(used))) / 100
    hard = (quota.get("spec") or {}).get("hard") or {}
    needed = 0
    for key in over:
        base = amount(hard[key]) / factor
        if base > 0:
            needed = max(
                needed, int((100 * total[key] / base - 100).to_integral_value(ROUND_CEILING))
            )
    return needed


def quota_risks(changes: dict[Ref, Change], before: Snapshot, after: Snapshot) -> None:
    """For each ResourceQuota of `after`: if the change needs more than its `hard` at its
    peak, a `quota` risk on the quota's change (or the first changed workload of the
    namespace) naming the keys, the amounts, the headroom that fits and the steps."""
    for quota in after.objects:
        if quota.get("kind") != "ResourceQuota":
            continue
        ref = ref_of(quota)
        namespace = ref[1]
        hard = (quota.get("spec") or {}).get("hard") or {}
        total, per = demand(before, after, namespace)
        over = [k for k in KEYS if k in hard and total[k] > amount(hard[k])]
        if not over:
            continue
        holder = changes.get(ref) or next((changes[w] for w in per if w in changes), None)
        if holder is None:
            continue
        holder.add_risk("quota", quota_message(ref, over, total, hard, per, quota, before, after))


def quota_message(
    ref: Ref,
    over: list[str],
    total: Amounts,
    hard: Mapping[str, Any],
    per: Mapping[Ref, Amounts],
    quota: Mapping[str, Any],
    before: Snapshot,
    after: Snapshot,
) -> str:
    """What exceeds, by how much, which workloads hold it, and the updates that fit."""
    needs = ", ".join(f"{k} {show(k, total[k])} > {hard[k]}" for k in over)
    holders = ", ".join(
        f"{w[0]} {w[2]} {show(over[0], a[over[0]])}" for w, a in per.items() if a[over[0]] > 0
    )
    lowered = _lowered(before, after, ref[1])
    text = (
        f"ResourceQuota {ref[2]}: while this change rolls out the namespace {ref[1]} holds "
        f"{needs} (the new quota; old pods keep their old requests and limits until the new "
        f"ones replace them: {holders}), so quota admission refuses new pods (exceeded quota) "
        "and the rollout stalls until its progress deadline."
    )
    headroom = _headroom(quota, total, over)
    if headroom is not None and headroom <= HEADROOM_MAX:
        text += (
            f" Fits in two updates: 1) this change with {HEADROOM_KEY}: {headroom}, then "
            f"pulumi up; 2) {HEADROOM_KEY} back to its value, then pulumi up."
        )
    elif headroom is not None:
        text += (
            f" Headroom alone cannot hold it: {HEADROOM_KEY} would need {headroom}, and "
            f"{HEADROOM_MAX} is its maximum."
        )
    if lowered and (headroom is None or headroom > HEADROOM_MAX):
        text += (
            " Or split it: lower " + ", ".join(lowered) + " in smaller steps (first the keys "
            "that restart no pod, autoscaling.maxReplicas and replicas, then the requests and "
            "limits), each step one update that stackctl diff passes."
        )
    elif lowered:
        text += (
            " Or lower " + ", ".join(lowered) + " in smaller steps, each one update that "
            "stackctl diff passes."
        )
    return text


APP_LABEL = "app.kubernetes.io/name"


def _lowered(before: Snapshot, after: Snapshot, namespace: str) -> list[str]:
    """The config keys of the apps whose per-pod amounts or pod counts go down."""
    old, new = workloads(before, namespace), workloads(after, namespace)
    keys: list[str] = []

    def app_of(w: Workload) -> str:
        labels = ((w.template or {}).get("metadata") or {}).get("labels") or {}
        return str(labels.get(APP_LABEL, w.ref[2]))

    olds = {app_of(w): w for w in old.values()}
    for w in new.values():
        app = app_of(w)
        prev = olds.get(app)
        if prev is None:
            continue
        for key in COMPUTE:
            if w.each[key] < prev.each[key]:
                kind, resource = key.split(".")
                keys.append(f"appstack:apps.{app}.resources.{kind}.{resource}")
        if w.pods < prev.pods:
            keys.append(f"appstack:apps.{app}.autoscaling.maxReplicas (or replicas)")
    return sorted(set(keys))
