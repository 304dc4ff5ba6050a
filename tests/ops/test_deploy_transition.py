"""`stackctl deploy` judges the change against the stack's deployed state before the preview
(stackctl/ops/transition.py): a rollout the new namespace quota cannot hold is refused, exit 3,
and nothing runs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from components import config as config_model
from stackctl.diff.compare import Snapshot
from stackctl.errors import UserError
from stackctl.ops import transition
from stackctl.ops.deploy import run_deploy
from stackctl.render.stack import REPO_ROOT, load_raw_config
from tests.diff.test_state import state_of
from tests.ops.fake_backend import FakeBackend


def test_a_refusal_stops_the_deploy_before_the_preview(project: Path, recorder: Any) -> None:
    backend = FakeBackend()
    backend.state["deployment"]["resources"] = [{"type": "kubernetes:core/v1:Pod"}]
    seen: list[Any] = []

    def check(project_dir: Path, stack: str, state: Any) -> list[str]:
        seen.append((project_dir, stack, state))
        return ["quota: ResourceQuota appstack-quota: ..."]

    with pytest.raises(UserError) as raised:
        run_deploy(
            backend, project_dir=project, console=recorder().console, assume_yes=True,
            check=check,
        )  # fmt: skip
    assert raised.value.exit_code == 3
    assert "refused before any change" in str(raised.value) and "quota:" in str(raised.value)
    assert "preview" not in backend.calls and "up" not in backend.calls
    assert seen == [(project, "dev", backend.state)]


def test_no_refusal_lets_the_deploy_run(project: Path, recorder: Any) -> None:
    backend = FakeBackend()
    run_deploy(
        backend, project_dir=project, console=recorder().console, assume_yes=True,
        check=lambda *_: [],
    )  # fmt: skip
    assert backend.calls[-2:] == ["preview", "up"]


def test_an_empty_stack_is_not_checked(tmp_path: Path) -> None:
    """Nothing deployed yet: no child process, nothing to refuse (tmp_path has no stackctl)."""
    assert transition.refusals(tmp_path, "dev", {"deployment": {"resources": []}}) == []


def test_the_check_runs_stackctl_diff_against_the_state() -> None:
    """The real child process on this project: the state holds prod at 2 cpu a pod, the
    working tree's prod asks for its own (lower) requests; the HPA maximum of old pods at 2
    cpu alone is above the new quota."""
    raw = copy.deepcopy(load_raw_config(REPO_ROOT, "prod"))
    raw["apps"]["web"] = config_model.deep_merge(
        raw["apps"]["web"], {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}}
    )
    state = state_of(Snapshot.of_config(config_model.load(raw), "prod"))
    found = transition.refusals(REPO_ROOT, "organization/prod", state)
    assert len(found) == 1 and found[0].startswith("quota: ResourceQuota appstack-quota"), found
    with pytest.raises(UserError):
        transition.refuse("prod", found)
