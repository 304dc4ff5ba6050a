"""Rendered Jenkins objects pass the outside validators: kubernetes-validate --strict (1.30 and
1.33) for every built-in object and for the agent pods inside the JCasC document, and checkov
with zero failed checks; the only checkov skips are the listed ones, each an inline annotation
with a reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.render import stack as render_mod
from tests.jenkins.helpers import NAMESPACE, agent_pods, jenkins_raw, with_monitoring
from tests.renders import Renders
from tests.tooling import SHIPPED_STACKS, load_yaml
from tests.validators import (
    KUBERNETES_VERSIONS,
    CheckovReport,
    RenderedTree,
    ValidatorBatch,
    builtin_manifests,
    render_set,
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


SET = "jenkins"


@render_set(SET)
def write_jenkins_renders(root: Path, renders: Renders) -> list[Path]:
    """Each config and stack in its own folder, each scanned by checkov on its own."""
    scans = []
    for label, raw in CONFIGS.items():
        result = renders.config(raw, label)
        render_mod.write(result, root / label)
        scans.append(root / label)
        agents = root / f"{label}-agents"
        agents.mkdir()
        _agent_pod_files(result, agents)  # schema-validated only
    for stack in SHIPPED_STACKS:
        render_mod.write(renders.stack(stack), root / f"stack-{stack}")
        scans.append(root / f"stack-{stack}")
    return scans


@pytest.fixture(scope="module")
def rendered(rendered_tree: RenderedTree) -> dict[str, Path]:
    root = rendered_tree / SET
    return {path.name: path for path in sorted(root.iterdir())}


@pytest.fixture(scope="module")
def checkov_report(batch: ValidatorBatch) -> Callable[[str], CheckovReport]:
    """The checkov report on one labelled folder (each scanned on its own)."""
    return lambda label: batch.checkov(f"{SET}/{label}")


def _jenkins_files(directory: Path) -> list[Path]:
    return [p for p in builtin_manifests(directory) if p.parent.name in (NAMESPACE, "_cluster")]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_jenkins_objects_and_agent_pods_are_schema_valid(
    rendered: dict[str, Path], batch: ValidatorBatch, version: str
) -> None:
    files: list[Path] = []
    for label, directory in rendered.items():
        files += (
            sorted(directory.glob("*.yaml"))
            if label.endswith("-agents")
            else builtin_manifests(directory)
        )
    kinds = {load_yaml(f.read_text())["kind"] for f in files}
    assert {"StatefulSet", "PersistentVolumeClaim", "Role", "RoleBinding", "Pod"} <= kinds
    run = batch.schema(version)
    assert set(files) <= set(run.files)
    assert run.problems(files) == ""


def test_the_prod_stack_renders_jenkins(rendered: dict[str, Path]) -> None:
    names = {p.name for p in _jenkins_files(rendered["stack-prod"])}
    assert {"statefulset-jenkins.yaml", "persistentvolumeclaim-jenkins-home.yaml"} <= names


@pytest.mark.parametrize("label", [*CONFIGS, "stack-dev", "stack-prod"])
def test_zero_failed_checkov_checks(
    checkov_report: Callable[[str], CheckovReport], label: str
) -> None:
    report = checkov_report(label)
    assert report.parsing_errors == []
    assert report.failed == [], "\n".join(
        f"{f.check_id} {f.resource} {f.file}" for f in report.failed
    )


@pytest.mark.parametrize("label", [*CONFIGS, "stack-prod"])
def test_jenkins_checkov_skips_are_exactly_the_listed_ones(
    checkov_report: Callable[[str], CheckovReport], label: str
) -> None:
    report = checkov_report(label)
    skipped = {
        (f.check_id, f.resource): f.reason for f in report.skipped if f"/{NAMESPACE}/" in f.file
    }
    expected = dict(ALLOWED_JENKINS_SKIPS)
    if "digest" in label:
        del expected[("CKV_K8S_43", "StatefulSet.jenkins.jenkins")]
    assert set(skipped) == set(expected)
    for key, reason in skipped.items():
        assert expected[key].split()[0] in reason and len(reason) > 40, (key, reason)
