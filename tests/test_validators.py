"""Rendered dev, staging, prod and a config using every optional feature pass the outside
validators: kubernetes-validate --strict (1.30 and 1.33), checkov with zero failures, promtool
check rules."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.render import stack as render_mod
from tests.conftest import PROD_IMAGE, base_raw
from tests.renders import Renders
from tests.tooling import SHIPPED_STACKS, run_tool
from tests.validators import (
    KUBERNETES_VERSIONS,
    CheckovServer,
    RenderedTree,
    ValidatorBatch,
    builtin_manifests,
    checkov,
    kubernetes_validate,
    render_set,
)

pytestmark = pytest.mark.slow

# Every checkov skip the rendered stacks may carry: (check, kind) -> why it is acceptable.
ALLOWED_CHECKOV_SKIPS = {
    ("CKV_K8S_43", "Deployment"): "image pinned by an immutable tag from config",
    ("CKV_K8S_43", "StatefulSet"): "jenkins image pinned by an immutable LTS tag",
    (
        "CKV_K8S_38",
        "StatefulSet",
    ): "the Jenkins controller calls the Kubernetes API: it mounts its token",
}


def everything_raw() -> dict[str, object]:
    """prod with two apps and every optional feature on."""
    raw = base_raw(
        "prod",
        ingress={"enabled": True, "host": "shop.example.com", "tlsSecretName": "shop-tls"},
        service={"sessionAffinity": {"enabled": True}},
        autoscaling={"requestsPerSecond": 40},
        egress=[
            {"app": "api", "ports": [{"port": 8080}]},
            {"cidrs": ["198.51.100.0/24"], "ports": [{"port": 5432}]},
            {"namespace": "payments", "ports": [{"port": 443}]},
        ],
        env={"FEATURE_X": "on"},
        # issue 32: node placement, so kubernetes-validate and checkov judge the rendered fields
        nodeSelector={"appstack.io/pool": "apps", "kubernetes.io/arch": "amd64"},
        tolerations=[
            {"key": "appstack.io/dedicated", "value": "apps", "effect": "NoSchedule"},
            {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        ],
        # issue 32: the app's data claim (prod's rules: ReadWriteMany, protected)
        volume={
            "size": "2Gi",
            "storageClassName": "shared-files",
            "mountPath": "/var/lib/web",
            "accessMode": "ReadWriteMany",
            "protect": True,
        },
    )
    raw["apps"]["api"] = {  # type: ignore[index]
        "image": PROD_IMAGE,
        "service": {"type": "ClusterIP"},
        "pdb": {"minAvailable": 1},
    }
    raw["secrets"] = {"web": {"API_TOKEN": "x"}}
    raw["monitoring"] = {"enabled": True}
    return raw


SET = "stacks"


@render_set(SET)
def write_stacks(root: Path, renders: Renders) -> None:
    """Every shipped stack (dev, staging, prod) and the config with every optional feature, as
    `stackctl render` writes them."""
    for stack in SHIPPED_STACKS:
        render_mod.write(renders.stack(stack), root / stack)
    render_mod.write(renders.config(everything_raw(), "everything"), root / "everything")


@pytest.fixture(scope="module")
def rendered(rendered_tree: RenderedTree) -> Path:
    return rendered_tree / SET


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_stacks_are_schema_valid(
    rendered: Path, batch: ValidatorBatch, version: str
) -> None:
    files = builtin_manifests(rendered)
    assert len(files) > 30
    run = batch.schema(version)
    assert set(files) <= set(run.files)
    assert run.problems(files) == ""


def dev_deployment(rendered: Path) -> dict[str, Any]:
    """The rendered dev stack's Deployment `web`, parsed (a base for deliberately bad copies)."""
    doc: dict[str, Any] = yaml.safe_load(
        next(rendered.glob("dev/*/deployment-web.yaml")).read_text()
    )
    return doc


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_parsing_once_reports_what_its_command_line_reports(
    rendered: Path, tmp_path: Path, version: str
) -> None:
    files = builtin_manifests(rendered / "dev")[:4]
    deployment = dev_deployment(rendered)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    unknown_field = copy.deepcopy(deployment)
    unknown_field["spec"]["unknownField"] = True  # an error only under --strict
    no_schema = {**deployment, "kind": "Nothing"}
    for name, doc in {"type": wrong_type, "unknown": unknown_field, "none": no_schema}.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc))
        files.append(tmp_path / f"{name}.yaml")
    once = kubernetes_validate(files, version)
    assert once == kubernetes_validate(files, version, parse_once=False)
    assert once[0] == 1, once
    assert "type.yaml did not validate" in once[1] and "unknown.yaml did not validate" in once[1]
    assert "none.yaml" in once[1] and "deployment-web.yaml" not in once[1], once


def test_the_checkov_server_reports_what_its_command_line_reports(
    rendered: Path, tmp_path: Path, checkov_server: Callable[[], CheckovServer]
) -> None:
    shutil.copytree(rendered / "dev", tmp_path / "dev")
    deployment = dev_deployment(rendered)
    pod = deployment["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"] = {"privileged": True}
    (tmp_path / "privileged.yaml").write_text(yaml.safe_dump(deployment))
    served = checkov_server().scan(tmp_path).result()
    assert served.in_order() == checkov(tmp_path).in_order()
    failed = {(f.check_id, Path(f.file).name) for f in served.failed}
    assert {("CKV_K8S_16", "privileged.yaml"), ("CKV_K8S_19", "privileged.yaml")} <= failed
    assert served.skipped and served.passed > 100


def test_rendered_stacks_have_zero_failed_checkov_checks(batch: ValidatorBatch) -> None:
    report = batch.checkov(SET)
    assert report.parsing_errors == []
    assert report.failed == [], "\n".join(
        f"{f.check_id} {f.resource} {f.file}" for f in report.failed
    )
    assert report.passed > 100


def test_checkov_skips_are_only_the_listed_ones_each_with_a_reason(
    batch: ValidatorBatch,
) -> None:
    report = batch.checkov(SET)
    for finding in report.skipped:
        kind = finding.resource.split(".")[0]
        assert (finding.check_id, kind) in ALLOWED_CHECKOV_SKIPS, finding
        assert len(finding.reason) > 20, finding


def test_rendered_prometheus_rules_pass_promtool(rendered: Path, tmp_path: Path) -> None:
    rules = sorted(rendered.rglob("prometheusrule-*.yaml"))
    # monitoring is on in staging and prod (and the config with every feature), off in dev
    assert {p.parent.parent.name for p in rules} == {"staging", "prod", "everything"}
    for path in rules:
        groups = yaml.safe_load(path.read_text())["spec"]["groups"]
        target = tmp_path / f"{path.parent.parent.name}-{path.stem}.rules.yaml"
        target.write_text(yaml.safe_dump({"groups": groups}))
        proc = run_tool("promtool", "check", "rules", str(target))
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_service_monitor_selects_the_metrics_service_port(rendered: Path) -> None:
    monitor = yaml.safe_load((rendered / "prod/appstack/servicemonitor-web.yaml").read_text())
    service = yaml.safe_load((rendered / "prod/appstack/service-web-metrics.yaml").read_text())
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
