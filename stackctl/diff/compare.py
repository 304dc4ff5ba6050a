"""The comparison behind `stackctl diff`: two renders in, one `Change` per changed object out.

`compare(before, after)` is a pure function of two `Snapshot`s (manifests, resource options,
Secret fingerprints, Pulumi URNs); it needs no git, no cluster and no Pulumi CLI, so the tests,
the scenario suite and the end-to-end checks use it directly (`Snapshot.of_config(cfg, stack)`
renders a config under mocks). Each changed object gets:

- an action: `create`, `update` (changed field paths), `replace` (the field that forces it,
  by the rules in `stackctl.diff.rules`) or `delete`; a name change is a delete plus a create;
  a field under the object's `ignore_changes` is not a change; a URN change without an alias
  is a replace;
- `restarts_pods` (a workload whose pod template changes, or that is replaced) and
  `changes_traffic` (a Service whose selector changes, an Ingress whose routing changes);
- risk flags (`RISKS`): any one of them makes `stackctl diff` exit 3.

Secret values never enter a `Change`: a changed Secret key is reported by its path only.

Where each part lives: the model (`Snapshot`, `Change`, `RISKS`) in `stackctl.diff.model`; one
object's classification in `stackctl.diff.objects`; the whole-render rules (controller-owned
fields, PodDisruptionBudgets) in `stackctl.diff.cluster`; the namespace quota during the
rollout in `stackctl.diff.quota`; the provider's and the API server's
replacement rules in `stackctl.diff.rules`. This module composes them and re-exports the public
names.
"""

from __future__ import annotations

from collections.abc import Iterable

from stackctl.diff import rules
from stackctl.diff.cluster import (
    _blocking_budgets,
    _entering_argo,
    _owned_fields,
    expected_pods,
    pdb_blocks_evictions,
)
from stackctl.diff.model import ACTIONS, RISKS, Change, Ref, Snapshot, _ns, ref_of, ref_text
from stackctl.diff.objects import _classify_pair, _destructive_risks, _moved, field_changes
from stackctl.diff.quota import quota_risks

__all__ = [
    "ACTIONS",
    "RISKS",
    "Change",
    "Ref",
    "Snapshot",
    "compare",
    "expected_pods",
    "field_changes",
    "pdb_blocks_evictions",
    "ref_of",
    "ref_text",
    "risky",
]

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
    _entering_argo(changes, before, after)
    quota_risks(changes, before, after)
    return sorted(changes.values(), key=lambda c: (c.namespace, c.kind, c.name))


def risky(changes: Iterable[Change]) -> bool:
    return any(c.risks for c in changes)
