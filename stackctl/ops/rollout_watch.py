"""Watching the rollouts of a `stackctl deploy` on the API server (issue 29, scenario 1).

pulumi-kubernetes v4.25.0 waits for a Deployment until its timeout even when the Deployment
controller has given up (provider/pkg/await/deployment.go logs `ProgressDeadlineExceeded` as a
warning and keeps waiting), so the detection time would be the provider's timeout. While the
update runs, `RolloutWatch` polls the stack's Deployments; when one that this update changed
reports `Progressing=False` with reason `ProgressDeadlineExceeded`, it stops the update
(`on_deadline`: SIGINT to the engine, which cancels it cleanly). Detection time is then the
Deployment's progressDeadlineSeconds (`appstack:apps.<app>.rollout.progressDeadlineSeconds`,
per environment) plus one poll.

Some failures are certain before the deadline (stackctl/ops/rollout_status.py `early_reason`):
a new pod that still fails to pull its image PULL_FAILURE_SECONDS after the watch first saw it
fail, or whose container is in CrashLoopBackOff after CRASH_RESTARTS restarts, stops the update
at once. A pod that is merely slow (its startup or readiness probe failing for a while) never
does: only the deadline judges it.

After a failed update, `read_problems` says why, per app, from the pods' status and events
(stackctl/ops/rollout_status.py). The API server is reached with the kubeconfig the program
deploys with (KUBECONFIG, else ~/.kube/config), read-only: list Deployments, ReplicaSets, Pods
and Events in the apps' namespace.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from stackctl.ops.api_proxy import ApiAccess, load_access
from stackctl.ops.rollout_status import (
    RolloutProblem,
    deadline_exceeded,
    diagnose,
    early_reason,
    new_pods,
    observed,
    rollout_pending,
)

POLL_SECONDS = 3.0
#: the longest `settle` waits after the engine returned: the provider's own default wait for a
#: Deployment (`DefaultDeploymentTimeoutMins` = 10, pulumi-kubernetes provider/pkg/await); a
#: rollout that stops progressing trips the watch at its progress deadline well before
SETTLE_SECONDS = 600.0
#: how long a new pod's image pull failure must persist before the rollout is failed: past the
#: kubelet's first retries (10 s, then 20 s of back-off), so a registry's passing error is not
#: a bad version
PULL_FAILURE_SECONDS = 30.0
DEADLINE = "progress deadline exceeded"


class ClusterReader:
    """GET requests to the API server of a kubeconfig's current context."""

    def __init__(self, access: ApiAccess, timeout: float = 10.0) -> None:
        self.access = access
        self.timeout = timeout

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ClusterReader | None:
        configured = environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        path = Path(configured) if configured else Path.home() / ".kube" / "config"
        return cls(load_access(path)) if path.is_file() else None

    def get(self, path: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.access.server.rstrip("/") + path,
            headers={"Accept": "application/json", **self.access.headers},
        )
        with urllib.request.urlopen(
            request, timeout=self.timeout, context=self.access.context
        ) as response:
            doc: dict[str, Any] = json.load(response)
        return doc

    def exists(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Whether the object exists; its REST path from API discovery (`/api/v1`,
        `/apis/<group>/<version>`: each resource's `kind`, plural `name`, `namespaced`)."""
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            found = self.get(base)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the API (a CRD's group) is not served: no such object
                return False
            raise
        for resource in found.get("resources") or []:
            if resource.get("kind") == kind and "/" not in str(resource.get("name")):
                scope = f"/namespaces/{namespace}" if resource.get("namespaced") else ""
                try:
                    self.get(f"{base}{scope}/{resource['name']}/{name}")
                except urllib.error.HTTPError as exc:
                    if exc.code == 404:
                        return False
                    raise
                return True
        return False

    def items(self, path: str) -> list[dict[str, Any]]:
        return list(self.get(path).get("items") or [])


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def deployments(reader: ClusterReader, namespace: str) -> list[dict[str, Any]]:
    return reader.items(f"/apis/apps/v1/namespaces/{namespace}/deployments")


def read_problems(reader: ClusterReader, namespaces: list[str]) -> list[RolloutProblem]:
    """Every Deployment of these namespaces whose rollout is not complete, with its reason."""
    problems = []
    for ns in namespaces:
        found = deployments(reader, ns)
        if not found:
            continue
        replicasets = reader.items(f"/apis/apps/v1/namespaces/{ns}/replicasets")
        pods = reader.items(f"/api/v1/namespaces/{ns}/pods")
        events = reader.items(f"/api/v1/namespaces/{ns}/events")
        for deployment in found:
            problem = diagnose(deployment, replicasets, pods, events)
            if problem is not None:
                problems.append(problem)
    return problems


class RolloutWatch:
    """While an update runs: stop it once a Deployment it changed exceeds its progress
    deadline, or its new pods fail in a way no good version does (module docstring). A context
    manager; `tripped` names the Deployments that did, `why` says why for each."""

    def __init__(
        self,
        reader: ClusterReader,
        namespaces: list[str],
        on_deadline: Callable[[], object],
        interval: float = POLL_SECONDS,
        pull_failure_seconds: float = PULL_FAILURE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.namespaces = namespaces
        self.on_deadline = on_deadline
        self.interval = interval
        self.pull_failure_seconds = pull_failure_seconds
        self.clock = clock
        self.tripped: list[str] = []
        self.why: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rollout-watch", daemon=True)
        self._before: dict[str, int] = {}
        self._pull_failing_since: dict[str, float] = {}

    def _generations(self) -> dict[str, tuple[int, dict[str, Any]]]:
        found = {}
        for ns in self.namespaces:
            for d in deployments(self.reader, ns):
                found[_key(d)] = (int((d.get("metadata") or {}).get("generation") or 0), d)
        return found

    def check(self) -> list[str]:
        """Deployments changed since the watch began whose rollout has exceeded its deadline
        (a condition left by an earlier failed rollout does not count) or whose new pods fail
        for certain; records why in `why`."""
        changed = {
            key: d
            for key, (generation, d) in self._generations().items()
            if generation != self._before.get(key)
        }
        tripped = [key for key, d in changed.items() if deadline_exceeded(d)]
        self.why.update(dict.fromkeys(tripped, DEADLINE))
        rest = {k: d for k, d in changed.items() if k not in tripped and observed(d)}
        for key, why in self._early(rest).items():
            self.why[key] = why
            tripped.append(key)
        return tripped

    def unfinished(self) -> dict[str, str]:
        """Deployments changed since the watch began whose rollout has not finished, each with
        what it waits for (stackctl/ops/rollout_status.py `rollout_pending`)."""
        found = {}
        for key, (generation, d) in self._generations().items():
            if generation != self._before.get(key) and (pending := rollout_pending(d)):
                found[key] = pending
        return found

    def settle(
        self,
        timeout: float = SETTLE_SECONDS,
        on_wait: Callable[[dict[str, str]], object] = lambda pending: None,
    ) -> dict[str, str]:
        """After the engine returned: wait until every Deployment the update changed has
        finished its rollout. The provider's await can return early: on a rollback to a
        template whose ReplicaSet is kept, it reads the previous rollout's
        `NewReplicaSetAvailable` and the reused ReplicaSet's `spec.replicas: 0` as done (its
        "Replicas scaled to 0" warning; pulumi-kubernetes provider/pkg/await/deployment.go
        `checkReplicaSetStatus`), and `make bench-e2e` caught a rollback of 50 services
        returning with old pods still running. `on_wait` hears what is unfinished the first
        time anything is. Returns what is still unfinished once the watch tripped or `timeout`
        passed; empty when every rollout finished."""
        end = self.clock() + timeout
        waited = False
        while True:
            try:
                pending = self.unfinished()
            except OSError as exc:  # the API server briefly unreachable: ask again
                pending = {"(API server)": str(exc)}
            if not pending or self.tripped or self.clock() >= end:
                return pending
            if not waited:
                on_wait(pending)
                waited = True
            self._stop.wait(self.interval)

    def _early(self, changed: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Per Deployment, the certain failure of one of its new pods (pull failures timed
        from the first poll that saw them)."""
        found: dict[str, str] = {}
        now = self.clock()
        failing: dict[str, float] = {}
        for ns in sorted(
            {str((d.get("metadata") or {}).get("namespace")) for d in changed.values()}
        ):
            replicasets = self.reader.items(f"/apis/apps/v1/namespaces/{ns}/replicasets")
            pods = self.reader.items(f"/api/v1/namespaces/{ns}/pods")
            for key, d in changed.items():
                if key.split("/", 1)[0] != ns:
                    continue
                for pod in new_pods(d, replicasets, pods):
                    early = early_reason(pod)
                    if early is None:
                        continue
                    reason, certain = early
                    meta = pod.get("metadata") or {}
                    name = str(meta.get("name"))
                    if certain:
                        found.setdefault(key, f"{reason} on new pod {name}")
                        continue
                    uid = str(meta.get("uid") or name)
                    since = failing[uid] = self._pull_failing_since.get(uid, now)
                    if now - since >= self.pull_failure_seconds:
                        found.setdefault(key, f"{reason} on new pod {name} for {now - since:.0f} s")
        self._pull_failing_since = failing
        return found

    def summary(self) -> str:
        """One line: the Deployments that tripped and why."""
        late = [k for k in self.tripped if self.why.get(k) == DEADLINE]
        early = [f"{k} ({self.why[k]})" for k in self.tripped if self.why.get(k) != DEADLINE]
        parts = [f"rollout deadline exceeded: {', '.join(late)}"] if late else []
        if early:
            parts.append(f"rollout failed before its deadline: {', '.join(early)}")
        return "; ".join(parts)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                tripped = self.check()
            except OSError:
                continue  # the API server may be briefly unreachable; the engine decides
            if tripped:
                self.tripped = tripped
                self.on_deadline()
                return

    def __enter__(self) -> RolloutWatch:
        try:
            self._before = {k: g for k, (g, _) in self._generations().items()}
        except OSError:
            self._before = {}
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 15)


class Rollouts:
    """Where a stack's apps roll out: the API server (read-only) and the apps' namespace."""

    def __init__(self, reader: ClusterReader, namespaces: list[str]) -> None:
        self.reader = reader
        self.namespaces = namespaces

    @classmethod
    def for_stack(cls, project_dir: Path, stack: str) -> Rollouts | None:
        """From the kubeconfig and `appstack:namespace` of Pulumi.<stack>.yaml; None without a
        kubeconfig (the deploy then runs without the watch and says so)."""
        from components.config import StackConfig
        from stackctl.ops.config_paths import stack_file_config
        from stackctl.ops.stacks import stack_short_name

        reader = ClusterReader.from_environment()
        if reader is None:
            return None
        stored = stack_file_config(project_dir / f"Pulumi.{stack_short_name(stack)}.yaml")
        namespace = (
            stored.get("appstack:namespace") or StackConfig.model_fields["namespace"].default
        )
        return cls(reader, [str(namespace)])

    def watch(self, on_deadline: Callable[[], object]) -> RolloutWatch:
        return RolloutWatch(self.reader, self.namespaces, on_deadline)

    def problems(self) -> list[RolloutProblem]:
        try:
            return read_problems(self.reader, self.namespaces)
        except OSError:
            return []
