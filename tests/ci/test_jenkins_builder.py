"""The Jenkins `builder` agent (components/jenkins/builder.py): the pod template the Jenkinsfile's
Build image stage runs on, and the namespace whose Pod Security level is the least one that pod
passes, judged by the upstream Pod Security rules rather than by the module's own constant."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci.pipelines import JENKINSFILE, jenkins_stages
from tests.conftest import Render, find, one
from tests.jenkins.helpers import jenkins_raw, templates
from tests.validators import KUBERNETES_VERSIONS, kubernetes_validate

ON = jenkins_raw("prod", imageBuilder=True)
# Pod Security Standards (kubernetes/pod-security-admission policy/check_*.go), the checks a
# rootless builder could trip: baseline allows seccomp and AppArmor RuntimeDefault, Localhost or
# unset; restricted also needs no privilege escalation, ALL capabilities dropped, non-root.
BASELINE_PROFILES = {None, "RuntimeDefault", "Localhost"}


def baseline_violations(pod: dict[str, Any]) -> list[str]:
    spec = pod["spec"]
    found = []
    for c in spec["containers"]:
        ctx = c.get("securityContext") or {}
        if ctx.get("privileged"):
            found.append(f"{c['name']}: privileged")
        if (ctx.get("seccompProfile") or {}).get("type") not in BASELINE_PROFILES:
            found.append(f"{c['name']}: seccompProfile {ctx['seccompProfile']['type']}")
        if (ctx.get("appArmorProfile") or {}).get("type") not in BASELINE_PROFILES:
            found.append(f"{c['name']}: appArmorProfile {ctx['appArmorProfile']['type']}")
        if (ctx.get("capabilities") or {}).get("add"):
            found.append(f"{c['name']}: adds capabilities")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            found.append(key)
    if any("hostPath" in v for v in spec.get("volumes", [])):
        found.append("hostPath volume")
    return found


def restricted_violations(container: dict[str, Any]) -> list[str]:
    ctx = container.get("securityContext") or {}
    found = []
    if ctx.get("allowPrivilegeEscalation") is not False:
        found.append("allowPrivilegeEscalation")
    if (ctx.get("capabilities") or {}).get("drop") != ["ALL"]:
        found.append("capabilities")
    if ctx.get("runAsNonRoot") is not True:
        found.append("runAsNonRoot")
    return found


def builder(result: Any) -> dict[str, Any]:
    return yaml.safe_load(templates(result)["builder"]["yaml"])


def test_off_unless_enabled(render: Render) -> None:
    result = render(jenkins_raw("prod"))
    assert "builder" not in templates(result)
    assert [
        n for n in find(result.objects, "Namespace") if "builder" in n["metadata"]["name"]
    ] == []


def test_namespace_is_the_least_pod_security_level_the_builder_passes(render: Render) -> None:
    result = render(ON)
    template = templates(result)["builder"]
    pod = builder(result)
    violations = baseline_violations(pod)
    # rootless BuildKit needs exactly the two unconfined profiles: nothing else breaks baseline
    assert violations == [
        "buildkit: seccompProfile Unconfined",
        "buildkit: appArmorProfile Unconfined",
    ]
    least = "privileged" if violations else "baseline"
    ns = one(result.objects, "Namespace", template["namespace"])
    psa = {
        k.rsplit("/", 1)[1]: v for k, v in ns["metadata"]["labels"].items() if "pod-security" in k
    }
    assert psa["enforce"] == least
    assert psa["warn"] == psa["audit"] == "baseline"  # the exception stays visible
    assert (
        "seccompProfile Unconfined"
        in ns["metadata"]["annotations"]["appstack.io/pod-security-exception"]
    )
    # only builder agents live there; the Jenkins namespace itself stays restricted
    jenkins_ns = one(result.objects, "Namespace", "jenkins")
    assert jenkins_ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_only_the_buildkit_container_deviates(render: Render) -> None:
    pod = builder(render(ON))
    by_name = {c["name"]: c for c in pod["spec"]["containers"]}
    assert restricted_violations(by_name["jnlp"]) == []
    assert by_name["jnlp"]["securityContext"]["readOnlyRootFilesystem"] is True
    assert by_name["buildkit"]["securityContext"]["runAsNonRoot"] is True
    assert by_name["buildkit"]["securityContext"]["privileged"] is False
    assert pod["spec"]["automountServiceAccountToken"] is False
    env = {e["name"]: e["value"] for e in by_name["buildkit"]["env"]}
    assert env["BUILDKITD_FLAGS"] == "--oci-worker-no-process-sandbox"


def test_the_jenkinsfile_build_stage_matches_the_template(render: Render) -> None:
    stage = jenkins_stages(JENKINSFILE.read_text())["Build image"]
    template = templates(render(ON))["builder"]
    inherit = re.search(r"inheritFrom '([^']+)'", stage)
    container = re.search(r"defaultContainer '([^']+)'", stage)
    assert inherit and inherit.group(1) == template["name"]
    names = [c["name"] for c in yaml.safe_load(template["yaml"])["spec"]["containers"]]
    assert container and container.group(1) in names


def test_controller_may_manage_pods_there_and_agents_reach_the_controller(render: Render) -> None:
    result = render(ON)
    ns = templates(result)["builder"]["namespace"]
    roles = {r["metadata"]["namespace"]: r for r in find(result.objects, "Role")}
    assert roles[ns]["rules"] == roles["jenkins"]["rules"]  # the kubernetes plugin's verbs
    binding = next(
        b for b in find(result.objects, "RoleBinding") if b["metadata"]["namespace"] == ns
    )
    controller_sa = one(result.objects, "StatefulSet", "jenkins")["spec"]["template"]["spec"][
        "serviceAccountName"
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": controller_sa, "namespace": "jenkins"}
    ]
    policies = [
        p
        for p in find(result.objects, "NetworkPolicy")
        if p["metadata"]["name"] == "jenkins-builder"
    ]
    by_ns = {p["metadata"]["namespace"]: p["spec"] for p in policies}
    controller_labels = one(result.objects, "StatefulSet", "jenkins")["spec"]["selector"][
        "matchLabels"
    ]
    egress = by_ns[ns]["egress"]
    assert egress[0]["to"][0]["podSelector"]["matchLabels"] == controller_labels
    assert egress[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    ingress = by_ns["jenkins"]
    assert ingress["podSelector"]["matchLabels"] == controller_labels
    peer = ingress["ingress"][0]["from"][0]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": ns}
    default_deny = [
        p for p in find(result.objects, "NetworkPolicy") if p["metadata"]["namespace"] == ns
    ]
    assert any(p["spec"]["podSelector"] == {} for p in default_deny)


@pytest.mark.slow
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_builder_pod_is_schema_valid(render: Render, tmp_path: Path, version: str) -> None:
    pod = builder(render(ON))
    pod["metadata"] = {**pod["metadata"], "name": "builder", "namespace": "jenkins-builder"}
    path = tmp_path / "pod-builder.yaml"
    path.write_text(yaml.safe_dump(pod))
    code, output = kubernetes_validate([path], version)
    assert code == 0, output
