"""Availability: PodDisruptionBudgets consistent with their workloads (`pdb-consistent`) and
zero-downtime rollouts (`zero-downtime-rollout`)."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from policy.rules.base import (
    REPLICATED_KINDS,
    Objects,
    PodTemplate,
    RuleContext,
    Violation,
    as_list,
    as_map,
    containers,
    is_int,
    is_zero,
    kind_of,
    name_of,
    namespace_of,
    object_id,
    of_kind,
    percent,
    pod_templates,
    selector_matches,
    show,
    template_of,
)

DEFAULT_TERMINATION_GRACE_SECONDS = 30
_Targets = Mapping[tuple[str, str, str], Mapping[str, Any]]


def _hpa_targets(objects: Objects) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """(namespace, kind, name) of each HPA target -> the HPA."""
    targets: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        ref = as_map(as_map(hpa.get("spec")).get("scaleTargetRef"))
        key = (namespace_of(hpa) or "", str(ref.get("kind", "")), str(ref.get("name", "")))
        targets[key] = hpa
    return targets


def _hpa_for(
    workload: Mapping[str, Any], targets: Mapping[tuple[str, str, str], Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    return targets.get((namespace_of(workload) or "", kind_of(workload), name_of(workload)))


def _effective_replicas(
    workload: Mapping[str, Any], targets: Mapping[tuple[str, str, str], Mapping[str, Any]]
) -> int:
    hpa = _hpa_for(workload, targets)
    if hpa is not None:
        value = as_map(hpa.get("spec")).get("minReplicas", 1)
    else:
        value = as_map(workload.get("spec")).get("replicas", 1)
    return int(value) if is_int(value) else 1


def _pdb_selects(pdb: Mapping[str, Any], workload: Mapping[str, Any]) -> bool:
    if namespace_of(pdb) != namespace_of(workload):
        return False
    spec = as_map(pdb.get("spec"))
    if "selector" not in spec or spec["selector"] is None:
        return False  # policy/v1: a null selector selects no pods
    template = template_of(workload)
    return template is not None and selector_matches(as_map(spec["selector"]), template.labels)


def _pdb_bounds(pdb: Mapping[str, Any]) -> Iterator[str]:
    """Problems of a PDB on its own: both bounds, or a bound that blocks every eviction."""
    spec = as_map(pdb.get("spec"))
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        yield (
            f"spec.minAvailable ({show(min_available)}) and spec.maxUnavailable "
            f"({show(max_unavailable)}) are both set; set exactly one"
        )
    if max_unavailable is not None and is_zero(max_unavailable):
        yield (
            f"spec.maxUnavailable is {show(max_unavailable)}, which blocks every "
            "voluntary eviction (node drains hang); allow at least 1"
        )
    pct = percent(min_available)
    if pct is not None and pct >= 100:
        yield (
            f"spec.minAvailable is {show(min_available)}, which blocks every voluntary "
            "eviction; it must be below 100%"
        )


def _pdb_against_workloads(
    pdb: Mapping[str, Any], workloads: list[Mapping[str, Any]], targets: _Targets
) -> Iterator[str]:
    """Problems of a PDB against what it selects: nothing, or a minimum no eviction can meet."""
    spec = as_map(pdb.get("spec"))
    min_available = spec.get("minAvailable")
    pct = percent(min_available)
    selected = [w for w in workloads if _pdb_selects(pdb, w)]
    if not selected:
        yield (
            f"spec.selector {show(dict(as_map(spec.get('selector'))))} selects no "
            "Deployment/StatefulSet/Rollout pod template in namespace "
            f"{namespace_of(pdb) or '-'}; it must select the workload it protects"
        )
    for workload in selected:
        replicas = _effective_replicas(workload, targets)
        required: int | None = None
        if is_int(min_available):
            required = int(min_available)
        elif pct is not None and pct < 100:
            # The disruption controller rounds a percentage minAvailable up.
            required = math.ceil(pct * replicas / 100)
        if required is not None and required >= replicas:
            source = (
                "HPA spec.minReplicas"
                if _hpa_for(workload, targets) is not None
                else "spec.replicas"
            )
            yield (
                f"spec.minAvailable is {show(min_available)} but "
                f"{object_id(workload)} runs at least {replicas} replica(s) "
                f"({source}); minAvailable must be < the minimum replicas so one pod "
                "can be evicted"
            )


def check_pdb_consistent(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """PDBs never block all evictions, select something, and cover replicated prod workloads."""
    rule = "pdb-consistent"
    out: list[Violation] = []
    targets = _hpa_targets(objects)
    workloads = list(of_kind(objects, *REPLICATED_KINDS))
    pdbs = list(of_kind(objects, "PodDisruptionBudget"))
    for pdb in pdbs:
        oid = object_id(pdb)
        out.extend(Violation(rule, oid, m) for m in _pdb_bounds(pdb))
        out.extend(Violation(rule, oid, m) for m in _pdb_against_workloads(pdb, workloads, targets))
    if ctx.prod:
        for workload in workloads:
            if kind_of(workload) not in ("Deployment", "Rollout"):
                continue
            replicas = _effective_replicas(workload, targets)
            if replicas >= 2 and not any(_pdb_selects(pdb, workload) for pdb in pdbs):
                out.append(
                    Violation(
                        rule,
                        object_id(workload),
                        f"runs {replicas} replicas in {ctx.environment} but no "
                        "PodDisruptionBudget selects its spec.template.metadata.labels; add a "
                        "PDB (e.g. maxUnavailable 1)",
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# zero-downtime-rollout

_SHELL_SLEEP_RE = re.compile(r"^\s*(?:exec\s+)?sleep\s+([0-9]+(?:\.[0-9]+)?)s?\s*$")


def _prestop_sleep_seconds(container: Mapping[str, Any]) -> Decimal | None:
    """Seconds a preStop hook sleeps: `sleep: {seconds: N}`, exec `sleep N` or
    `sh -c "sleep N"`."""
    pre_stop = as_map(as_map(container.get("lifecycle")).get("preStop"))
    sleep = as_map(pre_stop.get("sleep"))
    seconds = sleep.get("seconds")
    if is_int(seconds):
        return Decimal(seconds)
    command = [str(x) for x in as_list(as_map(pre_stop.get("exec")).get("command"))]
    if len(command) == 2 and posixpath.basename(command[0]) == "sleep":
        match = _SHELL_SLEEP_RE.match(f"sleep {command[1]}")
        return Decimal(match.group(1)) if match else None
    shells = ("sh", "bash", "ash", "dash")
    if len(command) == 3 and posixpath.basename(command[0]) in shells and command[1] == "-c":
        for part in re.split(r"&&|;|\n", command[2]):
            match = _SHELL_SLEEP_RE.match(part)
            if match:
                return Decimal(match.group(1))
    return None


#: Access modes one node (RWO) or one pod (RWOP) holds: a surge pod elsewhere cannot mount them.
SINGLE_WRITER_MODES = frozenset({"ReadWriteOnce", "ReadWriteOncePod"})


def _single_writer_claim(deployment: Mapping[str, Any], objects: Objects) -> str | None:
    """The name of a ReadWriteOnce/ReadWriteOncePod PersistentVolumeClaim of `objects` that the
    Deployment's pods mount, or None."""
    template = template_of(deployment)
    if template is None:
        return None
    namespace = namespace_of(deployment)
    mounted = {
        as_map(volume.get("persistentVolumeClaim")).get("claimName")
        for volume in (as_map(v) for v in as_list(template.spec.get("volumes")))
    }
    for claim in of_kind(objects, "PersistentVolumeClaim"):
        modes = {str(m) for m in as_list(as_map(claim.get("spec")).get("accessModes"))}
        if (
            name_of(claim) in mounted
            and namespace_of(claim) == namespace
            and modes & SINGLE_WRITER_MODES
        ):
            return name_of(claim)
    return None


def _strategy_problems(
    deployment: Mapping[str, Any], ctx: RuleContext, objects: Objects = ()
) -> Iterator[str]:
    """A Deployment's rolling update: maxUnavailable 0, surge > 0, minReadySeconds in prod.
    The one exception, outside prod's rules only: Recreate for a Deployment mounting a
    ReadWriteOnce/ReadWriteOncePod claim (a surge pod on another node, or any second pod for
    RWOP, could never mount it, so the rolling update would hang); the app's config
    (apps.<name>.volume) then holds it to one replica and gives up zero downtime."""
    spec = as_map(deployment.get("spec"))
    strategy = as_map(spec.get("strategy"))
    strategy_type = strategy.get("type", "RollingUpdate")
    if strategy_type == "Recreate" and not ctx.prod and _single_writer_claim(deployment, objects):
        pass
    elif strategy_type != "RollingUpdate":
        yield f"spec.strategy.type is {show(strategy_type)}; it must be RollingUpdate"
    else:
        rolling = as_map(strategy.get("rollingUpdate"))
        max_unavailable = rolling.get("maxUnavailable")
        if max_unavailable is None or not is_zero(max_unavailable):
            shown = show(max_unavailable) + (
                " (defaults to 25%)" if max_unavailable is None else ""
            )
            yield (
                f"spec.strategy.rollingUpdate.maxUnavailable is {shown}; it must be 0 "
                "so no serving pod is removed before its replacement is ready"
            )
        max_surge = rolling.get("maxSurge")
        if max_surge is not None and is_zero(max_surge):
            yield (
                f"spec.strategy.rollingUpdate.maxSurge is {show(max_surge)}; it must "
                "be >= 1 (or > 0%)"
            )
    if ctx.prod:
        min_ready = spec.get("minReadySeconds")
        if not is_int(min_ready) or min_ready <= 0:
            yield (
                f"spec.minReadySeconds is {show(min_ready)}; in {ctx.environment} it must be > 0"
            )


def _grace_problems(template: PodTemplate) -> Iterator[str]:
    """terminationGracePeriodSeconds must outlast every container's preStop sleep."""
    grace_raw = template.spec.get("terminationGracePeriodSeconds")
    grace = grace_raw if is_int(grace_raw) else DEFAULT_TERMINATION_GRACE_SECONDS
    for container in containers(template, init=False):
        sleep = _prestop_sleep_seconds(container.spec)
        if sleep is not None and Decimal(grace) <= sleep:
            default = " (default)" if grace_raw is None else ""
            yield (
                f"{template.path('spec.terminationGracePeriodSeconds')} is "
                f"{grace}{default} but {container.path}.lifecycle.preStop sleeps "
                f"{sleep}s; the grace period counts from before preStop and must be "
                "greater than the sleep plus drain time"
            )


def check_zero_downtime_rollout(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """RollingUpdate with maxUnavailable 0 and surge > 0; minReadySeconds in prod; no replicas
    when an HPA owns them; terminationGracePeriodSeconds longer than the preStop sleep."""
    rule = "zero-downtime-rollout"
    out: list[Violation] = []
    targets = _hpa_targets(objects)
    for deployment in of_kind(objects, "Deployment"):
        oid = object_id(deployment)
        out.extend(Violation(rule, oid, m) for m in _strategy_problems(deployment, ctx, objects))
    for workload in of_kind(objects, *REPLICATED_KINDS):
        hpa = _hpa_for(workload, targets)
        replicas = as_map(workload.get("spec")).get("replicas")
        if hpa is not None and replicas is not None:
            out.append(
                Violation(
                    rule,
                    object_id(workload),
                    f"spec.replicas is {show(replicas)} but {object_id(hpa)} owns the replica "
                    "count; spec.replicas must be absent (every apply would reset the scale)",
                )
            )
    for template in pod_templates(objects):
        oid = object_id(template.owner)
        out.extend(Violation(rule, oid, m) for m in _grace_problems(template))
    return out
