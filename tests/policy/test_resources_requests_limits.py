"""resources-requests-limits: cpu+memory requests and limits everywhere, request <= limit."""

from __future__ import annotations

import pytest

from tests.policy.factory import compliant_stack, messages, mutated, run_rule, web, web_pod

RULE = "resources-requests-limits"
WEB = "spec.template.spec.containers[web]"


def test_compliant_stack_passes() -> None:
    assert run_rule(compliant_stack(), RULE) == []


@pytest.mark.parametrize("kind", ["requests", "limits"])
@pytest.mark.parametrize("resource", ["cpu", "memory"])
def test_a_missing_request_or_limit_violates(kind: str, resource: str) -> None:
    objects = mutated(compliant_stack())
    del web(objects)["resources"][kind][resource]
    assert messages(objects, RULE) == [
        f"{WEB}.resources.{kind}.{resource} is unset; set a {resource} {kind[:-1]}"
    ]


def test_a_container_without_resources_has_four_violations() -> None:
    objects = mutated(compliant_stack())
    del web(objects)["resources"]
    assert len(run_rule(objects, RULE)) == 4


def test_a_cpu_request_above_its_limit_violates() -> None:
    objects = mutated(compliant_stack())
    web(objects)["resources"]["requests"]["cpu"] = "1"
    web(objects)["resources"]["limits"]["cpu"] = "500m"
    [msg] = messages(objects, RULE)
    assert msg == (
        f'{WEB}.resources.requests.cpu ("1") is greater than {WEB}.resources.limits.cpu '
        '("500m"); the request must be <= the limit'
    )


def test_memory_units_are_compared_by_value() -> None:
    objects = mutated(compliant_stack())
    web(objects)["resources"]["requests"]["memory"] = "1G"  # 10**9 < 2**30
    web(objects)["resources"]["limits"]["memory"] = "1Gi"
    assert run_rule(objects, RULE) == []
    web(objects)["resources"]["requests"]["memory"] = "1025Mi"
    assert "resources.requests.memory" in messages(objects, RULE)[0]


def test_an_invalid_quantity_violates() -> None:
    objects = mutated(compliant_stack())
    web(objects)["resources"]["limits"]["memory"] = "256MB"
    [msg] = messages(objects, RULE)
    assert msg.startswith(f"{WEB}.resources.limits.memory: invalid quantity '256MB'")


def test_init_containers_need_resources() -> None:
    objects = mutated(compliant_stack())
    init = dict(web(objects), name="migrate")
    init["resources"] = {"requests": {"cpu": "10m", "memory": "16Mi"}}
    web_pod(objects)["initContainers"] = [init]
    assert sorted(messages(objects, RULE)) == [
        "spec.template.spec.initContainers[migrate].resources.limits.cpu is unset; set a cpu limit",
        "spec.template.spec.initContainers[migrate].resources.limits.memory is unset; "
        "set a memory limit",
    ]


@pytest.mark.parametrize("kind", ["requests", "limits"])
def test_a_negative_quantity_violates(kind: str) -> None:
    # the quantity grammar allows a sign; the API server's resource validation does not
    # (requests and limits must be >= 0)
    objects = mutated(compliant_stack())
    web(objects)["resources"][kind]["cpu"] = "-100m"
    assert f'{WEB}.resources.{kind}.cpu is "-100m"; a {kind[:-1]} must not be negative' in (
        messages(objects, RULE)
    )
