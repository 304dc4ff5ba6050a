"""checkov's command line, imported once and forked for every scan. Run by checkov's own
interpreter (`.venv-checkov/bin/python`, stdlib and checkov only; tests/validators.py
`CheckovServer` starts it and talks to it).

A `checkov` run spends about 2.5 of its 3-4 s importing checkov. This process imports what the
`checkov` console script imports, once, then forks a child per scan: each child starts from the
state a fresh `checkov` process has after its imports and runs exactly what the script runs
(`Checkov(argv).run()`, SyntaxWarnings ignored, its return value as the exit status), with its
stdout and stderr sent to files. A scan never sees another scan's state.

Protocol, one JSON object per line:
- stdin: {"argv": [...], "stdout": path, "stderr": path}, a scan to run;
- stdout: {"stdout": path, "code": exit status}, a scan that has finished, in the order they
  finish (a child killed by a signal: the negative signal number, as in `subprocess`).
At most PARALLEL scans run at once. End of stdin: wait for the running scans, then exit.
"""

from __future__ import annotations

import json
import os
import selectors
import sys
import traceback
import warnings
from collections import deque
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=SyntaxWarning)
    from checkov.main import Checkov

PARALLEL = 2


def _exit_status(value: object) -> int:
    """The exit status `sys.exit(value)` gives (a message is printed to stderr, status 1)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def _scan(job: dict[str, Any]) -> int:
    """In the forked child: the `checkov` console script's `sys.exit(Checkov().run())`."""
    for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["checkov", *job["argv"]]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=SyntaxWarning)
            status = _exit_status(Checkov(list(job["argv"])).run())
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return status


def _start(job: dict[str, Any]) -> int:
    sys.stdout.flush()  # nothing buffered is inherited (and written twice) by the child
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = _scan(job)
        finally:
            os._exit(status)
    return pid


def main() -> None:
    pending: deque[dict[str, Any]] = deque()
    running: dict[int, dict[str, Any]] = {}
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    buffer = b""
    reading = True
    while reading or pending or running:
        while pending and len(running) < PARALLEL:
            job = pending.popleft()
            running[_start(job)] = job
        if reading and selector.select(timeout=0.02 if running else None):
            chunk = os.read(sys.stdin.fileno(), 65536)
            reading = bool(chunk)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            pending.extend(json.loads(line) for line in lines if line.strip())
        elif running and not reading:
            pid, status = os.waitpid(-1, 0)
            _report(running.pop(pid), os.waitstatus_to_exitcode(status))
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            _report(running.pop(pid), os.waitstatus_to_exitcode(status))


def _report(job: dict[str, Any], code: int) -> None:
    print(json.dumps({"stdout": job["stdout"], "code": code}), flush=True)


if __name__ == "__main__":
    main()
