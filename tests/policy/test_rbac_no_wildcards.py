"""rbac-no-wildcards: no wildcards, no cluster-admin, secrets only with a stated reason."""

from __future__ import annotations

from typing import Any

import pytest

from policy.rules import SECRETS_REASON_ANNOTATION
from tests.policy.factory import find, messages, mutated, rbac_objects, run_rule

RULE = "rbac-no-wildcards"


def role(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Role")


def test_compliant_rbac_passes() -> None:
    assert run_rule(rbac_objects(), RULE) == []


@pytest.mark.parametrize("field", ["apiGroups", "resources", "verbs"])
def test_a_wildcard_violates(field: str) -> None:
    objects = mutated(rbac_objects())
    role(objects)["rules"][0][field] = ["*"]
    [violation] = run_rule(objects, RULE)
    assert violation.obj == "Role/ci-agents/jenkins-agents"
    assert violation.message == (
        f"rules[0].{field} is ['*']; wildcards (*) are not allowed, list each item explicitly"
    )


def test_a_wildcard_in_a_cluster_role_violates() -> None:
    objects = mutated(rbac_objects())
    cluster_role = role(objects)
    cluster_role["kind"] = "ClusterRole"
    del cluster_role["metadata"]["namespace"]
    cluster_role["rules"][1]["resources"] = ["pods/*"]
    [violation] = run_rule(objects, RULE)
    assert violation.obj == "ClusterRole/-/jenkins-agents"
    assert violation.message.startswith("rules[1].resources is ['pods/*']")


@pytest.mark.parametrize("kind", ["RoleBinding", "ClusterRoleBinding"])
def test_binding_cluster_admin_violates(kind: str) -> None:
    objects = mutated(rbac_objects())
    binding = find(objects, "RoleBinding")
    binding["kind"] = kind
    binding["roleRef"] = {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    }
    [msg] = messages(objects, RULE)
    assert msg.startswith('roleRef.name is "cluster-admin"')


def test_secrets_without_a_reason_violate() -> None:
    objects = mutated(rbac_objects())
    role(objects)["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    [msg] = messages(objects, RULE)
    assert msg.startswith("rules[3].resources ['secrets'] grants secrets")
    assert f"metadata.annotations[{SECRETS_REASON_ANNOTATION}]" in msg


def test_secrets_with_a_blank_reason_violate() -> None:
    objects = mutated(rbac_objects())
    role(objects)["metadata"]["annotations"] = {SECRETS_REASON_ANNOTATION: "  "}
    role(objects)["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    assert len(run_rule(objects, RULE)) == 1


def test_secrets_with_a_reason_pass() -> None:
    objects = mutated(rbac_objects())
    role(objects)["metadata"]["annotations"] = {
        SECRETS_REASON_ANNOTATION: "the controller reads its own admin credentials Secret"
    }
    role(objects)["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    assert run_rule(objects, RULE) == []
