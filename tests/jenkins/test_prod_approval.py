"""Who can approve and change what reaches prod: prod names approvers who exist in the realm
(role-strategy roles in the rendered JCasC), Replay is the admin's alone, and the API server
CIDRs of prod are real addresses (item 13: documentation ranges refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config.jenkins import DOCUMENTATION_RANGES
from tests.conftest import Render, load_error
from tests.jenkins.helpers import DEPLOYER, casc, jenkins_raw
from tests.renders import Renders

#: workflow-cps ReplayAction.REPLAY = new Permission(Run.PERMISSIONS, "Replay", ...,
#: Item.CONFIGURE, PermissionScope.RUN): Job/Configure implies it, Overall/Administer implies all.
GRANTS_REPLAY = {"Run/Replay", "Job/Configure", "Overall/Administer"}


def _roles(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        r["name"]: r
        for r in doc["jenkins"]["authorizationStrategy"]["roleBased"]["roles"]["global"]
    }


def _local_users(doc: dict) -> set[str]:  # type: ignore[type-arg]
    return {u["id"] for u in doc["jenkins"]["securityRealm"]["local"]["users"]}


def test_the_prod_seed_names_approvers_that_exist(renders: Renders) -> None:
    doc = casc(renders.stack("prod"))
    entries = _roles(doc)["prod-deployer"]["entries"]
    users = {e["user"] for e in entries if "user" in e}
    # The local realm has no groups: a group entry would approve nobody.
    assert not [e for e in entries if "group" in e]
    assert users and users <= _local_users(doc)
    env = doc["jenkins"]["globalNodeProperties"][0]["envVars"]["env"]
    approvers = next(e["value"] for e in env if e["key"] == "APPSTACK_PROD_APPROVERS")
    assert set(approvers.split(",")) == users


def test_prod_without_approvers_is_refused() -> None:
    raw = jenkins_raw("prod", authorization={"deployers": []})
    message = load_error(raw)
    assert "appstack:jenkins.authorization.deployers:" in message
    assert "prod needs at least one approver" in message and "jenkins-users" in message


def test_an_unknown_realm_is_refused_with_the_allowed_values() -> None:
    message = load_error(jenkins_raw("prod", authorization={"realm": "ldap"}))
    assert "appstack:jenkins.authorization.realm:" in message and "'local'" in message


def test_replay_is_for_admins_only(render: Render) -> None:
    doc = casc(render(jenkins_raw("prod")))
    roles = _roles(doc)
    for name, role in roles.items():
        granted = set(role["permissions"]) & GRANTS_REPLAY
        assert (name == "admin") == bool(granted), (name, granted)
    assert roles["admin"]["entries"] == [
        {"user": "${readFile:/run/secrets/jenkins/admin-username}"}
    ]


@pytest.mark.parametrize("cidr", [*DOCUMENTATION_RANGES, "192.0.2.10/32", "198.51.0.0/16"])
def test_prod_refuses_documentation_ranges_for_the_api_server(cidr: str) -> None:
    message = load_error(jenkins_raw("prod", kubeApiCidrs=["10.0.0.2/32", cidr]))
    assert "appstack:jenkins.kubeApiCidrs[1]:" in message
    assert "documentation range" in message and "default/kubernetes" in message
    assert "kubectl get endpointslices -n default" in message


def test_dev_may_keep_any_range_and_real_ranges_pass() -> None:
    from components import config as config_model

    assert config_model.load(jenkins_raw("dev", kubeApiCidrs=["192.0.2.0/24"])).jenkins.enabled
    prod = config_model.load(jenkins_raw("prod", kubeApiCidrs=["10.0.0.2/32", "172.16.0.0/12"]))
    assert prod.jenkins.authorization.deployers == [DEPLOYER]


def test_the_home_claim_is_never_pruned_by_argo_cd(renders: Renders) -> None:
    """argo-cd docs/user-guide/sync-options.md, "No Prune Resources": the annotation
    `argocd.argoproj.io/sync-options: Prune=false` on the object; docs/ci.md says it is there."""
    result = renders.stack("prod")
    (claim,) = [o for o in result.objects if o["kind"] == "PersistentVolumeClaim"]
    annotations = claim["metadata"].get("annotations", {})
    assert annotations.get("argocd.argoproj.io/sync-options") == "Prune=false"
    docs = (Path(__file__).resolve().parents[2] / "docs/ci.md").read_text()
    assert "The Jenkins home PVC carries `argocd.argoproj.io/sync-options: Prune=false`" in docs
