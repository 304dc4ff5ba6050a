"""probes: readiness and liveness on every container, and not identical."""

from __future__ import annotations

import pytest

from tests.policy.factory import compliant_stack, messages, mutated, run_rule, web, web_pod

RULE = "probes"
WEB = "spec.template.spec.containers[web]"


def test_compliant_stack_passes() -> None:
    assert run_rule(compliant_stack(), RULE) == []


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
def test_a_missing_probe_violates(probe: str) -> None:
    objects = mutated(compliant_stack())
    del web(objects)[probe]
    assert messages(objects, RULE) == [
        f"{WEB}.{probe} is unset; every container needs a readinessProbe and a livenessProbe"
    ]


def test_identical_probes_violate() -> None:
    objects = mutated(compliant_stack())
    web(objects)["livenessProbe"] = dict(web(objects)["readinessProbe"])
    [msg] = messages(objects, RULE)
    assert msg.startswith(f"{WEB}.livenessProbe is identical to {WEB}.readinessProbe")


def test_init_containers_need_no_probes() -> None:
    objects = mutated(compliant_stack())
    init = dict(web(objects), name="migrate")
    del init["readinessProbe"], init["livenessProbe"]
    web_pod(objects)["initContainers"] = [init]
    assert run_rule(objects, RULE) == []
