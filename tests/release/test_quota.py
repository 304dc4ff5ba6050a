"""The namespace ResourceQuota holds the peak pod count of every release strategy (issue 9
item 6), computed here from the rendered workloads and each controller's documented peak:

- Deployment: its most replicas (the HPA's maxReplicas when an HPA targets it) plus its
  rolling-update maxSurge, a percentage rounded up (apps/v1 DeploymentStrategy); every
  Deployment of the app may roll at once (a config change rolls both colours, or both tracks);
- Argo Rollout, blueGreen: the active and the preview ReplicaSet at full size
  (previewReplicaCount unset);
- Argo Rollout, canary with trafficRouting: the stable ReplicaSet stays at 100 % while the
  canary grows to setWeight %, and to 100 % once the steps are done, before the stable one
  scales down (argo-rollouts utils/replicaset/canary.go
  CalculateReplicaCountsForTrafficRoutedCanary): twice the replicas;
- Argo Rollout, basic canary: replicas + maxSurge (CalculateReplicaCountsForBasicCanary)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from tests.conftest import Render, base_raw, one
from tests.release.helpers import argo, blue_green, canary

INGRESS = {"enabled": True, "host": "shop.example.com"}
HEADROOM_PERCENT = 25  # appstack:namespaceQuota.headroomPercent default (Pulumi.yaml docs)


def _scaled(value: int | str, replicas: int) -> int:
    if isinstance(value, int):
        return value
    return math.ceil(replicas * int(value.rstrip("%")) / 100)


def _most(objects: list[dict[str, Any]], workload: Mapping[str, Any]) -> int:
    for hpa in objects:
        if hpa["kind"] != "HorizontalPodAutoscaler":
            continue
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref["kind"], ref["name"]) == (workload["kind"], workload["metadata"]["name"]):
            return int(hpa["spec"]["maxReplicas"])
    return int(workload["spec"].get("replicas", 1))


def peak(objects: list[dict[str, Any]]) -> int:
    total = 0
    for w in objects:
        if w["kind"] == "Deployment":
            count = _most(objects, w)
            total += count + _scaled(w["spec"]["strategy"]["rollingUpdate"]["maxSurge"], count)
        elif w["kind"] == "Rollout":
            count = _most(objects, w)
            strategy = w["spec"]["strategy"]
            if "blueGreen" in strategy:
                preview = strategy["blueGreen"].get("previewReplicaCount", count)
                total += count + preview
            elif "trafficRouting" in strategy["canary"]:
                total += 2 * count
            else:
                total += count + _scaled(strategy["canary"].get("maxSurge", "25%"), count)
    return total


CONFIGS = {
    "rolling": base_raw("prod"),
    "rolling-fixed": base_raw("dev", replicas=3),
    "blueGreen-hpa": blue_green("prod"),
    "blueGreen-fixed": blue_green("dev", replicas=3),
    "blueGreen-scale-down-idle": blue_green("dev", replicas=3, release={"scaleDownIdle": True}),
    "canary-replicas": canary("prod", weight=25, replicas=4, autoscaling={"enabled": False}),
    "canary-hpa": canary("prod", weight=50),
    "canary-ingress": canary("prod", weight=10, ingress=INGRESS),
    "argo-canary": argo("canary"),
    "argo-canary-traffic-routing": argo("canary", ingress=INGRESS),
    "argo-canary-traffic-routing-fixed": argo(
        "canary", "dev", replicas=4, ingress=INGRESS, release={"steps": [10, 50]}
    ),
    "argo-blueGreen": argo("blueGreen"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_quota_holds_the_peak_pod_count_of_the_strategy(render: Render, name: str) -> None:
    objects = render(CONFIGS[name]).objects
    hard = one(objects, "ResourceQuota")["spec"]["hard"]
    expected = peak(objects)
    assert expected > 0
    # at least: the quota holds every strategy switch too (tests/release/test_quota_transition)
    assert int(hard["pods"]) >= math.ceil(expected * (100 + HEADROOM_PERCENT) / 100)


def test_argo_canary_with_traffic_routing_makes_room_for_twice_the_replicas(render: Render) -> None:
    raw = argo("canary", "dev", replicas=4, ingress=INGRESS, release={"steps": [10, 50]})
    hard = one(render(raw).objects, "ResourceQuota")["spec"]["hard"]
    assert int(hard["pods"]) >= 2 * 4
