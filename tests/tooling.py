"""Locate the outside validators the tests run. A missing tool is a failure, never a skip:
`make test` installs every one of them (venv, checkov venv, Debian prometheus for promtool)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def _shipped_stacks() -> tuple[str, ...]:
    from components.config import environments  # the one list of environments

    return tuple(env for env in environments() if (REPO / f"Pulumi.{env}.yaml").is_file())


#: The stacks the repository ships (Pulumi.<stack>.yaml), in promotion order (dev, staging,
#: prod): every test that covers "each shipped stack" iterates this, so a new environment's stack
#: file is validated like the others (tests/test_environments.py: one file per environment).
SHIPPED_STACKS: tuple[str, ...] = _shipped_stacks()
VENV_BIN = Path(sys.executable).parent
CHECKOV_BIN = REPO / ".venv-checkov" / "bin"
#: LibYAML's parser and emitter when PyYAML has them: the same documents, read and written some
#: ten times faster (the files tests hand to the outside tools, the renders they parse back)
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, through LibYAML when present."""
    return yaml.load(text, Loader=SAFE_LOADER)


def dump_yaml(doc: Any, **options: Any) -> str:
    """`yaml.safe_dump`, through LibYAML when present."""
    return str(yaml.dump(doc, Dumper=SAFE_DUMPER, **options))


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
