"""Issue 13: restructuring the components replaces nothing in a running stack. Every URN (type
chain + name) in the snapshot taken on main bc4a7ff before the restructure is still registered,
or is declared as an `aliases` entry of a resource that is; new URNs must be listed below.

Regenerate the snapshot only for an intended change of the resource tree:
`.venv/bin/python -m tests.urns > tests/golden/urns.json` (and say why in the commit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tooling import SHIPPED_STACKS
from tests.urns import cases, render_urns

SNAPSHOT: dict[str, list[str]] = json.loads(
    (Path(__file__).parent / "golden" / "urns.json").read_text()
)
#: URNs a case may register that the snapshot lacks (a new resource is a create, never a replace).
_BUILDER = "appstack:jenkins:JenkinsController$appstack:jenkins:JenkinsBuilder"
ALLOWED_ADDITIONS: dict[str, set[str]] = {
    # Issue 14 (jenkins branch, merged after the snapshot): the prod stack file enables the
    # Jenkins Ingress (people and SCM webhooks); tests/jenkins/test_urns.py lists it too.
    # Issue 11 (delivery): the prod stack file enables the Jenkins image builder, a new subtree
    # (components/jenkins_builder.py); nothing existing moves.
    "prod": {
        "appstack:jenkins:JenkinsController$kubernetes:networking.k8s.io/v1:Ingress::jenkins-ingress",
        # Issue 26 (item 8): the Service without endpoints the Ingress sends /prometheus to.
        "appstack:jenkins:JenkinsController$kubernetes:core/v1:Service::jenkins-metrics-closed",
        *(
            f"{_BUILDER}{child}"
            for child in (
                "::jenkins-builder",
                "$kubernetes:core/v1:Namespace::jenkins-builder-namespace",
                "$kubernetes:core/v1:ServiceAccount::jenkins-builder-sa",
                "$kubernetes:rbac.authorization.k8s.io/v1:Role::jenkins-builder-role",
                "$kubernetes:rbac.authorization.k8s.io/v1:RoleBinding::jenkins-builder-rolebinding",
                "$kubernetes:networking.k8s.io/v1:NetworkPolicy::jenkins-builder-agents-netpol",
                "$kubernetes:networking.k8s.io/v1:NetworkPolicy::jenkins-builder-controller-netpol",
                "$appstack:network:BaselineNetworkPolicies::jenkins-builder-baseline",
                "$appstack:network:BaselineNetworkPolicies$kubernetes:networking.k8s.io/v1:"
                "NetworkPolicy::jenkins-builder-baseline-allow-dns",
                "$appstack:network:BaselineNetworkPolicies$kubernetes:networking.k8s.io/v1:"
                "NetworkPolicy::jenkins-builder-baseline-default-deny",
            )
        ),
    },
}
CASES = cases()


def dashboard_additions(urns: set[str]) -> set[str]:
    """Issue 30 item 4: wherever monitoring is on, a dashboard ConfigMap per app (a new child of
    AppMonitoring) and the stack's dashboard (a new component): creates, nothing existing moves."""
    app_dashboard = "appstack:monitoring:AppMonitoring$kubernetes:core/v1:ConfigMap::"
    return {
        urn
        for urn in urns
        if urn.startswith("appstack:monitoring:StackDashboard")
        or (urn.startswith(app_dashboard) and urn.endswith("-monitoring-dashboard"))
    }


def test_the_snapshot_covers_every_stack_and_every_release_strategy() -> None:
    assert set(SNAPSHOT) == set(CASES)
    assert set(SHIPPED_STACKS) <= set(SNAPSHOT)


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_resource_of_the_snapshot_is_replaced(case: str) -> None:
    factory, stack = CASES[case]
    before = set(SNAPSHOT[case])
    urns, aliases = render_urns(factory(), stack)
    aliased = set().union(*aliases.values())
    lost = before - urns - aliased
    assert not lost, f"{case}: these resources would be deleted and re-created: {sorted(lost)}"
    renamed = {urn for urn, old in aliases.items() if old & before}
    added = urns - before - renamed - ALLOWED_ADDITIONS.get(case, set()) - dashboard_additions(urns)
    assert not added, f"{case}: new resources not listed in ALLOWED_ADDITIONS: {sorted(added)}"
