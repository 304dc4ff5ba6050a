"""pdb-consistent: PDBs select their workload, never block all evictions, cover prod apps."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.factory import compliant_stack, find, messages, mutated, run_rule

RULE = "pdb-consistent"


def pdb_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "PodDisruptionBudget")["spec"]
    return spec


def without_hpa(objects: list[dict[str, Any]], replicas: int | None) -> list[dict[str, Any]]:
    objects = [o for o in objects if o["kind"] != "HorizontalPodAutoscaler"]
    if replicas is not None:
        find(objects, "Deployment")["spec"]["replicas"] = replicas
    return objects


def test_compliant_stack_passes() -> None:
    assert run_rule(compliant_stack(), RULE, "prod") == []
    assert run_rule(compliant_stack(), RULE, "dev") == []


def test_a_min_available_below_hpa_min_passes() -> None:
    objects = mutated(compliant_stack())
    pdb = pdb_spec(objects)
    del pdb["maxUnavailable"]
    pdb["minAvailable"] = 1
    assert run_rule(objects, RULE) == []


@pytest.mark.parametrize("value", [0, "0%"])
def test_max_unavailable_zero_violates(value: object) -> None:
    objects = mutated(compliant_stack())
    pdb_spec(objects)["maxUnavailable"] = value
    [msg] = messages(objects, RULE)
    assert msg.startswith("spec.maxUnavailable is ") and "blocks every voluntary eviction" in msg


def test_min_available_100_percent_violates() -> None:
    objects = mutated(compliant_stack())
    pdb = pdb_spec(objects)
    del pdb["maxUnavailable"]
    pdb["minAvailable"] = "100%"
    msgs = messages(objects, RULE)
    assert any(m.startswith('spec.minAvailable is "100%", which blocks') for m in msgs)


def test_min_available_equal_to_hpa_min_replicas_violates() -> None:
    objects = mutated(compliant_stack())
    pdb = pdb_spec(objects)
    del pdb["maxUnavailable"]
    pdb["minAvailable"] = 2  # HPA minReplicas is 2
    [violation] = run_rule(objects, RULE)
    assert violation.obj == "PodDisruptionBudget/apps/web"
    assert violation.message == (
        "spec.minAvailable is 2 but Deployment/apps/web runs at least 2 replica(s) "
        "(HPA spec.minReplicas); minAvailable must be < the minimum replicas so one pod can be "
        "evicted"
    )


def test_min_available_uses_spec_replicas_without_hpa() -> None:
    objects = without_hpa(mutated(compliant_stack()), replicas=3)
    pdb = pdb_spec(objects)
    del pdb["maxUnavailable"]
    pdb["minAvailable"] = 3
    [msg] = messages(objects, RULE)
    assert "runs at least 3 replica(s) (spec.replicas)" in msg
    pdb["minAvailable"] = 2
    assert run_rule(objects, RULE) == []


def test_replicas_default_to_one() -> None:
    objects = without_hpa(mutated(compliant_stack()), replicas=None)
    pdb = pdb_spec(objects)
    del pdb["maxUnavailable"]
    pdb["minAvailable"] = 1
    [msg] = messages(objects, RULE, "dev")
    assert "runs at least 1 replica(s)" in msg


def test_a_percentage_min_available_that_rounds_up_to_all_replicas_violates() -> None:
    objects = mutated(compliant_stack())
    pdb = pdb_spec(objects)
    del pdb["maxUnavailable"]
    pdb["minAvailable"] = "60%"  # ceil(0.6 * 2) == 2
    [msg] = messages(objects, RULE)
    assert msg.startswith('spec.minAvailable is "60%" but Deployment/apps/web')


def test_both_set_violates() -> None:
    objects = mutated(compliant_stack())
    pdb_spec(objects)["minAvailable"] = 1
    [msg] = messages(objects, RULE)
    assert msg.startswith("spec.minAvailable (1) and spec.maxUnavailable (1) are both set")


def test_a_pdb_selecting_nothing_violates() -> None:
    objects = mutated(compliant_stack())
    pdb_spec(objects)["selector"] = {"matchLabels": {"app.kubernetes.io/name": "other"}}
    msgs = messages(objects, RULE)
    assert any(m.startswith("spec.selector {") and "selects no" in m for m in msgs)


def test_a_pdb_with_match_expressions_selects() -> None:
    objects = mutated(compliant_stack())
    pdb_spec(objects)["selector"] = {
        "matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": ["web"]},
            {"key": "app.kubernetes.io/version", "operator": "DoesNotExist"},
        ]
    }
    assert run_rule(objects, RULE) == []


def test_a_pdb_in_another_namespace_selects_nothing() -> None:
    objects = mutated(compliant_stack())
    find(objects, "PodDisruptionBudget")["metadata"]["namespace"] = "other"
    msgs = messages(objects, RULE)
    assert any("selects no" in m and "namespace other" in m for m in msgs)


def test_a_replicated_prod_deployment_without_pdb_violates_in_prod_only() -> None:
    objects = [o for o in compliant_stack() if o["kind"] != "PodDisruptionBudget"]
    [violation] = run_rule(objects, RULE, "prod")
    assert violation.obj == "Deployment/apps/web"
    assert "runs 2 replicas in prod but no PodDisruptionBudget selects" in violation.message
    assert "spec.template.metadata.labels" in violation.message
    assert run_rule(objects, RULE, "dev") == []


def test_a_single_replica_prod_deployment_needs_no_pdb() -> None:
    objects = without_hpa(
        [o for o in compliant_stack() if o["kind"] != "PodDisruptionBudget"], replicas=1
    )
    assert run_rule(objects, RULE, "prod") == []
