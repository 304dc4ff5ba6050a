"""Issue 29, scenario 1: `stackctl deploy` stops an update whose rollout exceeded its progress
deadline, or whose new pods fail for certain before it (a pull failure past the kubelet's first
retries, a crash loop), and fails with one message naming the app and the reason from its pods;
a slow but good version is left to its deadline. After the engine returned, deploy and
rollback hold until every rollout the update started has finished by kubectl's rule (the
provider's await can return early on a rollback to a kept ReplicaSet).

The API server is a scripted reader serving Deployment/ReplicaSet/Pod/Event lists in the API's
shapes (tests/ops/test_rollout_status.py builds them); the engine is the in-memory backend whose
`up` blocks like a provider awaiting a rollout until it is interrupted (SIGINT: the engine then
ends the update as failed)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import OperationFailed
from stackctl.ops.automation import OnOutput, UpOutcome
from stackctl.ops.deploy import run_deploy
from stackctl.ops.rollout_watch import (
    PULL_FAILURE_SECONDS,
    ClusterReader,
    Rollouts,
    RolloutWatch,
)
from tests.ops import test_rollout_status as shapes
from tests.ops.fake_backend import FakeBackend


class ScriptedApi(ClusterReader):
    """Serves the lists of one namespace; `rolled` switches to the failed rollout."""

    def __init__(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        self.before, self.after = before, after
        self.rolled = threading.Event()

    def items(self, path: str) -> list[dict[str, Any]]:
        world = self.after if self.rolled.is_set() else self.before
        for suffix, key in (
            ("/deployments", "deployments"),
            ("/replicasets", "replicasets"),
            ("/pods", "pods"),
            ("/events", "events"),
        ):
            if path.startswith("/api") and path.endswith(suffix):
                assert f"/namespaces/{shapes.NS}/" in path, path
                return list(world[key])
        raise AssertionError(f"unexpected GET {path}")


class AwaitingBackend(FakeBackend):
    """`up` applies the new version, then waits like the provider until interrupted."""

    def __init__(self, api: ScriptedApi) -> None:
        super().__init__(stack_name="prod")
        self.api = api
        self.interrupted = threading.Event()

    def interrupt(self) -> bool:
        self.interrupted.set()
        return True

    def up(self, **kwargs: Any) -> UpOutcome:
        on_output: OnOutput = kwargs["on_output"]
        self.api.rolled.set()
        if not self.interrupted.wait(timeout=20):
            raise AssertionError("the watch never stopped the update")
        on_output("^C received; cancelling. If you would like to terminate immediately...")
        raise OperationFailed("pulumi up failed: error: update canceled")


def worlds(
    new_status: dict[str, Any], *events: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    healthy = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
    before = {
        "deployments": [shapes.deployment(shapes.AVAILABLE, healthy, generation=1, observed=1)],
        "replicasets": [shapes.OLD_RS],
        "pods": [],
        "events": [],
    }
    stuck = shapes.cluster(new_status, *events)
    after = {
        "deployments": [shapes.deployment(shapes.AVAILABLE, shapes.PROGRESS_DEADLINE)],
        **stuck,
    }
    return before, after


def fast_rollouts(api: ScriptedApi, interval: float = 0.01) -> Rollouts:
    """The stack's rollouts on `api`, its watches polling every `interval` seconds."""
    rollouts = Rollouts(api, [shapes.NS])
    make = rollouts.watch

    def fast_watch(on_deadline: Any) -> Any:
        watch = make(on_deadline)
        watch.interval = interval
        return watch

    rollouts.watch = fast_watch  # type: ignore[method-assign]
    return rollouts


def deploy(project: Path, recorder: Any, api: ScriptedApi) -> tuple[AwaitingBackend, Any]:
    backend = AwaitingBackend(api)
    rec = recorder()
    with pytest.raises(OperationFailed) as caught:
        run_deploy(backend, project_dir=project, console=rec.console, assume_yes=True,
                   rollouts=fast_rollouts(api, interval=0.05))  # fmt: skip
    return backend, (rec, str(caught.value))


def test_a_pull_failure_stops_the_update_with_one_message(project: Path, recorder: Any) -> None:
    api = ScriptedApi(
        *worlds(
            shapes.pull_status("ImagePullBackOff"),
            shapes.event("web-5d8f9b7c6-xxxxx", "Failed", shapes.PULL_FAILED),
        )
    )
    backend, (rec, message) = deploy(project, recorder, api)
    assert backend.interrupted.is_set()
    assert "rollout deadline exceeded: appstack/web; stopping the update" in rec.text
    # the state is refreshed after the stop (the provider left it behind the cluster)
    assert backend.calls[-2:] == ["preview", "refresh"]  # (this backend's up is not recorded)
    assert message.startswith(
        f"rollout of prod failed: app web: ImagePullBackOff: {shapes.PULL_FAILED}"
    )
    assert "\n" not in message


def test_a_crash_loop_is_named_with_its_exit_code(project: Path, recorder: Any) -> None:
    _, (_, message) = deploy(project, recorder, ScriptedApi(*worlds(shapes.CRASHING)))
    assert "app web: CrashLoopBackOff: container web exit code 3 (Error)" in message


def test_a_deadline_left_by_an_earlier_rollout_does_not_stop_a_new_update(
    project: Path, recorder: Any
) -> None:
    before, _ = worlds(shapes.NEVER_READY)
    # the previous deploy failed: the condition is still there, same generation
    old_failure = shapes.deployment(shapes.AVAILABLE, shapes.PROGRESS_DEADLINE)
    before["deployments"] = [old_failure]
    api = ScriptedApi(before, {**before})
    reader = Rollouts(api, [shapes.NS])
    fired: list[str] = []
    with reader.watch(lambda: fired.append("stop")) as watch:
        api.rolled.set()
        assert watch.check() == []
    assert fired == []


# ------------------------------------------------------------------ certain before the deadline

PROGRESSING = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}


def rolling(new_status: dict[str, Any], *events: dict[str, Any]) -> dict[str, Any]:
    """The rollout of generation 2 under way: the controller has not given up (no deadline)."""
    return {
        "deployments": [shapes.deployment(shapes.AVAILABLE, PROGRESSING)],
        **shapes.cluster(new_status, *events),
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def started_watch(after: dict[str, Any]) -> tuple[RolloutWatch, ScriptedApi, Clock]:
    before, _ = worlds(shapes.NEVER_READY)
    api = ScriptedApi(before, after)
    clock = Clock()
    watch = RolloutWatch(api, [shapes.NS], lambda: None, clock=clock)
    watch._before = {k: g for k, (g, _) in watch._generations().items()}
    api.rolled.set()
    return watch, api, clock


def test_a_pull_failure_stops_the_rollout_once_it_persisted_past_the_retries() -> None:
    watch, _, clock = started_watch(rolling(shapes.pull_status("ErrImagePull")))
    assert watch.check() == []
    clock.now += PULL_FAILURE_SECONDS - 1
    assert watch.check() == []
    clock.now += 1
    assert watch.check() == ["appstack/web"]
    assert watch.why["appstack/web"] == (
        f"ErrImagePull on new pod web-5d8f9b7c6-xxxxx for {PULL_FAILURE_SECONDS:.0f} s"
    )


def test_a_pull_that_recovers_starts_the_count_again() -> None:
    failing = rolling(shapes.pull_status("ImagePullBackOff"))
    watch, api, clock = started_watch(failing)
    assert watch.check() == []
    # the kubelet's retry is pulling (no error reported): a registry's passing error
    api.after = rolling(shapes.STARTING_SLOWLY)
    clock.now += 20
    assert watch.check() == []
    api.after = failing
    clock.now += 20
    assert watch.check() == []
    clock.now += PULL_FAILURE_SECONDS - 1
    assert watch.check() == []


def test_a_crash_loop_stops_the_rollout_at_once() -> None:
    watch, _, _ = started_watch(rolling(shapes.crashing(2)))
    assert watch.check() == ["appstack/web"]
    watch.tripped = ["appstack/web"]
    assert watch.summary() == (
        "rollout failed before its deadline: appstack/web "
        "(CrashLoopBackOff on new pod web-5d8f9b7c6-xxxxx)"
    )


def test_a_slow_but_good_version_is_left_to_its_deadline() -> None:
    slow = rolling(
        shapes.STARTING_SLOWLY,
        shapes.event("web-5d8f9b7c6-xxxxx", "Unhealthy",
                     'Startup probe failed: Get "http://10.245.1.7:8080/health": dial tcp '
                     "10.245.1.7:8080: connect: connection refused"),
    )  # fmt: skip
    watch, _, clock = started_watch(slow)
    for _ in range(20):
        assert watch.check() == []
        clock.now += 30


def test_pods_are_not_judged_before_the_controller_observed_the_change() -> None:
    # generation 2 not observed yet: the revision is still the old one, whose pods these are
    after = rolling(shapes.crashing(3))
    after["deployments"] = [shapes.deployment(shapes.AVAILABLE, PROGRESSING, observed=1)]
    after["replicasets"] = [shapes.NEW_RS]
    watch, _, _ = started_watch(after)
    assert watch.check() == []


def test_a_crash_loop_fails_the_deploy_before_the_deadline(project: Path, recorder: Any) -> None:
    before, _ = worlds(shapes.NEVER_READY)
    api = ScriptedApi(before, rolling(shapes.crashing(2)))
    backend, (rec, message) = deploy(project, recorder, api)
    assert backend.interrupted.is_set()
    assert (
        "rollout failed before its deadline: appstack/web (CrashLoopBackOff on new pod "
        "web-5d8f9b7c6-xxxxx); stopping the update"
    ) in rec.text
    assert message.startswith(
        "rollout of prod failed: app web: CrashLoopBackOff: container web exit code 3 (Error), "
        "restarted 2 time(s) (Deployment appstack/web, 1 of 1 new pods)"
    )


# ------------------------------------------------------- after the engine returned (settle)


#: a rollback to the kept ReplicaSet just applied: the controller reused it (0 pods yet) and
#: left the previous rollout's NewReplicaSetAvailable (k8s pkg/controller/deployment/sync.go)
STALE_REUSE = shapes.counted(updated=0, replicas=2, available=2)
HALFWAY = shapes.counted(shapes.AVAILABLE, PROGRESSING, updated=1, replicas=3, available=3)
FINISHED = shapes.counted(updated=2, replicas=2, available=2)


class RollingApi(ScriptedApi):
    """After the update each listing of the Deployment serves its next state; the last stays."""

    def __init__(self, *states: dict[str, Any]) -> None:
        before, _ = worlds(shapes.NEVER_READY)
        super().__init__(before, {**before, **shapes.cluster(shapes.READY_OLD)})
        self.states, self.served = list(states), 0

    def items(self, path: str) -> list[dict[str, Any]]:
        if self.rolled.is_set() and path.endswith("/deployments"):
            self.served += 1
            return [self.states[min(self.served, len(self.states)) - 1]]
        return super().items(path)


class ReturningBackend(FakeBackend):
    """`up` applies the new version and returns at once, as the provider's await may."""

    def __init__(self, api: ScriptedApi, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api = api

    def up(self, **kwargs: Any) -> UpOutcome:
        self.api.rolled.set()
        return super().up(**kwargs)


def test_settle_waits_until_a_reused_replicaset_holds_every_replica() -> None:
    api = RollingApi(STALE_REUSE, HALFWAY, FINISHED)
    watch, _, _ = started_watch({})
    watch.reader, watch.interval = api, 0.0
    watch._before = {k: g for k, (g, _) in watch._generations().items()}
    api.rolled.set()
    assert watch.settle() == {}
    assert api.served == 3


def test_settle_gives_up_at_its_timeout_naming_what_is_left() -> None:
    api = RollingApi(STALE_REUSE)
    watch, _, clock = started_watch({})
    watch.reader, watch.interval = api, 0.0
    watch._before = {k: g for k, (g, _) in watch._generations().items()}
    api.rolled.set()

    def ticking() -> float:
        clock.now += 100
        return clock.now

    watch.clock = ticking
    assert watch.settle(timeout=300) == {"appstack/web": "web: 0 of 2 new replicas updated"}


def test_a_deploy_the_engine_ended_early_waits_for_the_rollout(
    project: Path, recorder: Any
) -> None:
    api = RollingApi(STALE_REUSE, HALFWAY, FINISHED)
    rec = recorder()
    backend = ReturningBackend(api, stack_name="prod")
    assert run_deploy(backend, project_dir=project, console=rec.console, assume_yes=True,
                      rollouts=fast_rollouts(api)) == 0  # fmt: skip
    assert api.served >= 3
    assert (
        "the engine returned before 1 rollout(s) finished; waiting for them: "
        "web: 0 of 2 new replicas updated"
    ) in rec.text


def test_a_deploy_the_engine_ended_early_fails_when_its_rollout_then_fails(
    project: Path, recorder: Any
) -> None:
    stuck = shapes.counted(
        shapes.AVAILABLE, shapes.PROGRESS_DEADLINE, updated=1, replicas=3, available=2
    )
    api = RollingApi(STALE_REUSE, HALFWAY, stuck)
    rec = recorder()
    backend = ReturningBackend(api, stack_name="prod")
    with pytest.raises(OperationFailed) as caught:
        run_deploy(backend, project_dir=project, console=rec.console, assume_yes=True,
                   rollouts=fast_rollouts(api))  # fmt: skip
    assert str(caught.value).startswith("rollout of prod failed: app web: ")
    assert "ProgressDeadlineExceeded" in str(caught.value)
