"""Issue 13: splitting the Jenkins component into parts changes no URN. The snapshot was taken on
main 4f60886 before the split (tests/jenkins/data/urns-main-4f60886.json), from the mock
monitor's registrations with the engine's full parent type chain (sdk/go/common/resource/urn.go
NewURN: parent's qualified type + '$' + type; the Stack is not part of it), as tests/urns.py
rebuilds them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from stackctl.render import REPO_ROOT, load_raw_config
from tests.jenkins.helpers import jenkins_raw, with_monitoring
from tests.urns import render_urns

SNAPSHOT = json.loads((Path(__file__).parent / "data" / "urns-main-4f60886.json").read_text())
#: Resources issue 14 adds after the snapshot: the prod stack file now enables the Jenkins Ingress
#: (people and SCM webhooks). Credentials and users come from the operator's Secrets, which
#: Pulumi does not own, so nothing else is new.
#: Issue 26 (item 8): with the Ingress, a Service without endpoints takes its /prometheus path.
METRICS_CLOSED = (
    "appstack:jenkins:JenkinsController$kubernetes:core/v1:Service::jenkins-metrics-closed"
)
ADDED_BY_ISSUE_14 = {
    "prod-stack-file": {
        "appstack:jenkins:JenkinsController$kubernetes:networking.k8s.io/v1:Ingress::jenkins-ingress",
        METRICS_CLOSED,
    },
    "prod-ingress-loadbalancer": {METRICS_CLOSED},
}

ISSUE_11_BUILDER = "appstack:jenkins:JenkinsController$appstack:jenkins:JenkinsBuilder"


CASES: dict[str, tuple[Mapping[str, Any], str]] = {
    "prod-stack-file": (load_raw_config(REPO_ROOT, "prod"), "prod"),
    "prod-ingress-loadbalancer": (
        with_monitoring(
            jenkins_raw(
                "prod",
                ingress={"enabled": True, "host": "jenkins.example.com"},
                service={"type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24"]},
            )
        ),
        "prod",
    ),
    "dev-existing-secret": (jenkins_raw("dev", admin={"existingSecret": "jenkins-admin"}), "dev"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_jenkins_urns_are_those_of_main_before_the_split(case: str) -> None:
    raw, stack = CASES[case]
    registered, aliases = render_urns(raw, stack)
    # A URN that declares an alias of the snapshot answers to it: the engine finds the old state
    # under the alias and renames it, nothing is replaced (the content-named ConfigMaps).
    urns = {
        next(iter(aliases[urn] & set(SNAPSHOT[case])), urn) if urn in aliases else urn
        for urn in registered
        if urn.startswith("appstack:jenkins:")
    }
    added = ADDED_BY_ISSUE_14.get(case, set())
    # issue 11: the prod stack file enables the image builder (components/jenkins_builder.py),
    # a new subtree under the controller; nothing existing moves.
    added |= (
        {u for u in urns if u.startswith(ISSUE_11_BUILDER)} if case == "prod-stack-file" else set()
    )
    assert added.isdisjoint(SNAPSHOT[case])
    assert added <= urns
    assert urns - added == set(SNAPSHOT[case])
