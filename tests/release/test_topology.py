"""Topology spread per revision uses a label the pods really carry (issue 9 item 5): the
scheduler ignores a `matchLabelKeys` key the pod lacks, and old and new pods then spread as
one group. The pods' labels at runtime are their template's plus the hash label their
controller adds (tests/monitoring/series.py: `pod-template-hash` from the Deployment
controller, `rollouts-pod-template-hash` from Argo Rollouts)."""

from __future__ import annotations

import pytest

from tests.monitoring import series as gen
from tests.monitoring.strategies import STRATEGIES, rendered


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_match_label_key_is_a_label_of_the_running_pods(name: str) -> None:
    cluster = gen.cluster(rendered(name).objects)
    checked = 0
    for pod in cluster.pods:
        (workload,) = cluster.of(pod.owner_kind, pod.owner)
        for constraint in workload["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
            for key in constraint.get("matchLabelKeys", []):
                checked += 1
                assert key in pod.labels, f"{pod.owner_kind} {pod.owner}: pods lack {key!r}"
    assert checked > 0
