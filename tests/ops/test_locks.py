"""Issue 29, scenarios 2 and 3: a deploy meets the stack's lock before it does any work.

The lock files are written as Pulumi's DIY backend writes them (pulumi pkg/v3
backend/diy/lock.go: `<backend>/.pulumi/locks/<org>/<project>/<stack>/<uuid>.json` holding
`lockContent{pid, username, hostname, timestamp}`, the time in Go's RFC 3339 JSON form)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import OperationFailed
from stackctl.ops.deploy import run_deploy
from stackctl.ops.locks import read_locks
from stackctl.ops.stacks import images_from_message
from tests.ops.fake_backend import FakeBackend


def lock_file(state: Path, pid: int, hostname: str, stack: str = "dev") -> Path:
    path = state / ".pulumi" / "locks" / "organization" / "appstack" / stack
    path.mkdir(parents=True, exist_ok=True)
    lock = path / "6f1c3a52-2b8e-4d7a-9a51-0c5d3e1f2a44.json"
    lock.write_text(json.dumps({"pid": pid, "username": "ci", "hostname": hostname,
                                "timestamp": "2026-12-07T06:00:00.123456789Z"}))  # fmt: skip
    return lock


def finished_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def deploy(project: Path, rec: Any, state: Path, **kwargs: Any) -> FakeBackend:
    backend = FakeBackend()
    kwargs.setdefault("assume_yes", True)
    run_deploy(backend, project_dir=project, console=rec.console,
               backend_url=f"file://{state}", **kwargs)  # fmt: skip
    return backend


def test_a_running_updates_lock_refuses_the_deploy_before_any_work(
    project: Path, recorder: Any, tmp_path: Path
) -> None:
    import os

    state = tmp_path / "state"
    lock = lock_file(state, os.getpid(), socket.gethostname())
    backend = FakeBackend()
    with pytest.raises(OperationFailed) as caught:
        run_deploy(backend, project_dir=project, console=recorder().console, assume_yes=True,
                   backend_url=f"file://{state}")  # fmt: skip
    assert backend.calls == [], "it previewed although the stack is locked"
    message = str(caught.value)
    assert f"ci@{socket.gethostname()} (pid {os.getpid()})" in message
    assert "--force-unlock" in message and lock.exists()


def test_a_lock_from_another_host_counts_as_running(
    project: Path, recorder: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    lock_file(state, finished_pid(), "runner-7")
    with pytest.raises(OperationFailed, match=r"ci@runner-7 \(pid"):
        deploy(project, recorder(), state)


def test_a_lock_whose_process_is_gone_is_removed_and_reported(
    project: Path, recorder: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    pid = finished_pid()
    lock = lock_file(state, pid, socket.gethostname())
    rec = recorder()
    backend = deploy(project, rec, state)
    assert not lock.exists()
    assert f"found a stale lock of dev: held by ci@{socket.gethostname()} (pid {pid})" in rec.text
    assert backend.calls == ["history", "export_state", "preview", "up"]
    assert "force-unlocked" not in backend.up_messages[0]


def test_force_unlock_breaks_a_live_lock_and_says_so_in_the_update_message(
    project: Path, recorder: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    lock = lock_file(state, 1, "runner-7")
    backend = deploy(project, recorder(), state, force_unlock=True)
    assert not lock.exists()
    message = backend.up_messages[0]
    second = message.split("\n")[1]
    # the first line keeps the contract history reads (stackctl/ops/stacks.py)
    images = (
        "api=registry.example.com/appstack/api:2.1.0,web=registry.example.com/appstack/web:1.3.0"
    )
    assert images_from_message(message) == images
    assert second == (
        "force-unlocked: the lock of ci@runner-7 (pid 1) since 2026-12-07T06:00:00.123456789Z "
        f"({lock})"
    )


def test_force_unlock_asks_and_a_no_keeps_the_lock(
    project: Path, recorder: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    lock = lock_file(state, 1, "runner-7")
    rec = recorder(answers=["n"])
    backend = FakeBackend()
    with pytest.raises(OperationFailed, match="lock of dev kept"):
        run_deploy(backend, project_dir=project, console=rec.console, assume_yes=False,
                   backend_url=f"file://{state}", force_unlock=True)  # fmt: skip
    assert rec.questions == ["Break the lock of ci@runner-7 (pid 1) since "
                             "2026-12-07T06:00:00.123456789Z on dev? [y/N] "]  # fmt: skip
    assert lock.exists() and backend.calls == []


def test_other_stacks_locks_are_not_this_stacks(tmp_path: Path) -> None:
    state = tmp_path / "state"
    lock_file(state, 1, "runner-7", stack="prod")
    assert read_locks(f"file://{state}", "appstack", "dev") == []
    assert [lock.pid for lock in read_locks(f"file://{state}", "appstack", "prod")] == [1]
