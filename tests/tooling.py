"""Locate the outside validators the tests run. A missing tool is a failure, never a skip:
`make test` installs every one of them (venv, checkov venv, Debian prometheus for promtool)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CHECKOV_BIN = REPO / ".venv-checkov" / "bin"


def tool_path(name: str) -> str:
    """Absolute path of a validator: the project venv first, then the checkov venv, then PATH."""
    for candidate in (VENV_BIN / name, CHECKOV_BIN / name):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run `make test` (it installs every validator)")
    return found


def run_tool(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a validator and return the completed process (never raises on non-zero exit)."""
    return subprocess.run(
        [tool_path(name), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
