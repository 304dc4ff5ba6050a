"""Which field changes replace an object, as the Kubernetes provider and the API server decide.

Two tables, both keyed by (API group, version or "*", kind) and holding Pulumi property paths
(`[*]` matches any list index):

- `PROVIDER_FORCE_NEW`: copied from pulumi-kubernetes v4.25.0 (the release of the SDK pin in
  requirements.txt and of the provider `make e2e` builds), `provider/pkg/provider/diff.go`
  (`forceNew`, `metadataForceNewProperties`, `containerForceNewProperties`,
  `labelSelectorForceNewProperties`); the table is unchanged up to the provider's master
  (v4.25.0..v4.32.0 only reorders an import and rewrites one boolean expression). A change
  under one of these paths makes the provider's Diff answer "replace"
  (`provider/pkg/provider/provider.go`, `Diff`: `forceNewFields` -> `convertPatchToDiff` ->
  `replaces`). For a named object whose name stays
  the same it also answers `DeleteBeforeReplace` (same file, "Delete before replacement if we
  are forced to replace the old object, and the new version of that object MUST have the same
  name"): the old object is deleted first, the new one created after.
  Secrets and ConfigMaps: `forceNewProperties` adds `.type/.stringData/.data` (Secret) and
  `.binaryData/.data` (ConfigMap) unless the provider config `enableSecretMutable` /
  `enableConfigMapMutable` is true (both default false, `provider.go` `Configure`; appstack sets
  neither) or the object is `immutable: true`, which always forces.
- `KUBERNETES_IMMUTABLE`: fields the API server refuses to update (apps/v1 StatefulSet
  validation "updates to statefulset spec for fields other than 'replicas', 'ordinals',
  'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy'
  and 'minReadySeconds' are forbidden"; PersistentVolumeClaim "spec is immutable after creation
  except resources.requests and volumeAttributesClassName for bound claims", storage may only
  grow; `immutable: true` ConfigMaps/Secrets; Service `clusterIP(s)`; Job `template`). When the
  provider does not force a replacement for such a field, it patches, the API server answers
  422 and `pulumi up` fails: the diff reports that as a replacement the operator has to ask for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

Path = tuple[str | int, ...]

_SELECTOR = (
    "spec.selector",
    "spec.selector.matchExpressions",
    "spec.selector.matchExpressions.key",
    "spec.selector.matchExpressions.operator",
    "spec.selector.matchExpressions.values",
    "spec.selector.matchLabels",
)


def _containers(*prefixes: str) -> tuple[str, ...]:
    fields = [
        "args",
        "command",
        "env",
        "env.value",
        "image",
        "imagePullPolicy",
        "lifecycle",
        "livenessProbe",
        "ports",
        "readinessProbe",
        "resources",
        "securityContext",
        "stdin",
        "stdinOnce",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "tty",
        "volumeDevices",
        "volumeMounts",
        "workingDir",
    ]
    return tuple(f"{p}.{f}" for p in prefixes for f in fields)


_POD = (
    *(
        f"spec.{f}"
        for f in [
            "affinity",
            "automountServiceAccountToken",
            "dnsConfig",
            "dnsPolicy",
            "enableServiceLinks",
            "hostAliases",
            "hostIPC",
            "hostNetwork",
            "hostPID",
            "hostname",
            "imagePullSecrets",
            "nodeName",
            "nodeSelector",
            "overhead",
            "preemptionPolicy",
            "priority",
            "priorityClassName",
            "readinessGates",
            "restartPolicy",
            "runtimeClassName",
            "schedulerName",
            "securityContext",
            "serviceAccount",
            "serviceAccountName",
            "shareProcessNamespace",
            "subdomain",
            "terminationGracePeriodSeconds",
            "volumes",
        ]
    ),
    *_containers("spec.containers[*]", "spec.initContainers[*]"),
)
_PV_SOURCES = tuple(
    f"spec.{s}"
    for s in [
        "awsElasticBlockStore",
        "azureDisk",
        "azureFile",
        "cephfs",
        "cinder",
        "csi",
        "fc",
        "flexVolume",
        "flocker",
        "gcePersistentDisk",
        "glusterfs",
        "hostPath",
        "iscsi",
        "local",
        "nfs",
        "photonPersistentDisk",
        "portworxVolume",
        "quobyte",
        "rbd",
        "scaleIO",
        "storageos",
        "vsphereVolume",
    ]
)
_STATEFULSET = (
    "spec.podManagementPolicy",
    "spec.revisionHistoryLimit",
    "spec.serviceName",
    "spec.volumeClaimTemplates",
    *_SELECTOR,
)
_JOB = ("spec.completions", "spec.parallelism", "spec.template", *_SELECTOR)
_BINDING = ("roleRef",)

#: pulumi-kubernetes v4.25.0 provider/pkg/provider/diff.go `forceNew` (core listed under "").
PROVIDER_FORCE_NEW: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("apps", "v1beta1", "StatefulSet"): _STATEFULSET,
    **{("apps", v, "DaemonSet"): _SELECTOR for v in ("v1beta2", "v1")},
    **{("apps", v, "Deployment"): _SELECTOR for v in ("v1beta2", "v1")},
    **{("apps", v, "StatefulSet"): _STATEFULSET for v in ("v1beta2", "v1")},
    ("", "v1", "PersistentVolume"): _PV_SOURCES,
    ("", "v1", "PersistentVolumeClaim"): (
        "spec.accessModes",
        "spec.selector",
        "spec.storageClassName",
        "spec.volumeName",
        "spec.selector.matchExpressions",
        "spec.selector.matchLabels",
    ),
    ("", "v1", "Pod"): _POD,
    ("", "v1", "ResourceQuota"): ("spec.scopes",),
    ("", "v1", "Secret"): ("type",),
    ("", "v1", "Service"): ("spec.clusterIP",),
    ("policy", "v1beta1", "PodDisruptionBudget"): ("spec",),
    **{
        ("rbac.authorization.k8s.io", v, k): _BINDING
        for v in ("v1alpha1", "v1beta1", "v1")
        for k in ("ClusterRoleBinding", "RoleBinding")
    },
    ("storage.k8s.io", "v1", "StorageClass"): ("parameters", "provisioner"),
    **{("batch", v, "Job"): _JOB for v in ("v1beta1", "v1", "v2alpha1")},
}
#: diff.go `metadataForceNewProperties`: identity, for every kind.
METADATA_FORCE_NEW = ("metadata.name", "metadata.namespace")
#: diff.go `forceNewProperties`: Secret / ConfigMap contents unless enable*Mutable (default off).
SECRET_CONTENT = ("type", "stringData", "data")
CONFIGMAP_CONTENT = ("binaryData", "data")

_STATEFULSET_MUTABLE = (
    "spec.replicas",
    "spec.ordinals",
    "spec.template",
    "spec.updateStrategy",
    "spec.revisionHistoryLimit",
    "spec.persistentVolumeClaimRetentionPolicy",
    "spec.minReadySeconds",
)

#: Kubernetes API validation: fields that cannot be updated in place (kind -> paths).
KUBERNETES_IMMUTABLE: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec.selector",),
    "DaemonSet": ("spec.selector",),
    "ReplicaSet": ("spec.selector",),
    "StatefulSet": (
        "spec.selector",
        "spec.serviceName",
        "spec.volumeClaimTemplates",
        "spec.podManagementPolicy",
    ),
    "Job": ("spec.selector", "spec.template", "spec.completionMode"),
    "Service": ("spec.clusterIP", "spec.clusterIPs"),
    "PersistentVolumeClaim": (
        "spec.accessModes",
        "spec.selector",
        "spec.storageClassName",
        "spec.volumeMode",
        "spec.dataSource",
        "spec.dataSourceRef",
    ),
    "RoleBinding": ("roleRef",),
    "ClusterRoleBinding": ("roleRef",),
}

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout"})
STATEFUL_KINDS = frozenset(
    {"PersistentVolumeClaim", "PersistentVolume", "StatefulSet", "Namespace"}
)


def format_path(path: Path) -> str:
    """A path as Pulumi writes property paths: `a.b[0]["app.kubernetes.io/name"]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.search(r'[."\[\]/]', part):
            out += '["' + part.replace('"', '\\"') + '"]'
        else:
            out += f".{part}" if out else part
    return out


def parse_path(text: str) -> Path:
    """The inverse of `format_path` (also accepts `[*]`, kept as the string "*")."""
    parts: list[str | int] = []
    for match in re.finditer(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+|\*)\]|([^.\[\]]+)', text):
        quoted, index, plain = match.groups()
        if quoted is not None:
            parts.append(quoted.replace('\\"', '"'))
        elif index is not None:
            parts.append(int(index) if index.isdigit() else "*")
        else:
            parts.append(plain)
    return tuple(parts)


def _prefix_match(pattern: Path, path: Path) -> bool:
    """`pattern` is a prefix of `path` (`*` matches any index)."""
    if len(pattern) > len(path):
        return False
    return all(p == "*" or p == q for p, q in zip(pattern, path, strict=False))


def covers(pattern: str | Path, path: Path) -> bool:
    """A change at `path` touches `pattern`: one is a prefix of the other. A change of a whole
    `spec` touches `spec.selector`, as the provider's JSON-path match on the patch does."""
    pat = parse_path(pattern) if isinstance(pattern, str) else pattern
    return _prefix_match(pat, path) or _prefix_match(path, pat)


def api_group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def provider_force_new(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The provider's force-new paths for `obj` (default provider config)."""
    group, version = api_group_version(str(obj.get("apiVersion", "")))
    kind = str(obj.get("kind", ""))
    props = list(METADATA_FORCE_NEW)
    immutable = obj.get("immutable") is True
    if group in ("", "core") and version == "v1" and kind == "Secret":
        props += SECRET_CONTENT
    elif (group, version, kind) in PROVIDER_FORCE_NEW:
        props += PROVIDER_FORCE_NEW[(group, version, kind)]
    elif group in ("", "core") and version == "v1" and kind == "ConfigMap":
        props += CONFIGMAP_CONTENT
    if immutable and kind in ("Secret", "ConfigMap"):
        props += [*SECRET_CONTENT, "binaryData"] if kind == "Secret" else CONFIGMAP_CONTENT
    return tuple(dict.fromkeys(props))


def kubernetes_immutable(
    kind: str, path: Path, before: Mapping[str, Any], after: Mapping[str, Any]
) -> str | None:
    """Why the API server refuses an in-place update of `path`, or None."""
    text = format_path(path)
    if (
        kind == "StatefulSet"
        and path[:1] == ("spec",)
        and not any(_prefix_match(parse_path(m), path) for m in _STATEFULSET_MUTABLE)
    ):
        return (
            f"StatefulSet {text} cannot be updated in place (Kubernetes allows only "
            "replicas, ordinals, template, updateStrategy, revisionHistoryLimit, "
            "persistentVolumeClaimRetentionPolicy and minReadySeconds)"
        )
    if (
        kind in ("ConfigMap", "Secret")
        and before.get("immutable") is True
        and path[:1] in (("data",), ("binaryData",), ("stringData",), ("immutable",))
    ):
        return f"{kind} is immutable (immutable: true): {text} cannot change"
    if kind == "PersistentVolumeClaim" and path[:3] == ("spec", "resources", "requests"):
        old = _quantity(_get(before, ("spec", "resources", "requests", "storage")))
        new = _quantity(_get(after, ("spec", "resources", "requests", "storage")))
        if old is not None and new is not None and new < old:
            return "PersistentVolumeClaim storage can grow but never shrink"
    for pattern in KUBERNETES_IMMUTABLE.get(kind, ()):
        if covers(pattern, path):
            return f"{kind} {pattern} is immutable in Kubernetes"
    return None


def _get(obj: Any, path: Iterable[str | int]) -> Any:
    for part in path:
        if isinstance(obj, Mapping) and isinstance(part, str):
            obj = obj.get(part)
        elif isinstance(obj, list) and isinstance(part, int) and part < len(obj):
            obj = obj[part]
        else:
            return None
    return obj


_SUFFIX = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9,
    "T": 1e12, "P": 1e15, "E": 1e18,
}  # fmt: skip


def _quantity(value: Any) -> float | None:
    """A Kubernetes quantity in base units (apimachinery resource/quantity.go suffixes)."""
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkKMGTPE]?)", str(value or ""))
    if not match:
        return None
    return float(match.group(1)) * _SUFFIX[match.group(2)]
