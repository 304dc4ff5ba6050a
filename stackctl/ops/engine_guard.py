"""The engine's guard: `python <this file> --parent <pid> <pulumi> <args...>` (standard library
only).

stackctl runs every Pulumi CLI command through this small process (stackctl/ops/engine.py), so
that killing stackctl, even with SIGKILL, never leaves the engine running on its own:
- the guard's first act is to ask the kernel for SIGTERM when its parent dies
  (PR_SET_PDEATHSIG, on itself), then to check that its parent is still `--parent`, the pid
  stackctl passed: a stackctl that died before the death signal was armed has left the guard
  to another parent, and the guard then starts nothing. Arming it here, not between fork and
  exec in stackctl, lets stackctl start the guard with vfork, which runs no at-fork handler
  (stackctl/ops/engine.py says why that matters: gRPC's handlers);
- the guard is a child subreaper (PR_SET_CHILD_SUBREAPER), so the engine's plugins (the
  language host, the provider, the program: each started by the CLI in a process group of its
  own, pulumi sdk/go/common/util/cmdutil/child_unix.go `RegisterProcessGroup`) stay its
  descendants even when the CLI is gone. Left alone they would live on until their health
  check of the dead engine, every 5 minutes (sdk/go/common/util/rpcutil/health.go);
- on SIGTERM it sends SIGTERM to the CLI (which the engine reads as "cancel",
  pkg/backend/cancellation_scope.go), waits up to GRACE seconds, then SIGKILLs every
  descendant left; on SIGINT (stackctl stopping a failed rollout) it passes SIGINT on to the
  CLI only, which cancels the update cleanly.
It exits with the CLI's exit status (128 + signal when the CLI died of one, or when a signal
came before the CLI was started, which it then never is).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from types import FrameType

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
GRACE = 10.0
USAGE = "usage: python engine_guard.py --parent <pid> <command> [args...]"


def prctl(option: int, value: int) -> None:
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, value)


def descendants(root: int) -> list[int]:
    """Every live process below `root`, from /proc (parent before child)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        pid = frontier.pop(0)
        children = [child for child, parent in parents.items() if parent == pid]
        found.extend(children)
        frontier.extend(children)
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _reap() -> None:
    with suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def kill_tree(engine: subprocess.Popen[bytes], grace: float = GRACE) -> None:
    """SIGTERM the CLI, then SIGKILL whatever is left below the guard."""
    with suppress(ProcessLookupError):
        engine.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and engine.poll() is None:
        time.sleep(0.1)
    for _ in range(3):  # processes may still be forking while we look
        left = descendants(os.getpid())
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.1)
        _reap()


def parse(argv: list[str]) -> tuple[int, list[str]] | None:
    """(parent pid, command) from `--parent <pid> <command> [args...]`; None when malformed."""
    if len(argv) < 3 or argv[0] != "--parent" or not argv[1].isdigit():
        return None
    return int(argv[1]), argv[2:]


def main(argv: list[str]) -> int:
    parsed = parse(argv)
    if parsed is None:
        print(USAGE, file=sys.stderr)
        return 2
    parent, command = parsed
    engine: subprocess.Popen[bytes] | None = None
    stopping = 0  # the signal that stops the guard (SIGTERM; SIGINT before the CLI started)

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = signum

    def on_int(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if engine is None:
            stopping = signum  # stackctl cancelled before the CLI started: never start it
            return
        with suppress(ProcessLookupError):
            engine.send_signal(signal.SIGINT)

    # Handlers first, so that the death signal, once armed, is handled and never kills the guard
    # while it has children; then the death signal, then the check that closes the race with a
    # parent that died before it was armed (the guard has been reparented by then).
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_int)
    prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    if os.getppid() != parent:
        return 128 + signal.SIGTERM
    if stopping:
        return 128 + stopping
    engine = subprocess.Popen(command)
    while engine.poll() is None and not stopping:
        time.sleep(0.2)
    if stopping:
        kill_tree(engine)
    code = engine.wait()
    # The CLI ended: its plugins normally end with it; none may outlive the guard.
    left = descendants(os.getpid())
    if left:
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.1)
        _reap()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
