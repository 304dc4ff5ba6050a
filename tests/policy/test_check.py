"""`stackctl check`: levels, exit semantics and the report text."""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from stackctl import cli
from stackctl.check import check_objects
from tests.policy.factory import compliant_stack, mutated, web

UID_MSG = (
    "spec.template.spec.containers[web].securityContext.runAsUser is 1000; it must be an integer "
    ">= 10000 (pod or container level; the container value overrides the pod's)"
)


def bad_uid_stack() -> list[dict[str, Any]]:
    objects = mutated(compliant_stack())
    web(objects)["securityContext"]["runAsUser"] = 1000
    return objects


def test_a_compliant_stack_passes_in_prod() -> None:
    report = check_objects(compliant_stack(), "prod")
    assert report.findings == ()
    assert report.exit_code == 0
    assert report.render_text() == "0 mandatory, 0 advisory violations over 8 objects\n"


def test_a_violation_is_mandatory_in_prod_and_fails() -> None:
    report = check_objects(bad_uid_stack(), "prod")
    assert report.failed and report.exit_code == 1
    assert report.render_text() == (
        f"MANDATORY  pod-security-restricted  Deployment/apps/web: {UID_MSG}\n"
        "1 mandatory, 0 advisory violations over 8 objects\n"
    )


def test_the_same_violation_is_advisory_in_dev_and_passes() -> None:
    report = check_objects(bad_uid_stack(), "dev")
    assert not report.failed and report.exit_code == 0
    assert report.render_text() == (
        f"ADVISORY   pod-security-restricted  Deployment/apps/web: {UID_MSG}\n"
        "0 mandatory, 1 advisory violations over 8 objects\n"
    )


def test_disabled_rules_do_not_run_and_mandatory_findings_come_first() -> None:
    objects = bad_uid_stack()
    del web(objects)["livenessProbe"]
    levels: dict[str, Any] = {
        "pod-security-restricted": "advisory",
        "probes": "mandatory",
    }
    report = check_objects(objects, "prod", levels)
    assert [(f.level, f.violation.rule) for f in report.findings] == [
        ("mandatory", "probes"),
        ("advisory", "pod-security-restricted"),
    ]
    levels["probes"] = "disabled"
    assert [f.violation.rule for f in check_objects(objects, "prod", levels).findings] == [
        "pod-security-restricted"
    ]


def test_json_report() -> None:
    data = check_objects(bad_uid_stack(), "prod").to_json()
    assert data["failed"] is True and data["mandatory"] == 1 and data["objects"] == 8
    assert data["violations"] == [
        {
            "level": "mandatory",
            "rule": "pod-security-restricted",
            "object": "Deployment/apps/web",
            "message": UID_MSG,
        }
    ]


@pytest.fixture
def fake_render(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stand-in `stackctl.render.stack` (the real one is the lead's): records the call."""
    calls: dict[str, Any] = {}
    module = types.ModuleType("stackctl.render.stack")

    def render_stack(stack: str, project_dir: Path) -> Any:
        calls["args"] = (stack, project_dir)
        objects = bad_uid_stack()
        return types.SimpleNamespace(environment=stack, objects=objects)

    def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        return None

    module.render_stack = render_stack  # type: ignore[attr-defined]
    module.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stackctl.render.stack", module)
    return calls


def test_cli_check_prod_fails_with_a_summary(
    fake_render: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", "prod", "--project-dir", "/tmp/x"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("MANDATORY  pod-security-restricted  Deployment/apps/web: ")
    assert err == ("failed: stack prod (prod): 1 mandatory, 0 advisory violations over 8 objects\n")
    assert fake_render["args"] == ("prod", Path("/tmp/x"))


def test_cli_check_dev_passes_with_json(
    fake_render: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", "dev", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["advisory"] == 1 and err == ""
    stack, project_dir = fake_render["args"]
    assert stack == "dev"
    assert project_dir == Path(cli.__file__).resolve().parent.parent
