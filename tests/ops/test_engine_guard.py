"""Issue 29, scenario 2: killing stackctl (SIGKILL included) never leaves its engine running;
issue 28: starting the engine never runs an at-fork handler, so gRPC alive in stackctl (the
Automation API's event server) cannot break the launch.

The engine here is a stand-in with the process shape of `pulumi up` (named as such): a CLI
process that starts a plugin in a process group of its own (pulumi
sdk/go/common/util/cmdutil/child_unix.go `RegisterProcessGroup`), which would outlive the CLI.
The "stackctl" is a real Python process running `EngineCommand.run`, killed with SIGKILL; the
oracle is /proc: no process of the tree is left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from stackctl.ops.engine_guard import descendants
from tests.tooling import REPO

GUARD = [sys.executable, "-I", str(REPO / "stackctl" / "ops" / "engine_guard.py")]

# A stand-in for the Pulumi CLI: starts a "plugin" in its own process group, writes both pids,
# then waits (an update awaiting a rollout).
FAKE_CLI = """\
#!/usr/bin/env python3
import os, subprocess, sys, time
plugin = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                          process_group=0)
with open(os.environ["PIDS_FILE"], "w") as out:
    out.write(f"{os.getpid()} {plugin.pid}\\n")
if sys.argv[1:2] == ["version"]:
    print("v3.274.0")
    sys.exit(0)
time.sleep(600)
"""

STACKCTL = """\
import sys
sys.path.insert(0, {repo!r})
from stackctl.ops.engine import EngineCommand
command = EngineCommand.__new__(EngineCommand)  # no `pulumi version` probe
import threading
command._lock = threading.Lock()
command._running = None
command.command = {cli!r}
command.run(["up", "--yes"], {cwd!r}, {{}})
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    cli = tmp_path / "pulumi"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    pids = tmp_path / "pids"
    script = STACKCTL.format(repo=str(REPO), cli=str(cli), cwd=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "PIDS_FILE": str(pids)}, cwd=tmp_path
    )
    assert wait_for(pids.exists, 20), "the engine never started"
    return proc, pids


def test_sigkill_of_stackctl_ends_the_engine_and_its_plugins(tmp_path: Path) -> None:
    stackctl, pids = start(tmp_path)
    cli_pid, plugin_pid = (int(p) for p in pids.read_text().split())
    tree = [stackctl.pid, *descendants(stackctl.pid)]
    assert cli_pid in tree and plugin_pid in tree
    os.kill(stackctl.pid, signal.SIGKILL)
    stackctl.wait(timeout=10)
    gone = wait_for(lambda: not any(alive(pid) for pid in tree), timeout=30)
    assert gone, [pid for pid in tree if alive(pid)]


def test_interrupt_reaches_the_cli_as_sigint(tmp_path: Path) -> None:
    marker, ready = tmp_path / "got-sigint", tmp_path / "ready"
    cli = tmp_path / "cli"
    cli.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env python3
        import signal, sys, time
        def stop(signum, frame):
            open({str(marker)!r}, "w").write("1")
            sys.exit(255)
        signal.signal(signal.SIGINT, stop)
        open({str(ready)!r}, "w").write("1")
        time.sleep(60)
        """))  # fmt: skip
    cli.chmod(0o755)
    guard = subprocess.Popen([*GUARD, "--parent", str(os.getpid()), str(cli)])
    assert wait_for(ready.exists, 30), "the stand-in CLI never started"
    guard.send_signal(signal.SIGINT)
    assert guard.wait(timeout=20) == 255
    assert marker.read_text() == "1"


def test_a_guard_whose_parent_is_not_the_one_named_starts_nothing(tmp_path: Path) -> None:
    """The race a death signal armed by the guard itself leaves open: stackctl died before the
    guard armed it, and the guard, reparented, sees another parent than `--parent`."""
    started = tmp_path / "started"
    cli = tmp_path / "cli"
    cli.write_text(f"#!/bin/sh\ntouch {started}\nsleep 60\n")
    cli.chmod(0o755)
    gone = subprocess.Popen(["true"])
    gone.wait()
    guard = subprocess.run([*GUARD, "--parent", str(gone.pid), str(cli)], timeout=30)
    assert guard.returncode == 128 + signal.SIGTERM
    assert not started.exists()


# A "stackctl" that dies at once after starting the guard (before or after the guard armed its
# death signal: either way no engine may be left).
ORPHANING_PARENT = """import os, subprocess, sys
guard = subprocess.Popen([*{guard!r}, "--parent", str(os.getpid()), {cli!r}])
os._exit(0)
"""


def test_a_stackctl_dead_right_after_starting_the_guard_leaves_no_engine(tmp_path: Path) -> None:
    cli = tmp_path / "pulumi"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    pids = tmp_path / "pids"
    script = ORPHANING_PARENT.format(guard=GUARD, cli=str(cli))
    env = {**os.environ, "PIDS_FILE": str(pids)}
    for _ in range(5):
        subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, timeout=30)
        time.sleep(1.5)  # a guard that started the CLI has written its pids by now
        if pids.exists():
            tree = [int(p) for p in pids.read_text().split()]
            assert wait_for(lambda tree=tree: not any(map(alive, tree)), timeout=30), tree
            pids.unlink()


# The Automation API's event server as `Stack._setup_event_log` starts it for every preview
# (pulumi/automation/_stack.py, pulumi 3.272.0), kept busy by a client streaming engine events
# into it (as the engine does) while stackctl launches commands; the process reports what it saw.
GRPC_STACKCTL = """\
import json, os, sys, threading
from concurrent import futures
import grpc
sys.path.insert(0, {repo!r})
from pulumi.automation._stack import _EventsServicer
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import events_pb2, events_pb2_grpc
from stackctl.ops.engine import EngineCommand

forks = []
os.register_at_fork(before=lambda: forks.append(1))
events = []
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_CHANNEL_OPTIONS)
events_pb2_grpc.add_EventsServicer_to_server(_EventsServicer(events.append), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
done = threading.Event()

def stream():
    stub = events_pb2_grpc.EventsStub(grpc.insecure_channel(f"127.0.0.1:{{port}}"))
    while not done.is_set():
        stub.StreamEvents(
            events_pb2.EventRequest(event=json.dumps({{"sequence": n, "timestamp": 0,
                                                       "cancelEvent": {{}}}}))
            for n in range(20)
        )

client = threading.Thread(target=stream)
client.start()
command = EngineCommand.__new__(EngineCommand)  # no `pulumi version` probe
command._lock = threading.Lock()
command._running = None
command.command = {cli!r}
codes = []
for _ in range({launches}):
    try:
        command.run(["preview", "--event-log", f"tcp://127.0.0.1:{{port}}"], {cwd!r}, {{}})
        codes.append(0)
    except Exception as exc:
        codes.append(getattr(exc, "exit_code", -1))
done.set()
client.join()
server.stop(0)
print(json.dumps({{"codes": codes, "forks": len(forks), "events": len(events)}}))
"""


def test_engine_launches_beside_a_busy_grpc_server_run_no_fork_handler(tmp_path: Path) -> None:
    """With `preexec_fn` every launch ran gRPC's fork handlers ("skipping fork() handlers") and
    a few in 100 died of SIGABRT before exec ("epoll_wait error: Bad file descriptor")."""
    launches = 30
    cli = tmp_path / "pulumi"
    cli.write_text("#!/bin/sh\nexit 0\n")
    cli.chmod(0o755)
    script = GRPC_STACKCTL.format(
        repo=str(REPO), cli=str(cli), cwd=str(tmp_path), launches=launches
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["codes"] == [0] * launches, proc.stderr[-2000:]
    assert seen["events"] > 0  # the server was serving while the commands started
    assert seen["forks"] == 0  # no at-fork handler ran: the guard was started with vfork
    for symptom in ("fork()", "fork_posix", "epoll_wait"):
        assert symptom not in proc.stderr, proc.stderr[-2000:]
