"""The namespace quota holds every release-strategy switch the config allows, and is a function
of config alone (issue 27 item 1).

The engine deletes the resources a program no longer declares only after every create and
update of the run, and the provider waits for each new workload to become ready. So while an
update switches strategy, the workloads it deletes still run beside the new ones, and the
quota admission counts both. The oracle is the two renders, before and after: every workload of
either render at its peak (the peak rules of tests/release/test_quota.py, read from the rendered
objects), a workload both renders have counted once at the larger of its two peaks, each pod at
its rendered requests and limits. The quota of the render after must hold that for every
switch between the strategies the config allows (Argo Rollouts only with monitoring on, as the
config validation requires), and a switch must not change the quota at all: then no switch
waits for a quota update, and the update after a switch has nothing left to do.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from appstack_grammar import parse_quantity
from tests.conftest import Render, base_raw, one
from tests.release.helpers import NEW_IMAGE, release_raw
from tests.release.test_quota import INGRESS, peak

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Rollout")
COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
STEPS = (10, 25, 50, 100)  # appstack:apps.<app>.release.steps default (Pulumi.yaml docs)


def tight(raw: dict[str, Any]) -> dict[str, Any]:
    """No headroom: the quota is exactly the computed worst case."""
    return {**raw, "namespaceQuota": {"headroomPercent": 0}}


#: Apps at fixed sizes; each is rendered under every strategy below.
SIZES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "dev, 3 replicas": ("dev", {"replicas": 3}, False),
    "prod, HPA 3..12": ("prod", {}, False),
    "prod, HPA, monitoring (Argo allowed)": ("prod", {}, True),
    "dev, 4 replicas, Ingress, monitoring": ("dev", {"replicas": 4, "ingress": INGRESS}, True),
}


def strategies(environment: str, app: dict[str, Any], monitoring: bool) -> dict[str, Any]:
    """Every strategy the config allows at these sizes, as raw configs (tight)."""
    autoscaled = environment == "prod"
    found: dict[str, dict[str, Any]] = {
        "rolling": {},
        "blueGreen": {"strategy": "blueGreen", "active": "blue", "greenImage": NEW_IMAGE},
        "blueGreen, green active": {"strategy": "blueGreen", "active": "green"},
        "canary weight 0": {"strategy": "canary", "canaryImage": NEW_IMAGE, "weight": 0},
        **{
            f"canary {w}": {"strategy": "canary", "canaryImage": NEW_IMAGE, "weight": w}
            for w in STEPS
        },
    }
    if not autoscaled:  # scaleDownIdle is not allowed with autoscaling
        found["blueGreen, idle scaled down"] = {"strategy": "blueGreen", "scaleDownIdle": True}
    if monitoring:
        found["Argo blueGreen"] = {"strategy": "blueGreen", "argoRollouts": True}
        found["Argo canary"] = {"strategy": "canary", "argoRollouts": True}
    raws = {}
    for name, release in found.items():
        raw = release_raw(environment, release, **app)
        if monitoring:
            raw["monitoring"] = {"enabled": True}
        raws[name] = tight(raw)
    return raws


def peaks(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Decimal]]:
    """Per workload of a render: pods, requests and limits at its peak."""
    hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    found = {}
    for workload in objects:
        if workload["kind"] not in WORKLOAD_KINDS:
            continue
        pods = peak([workload, *hpas])
        demand = dict.fromkeys(("pods", *COMPUTE), Decimal(0))
        demand["pods"] = Decimal(pods)
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    amount = container["resources"][kind][resource]
                    demand[f"{kind}.{resource}"] += pods * parse_quantity(amount)
        found[(workload["kind"], workload["metadata"]["name"])] = demand
    return found


def switch_demand(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Decimal]:
    """What an update from `before` to `after` runs at once (module docstring)."""
    old, new = peaks(before), peaks(after)
    zero = dict.fromkeys(("pods", *COMPUTE), Decimal(0))
    return {
        key: sum(
            (max(old.get(w, zero)[key], new.get(w, zero)[key]) for w in old.keys() | new.keys()),
            Decimal(0),
        )
        for key in zero
    }


def hard(objects: list[dict[str, Any]]) -> dict[str, Decimal]:
    spec = one(objects, "ResourceQuota")["spec"]["hard"]
    return {key: parse_quantity(str(spec[key])) for key in ("pods", *COMPUTE)}


@pytest.fixture
def rendered(render: Render) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {
        size: {name: render(raw).objects for name, raw in strategies(*spec).items()}
        for size, spec in SIZES.items()
    }


@pytest.mark.parametrize("size", list(SIZES))
def test_the_quota_after_any_strategy_switch_holds_old_and_new_workloads(
    rendered: dict[str, dict[str, list[dict[str, Any]]]], size: str
) -> None:
    renders = rendered[size]
    short = {}
    for (a, before), (b, after) in itertools.product(renders.items(), repeat=2):
        running, quota = switch_demand(before, after), hard(after)
        over = {k: (v, quota[k]) for k, v in running.items() if v > quota[k]}
        if over:
            short[f"{a} -> {b}"] = over
    assert short == {}


@pytest.mark.parametrize("size", list(SIZES))
def test_a_strategy_switch_leaves_the_quota_unchanged(
    rendered: dict[str, dict[str, list[dict[str, Any]]]], size: str
) -> None:
    quotas = {name: one(objects, "ResourceQuota") for name, objects in rendered[size].items()}
    first = next(iter(quotas.values()))
    assert {name for name, quota in quotas.items() if quota != first} == set()


@pytest.mark.parametrize("size", list(SIZES))
def test_the_quota_is_the_worst_switch_and_no_more(
    rendered: dict[str, dict[str, list[dict[str, Any]]]], size: str
) -> None:
    """Tight (no headroom) the pod count is exactly the worst switch: the quota still bounds a
    runaway workload."""
    renders = list(rendered[size].values())
    worst = max(switch_demand(a, b)["pods"] for a, b in itertools.product(renders, repeat=2))
    assert hard(renders[0])["pods"] == worst


def test_argo_is_in_the_worst_case_only_where_the_config_allows_it(render: Render) -> None:
    """Without monitoring the config refuses argoRollouts, so its Rollouts do not size the
    quota; with monitoring they may (their preview or canary ReplicaSet at full size)."""
    without = hard(render(tight(base_raw("prod"))).objects)["pods"]
    with_monitoring = tight({**base_raw("prod"), "monitoring": {"enabled": True}})
    assert hard(render(with_monitoring).objects)["pods"] > without


def test_the_render_reads_no_earlier_state(render: Render) -> None:
    """No StackReference (to the stack itself or any other): what the program registers is a
    function of config and code alone."""
    for environment in ("dev", "prod"):
        result = render(base_raw(environment))
        assert "pulumi:pulumi:StackReference" not in {r.type for r in result.resources}
        assert "quota_usage" not in result.outputs
