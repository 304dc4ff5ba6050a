"""Errors that reach the operator as a message and an exit code, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the operator can fix (bad config, unknown stack, bad flag): exit code 2."""

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class OperationFailed(Exception):
    """An operation ran and failed (a deploy, a policy check): exit code 1."""

    exit_code: int = 1
