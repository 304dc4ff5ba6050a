"""The CI side of `make e2e-gitops`: a checkout of this repository that runs the real
scripts/ci/publish-manifests.sh and revert-manifests.sh against a local bare repository, the
manifests remote Argo CD (e2e/argocd.py) clones.

`Checkout` copies the working tree's files (tracked and untracked, not ignored: what a CI
checkout of this commit has) into the run's directory, makes it a git repository whose `origin`
is the bare `manifests.git`, and runs the scripts there as a pipeline would: `deploy.sh` calls
them with the built digests in `DEPLOY_IMAGES` and its state in `CI_STATE_DIR`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster import REPO_ROOT

AUTHOR = {
    "GIT_AUTHOR_NAME": "appstack-e2e",
    "GIT_AUTHOR_EMAIL": "e2e@appstack.invalid",
    "GIT_COMMITTER_NAME": "appstack-e2e",
    "GIT_COMMITTER_EMAIL": "e2e@appstack.invalid",
}


class GitError(RuntimeError):
    """A git command or a CI script failed (the message carries its output)."""


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **AUTHOR},
        timeout=120,
    )
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Checkout:
    """A copy of the repository with `origin` = the bare manifests repository."""

    root: Path
    branch: str = "manifests"
    project: Path = field(init=False)
    remote: Path = field(init=False)
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.project = self.root / "project"
        self.remote = self.root / "manifests.git"
        self.state = self.root / "ci-state"

    @property
    def url(self) -> str:
        return f"file://{self.remote}"

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        git(self.root, "init", "-q", "--bare", str(self.remote))
        listed = git(
            REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"
        ).split("\0")
        for rel in filter(None, listed):
            src = REPO_ROOT / rel
            if src.is_symlink() or not src.is_file():
                continue  # deleted in the working tree, or the venv links of a worktree
            dst = self.project / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        git(self.project, "init", "-q", "-b", "main")
        git(self.project, "remote", "add", "origin", str(self.remote))
        self.commit("e2e: the repository under test")

    def commit(self, message: str) -> str:
        git(self.project, "add", "--all")
        git(self.project, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.project, "rev-parse", "HEAD").strip()

    def stack_config(self, stack: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((self.project / f"Pulumi.{stack}.yaml").read_text())
        return doc

    def write_stack_config(self, stack: str, doc: dict[str, Any]) -> None:
        (self.project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def run_script(self, script: str, stack: str, **env: str) -> subprocess.CompletedProcess[str]:
        """scripts/ci/<script> <stack> as deploy.sh runs it; raises with its output on failure."""
        full_env = {
            **os.environ,
            **AUTHOR,
            "PYTHON": sys.executable,
            "CI_STATE_DIR": str(self.state),
            "MANIFESTS_BRANCH": self.branch,
            **env,
        }
        full_env.pop("MANIFESTS_PUSH_URL", None)
        proc = subprocess.run(
            ["bash", str(self.project / "scripts" / "ci" / script), stack],
            cwd=self.project,
            capture_output=True,
            text=True,
            check=False,
            env=full_env,
            timeout=600,
        )
        if proc.returncode != 0:
            raise GitError(f"{script} {stack} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def publish(self, stack: str, images: str) -> str:
        """publish-manifests.sh with DEPLOY_IMAGES=`images`; the commit it pushed."""
        self.run_script("publish-manifests.sh", stack, DEPLOY_IMAGES=images)
        return self.head()

    def revert(self, stack: str) -> str:
        """revert-manifests.sh; the branch head after it (the revert commit)."""
        self.run_script("revert-manifests.sh", stack)
        return self.head()

    def head(self) -> str:
        return git(self.remote, "rev-parse", f"refs/heads/{self.branch}").strip()

    def subject(self, revision: str) -> str:
        return git(self.remote, "log", "-1", "--format=%s", revision).strip()

    def files(self, revision: str, path: str) -> list[str]:
        out = git(self.remote, "ls-tree", "-r", "--name-only", revision, "--", path)
        return out.split()

    def read(self, revision: str, path: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load(git(self.remote, "show", f"{revision}:{path}"))
        return doc
