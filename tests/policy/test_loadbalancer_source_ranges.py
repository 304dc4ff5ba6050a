"""loadbalancer-source-ranges: a prod LoadBalancer Service states its source ranges."""

from __future__ import annotations

from tests.policy.factory import compliant_stack, find, messages, mutated, run_rule

RULE = "loadbalancer-source-ranges"


def lb_stack(ranges: list[str] | None) -> list[dict[str, object]]:
    objects = mutated(compliant_stack())
    spec = find(objects, "Service")["spec"]
    spec["type"] = "LoadBalancer"
    if ranges is not None:
        spec["loadBalancerSourceRanges"] = ranges
    return objects


def test_compliant_stack_passes() -> None:
    assert run_rule(compliant_stack(), RULE) == []


def test_a_load_balancer_with_ranges_passes() -> None:
    assert run_rule(lb_stack(["203.0.113.0/24"]), RULE) == []
    assert run_rule(lb_stack(["0.0.0.0/0"]), RULE) == []  # stated: the config model decides


def test_a_load_balancer_without_ranges_violates_in_prod() -> None:
    [violation] = run_rule(lb_stack(None), RULE)
    assert violation.obj == "Service/apps/web"
    assert violation.message.startswith(
        "spec.loadBalancerSourceRanges is unset on a LoadBalancer Service in prod"
    )
    assert messages(lb_stack([]), RULE)[0].startswith("spec.loadBalancerSourceRanges is []")


def test_dev_does_not_demand_ranges() -> None:
    assert run_rule(lb_stack(None), RULE, "dev") == []
