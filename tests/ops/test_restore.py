"""Issue 29, scenario 6: deploy backs up the state before it changes anything, and one command
restores the newest backup (`pulumi stack import` of what `pulumi stack export` wrote)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import UserError
from stackctl.ops.deploy import run_deploy, run_restore
from tests.ops.fake_backend import FakeBackend, record


def deployed(project: Path, recorder: Any) -> FakeBackend:
    backend = FakeBackend()
    backend.records = [record(1)]
    backend.state = {"version": 3, "deployment": {"resources": [{"urn": "one"}]}}
    run_deploy(backend, project_dir=project, console=recorder().console, assume_yes=True)
    return backend


def test_deploy_writes_the_state_backup_before_the_update(project: Path, recorder: Any) -> None:
    backend = deployed(project, recorder)
    assert backend.calls.index("export_state") < backend.calls.index("up")
    [backup] = (project / ".pulumi-backups").glob("dev-v1-*.json")
    assert json.loads(backup.read_text())["deployment"]["resources"] == [{"urn": "one"}]
    assert backup.stat().st_mode & 0o077 == 0


def test_restore_imports_the_newest_backup(project: Path, recorder: Any) -> None:
    backend = deployed(project, recorder)
    backups = project / ".pulumi-backups"
    newer = backups / "dev-v2-20991231T235959Z.json"
    newer.write_text(json.dumps({"version": 3, "deployment": {"resources": [{"urn": "two"}]}}))
    os.utime(newer, (0, 0))  # the time in the name decides, not the file's mtime
    backend.state = {"version": 3, "deployment": {}}  # the state is lost
    rec = recorder()
    assert run_restore(backend, project_dir=project, path=None, assume_yes=True,
                       console=rec.console) == 0  # fmt: skip
    assert backend.calls[-1] == "import_state"
    assert json.dumps(backend.state).count('"urn": "two"') == 1
    assert str(newer) in rec.text


def test_restore_without_a_backup_is_one_clear_error(project: Path, recorder: Any) -> None:
    with pytest.raises(UserError, match="no state backup of dev"):
        run_restore(FakeBackend(), project_dir=project, path=None, assume_yes=True,
                    console=recorder().console)  # fmt: skip


def test_restore_asks_first(project: Path, recorder: Any) -> None:
    backend = deployed(project, recorder)
    rec = recorder(answers=["n"])
    with pytest.raises(Exception, match="cancelled"):
        run_restore(backend, project_dir=project, path=None, assume_yes=False,
                    console=rec.console)  # fmt: skip
    assert "import_state" not in backend.calls
