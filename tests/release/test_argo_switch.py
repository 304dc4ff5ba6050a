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
def test_a_service_argo_manages_is_never_forced_and_ignores_its_selector(
    render: Render, raw: dict[str, Any]
) -> None:
    """Forcing it would take the selector away from the running controller at every update."""
    result = render(raw)
    for _, _, svc in _argo_services(result.objects):
        obj = _service(result.objects, svc)
        assert obj is not None and FORCE not in _annotations(obj), svc
        assert result.options[f"Service/shop/{svc}"]["ignore_changes"] == ["spec.selector"]


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


@pytest.mark.parametrize(
    ("before_raw", "stale"),
    [
        (blue_green("prod"), True),  # selector {colour: blue} stays under ignore_changes
        (canary("prod", ingress=INGRESS), True),  # selector {track: stable} stays
        (base_raw("prod"), False),  # the stable labels only: nothing stays behind
    ],
    ids=["from blueGreen", "from canary by Ingress", "from rolling"],
)
def test_entering_argo_flags_a_selector_key_the_rollout_pods_lack(
    before_raw: dict[str, Any], stale: bool
) -> None:
    with_ingress = "ingress" in before_raw["apps"]["web"]
    after_raw = argo("canary", ingress=INGRESS) if with_ingress else argo("blueGreen")
    changes = compare(snapshot(before_raw), snapshot(after_raw))
    found = [r for c in changes for r in c.risks if r.startswith("stale-selector")]
    assert bool(found) is stale, found
    strategy = "canary" if with_ingress else "blueGreen"
    for risk in found:  # the two updates that do it, with the config keys to set
        assert (
            "1) appstack:apps.web.release: strategy rolling, argoRollouts false, then pulumi up; "
            f"2) appstack:apps.web.release: strategy {strategy}, argoRollouts true"
        ) in risk, risk
