"""canary: a stable and a canary Deployment; the canary's share of the traffic is the
configured weight, by replica ratio or by ingress-nginx canary weight; weight 0 renders none."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import canary_pods
from components.kube import labels
from tests.conftest import PROD_IMAGE, Render, find, one
from tests.release.helpers import NEW_IMAGE, canary, image_of, pod_labels, selected_workloads

INGRESS = {"enabled": True, "host": "shop.example.com", "tlsSecretName": "shop-tls"}


def replicas(objects: list[dict[str, Any]], name: str) -> int:
    value: int = one(objects, "Deployment", name)["spec"]["replicas"]
    return value


def test_stable_runs_the_app_image_and_canary_the_canary_image(render: Render) -> None:
    objects = render(canary(replicas=4)).objects
    stable, canary_ = one(objects, "Deployment", "web"), one(objects, "Deployment", "web-canary")
    assert image_of(stable) == PROD_IMAGE and image_of(canary_) == NEW_IMAGE
    assert pod_labels(stable)[labels.TRACK] == "stable"
    assert pod_labels(canary_)[labels.TRACK] == "canary"
    assert pod_labels(canary_)[labels.VERSION] == "1.5.0"


def test_without_ingress_the_service_selects_both_tracks(render: Render) -> None:
    objects = render(canary(replicas=4)).objects
    selector = one(objects, "Service", "web")["spec"]["selector"]
    assert selector == labels.selector_labels("web", "dev")
    assert selected_workloads(selector, find(objects, "Deployment")) == ["web", "web-canary"]


@pytest.mark.parametrize(
    ("total", "weight", "canary_count"),
    [(4, 25, 1), (10, 10, 1), (10, 25, 3), (10, 50, 5), (10, 100, 10), (3, 50, 2), (2, 10, 1)],
)
def test_the_replica_ratio_is_the_configured_weight(
    render: Render, total: int, weight: int, canary_count: int
) -> None:
    objects = render(canary(replicas=total, weight=weight)).objects
    assert replicas(objects, "web-canary") == canary_count
    assert replicas(objects, "web") + replicas(objects, "web-canary") == total
    # rounded half up, at least one pod: the share is as close to the weight as pods allow
    share = 100 * canary_count / total
    assert abs(share - weight) <= 50 / total + 1e-9 or canary_count == 1


def test_canary_pods_rounds_half_up_with_at_least_one() -> None:
    assert [canary_pods(10, w) for w in (0, 1, 4, 5, 15, 25, 100)] == [0, 1, 1, 1, 2, 3, 10]


def test_with_an_hpa_the_hpa_owns_stable_and_the_canary_gets_its_share_of_the_minimum(
    render: Render,
) -> None:
    result = render(canary("prod", weight=50, autoscaling={"minReplicas": 4, "maxReplicas": 8}))
    hpa = one(result.objects, "HorizontalPodAutoscaler", "web")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert "replicas" not in one(result.objects, "Deployment", "web")["spec"]
    assert result.options["Deployment/shop/web"]["ignore_changes"] == ["spec.replicas"]
    assert replicas(result.objects, "web-canary") == 2  # 50 % of the HPA minimum 4
    assert "ignore_changes" not in result.options["Deployment/shop/web-canary"]


def test_the_pdb_selects_the_stable_track_and_a_canary_pdb_never_blocks_a_drain(
    render: Render,
) -> None:
    objects = render(canary("prod")).objects
    deployments = find(objects, "Deployment")
    main = one(objects, "PodDisruptionBudget", "web")["spec"]
    extra = one(objects, "PodDisruptionBudget", "web-canary")["spec"]
    assert selected_workloads(main["selector"]["matchLabels"], deployments) == ["web"]
    assert selected_workloads(extra["selector"]["matchLabels"], deployments) == ["web-canary"]
    assert extra["maxUnavailable"] == 1 and "minAvailable" not in extra


def test_with_ingress_the_nginx_canary_annotation_carries_the_weight(render: Render) -> None:
    objects = render(canary(weight=10, replicas=4, ingress=INGRESS)).objects
    ingress = one(objects, "Ingress", "web-canary")
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "10",
    }
    main = one(objects, "Ingress", "web")
    assert "annotations" not in main["metadata"]
    # same host, path and TLS as the main Ingress, another backend
    assert ingress["spec"]["tls"] == main["spec"]["tls"]
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert ingress["spec"]["rules"][0]["host"] == "shop.example.com"
    assert path["backend"]["service"] == {"name": "web-canary", "port": {"name": "http"}}


def test_with_ingress_each_service_selects_only_its_track(render: Render) -> None:
    objects = render(canary(replicas=4, ingress=INGRESS)).objects
    deployments = find(objects, "Deployment")
    main = one(objects, "Service", "web")["spec"]["selector"]
    canary_svc = one(objects, "Service", "web-canary")["spec"]
    assert selected_workloads(main, deployments) == ["web"]
    assert selected_workloads(canary_svc["selector"], deployments) == ["web-canary"]
    assert canary_svc["type"] == "ClusterIP"
    # the traffic split is the ingress weight, so stable keeps all its replicas
    assert replicas(objects, "web") == 4


@pytest.mark.parametrize("ingress", [False, True], ids=["replicas", "ingress"])
def test_weight_zero_renders_no_canary_object(render: Render, ingress: bool) -> None:
    raw = canary(weight=0, replicas=4, ingress=INGRESS if ingress else {"enabled": False})
    objects = render(raw).objects
    assert [o for o in objects if "canary" in o["metadata"]["name"]] == []
    assert [
        o for o in objects if o["metadata"].get("labels", {}).get(labels.TRACK) == "canary"
    ] == []
    assert replicas(objects, "web") == 4
    assert image_of(one(objects, "Deployment", "web")) == PROD_IMAGE


def test_promotion_runs_the_canary_image_on_the_stable_track(render: Render) -> None:
    promoted = render(canary(weight=0, replicas=4, image=NEW_IMAGE)).objects
    assert [image_of(d) for d in find(promoted, "Deployment")] == [NEW_IMAGE]
    assert pod_labels(one(promoted, "Deployment", "web"))[labels.VERSION] == "1.5.0"


def test_changing_the_weight_never_touches_the_pod_templates(render: Render) -> None:
    low = render(canary(weight=10, replicas=10)).objects
    high = render(canary(weight=50, replicas=10)).objects
    for name in ("web", "web-canary"):
        assert (
            one(low, "Deployment", name)["spec"]["template"]
            == (one(high, "Deployment", name)["spec"]["template"])
        )
