"""One object in both renders: which fields change, whether the provider or the API server
forces a replacement (`stackctl.diff.rules`), whether the URN moves without an alias, and what
the change does to pods and traffic; the risks of a replace or delete.

Secret values never enter a `Change`: a changed Secret key is reported by its path only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stackctl.diff import rules
from stackctl.diff.model import Change, Ref, Snapshot, _ns, ref_text
from stackctl.diff.rules import Path, format_path, parse_path

CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
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
