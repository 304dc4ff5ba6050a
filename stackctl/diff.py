"""The comparison behind `stackctl diff`: two renders in, one `Change` per changed object out.

`compare(before, after)` is a pure function of two `Snapshot`s (manifests, resource options,
Secret fingerprints, Pulumi URNs); it needs no git, no cluster and no Pulumi CLI, so the tests,
the scenario suite and the end-to-end checks use it directly (`Snapshot.of_config(cfg, stack)`
renders a config under mocks). Each changed object gets:

- an action: `create`, `update` (changed field paths), `replace` (the field that forces it,
  by the rules in `stackctl.diff_rules`) or `delete`; a name change is a delete plus a create;
  a field under the object's `ignore_changes` is not a change; a URN change without an alias
  is a replace;
- `restarts_pods` (a workload whose pod template changes, or that is replaced) and
  `changes_traffic` (a Service whose selector changes, an Ingress whose routing changes);
- risk flags (`RISKS`): any one of them makes `stackctl diff` exit 3.

Secret values never enter a `Change`: a changed Secret key is reported by its path only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stackctl import diff_rules as rules
from stackctl.diff_rules import Path, format_path, parse_path

ACTIONS = ("create", "update", "replace", "delete")

#: Risk codes and what they mean; a change that carries any of them makes the diff exit 3.
RISKS: dict[str, str] = {
    "protected": "replace or delete of a resource with the `protect` option",
    "stateful": "replace or delete of a stateful object (PVC, PV, StatefulSet, Namespace)",
    "downtime": "a workload or Service is replaced: deleted before its replacement exists",
    "immutable-field": "a field Kubernetes cannot update in place changes: the update fails",
    "selector": "a workload's selector changes",
    "controller-owned": "the program sets a field another controller owns",
    "pdb-blocks-evictions": "a PodDisruptionBudget allows no eviction at all",
    "secret-value": "a Secret value changes (value not shown)",
    "urn-change": "an object's Pulumi URN changes without an alias: the engine recreates it",
}

HPA_KIND = "HorizontalPodAutoscaler"
ARGO_SERVICE_FIELDS = (
    ("blueGreen", "activeService"),
    ("blueGreen", "previewService"),
    ("canary", "canaryService"),
    ("canary", "stableService"),
)
ARGO_HASH_LABEL = "rollouts-pod-template-hash"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"

Ref = tuple[str, str, str]
"""(kind, namespace or "-", name): an object's identity; a name change is a new object."""


@dataclass(frozen=True)
class Snapshot:
    """One render as the diff sees it."""

    objects: list[dict[str, Any]]
    """Rendered manifests (Secret values redacted)."""
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Resource options by `Kind/namespace/name`: protect, retain_on_delete, ignore_changes,
    delete_before_replace."""
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per Secret (`Secret/namespace/name`), a run-keyed fingerprint per `stringData.KEY`."""
    urns: dict[str, str] = field(default_factory=dict)
    """Per object, its Pulumi URN without stack and project (`parent$...$type::name`)."""
    aliases: dict[str, list[str]] = field(default_factory=dict)
    """Per object, the URNs (same form) its `aliases` option answers to."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(
            objects=list(data.get("objects") or []),
            options=dict(data.get("options") or {}),
            secrets=dict(data.get("secrets") or {}),
            urns=dict(data.get("urns") or {}),
            aliases=dict(data.get("aliases") or {}),
        )

    @classmethod
    def from_render(cls, result: Any) -> Snapshot:
        """From a `stackctl.render.RenderResult` rendered in this process (without URNs;
        `of_config` records them)."""
        from stackctl.diff_render import snapshot_of

        return cls.from_json(snapshot_of(result))

    @classmethod
    def of_config(cls, cfg: Any, stack: str) -> Snapshot:
        """Render a validated `StackConfig` under mocks, URNs included."""
        from stackctl.diff_render import snapshot_config

        return cls.from_json(snapshot_config(cfg, stack))

    def index(self) -> dict[Ref, dict[str, Any]]:
        return {ref_of(o): o for o in self.objects}

    def options_of(self, ref: Ref) -> dict[str, Any]:
        return self.options.get(ref_text(ref), {})


@dataclass
class Change:
    """What applying `after` does to one object."""

    kind: str
    namespace: str
    name: str
    action: str
    fields: list[str] = field(default_factory=list)
    """Changed field paths (Pulumi property-path syntax); for replace, forcing fields first."""
    reasons: list[str] = field(default_factory=list)
    """Why: the forcing field and its rule, rolls, traffic, notes on options."""
    restarts_pods: bool = False
    changes_traffic: bool = False
    risks: list[str] = field(default_factory=list)
    """`code: explanation`, codes from RISKS."""

    @property
    def ref(self) -> Ref:
        return (self.kind, self.namespace or "-", self.name)

    @property
    def risk_codes(self) -> set[str]:
        return {r.split(":", 1)[0] for r in self.risks}

    def add_risk(self, code: str, message: str) -> None:
        assert code in RISKS, code
        text = f"{code}: {message}"
        if text not in self.risks:
            self.risks.append(text)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
            "fields": list(self.fields),
            "reasons": list(self.reasons),
            "restarts_pods": self.restarts_pods,
            "changes_traffic": self.changes_traffic,
            "risks": list(self.risks),
        }


def ref_of(obj: Mapping[str, Any]) -> Ref:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(meta.get("namespace") or "-"), str(meta.get("name", "")))


def ref_text(ref: Ref) -> str:
    return "/".join(ref)


# ---------------------------------------------------------------------------------------------
# Field differences
# ---------------------------------------------------------------------------------------------

_MISSING = object()


def field_changes(before: Any, after: Any, path: Path = ()) -> list[Path]:
    """Leaf paths where `after` differs from `before`; maps by key, lists by index, a value
    added or removed as a whole at its own path (as the provider's detailed diff does)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out: list[Path] = []
        for key in sorted(set(before) | set(after), key=str):
            old, new = before.get(key, _MISSING), after.get(key, _MISSING)
            if old is _MISSING or new is _MISSING:
                out.append((*path, str(key)))
            else:
                out += field_changes(old, new, (*path, str(key)))
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        for i in range(max(len(before), len(after))):
            if i >= len(before) or i >= len(after):
                out.append((*path, i))
            else:
                out += field_changes(before[i], after[i], (*path, i))
        return out
    if before == after and type(before) is type(after):
        return []
    if isinstance(before, int | float) and isinstance(after, int | float) and before == after:
        return []
    return [path]


def _under(path: Path, prefix: Iterable[str | int]) -> bool:
    prefix = tuple(prefix)
    return path[: len(prefix)] == prefix


def _touches(pattern: str, path: Path, before: Any, after: Any) -> bool:
    """A change at `path` touches the force-new `pattern`: the pattern is a prefix of the path,
    or the path is a prefix of the pattern and the pattern's field exists on either side."""
    pat = parse_path(pattern)
    if rules._prefix_match(pat, path):
        return True
    if rules._prefix_match(path, pat):
        return any(_get_pattern(side, pat) for side in (before, after))
    return False


def _get_pattern(obj: Any, pattern: Path) -> bool:
    if not pattern:
        return obj is not None
    head, rest = pattern[0], pattern[1:]
    if head == "*" and isinstance(obj, list):
        return any(_get_pattern(item, rest) for item in obj)
    if isinstance(head, str) and isinstance(obj, Mapping):
        return head in obj and _get_pattern(obj[head], rest)
    if isinstance(head, int) and isinstance(obj, list) and head < len(obj):
        return _get_pattern(obj[head], rest)
    return False


# ---------------------------------------------------------------------------------------------
# One object
# ---------------------------------------------------------------------------------------------


def _classify_pair(
    ref: Ref,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    before: Snapshot,
    after: Snapshot,
) -> Change | None:
    kind = ref[0]
    paths = field_changes(old, new)
    secret_paths: list[Path] = []
    if kind == "Secret":
        old_prints = before.secrets.get(ref_text(ref), {})
        new_prints = after.secrets.get(ref_text(ref), {})
        for key in sorted(set(old_prints) & set(new_prints)):
            if old_prints[key] != new_prints[key]:
                secret_paths.append(parse_path(key))
        paths += [p for p in secret_paths if p not in paths]
    ignore = [parse_path(p) for p in after.options_of(ref).get("ignore_changes", [])]
    ignored = [p for p in paths if any(rules._prefix_match(i, p) for i in ignore)]
    paths = [p for p in paths if p not in ignored]
    if not paths:
        return None
    change = Change(kind=kind, namespace=_ns(ref), name=ref[2], action="update")
    if ignored:
        change.reasons.append(
            "ignored (ignore_changes): " + ", ".join(format_path(p) for p in ignored)
        )
    forcing: list[Path] = []
    for p in paths:
        hit = next((f for f in rules.provider_force_new(new) if _touches(f, p, old, new)), None)
        if hit is not None:
            forcing.append(p)
            change.reasons.append(
                f"replace: {format_path(p)} forces replacement (pulumi-kubernetes forceNew {hit})"
            )
    rejected: list[Path] = []
    for p in paths:
        if p in forcing:
            continue
        why = rules.kubernetes_immutable(kind, p, old, new)
        if why:
            rejected.append(p)
            change.reasons.append(
                f"replace: {why}; the provider would patch it and the API server rejects the "
                "update (replace it deliberately: `pulumi up --replace <urn>`)"
            )
            change.add_risk("immutable-field", f"{format_path(p)}: {why}")
    ordered = forcing + rejected + [p for p in paths if p not in forcing and p not in rejected]
    change.fields = [format_path(p) for p in ordered]
    if forcing or rejected:
        change.action = "replace"
        opts = {**before.options_of(ref), **after.options_of(ref)}
        if opts.get("delete_before_replace") or forcing:
            change.reasons.append(
                "delete before replace: same name, so the old object is deleted before the new "
                "one is created"
            )
    if secret_paths or (
        kind == "Secret" and any(p[:1] in (("data",), ("stringData",)) for p in paths)
    ):
        keys = sorted({format_path(p) for p in paths if p[:1] in (("data",), ("stringData",))})
        change.add_risk("secret-value", f"{', '.join(keys)} change (values not shown)")
    _describe_update(change, ref, old, new, paths)
    return change


def _moved(ref: Ref, change: Change | None, before: Snapshot, after: Snapshot) -> Change | None:
    """The object's URN changes and no alias of the new resource names the old one: to the
    engine that is a new resource (whose create finds the object already there) and a deleted
    one (whose delete removes the object). None when the URN is kept or aliased."""
    key = ref_text(ref)
    old_urn, new_urn = before.urns.get(key), after.urns.get(key)
    if not old_urn or not new_urn or old_urn == new_urn:
        return None
    if old_urn in after.aliases.get(key, []):
        return None
    moved = change or Change(kind=ref[0], namespace=_ns(ref), name=ref[2], action="replace")
    moved.action = "replace"
    moved.reasons.append(
        f"Pulumi URN changes ({old_urn} -> {new_urn}) without an alias: the engine creates a "
        "new resource for this object (the create fails, the object exists) and deletes the "
        "old one (which deletes the object); add `aliases` naming the old URN"
    )
    moved.add_risk("urn-change", f"{ref[0]} {ref[2]}: {old_urn} -> {new_urn}")
    if ref[0] in rules.WORKLOAD_KINDS:
        moved.restarts_pods = True
    return moved


def _ns(ref: Ref) -> str:
    return "" if ref[1] == "-" else ref[1]


def _describe_update(
    change: Change, ref: Ref, old: Mapping[str, Any], new: Mapping[str, Any], paths: list[Path]
) -> None:
    kind = ref[0]
    if kind in rules.WORKLOAD_KINDS:
        template = [p for p in paths if _under(p, ("spec", "template"))]
        if change.action == "replace":
            change.restarts_pods = True
            change.reasons.append("pods: every pod is deleted and recreated")
        elif template:
            change.restarts_pods = True
            change.reasons.append(
                "pods roll: pod template changes ("
                + ", ".join(format_path(p) for p in template[:3])
                + (", ..." if len(template) > 3 else "")
                + ")"
            )
        if any(_under(p, ("spec", "selector")) for p in paths):
            change.add_risk(
                "selector",
                f"{kind} {ref[2]}: spec.selector changes; Kubernetes cannot update it in place, "
                "so the workload and all its pods are replaced at once",
            )
    if kind == "Service" and any(_under(p, ("spec", "selector")) for p in paths):
        change.changes_traffic = True
        selector = (new.get("spec") or {}).get("selector") or {}
        change.reasons.append(
            "traffic: selector changes to " + ", ".join(f"{k}={v}" for k, v in selector.items())
        )
    if kind == "Ingress":
        weight = [p for p in paths if p == ("metadata", "annotations", CANARY_WEIGHT)]
        routing = [
            p
            for p in paths
            if _under(p, ("spec", "rules")) or _under(p, ("spec", "defaultBackend"))
        ]
        if weight or routing:
            change.changes_traffic = True
            change.reasons.append("traffic: routing or canary weight changes")
    if kind == "PersistentVolumeClaim":
        storage = ("spec", "resources", "requests", "storage")
        if storage in paths and change.action == "update":
            change.reasons.append(
                f"storage grows {rules._get(old, storage)} -> {rules._get(new, storage)}: "
                "expanded in place when the StorageClass has allowVolumeExpansion: true"
            )


def _protected(opts: Mapping[str, Any]) -> bool:
    return bool(opts.get("protect"))


def _destructive_risks(change: Change, before_opts: Mapping[str, Any]) -> None:
    """Risks of a replace or delete: protected, stateful, downtime."""
    kind = change.kind
    verb = change.action
    if _protected(before_opts):
        change.add_risk(
            "protected",
            f"{verb} of a protected resource: Pulumi refuses it until `protect` is removed",
        )
    if kind in rules.STATEFUL_KINDS:
        note = (
            " (retain_on_delete: the object stays in the cluster, Pulumi forgets it)"
            if before_opts.get("retain_on_delete")
            else ""
        )
        what = "every object in it" if kind == "Namespace" else "its data"
        change.add_risk("stateful", f"{verb} of {kind} {change.name} puts {what} at risk{note}")
    if verb == "replace" and (kind in rules.WORKLOAD_KINDS or kind == "Service"):
        change.add_risk(
            "downtime",
            f"{kind} {change.name} is deleted before its replacement is created",
        )


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
    provider/pkg/await/await.go `handleSSAIgnoreFields`, pulumi-kubernetes v4.32.0)."""
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
            # `patchForce`, pulumi-kubernetes v4.32.0).
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
        if selector is not None:
            change.add_risk(
                "controller-owned",
                f"Service {service[2]} sets spec.selector, which Argo Rollout {rollout[2]} owns "
                f"(it writes {ARGO_HASH_LABEL} into the atomic map): server-side apply conflicts",
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


# ---------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------


def compare(before: Snapshot, after: Snapshot) -> list[Change]:
    """Every object that `after` creates, updates, replaces or deletes relative to `before`,
    in namespace, kind, name order."""
    old_index, new_index = before.index(), after.index()
    changes: dict[Ref, Change] = {}
    for ref in sorted(set(old_index) | set(new_index)):
        old, new = old_index.get(ref), new_index.get(ref)
        if old is None and new is not None:
            change = Change(kind=ref[0], namespace=_ns(ref), name=ref[2], action="create")
        elif new is None and old is not None:
            change = Change(kind=ref[0], namespace=_ns(ref), name=ref[2], action="delete")
            _destructive_risks(change, before.options_of(ref))
            if before.options_of(ref).get("retain_on_delete"):
                change.reasons.append(
                    "retain_on_delete: Pulumi forgets it; the object stays in the cluster"
                )
            if ref[0] in rules.WORKLOAD_KINDS:
                change.reasons.append("pods: the workload's pods are deleted")
            if ref[0] == "Service":
                change.changes_traffic = True
                change.reasons.append("traffic: the Service and its endpoints go away")
        else:
            assert old is not None and new is not None
            pair = _classify_pair(ref, old, new, before, after)
            pair = _moved(ref, pair, before, after) or pair
            if pair is None:
                continue
            change = pair
            if change.action == "replace":
                _destructive_risks(change, {**before.options_of(ref), **after.options_of(ref)})
        changes[ref] = change
    _blocking_budgets(changes, after)
    _owned_fields(changes, before, after)
    return sorted(changes.values(), key=lambda c: (c.namespace, c.kind, c.name))


def risky(changes: Iterable[Change]) -> bool:
    return any(c.risks for c in changes)
