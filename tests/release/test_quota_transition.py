"""The namespace quota holds a release-strategy switch while it runs (a `make e2e` finding).

The engine deletes the resources a program no longer declares only after every create and
update of the run, and the provider waits for each new workload to become ready. So while an
update switches strategy, the workloads it deletes still run beside the new ones, and the
quota admission counts both. The oracle is the two renders, before and after: the old workloads
the new render no longer has, at their peak, plus the new workloads at theirs (the peak rules
of tests/release/test_quota.py), each pod at its rendered requests and limits. The quota of
the update (the render after, given the outputs of the render before, as the stack reads its
last update) must hold that sum; rendered without the earlier outputs it does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from appstack_grammar import parse_quantity
from components import config as config_model
from stackctl.render.stack import RenderResult, render_config
from tests.conftest import base_raw, one
from tests.release.helpers import argo, blue_green, canary
from tests.release.test_quota import HEADROOM_PERCENT, peak

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Rollout")
COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


def tight(raw: dict[str, Any]) -> dict[str, Any]:
    """No headroom: the quota is exactly the computed worst case."""
    return {**raw, "namespaceQuota": {"headroomPercent": 0}}


TRANSITIONS = {
    "blueGreen -> rolling": (blue_green("dev", replicas=3), base_raw("dev", replicas=3)),
    "rolling -> blueGreen": (base_raw("dev", replicas=3), blue_green("dev", replicas=3)),
    "canary -> rolling": (
        canary("prod", weight=25, replicas=4, autoscaling={"enabled": False}),
        base_raw("prod", replicas=4, autoscaling={"enabled": False}),
    ),
    "rolling (HPA) -> Argo canary": (base_raw("prod"), argo("canary")),
    "Argo blueGreen -> blueGreen": (argo("blueGreen"), blue_green("prod")),
}


def render(raw: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> RenderResult:
    return render_config(config_model.load(dict(raw)), "dev", previous_outputs=previous)


def workloads(result: RenderResult) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"]["name"]): o for o in result.objects if o["kind"] in WORKLOAD_KINDS
    }


def demand(result: RenderResult, keys: set[tuple[str, str]]) -> dict[str, Decimal]:
    """Pods, requests and limits of the workloads `keys` of a render, each at its peak."""
    hpas = [o for o in result.objects if o["kind"] == "HorizontalPodAutoscaler"]
    total = dict.fromkeys(("pods", *COMPUTE), Decimal(0))
    for key, workload in workloads(result).items():
        if key not in keys:
            continue
        pods = peak([workload, *hpas])
        total["pods"] += pods
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    amount = container["resources"][kind][resource]
                    total[f"{kind}.{resource}"] += pods * parse_quantity(amount)
    return total


def hard(result: RenderResult) -> dict[str, Decimal]:
    spec = one(result.objects, "ResourceQuota")["spec"]["hard"]
    return {key: parse_quantity(str(spec[key])) for key in ("pods", *COMPUTE)}


def switch(name: str) -> tuple[RenderResult, RenderResult, dict[str, Decimal]]:
    """(render before, render after given the outputs before, what the switch runs at once)."""
    before_raw, after_raw = (tight(raw) for raw in TRANSITIONS[name])
    before = render(before_raw)
    after = render(after_raw, before.outputs)
    deleted = set(workloads(before)) - set(workloads(after))
    assert deleted, f"{name}: no workload is deleted, so nothing is a switch"
    old, new = demand(before, deleted), demand(after, set(workloads(after)))
    return before, after, {key: old[key] + new[key] for key in old}


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_the_quota_of_a_strategy_switch_holds_old_and_new_workloads(name: str) -> None:
    _, after, running = switch(name)
    quota = hard(after)
    assert {k: v for k, v in running.items() if v > quota[k]} == {}, (running, quota)


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_the_steady_quota_alone_would_refuse_the_new_pods(name: str) -> None:
    """What the e2e run hit: sized for the new strategy only, the switch does not fit."""
    _, _, running = switch(name)
    steady = hard(render(tight(TRANSITIONS[name][1])))
    assert running["pods"] > steady["pods"], (running, steady)


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_the_update_after_a_switch_returns_the_quota_to_its_steady_size(name: str) -> None:
    _, after, _ = switch(name)
    settled = render(tight(TRANSITIONS[name][1]), after.outputs)
    steady = render(tight(TRANSITIONS[name][1]))
    assert one(settled.objects, "ResourceQuota") == one(steady.objects, "ResourceQuota")


def test_an_update_that_deletes_no_workload_keeps_the_steady_quota() -> None:
    before = render(tight(canary("dev", weight=25, replicas=4)))
    after = render(tight(canary("dev", weight=50, replicas=4)), before.outputs)
    assert hard(after) == hard(render(tight(canary("dev", weight=50, replicas=4))))


@pytest.mark.parametrize(
    "previous",
    [
        {},  # a stack's first update
        {"namespace": "appstack-dev"},  # an older program: no quota_usage output
        {"quota_usage": {"Deployment/old": {"pods": "many"}}},  # not what this program writes
        {"quota_usage": ["Deployment/old"]},
    ],
)
def test_outputs_without_a_usable_quota_usage_carry_nothing_over(
    previous: dict[str, Any],
) -> None:
    raw = tight(base_raw("dev", replicas=3))
    assert hard(render(raw, previous)) == hard(render(raw))


def test_the_carried_pods_are_counted_with_headroom_like_the_rest() -> None:
    before, after = TRANSITIONS["blueGreen -> rolling"]
    old = render(before)
    quota = hard(render(after, old.outputs))
    running = demand(old, set(workloads(old)) - set(workloads(render(after))))
    steady = demand(render(after), set(workloads(render(after))))
    headroom = Decimal(100 + HEADROOM_PERCENT) / 100
    assert quota["pods"] == math.ceil((running["pods"] + steady["pods"]) * headroom)
