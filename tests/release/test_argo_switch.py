"""Switching argoRollouts on and off, each in one update (issue 27 item 2).

Argo Rollouts writes `rollouts-pod-template-hash` into the selector of every Service a Rollout
names (argo-rollouts rollout/service.go `switchServiceSelector`, a strategic merge patch; the
Rollout's blueGreen activeService/previewService, canary stableService/canaryService), and
`spec.selector` of a Service is an atomic map (k8s.io/api core/v1 ServiceSpec.Selector,
`+mapType=atomic`): the controller ("rollouts-controller") then owns the whole selector.

Leaving Argo, the Services it managed must be updated in that same update, with a forced apply
of their new selector: an update not sent leaves the live selector holding the hash of the
deleted Rollout's pods (the Service selects nothing once they go), and an unforced apply is a
Server-Side Apply conflict with "rollouts-controller" (pulumi-kubernetes v4.25.0
provider/pkg/await/await.go `ssaUpdate`: `Force: patchForce(...)`, true for the annotation
`pulumi.com/patchForce: "true"`; `handleSSAErr` reports the conflict otherwise). The oracle is
the two renders: which Services the Rollout before names, and whether the render after changes
them (the engine sends an update only for a changed input, provider/pkg/provider/provider.go
`Diff`) and forces the apply. `make e2e` does the same against a real API server
(tests/e2e/test_e2e.py, the selector first written under "rollouts-controller").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from stackctl.diff.compare import compare
from stackctl.diff.model import Snapshot
from tests.conftest import Render, base_raw
from tests.diff.scenarios import snapshot
from tests.release.helpers import argo, blue_green, canary
from tests.release.test_field_ownership import _argo_services

INGRESS = {"enabled": True, "host": "shop.example.com"}
FORCE = "pulumi.com/patchForce"

LEAVING = {
    "argo blueGreen -> rolling": (argo("blueGreen"), base_raw("prod")),
    "argo blueGreen -> blueGreen": (argo("blueGreen"), blue_green("prod")),
    "argo canary (Ingress) -> canary (Ingress)": (
        argo("canary", ingress=INGRESS),
        canary("prod", ingress=INGRESS),
    ),
    "argo canary (Ingress) -> rolling (Ingress)": (
        argo("canary", ingress=INGRESS),
        base_raw("prod", ingress=INGRESS),
    ),
}


def _service(objects: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next(
        (o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == name), None
    )


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    found: Mapping[str, str] = obj["metadata"].get("annotations") or {}
    return found


@pytest.mark.parametrize("name", list(LEAVING))
def test_leaving_argo_updates_and_forces_every_service_it_managed(
    render: Render, name: str
) -> None:
    before_raw, after_raw = LEAVING[name]
    before, after = render(before_raw), render(after_raw)
    managed = {svc for _, _, svc in _argo_services(before.objects)}
    assert managed, "the Rollout before names no Service"
    for svc in sorted(managed):
        old, new = _service(before.objects, svc), _service(after.objects, svc)
        assert old is not None
        if new is None:
            continue  # deleted at the end of the update: nothing left to select
        assert new != old, f"{svc}: no update is sent, the live selector keeps the hash"
        assert _annotations(new).get(FORCE) == "true", f"{svc}: unforced apply conflicts"
        options = after.options.get(f"Service/shop/{svc}", {})
        assert "spec.selector" not in (options.get("ignore_changes") or []), svc


@pytest.mark.parametrize("raw", [argo("blueGreen"), argo("canary", ingress=INGRESS)])
def test_a_service_argo_manages_sets_no_selector_and_is_never_forced(
    render: Render, raw: dict[str, Any]
) -> None:
    """The controller owns the whole atomic selector once it writes its hash: the program
    applies none (no conflict, no fight), and forcing would take fields from the controller.
    No ignore_changes either: the engine would reset the input to the old selector in the
    update that turns Argo on (pulumi step_generator.go processIgnoreChanges)."""
    result = render(raw)
    for _, _, svc in _argo_services(result.objects):
        obj = _service(result.objects, svc)
        assert obj is not None and FORCE not in _annotations(obj), svc
        assert "selector" not in obj["spec"], svc
        options = result.options.get(f"Service/shop/{svc}", {})
        assert not options.get("ignore_changes"), svc


def test_stackctl_diff_finds_no_conflict_leaving_argo() -> None:
    before, after = snapshot(argo("blueGreen")), snapshot(base_raw("prod"))
    changes = {(c.kind, c.name): c for c in compare(before, after)}
    web = changes[("Service", "web")]
    assert web.action == "update"
    assert not [r for r in web.risks if r.startswith("controller-owned")], web.risks


def test_stackctl_diff_flags_the_conflict_without_the_force() -> None:
    """The same change with the annotation taken out: the diff sees the conflict."""
    before, after = snapshot(argo("blueGreen")), snapshot(base_raw("prod"))
    objects = []
    for obj in after.objects:
        if obj["kind"] == "Service" and obj["metadata"]["name"] == "web":
            obj = {**obj, "metadata": {**obj["metadata"], "annotations": {}}}
        objects.append(obj)
    unforced = Snapshot(objects, after.options, after.secrets)
    web = {(c.kind, c.name): c for c in compare(before, unforced)}[("Service", "web")]
    assert "controller-owned" in web.risk_codes


ENTERING = {
    "from blueGreen": (blue_green("prod"), argo("blueGreen")),
    "from canary by Ingress": (canary("prod", ingress=INGRESS), argo("canary", ingress=INGRESS)),
    "from rolling": (base_raw("prod"), argo("blueGreen")),
}


@pytest.mark.parametrize("name", list(ENTERING))
def test_entering_argo_is_one_update_that_drops_every_selector_key(name: str) -> None:
    """Whatever the Services selected before (a colour, a track, the stable labels), the update
    that turns Argo on sends them without a selector: the apply drops the field the program's
    manager owned, and the controller's validation (every selector key but its hash is a pod
    template label, argo-rollouts ValidateService) passes."""
    before_raw, after_raw = ENTERING[name]
    before, after = snapshot(before_raw), snapshot(after_raw)
    changes = {(c.kind, c.name): c for c in compare(before, after)}
    managed = {svc for _, _, svc in _argo_services(after.objects)}
    for svc in sorted(managed):
        if _service(before.objects, svc) is None:
            continue  # created by this update
        change = changes[("Service", svc)]
        assert change.action == "update", (svc, change)
        assert "spec.selector" in change.fields, (svc, change.fields)
        assert not change.risks, (svc, change.risks)
    found = [r for c in changes.values() for r in c.risks if r.startswith("stale-selector")]
    assert found == []


@pytest.mark.parametrize(("before_raw", "after_raw"), list(ENTERING.values()), ids=list(ENTERING))
def test_the_diff_flags_a_kept_selector_the_rollout_pods_lack(
    before_raw: dict[str, Any], after_raw: dict[str, Any]
) -> None:
    """The design until issue 27, planted: the Services keep their old selector under
    ignore_changes (the engine resets the ignored input). A colour or a track the Rollout's
    pods lack is flagged; the stable labels alone are not."""
    before, after = snapshot(before_raw), snapshot(after_raw)
    objects = []
    old = {o["metadata"]["name"]: o for o in before.objects if o["kind"] == "Service"}
    managed = {svc for _, _, svc in _argo_services(after.objects)}
    options = dict(after.options)
    for obj in after.objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "Service" and name in managed and name in old:
            obj = {**obj, "spec": {**obj["spec"], "selector": old[name]["spec"]["selector"]}}
            options[f"Service/shop/{name}"] = {"ignore_changes": ["spec.selector"]}
        objects.append(obj)
    planted = Snapshot(objects, options, after.secrets)
    found = [r for c in compare(before, planted) for r in c.risks if r.startswith("stale-")]
    kept = {
        k
        for name in managed & set(old)
        for k in old[name]["spec"]["selector"]
        if k not in {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    }
    assert bool(found) is bool(kept), (found, kept)
    for key in kept:
        assert any(key in r and "ValidateService" in r for r in found), (key, found)
