"""Issue 29, scenario 2: killing stackctl (SIGKILL included) never leaves its engine running.

The engine here is a stand-in with the process shape of `pulumi up` (named as such): a CLI
process that starts a plugin in a process group of its own (pulumi
sdk/go/common/util/cmdutil/child_unix.go `RegisterProcessGroup`), which would outlive the CLI.
The "stackctl" is a real Python process running `EngineCommand.run`, killed with SIGKILL; the
oracle is /proc: no process of the tree is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from stackctl.ops.engine_guard import descendants
from tests.tooling import REPO

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
    guard = subprocess.Popen(
        [sys.executable, "-I", str(REPO / "stackctl" / "ops" / "engine_guard.py"), str(cli)]
    )
    assert wait_for(ready.exists, 30), "the stand-in CLI never started"
    guard.send_signal(signal.SIGINT)
    assert guard.wait(timeout=20) == 255
    assert marker.read_text() == "1"
