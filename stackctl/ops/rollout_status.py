"""Why a rollout failed, read from the API objects: a Deployment, its ReplicaSets, their pods
and the pods' events, as plain dicts in the shapes the Kubernetes API serves them (apps/v1
Deployment and ReplicaSet, core/v1 Pod and Event). No I/O here: stackctl/ops/rollout_watch.py
reads the objects; this module judges them, so the tests feed it documented shapes.

What the kubelet and the controllers write, and what is read here:
- Deployment controller: condition `Progressing` status False with reason
  `ProgressDeadlineExceeded` once a rollout made no progress for progressDeadlineSeconds;
  `ReplicaFailure` True (reason `FailedCreate`, e.g. a quota refused the pod) when the new
  ReplicaSet cannot create pods. The new ReplicaSet carries the Deployment's
  `deployment.kubernetes.io/revision` annotation.
- kubelet, a container's `state.waiting.reason`: `ErrImagePull`, `ImagePullBackOff`,
  `ErrImageNeverPull`, `InvalidImageName` (pkg/kubelet/images/types.go), `CrashLoopBackOff`
  (with `lastState.terminated.exitCode`), `CreateContainerConfigError`, ...; a running
  container whose readiness fails stays `ready: false`, and the kubelet's prober records an
  event with reason `Unhealthy` and a message `Readiness probe failed: ...` (or `Startup probe
  failed: ...`); an image pull failure is also an event with reason `Failed`.
- scheduler: pod condition `PodScheduled` False with reason `Unschedulable`.

Certain before the deadline (`early_reason`, used by stackctl/ops/rollout_watch.py): a good
version never fails to pull its image and never crash-loops; a slow one only fails its startup
or readiness probe for a while. So an image pull failure that persists (the kubelet retries a
pull after 10 s, then 20 s, ...: `backOffPeriod` and `MaxContainerBackOff` of
pkg/kubelet/kubelet.go) and a container restarted CRASH_RESTARTS times in CrashLoopBackOff end
the rollout early; a probe that fails never does (the deadline decides).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REVISION = "deployment.kubernetes.io/revision"
NAME_LABEL = "app.kubernetes.io/name"
IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")
#: the order in which pod reasons are reported when several pods fail differently
REASON_ORDER = (
    *IMAGE_PULL_REASONS,
    "CrashLoopBackOff",
    "ContainerExited",
    "StartupProbeFailed",
    "ReadinessProbeFailed",
    "Unschedulable",
)

#: restarts after which a new pod's crash loop is certain: it exited, was restarted after the
#: kubelet's back-off, exited again, was restarted again and is waiting once more
CRASH_RESTARTS = 2

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class RolloutProblem:
    """One failed rollout: the app, the workload and the reason its new pods give."""

    app: str
    workload: str  # "Deployment <namespace>/<name>"
    reason: str
    detail: str
    pods: str = ""  # "1 of 1 new pods"

    def line(self) -> str:
        where = f"{self.workload}, {self.pods}" if self.pods else self.workload
        return f"app {self.app}: {self.reason}: {self.detail} ({where})"


def conditions(obj: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or []}


def observed(deployment: Obj) -> bool:
    """The controller has acted on the current spec (status.observedGeneration)."""
    meta, status = deployment.get("metadata") or {}, deployment.get("status") or {}
    return int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)


def deadline_exceeded(deployment: Obj) -> bool:
    """The controller has given up on the current rollout (ProgressDeadlineExceeded)."""
    progressing = conditions(deployment).get("Progressing") or {}
    return (
        observed(deployment)
        and progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    )


def rollout_pending(deployment: Obj) -> str | None:
    """What the Deployment's current rollout still waits for; None once it has finished.

    kubectl's rule (`kubectl rollout status`, k8s.io/kubectl v0.36
    pkg/polymorphichelpers/rollout_status.go `DeploymentStatusViewer.Status`): the controller
    has observed the spec, every replica runs the current template, no old replica is left, and
    every updated replica is available. It reads the replica counts only, never the
    `Progressing` reason: a rollback to a template whose ReplicaSet is still kept (within
    revisionHistoryLimit) reuses that ReplicaSet, and the controller leaves the reason at
    `NewReplicaSetAvailable` from the previous rollout until it sees progress
    (k8s.io/kubernetes v1.36 pkg/controller/deployment/sync.go `getNewReplicaSet`,
    progress.go `syncRolloutStatus`)."""
    meta, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = meta.get("name")
    if not observed(deployment):
        return f"{name}: the controller has not observed generation {meta.get('generation')}"
    updated = int(status.get("updatedReplicas") or 0)
    replicas, available = (
        int(status.get("replicas") or 0),
        int(status.get("availableReplicas") or 0),
    )
    wanted = spec.get("replicas")
    if wanted is not None and updated < int(wanted):
        return f"{name}: {updated} of {wanted} new replicas updated"
    if replicas > updated:
        return f"{name}: {replicas - updated} old replicas pending termination"
    if available < updated:
        return f"{name}: {available} of {updated} updated replicas available"
    return None


def _owned_by(obj: Obj, owner: Obj) -> bool:
    uid = (owner.get("metadata") or {}).get("uid")
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


def new_replicaset(deployment: Obj, replicasets: Iterable[Obj]) -> Obj | None:
    """The ReplicaSet of the Deployment's current revision."""
    revision = ((deployment.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    for rs in replicasets:
        annotations = (rs.get("metadata") or {}).get("annotations") or {}
        if _owned_by(rs, deployment) and revision and annotations.get(REVISION) == revision:
            return rs
    return None


def _events_of(pod: Obj, events: Iterable[Obj]) -> list[Obj]:
    meta = pod.get("metadata") or {}
    found = [
        e
        for e in events
        if (e.get("involvedObject") or {}).get("kind") == "Pod"
        and (e.get("involvedObject") or {}).get("name") == meta.get("name")
        and (e.get("involvedObject") or {}).get("uid") in (None, meta.get("uid"))
    ]
    return sorted(found, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def _last_event(events: Sequence[Obj], reason: str, prefix: str = "") -> str | None:
    for event in reversed(events):
        message = str(event.get("message") or "")
        if event.get("reason") == reason and message.startswith(prefix):
            return message.strip()
    return None


def _probe_target(spec: Obj | None, probe: str) -> str:
    """` (GET <path> on port <port>)` of the container's HTTP probe: the kubelet's event names
    the status code but not the path it probed."""
    get = ((spec or {}).get(probe) or {}).get("httpGet") or {}
    if not get.get("path"):
        return ""
    port = f" on port {get['port']}" if get.get("port") is not None else ""
    return f" (GET {get['path']}{port})"


def _container_reason(
    status: Obj, events: Sequence[Obj], spec: Obj | None = None
) -> tuple[str, str] | None:
    name = status.get("name")
    state = status.get("state") or {}
    waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
    reason = str(waiting.get("reason") or "")
    if reason in IMAGE_PULL_REASONS:
        pulled = _last_event(events, "Failed", "Failed to pull image")
        detail = pulled or str(waiting.get("message") or f"image {status.get('image')}")
        return reason, detail
    if reason == "CrashLoopBackOff" or terminated:
        last = terminated or ((status.get("lastState") or {}).get("terminated") or {})
        code = last.get("exitCode")
        why = f"exit code {code}" if code is not None else "exited"
        if last.get("reason"):
            why += f" ({last['reason']})"
        restarts = int(status.get("restartCount") or 0)
        detail = f"container {name} {why}, restarted {restarts} time(s)"
        # terminationMessagePolicy FallbackToLogsOnError: the log's last lines
        said = [ln.strip() for ln in str(last.get("message") or "").splitlines() if ln.strip()]
        if said:
            detail += f"; last output: {said[-1][:200]}"
        return reason or "ContainerExited", detail
    if reason and reason != "ContainerCreating":
        return reason, str(waiting.get("message") or f"container {name} waiting")
    if state.get("running") is not None and not status.get("ready"):
        started = status.get("started")
        startup = _last_event(events, "Unhealthy", "Startup probe failed")
        startup_at = _probe_target(spec, "startupProbe")
        if started is False and startup:
            return "StartupProbeFailed", startup + startup_at
        readiness = _last_event(events, "Unhealthy", "Readiness probe failed")
        if readiness:
            return "ReadinessProbeFailed", readiness + _probe_target(spec, "readinessProbe")
        if startup:
            return "StartupProbeFailed", startup + startup_at
        return "NotReady", f"container {name} is running but not ready"
    return None


def _specs(pod: Obj) -> dict[str, Obj]:
    spec = pod.get("spec") or {}
    return {
        str(c.get("name")): c
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
    }


def pod_reason(pod: Obj, events: Iterable[Obj]) -> tuple[str, str] | None:
    """(reason, detail) of a pod that is not ready, or None when it is ready (or has no
    reason to give yet)."""
    status = pod.get("status") or {}
    mine = _events_of(pod, events)
    scheduled = conditions(pod).get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        return str(scheduled.get("reason") or "Unschedulable"), str(
            scheduled.get("message") or "the pod cannot be scheduled"
        )
    specs = _specs(pod)
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or []:
            found = _container_reason(container, mine, specs.get(str(container.get("name"))))
            if found is not None:
                return found
    return None


def early_reason(pod: Obj) -> tuple[str, bool] | None:
    """A new pod's failure that no good version shows (module docstring): (reason, certain
    now). An image pull failure is (reason, False): certain only once it persisted (the watch
    times it); a crash loop after CRASH_RESTARTS restarts is (reason, True). None otherwise
    (a probe failing, a pod still starting, a ready pod)."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            if reason in IMAGE_PULL_REASONS:
                return reason, False
            if (
                reason == "CrashLoopBackOff"
                and int(container.get("restartCount") or 0) >= CRASH_RESTARTS
            ):
                return reason, True
    return None


def new_pods(deployment: Obj, replicasets: Iterable[Obj], pods: Iterable[Obj]) -> list[Obj]:
    """The pods of the Deployment's current revision (its new ReplicaSet), none being deleted."""
    rs = new_replicaset(deployment, replicasets)
    if rs is None:
        return []
    return [
        p
        for p in pods
        if _owned_by(p, rs) and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]


def _rank(reason: str) -> int:
    return REASON_ORDER.index(reason) if reason in REASON_ORDER else len(REASON_ORDER)


def diagnose(
    deployment: Obj, replicasets: Iterable[Obj], pods: Iterable[Obj], events: Iterable[Obj]
) -> RolloutProblem | None:
    """Why this Deployment's rollout is not complete, from its new pods; None when they are
    all ready and no condition says otherwise."""
    meta = deployment.get("metadata") or {}
    app = str((meta.get("labels") or {}).get(NAME_LABEL) or meta.get("name"))
    workload = f"Deployment {meta.get('namespace')}/{meta.get('name')}"
    events = list(events)
    failure = conditions(deployment).get("ReplicaFailure") or {}
    if failure.get("status") == "True":
        return RolloutProblem(
            app, workload, str(failure.get("reason")), str(failure.get("message") or "")
        )
    rs = new_replicaset(deployment, replicasets)
    current = [p for p in pods if rs is not None and _owned_by(p, rs)]
    reasons = [r for p in current if (r := pod_reason(p, events)) is not None]
    if reasons:
        reason, detail = min(reasons, key=lambda r: _rank(r[0]))
        same = sum(1 for r in reasons if r[0] == reason)
        return RolloutProblem(app, workload, reason, detail, f"{same} of {len(current)} new pods")
    if deadline_exceeded(deployment):
        progressing = conditions(deployment)["Progressing"]
        return RolloutProblem(
            app, workload, "ProgressDeadlineExceeded", str(progressing.get("message") or "")
        )
    return None


def failure_message(stack: str, problems: Sequence[RolloutProblem]) -> str:
    """One message for the operator: every failed app with its reason."""
    if not problems:
        return ""
    return f"rollout of {stack} failed: " + "; ".join(p.line() for p in problems)
