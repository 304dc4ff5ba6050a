"""scripts/ci/rollback_plan.py: what CI does after a failed deploy, from the stack history."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.ci.pipelines import CI_SCRIPTS

PLAN_PY = CI_SCRIPTS / "rollback_plan.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rollback_plan", PLAN_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rollback_plan"] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


rollback_plan = _load()
HEAD = "abcdef0123456789abcdef0123456789abcdef01"


def row(version: int, result: str = "succeeded", commit: str = "abcdef0", kind: str = "update"):
    return {"version": version, "kind": kind, "result": result, "commit": commit}


def plan(rows: list[dict[str, Any]], since: int) -> Any:
    return rollback_plan.plan(rows, since=since, head=HEAD)


def test_failed_update_at_the_same_commit_restores_the_last_good_config() -> None:
    rows = [row(5, "failed"), row(4), row(3, commit="1111111")]
    result = plan(rows, since=4)
    assert (result.action, result.version, result.commit) == ("config", 4, "abcdef0")


def test_targets_the_newest_good_update_not_one_before_it() -> None:
    """`stackctl rollback --steps 1` would pick v3 here: after a failed update the newest
    successful update (v4) is the state to return to."""
    rows = [row(5, "failed", commit="2222222"), row(4, commit="1111111"), row(3)]
    result = plan(rows, since=4)
    assert (result.action, result.version, result.commit) == ("redeploy", 4, "1111111")


def test_no_update_after_the_deploy_started_means_nothing_to_roll_back() -> None:
    # the deploy failed in preview/policy: history unchanged, or only a refresh was recorded
    assert plan([row(4), row(3)], since=4).action == "none"
    assert plan([row(5, kind="refresh"), row(4)], since=4).action == "none"


def test_earlier_failures_do_not_count_as_this_deploy() -> None:
    rows = [row(6, "failed"), row(5), row(4, "failed"), row(3)]
    result = plan(rows, since=5)
    assert (result.action, result.version) == ("config", 5)
    assert plan([row(5), row(4, "failed")], since=5).action == "none"


def test_first_deploy_or_no_commit_needs_a_human() -> None:
    assert plan([row(1, "failed")], since=0).action == "fail"
    assert plan([row(2, "failed"), row(1, commit="-")], since=1).action == "fail"


def test_refresh_and_failed_records_are_never_targets() -> None:
    rows = [row(7, "failed"), row(6, kind="refresh"), row(5, "failed"), row(4, commit="4444444")]
    result = plan(rows, since=6)
    assert (result.action, result.version, result.commit) == ("redeploy", 4, "4444444")


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PLAN_PY), *args], input=stdin, capture_output=True, text=True
    )


def test_cli_prints_one_line_for_the_shell() -> None:
    history = json.dumps([row(5, "failed"), row(4, commit="1111111")])
    proc = run_cli("--since", "4", "--head", HEAD, stdin=history)
    assert proc.returncode == 0
    assert proc.stdout == "redeploy 4 1111111 -\n"
    assert "deploy it again" in proc.stderr


def test_unhealthy_update_is_rolled_back_with_the_images_it_replaced() -> None:
    """deploy succeeded but `stackctl verify` failed: return to the update before it, and name
    that update's images so the redeploy runs them again (not the stack file's default)."""
    before = {**row(4, commit="1111111"), "images": "web=repo/web@sha256:" + "1" * 64}
    rows = [row(5), before]
    assert plan(rows, since=4).action == "none"  # healthy: nothing to undo
    result = rollback_plan.plan(rows, since=4, head=HEAD, unhealthy=True)
    assert (result.action, result.version, result.images) == ("redeploy", 4, before["images"])
    proc = run_cli("--since", "4", "--head", HEAD, "--unhealthy", stdin=json.dumps(rows))
    assert proc.stdout == f"redeploy 4 1111111 {before['images']}\n"
    # no update ran after v4: still nothing to roll back, healthy or not
    assert rollback_plan.plan([before], since=4, head=HEAD, unhealthy=True).action == "none"


@pytest.mark.parametrize(
    ("stdin", "expected"), [("[]", "0\n"), ("not json", "0\n"), (json.dumps([row(9)]), "9\n")]
)
def test_cli_latest(stdin: str, expected: str) -> None:
    assert run_cli("--latest", stdin=stdin).stdout == expected


def test_cli_unreadable_history_fails_safe() -> None:
    proc = run_cli("--since", "3", "--head", HEAD, stdin="<html>")
    assert proc.stdout == "fail - - -\n"
