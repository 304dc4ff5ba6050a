"""Policy guardrails for rendered Kubernetes objects, as plain functions.

Every rule takes the whole object set (some rules are cross-object: a PDB and the workloads it
selects, a pod and the RoleBinding of its ServiceAccount, a namespace and its NetworkPolicies) as
plain manifest dicts, exactly what `kubectl apply` would take (apiVersion, kind, metadata, spec,
camelCase keys), and returns one `Violation` per problem. Each message names the field path, the
bad value and what is allowed.

This module imports nothing from Pulumi: `stackctl check` runs it over rendered YAML, the
CrossGuard pack (`policy/pack.py`) runs it over the stack's resources, the tests run it over dicts.
The rules encode /work/shared/SECURITY.md (Pod Security Standards "restricted" plus the
availability and RBAC rules there).
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

__all__ = [
    "ENVIRONMENTS",
    "POD_TEMPLATE_KINDS",
    "RULES",
    "SECRETS_REASON_ANNOTATION",
    "Rule",
    "RuleContext",
    "Violation",
    "evaluate",
    "object_id",
    "parse_quantity",
]

ENVIRONMENTS: tuple[str, ...] = ("dev", "prod")

SECRETS_REASON_ANNOTATION = "appstack.io/secrets-access-reason"
"""A Role/ClusterRole that grants `secrets` must carry this annotation with a non-empty reason."""

MIN_ID = 10000
"""Lowest UID/GID a container may run as (checkov CKV_K8S_40, kube-score)."""

ALLOWED_VOLUME_TYPES: frozenset[str] = frozenset(
    {
        "configMap",
        "secret",
        "emptyDir",
        "projected",
        "downwardAPI",
        "persistentVolumeClaim",
        "csi",
        "ephemeral",
    }
)
ALLOWED_ADD_CAPABILITIES: frozenset[str] = frozenset({"NET_BIND_SERVICE"})
ALLOWED_SECCOMP_TYPES: frozenset[str] = frozenset({"RuntimeDefault", "Localhost"})
MOVING_TAGS: frozenset[str] = frozenset({"latest", "stable", "main", "master"})
# Pod Security Standards baseline: the "safe" sysctl set.
SAFE_SYSCTLS: frozenset[str] = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
DEFAULT_TERMINATION_GRACE_SECONDS = 30

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
    """"dev" or "prod"."""

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            allowed = ", ".join(ENVIRONMENTS)
            raise ValueError(f"unknown environment {self.environment!r}; allowed: {allowed}")

    @property
    def prod(self) -> bool:
        return self.environment == "prod"


Objects = Sequence[Mapping[str, Any]]
Check = Callable[[Objects, RuleContext], list[Violation]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Check


# --------------------------------------------------------------------------------------------
# Object helpers


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return []


def _kind(obj: Mapping[str, Any]) -> str:
    return str(obj.get("kind", ""))


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name", ""))


def _namespace(obj: Mapping[str, Any]) -> str | None:
    ns = _map(obj.get("metadata")).get("namespace")
    return str(ns) if ns else None


def object_id(obj: Mapping[str, Any]) -> str:
    """`Kind/namespace/name`; namespace "-" for cluster-scoped objects (or when unset)."""
    ns = None if _kind(obj) in CLUSTER_SCOPED_KINDS else _namespace(obj)
    return f"{_kind(obj)}/{ns or '-'}/{_name(obj)}"


def _show(value: Any) -> str:
    """A value as it would read in a manifest."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value) if not isinstance(value, list | dict) else str(value)


def _of_kind(objects: Objects, *kinds: str) -> Iterator[Mapping[str, Any]]:
    for obj in objects:
        if _kind(obj) in kinds:
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
        node = _map(node.get(part))
    return node


def pod_template(obj: Mapping[str, Any]) -> PodTemplate | None:
    """The pod template of a pod-bearing object, or None (also for a Rollout with workloadRef)."""
    kind = _kind(obj)
    if kind not in POD_TEMPLATE_KINDS:
        return None
    if kind == "Rollout" and not str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
        return None
    prefix = POD_TEMPLATE_KINDS[kind]
    template = _dig(obj, prefix) if prefix else obj
    if not template:
        return None
    labels = _map(_map(template.get("metadata")).get("labels"))
    return PodTemplate(obj, prefix, labels, _map(template.get("spec")))


def _pod_templates(objects: Objects) -> Iterator[PodTemplate]:
    for obj in objects:
        template = pod_template(obj)
        if template is not None:
            yield template


@dataclass(frozen=True)
class Container:
    spec: Mapping[str, Any]
    path: str
    """Full path, e.g. `spec.template.spec.containers[web]`."""
    init: bool


def _containers(template: PodTemplate, *, init: bool = True) -> Iterator[Container]:
    fields = ("containers", "initContainers") if init else ("containers",)
    for field in fields:
        for index, raw in enumerate(_list(template.spec.get(field))):
            container = _map(raw)
            label = container.get("name") or index
            yield Container(
                container,
                template.path(f"spec.{field}[{label}]"),
                field == "initContainers",
            )


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Kubernetes LabelSelector semantics: matchLabels and matchExpressions are ANDed;
    an empty selector matches everything."""
    for key, value in _map(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for raw in _list(selector.get("matchExpressions")):
        expr = _map(raw)
        key = str(expr.get("key", ""))
        operator = expr.get("operator")
        values = [str(v) for v in _list(expr.get("values"))]
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


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _percent(value: Any) -> Decimal | None:
    """`"25%"` -> 25; anything else -> None."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            return Decimal(value[:-1])
        except InvalidOperation:
            return None
    return None


def _is_zero(value: Any) -> bool:
    """IntOrString zero: 0, "0", "0%"."""
    if _is_int(value):
        return bool(value == 0)
    pct = _percent(value)
    if pct is not None:
        return pct == 0
    return isinstance(value, str) and value.strip() == "0"


# --------------------------------------------------------------------------------------------
# Quantities

_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_BINARY_SUFFIXES: Mapping[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES: Mapping[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_EXPONENT_RE = re.compile(r"^[eE]([-+]?[0-9]+)$")
_NUMBER_RE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a Kubernetes resource quantity exactly (apimachinery resource/quantity.go).

    `"100m"` -> 0.1, `"1Ki"` -> 1024, `"1k"` -> 1000, `"1e3"` -> 1000, `"1E"` -> 10**18, `2` -> 2.
    Raises ValueError on anything Kubernetes would reject.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}: expected a number or a quantity string")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}: must be finite")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"invalid quantity {value!r}: expected a number or a quantity string")
    text = value.strip()
    match = _QUANTITY_RE.match(text)
    if match is None:
        raise ValueError(f"invalid quantity {value!r}: expected e.g. 500m, 1, 128Mi, 1Gi, 1e3")
    number, suffix = match.groups()
    if _NUMBER_RE.match(number) is None:
        raise ValueError(f"invalid quantity {value!r}: bad number {number!r}")
    base = Decimal(number)
    if suffix in _BINARY_SUFFIXES:
        return base * (Decimal(2) ** _BINARY_SUFFIXES[suffix])
    if suffix in _DECIMAL_SUFFIXES:
        return base.scaleb(_DECIMAL_SUFFIXES[suffix])
    exponent = _EXPONENT_RE.match(suffix)
    if exponent is not None:
        return base.scaleb(int(exponent.group(1)))
    raise ValueError(
        f"invalid quantity {value!r}: unknown suffix {suffix!r} "
        "(allowed: n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or an exponent e<N>)"
    )


# --------------------------------------------------------------------------------------------
# pod-security-restricted


def _bound_service_accounts(objects: Objects) -> set[tuple[str, str]]:
    """(namespace, name) of every ServiceAccount bound by a RoleBinding/ClusterRoleBinding."""
    bound: set[tuple[str, str]] = set()
    for binding in _of_kind(objects, "RoleBinding", "ClusterRoleBinding"):
        role_ref = _map(binding.get("roleRef"))
        if role_ref.get("kind") not in ("Role", "ClusterRole"):
            continue
        for raw in _list(binding.get("subjects")):
            subject = _map(raw)
            if subject.get("kind") != "ServiceAccount":
                continue
            ns = subject.get("namespace") or _namespace(binding)
            if ns and subject.get("name"):
                bound.add((str(ns), str(subject["name"])))
    return bound


def _service_account_automount(objects: Objects, ns: str, name: str) -> Any:
    for sa in _of_kind(objects, "ServiceAccount"):
        if _namespace(sa) == ns and _name(sa) == name:
            return sa.get("automountServiceAccountToken")
    return None


def _check_pod_level(
    template: PodTemplate, objects: Objects, bound: set[tuple[str, str]]
) -> Iterator[str]:
    owner = template.owner
    spec = template.spec
    ns = _namespace(owner)
    if ns is None:
        yield (
            "metadata.namespace is unset (the object would land in the current/default "
            "namespace); set an explicit namespace other than default"
        )
    elif ns == "default":
        yield 'metadata.namespace is "default"; workloads must run in a dedicated namespace'

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            yield f"{template.path('spec.' + field)} is true; it must be false or unset"

    for index, raw in enumerate(_list(spec.get("volumes"))):
        volume = _map(raw)
        label = volume.get("name") or index
        types = [key for key in volume if key != "name"]
        for vtype in types:
            if vtype not in ALLOWED_VOLUME_TYPES:
                allowed = ", ".join(sorted(ALLOWED_VOLUME_TYPES))
                yield (
                    f"{template.path(f'spec.volumes[{label}].{vtype}')} is a {vtype} volume; "
                    f"allowed volume types: {allowed}"
                )

    pod_sc = _map(spec.get("securityContext"))
    for raw in _list(pod_sc.get("sysctls")):
        sysctl = _map(raw)
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield (
                f"{template.path('spec.securityContext.sysctls')} sets "
                f"{_show(sysctl.get('name'))}; only the Pod Security Standards safe sysctls "
                "are allowed"
            )

    sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount")
    sa_path = template.path("spec.serviceAccountName")
    if not sa_name:
        yield (
            f"{sa_path} is unset (the pod runs as the namespace's default ServiceAccount); "
            "set a dedicated ServiceAccount"
        )
    elif sa_name == "default":
        yield f'{sa_path} is "default"; use a dedicated ServiceAccount'

    sa_key = (ns or "default", str(sa_name or "default"))
    automount = spec.get("automountServiceAccountToken")
    if sa_key not in bound and automount is not False:
        automount_path = template.path("spec.automountServiceAccountToken")
        if automount is None:
            sa_automount = _service_account_automount(objects, *sa_key)
            if sa_automount is not False:
                yield (
                    f"{automount_path} is unset and ServiceAccount {sa_key[1]} does not set "
                    "automountServiceAccountToken: false; it must be false unless the "
                    "ServiceAccount is bound to a Role/ClusterRole in this object set"
                )
        else:
            yield (
                f"{automount_path} is {_show(automount)}; it must be false unless the "
                f"ServiceAccount {sa_key[1]} is bound to a Role/ClusterRole in this object set"
            )


def _check_container(template: PodTemplate, container: Container) -> Iterator[str]:
    c = container.spec
    path = container.path
    sc = _map(c.get("securityContext"))
    pod_sc = _map(template.spec.get("securityContext"))
    sc_path = f"{path}.securityContext"

    for index, raw in enumerate(_list(c.get("ports"))):
        port = _map(raw)
        host_port = port.get("hostPort")
        if host_port not in (None, 0):
            label = port.get("name") or index
            yield f"{path}.ports[{label}].hostPort is {_show(host_port)}; hostPort is not allowed"

    if sc.get("privileged") is True:
        yield f"{sc_path}.privileged is true; it must be false"
    if sc.get("allowPrivilegeEscalation") is not False:
        yield (
            f"{sc_path}.allowPrivilegeEscalation is {_show(sc.get('allowPrivilegeEscalation'))}; "
            "it must be false on every container and initContainer"
        )
    if sc.get("procMount") not in (None, "Default"):
        yield f"{sc_path}.procMount is {_show(sc.get('procMount'))}; only Default is allowed"

    # Fields a container inherits from the pod securityContext when unset.
    def effective(field: str) -> tuple[Any, str]:
        if field in sc and sc[field] is not None:
            return sc[field], f"{sc_path}.{field}"
        if field in pod_sc and pod_sc[field] is not None:
            return pod_sc[field], template.path(f"spec.securityContext.{field}")
        return None, f"{sc_path}.{field}"

    run_as_non_root, where = effective("runAsNonRoot")
    if run_as_non_root is not True:
        yield f"{where} is {_show(run_as_non_root)}; it must be true (pod or container level)"
    for field in ("runAsUser", "runAsGroup"):
        value, where = effective(field)
        if not _is_int(value) or value < MIN_ID:
            yield (
                f"{where} is {_show(value)}; it must be an integer >= {MIN_ID} "
                "(pod or container level; the container value overrides the pod's)"
            )

    seccomp, where = effective("seccompProfile")
    seccomp_type = _map(seccomp).get("type") if seccomp is not None else None
    if seccomp_type not in ALLOWED_SECCOMP_TYPES:
        yield (
            f"{where}.type is {_show(seccomp_type)}; it must be RuntimeDefault or Localhost "
            "(pod or container level)"
        )
    apparmor, where = effective("appArmorProfile")
    if _map(apparmor).get("type") == "Unconfined":
        yield f'{where}.type is "Unconfined"; it must be RuntimeDefault or Localhost'
    selinux, where = effective("seLinuxOptions")
    for field in ("user", "role"):
        if _map(selinux).get(field):
            yield f"{where}.{field} is {_show(_map(selinux)[field])}; it must be unset"

    caps = _map(sc.get("capabilities"))
    drop = [str(x) for x in _list(caps.get("drop"))]
    if "ALL" not in drop:
        yield f"{sc_path}.capabilities.drop is {_show(drop or None)}; it must contain ALL"
    added = [str(x) for x in _list(caps.get("add"))]
    extra = [cap for cap in added if cap not in ALLOWED_ADD_CAPABILITIES]
    if extra:
        yield (
            f"{sc_path}.capabilities.add is {_show(added)}; only NET_BIND_SERVICE may be added "
            f"(not {', '.join(extra)})"
        )
    if sc.get("readOnlyRootFilesystem") is not True:
        yield (
            f"{sc_path}.readOnlyRootFilesystem is {_show(sc.get('readOnlyRootFilesystem'))}; it "
            "must be true (mount an emptyDir for writable paths)"
        )


def check_pod_security_restricted(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """Pod Security Standards "restricted" plus SECURITY.md pod rules, for every pod template."""
    rule = "pod-security-restricted"
    bound = _bound_service_accounts(objects)
    out: list[Violation] = []
    for template in _pod_templates(objects):
        oid = object_id(template.owner)
        for message in _check_pod_level(template, objects, bound):
            out.append(Violation(rule, oid, message))
        for container in _containers(template):
            for message in _check_container(template, container):
                out.append(Violation(rule, oid, message))
    return out


# --------------------------------------------------------------------------------------------
# resources-requests-limits


def check_resources_requests_limits(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """cpu and memory requests and limits on every container and initContainer; request <= limit."""
    rule = "resources-requests-limits"
    out: list[Violation] = []
    for template in _pod_templates(objects):
        oid = object_id(template.owner)
        for container in _containers(template):
            resources = _map(container.spec.get("resources"))
            for resource in ("cpu", "memory"):
                parsed: dict[str, Decimal] = {}
                for kind in ("requests", "limits"):
                    path = f"{container.path}.resources.{kind}.{resource}"
                    raw = _map(resources.get(kind)).get(resource)
                    if raw is None:
                        out.append(
                            Violation(rule, oid, f"{path} is unset; set a {resource} {kind[:-1]}")
                        )
                        continue
                    try:
                        parsed[kind] = parse_quantity(raw)
                    except ValueError as exc:
                        out.append(Violation(rule, oid, f"{path}: {exc}"))
                if (
                    "requests" in parsed
                    and "limits" in parsed
                    and parsed["requests"] > parsed["limits"]
                ):
                    req = _map(resources.get("requests"))[resource]
                    lim = _map(resources.get("limits"))[resource]
                    out.append(
                        Violation(
                            rule,
                            oid,
                            f"{container.path}.resources.requests.{resource} "
                            f"({_show(req)}) is greater than "
                            f"{container.path}.resources.limits.{resource} ({_show(lim)}); "
                            "the request must be <= the limit",
                        )
                    )
    return out


# --------------------------------------------------------------------------------------------
# probes


def check_probes(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """Every container has readiness and liveness probes, and they are not identical."""
    rule = "probes"
    out: list[Violation] = []
    for template in _pod_templates(objects):
        oid = object_id(template.owner)
        for container in _containers(template, init=False):
            readiness = container.spec.get("readinessProbe")
            liveness = container.spec.get("livenessProbe")
            for field, probe in (("readinessProbe", readiness), ("livenessProbe", liveness)):
                if not probe:
                    out.append(
                        Violation(
                            rule,
                            oid,
                            f"{container.path}.{field} is unset; every container needs a "
                            "readinessProbe and a livenessProbe",
                        )
                    )
            if readiness and liveness and readiness == liveness:
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"{container.path}.livenessProbe is identical to "
                        f"{container.path}.readinessProbe; they must differ (e.g. a longer "
                        "liveness period/failureThreshold, or a different endpoint)",
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# image-pinned

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`repo[:tag][@digest]` -> (repo, tag, digest). A registry port is not a tag."""
    digest: str | None = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag: str | None = None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image, tag = image.rsplit(":", 1)
    return image, tag, digest


def check_image_pinned(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """Never `latest` or untagged; in prod a digest or a non-moving tag; imagePullPolicy Always."""
    rule = "image-pinned"
    out: list[Violation] = []
    for template in _pod_templates(objects):
        oid = object_id(template.owner)
        for container in _containers(template):
            path = f"{container.path}.image"
            image = container.spec.get("image")
            if not isinstance(image, str) or not image:
                out.append(Violation(rule, oid, f"{path} is unset; set a pinned image"))
                continue
            _, tag, digest = split_image(image)
            if digest is not None and _DIGEST_RE.match(digest) is None:
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"{path} is {_show(image)}: digest {_show(digest)} is malformed; "
                        "expected @sha256:<64 hex>",
                    )
                )
            if tag == "latest":
                out.append(
                    Violation(
                        rule,
                        oid,
                        f'{path} is {_show(image)}: the "latest" tag is forbidden; pin an '
                        "explicit version tag or a digest",
                    )
                )
            elif tag is None and digest is None:
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"{path} is {_show(image)}: untagged (means latest); pin an explicit "
                        "version tag or a digest (@sha256:...)",
                    )
                )
            elif ctx.prod and digest is None and tag in MOVING_TAGS:
                moving = ", ".join(sorted(MOVING_TAGS))
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"{path} is {_show(image)}: moving tag {_show(tag)} in prod; use a "
                        f"digest (@sha256:...) or a version tag (not {moving})",
                    )
                )
            policy = container.spec.get("imagePullPolicy")
            if policy != "Always":
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"{container.path}.imagePullPolicy is {_show(policy)}; it must be Always",
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# pdb-consistent


def _hpa_targets(objects: Objects) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """(namespace, kind, name) of each HPA target -> the HPA."""
    targets: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for hpa in _of_kind(objects, "HorizontalPodAutoscaler"):
        ref = _map(_map(hpa.get("spec")).get("scaleTargetRef"))
        key = (_namespace(hpa) or "", str(ref.get("kind", "")), str(ref.get("name", "")))
        targets[key] = hpa
    return targets


def _hpa_for(
    workload: Mapping[str, Any], targets: Mapping[tuple[str, str, str], Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    return targets.get((_namespace(workload) or "", _kind(workload), _name(workload)))


def _effective_replicas(
    workload: Mapping[str, Any], targets: Mapping[tuple[str, str, str], Mapping[str, Any]]
) -> int:
    hpa = _hpa_for(workload, targets)
    if hpa is not None:
        value = _map(hpa.get("spec")).get("minReplicas", 1)
    else:
        value = _map(workload.get("spec")).get("replicas", 1)
    return int(value) if _is_int(value) else 1


def _pdb_selects(pdb: Mapping[str, Any], workload: Mapping[str, Any]) -> bool:
    if _namespace(pdb) != _namespace(workload):
        return False
    spec = _map(pdb.get("spec"))
    if "selector" not in spec or spec["selector"] is None:
        return False  # policy/v1: a null selector selects no pods
    template = pod_template(workload)
    return template is not None and _selector_matches(_map(spec["selector"]), template.labels)


def check_pdb_consistent(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """PDBs never block all evictions, select something, and cover replicated prod workloads."""
    rule = "pdb-consistent"
    out: list[Violation] = []
    targets = _hpa_targets(objects)
    workloads = list(_of_kind(objects, *REPLICATED_KINDS))
    pdbs = list(_of_kind(objects, "PodDisruptionBudget"))
    for pdb in pdbs:
        oid = object_id(pdb)
        spec = _map(pdb.get("spec"))
        min_available = spec.get("minAvailable")
        max_unavailable = spec.get("maxUnavailable")
        if min_available is not None and max_unavailable is not None:
            out.append(
                Violation(
                    rule,
                    oid,
                    f"spec.minAvailable ({_show(min_available)}) and spec.maxUnavailable "
                    f"({_show(max_unavailable)}) are both set; set exactly one",
                )
            )
        if max_unavailable is not None and _is_zero(max_unavailable):
            out.append(
                Violation(
                    rule,
                    oid,
                    f"spec.maxUnavailable is {_show(max_unavailable)}, which blocks every "
                    "voluntary eviction (node drains hang); allow at least 1",
                )
            )
        pct = _percent(min_available)
        if pct is not None and pct >= 100:
            out.append(
                Violation(
                    rule,
                    oid,
                    f"spec.minAvailable is {_show(min_available)}, which blocks every voluntary "
                    "eviction; it must be below 100%",
                )
            )
        selected = [w for w in workloads if _pdb_selects(pdb, w)]
        if not selected:
            out.append(
                Violation(
                    rule,
                    oid,
                    f"spec.selector {_show(dict(_map(spec.get('selector'))))} selects no "
                    "Deployment/StatefulSet/Rollout pod template in namespace "
                    f"{_namespace(pdb) or '-'}; it must select the workload it protects",
                )
            )
        for workload in selected:
            replicas = _effective_replicas(workload, targets)
            required: int | None = None
            if _is_int(min_available):
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
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"spec.minAvailable is {_show(min_available)} but "
                        f"{object_id(workload)} runs at least {replicas} replica(s) "
                        f"({source}); minAvailable must be < the minimum replicas so one pod "
                        "can be evicted",
                    )
                )
    if ctx.prod:
        for workload in workloads:
            if _kind(workload) not in ("Deployment", "Rollout"):
                continue
            replicas = _effective_replicas(workload, targets)
            if replicas >= 2 and not any(_pdb_selects(pdb, workload) for pdb in pdbs):
                out.append(
                    Violation(
                        rule,
                        object_id(workload),
                        f"runs {replicas} replicas in prod but no PodDisruptionBudget selects "
                        "its spec.template.metadata.labels; add a PDB (e.g. maxUnavailable 1)",
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# zero-downtime-rollout

_SHELL_SLEEP_RE = re.compile(r"^\s*(?:exec\s+)?sleep\s+([0-9]+(?:\.[0-9]+)?)s?\s*$")


def _prestop_sleep_seconds(container: Mapping[str, Any]) -> Decimal | None:
    """Seconds a preStop hook sleeps: `sleep: {seconds: N}`, exec `sleep N` or
    `sh -c "sleep N"`."""
    pre_stop = _map(_map(container.get("lifecycle")).get("preStop"))
    sleep = _map(pre_stop.get("sleep"))
    seconds = sleep.get("seconds")
    if _is_int(seconds):
        return Decimal(seconds)
    command = [str(x) for x in _list(_map(pre_stop.get("exec")).get("command"))]
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


def check_zero_downtime_rollout(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """RollingUpdate with maxUnavailable 0 and surge > 0; minReadySeconds in prod; no replicas
    when an HPA owns them; terminationGracePeriodSeconds longer than the preStop sleep."""
    rule = "zero-downtime-rollout"
    out: list[Violation] = []
    targets = _hpa_targets(objects)
    for deployment in _of_kind(objects, "Deployment"):
        oid = object_id(deployment)
        spec = _map(deployment.get("spec"))
        strategy = _map(spec.get("strategy"))
        strategy_type = strategy.get("type", "RollingUpdate")
        if strategy_type != "RollingUpdate":
            out.append(
                Violation(
                    rule,
                    oid,
                    f"spec.strategy.type is {_show(strategy_type)}; it must be RollingUpdate",
                )
            )
        else:
            rolling = _map(strategy.get("rollingUpdate"))
            max_unavailable = rolling.get("maxUnavailable")
            if max_unavailable is None or not _is_zero(max_unavailable):
                shown = _show(max_unavailable) + (
                    " (defaults to 25%)" if max_unavailable is None else ""
                )
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"spec.strategy.rollingUpdate.maxUnavailable is {shown}; it must be 0 "
                        "so no serving pod is removed before its replacement is ready",
                    )
                )
            max_surge = rolling.get("maxSurge")
            if max_surge is not None and _is_zero(max_surge):
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"spec.strategy.rollingUpdate.maxSurge is {_show(max_surge)}; it must "
                        "be >= 1 (or > 0%)",
                    )
                )
        if ctx.prod:
            min_ready = spec.get("minReadySeconds")
            if not _is_int(min_ready) or min_ready <= 0:
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"spec.minReadySeconds is {_show(min_ready)}; in prod it must be > 0",
                    )
                )
    for workload in _of_kind(objects, *REPLICATED_KINDS):
        hpa = _hpa_for(workload, targets)
        replicas = _map(workload.get("spec")).get("replicas")
        if hpa is not None and replicas is not None:
            out.append(
                Violation(
                    rule,
                    object_id(workload),
                    f"spec.replicas is {_show(replicas)} but {object_id(hpa)} owns the replica "
                    "count; spec.replicas must be absent (every apply would reset the scale)",
                )
            )
    for template in _pod_templates(objects):
        grace_raw = template.spec.get("terminationGracePeriodSeconds")
        grace = grace_raw if _is_int(grace_raw) else DEFAULT_TERMINATION_GRACE_SECONDS
        for container in _containers(template, init=False):
            sleep = _prestop_sleep_seconds(container.spec)
            if sleep is not None and Decimal(grace) <= sleep:
                default = " (default)" if grace_raw is None else ""
                out.append(
                    Violation(
                        rule,
                        object_id(template.owner),
                        f"{template.path('spec.terminationGracePeriodSeconds')} is "
                        f"{grace}{default} but {container.path}.lifecycle.preStop sleeps "
                        f"{sleep}s; the grace period counts from before preStop and must be "
                        "greater than the sleep plus drain time",
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# loadbalancer-source-ranges


def check_loadbalancer_source_ranges(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """In prod a LoadBalancer Service states its allowed source ranges."""
    rule = "loadbalancer-source-ranges"
    if not ctx.prod:
        return []
    out: list[Violation] = []
    for service in _of_kind(objects, "Service"):
        spec = _map(service.get("spec"))
        if spec.get("type") != "LoadBalancer":
            continue
        ranges = _list(spec.get("loadBalancerSourceRanges"))
        if not ranges:
            out.append(
                Violation(
                    rule,
                    object_id(service),
                    "spec.loadBalancerSourceRanges is "
                    f"{_show(spec.get('loadBalancerSourceRanges'))} on a LoadBalancer Service "
                    "in prod; list the allowed CIDRs "
                    "(0.0.0.0/0 only where the config explicitly allows the world)",
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# namespace-default-deny


def _is_default_deny(policy: Mapping[str, Any]) -> bool:
    spec = _map(policy.get("spec"))
    selector = _map(spec.get("podSelector"))
    if _map(selector.get("matchLabels")) or _list(selector.get("matchExpressions")):
        return False
    types = {str(t) for t in _list(spec.get("policyTypes"))}
    if not {"Ingress", "Egress"} <= types:
        return False
    return not _list(spec.get("ingress")) and not _list(spec.get("egress"))


def check_namespace_default_deny(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """A default-deny NetworkPolicy in every workload namespace; every pod selected by one."""
    rule = "namespace-default-deny"
    out: list[Violation] = []
    policies = list(_of_kind(objects, "NetworkPolicy"))
    reported: set[str] = set()
    for template in _pod_templates(objects):
        ns = _namespace(template.owner) or "default"
        in_ns = [p for p in policies if (_namespace(p) or "default") == ns]
        if ns not in reported and not any(_is_default_deny(p) for p in in_ns):
            reported.add(ns)
            out.append(
                Violation(
                    rule,
                    f"Namespace/-/{ns}",
                    f"namespace {ns} holds {object_id(template.owner)} but no NetworkPolicy "
                    "there is a default deny (spec.podSelector {}, spec.policyTypes [Ingress, "
                    "Egress], no spec.ingress/spec.egress rules)",
                )
            )
        if not any(
            _selector_matches(_map(_map(p.get("spec")).get("podSelector")), template.labels)
            for p in in_ns
        ):
            out.append(
                Violation(
                    rule,
                    object_id(template.owner),
                    f"{template.path('metadata.labels')} {_show(dict(template.labels))} are "
                    f"selected by no NetworkPolicy in namespace {ns}; every pod must be "
                    "selected by one",
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# rbac-no-wildcards


def check_rbac_no_wildcards(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """No wildcards in Roles, no cluster-admin bindings, secrets only with a stated reason."""
    rule = "rbac-no-wildcards"
    out: list[Violation] = []
    for role in _of_kind(objects, "Role", "ClusterRole"):
        oid = object_id(role)
        annotations = _map(_map(role.get("metadata")).get("annotations"))
        reason = str(annotations.get(SECRETS_REASON_ANNOTATION) or "").strip()
        for index, raw in enumerate(_list(role.get("rules"))):
            role_rule = _map(raw)
            for field in ("apiGroups", "resources", "verbs"):
                values = [str(v) for v in _list(role_rule.get(field))]
                if any("*" in v for v in values):
                    out.append(
                        Violation(
                            rule,
                            oid,
                            f"rules[{index}].{field} is {values}; wildcards (*) are not "
                            "allowed, list each item explicitly",
                        )
                    )
            resources = [str(v) for v in _list(role_rule.get("resources"))]
            if any(r == "secrets" or r.startswith("secrets/") for r in resources) and not reason:
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"rules[{index}].resources {resources} grants secrets; allowed only "
                        f"with a non-empty metadata.annotations[{SECRETS_REASON_ANNOTATION}] "
                        "stating why",
                    )
                )
    for binding in _of_kind(objects, "RoleBinding", "ClusterRoleBinding"):
        role_ref = _map(binding.get("roleRef"))
        if role_ref.get("name") == "cluster-admin":
            out.append(
                Violation(
                    rule,
                    object_id(binding),
                    f'roleRef.name is "cluster-admin" (roleRef.kind {_show(role_ref.get("kind"))})'
                    "; bind a namespaced Role with only the verbs needed",
                )
            )
    return out


# --------------------------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    Rule(
        "pod-security-restricted",
        "Pods meet Pod Security Standards 'restricted': non-root UID/GID >= 10000, no host "
        "namespaces/ports/paths, no privilege escalation, drop ALL, seccomp, read-only root, "
        "dedicated ServiceAccount, no SA token unless bound, never the default namespace.",
        check_pod_security_restricted,
    ),
    Rule(
        "resources-requests-limits",
        "Every container and initContainer sets cpu and memory requests and limits, "
        "request <= limit.",
        check_resources_requests_limits,
    ),
    Rule(
        "probes",
        "Every container has readiness and liveness probes, and they differ.",
        check_probes,
    ),
    Rule(
        "image-pinned",
        "Images are never latest or untagged; in prod a digest or a non-moving tag; "
        "imagePullPolicy Always.",
        check_image_pinned,
    ),
    Rule(
        "pdb-consistent",
        "PodDisruptionBudgets select their workload and never block all evictions; "
        "replicated prod workloads have one.",
        check_pdb_consistent,
    ),
    Rule(
        "zero-downtime-rollout",
        "Deployments roll with maxUnavailable 0 and surge > 0, minReadySeconds in prod, no "
        "replicas when an HPA owns them, grace period longer than the preStop sleep.",
        check_zero_downtime_rollout,
    ),
    Rule(
        "loadbalancer-source-ranges",
        "In prod a LoadBalancer Service states loadBalancerSourceRanges.",
        check_loadbalancer_source_ranges,
    ),
    Rule(
        "namespace-default-deny",
        "Every workload namespace has a default-deny NetworkPolicy and every pod is selected "
        "by a NetworkPolicy.",
        check_namespace_default_deny,
    ),
    Rule(
        "rbac-no-wildcards",
        "RBAC rules have no wildcards, nothing binds cluster-admin, secrets access needs a "
        "stated reason.",
        check_rbac_no_wildcards,
    ),
)

RULE_NAMES: tuple[str, ...] = tuple(rule.name for rule in RULES)


def evaluate(
    objects: Sequence[Mapping[str, Any]], ctx: RuleContext, rules: Sequence[Rule] = RULES
) -> list[Violation]:
    """Run `rules` over the object set; violations in rule order, then object order."""
    out: list[Violation] = []
    for rule in rules:
        out.extend(rule.check(objects, ctx))
    return out
