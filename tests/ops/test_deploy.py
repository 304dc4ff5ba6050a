"""deploy: refresh/preview/up order, policy pack paths, confirmation, update message, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import OperationFailed, UserError
from stackctl.ops.deploy import run_deploy
from stackctl.ops.operator import Console
from stackctl.ops.stacks import (
    deploy_message,
    git_commit,
    images_from_message,
    read_stack_images,
    stack_environment,
)
from tests.ops.conftest import git_init, make_project
from tests.ops.fake_backend import FakeBackend


def deploy(backend: FakeBackend, project: Path, rec: Any, **kwargs: Any) -> int:
    kwargs.setdefault("assume_yes", True)
    return run_deploy(backend, project_dir=project, console=rec.console, **kwargs)


def test_deploy_message_carries_commit_and_every_image(project: Path, recorder: Any) -> None:
    commit = git_init(project)
    backend = FakeBackend()
    assert deploy(backend, project, recorder()) == 0
    assert backend.calls == ["history", "export_state", "preview", "up"]
    assert backend.up_messages == [
        f"appstack deploy {commit} images: "
        "api=registry.example.com/appstack/api:2.1.0,web=registry.example.com/appstack/web:1.3.0"
    ]
    # history reads the images back from that message
    assert images_from_message(backend.up_messages[0]) == (
        "api=registry.example.com/appstack/api:2.1.0,web=registry.example.com/appstack/web:1.3.0"
    )


def test_commit_is_unknown_outside_git(project: Path, recorder: Any) -> None:
    backend = FakeBackend()
    deploy(backend, project, recorder())
    assert git_commit(project) == "unknown"
    assert backend.up_messages[0].startswith("appstack deploy unknown images: ")


def test_missing_stack_file_or_apps_gives_dash(tmp_path: Path, recorder: Any) -> None:
    project = make_project(tmp_path / "p", stack_yaml=None)
    backend = FakeBackend()
    deploy(backend, project, recorder())
    assert backend.up_messages[0] == "appstack deploy unknown images: -"
    other = make_project(tmp_path / "q", stack_yaml="config:\n  appstack:apps: oops\n")
    assert read_stack_images(other, "dev") == {}
    broken = make_project(tmp_path / "r", stack_yaml="config: [\n")
    assert read_stack_images(broken, "dev") == {}


def test_preview_uses_the_policy_pack_of_the_stack_environment(
    tmp_path: Path, recorder: Any
) -> None:
    project = make_project(tmp_path / "p", stack="prod")
    backend = FakeBackend("acme/prod")
    deploy(backend, project, recorder(), preview_only=True)
    assert backend.preview_kwargs == [
        {
            "policy_packs": [str(project / "policy")],
            "policy_pack_configs": [str(project / "policy" / "config" / "prod.json")],
        }
    ]


def test_preview_only_never_calls_up_and_needs_no_confirmation(
    project: Path, recorder: Any
) -> None:
    rec = recorder(interactive=False)
    backend = FakeBackend(preview_changes={"create": 2, "update": 1, "same": 9})
    assert deploy(backend, project, rec, preview_only=True, assume_yes=False) == 0
    assert backend.calls == ["preview"]
    assert "preview dev: +2 ~1 -0 (create 2, same 9, update 1)" in rec.text
    assert "Previewing update (dev):" in rec.text  # live output streamed


def test_refresh_runs_before_preview(project: Path, recorder: Any) -> None:
    backend = FakeBackend()
    deploy(backend, project, recorder(), refresh=True)
    assert backend.calls == ["history", "export_state", "refresh", "preview", "up"]


def test_no_yes_without_tty_is_a_user_error_before_any_work(project: Path, recorder: Any) -> None:
    backend = FakeBackend()
    with pytest.raises(UserError, match="pass --yes"):
        deploy(backend, project, recorder(interactive=False), assume_yes=False)
    assert backend.calls == []


def test_ci_true_means_not_interactive() -> None:
    assert Console.from_environment({"CI": "true"}).interactive is False


def test_operator_declines(project: Path, recorder: Any) -> None:
    rec = recorder(answers=["no"])
    backend = FakeBackend()
    with pytest.raises(OperationFailed, match="cancelled"):
        deploy(backend, project, rec, assume_yes=False)
    assert backend.calls == ["history", "export_state", "preview"]  # backed up, nothing changed
    assert rec.questions == ["Deploy these changes to dev? [y/N] "]


def test_operator_confirms(project: Path, recorder: Any) -> None:
    backend = FakeBackend()
    assert deploy(backend, project, recorder(answers=["y"]), assume_yes=False) == 0
    assert backend.calls == ["history", "export_state", "preview", "up"]


def test_failed_up_result_is_operation_failed(project: Path, recorder: Any) -> None:
    rec = recorder()
    backend = FakeBackend(up_result="failed")
    with pytest.raises(OperationFailed, match="ended with result 'failed'"):
        deploy(backend, project, rec)
    assert "result: failed" in rec.text


def test_up_error_propagates(project: Path, recorder: Any) -> None:
    backend = FakeBackend(up_error=OperationFailed("pulumi up failed: error: boom"))
    with pytest.raises(OperationFailed, match="boom"):
        deploy(backend, project, recorder())


def test_summary_reports_result_changes_and_duration(project: Path, recorder: Any) -> None:
    rec = recorder()
    deploy(FakeBackend(), project, rec)
    last = rec.text.strip().splitlines()[-1]
    assert last.startswith("result: succeeded  version: v7  changes: +0 ~1 -0 (same 11, update 1)")
    assert "duration: " in last and last.endswith("s")


def test_missing_policy_pack_is_a_user_error(tmp_path: Path, recorder: Any) -> None:
    project = tmp_path / "bare"
    project.mkdir()
    with pytest.raises(UserError, match="policy pack not found"):
        deploy(FakeBackend(), project, recorder())


@pytest.mark.parametrize(
    ("stack", "env"),
    [
        ("dev", "dev"),
        ("staging", "staging"),
        ("acme/staging", "staging"),
        ("prod", "prod"),
        ("acme/prod", "prod"),
        ("dev-alice", "dev"),
    ],
)
def test_stack_environment(stack: str, env: str) -> None:
    assert stack_environment(stack) == env


@pytest.mark.parametrize("stack", ["qa", "acme/qa", "stage", "../dev", "dev/"])
def test_stack_environment_rejects_other_names(stack: str) -> None:
    with pytest.raises(UserError):
        stack_environment(stack)


def test_deploy_message_format() -> None:
    assert deploy_message("abc1234", {"web": "r/web:1", "api": "r/api:2"}) == (
        "appstack deploy abc1234 images: api=r/api:2,web=r/web:1"
    )
    assert deploy_message("abc1234", {}) == "appstack deploy abc1234 images: -"
