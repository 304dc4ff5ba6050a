"""Rules every release strategy keeps: the default is one rolling Deployment, every Deployment
of every strategy has the zero-downtime strategy and the restricted pod of
`components.app.pod.pod_template`, and the app's NetworkPolicy covers every colour and track."""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s
import pytest

from components.app import release
from components.kube import labels
from tests.conftest import Render, base_raw, find, one, pod_spec
from tests.release.helpers import argo, blue_green, canary, pod_labels, selects

STRATEGIES = {
    "blueGreen": blue_green("prod"),
    "canary": canary("prod", replicas=4, autoscaling={"enabled": False}),
    "canary-hpa": canary("prod"),
    "canary-ingress": canary("prod", ingress={"enabled": True, "host": "shop.example.com"}),
}


def test_the_default_is_one_rolling_deployment_without_release_objects(render: Render) -> None:
    objects = render(base_raw("prod")).objects
    assert [d["metadata"]["name"] for d in find(objects, "Deployment")] == ["web"]
    assert sorted(s["metadata"]["name"] for s in find(objects, "Service")) == ["web", "web-metrics"]
    selector = one(objects, "Service", "web")["spec"]["selector"]
    assert selector == one(objects, "Deployment", "web")["spec"]["selector"]["matchLabels"]
    assert [o for o in objects if o["apiVersion"].startswith("argoproj.io")] == []
    for obj in objects:
        for key in (labels.COLOUR, labels.TRACK):
            assert key not in obj["metadata"].get("labels", {})
            if obj["kind"] == "Deployment":
                assert key not in pod_labels(obj)


def test_rolling_strategy_is_the_zero_downtime_one() -> None:
    from components.config import load

    app = load(base_raw("prod", rollout={"maxSurge": 2})).apps["web"]
    strategy = release.rolling_strategy(app)
    assert strategy.type == "RollingUpdate"
    rolling = strategy.rolling_update
    assert isinstance(rolling, k8s.apps.v1.RollingUpdateDeploymentArgs)
    assert rolling.max_unavailable == 0
    assert rolling.max_surge == 2


@pytest.mark.parametrize("raw", list(STRATEGIES.values()), ids=list(STRATEGIES))
def test_every_deployment_keeps_the_zero_downtime_rollout_and_restricted_pod(
    render: Render, raw: dict[str, Any]
) -> None:
    reference = pod_spec(one(render(base_raw("prod")).objects, "Deployment", "web"))
    deployments = find(render(raw).objects, "Deployment")
    assert len(deployments) == 2
    for deployment in deployments:
        spec = deployment["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert spec["strategy"]["rollingUpdate"]["maxSurge"] not in (0, "0%")
        assert spec["minReadySeconds"] == 10
        pod = pod_spec(deployment)
        # the same pod as the rolling Deployment, only the image may differ
        for container, expected in zip(pod["containers"], reference["containers"], strict=True):
            assert {**container, "image": None} == {**expected, "image": None}
        assert {k: v for k, v in pod.items() if k != "containers"} == {
            k: v for k, v in reference.items() if k != "containers"
        }


@pytest.mark.parametrize("raw", list(STRATEGIES.values()), ids=list(STRATEGIES))
def test_deployment_selectors_never_overlap_and_select_their_own_pods(
    render: Render, raw: dict[str, Any]
) -> None:
    deployments = find(render(raw).objects, "Deployment")
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        owners = [d["metadata"]["name"] for d in deployments if selects(selector, pod_labels(d))]
        assert owners == [deployment["metadata"]["name"]]
        assert labels.VERSION not in selector


@pytest.mark.parametrize("raw", list(STRATEGIES.values()), ids=list(STRATEGIES))
def test_the_network_policy_and_metrics_service_cover_every_colour_and_track(
    render: Render, raw: dict[str, Any]
) -> None:
    objects = render(raw).objects
    policy = one(objects, "NetworkPolicy", "web")["spec"]["podSelector"]["matchLabels"]
    metrics = one(objects, "Service", "web-metrics")["spec"]["selector"]
    for deployment in find(objects, "Deployment"):
        assert selects(policy, pod_labels(deployment)), deployment["metadata"]["name"]
        assert selects(metrics, pod_labels(deployment)), deployment["metadata"]["name"]


def _spread_keys(workload: dict[str, Any]) -> list[list[str]]:
    constraints = pod_spec(workload)["topologySpreadConstraints"]
    return [c.pop("matchLabelKeys") for c in constraints]


def test_the_argo_rollout_runs_the_same_pod_as_a_deployment(render: Render) -> None:
    rollout = one(render(argo("blueGreen")).objects, "Rollout", "web")
    deployment = one(render(base_raw("prod")).objects, "Deployment", "web")
    # only the revision key of the spread differs: each controller's own hash label
    assert _spread_keys(rollout) == [["rollouts-pod-template-hash"]] * 2
    assert _spread_keys(deployment) == [["pod-template-hash"]] * 2
    assert rollout["spec"]["template"] == deployment["spec"]["template"]
    assert rollout["spec"]["selector"] == deployment["spec"]["selector"]


RELEASE_TYPES = {
    "kubernetes:apps/v1:Deployment",
    "kubernetes:core/v1:Service",
    "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:networking.k8s.io/v1:Ingress",
    "kubernetes:argoproj.io/v1alpha1:Rollout",
    "kubernetes:argoproj.io/v1alpha1:AnalysisTemplate",
}


def test_every_release_object_is_a_child_of_the_app_service(render: Render) -> None:
    seen = set()
    for raw in (*STRATEGIES.values(), argo("canary", ingress={"enabled": True, "host": "a.b"})):
        for res in render(raw).resources:
            if res.type in RELEASE_TYPES:
                seen.add(res.type)
                assert res.parent_type == "appstack:app:AppService", res.name
    assert seen == RELEASE_TYPES
