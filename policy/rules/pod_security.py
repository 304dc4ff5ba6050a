"""Pod Security Standards "restricted" plus the SECURITY.md pod rules (rule
`pod-security-restricted`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policy.rules.base import (
    Container,
    Objects,
    PodTemplate,
    RuleContext,
    Violation,
    as_list,
    as_map,
    containers,
    is_int,
    name_of,
    namespace_of,
    object_id,
    of_kind,
    pod_templates,
    show,
)

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


def _bound_service_accounts(objects: Objects) -> set[tuple[str, str]]:
    """(namespace, name) of every ServiceAccount bound by a RoleBinding/ClusterRoleBinding."""
    bound: set[tuple[str, str]] = set()
    for binding in of_kind(objects, "RoleBinding", "ClusterRoleBinding"):
        role_ref = as_map(binding.get("roleRef"))
        if role_ref.get("kind") not in ("Role", "ClusterRole"):
            continue
        for raw in as_list(binding.get("subjects")):
            subject = as_map(raw)
            if subject.get("kind") != "ServiceAccount":
                continue
            ns = subject.get("namespace") or namespace_of(binding)
            if ns and subject.get("name"):
                bound.add((str(ns), str(subject["name"])))
    return bound


def _service_account_automount(objects: Objects, ns: str, name: str) -> Any:
    for sa in of_kind(objects, "ServiceAccount"):
        if namespace_of(sa) == ns and name_of(sa) == name:
            return sa.get("automountServiceAccountToken")
    return None


def _check_pod_level(
    template: PodTemplate, objects: Objects, bound: set[tuple[str, str]]
) -> Iterator[str]:
    owner = template.owner
    spec = template.spec
    ns = namespace_of(owner)
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

    for index, raw in enumerate(as_list(spec.get("volumes"))):
        volume = as_map(raw)
        label = volume.get("name") or index
        types = [key for key in volume if key != "name"]
        for vtype in types:
            if vtype not in ALLOWED_VOLUME_TYPES:
                allowed = ", ".join(sorted(ALLOWED_VOLUME_TYPES))
                yield (
                    f"{template.path(f'spec.volumes[{label}].{vtype}')} is a {vtype} volume; "
                    f"allowed volume types: {allowed}"
                )

    pod_sc = as_map(spec.get("securityContext"))
    for raw in as_list(pod_sc.get("sysctls")):
        sysctl = as_map(raw)
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield (
                f"{template.path('spec.securityContext.sysctls')} sets "
                f"{show(sysctl.get('name'))}; only the Pod Security Standards safe sysctls "
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
                f"{automount_path} is {show(automount)}; it must be false unless the "
                f"ServiceAccount {sa_key[1]} is bound to a Role/ClusterRole in this object set"
            )


def _check_container(template: PodTemplate, container: Container) -> Iterator[str]:
    c = container.spec
    path = container.path
    sc = as_map(c.get("securityContext"))
    pod_sc = as_map(template.spec.get("securityContext"))
    sc_path = f"{path}.securityContext"

    for index, raw in enumerate(as_list(c.get("ports"))):
        port = as_map(raw)
        host_port = port.get("hostPort")
        if host_port not in (None, 0):
            label = port.get("name") or index
            yield f"{path}.ports[{label}].hostPort is {show(host_port)}; hostPort is not allowed"

    if sc.get("privileged") is True:
        yield f"{sc_path}.privileged is true; it must be false"
    if sc.get("allowPrivilegeEscalation") is not False:
        yield (
            f"{sc_path}.allowPrivilegeEscalation is {show(sc.get('allowPrivilegeEscalation'))}; "
            "it must be false on every container and initContainer"
        )
    if sc.get("procMount") not in (None, "Default"):
        yield f"{sc_path}.procMount is {show(sc.get('procMount'))}; only Default is allowed"

    # Fields a container inherits from the pod securityContext when unset.
    def effective(field: str) -> tuple[Any, str]:
        if field in sc and sc[field] is not None:
            return sc[field], f"{sc_path}.{field}"
        if field in pod_sc and pod_sc[field] is not None:
            return pod_sc[field], template.path(f"spec.securityContext.{field}")
        return None, f"{sc_path}.{field}"

    run_as_non_root, where = effective("runAsNonRoot")
    if run_as_non_root is not True:
        yield f"{where} is {show(run_as_non_root)}; it must be true (pod or container level)"
    for field in ("runAsUser", "runAsGroup"):
        value, where = effective(field)
        if not is_int(value) or value < MIN_ID:
            yield (
                f"{where} is {show(value)}; it must be an integer >= {MIN_ID} "
                "(pod or container level; the container value overrides the pod's)"
            )

    seccomp, where = effective("seccompProfile")
    seccomp_type = as_map(seccomp).get("type") if seccomp is not None else None
    if seccomp_type not in ALLOWED_SECCOMP_TYPES:
        yield (
            f"{where}.type is {show(seccomp_type)}; it must be RuntimeDefault or Localhost "
            "(pod or container level)"
        )
    apparmor, where = effective("appArmorProfile")
    if as_map(apparmor).get("type") == "Unconfined":
        yield f'{where}.type is "Unconfined"; it must be RuntimeDefault or Localhost'
    selinux, where = effective("seLinuxOptions")
    for field in ("user", "role"):
        if as_map(selinux).get(field):
            yield f"{where}.{field} is {show(as_map(selinux)[field])}; it must be unset"

    caps = as_map(sc.get("capabilities"))
    drop = [str(x) for x in as_list(caps.get("drop"))]
    if "ALL" not in drop:
        yield f"{sc_path}.capabilities.drop is {show(drop or None)}; it must contain ALL"
    added = [str(x) for x in as_list(caps.get("add"))]
    extra = [cap for cap in added if cap not in ALLOWED_ADD_CAPABILITIES]
    if extra:
        yield (
            f"{sc_path}.capabilities.add is {show(added)}; only NET_BIND_SERVICE may be added "
            f"(not {', '.join(extra)})"
        )
    if sc.get("readOnlyRootFilesystem") is not True:
        yield (
            f"{sc_path}.readOnlyRootFilesystem is {show(sc.get('readOnlyRootFilesystem'))}; it "
            "must be true (mount an emptyDir for writable paths)"
        )


def check_pod_security_restricted(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """Pod Security Standards "restricted" plus SECURITY.md pod rules, for every pod template."""
    rule = "pod-security-restricted"
    bound = _bound_service_accounts(objects)
    out: list[Violation] = []
    for template in pod_templates(objects):
        oid = object_id(template.owner)
        for message in _check_pod_level(template, objects, bound):
            out.append(Violation(rule, oid, message))
        for container in containers(template):
            for message in _check_container(template, container):
                out.append(Violation(rule, oid, message))
    return out
