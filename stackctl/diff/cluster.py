"""Whole-render rules of `stackctl diff`: fields another controller owns on the live object
(an HPA's spec.replicas, Argo Rollouts' Service selectors) and PodDisruptionBudgets that block
every eviction after the change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from stackctl.diff import rules
from stackctl.diff.model import Change, Ref, Snapshot, ref_of
from stackctl.diff.rules import Path, parse_path

HPA_KIND = "HorizontalPodAutoscaler"
ARGO_SERVICE_FIELDS = (
    ("blueGreen", "activeService"),
    ("blueGreen", "previewService"),
    ("canary", "canaryService"),
    ("canary", "stableService"),
)
ARGO_HASH_LABEL = "rollouts-pod-template-hash"

# ---------------------------------------------------------------------------------------------
# Whole-render rules: fields other controllers own, PDBs
# ---------------------------------------------------------------------------------------------


def _hpa_targets(snapshot: Snapshot) -> dict[Ref, Ref]:
    """Workload ref -> ref of the HPA that scales it."""
    out: dict[Ref, Ref] = {}
    for obj in snapshot.objects:
        if obj.get("kind") != HPA_KIND:
            continue
        target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        hpa = ref_of(obj)
        out[(str(target.get("kind")), hpa[1], str(target.get("name")))] = hpa
    return out


def _argo_services(snapshot: Snapshot) -> dict[Ref, Ref]:
    """Service ref -> ref of the Argo Rollout that manages its selector."""
    out: dict[Ref, Ref] = {}
    for obj in snapshot.objects:
        if obj.get("kind") != "Rollout":
            continue
        rollout = ref_of(obj)
        strategy = (obj.get("spec") or {}).get("strategy") or {}
        for block, key in ARGO_SERVICE_FIELDS:
            name = (strategy.get(block) or {}).get(key)
            if name:
                out[("Service", rollout[1], str(name))] = rollout
    return out


def _sets_unignored(snapshot: Snapshot, ref: Ref, path: Path) -> Any:
    """The value `ref` sets at `path` unless `ignore_changes` covers it (the provider then
    keeps the live value, or drops the field when another manager owns it:
    provider/pkg/await/await.go `handleSSAIgnoreFields`, pulumi-kubernetes v4.25.0)."""
    obj = snapshot.index().get(ref)
    value = rules._get(obj, path) if obj is not None else None
    if value is None:
        return None
    ignore = [parse_path(p) for p in snapshot.options_of(ref).get("ignore_changes", [])]
    if any(rules._prefix_match(i, path) for i in ignore):
        return None
    return value


PATCH_FORCE = "pulumi.com/patchForce"


def _patch_force(snapshot: Snapshot, ref: Ref) -> bool:
    obj = snapshot.index().get(ref) or {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PATCH_FORCE, "")).lower() == "true"


def _owned_fields(changes: dict[Ref, Change], before: Snapshot, after: Snapshot) -> None:
    """Fields another controller owns on the live object, which the change would apply.

    Server-side apply sends the whole object on every update, and a field last written by
    another manager conflicts (pulumi-kubernetes issues #2491, #2569): spec.replicas written
    through the scale subresource by an HPA, a Service's spec.selector (an atomic map) written
    by Argo Rollouts with rollouts-pod-template-hash.
    """
    replicas: Path = ("spec", "replicas")
    hpas_after, hpas_before = _hpa_targets(after), _hpa_targets(before)
    for workload in sorted(set(hpas_after) | set(hpas_before)):
        value = _sets_unignored(after, workload, replicas)
        if value is None:
            continue
        if workload in hpas_after:
            hpa = hpas_after[workload]
            holder = changes.get(workload) or changes.get(hpa)
            when = "while"
        else:
            # The HPA no longer targets it: taking the field back is right, and a forced apply
            # takes it without a conflict (pulumi.com/patchForce; provider/pkg/await/await.go
            # `patchForce`, pulumi-kubernetes v4.25.0).
            if _patch_force(after, workload):
                continue
            hpa = hpas_before[workload]
            holder = changes.get(workload)
            when = "after"
        if holder is not None:
            holder.add_risk(
                "controller-owned",
                f"{workload[0]} {workload[2]} sets spec.replicas ({value}) {when} "
                f"HorizontalPodAutoscaler {hpa[2]} scaled it: the HPA owns the field on the "
                "live object, so server-side apply conflicts unless ignore_changes covers it",
            )
    managed = {**_argo_services(before), **_argo_services(after)}
    for service, rollout in sorted(managed.items()):
        change = changes.get(service)
        if change is None or change.action == "delete":
            continue
        selector = _sets_unignored(after, service, ("spec", "selector"))
        # Argo no longer manages it (argoRollouts turned off): taking the selector back is
        # right, and a forced apply takes it without a conflict (pulumi.com/patchForce,
        # components/app.py `_route_annotations`; provider/pkg/await/await.go `patchForce`).
        taken_back = service not in _argo_services(after) and _patch_force(after, service)
        if selector is not None and not taken_back:
            change.add_risk(
                "controller-owned",
                f"Service {service[2]} sets spec.selector, which Argo Rollout {rollout[2]} owns "
                f"(it writes {ARGO_HASH_LABEL} into the atomic map): server-side apply conflicts",
            )


def _entering_argo(changes: dict[Ref, Change], before: Snapshot, after: Snapshot) -> None:
    """A Service Argo Rollouts manages whose selector has a key its Rollout's pod template
    lacks (or holds with another value): the controller refuses the Rollout (argo-rollouts
    pkg/apis/rollouts/validation/validation_references.go `ValidateService`, "Service %q has
    unmatch label %q in rollout"), and the Service would select none of its pods. The
    selector checked is the one the live object keeps: the render's, or, where the Service
    ignores `spec.selector`, the one it had before (the engine keeps an ignored input, pulumi
    pkg/resource/deploy/step_generator.go `processIgnoreChanges`; the provider applies the
    live value of a field its manager owns, pulumi-kubernetes v4.25.0
    provider/pkg/await/await.go `handleSSAIgnoreFields`)."""
    index_after, index_before = after.index(), before.index()
    for service, rollout in sorted(_argo_services(after).items()):
        new = index_after.get(service)
        if new is None:
            continue
        selector = (new.get("spec") or {}).get("selector") or {}
        ignored = any(
            rules.covers(p, ("spec", "selector"))
            for p in after.options_of(service).get("ignore_changes", [])
        )
        old = index_before.get(service)
        if ignored and old is not None:
            selector = (old.get("spec") or {}).get("selector") or {}
        template = ((index_after[rollout].get("spec") or {}).get("template") or {}).get(
            "metadata"
        ) or {}
        labels = template.get("labels") or {}
        stale = sorted(
            k for k, v in selector.items() if k != ARGO_HASH_LABEL and labels.get(k) != v
        )
        holder = changes.get(service) or changes.get(rollout)
        if stale and holder is not None:
            holder.add_risk(
                "stale-selector",
                f"Service {service[2]} selects {', '.join(stale)}, which the pods of Argo "
                f"Rollout {rollout[2]} lack: the controller refuses the Rollout (ValidateService:"
                " unmatch label) and the Service selects none of its pods",
            )


def _matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """LabelSelector semantics (matchLabels and matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def expected_pods(snapshot: Snapshot, namespace: str, selector: Mapping[str, Any]) -> int:
    """Pods the workloads of `namespace` run that `selector` selects (HPA minimum for a
    workload the HPA scales; 1, the API default, when replicas are unset)."""
    hpas = _hpa_targets(snapshot)
    index = snapshot.index()
    total = 0
    for obj in snapshot.objects:
        ref = ref_of(obj)
        if ref[0] not in rules.WORKLOAD_KINDS or ref[1] != namespace:
            continue
        spec = obj.get("spec") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not _matches(selector, labels):
            continue
        if ref in hpas and "replicas" not in spec:
            hpa_spec = index[hpas[ref]].get("spec") or {}
            total += int(hpa_spec.get("minReplicas", 1))
        else:
            total += int(spec.get("replicas", 1))
    return total


def _scaled(value: Any, pods: int) -> int:
    """intstr: an int, or a percent of `pods` rounded up (disruption controller)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(pods * float(value[:-1]) / 100)
    return int(value)


def pdb_blocks_evictions(pdb: Mapping[str, Any], snapshot: Snapshot) -> str | None:
    """Why `pdb` lets no pod be evicted, or None."""
    spec = pdb.get("spec") or {}
    ns = ref_of(pdb)[1]
    pods = expected_pods(snapshot, ns, spec.get("selector") or {})
    if "maxUnavailable" in spec and _scaled(spec["maxUnavailable"], pods) == 0:
        return f"maxUnavailable {spec['maxUnavailable']} allows no eviction"
    if "minAvailable" in spec and pods > 0 and _scaled(spec["minAvailable"], pods) >= pods:
        return f"minAvailable {spec['minAvailable']} >= the {pods} pod(s) it selects"
    return None


def _blocking_budgets(changes: dict[Ref, Change], after: Snapshot) -> None:
    """A PDB that blocks every eviction after the change, when the change touches it, a
    workload it selects, or the HPA of such a workload (fewer replicas can make it block)."""
    hpas = _hpa_targets(after)
    for pdb in after.objects:
        if pdb.get("kind") != "PodDisruptionBudget":
            continue
        why = pdb_blocks_evictions(pdb, after)
        if why is None:
            continue
        ref = ref_of(pdb)
        selector = (pdb.get("spec") or {}).get("selector") or {}
        related = [ref]
        for obj in after.objects:
            workload = ref_of(obj)
            template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
            if (
                workload[0] in rules.WORKLOAD_KINDS
                and workload[1] == ref[1]
                and _matches(selector, template.get("labels") or {})
            ):
                related += [workload] + ([hpas[workload]] if workload in hpas else [])
        holder = next((changes[r] for r in related if r in changes), None)
        if holder is not None:
            holder.add_risk("pdb-blocks-evictions", f"PodDisruptionBudget {ref[2]}: {why}")
