"""Issue 29, scenario 1: why a rollout failed, read from the API objects.

The oracle is the shape the Kubernetes API serves: the objects below are written as the
kubelet, the scheduler and the Deployment controller fill them, following the Kubernetes docs
("Deployments: Failed Deployment" for the Progressing/ReplicaFailure conditions and their
`ProgressDeadlineExceeded` / `FailedCreate` reasons; "Debug Running Pods" and "Pod Lifecycle:
container states" for `state.waiting.reason` ErrImagePull / ImagePullBackOff / CrashLoopBackOff
with `lastState.terminated`; "Configure Liveness, Readiness and Startup Probes" for the
`Unhealthy` event `Readiness probe failed: HTTP probe failed with statuscode: 503`; "Termination
messages" for FallbackToLogsOnError), never from the module's constants. What is certain before
the deadline follows the kubelet: a pull is retried after a back-off, a crashed container is
restarted after one (restartCount counts the restarts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stackctl.ops.rollout_status import (
    deadline_exceeded,
    diagnose,
    early_reason,
    failure_message,
    new_pods,
    new_replicaset,
    pod_reason,
    rollout_pending,
)

NS = "appstack"


def deployment(*conds: dict[str, Any], generation: int = 2, observed: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": NS,
            "uid": "d-1",
            "generation": generation,
            "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "prod"},
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "status": {"observedGeneration": observed, "conditions": list(conds)},
    }


def replicaset(name: str, revision: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"rs-{name}",
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-1"}
            ],
        },
    }


OLD_RS, NEW_RS = replicaset("web-6b9f7c8d4", "1"), replicaset("web-5d8f9b7c6", "2")


def pod(name: str, rs: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"]}
            ],
        },
        "status": status,
    }


def event(
    pod_name: str, reason: str, message: str, at: str = "2026-12-07T06:00:00Z"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "type": "Warning",
        "reason": reason,
        "message": message,
        "lastTimestamp": at,
        "involvedObject": {
            "kind": "Pod",
            "namespace": NS,
            "name": pod_name,
            "uid": f"uid-{pod_name}",
            "fieldPath": "spec.containers{web}",
        },
    }


PROGRESS_DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "web-5d8f9b7c6" has timed out progressing.',
}
AVAILABLE = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
READY_OLD = {
    "phase": "Running",
    "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
    "containerStatuses": [
        {"name": "web", "ready": True, "started": True, "restartCount": 0,
         "state": {"running": {"startedAt": "2026-12-07T05:00:00Z"}}}
    ],
}  # fmt: skip
IMAGE = "registry.example.com/appstack/web:9.9.9-missing"
PULL_FAILED = (
    f'Failed to pull image "{IMAGE}": rpc error: code = NotFound desc = failed to pull and '
    f'unpack image "{IMAGE}": not found'
)


def pull_status(reason: str) -> dict[str, Any]:
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"},
                       {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {"name": "web", "image": IMAGE, "imageID": "", "ready": False, "started": False,
             "restartCount": 0,
             "state": {"waiting": {"reason": reason,
                                   "message": f'Back-off pulling image "{IMAGE}"'}},
             "lastState": {}}
        ],
    }  # fmt: skip


CRASHING = {
    "phase": "Running",
    "conditions": [{"type": "PodScheduled", "status": "True"},
                   {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
    "containerStatuses": [
        {"name": "web", "ready": False, "started": False, "restartCount": 4,
         "state": {"waiting": {"reason": "CrashLoopBackOff",
                               "message": "back-off 1m20s restarting failed container=web"}},
         "lastState": {"terminated": {"exitCode": 3, "reason": "Error",
                                      "finishedAt": "2026-12-07T06:00:10Z"}}}
    ],
}  # fmt: skip
NEVER_READY = {
    "phase": "Running",
    "conditions": [{"type": "PodScheduled", "status": "True"},
                   {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
    "containerStatuses": [
        {"name": "web", "ready": False, "started": True, "restartCount": 0,
         "state": {"running": {"startedAt": "2026-12-07T06:00:00Z"}}}
    ],
}  # fmt: skip
UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 "
                               "nodes are available: 3 No preemption victims found."}],
}  # fmt: skip


def cluster(new_status: dict[str, Any], *events: dict[str, Any]) -> dict[str, Any]:
    """A prod web rollout stuck at its first surge pod; the old pods keep serving."""
    return {
        "replicasets": [OLD_RS, NEW_RS],
        "pods": [
            pod("web-6b9f7c8d4-aaaaa", OLD_RS, READY_OLD),
            pod("web-6b9f7c8d4-bbbbb", OLD_RS, READY_OLD),
            pod("web-5d8f9b7c6-xxxxx", NEW_RS, new_status),
        ],
        "events": list(events),
    }


def diagnosed(world: dict[str, Any], *conds: dict[str, Any]) -> Any:
    return diagnose(
        deployment(*(conds or (AVAILABLE, PROGRESS_DEADLINE))),
        world["replicasets"],
        world["pods"],
        world["events"],
    )


# ------------------------------------------------------------------ the Deployment's verdict


def test_progress_deadline_exceeded_is_read_from_the_progressing_condition() -> None:
    assert deadline_exceeded(deployment(AVAILABLE, PROGRESS_DEADLINE))


def test_a_deadline_condition_of_an_earlier_generation_does_not_count() -> None:
    # spec changed (generation 3) but the controller has not acted on it yet
    assert not deadline_exceeded(deployment(PROGRESS_DEADLINE, generation=3, observed=2))


def test_a_progressing_rollout_is_not_a_failure() -> None:
    progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
    assert not deadline_exceeded(deployment(AVAILABLE, progressing))


def test_the_new_replicaset_is_the_one_of_the_deployments_revision() -> None:
    assert new_replicaset(deployment(), [OLD_RS, NEW_RS]) is NEW_RS


# ------------------------------------------------------------------ the pods' reasons


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_an_image_that_cannot_be_pulled_names_the_image(reason: str) -> None:
    world = cluster(pull_status(reason), event("web-5d8f9b7c6-xxxxx", "Failed", PULL_FAILED))
    problem = diagnosed(world)
    assert (problem.app, problem.reason) == ("web", reason)
    assert problem.detail == PULL_FAILED
    assert problem.pods == "1 of 1 new pods"


def test_without_events_the_waiting_message_is_the_detail() -> None:
    problem = diagnosed(cluster(pull_status("ImagePullBackOff")))
    assert problem.detail == f'Back-off pulling image "{IMAGE}"'


def test_a_crash_before_ready_gives_the_exit_code_and_restarts() -> None:
    problem = diagnosed(cluster(CRASHING))
    assert problem.reason == "CrashLoopBackOff"
    assert problem.detail == "container web exit code 3 (Error), restarted 4 time(s)"


def test_readiness_that_never_passes_is_read_from_the_probers_event() -> None:
    world = cluster(
        NEVER_READY,
        event("web-5d8f9b7c6-xxxxx", "Unhealthy",
              "Readiness probe failed: HTTP probe failed with statuscode: 503"),
    )  # fmt: skip
    problem = diagnosed(world)
    assert problem.reason == "ReadinessProbeFailed"
    assert problem.detail == "Readiness probe failed: HTTP probe failed with statuscode: 503"


def test_events_of_another_pod_are_not_this_pods_reason() -> None:
    other = event("web-6b9f7c8d4-aaaaa", "Unhealthy", "Readiness probe failed: timeout")
    problem = diagnosed(cluster(NEVER_READY, other))
    assert problem.reason == "NotReady"


def test_an_unschedulable_pod_gives_the_schedulers_message() -> None:
    problem = diagnosed(cluster(UNSCHEDULABLE))
    assert problem.reason == "Unschedulable"
    assert problem.detail.startswith("0/3 nodes are available: 3 Insufficient cpu.")


def test_a_replicaset_that_cannot_create_pods_is_the_deployments_replica_failure() -> None:
    failure = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": 'pods "web-5d8f9b7c6-xxxxx" is forbidden: exceeded quota: appstack-quota, '
        "requested: requests.cpu=250m, used: requests.cpu=1, limited: requests.cpu=1",
    }
    problem = diagnosed(cluster(READY_OLD), AVAILABLE, PROGRESS_DEADLINE, failure)
    assert problem.reason == "FailedCreate" and "exceeded quota" in problem.detail


def test_old_pods_failing_are_not_the_new_versions_reason() -> None:
    world = cluster(NEVER_READY)
    world["pods"][0] = pod("web-6b9f7c8d4-aaaaa", OLD_RS, CRASHING)
    assert diagnosed(world).reason == "NotReady"


def test_a_deadline_with_every_new_pod_ready_reports_the_condition() -> None:
    problem = diagnosed(cluster(READY_OLD))
    assert problem.reason == "ProgressDeadlineExceeded"
    assert problem.detail == 'ReplicaSet "web-5d8f9b7c6" has timed out progressing.'


def test_a_complete_rollout_has_no_problem() -> None:
    complete = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
    assert diagnosed(cluster(READY_OLD), AVAILABLE, complete) is None
    assert pod_reason(pod("p", NEW_RS, READY_OLD), []) is None


def test_the_message_names_the_app_and_the_reason_in_one_line() -> None:
    world = cluster(
        pull_status("ErrImagePull"), event("web-5d8f9b7c6-xxxxx", "Failed", PULL_FAILED)
    )
    message = failure_message("prod", [diagnosed(world)])
    assert "\n" not in message
    assert message == (
        f"rollout of prod failed: app web: ErrImagePull: {PULL_FAILED} "
        "(Deployment appstack/web, 1 of 1 new pods)"
    )


# ------------------------------------------------------------------ what the reason names


def with_probes(world_pod: dict[str, Any]) -> dict[str, Any]:
    """The pod with the probes the render gives the app container (components/config
    workload.py Probes defaults: startup GET /health, readiness GET /health/ready, port `http`),
    in the core/v1 Container shape."""
    world_pod["spec"] = {
        "containers": [
            {"name": "web",
             "startupProbe": {"httpGet": {"path": "/health", "port": "http"}},
             "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "http"}}}
        ]
    }  # fmt: skip
    return world_pod


def test_a_readiness_failure_names_the_path_the_kubelet_probed() -> None:
    # the prober's event gives the status code only; the path is the pod spec's
    world = cluster(
        NEVER_READY,
        event("web-5d8f9b7c6-xxxxx", "Unhealthy",
              "Readiness probe failed: HTTP probe failed with statuscode: 503"),
    )  # fmt: skip
    with_probes(world["pods"][2])
    assert diagnosed(world).detail == (
        "Readiness probe failed: HTTP probe failed with statuscode: 503 "
        "(GET /health/ready on port http)"
    )


def test_a_crash_names_the_last_line_the_container_wrote() -> None:
    # terminationMessagePolicy FallbackToLogsOnError: the kubelet copies the log's tail into
    # lastState.terminated.message
    crashing = json_copy(CRASHING)
    crashing["containerStatuses"][0]["lastState"]["terminated"]["message"] = (
        '{"event": "crashed"}\nerror: crashing on start (FAULT_CRASH_ON_START=true)\n'
    )
    assert diagnosed(cluster(crashing)).detail == (
        "container web exit code 3 (Error), restarted 4 time(s); "
        "last output: error: crashing on start (FAULT_CRASH_ON_START=true)"
    )


def json_copy(doc: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(doc))
    return copied


# ------------------------------------------------------------------ certain before the deadline


def crashing(restarts: int) -> dict[str, Any]:
    status = json_copy(CRASHING)
    status["containerStatuses"][0]["restartCount"] = restarts
    return status


STARTING_SLOWLY = {
    "phase": "Running",
    "conditions": [{"type": "PodScheduled", "status": "True"},
                   {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
    "containerStatuses": [
        {"name": "web", "ready": False, "started": False, "restartCount": 0,
         "state": {"running": {"startedAt": "2026-12-07T06:00:00Z"}}}
    ],
}  # fmt: skip


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_a_pull_failure_is_certain_only_once_it_persisted(reason: str) -> None:
    assert early_reason(pod("p", NEW_RS, pull_status(reason))) == (reason, False)


def test_a_crash_loop_is_certain_after_two_restarts() -> None:
    assert early_reason(pod("p", NEW_RS, crashing(2))) == ("CrashLoopBackOff", True)


def test_a_first_crash_is_not_yet_certain() -> None:
    assert early_reason(pod("p", NEW_RS, crashing(1))) is None


@pytest.mark.parametrize(
    "status", [NEVER_READY, STARTING_SLOWLY, READY_OLD], ids=["never-ready", "slow", "ready"]
)
def test_probes_failing_or_passing_are_never_certain_early(status: dict[str, Any]) -> None:
    # a slow but good version fails its startup probe for a while: only the deadline judges
    assert early_reason(pod("p", NEW_RS, status)) is None


def test_the_new_pods_are_the_new_replicasets_not_being_deleted() -> None:
    world = cluster(NEVER_READY)
    leaving = pod("web-5d8f9b7c6-yyyyy", NEW_RS, NEVER_READY)
    leaving["metadata"]["deletionTimestamp"] = "2026-12-07T06:01:00Z"
    found = new_pods(deployment(), world["replicasets"], [*world["pods"], leaving])
    assert [p["metadata"]["name"] for p in found] == ["web-5d8f9b7c6-xxxxx"]


# ------------------------------------------------- finished, by kubectl's rule (rollout_pending)
# The oracle: `kubectl rollout status` (k8s.io/kubectl v0.36 pkg/polymorphichelpers/
# rollout_status.go DeploymentStatusViewer.Status), which reads replica counts only.

HEALTHY = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}


def counted(
    *conds: dict[str, Any], updated: int, replicas: int, available: int, observed: int = 2
) -> dict[str, Any]:
    """The Deployment at generation 2 (spec: 2 replicas) with these replica counts; its
    conditions those of a finished rollout unless given."""
    found = deployment(*(conds or (AVAILABLE, HEALTHY)), observed=observed)
    found["spec"] = {"replicas": 2}
    found["status"].update(
        {"updatedReplicas": updated, "replicas": replicas, "availableReplicas": available}
    )
    return found


def test_a_rollback_reusing_a_kept_replicaset_is_unfinished_while_its_reason_is_stale() -> None:
    # the controller reused the old ReplicaSet (still at 0 pods) and left the previous
    # rollout's NewReplicaSetAvailable: sync.go getNewReplicaSet, progress.go syncRolloutStatus
    assert rollout_pending(counted(updated=0, replicas=2, available=2)) == (
        "web: 0 of 2 new replicas updated"
    )


def test_old_replicas_left_mean_the_rollout_is_unfinished() -> None:
    assert rollout_pending(counted(updated=2, replicas=3, available=3)) == (
        "web: 1 old replicas pending termination"
    )


def test_updated_replicas_not_yet_available_mean_the_rollout_is_unfinished() -> None:
    assert rollout_pending(counted(updated=2, replicas=2, available=1)) == (
        "web: 1 of 2 updated replicas available"
    )


def test_a_spec_the_controller_has_not_observed_is_unfinished() -> None:
    found = counted(updated=2, replicas=2, available=2, observed=1)
    assert rollout_pending(found) == "web: the controller has not observed generation 2"


def test_every_replica_updated_and_available_is_a_finished_rollout() -> None:
    assert rollout_pending(counted(updated=2, replicas=2, available=2)) is None
