"""The commit of the checkout a program runs from: the image tag of a build
(components/image/component.py) and the commit recorded with every deploy (stackctl/ops/deploy.py).
One implementation for both."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_head(repo_dir: Path, *, abbrev: int | None = 0) -> str | None:
    """HEAD of the git checkout at `repo_dir`, or None outside one (or without git).

    `abbrev`: None for the full hash, 0 for git's default short form, n for n hex digits.
    """
    short = [] if abbrev is None else ["--short"] if abbrev == 0 else [f"--short={abbrev}"]
    try:
        proc = subprocess.run(
            ["git", "rev-parse", *short, "HEAD"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    head = proc.stdout.strip()
    return head if proc.returncode == 0 and head else None
