"""Rendered Jenkins objects pass the outside validators: kubernetes-validate --strict (1.30 and
1.33) for every built-in object and for the agent pods inside the JCasC document, and checkov
with zero failed checks; the only checkov skips are the listed ones, each an inline annotation
with a reason."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config as config_model
from stackctl import render as render_mod
from tests.jenkins.helpers import NAMESPACE, agent_pods, jenkins_raw, with_monitoring
from tests.validators import (
    KUBERNETES_VERSIONS,
    CheckovReport,
    builtin_manifests,
    checkov,
    kubernetes_validate,
)

pytestmark = pytest.mark.slow

DIGEST = "sha256:" + "b" * 64

#: Every checkov skip a Jenkins object may carry: (check, resource) -> why.
ALLOWED_JENKINS_SKIPS = {
    ("CKV_K8S_38", "StatefulSet.jenkins.jenkins"): "the controller calls the Kubernetes API",
    ("CKV_K8S_43", "StatefulSet.jenkins.jenkins"): "image pinned by an immutable LTS tag",
}

CONFIGS: dict[str, dict[str, Any]] = {
    "dev-default": jenkins_raw("dev"),
    "prod-everything": with_monitoring(
        jenkins_raw(
            "prod",
            service={"type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24"]},
            ingress={"enabled": True, "host": "ci.example.com", "tlsSecretName": "ci-tls"},
            home={"storageClassName": "fast-ssd"},
            agentEgressCidrs=["198.51.100.0/24"],
            pluginSiteCidrs=["198.51.100.10/32"],
        )
    ),
    "prod-digest-existing-secret": jenkins_raw(
        "prod",
        image=f"jenkins/jenkins@{DIGEST}",
        admin={"existingSecret": "ci-admin"},
    ),
}


def _agent_pod_files(result: render_mod.RenderResult, root: Path) -> list[Path]:
    """The agent templates' pods as standalone Pod manifests (named, namespaced)."""
    files = []
    for name, pod in agent_pods(result).items():
        pod = dict(pod)
        pod["metadata"] = {**pod["metadata"], "name": f"agent-{name}", "namespace": NAMESPACE}
        path = root / f"pod-agent-{name}.yaml"
        path.write_text(yaml.safe_dump(pod))
        files.append(path)
    return files


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("jenkins-rendered")
    dirs = {}
    for label, raw in CONFIGS.items():
        result = render_mod.render_config(config_model.load(raw), label)
        render_mod.write(result, root / label)
        agents = root / f"{label}-agents"
        agents.mkdir()
        _agent_pod_files(result, agents)
        dirs[label] = root / label
        dirs[f"{label}-agents"] = agents
    for stack in ("dev", "prod"):
        render_mod.write(render_mod.render_stack(stack), root / f"stack-{stack}")
        dirs[f"stack-{stack}"] = root / f"stack-{stack}"
    return dirs


@cache
def _checkov(directory: Path) -> CheckovReport:
    return checkov(directory)


def _jenkins_files(directory: Path) -> list[Path]:
    return [p for p in builtin_manifests(directory) if p.parent.name in (NAMESPACE, "_cluster")]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_jenkins_objects_and_agent_pods_are_schema_valid(
    rendered: dict[str, Path], version: str
) -> None:
    files: list[Path] = []
    for label, directory in rendered.items():
        files += (
            sorted(directory.glob("*.yaml"))
            if label.endswith("-agents")
            else builtin_manifests(directory)
        )
    kinds = {yaml.safe_load(f.read_text())["kind"] for f in files}
    assert {"StatefulSet", "PersistentVolumeClaim", "Role", "RoleBinding", "Pod"} <= kinds
    code, output = kubernetes_validate(files, version)
    assert code == 0, output


def test_the_prod_stack_renders_jenkins(rendered: dict[str, Path]) -> None:
    names = {p.name for p in _jenkins_files(rendered["stack-prod"])}
    assert {"statefulset-jenkins.yaml", "persistentvolumeclaim-jenkins-home.yaml"} <= names


@pytest.mark.parametrize("label", [*CONFIGS, "stack-dev", "stack-prod"])
def test_zero_failed_checkov_checks(rendered: dict[str, Path], label: str) -> None:
    report = _checkov(rendered[label])
    assert report.parsing_errors == []
    assert report.failed == [], "\n".join(
        f"{f.check_id} {f.resource} {f.file}" for f in report.failed
    )


@pytest.mark.parametrize("label", [*CONFIGS, "stack-prod"])
def test_jenkins_checkov_skips_are_exactly_the_listed_ones(
    rendered: dict[str, Path], label: str
) -> None:
    report = _checkov(rendered[label])
    skipped = {
        (f.check_id, f.resource): f.reason for f in report.skipped if f"/{NAMESPACE}/" in f.file
    }
    expected = dict(ALLOWED_JENKINS_SKIPS)
    if "digest" in label:
        del expected[("CKV_K8S_43", "StatefulSet.jenkins.jenkins")]
    assert set(skipped) == set(expected)
    for key, reason in skipped.items():
        assert expected[key].split()[0] in reason and len(reason) > 40, (key, reason)
