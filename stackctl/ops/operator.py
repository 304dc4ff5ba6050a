"""Operator interaction for the stack commands: where output goes, how confirmation is asked
(injectable for tests), and engine failures as one readable line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from stackctl.errors import OperationFailed, UserError

# --------------------------------------------------------------------------------------------
# Operator interaction


@dataclass
class Console:
    """Where output goes and how confirmation is asked; injectable for tests."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    interactive: bool = False
    ask: Callable[[str], str] = input

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Console:
        env = os.environ if environ is None else environ
        ci = env.get("CI", "").strip().lower() in ("1", "true", "yes")
        return cls(
            out=sys.stdout,
            interactive=sys.stdin is not None and sys.stdin.isatty() and not ci,
            ask=input,
        )

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)


class Declined(OperationFailed):
    """The operator answered no: nothing failed, so nobody is notified (stackctl.ops.notify)."""


def require_confirmation_possible(console: Console, assume_yes: bool, action: str) -> None:
    """Fail before touching anything when we would have to ask but cannot."""
    if not assume_yes and not console.interactive:
        raise UserError(
            f"{action} needs confirmation, but there is no interactive terminal (or CI=true); "
            "pass --yes to proceed without a prompt"
        )


def confirm(console: Console, assume_yes: bool, question: str) -> bool:
    if assume_yes:
        return True
    answer = console.ask(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


@contextmanager
def engine_step(what: str) -> Iterator[None]:
    """Turn anything the engine layer raises into one readable line (OperationFailed).

    The Automation API raises more than its `CommandError`s: `Stack.preview`/`up`/`refresh`
    raise the built-in `RuntimeError("summary event never found")` when the CLI exits without a
    summary event (pulumi/automation/_stack.py, pulumi 3.272.0), and gRPC or version checks raise
    their own types. Our own UserError / OperationFailed pass through unchanged.
    """
    try:
        yield
    except (UserError, OperationFailed, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise OperationFailed(f"{what} failed: {one_line(exc)}") from exc


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, at most 300 characters."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"[:300]
