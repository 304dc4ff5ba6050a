"""The GitOps variant: the Argo CD Application watches what publish-manifests.sh pushes."""

from __future__ import annotations

import fnmatch

from stackctl.render import file_name
from tests.ci.pipelines import CI_SCRIPTS, REPO, load_yaml

APPLICATION = REPO / "docs" / "argocd-application.yaml"


def test_application_watches_the_published_branch_and_path() -> None:
    app = load_yaml(APPLICATION)
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    source = app["spec"]["source"]
    script = (CI_SCRIPTS / "publish-manifests.sh").read_text()
    assert 'branch="${2:-${MANIFESTS_BRANCH:-manifests}}"' in script
    assert 'target="manifests/${stack//\\//_}"' in script
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
