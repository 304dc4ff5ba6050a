"""Fixtures for the stackctl deploy/history/rollback tests: a project dir and a console."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from stackctl.ops.operator import Console
from tests.tooling import SHIPPED_STACKS

PULUMI_DEV = """\
config:
  appstack:environment: dev
  appstack:apps:
    web:
      image: registry.example.com/appstack/web:1.3.0
    api:
      image: registry.example.com/appstack/api:2.1.0
    worker:
      replicas: 1
"""


def make_project(root: Path, *, stack_yaml: str | None = PULUMI_DEV, stack: str = "dev") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Pulumi.yaml").write_text("name: appstack\nruntime: python\n", encoding="utf-8")
    if stack_yaml is not None:
        (root / f"Pulumi.{stack}.yaml").write_text(stack_yaml, encoding="utf-8")
    (root / "policy" / "config").mkdir(parents=True)
    (root / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n", encoding="utf-8")
    for env in SHIPPED_STACKS:
        (root / "policy" / "config" / f"{env}.json").write_text("{}\n", encoding="utf-8")
    return root


def git_init(root: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "init")
    return git("rev-parse", "--short", "HEAD")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "repo")


class Recorder:
    def __init__(self, answers: list[str] | None = None, interactive: bool = True) -> None:
        self.buffer = io.StringIO()
        self.answers = list(answers or [])
        self.questions: list[str] = []
        self.console = Console(out=self.buffer, interactive=interactive, ask=self._ask)

    def _ask(self, question: str) -> str:
        self.questions.append(question)
        return self.answers.pop(0) if self.answers else ""

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


@pytest.fixture
def recorder() -> Callable[..., Recorder]:
    return Recorder
