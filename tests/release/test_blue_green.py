"""blueGreen: two colour Deployments; the Service selects the active colour, the preview
Service the idle one; flipping `active` moves traffic without touching a pod template."""

from __future__ import annotations

from typing import Any

import pytest

from components.kube import labels
from tests.conftest import PROD_IMAGE, Render, find, one
from tests.release.helpers import NEW_IMAGE, blue_green, image_of, pod_labels, selected_workloads


def deployments(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return find(objects, "Deployment")


def test_two_colour_deployments_each_labelled_and_selecting_its_colour(render: Render) -> None:
    objects = render(blue_green()).objects
    assert sorted(d["metadata"]["name"] for d in deployments(objects)) == ["web-blue", "web-green"]
    for colour in ("blue", "green"):
        deployment = one(objects, "Deployment", f"web-{colour}")
        assert pod_labels(deployment)[labels.COLOUR] == colour
        assert deployment["spec"]["selector"]["matchLabels"] == {
            **labels.selector_labels("web", "dev"),
            labels.COLOUR: colour,
        }


def test_each_colour_runs_its_image_defaulting_to_the_app_image(render: Render) -> None:
    objects = render(blue_green()).objects
    assert image_of(one(objects, "Deployment", "web-blue")) == PROD_IMAGE
    assert image_of(one(objects, "Deployment", "web-green")) == NEW_IMAGE
    assert pod_labels(one(objects, "Deployment", "web-green"))[labels.VERSION] == "1.5.0"


@pytest.mark.parametrize("active", ["blue", "green"])
def test_the_service_selects_the_active_colour_and_preview_the_idle_one(
    render: Render, active: str
) -> None:
    objects = render(blue_green(active=active)).objects
    idle = "green" if active == "blue" else "blue"
    main = one(objects, "Service", "web")["spec"]["selector"]
    preview = one(objects, "Service", "web-preview")
    assert selected_workloads(main, deployments(objects)) == [f"web-{active}"]
    assert selected_workloads(preview["spec"]["selector"], deployments(objects)) == [f"web-{idle}"]
    assert preview["spec"]["type"] == "ClusterIP"


def _index(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


def _changed(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths of the leaves that differ between two manifests."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            p for k in sorted(set(a) | set(b)) for p in _changed(a.get(k), b.get(k), f"{path}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            p
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for p in _changed(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [path]


def flip_diff(render: Render, **settings: Any) -> dict[str, list[str]]:
    blue = _index(render(blue_green(active="blue", **settings)).objects)
    green = _index(render(blue_green(active="green", **settings)).objects)
    assert blue.keys() == green.keys()
    diff = {ref: _changed(blue[ref], green[ref]) for ref in blue}
    return {ref: paths for ref, paths in diff.items() if paths}


SELECTOR = f".spec.selector.{labels.COLOUR}"
PDB_SELECTOR = f".spec.selector.matchLabels.{labels.COLOUR}"


def test_flipping_the_colour_changes_only_service_and_pdb_selectors(render: Render) -> None:
    assert flip_diff(render, replicas=3) == {
        "Service/web": [SELECTOR],
        "Service/web-preview": [SELECTOR],
        "PodDisruptionBudget/web": [PDB_SELECTOR],
        "PodDisruptionBudget/web-preview": [PDB_SELECTOR],
    }


def test_with_an_hpa_the_flip_changes_only_selectors_no_replicas_no_hpa(render: Render) -> None:
    assert flip_diff(render, autoscaling={"enabled": True, "minReplicas": 2}) == {
        "Service/web": [SELECTOR],
        "Service/web-preview": [SELECTOR],
        "PodDisruptionBudget/web": [PDB_SELECTOR],
        "PodDisruptionBudget/web-preview": [PDB_SELECTOR],
    }


def test_with_scale_down_idle_the_flip_also_moves_the_replicas(render: Render) -> None:
    assert flip_diff(render, replicas=3, release={"scaleDownIdle": True}) == {
        "Service/web": [SELECTOR],
        "Service/web-preview": [SELECTOR],
        "PodDisruptionBudget/web": [PDB_SELECTOR],
        "Deployment/web-blue": [".spec.replicas"],
        "Deployment/web-green": [".spec.replicas"],
    }


@pytest.mark.parametrize(
    "settings",
    [{"replicas": 3}, {"autoscaling": {"enabled": True}}, {"release": {"scaleDownIdle": True}}],
    ids=["replicas", "hpa", "scale-down-idle"],
)
def test_no_pod_template_changes_when_the_colour_flips(
    render: Render, settings: dict[str, Any]
) -> None:
    blue = render(blue_green(active="blue", **settings)).objects
    green = render(blue_green(active="green", **settings)).objects
    for name in ("web-blue", "web-green"):
        before = one(blue, "Deployment", name)
        after = one(green, "Deployment", name)
        assert before["spec"]["template"] == after["spec"]["template"]
        assert before["spec"]["selector"] == after["spec"]["selector"]
        assert before["metadata"] == after["metadata"]


def test_idle_colour_keeps_the_replicas_by_default(render: Render) -> None:
    objects = render(blue_green(replicas=3)).objects
    assert one(objects, "Deployment", "web-blue")["spec"]["replicas"] == 3
    assert one(objects, "Deployment", "web-green")["spec"]["replicas"] == 3


def test_scale_down_idle_scales_the_idle_colour_to_zero(render: Render) -> None:
    objects = render(blue_green(replicas=3, release={"scaleDownIdle": True})).objects
    assert one(objects, "Deployment", "web-blue")["spec"]["replicas"] == 3
    assert one(objects, "Deployment", "web-green")["spec"]["replicas"] == 0
    # no budget for a colour without pods
    assert [p["metadata"]["name"] for p in find(objects, "PodDisruptionBudget")] == ["web"]


def test_each_colour_has_its_own_hpa_owning_its_replicas(render: Render) -> None:
    result = render(blue_green("prod", active="green"))  # prod: HPA min 3
    targets = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in find(result.objects, "HorizontalPodAutoscaler")
    }
    assert sorted(targets) == ["web-blue", "web-green"]
    for name, hpa in targets.items():
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert "replicas" not in one(result.objects, "Deployment", name)["spec"]
        assert result.options[f"Deployment/shop/{name}"]["ignore_changes"] == ["spec.replicas"]


def test_the_pdb_selects_the_active_colour_and_a_preview_pdb_the_idle_one(render: Render) -> None:
    objects = render(blue_green("prod", active="green")).objects
    main = one(objects, "PodDisruptionBudget", "web")["spec"]["selector"]["matchLabels"]
    preview = one(objects, "PodDisruptionBudget", "web-preview")["spec"]["selector"]["matchLabels"]
    assert selected_workloads(main, deployments(objects)) == ["web-green"]
    assert selected_workloads(preview, deployments(objects)) == ["web-blue"]


def test_the_active_colour_is_updated_before_the_services_and_the_idle_one_after(
    render: Render,
) -> None:
    options = render(blue_green(active="green", replicas=2)).options
    assert "depends_on" not in options["Deployment/shop/web-green"]
    assert options["Service/shop/web"]["depends_on"] == 1  # the active Deployment
    assert options["Service/shop/web-preview"]["depends_on"] == 1
    assert options["Deployment/shop/web-blue"]["depends_on"] == 2  # both Services
