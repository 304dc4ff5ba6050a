"""The Pod Security Standards "restricted" profile, built once and used by every pod
(apps, the Jenkins controller, agent templates). Nothing here is configurable except identity:
non-root, UID/GID >= 10000, seccomp RuntimeDefault, no privilege escalation, all capabilities
dropped, read-only root filesystem.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

RUNTIME_DEFAULT = k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")


def pod_security_context(
    run_as_user: int, run_as_group: int, fs_group: int | None = None
) -> k8s.core.v1.PodSecurityContextArgs:
    """Pod-level restricted context."""
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=run_as_user,
        run_as_group=run_as_group,
        fs_group=fs_group,
        fs_group_change_policy="OnRootMismatch" if fs_group is not None else None,
        seccomp_profile=RUNTIME_DEFAULT,
    )


def container_security_context(
    run_as_user: int, run_as_group: int
) -> k8s.core.v1.SecurityContextArgs:
    """Container-level restricted context (repeated at container level for scanners)."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=run_as_user,
        run_as_group=run_as_group,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=RUNTIME_DEFAULT,
    )


def restricted_pod_security_dict(
    run_as_user: int, run_as_group: int, fs_group: int
) -> dict[str, object]:
    """The pod-level context as a plain manifest dict (for pod templates inside JCasC YAML)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_group,
        "fsGroup": fs_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security_dict(run_as_user: int, run_as_group: int) -> dict[str, object]:
    """The container-level context as a plain manifest dict."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_group,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
