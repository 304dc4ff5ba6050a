"""The CrossGuard side of the guardrails: stack resources -> manifests -> `policy.rules`.

`policy/__main__.py` builds `PolicyPack("appstack", policies=build_policies(), ...)`; everything
it needs lives here so tests can exercise the conversion without a Pulumi engine (importing
`__main__` would start the pack's gRPC server).

Resources. A `StackValidationPolicy` sees every resource of the stack (`args.resources`, each a
`PolicyResource` with `resource_type`, `props`, `urn`). For every `kubernetes:*` resource whose
props carry `apiVersion` and `kind` (built-in kinds and CustomResources alike; components such as
`kubernetes:yaml:ConfigFile` or a Helm `Release` carry neither and are left out) the props are
the object as the provider sent it: apiVersion, kind, metadata, spec (or rules/subjects/...),
plus output-only `status`. `status`, keys starting with `__` (provider bookkeeping) and the
server-set metadata fields are dropped; the rest is the manifest the rules judge.

Numbers. Resource properties travel as protobuf `Struct` values, where every number is a double
(`10001` arrives as `10001.0`); integral floats are turned back into ints so `runAsUser: 10001`
and `replicas: 2` are judged as the integers they are.

Unknown values. During `pulumi preview` a value that depends on another resource's output is
unknown. pulumi_policy wraps props in `unknown_checking_proxy` (pulumi_policy/proxy.py): reading
an unknown value raises `UnknownValueError`; if that escaped `validate`, the whole policy would be
reported "can't run during preview" for the whole stack. Instead the conversion reads every value
(so the proxy raises for unknowns) and also recognises the raw unknown sentinels (so plain dicts
behave the same); a resource with an unknown anywhere in the kept fields is skipped, and its URN
is named in each violation message so a cross-object finding that may come from the missing
object is recognisable. `pulumi up` sees known values and checks everything.

Environment. `StackValidationArgs` offers `resources`, `stack_tags` and `get_config()` (this
policy's pack config), not the stack name. pulumi_policy configures the Pulumi runtime from
PULUMI_PROJECT/PULUMI_STACK before each analysis (`_configure_runtime_settings`; pulumi-policy
issue #42 made `pulumi.get_stack()` usable in policies), so the documented order is:
1. an explicit `environment` property in the policy's pack config
   (`{"image-pinned": {"environment": "dev"}}`, declared in each policy's config schema);
2. the stack name, when it is one of the environments of `PRODUCTION_RULES` (dev, staging,
   prod: Pulumi.<environment>.yaml);
3. otherwise "prod", the stricter reading: an unrecognised stack is never judged leniently.
Enforcement levels are separate: they come from `--policy-pack-config policy/config/<env>.json`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
from pulumi_policy import (
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from .rules import PRODUCTION_RULES, RULES, Rule, RuleContext, environments, object_id

UNKNOWN_SENTINELS: frozenset[str] = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)
DROPPED_TOP_LEVEL: frozenset[str] = frozenset({"status"})
SERVER_SET_METADATA: frozenset[str] = frozenset(
    {
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
DEFAULT_ENVIRONMENT = "prod"
ENVIRONMENT_CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "environment": {
            "type": "string",
            "enum": list(environments()),
            "description": "Judge the stack as this environment (default: the stack name if "
            "it is an environment, else prod).",
        }
    }
)


class UnknownPropsError(Exception):
    """A resource's props hold a value that is unknown during preview."""

    def __init__(self, path: str) -> None:
        super().__init__(f"value at {path or '.'} is unknown during preview")
        self.path = path


class ResourceLike(Protocol):
    """The fields of `pulumi_policy.PolicyResource` the conversion reads."""

    @property
    def resource_type(self) -> str: ...

    @property
    def props(self) -> Mapping[str, Any]: ...

    @property
    def urn(self) -> str: ...


def _plain(value: Any, path: str) -> Any:
    """A deep plain copy of props (dict/list/scalars); UnknownPropsError on an unknown value."""
    if isinstance(value, str):
        if value in UNKNOWN_SENTINELS:
            raise UnknownPropsError(path)
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Struct numbers are doubles; Kubernetes integers are ints
    try:
        if isinstance(value, Mapping):
            return {str(k): _plain(value[k], f"{path}.{k}") for k in value}
        if isinstance(value, Sequence) and not isinstance(value, bytes):
            return [_plain(value[i], f"{path}[{i}]") for i in range(len(value))]
    except UnknownValueError as exc:
        raise UnknownPropsError("." + ".".join(exc.props)) from exc
    return value


def resource_to_manifest(resource_type: str, props: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Kubernetes manifest of a `kubernetes:*` resource, or None if it is not one.

    Raises UnknownPropsError if a kept value is unknown (preview).
    """
    if not resource_type.startswith("kubernetes:"):
        return None
    try:
        keys = list(props)
    except UnknownValueError as exc:
        raise UnknownPropsError("") from exc
    if "apiVersion" not in keys or "kind" not in keys:
        return None
    manifest: dict[str, Any] = {}
    for key in keys:
        if key in DROPPED_TOP_LEVEL or key.startswith("__"):
            continue
        try:
            raw = props[key]
            if key == "metadata" and isinstance(raw, Mapping):
                raw = {k: raw[k] for k in raw if k not in SERVER_SET_METADATA}
        except UnknownValueError as exc:
            raise UnknownPropsError("." + ".".join(exc.props)) from exc
        manifest[key] = _plain(raw, f".{key}")
    return manifest


@dataclass
class ConvertedStack:
    manifests: list[dict[str, Any]] = field(default_factory=list)
    urns: dict[str, str] = field(default_factory=dict)
    """`Kind/namespace/name` -> URN, to attach a violation to its resource."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(URN, reason) of resources left out because of unknown values."""


def _drop_ignored_fields(manifest: dict[str, Any], resource: ResourceLike) -> None:
    """Remove the fields the resource's `ignoreChanges` names (plain dotted paths).

    The program does not declare such a field: the engine fills it from the old state and the
    Kubernetes provider from the live object (pulumi `pkg/resource/deploy/step_generator.go`,
    processIgnoreChanges; pulumi-kubernetes `provider/pkg/provider/provider.go` Check, which
    copies ignored fields from the live object under Server-Side Apply). So after the first `up`
    the analyzer sees e.g. `spec.replicas` that the HPA wrote, on a workload that never sets
    it; judged as the program's own value, a rule would flag the HPA's scale.
    """
    opts = getattr(resource, "opts", None)
    for path in getattr(opts, "ignore_changes", None) or []:
        keys = str(path).split(".")
        if not all(k.isidentifier() for k in keys):
            continue  # indexed or quoted paths: not needed by any rule here
        node: Any = manifest
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(keys[-1], None)


def manifests_from_resources(resources: Iterable[ResourceLike]) -> ConvertedStack:
    """Convert a stack's resources; non-Kubernetes resources are ignored, unknown ones skipped."""
    out = ConvertedStack()
    for resource in resources:
        try:
            manifest = resource_to_manifest(resource.resource_type, resource.props)
        except UnknownPropsError as exc:
            out.skipped.append((resource.urn, str(exc)))
            continue
        if manifest is None:
            continue
        _drop_ignored_fields(manifest, resource)
        out.manifests.append(manifest)
        out.urns.setdefault(object_id(manifest), resource.urn)
    return out


def current_stack() -> str | None:
    """The stack being analysed, as far as the policy runtime knows it."""
    try:
        stack: str | None = pulumi.get_stack()
    except Exception:  # runtime not configured (e.g. an older CLI)
        stack = None
    return stack or os.environ.get("PULUMI_STACK") or None


def resolve_environment(policy_config: Mapping[str, Any], stack: str | None) -> str:
    """Pack config `environment`, else the stack name if it is an environment, else prod."""
    configured = policy_config.get("environment")
    if configured is not None:
        if configured not in PRODUCTION_RULES:
            allowed = ", ".join(environments())
            raise ValueError(f"policy config environment {configured!r} is not one of: {allowed}")
        return str(configured)
    if stack:
        short = stack.rsplit("/", 1)[-1]
        if short in PRODUCTION_RULES:
            return short
    return DEFAULT_ENVIRONMENT


def run_rule(
    rule: Rule,
    converted: ConvertedStack,
    environment: str,
    report_violation: Callable[[str, str | None], None],
) -> int:
    """Run one rule over converted resources, reporting each violation; returns the count."""
    note = ""
    if converted.skipped:
        urns = ", ".join(urn for urn, _ in converted.skipped)
        note = f" (not checked, values unknown during preview: {urns})"
    violations = rule.check(converted.manifests, RuleContext(environment))
    for violation in violations:
        report_violation(
            f"{violation.obj}: {violation.message}{note}", converted.urns.get(violation.obj)
        )
    return len(violations)


def make_validate(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        converted = manifests_from_resources(args.resources)
        environment = resolve_environment(args.get_config(), current_stack())
        run_rule(rule, converted, environment, report_violation)

    return validate


def build_policies(rules: Sequence[Rule] = RULES) -> list[Policy]:
    """One StackValidationPolicy per rule: same name and description."""
    return [
        StackValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=make_validate(rule),
            config_schema=ENVIRONMENT_CONFIG_SCHEMA,
        )
        for rule in rules
    ]
