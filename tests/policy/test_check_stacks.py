"""`python -m stackctl check <stack>` on real renders: the shipped stacks pass; a stack that
passes config validation but breaks a mandatory prod rule fails the prod check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.tooling import REPO, SHIPPED_STACKS


def check(stack: str, project: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackctl", "check", stack, "--project-dir", str(project)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_pass_every_policy_rule(stack: str) -> None:
    proc = check(stack)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 mandatory" in proc.stdout + proc.stderr


@pytest.fixture
def no_min_ready(tmp_path: Path) -> Path:
    """Every stack with minReadySeconds 0: valid config, but not a zero-downtime rollout."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    for stack in SHIPPED_STACKS:
        path = tmp_path / f"Pulumi.{stack}.yaml"
        data = yaml.safe_load((REPO / path.name).read_text())
        data["config"]["appstack:apps"]["web"]["rollout"] = {"minReadySeconds": 0}
        path.write_text(yaml.safe_dump(data))
    return tmp_path


@pytest.mark.parametrize(
    ("stack", "namespace"), [("prod", "appstack"), ("staging", "appstack-staging")]
)
def test_a_mandatory_violation_fails_the_prod_and_staging_checks(
    no_min_ready: Path, stack: str, namespace: str
) -> None:
    proc = check(stack, no_min_ready)
    assert proc.returncode == 1
    assert f"MANDATORY  zero-downtime-rollout  Deployment/{namespace}/web" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_min_ready_seconds_zero_is_only_a_prod_violation(no_min_ready: Path) -> None:
    proc = check("dev", no_min_ready)
    assert proc.returncode == 0
    assert "zero-downtime-rollout" not in proc.stdout
