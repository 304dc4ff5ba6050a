"""stackctl's entry point turns gRPC's fork support off before grpc loads. The CLI itself is
started by vfork, which runs no at-fork handler (stackctl/ops/engine.py, tests/ops/
test_engine_guard.py); this is the second guard, for any real fork() in the stackctl process
(a library's `preexec_fn`, `os.fork`): with fork support on (grpcio 1.85, which pulumi imports),
such a child passes through gRPC's fork handlers while gRPC threads run and can die with
"epoll_wait error: Bad file descriptor" before it execs (grpc/grpc issue #43055). The oracle is
gRPC's own log: its fork handlers print "skipping fork() handlers" whenever they run with gRPC
threads busy. The probe forces fork() with a `preexec_fn`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import concurrent.futures, runpy, sys
sys.argv = ["stackctl", "--help"]
try:
    runpy.run_module("stackctl", run_name="__main__")  # as `python -m stackctl` starts
except SystemExit:
    pass
import grpc
server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
grpc.channel_ready_future(channel).result(timeout=10)
import subprocess
codes = []
for _ in range(5):  # a preexec_fn makes CPython fork() (no vfork): the handlers run if on
    codes.append(subprocess.run([CLI, "--version"], preexec_fn=lambda: None).returncode)
print("codes", *codes)
"""


def run_probe(environ: dict[str, str], root: Path) -> tuple[str, list[int]]:
    """gRPC's log and the exit codes of the forked children."""
    # a stand-in program that exits 0: any program is forked the same way
    cli = root / "bin" / "pulumi"
    cli.parent.mkdir(parents=True, exist_ok=True)
    cli.write_text("#!/bin/sh\nexit 0\n")
    cli.chmod(0o755)
    env = {**environ, "PATH": "/usr/bin:/bin"}
    probe = PROBE.replace("CLI,", f"{str(cli)!r},")
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr, [int(c) for c in proc.stdout.split("codes", 1)[1].split()]


def test_a_fork_in_stackctl_runs_no_grpc_fork_handler(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    log, codes = run_probe(env, tmp_path)
    assert "fork() handlers" not in log
    assert codes == [0] * 5  # with the handlers on, a child can die of SIGABRT (-6)


def test_the_probe_sees_the_handlers_when_fork_support_is_on(tmp_path: Path) -> None:
    env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "true"}
    log, _ = run_probe(env, tmp_path)  # a child may abort here: the bug this guards against
    assert "skipping fork() handlers" in log
