"""The GitOps variant: where publish-manifests.sh puts a stack's manifests, by the scripts' own
answer. The Argo CD Application that watches them is an object of the stack (`appstack:gitops`,
components/gitops.py): tests/test_gitops_application.py holds it to this answer."""

from __future__ import annotations

import os
import subprocess

from tests.ci.pipelines import CI_SCRIPTS


def published_branch_and_target(stack: str) -> tuple[str, str]:
    """Where publish-manifests.sh (and revert-manifests.sh) put a stack's manifests, by default:
    the answers of common.sh's `manifests_branch` and `manifests_target`."""
    script = f'source "{CI_SCRIPTS / "common.sh"}"; manifests_branch ""; manifests_target "$1"'
    env = {k: v for k, v in os.environ.items() if k != "MANIFESTS_BRANCH"}
    proc = subprocess.run(
        ["bash", "-c", script, "bash", stack], capture_output=True, text=True, env=env, check=True
    )
    branch, target = proc.stdout.split()
    return branch, target


def test_the_scripts_answer() -> None:
    assert published_branch_and_target("prod") == ("manifests", "manifests/prod")
    assert published_branch_and_target("acme/prod") == ("manifests", "manifests/acme_prod")
