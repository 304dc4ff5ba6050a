"""`stackctl diff` refuses a change whose rollout does not fit the new namespace quota (issue 27
item 1): the quota is sized from the config being applied, while the old pods keep their old
requests until the new ones replace them. Renders of the real prod stack file, before and
after; the expected amounts are read from those renders (the HPA maximum, the containers'
requests, the Deployment's maxSurge, the quota's `hard`), the rollout bound is the Deployment
controller's (old + new <= replicas + maxSurge, maxUnavailable 0)."""

from __future__ import annotations

import copy
import math
import re
from decimal import Decimal
from typing import Any

import pytest

from components import config as config_model
from stackctl.diff.compare import Snapshot, compare
from stackctl.diff.quota import HEADROOM_KEY, amount
from stackctl.render.stack import REPO_ROOT, load_raw_config

PROD = load_raw_config(REPO_ROOT, "prod")


def edit(raw: dict[str, Any], **web: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    out["apps"]["web"] = config_model.deep_merge(out["apps"]["web"], web)
    return out


def lowered(headroom: int | None = None) -> dict[str, Any]:
    """Prod with web's requests.cpu 250m -> 20m and maxReplicas 12 -> 5 (the change found on
    real nodes)."""
    out = edit(PROD, resources={"requests": {"cpu": "20m"}}, autoscaling={"maxReplicas": 5})
    if headroom is not None:
        out["namespaceQuota"] = {"headroomPercent": headroom}
    return out


_SNAPSHOTS: dict[str, Snapshot] = {}


def snap(raw: dict[str, Any]) -> Snapshot:
    key = repr(raw)
    if key not in _SNAPSHOTS:
        _SNAPSHOTS[key] = Snapshot.of_config(config_model.load(raw), "prod")
    return _SNAPSHOTS[key]


def quota_risks(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [r for c in compare(snap(before), snap(after)) for r in c.risks if r.startswith("quota")]


def kind(snapshot: Snapshot, name: str) -> dict[str, Any]:
    (found,) = [o for o in snapshot.objects if o["kind"] == name]
    return found


def cpu_request(snapshot: Snapshot) -> Decimal:
    pod = kind(snapshot, "Deployment")["spec"]["template"]["spec"]
    return sum((amount(c["resources"]["requests"]["cpu"]) for c in pod["containers"]), Decimal(0))


def test_lowering_requests_and_max_replicas_is_refused_with_the_peak_the_rollout_needs() -> None:
    before, after = snap(PROD), snap(lowered())
    old_pods = kind(before, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    new_pods = kind(after, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    surge_text = kind(after, "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    surge = math.ceil(new_pods * int(surge_text.rstrip("%")) / 100)
    # Every old pod (the HPA may have scaled it to its maximum) beside the first surge of new
    # ones, or the last old surge beside every new pod: the larger end.
    peak = max(
        old_pods * cpu_request(before) + surge * cpu_request(after),
        surge * cpu_request(before) + new_pods * cpu_request(after),
    )
    hard = kind(after, "ResourceQuota")["spec"]["hard"]["requests.cpu"]
    assert amount(hard) < peak  # the case itself: the new quota is below the rollout's peak
    (risk,) = quota_risks(PROD, lowered())
    assert f"requests.cpu {int(peak * 1000)}m > {hard}" in risk, risk
    assert "appstack:apps.web.resources.requests.cpu" in risk
    assert "appstack:apps.web.autoscaling.maxReplicas" in risk


def test_the_risk_is_on_the_quota_and_fails_the_diff() -> None:
    changes = compare(snap(PROD), snap(lowered()))
    holders = [c for c in changes if any(r.startswith("quota:") for r in c.risks)]
    assert [(c.kind, c.name) for c in holders] == [("ResourceQuota", "appstack-quota")]


def named_headroom(risk: str) -> int:
    found = re.search(rf"1\) this change with {re.escape(HEADROOM_KEY)}: (\d+)", risk)
    assert found, risk
    return int(found.group(1))


def test_the_named_headroom_is_the_smallest_that_fits_and_the_second_update_fits_too() -> None:
    # Steps that restart no pod first: maxReplicas alone passes.
    step = edit(PROD, autoscaling={"maxReplicas": 5})
    assert quota_risks(PROD, step) == []
    rest = edit(step, resources={"requests": {"cpu": "20m"}})
    (risk,) = quota_risks(step, rest)
    headroom = named_headroom(risk)
    with_headroom = {**rest, "namespaceQuota": {"headroomPercent": headroom}}
    assert quota_risks(step, with_headroom) == []
    assert quota_risks(step, {**rest, "namespaceQuota": {"headroomPercent": headroom - 1}})
    assert quota_risks(with_headroom, rest) == []  # 2) headroom back: the pods already fit


@pytest.mark.parametrize(
    "change",
    [
        {"autoscaling": {"maxReplicas": 5}},  # no pod restarts: the running pods stay
        {"resources": {"requests": {"cpu": "500m"}}},  # raised: the new quota is larger
        {"resources": {"requests": {"cpu": "200m"}}},  # a small step the old pods fit beside
        {"image": "registry.example.com/appstack/web:9.9.9"},  # an everyday image bump
    ],
    ids=["max-replicas-down", "requests-up", "requests-slightly-down", "image-bump"],
)
def test_a_change_whose_rollout_fits_raises_no_quota_risk(change: dict[str, Any]) -> None:
    assert quota_risks(PROD, edit(PROD, **change)) == []


def test_a_change_raises_no_quota_risk_when_the_quota_is_off() -> None:
    off = {**PROD, "namespaceQuota": {"enabled": False}}
    assert quota_risks(off, {**lowered(), "namespaceQuota": {"enabled": False}}) == []


def test_the_rendered_quota_names_the_headroom_that_sized_it() -> None:
    quota = kind(snap(lowered(40)), "ResourceQuota")
    assert quota["metadata"]["annotations"]["appstack.io/quota-headroom-percent"] == "40"
    base = amount(kind(snap(lowered(0)), "ResourceQuota")["spec"]["hard"]["requests.cpu"])
    assert amount(quota["spec"]["hard"]["requests.cpu"]) == base * Decimal("1.4")


def test_the_real_node_hpa_change_fits_with_its_headroom_and_not_without() -> None:
    """tests/e2e/test_realapp_hpa.py deploys prod's web at 40m and maxReplicas 5 with
    `stackctl deploy`, which runs this check against the shipped prod: its headroom must hold
    the rollout, and the shipped headroom must not (the check would refuse the deploy)."""
    from tests.e2e.test_realapp_hpa import E2E_AUTOSCALING, E2E_HEADROOM

    change = config_model.deep_merge(PROD, {"apps": {"web": E2E_AUTOSCALING}})
    assert quota_risks(PROD, change)
    assert quota_risks(PROD, {**change, "namespaceQuota": E2E_HEADROOM}) == []
