"""Everyday changes never apply a field another controller owns (issue 9 items 8 and 9).

Render before and after a change, take the fields the controllers own in the live objects
before it, and build the Server-Side Apply request the Kubernetes provider would send for each
object that changed, the way pulumi-kubernetes v4 does (provider/pkg/await/await.go `ssaUpdate`,
`handleSSAIgnoreFields`, `patchForce`):

- a field in the resource's `ignore_changes` that another manager owns (and we do not) is dropped
  from the request;
- the request is forced only with the `pulumi.com/patchForce: "true"` annotation.

Owners, from the controllers' sources:
- the HPA controller writes `spec.replicas` of its scale target through the scale subresource
  (field manager "kube-controller-manager", subresource "scale": pulumi-kubernetes #2491, #2569);
- Argo Rollouts patches `rollouts-pod-template-hash` into `spec.selector` of the Services it
  manages (argo-rollouts rollout/service.go switchServiceSelector: blueGreen activeService and
  previewService, canary stableService and canaryService); `spec.selector` is an atomic map, so
  it owns the whole selector.

A request that carries an other-owned field conflicts; forcing it is only acceptable when the
owning controller is gone after the change (autoscaling turned off: the HPA is deleted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Render, base_raw
from tests.release.helpers import NEW_IMAGE, argo, blue_green, canary

INGRESS = {"enabled": True, "host": "shop.example.com"}


@dataclass(frozen=True)
class Owner:
    manager: str
    controller: tuple[str, ...]
    """What must still exist after the change for the owner to be alive."""


def _ref(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']}"


def _hpa_targets(objects: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    return {
        (
            "hpa",
            o["metadata"]["namespace"],
            o["spec"]["scaleTargetRef"]["kind"],
            o["spec"]["scaleTargetRef"]["name"],
        )
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
    }


def _argo_services(objects: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    keys = ("activeService", "previewService", "stableService", "canaryService")
    found = set()
    for o in objects:
        if o["kind"] != "Rollout":
            continue
        for strategy in o["spec"]["strategy"].values():
            for key in keys:
                if key in strategy:
                    found.add(("argo", o["metadata"]["namespace"], strategy[key]))
    return found


def other_owned(objects: list[dict[str, Any]]) -> dict[tuple[str, str], Owner]:
    """(object ref, field path) -> its owner, in the live cluster of a render."""
    owned: dict[tuple[str, str], Owner] = {}
    for _, ns, kind, name in _hpa_targets(objects):
        owned[(f"{kind}/{ns}/{name}", "spec.replicas")] = Owner(
            "kube-controller-manager", ("hpa", ns, kind, name)
        )
    for _, ns, name in _argo_services(objects):
        owned[(f"Service/{ns}/{name}", "spec.selector")] = Owner(
            "rollouts-controller", ("argo", ns, name)
        )
    return owned


def _get(obj: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _without(obj: Mapping[str, Any], path: str) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    out = dict(obj)
    if head in out:
        if rest:
            out[head] = _without(out[head], rest)
        else:
            del out[head]
    return out


def conflicts(render: Render, before_raw: dict[str, Any], after_raw: dict[str, Any]) -> list[str]:
    before, after = render(before_raw), render(after_raw)
    owned = other_owned(before.objects)
    alive = _hpa_targets(after.objects) | _argo_services(after.objects)
    old = {_ref(o): o for o in before.objects}
    problems = []
    for obj in after.objects:
        ref = _ref(obj)
        if ref not in old:
            continue  # a create: nobody else owns anything yet
        ignored = after.options.get(ref, {}).get("ignore_changes") or []
        # the engine diffs with the old inputs in place of the ignored paths
        new = obj
        for path in ignored:
            new = _without(new, path)
        if new == _pruned(old[ref], ignored):
            continue  # no update is sent
        request = dict(obj)
        for (owned_ref, path), owner in owned.items():
            if owned_ref != ref or _get(request, path) is None:
                continue
            if path in ignored:
                continue  # handleSSAIgnoreFields drops it: another manager owns it, we do not
            forced = _get(request, "metadata.annotations") or {}
            if owner.controller in alive:
                problems.append(f"{ref}: applies {path}, owned by the live {owner.manager}")
            elif forced.get("pulumi.com/patchForce") != "true":
                problems.append(f"{ref}: {path} conflicts with {owner.manager} (no patchForce)")
    return problems


def _pruned(obj: Mapping[str, Any], paths: list[str]) -> dict[str, Any]:
    out = dict(obj)
    for path in paths:
        out = _without(out, path)
    return out


HPA_OFF = {"autoscaling": {"enabled": False}, "replicas": 3}

CHANGES = {
    "blue-green flip under an HPA": (
        blue_green("prod", active="blue"),
        blue_green("prod", active="green"),
    ),
    "blue-green flip back under an HPA": (
        blue_green("prod", active="green"),
        blue_green("prod", active="blue"),
    ),
    "blue-green autoscaling off": (blue_green("prod"), blue_green("prod", **HPA_OFF)),
    "rolling autoscaling off": (base_raw("prod"), base_raw("prod", **HPA_OFF)),
    "argo blue-green image bump": (argo("blueGreen"), argo("blueGreen", image=NEW_IMAGE)),
    "argo canary image bump": (
        argo("canary", ingress=INGRESS),
        argo("canary", ingress=INGRESS, image=NEW_IMAGE),
    ),
    "argo canary autoscaling off": (
        argo("canary", ingress=INGRESS),
        argo("canary", ingress=INGRESS, **HPA_OFF),
    ),
    "argo blue-green port change": (
        argo("blueGreen"),
        argo("blueGreen", service={"port": 8081, "loadBalancerSourceRanges": ["203.0.113.0/24"]}),
    ),
    # argoRollouts off (issue 27 item 2): the controller is gone after the change, and still
    # owns the Services' selectors: a plain apply of them conflicts, a forced one is right.
    "argo blue-green off, to rolling": (argo("blueGreen"), base_raw("prod")),
    "argo blue-green off, to blue-green": (argo("blueGreen"), blue_green("prod")),
    "argo canary off, to canary by Ingress": (
        argo("canary", ingress=INGRESS),
        canary("prod", ingress=INGRESS),
    ),
    "argo blue-green on, from rolling": (base_raw("prod"), argo("blueGreen")),
    "argo blue-green on, from blue-green": (blue_green("prod"), argo("blueGreen")),
    "argo canary on, from canary by Ingress": (
        canary("prod", ingress=INGRESS),
        argo("canary", ingress=INGRESS),
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_no_update_applies_a_field_another_controller_owns(render: Render, change: str) -> None:
    before, after = CHANGES[change]
    assert conflicts(render, before, after) == []


def test_the_model_sees_the_conflicts_it_guards_against(render: Render) -> None:
    """Without the protections the same changes conflict: the oracle is not vacuous."""
    before = render(argo("blueGreen"))
    owned = other_owned(before.objects)
    assert ("Service/shop/web", "spec.selector") in owned
    assert ("Service/shop/web-preview", "spec.selector") in owned
    assert ("Rollout/shop/web", "spec.replicas") in owned
    flip = render(blue_green("prod", active="blue"))
    assert {ref for ref, path in other_owned(flip.objects) if path == "spec.replicas"} == {
        "Deployment/shop/web-blue",
        "Deployment/shop/web-green",
    }


@pytest.mark.parametrize(
    "raw",
    [blue_green("prod"), argo("blueGreen"), argo("canary", ingress=INGRESS), base_raw("prod")],
    ids=["blueGreen", "argo-blueGreen", "argo-canary", "rolling"],
)
def test_a_workload_under_an_hpa_never_sets_replicas_and_ignores_them(
    render: Render, raw: dict[str, Any]
) -> None:
    result = render(raw)
    for ref, path in other_owned(result.objects):
        obj = next(o for o in result.objects if _ref(o) == ref)
        assert _get(obj, path) is None, ref
        if path == "spec.selector":  # a Service Argo manages: no selector, nothing to ignore
            continue
        assert path in (result.options[ref].get("ignore_changes") or []), ref
