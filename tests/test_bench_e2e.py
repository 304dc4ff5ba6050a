"""`make bench-e2e` (e2e/bench.py): what its floor waits for and what it applies.

The benchmark itself runs only under `make bench-e2e`; these rules hold its pieces: the floor's
"rolled out" is the Kubernetes provider's success rule for a Deployment (pulumi-kubernetes
v4.25.0 provider/pkg/await/deployment.go), the bump changes every service's image and nothing a
service does not carry, and kubectl receives each Namespace before the objects in it.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from e2e.bench import bumped, manifest_stream, rolled_out, unfinished_rollouts
from stackctl.bench import synthetic


def deployment(
    *,
    generation: int = 2,
    observed: int = 2,
    progressing: tuple[str, str] = ("True", "NewReplicaSetAvailable"),
    available: str = "True",
    replicas: int = 3,
    updated: int = 3,
    ready: int = 3,
    total: int = 3,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "svc000", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": ready,
            "conditions": [
                {"type": "Progressing", "status": progressing[0], "reason": progressing[1]},
                {"type": "Available", "status": available, "reason": "MinimumReplicasAvailable"},
            ],
        },
    }


def test_a_finished_rollout_is_rolled_out() -> None:
    assert rolled_out(deployment())


def test_a_generation_the_controller_has_not_observed_is_not_rolled_out() -> None:
    # the provider ignores events of a stale generation (processDeploymentEvent)
    assert not rolled_out(deployment(generation=3, observed=2))


def test_a_replica_set_still_progressing_is_not_rolled_out() -> None:
    # success needs Progressing True with reason NewReplicaSetAvailable
    assert not rolled_out(deployment(progressing=("True", "ReplicaSetUpdated")))
    assert not rolled_out(deployment(progressing=("False", "ProgressDeadlineExceeded")))


def test_an_unavailable_deployment_is_not_rolled_out() -> None:
    assert not rolled_out(deployment(available="False"))


def test_old_replicas_still_running_are_not_rolled_out() -> None:
    # kubectl rollout status: updated == replicas, total == updated, available == updated
    assert not rolled_out(deployment(updated=2))
    assert not rolled_out(deployment(total=4))
    assert not rolled_out(deployment(ready=2))


def test_a_deployment_without_status_is_not_rolled_out() -> None:
    fresh = deployment()
    del fresh["status"]
    assert not rolled_out(fresh)


def test_the_bump_moves_every_services_image_and_only_the_image() -> None:
    raw = synthetic(10)
    after = bumped(raw)
    assert raw == synthetic(10), "bumped() changed its input"
    for name, app in raw["apps"].items():
        assert after["apps"][name]["image"] != app["image"]
        assert after["apps"][name]["image"].rsplit(":", 1)[0] == app["image"].rsplit(":", 1)[0]
        assert {k: v for k, v in after["apps"][name].items() if k != "image"} == {
            k: v for k, v in app.items() if k != "image"
        }
    assert {k: v for k, v in after.items() if k != "apps"} == {
        k: v for k, v in raw.items() if k != "apps"
    }


def images_of(stream: str) -> set[str]:
    return {
        c["image"]
        for doc in yaml.safe_load_all(stream)
        if doc["kind"] == "Deployment"
        for c in doc["spec"]["template"]["spec"]["containers"]
    }


def test_the_bumped_render_runs_every_service_on_its_new_image() -> None:
    raw = synthetic(10)
    before, objects, _ = manifest_stream(raw)
    after, objects_after, _ = manifest_stream(bumped(raw))
    assert objects == objects_after
    assert images_of(after) == {app["image"] for app in bumped(raw)["apps"].values()}
    assert images_of(before).isdisjoint(images_of(after))


def test_each_namespace_comes_before_the_objects_in_it() -> None:
    stream, objects, namespace = manifest_stream(copy.deepcopy(synthetic(10)))
    docs = list(yaml.safe_load_all(stream))
    assert len(docs) == objects
    seen: set[str] = set()
    for doc in docs:
        if doc["kind"] == "Namespace":
            seen.add(doc["metadata"]["name"])
        elif "namespace" in doc["metadata"]:
            assert doc["metadata"]["namespace"] in seen, doc["metadata"]
    assert namespace in seen


class Listing:
    """A Kube stand-in for `unfinished_rollouts`, which only lists objects of one namespace."""

    def __init__(self, **objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.objects.get(kind, [])


def template(image: str) -> dict[str, Any]:
    return {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}


def replica_set(name: str, image: str, replicas: int, available: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "ownerReferences": [{"kind": "Deployment", "name": "svc000"}]},
        "spec": template(image),
        "status": {"replicas": replicas, "availableReplicas": available},
    }


def rollout(*sets: dict[str, Any], image: str = "r/svc000:1.1.0") -> Any:
    return Listing(
        Deployment=[{"metadata": {"name": "svc000"}, "spec": template(image)}],
        ReplicaSet=list(sets),
    )


def test_a_rollout_whose_old_replica_set_is_scaled_to_zero_is_finished() -> None:
    kube = rollout(
        replica_set("old", "r/svc000:1.0.0", 0, 0), replica_set("new", "r/svc000:1.1.0", 3, 3)
    )
    assert unfinished_rollouts(kube, "bench", {"r/svc000:1.1.0"}) == []


def test_an_hpa_scaling_the_new_replica_set_up_is_not_an_unfinished_rollout() -> None:
    kube = rollout(replica_set("new", "r/svc000:1.1.0", 3, 1))
    assert unfinished_rollouts(kube, "bench", {"r/svc000:1.1.0"}) == []


def test_old_pods_still_running_are_an_unfinished_rollout() -> None:
    kube = rollout(
        replica_set("old", "r/svc000:1.0.0", 1, 1), replica_set("new", "r/svc000:1.1.0", 3, 3)
    )
    assert unfinished_rollouts(kube, "bench", {"r/svc000:1.1.0"}) == [
        "svc000: ReplicaSet old still has pods"
    ]


def test_a_new_replica_set_without_an_available_pod_is_an_unfinished_rollout() -> None:
    kube = rollout(replica_set("new", "r/svc000:1.1.0", 1, 0))
    assert unfinished_rollouts(kube, "bench", {"r/svc000:1.1.0"}) != []
