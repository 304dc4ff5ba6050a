"""zero-downtime-rollout: surge-only rolling updates, minReadySeconds, HPA-owned replicas,
grace period vs preStop sleep."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.factory import compliant_stack, find, messages, mutated, run_rule, web, web_pod

RULE = "zero-downtime-rollout"


def deploy_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment")["spec"]
    return spec


def test_compliant_stack_passes() -> None:
    assert run_rule(compliant_stack(), RULE, "prod") == []
    assert run_rule(compliant_stack(), RULE, "dev") == []


def test_recreate_strategy_violates() -> None:
    objects = mutated(compliant_stack())
    deploy_spec(objects)["strategy"] = {"type": "Recreate"}
    assert messages(objects, RULE) == ['spec.strategy.type is "Recreate"; it must be RollingUpdate']


@pytest.mark.parametrize(("value", "shown"), [(1, "1"), ("25%", '"25%"'), (None, "unset")])
def test_max_unavailable_other_than_zero_violates(value: object, shown: str) -> None:
    objects = mutated(compliant_stack())
    rolling = deploy_spec(objects)["strategy"]["rollingUpdate"]
    if value is None:
        del rolling["maxUnavailable"]
    else:
        rolling["maxUnavailable"] = value
    [msg] = messages(objects, RULE)
    assert msg.startswith(f"spec.strategy.rollingUpdate.maxUnavailable is {shown}")
    assert "it must be 0" in msg


def test_a_missing_strategy_defaults_to_25_percent_unavailable() -> None:
    objects = mutated(compliant_stack())
    del deploy_spec(objects)["strategy"]
    [msg] = messages(objects, RULE)
    assert "maxUnavailable is unset (defaults to 25%)" in msg


@pytest.mark.parametrize("value", [0, "0%"])
def test_max_surge_zero_violates(value: object) -> None:
    objects = mutated(compliant_stack())
    deploy_spec(objects)["strategy"]["rollingUpdate"]["maxSurge"] = value
    [msg] = messages(objects, RULE)
    assert msg.startswith("spec.strategy.rollingUpdate.maxSurge is ")


def test_a_percentage_surge_and_zero_percent_unavailable_pass() -> None:
    objects = mutated(compliant_stack())
    deploy_spec(objects)["strategy"]["rollingUpdate"] = {"maxUnavailable": "0%", "maxSurge": "25%"}
    assert run_rule(objects, RULE) == []


def test_min_ready_seconds_is_required_in_prod_only() -> None:
    objects = mutated(compliant_stack())
    del deploy_spec(objects)["minReadySeconds"]
    assert messages(objects, RULE, "prod") == [
        "spec.minReadySeconds is unset; in prod it must be > 0"
    ]
    assert run_rule(objects, RULE, "dev") == []


def test_replicas_set_while_an_hpa_owns_them_violates() -> None:
    objects = mutated(compliant_stack())
    deploy_spec(objects)["replicas"] = 2
    [violation] = run_rule(objects, RULE)
    assert violation.obj == "Deployment/apps/web"
    assert violation.message.startswith(
        "spec.replicas is 2 but HorizontalPodAutoscaler/apps/web owns the replica count"
    )


def test_replicas_without_hpa_are_fine() -> None:
    objects = [o for o in compliant_stack() if o["kind"] != "HorizontalPodAutoscaler"]
    deploy_spec(objects)["replicas"] = 2
    assert run_rule(objects, RULE) == []


@pytest.mark.parametrize(
    "pre_stop",
    [
        {"sleep": {"seconds": 30}},
        {"exec": {"command": ["sleep", "30"]}},
        {"exec": {"command": ["/bin/sleep", "45"]}},
        {"exec": {"command": ["/bin/sh", "-c", "sleep 30 && nginx -s quit"]}},
    ],
)
def test_a_pre_stop_sleep_not_shorter_than_the_grace_period_violates(
    pre_stop: dict[str, Any],
) -> None:
    objects = mutated(compliant_stack())
    web(objects)["lifecycle"] = {"preStop": pre_stop}
    [msg] = messages(objects, RULE)
    assert msg.startswith("spec.template.spec.terminationGracePeriodSeconds is 30 but ")
    assert "spec.template.spec.containers[web].lifecycle.preStop sleeps" in msg


def test_the_default_grace_period_is_30_seconds() -> None:
    objects = mutated(compliant_stack())
    del web_pod(objects)["terminationGracePeriodSeconds"]
    assert run_rule(objects, RULE) == []
    web(objects)["lifecycle"] = {"preStop": {"sleep": {"seconds": 30}}}
    [msg] = messages(objects, RULE)
    assert "terminationGracePeriodSeconds is 30 (default)" in msg


def test_a_longer_grace_period_passes() -> None:
    objects = mutated(compliant_stack())
    web(objects)["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "30"]}}}
    web_pod(objects)["terminationGracePeriodSeconds"] = 60
    assert run_rule(objects, RULE) == []
