"""namespace-default-deny: a default-deny NetworkPolicy per workload namespace; every pod
selected by a NetworkPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.factory import compliant_stack, find, mutated, run_rule

RULE = "namespace-default-deny"


def deny_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "NetworkPolicy", "default-deny")["spec"]
    return spec


def test_compliant_stack_passes() -> None:
    assert run_rule(compliant_stack(), RULE) == []


def test_a_default_deny_with_empty_match_lists_counts() -> None:
    objects = mutated(compliant_stack())
    deny_spec(objects)["podSelector"] = {"matchLabels": {}, "matchExpressions": []}
    deny_spec(objects)["ingress"] = []
    assert run_rule(objects, RULE) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"policyTypes": ["Ingress"]}, id="ingress only"),
        pytest.param({"policyTypes": ["Egress"]}, id="egress only"),
        pytest.param({"ingress": [{}]}, id="an allow-all ingress rule"),
        pytest.param({"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, id="egress"),
        pytest.param({"podSelector": {"matchLabels": {"a": "b"}}}, id="a non-empty selector"),
    ],
)
def test_a_namespace_without_a_real_default_deny_violates(change: dict[str, Any]) -> None:
    objects = mutated(compliant_stack())
    deny_spec(objects).update(change)
    found = run_rule(objects, RULE)
    assert [v.obj for v in found] == ["Namespace/-/apps"]
    assert found[0].message.startswith(
        "namespace apps holds Deployment/apps/web but no NetworkPolicy there is a default deny"
    )
    assert "spec.podSelector {}" in found[0].message


def test_a_namespace_without_network_policies_violates_twice() -> None:
    objects = [o for o in compliant_stack() if o["kind"] != "NetworkPolicy"]
    found = run_rule(objects, RULE)
    assert [v.obj for v in found] == ["Namespace/-/apps", "Deployment/apps/web"]
    assert found[1].message.startswith("spec.template.metadata.labels {")
    assert "selected by no NetworkPolicy in namespace apps" in found[1].message


def test_a_default_deny_in_another_namespace_does_not_count() -> None:
    objects = mutated(compliant_stack())
    for obj in objects:
        if obj["kind"] == "NetworkPolicy":
            obj["metadata"]["namespace"] = "other"
    assert {v.obj for v in run_rule(objects, RULE)} == {
        "Namespace/-/apps",
        "Deployment/apps/web",
    }
