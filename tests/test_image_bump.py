"""An image bump changes only what runs the image: the workloads (their pod templates and their
own version label; APP_VERSION comes from that label, so the ConfigMap stays).
Every other object renders byte for byte the same, so under the real engine a bump is one
update per workload, not one per object: no Service or Ingress await, no extra full-state
write (docs/performance.md, "Levers"). The oracle is the render of the two configs."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from components.kube import labels
from stackctl.bench import synthetic
from stackctl.render import REPO_ROOT, load_raw_config
from tests.conftest import Render
from tests.release.helpers import RELEASE_VARIANTS

WORKLOADS = frozenset({"Deployment", "StatefulSet", "Rollout"})

Key = tuple[str, str, str]


def by_key(objects: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects
    }


def bump_apps(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every app's image moved to a new tag (its repository kept, any digest dropped)."""
    out = copy.deepcopy(dict(raw))
    for app in out["apps"].values():
        repo = app["image"].split("@", 1)[0].rsplit(":", 1)[0]
        app["image"] = f"{repo}:9.9.9"
    return out


def changed_by_bump(render: Render, raw: Mapping[str, Any], bumped: Mapping[str, Any]) -> set[Key]:
    before, after = by_key(render(raw).objects), by_key(render(bumped).objects)
    assert len(before) == len(after)
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def assert_only_workloads(changed: set[Key]) -> None:
    """Nothing but workloads changed (none at all when every workload pins its own image, as
    blue-green with both colours' images set does)."""
    workloads = {k for k in changed if k[0] in WORKLOADS}
    assert changed == workloads, sorted(changed - workloads)


def test_an_image_bump_of_every_service_changes_only_the_workloads(
    render: Render,
) -> None:
    raw = synthetic(3)
    changed = changed_by_bump(render, raw, bump_apps(raw))
    assert_only_workloads(changed)
    assert {k[2] for k in changed if k[0] == "Deployment"} == {"svc000", "svc001", "svc002"}


@pytest.mark.parametrize("variant", sorted(RELEASE_VARIANTS))
def test_an_image_bump_under_every_release_strategy_changes_only_workloads(
    render: Render, variant: str
) -> None:
    raw = RELEASE_VARIANTS[variant]
    assert_only_workloads(changed_by_bump(render, raw, bump_apps(raw)))


def test_a_jenkins_image_bump_changes_only_the_controller_statefulset(render: Render) -> None:
    raw = copy.deepcopy(dict(load_raw_config(REPO_ROOT, "prod")))
    bumped = copy.deepcopy(raw)
    bumped["jenkins"]["image"] = "jenkins/jenkins:2.541.9-lts-jdk21"
    changed = changed_by_bump(render, raw, bumped)
    assert {k[0] for k in changed} == {"StatefulSet"}, sorted(changed)


def test_the_version_label_is_on_every_workload_and_pod_template_only(render: Render) -> None:
    """Where ops read the version (`kubectl get deploy,pods -L app.kubernetes.io/version`)."""
    objects = render(load_raw_config(REPO_ROOT, "prod")).objects
    for obj in objects:
        has = labels.VERSION in obj["metadata"].get("labels", {})
        assert has == (obj["kind"] in WORKLOADS), (obj["kind"], obj["metadata"]["name"])
        if obj["kind"] in WORKLOADS:
            assert labels.VERSION in obj["spec"]["template"]["metadata"]["labels"]
