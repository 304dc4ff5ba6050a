"""The vocabulary every rule family shares: `Violation`, `RuleContext`, `Rule`, and helpers that
read plain manifest dicts (kind, name, namespace, pod templates, containers, label selectors,
IntOrString values).

Pure Python, no Pulumi import: `stackctl check` runs the rules over rendered YAML, the CrossGuard
pack (`policy/pack.py`) over the stack's resources, the tests over dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

#: Environment -> whether prod's rules apply to it: the strict reading of image-pinned (no moving
#: tag), pdb-consistent (replicated workloads need a PDB), zero-downtime-rollout (minReadySeconds)
#: and loadbalancer-source-ranges. Data, in promotion order: a new environment is an entry here,
#: its enforcement levels in policy/config/<environment>.json and its defaults in
#: components/config/stack.py ENVIRONMENT_DEFAULTS, whose `productionRules` says the same (the
#: pack's venv has no `components`; tests/policy/test_environments.py holds the two equal).
PRODUCTION_RULES: dict[str, bool] = {"dev": False, "staging": True, "prod": True}


def environments() -> tuple[str, ...]:
    """The environments the rules know, in promotion order."""
    return tuple(PRODUCTION_RULES)


# Kinds whose objects carry a pod template, and where the template lives.
POD_TEMPLATE_KINDS: Mapping[str, str] = {
    "Deployment": "spec.template",
    "StatefulSet": "spec.template",
    "DaemonSet": "spec.template",
    "ReplicaSet": "spec.template",
    "Job": "spec.template",
    "CronJob": "spec.jobTemplate.spec.template",
    "Rollout": "spec.template",
    "Pod": "",
}
# Kinds a PodDisruptionBudget / HorizontalPodAutoscaler is checked against.
REPLICATED_KINDS: frozenset[str] = frozenset({"Deployment", "StatefulSet", "Rollout"})
CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
    }
)


@dataclass(frozen=True)
class Violation:
    """One problem with one object."""

    rule: str
    """Rule name, e.g. "pod-security-restricted"."""
    obj: str
    """`Kind/namespace/name` ("-" as namespace for cluster-scoped or unset)."""
    message: str
    """What is wrong and what is allowed; names the field path and the bad value."""


@dataclass(frozen=True)
class RuleContext:
    environment: str
    """A key of PRODUCTION_RULES: dev, staging, prod."""

    def __post_init__(self) -> None:
        if self.environment not in PRODUCTION_RULES:
            allowed = ", ".join(environments())
            raise ValueError(f"unknown environment {self.environment!r}; allowed: {allowed}")

    @property
    def prod(self) -> bool:
        """Prod's rules apply (prod, staging: PRODUCTION_RULES)."""
        return PRODUCTION_RULES[self.environment]


Objects = Sequence[Mapping[str, Any]]
Check = Callable[[Objects, RuleContext], list[Violation]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Check


# --------------------------------------------------------------------------------------------
# Object helpers


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return []


def kind_of(obj: Mapping[str, Any]) -> str:
    return str(obj.get("kind", ""))


def name_of(obj: Mapping[str, Any]) -> str:
    return str(as_map(obj.get("metadata")).get("name", ""))


def namespace_of(obj: Mapping[str, Any]) -> str | None:
    ns = as_map(obj.get("metadata")).get("namespace")
    return str(ns) if ns else None


def object_id(obj: Mapping[str, Any]) -> str:
    """`Kind/namespace/name`; namespace "-" for cluster-scoped objects (or when unset)."""
    ns = None if kind_of(obj) in CLUSTER_SCOPED_KINDS else namespace_of(obj)
    return f"{kind_of(obj)}/{ns or '-'}/{name_of(obj)}"


def show(value: Any) -> str:
    """A value as it would read in a manifest."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value) if not isinstance(value, list | dict) else str(value)


def of_kind(objects: Objects, *kinds: str) -> Iterator[Mapping[str, Any]]:
    for obj in objects:
        if kind_of(obj) in kinds:
            yield obj


@dataclass(frozen=True)
class PodTemplate:
    """A pod template found in an object, with the path prefix of its fields."""

    owner: Mapping[str, Any]
    prefix: str
    """Path of the template ("spec.template", "" for a Pod); its spec is at `<prefix>.spec`."""
    labels: Mapping[str, Any]
    spec: Mapping[str, Any]

    def path(self, rest: str) -> str:
        return f"{self.prefix}.{rest}" if self.prefix else rest


def _dig(obj: Mapping[str, Any], dotted: str) -> Mapping[str, Any]:
    node: Mapping[str, Any] = obj
    for part in dotted.split("."):
        node = as_map(node.get(part))
    return node


def template_of(obj: Mapping[str, Any]) -> PodTemplate | None:
    """The pod template of a pod-bearing object, or None (also for a Rollout with workloadRef)."""
    kind = kind_of(obj)
    if kind not in POD_TEMPLATE_KINDS:
        return None
    if kind == "Rollout" and not str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
        return None
    prefix = POD_TEMPLATE_KINDS[kind]
    template = _dig(obj, prefix) if prefix else obj
    if not template:
        return None
    labels = as_map(as_map(template.get("metadata")).get("labels"))
    return PodTemplate(obj, prefix, labels, as_map(template.get("spec")))


def pod_templates(objects: Objects) -> Iterator[PodTemplate]:
    for obj in objects:
        template = template_of(obj)
        if template is not None:
            yield template


@dataclass(frozen=True)
class Container:
    spec: Mapping[str, Any]
    path: str
    """Full path, e.g. `spec.template.spec.containers[web]`."""
    init: bool


def containers(template: PodTemplate, *, init: bool = True) -> Iterator[Container]:
    fields = ("containers", "initContainers") if init else ("containers",)
    for field in fields:
        for index, raw in enumerate(as_list(template.spec.get(field))):
            container = as_map(raw)
            label = container.get("name") or index
            yield Container(
                container,
                template.path(f"spec.{field}[{label}]"),
                field == "initContainers",
            )


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Kubernetes LabelSelector semantics: matchLabels and matchExpressions are ANDed;
    an empty selector matches everything."""
    for key, value in as_map(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for raw in as_list(selector.get("matchExpressions")):
        expr = as_map(raw)
        key = str(expr.get("key", ""))
        operator = expr.get("operator")
        values = [str(v) for v in as_list(expr.get("values"))]
        present = key in labels
        if operator == "In" and not (present and str(labels[key]) in values):
            return False
        if operator == "NotIn" and present and str(labels[key]) in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def percent(value: Any) -> Decimal | None:
    """`"25%"` -> 25; anything else -> None."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            return Decimal(value[:-1])
        except InvalidOperation:
            return None
    return None


def is_zero(value: Any) -> bool:
    """IntOrString zero: 0, "0", "0%"."""
    if is_int(value):
        return bool(value == 0)
    pct = percent(value)
    if pct is not None:
        return pct == 0
    return isinstance(value, str) and value.strip() == "0"
