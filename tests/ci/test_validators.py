"""The outside validators on the CI files: check-jsonschema (the GitHub workflow and GitLab CI
schemas vendored inside check-jsonschema, so no download) and shellcheck on every script."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ci.pipelines import CI_SCRIPTS, GITLAB_CI, REPO, workflow_files
from tests.tooling import run_tool

pytestmark = pytest.mark.slow

# Every shell script CI or the Makefile runs: new ones are covered by the glob automatically.
SHELL_SCRIPTS = sorted({*REPO.glob("scripts/**/*.sh"), REPO / ".ci" / "run"})
# Libraries that scripts `source` (first line `# shellcheck shell=bash`), never run by themselves.
LIBRARIES = [p for p in SHELL_SCRIPTS if p.read_text().startswith("# shellcheck shell=bash")]
# Scripts that run in images without bash (build-image.sh: moby/buildkit:rootless, busybox sh).
POSIX_PROGRAMS = [CI_SCRIPTS / "build-image.sh"]
# The shared CI scripts follow one convention (bash, strict mode, executable).
CI_PROGRAMS = [
    p
    for p in SHELL_SCRIPTS
    if p.parent == CI_SCRIPTS and p not in LIBRARIES and p not in POSIX_PROGRAMS
]


def check_jsonschema(schema: str, path: Path, *extra: str) -> tuple[int, str]:
    # --builtin-schema reads the copy inside the package; --no-cache rules out a stale cache.
    proc = run_tool("check-jsonschema", "--no-cache", "--builtin-schema", schema, *extra, str(path))
    return proc.returncode, proc.stdout + proc.stderr


def test_there_are_workflows() -> None:
    names = {p.name for p in workflow_files()}
    assert {"ci.yml", "deploy.yml"} <= names


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_github_workflow_matches_schema(path: Path) -> None:
    code, output = check_jsonschema("vendor.github-workflows", path)
    assert code == 0, output


def test_gitlab_ci_matches_schema() -> None:
    code, output = check_jsonschema("vendor.gitlab-ci", GITLAB_CI, "--data-transform", "gitlab-ci")
    assert code == 0, output


def test_schemas_reject_a_broken_file(tmp_path: Path) -> None:
    """The validators judge something: a misspelt key fails each schema."""
    workflow = tmp_path / "broken.yml"
    workflow.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert check_jsonschema("vendor.github-workflows", workflow)[0] == 1
    gitlab = tmp_path / ".gitlab-ci.yml"
    gitlab.write_text("deploy:\n  script: [x]\n  when: manul\n")
    assert check_jsonschema("vendor.gitlab-ci", gitlab, "--data-transform", "gitlab-ci")[0] == 1


def test_shell_scripts_are_found() -> None:
    names = {p.name for p in SHELL_SCRIPTS}
    assert {"deploy.sh", "preview.sh", "rollback.sh", "setup-kubeconfig.sh", "run"} <= names


@pytest.mark.parametrize("path", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck(path: Path) -> None:
    # -x follows `source` (common.sh) from the repo root, as the directives in the scripts say.
    proc = run_tool("shellcheck", "-x", "--severity=style", str(path.relative_to(REPO)), cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", CI_PROGRAMS, ids=lambda p: str(p.relative_to(REPO)))
def test_ci_scripts_are_strict_bash(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n"), f"{path}: not a bash script"
    assert "set -euo pipefail" in text, f"{path}: missing set -euo pipefail"
    assert path.stat().st_mode & 0o111, f"{path}: not executable"


@pytest.mark.parametrize("path", POSIX_PROGRAMS, ids=lambda p: str(p.relative_to(REPO)))
def test_posix_scripts_are_strict_sh(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n") and "set -eu" in text
    assert "{ set +x; } 2>/dev/null" in text, f"{path}: must switch xtrace off (registry login)"
    assert path.stat().st_mode & 0o111, f"{path}: not executable"


@pytest.mark.parametrize("path", LIBRARIES, ids=lambda p: str(p.relative_to(REPO)))
def test_libraries_are_not_executable(path: Path) -> None:
    """A sourced library is checked with the scripts above but is not a program itself."""
    assert not path.stat().st_mode & 0o111, f"{path}: a sourced library should not be executable"
    assert "{ set +x; } 2>/dev/null" in path.read_text(), f"{path}: must switch xtrace off"
