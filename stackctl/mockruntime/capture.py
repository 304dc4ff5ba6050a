"""Run a program under the mock runtime and capture what it registers: with the render's
shortcuts (`engine.mocked_runtime`), or under the SDK's mock runtime untouched, which the
fidelity test (`tests/test_mockruntime_fidelity.py`) holds the shortcuts to."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pulumi.runtime

from stackctl.mockruntime import resolve
from stackctl.mockruntime.engine import (
    Capture,
    RecordingMocks,
    cyclic_gc_paused,
    mocked_runtime,
    record_options,
)

#: The SDK's runtime settings are process-global: one untouched run at a time.
_UNTOUCHED_LOCK = threading.Lock()


@contextlib.contextmanager
def untouched_runtime(project: str, stack: str) -> Iterator[RecordingMocks]:
    """Pulumi's mock runtime exactly as the SDK sets it (`pulumi.runtime.set_mocks` with its own
    MockMonitor, the thread's event loop, no function of the SDK replaced), with the same mocks
    and the same option-recording stack transformation as `engine.mocked_runtime`; the runtime
    settings are reset on exit."""
    with _UNTOUCHED_LOCK:
        options: dict[tuple[str, str], dict[str, Any]] = {}
        mocks = RecordingMocks(options)
        pulumi.runtime.reset_options()
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
        pulumi.runtime.register_stack_transformation(record_options(options))
        try:
            yield mocks
        finally:
            pulumi.runtime.reset_options()


def capture(
    program: Callable[[], Any],
    *,
    project: str,
    stack: str,
    shortcuts: bool = True,
) -> Capture:
    """Run `program` under mocks; return every registered resource and the resolved value
    of whatever the program returned (Outputs resolved).
    `shortcuts=False`: under the SDK's mock runtime untouched (`untouched_runtime`), the
    program's value resolved by `Output.from_input`, as `pulumi.runtime.test` resolves it."""
    if not shortcuts:
        return _capture_untouched(program, project, stack)
    result = Capture()
    with mocked_runtime(project, stack) as mocks, cyclic_gc_paused():

        async def outputs(returned: Any) -> None:  # Output.from_input(returned).apply(update)
            value, known = await resolve.resolved(returned)
            if known:
                result.outputs.update(value if isinstance(value, dict) else {})

        run_test: Callable[[Callable[[], Any]], Callable[[], None]] = pulumi.runtime.test
        run_test(lambda: outputs(program()))()
        result.resources.extend(mocks.registered)
    return result


def _capture_untouched(
    program: Callable[[], Any],
    project: str,
    stack: str,
) -> Capture:
    result = Capture()

    def keep(value: Any) -> None:
        result.outputs.update(value if isinstance(value, dict) else {})

    with untouched_runtime(project, stack) as mocks:
        run_test: Callable[[Callable[[], Any]], Callable[[], None]] = pulumi.runtime.test
        run_test(lambda: pulumi.Output.from_input(program()).apply(keep))()
        result.resources.extend(mocks.registered)
    return result
