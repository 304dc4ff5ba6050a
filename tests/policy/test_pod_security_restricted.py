"""pod-security-restricted: Pod Security Standards "restricted" plus SECURITY.md pod rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policy.rules import RuleContext, environments, evaluate, template_of
from tests.policy.factory import (
    Obj,
    compliant_stack,
    deployment,
    find,
    messages,
    mutated,
    rbac_objects,
    run_rule,
    web,
    web_pod,
)

RULE = "pod-security-restricted"
POD = "spec.template.spec"
WEB = f"{POD}.containers[web]"


def test_compliant_stack_passes_in_every_environment() -> None:
    for env in environments():
        assert run_rule(compliant_stack(), RULE, env) == []


def _set(path: list[str], value: object) -> Callable[[list[Obj]], None]:
    def mutate(objects: list[Obj]) -> None:
        node: Obj = web(objects)
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return mutate


def _pod_set(path: list[str], value: object) -> Callable[[list[Obj]], None]:
    def mutate(objects: list[Obj]) -> None:
        node: Obj = web_pod(objects)
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return mutate


def _pod_del(*path: str) -> Callable[[list[Obj]], None]:
    def mutate(objects: list[Obj]) -> None:
        node: Obj = web_pod(objects)
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _del(*path: str) -> Callable[[list[Obj]], None]:
    def mutate(objects: list[Obj]) -> None:
        node: Obj = web(objects)
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _add_volume(volume: Obj) -> Callable[[list[Obj]], None]:
    def mutate(objects: list[Obj]) -> None:
        web_pod(objects)["volumes"].append(volume)

    return mutate


def _namespace(value: str | None) -> Callable[[list[Obj]], None]:
    def mutate(objects: list[Obj]) -> None:
        meta = find(objects, "Deployment")["metadata"]
        if value is None:
            del meta["namespace"]
        else:
            meta["namespace"] = value

    return mutate


CASES = [
    pytest.param(
        _pod_set(["securityContext", "runAsUser"], 1000),
        f"{POD}.securityContext.runAsUser",
        id="a pod running as uid 1000",
    ),
    pytest.param(
        _set(["securityContext", "runAsUser"], 1000),
        f"{WEB}.securityContext.runAsUser",
        id="a container overriding the pod uid with 1000",
    ),
    pytest.param(
        _pod_del("securityContext", "runAsUser"),
        f"{WEB}.securityContext.runAsUser is unset",
        id="no uid at all (image default user)",
    ),
    pytest.param(
        _pod_set(["securityContext", "runAsGroup"], 0),
        f"{POD}.securityContext.runAsGroup",
        id="a pod running with gid 0",
    ),
    pytest.param(
        _set(["securityContext", "runAsNonRoot"], False),
        f"{WEB}.securityContext.runAsNonRoot",
        id="a container overriding runAsNonRoot with false",
    ),
    pytest.param(
        lambda objects: (
            _pod_del("securityContext", "runAsNonRoot")(objects),
            _del("securityContext", "runAsNonRoot")(objects),
        ),
        f"{WEB}.securityContext.runAsNonRoot is unset",
        id="runAsNonRoot unset",
    ),
    pytest.param(
        _set(["securityContext", "capabilities", "drop"], ["NET_RAW"]),
        f"{WEB}.securityContext.capabilities.drop",
        id="capabilities not dropping ALL",
    ),
    pytest.param(
        _set(["securityContext", "capabilities", "add"], ["SYS_ADMIN"]),
        f"{WEB}.securityContext.capabilities.add",
        id="a capability other than NET_BIND_SERVICE added",
    ),
    pytest.param(
        _set(["securityContext", "privileged"], True),
        f"{WEB}.securityContext.privileged",
        id="a privileged container",
    ),
    pytest.param(
        _set(["securityContext", "allowPrivilegeEscalation"], True),
        f"{WEB}.securityContext.allowPrivilegeEscalation",
        id="privilege escalation allowed",
    ),
    pytest.param(
        _del("securityContext", "allowPrivilegeEscalation"),
        f"{WEB}.securityContext.allowPrivilegeEscalation is unset",
        id="allowPrivilegeEscalation not explicitly false",
    ),
    pytest.param(
        _set(["securityContext", "readOnlyRootFilesystem"], False),
        f"{WEB}.securityContext.readOnlyRootFilesystem",
        id="a writable root filesystem",
    ),
    pytest.param(
        _pod_del("securityContext", "seccompProfile"),
        f"{WEB}.securityContext.seccompProfile.type is unset",
        id="no seccomp profile",
    ),
    pytest.param(
        _set(["securityContext", "seccompProfile"], {"type": "Unconfined"}),
        f'{WEB}.securityContext.seccompProfile.type is "Unconfined"',
        id="an unconfined seccomp profile",
    ),
    pytest.param(
        _set(["securityContext", "procMount"], "Unmasked"),
        f"{WEB}.securityContext.procMount",
        id="an unmasked /proc",
    ),
    pytest.param(
        _set(["securityContext", "appArmorProfile"], {"type": "Unconfined"}),
        f"{WEB}.securityContext.appArmorProfile.type",
        id="an unconfined AppArmor profile",
    ),
    pytest.param(
        _set(["securityContext", "seLinuxOptions"], {"user": "system_u"}),
        f"{WEB}.securityContext.seLinuxOptions.user",
        id="a custom SELinux user",
    ),
    pytest.param(
        _pod_set(["securityContext", "sysctls"], [{"name": "kernel.msgmax", "value": "1"}]),
        f"{POD}.securityContext.sysctls",
        id="an unsafe sysctl",
    ),
    pytest.param(
        _pod_set(["hostNetwork"], True),
        f"{POD}.hostNetwork",
        id="host network",
    ),
    pytest.param(_pod_set(["hostPID"], True), f"{POD}.hostPID", id="host PID namespace"),
    pytest.param(_pod_set(["hostIPC"], True), f"{POD}.hostIPC", id="host IPC namespace"),
    pytest.param(
        _set(["ports"], [{"name": "http", "containerPort": 8080, "hostPort": 80}]),
        f"{WEB}.ports[http].hostPort",
        id="a hostPort",
    ),
    pytest.param(
        _add_volume({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}),
        f"{POD}.volumes[docker].hostPath",
        id="a hostPath volume",
    ),
    pytest.param(
        _add_volume({"name": "share", "nfs": {"server": "nfs", "path": "/"}}),
        f"{POD}.volumes[share].nfs",
        id="an nfs volume (not an allowed type)",
    ),
    pytest.param(
        _pod_set(["serviceAccountName"], "default"),
        f'{POD}.serviceAccountName is "default"',
        id="the default ServiceAccount",
    ),
    pytest.param(
        _pod_del("serviceAccountName"),
        f"{POD}.serviceAccountName is unset",
        id="no ServiceAccount",
    ),
    pytest.param(
        _pod_set(["automountServiceAccountToken"], True),
        f"{POD}.automountServiceAccountToken is true",
        id="an SA token mounted for an unbound ServiceAccount",
    ),
    pytest.param(
        _namespace("default"),
        'metadata.namespace is "default"',
        id="a workload in the default namespace",
    ),
    pytest.param(
        _namespace(None),
        "metadata.namespace is unset",
        id="a workload without a namespace",
    ),
]


@pytest.mark.parametrize(("mutate", "path"), CASES)
def test_violation(mutate: Callable[[list[Obj]], None], path: str) -> None:
    objects = mutated(compliant_stack())
    mutate(objects)
    found = run_rule(objects, RULE)
    naming = [v for v in found if path in v.message]
    assert naming, f"no violation names {path}: {[v.message for v in found]}"
    assert all(v.rule == RULE for v in found)


def test_message_names_object_path_value_and_allowed() -> None:
    objects = mutated(compliant_stack())
    web(objects)["securityContext"]["runAsUser"] = 1000
    [violation] = run_rule(objects, RULE)
    assert violation.obj == "Deployment/apps/web"
    assert violation.message == (
        "spec.template.spec.containers[web].securityContext.runAsUser is 1000; it must be an "
        "integer >= 10000 (pod or container level; the container value overrides the pod's)"
    )


def test_container_uid_overrides_a_bad_pod_uid() -> None:
    objects = mutated(compliant_stack())
    web_pod(objects)["securityContext"]["runAsUser"] = 0
    web(objects)["securityContext"]["runAsUser"] = 20000
    assert run_rule(objects, RULE) == []


def test_init_containers_are_checked_too() -> None:
    objects = mutated(compliant_stack())
    init = web(objects) | {"name": "migrate"}
    init["securityContext"] = dict(init["securityContext"], allowPrivilegeEscalation=True)
    web_pod(objects)["initContainers"] = [init]
    [msg] = messages(objects, RULE)
    assert (
        "spec.template.spec.initContainers[migrate].securityContext.allowPrivilegeEscalation"
        in (msg)
    )


def test_net_bind_service_may_be_added() -> None:
    objects = mutated(compliant_stack())
    web(objects)["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert run_rule(objects, RULE) == []


def test_localhost_seccomp_is_allowed() -> None:
    objects = mutated(compliant_stack())
    web_pod(objects)["securityContext"]["seccompProfile"] = {
        "type": "Localhost",
        "localhostProfile": "profiles/web.json",
    }
    assert run_rule(objects, RULE) == []


def test_sa_token_allowed_when_the_service_account_is_bound_to_a_role() -> None:
    objects = mutated(compliant_stack()) + rbac_objects()
    pod = web_pod(objects)
    pod["automountServiceAccountToken"] = True
    pod["serviceAccountName"] = "jenkins"
    find(objects, "Deployment")["metadata"]["namespace"] = "ci"
    assert run_rule(objects, RULE) == []


def test_sa_token_unset_on_pod_is_fine_when_the_service_account_disables_it() -> None:
    objects = mutated(compliant_stack())
    del web_pod(objects)["automountServiceAccountToken"]
    assert run_rule(objects, RULE) == []
    find(objects, "ServiceAccount", "web")["automountServiceAccountToken"] = True
    assert any("automountServiceAccountToken is unset" in m for m in messages(objects, RULE))


POD_TEMPLATE_PATHS = {
    "StatefulSet": ("apps/v1", "spec.template"),
    "DaemonSet": ("apps/v1", "spec.template"),
    "ReplicaSet": ("apps/v1", "spec.template"),
    "Job": ("batch/v1", "spec.template"),
    "CronJob": ("batch/v1", "spec.jobTemplate.spec.template"),
    "Rollout": ("argoproj.io/v1alpha1", "spec.template"),
}


@pytest.mark.parametrize("kind", sorted(POD_TEMPLATE_PATHS))
def test_pod_templates_are_found_in_every_workload_kind(kind: str) -> None:
    api_version, prefix = POD_TEMPLATE_PATHS[kind]
    template = deployment()["spec"]["template"]
    template["spec"]["containers"][0]["securityContext"]["runAsUser"] = 1000
    spec: Obj = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
    obj = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "w", "namespace": "apps"},
        "spec": spec,
    }
    assert template_of(obj) is not None
    found = evaluate([obj], RuleContext("prod"))
    uid = [v for v in found if v.rule == RULE and "runAsUser" in v.message]
    assert uid[0].obj == f"{kind}/apps/w"
    assert uid[0].message.startswith(f"{prefix}.spec.containers[web].securityContext.runAsUser")


def test_a_bare_pod_uses_top_level_paths() -> None:
    spec = deployment()["spec"]["template"]["spec"]
    spec["hostNetwork"] = True
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"}}
    pod["spec"] = spec
    assert "spec.hostNetwork is true; it must be false or unset" in messages([pod], RULE)


def test_a_rollout_with_another_api_group_is_not_a_pod_template() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Rollout", "metadata": {"name": "x"}}
    obj["spec"] = {"template": deployment()["spec"]["template"]}
    assert template_of(obj) is None
