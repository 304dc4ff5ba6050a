"""One `pulumi up` whose rollouts are watched on the API server: stopped at a rollout's
progress deadline or at its new pods' certain failure, and held after the engine returned until
every rollout it started has finished (stackctl/ops/rollout_watch.py). `stackctl deploy` and
`stackctl rollback` both update through it. Imports stackctl.ops.history (the recorded update)
and stackctl.ops.rollout_watch / rollout_status; nothing of deploy or rollback."""

from __future__ import annotations

from stackctl.errors import OperationFailed
from stackctl.ops.automation import StackBackend, UpOutcome
from stackctl.ops.history import record_update
from stackctl.ops.operator import Console, engine_step
from stackctl.ops.rollout_status import failure_message
from stackctl.ops.rollout_watch import Rollouts


def refresh_after_stop(console: Console, backend: StackBackend, stack: str) -> None:
    """After a stopped update the state may not hold what the cluster runs: the provider, once
    cancelled, cannot read the object back ("unable to get cluster state: ... context
    canceled", pulumi-kubernetes v4.25.0), so the engine keeps the resource's previous state
    while the cluster has the new spec; a rollback to that previous config would then see no
    change. A refresh (Pulumi's documented remedy) reads the cluster back into the state."""
    console.print(f"== refresh {stack}: the state takes what the cluster runs after the stop")
    try:
        with engine_step(f"pulumi refresh of {stack}"):
            backend.refresh(on_output=console.print)
    except OperationFailed as exc:
        console.print(f"warning: {exc}; run `python -m stackctl deploy {stack} --refresh` next")


def watched_update(
    console: Console,
    backend: StackBackend,
    stack: str,
    message: str,
    policy: tuple[list[str], list[str]],
    rollouts: Rollouts | None,
) -> UpOutcome:
    """`pulumi up`, stopped as soon as a rollout it started exceeds its progress deadline or
    its new pods fail for certain (stackctl/ops/rollout_watch.py), and after the engine
    returned, held until every rollout it started has finished (`RolloutWatch.settle`: the
    provider's await can return early); a failed update fails with one message naming each
    app whose rollout did not complete and the reason its pods give."""
    if rollouts is None:
        console.print("note: no kubeconfig; rollouts are not watched during the update")
        return record_update(console, backend, stack, message, policy)
    interrupt = getattr(backend, "interrupt", lambda: False)

    def stop() -> None:
        console.print(f"{watch.summary()}; stopping the update")
        interrupt()

    watch = rollouts.watch(stop)
    unfinished: dict[str, str] = {}
    try:
        with watch:
            outcome = record_update(console, backend, stack, message, policy)
            if outcome.result == "succeeded":
                unfinished = watch.settle(on_wait=lambda pending: console.print(
                    f"the engine returned before {len(pending)} rollout(s) finished; waiting "
                    f"for them: {'; '.join(pending.values())}"
                ))  # fmt: skip
    except OperationFailed as exc:
        problems = rollouts.problems()
        if watch.tripped:
            refresh_after_stop(console, backend, stack)
        if not problems:
            raise
        # the engine's own line only when it says something (a cancelled update's is bare)
        engine_line = f" [{exc}]" if getattr(exc, "engine_said", True) else ""
        raise OperationFailed(f"{failure_message(stack, problems)}{engine_line}") from exc
    if outcome.result != "succeeded":
        problems = rollouts.problems()
        if problems:
            raise OperationFailed(failure_message(stack, problems))
    elif unfinished:
        # the engine returned, but a rollout it started did not finish (RolloutWatch.settle)
        raise OperationFailed(
            failure_message(stack, rollouts.problems())
            or f"pulumi up on {stack} returned before these rollouts finished: "
            + "; ".join(unfinished.values())
        )
    return outcome
