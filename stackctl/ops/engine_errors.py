"""What stackctl says when a Pulumi CLI command fails: the line of its stderr that names the
error, how its process ended when a signal ended it, and the engine's own error lines from its
event stream (`EngineDiagnostics`), so that a failed preview or update says why and not only
that it failed.

Only stderr and the event stream are read, never stdout: stdout of some commands
(`config --show-secrets`) holds secrets, and the engine masks secret values in its events.
"""

from __future__ import annotations

import re
import signal
from typing import Any

from stackctl.errors import OperationFailed


def stderr_line(exc: BaseException) -> str:
    """One short line from a CLI failure: the last `error:` line of its stderr, else its last
    line; "" when stderr is empty. Only stderr: stdout may hold secrets."""
    text = str(exc)
    stderr = text.split("\n stderr:", 1)[1] if "\n stderr:" in text else ""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error:")]
    picked = errors or lines
    return picked[-1][:300] if picked else ""


def exit_status(exc: BaseException) -> str:
    """How the engine's process ended, when that says more than "it failed" (a signal): the
    guard's own death is a negative code, the CLI's death by signal n is 128 + n (the guard's
    exit status, stackctl/ops/engine_guard.py); "" for an ordinary exit (the CLI's 255)."""
    found = re.search(r"\n code: (-?\d+)\n", str(exc))
    if found is None:
        return ""
    code = int(found.group(1))

    def name(number: int) -> str:
        try:
            return signal.Signals(number).name
        except ValueError:
            return f"signal {number}"

    if code < 0:
        return f"the engine's process died of {name(-code)}"
    if 128 < code < 128 + 65:
        return f"exit {code}: the engine died of {name(code - 128)}"
    return ""


#: Pulumi's color markup in event messages (`<{%fg 1%}>`, `<{%reset%}>`: sdk/go/common/diag/
#: colors) and ANSI escapes, dropped from the lines stackctl repeats.
_MARKUP = re.compile(r"<\{%[^%]*%\}>|\x1b\[[0-9;]*m")
ENGINE_LINES = 40  # at most this many of the engine's lines in one message


class EngineDiagnostics:
    """The engine's own error lines of one command, from its event stream (`on_event`): error
    diagnostics (a program's exception, a provider's refusal, the engine's own errors) and
    mandatory policy violations. Secrets never reach them: the engine masks secret values in
    every event it emits."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_event(self, event: Any) -> None:
        diag = getattr(event, "diagnostic_event", None)
        if diag is not None and diag.severity == "error":
            self._add(_resource(diag.urn), diag.message)
        policy = getattr(event, "policy_event", None)
        if policy is not None and policy.enforcement_level == "mandatory":
            where = _resource(policy.resource_urn)
            self._add(where, f"mandatory policy {policy.policy_pack_name}/{policy.policy_name}: "
                      f"{policy.message}")  # fmt: skip

    def _add(self, where: str, message: str) -> None:
        for n, line in enumerate(_MARKUP.sub("", message).strip().splitlines()):
            if line.strip() and len(self.lines) < ENGINE_LINES:
                self.lines.append(f"{where if n == 0 else ''}{line.rstrip()}"[:300])


def _resource(urn: str | None) -> str:
    """`<type> (<name>): ` for a resource's URN, as the CLI prints a diagnostic's resource."""
    parts = (urn or "").split("::")
    if len(parts) < 4:
        return ""
    return f"{parts[2].rsplit('$', 1)[-1]} ({parts[3]}): "


def command_failure(what: str, exc: BaseException, diagnostics: list[str] | None = None) -> str:
    """`<what> failed: <stderr's error line> (<a death by signal>)`, then the engine's error
    lines, one per line; `<what> failed: CommandError` when the engine said nothing."""
    line = stderr_line(exc)
    status = exit_status(exc)
    engine = list(diagnostics or [])
    if not (line or status or engine):
        return f"{what} failed: {type(exc).__name__}"
    head = f"{what} failed:" + (f" {line}" if line else "") + (f" ({status})" if status else "")
    return "\n  ".join([head, *engine])


class EngineFailed(OperationFailed):
    """A CLI command failed; `engine_said` is False when neither its stderr nor its events
    gave a line (a cancelled update)."""

    def __init__(self, message: str, *, engine_said: bool) -> None:
        super().__init__(message)
        self.engine_said = engine_said
