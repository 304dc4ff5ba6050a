"""How stackctl runs the Pulumi CLI: the Automation API's `PulumiCommand`, each command started
under the engine guard (stackctl/ops/engine_guard.py), which arms PR_SET_PDEATHSIG on itself
and checks that stackctl (`--parent`) is still its parent, so a stackctl killed in the middle
of an update (SIGKILL included) takes the engine and its plugins with it; and stoppable:
`interrupt()` asks the running command to cancel (SIGINT, which the engine handles by
cancelling the update cleanly, pulumi pkg/backend/cancellation_scope.go).

Nothing runs between fork and exec (no `preexec_fn`): CPython 3.11 then starts the guard with
vfork (Modules/_posixsubprocess.c: vfork only without preexec_fn, uid, gid or groups), and
vfork runs no at-fork handler. With a `preexec_fn` it forks, and fork runs the handlers the
pinned grpcio registers with pthread_atfork (its fork support is on unless
GRPC_ENABLE_FORK_SUPPORT=0; both measured here). While the Automation API's event server polls
(`Stack.preview` always starts one for `--event-log tcp://...`, pulumi/automation/_stack.py),
gRPC logs "Other threads are currently calling into gRPC, skipping fork() handlers" in stackctl
and its event engine restarts its poller in the child, whose epoll descriptor `close_fds` then
closes: "epoll_wait error: Bad file descriptor", SIGABRT before exec, "pulumi preview failed"
(about 3 launches in 100 with a busy server; none with vfork, none with close_fds=False).

`run` does what `pulumi.automation.PulumiCommand.run` does (pulumi 3.272.0, _cmd.py): the
`--non-interactive` flag, the environment with PULUMI_AUTOMATION_API=true, stdout and stderr
streamed line by line to the callbacks, a `CommandError` from the result on a non-zero exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from pulumi.automation import CommandResult, PulumiCommand
from pulumi.automation.errors import create_command_error

#: run by path in isolated mode (-I: its own directory, which holds an `operator.py`, is not put
#: on sys.path; it needs only the standard library), so it works from any working directory
GUARD = [sys.executable, "-I", str(Path(__file__).with_name("engine_guard.py"))]


def _consume(stream: IO[str], callback: Callable[[str], None] | None, out: list[str]) -> None:
    for line in iter(stream.readline, ""):
        stripped = line.rstrip()
        if callback:
            callback(stripped)
        out.append(stripped)
    stream.close()


class EngineCommand(PulumiCommand):
    """`PulumiCommand` whose commands run under the engine guard and can be interrupted."""

    def __init__(self, root: str | None = None) -> None:
        super().__init__(root=root, skip_version_check=True)
        self._lock = threading.Lock()
        self._running: subprocess.Popen[str] | None = None

    def interrupt(self) -> bool:
        """SIGINT to the running command (the guard passes it to the CLI); False if none."""
        with self._lock:
            proc = self._running
        if proc is None or proc.poll() is not None:
            return False
        with suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        return True

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: Callable[[str], Any] | None = None,
        on_error: Callable[[str], Any] | None = None,
    ) -> CommandResult:
        sep = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:sep]:
            args.insert(0, "--non-interactive")
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        if os.path.isabs(self.command):
            env["PATH"] = os.pathsep.join([os.path.dirname(self.command), env["PATH"]])
        out: list[str] = []
        err: list[str] = []
        with subprocess.Popen(
            [*GUARD, "--parent", str(os.getpid()), self.command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            encoding="utf-8",
        ) as process:
            with self._lock:
                self._running = process
            assert process.stdout is not None and process.stderr is not None
            readers = [
                threading.Thread(target=_consume, args=(process.stdout, on_output, out)),
                threading.Thread(target=_consume, args=(process.stderr, on_error, err)),
            ]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join()
            code = process.wait()
            with self._lock:
                self._running = None
        result = CommandResult(stdout="\n".join(out), stderr="\n".join(err), code=code)
        if code != 0:
            raise create_command_error(result)
        return result
