"""The GitOps variant: the Argo CD Application watches what publish-manifests.sh pushes."""

from __future__ import annotations

import fnmatch
import os
import subprocess

from stackctl.render.stack import file_name
from tests.ci.pipelines import CI_SCRIPTS, REPO, load_yaml

APPLICATION = REPO / "docs" / "argocd-application.yaml"


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


def test_application_watches_the_published_branch_and_path() -> None:
    app = load_yaml(APPLICATION)
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    source = app["spec"]["source"]
    assert published_branch_and_target("prod") == ("manifests", "manifests/prod")
    assert published_branch_and_target("acme/prod") == ("manifests", "manifests/acme_prod")
    assert source["targetRevision"] == "manifests"
    assert source["path"] == "manifests/prod"
    assert source["directory"]["recurse"] is True


def test_redacted_secrets_are_not_applied() -> None:
    """Rendered Secrets hold redacted values (stackctl render): Argo CD must skip them."""
    exclude = load_yaml(APPLICATION)["spec"]["source"]["directory"]["exclude"]
    assert exclude == "{**/secret-*.yaml}"
    # the render's file naming is what the pattern relies on
    secret = {"kind": "Secret", "metadata": {"name": "web-secrets", "namespace": "appstack"}}
    assert fnmatch.fnmatch(file_name(secret), "*/secret-*.yaml")
    config_map = {"kind": "ConfigMap", "metadata": {"name": "secret-notes", "namespace": "a"}}
    assert not fnmatch.fnmatch(file_name(config_map), "*/secret-*.yaml")


def test_sync_policy() -> None:
    spec = load_yaml(APPLICATION)["spec"]
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=false" in spec["syncPolicy"]["syncOptions"]
    assert "finalizers" not in load_yaml(APPLICATION)["metadata"]


def test_dev_application_is_the_prod_one_on_the_dev_path() -> None:
    """GitOps follows the same gate: dev manifests first (its own Application), then prod."""
    dev = load_yaml(REPO / "docs" / "argocd-application-dev.yaml")
    prod = load_yaml(APPLICATION)
    assert dev["spec"]["source"]["path"] == "manifests/dev"
    assert dev["metadata"]["name"] != prod["metadata"]["name"]
    dev["spec"]["source"]["path"] = prod["spec"]["source"]["path"]
    assert dev["spec"] == prod["spec"]
