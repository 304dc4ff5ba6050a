"""The model of `stackctl diff`: a `Snapshot` (one render as the diff sees it), a `Change` (what
applying the new render does to one object), the risk codes and object references.

`stackctl.diff.compare` turns two snapshots into changes (see `stackctl.diff.compare`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("create", "update", "replace", "delete")

#: Risk codes and what they mean; a change that carries any of them makes the diff exit 3.
RISKS: dict[str, str] = {
    "protected": "replace or delete of a resource with the `protect` option",
    "stateful": "replace or delete of a stateful object (PVC, PV, StatefulSet, Namespace)",
    "downtime": "a workload or Service is replaced: deleted before its replacement exists",
    "immutable-field": "a field Kubernetes cannot update in place changes: the update fails",
    "selector": "a workload's selector changes",
    "controller-owned": "the program sets a field another controller owns",
    "stale-selector": "a Service Argo Rollouts manages selects a label its Rollout's pods lack",
    "pdb-blocks-evictions": "a PodDisruptionBudget allows no eviction at all",
    "secret-value": "a Secret value changes (value not shown)",
    "quota": "the rollout needs more than the new ResourceQuota allows: new pods are refused",
    "urn-change": "an object's Pulumi URN changes without an alias: the engine recreates it",
}

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
        """From a `stackctl.render.stack.RenderResult` rendered in this process (without URNs;
        `of_config` records them)."""
        from stackctl.diff.render import snapshot_of

        return cls.from_json(snapshot_of(result))

    @classmethod
    def of_config(cls, cfg: Any, stack: str) -> Snapshot:
        """Render a validated `StackConfig` under mocks, URNs included."""
        from stackctl.diff.render import snapshot_config

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


def _ns(ref: Ref) -> str:
    return "" if ref[1] == "-" else ref[1]
