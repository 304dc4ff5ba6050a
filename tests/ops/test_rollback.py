"""rollback: target validation, state backup first, config restore (secrets kept), commit check."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import OperationFailed, UserError
from stackctl.ops.automation import SECRET_SENTINEL, ConfigValue
from stackctl.ops.rollback import plan_config_restore, run_rollback, select_target
from tests.ops.conftest import PULUMI_DEV, git_init, make_project
from tests.ops.fake_backend import (
    API_TOKEN,
    DB_PASSWORD,
    HEAD,
    OLD,
    FakeBackend,
    apps,
    current_config,
    plain,
    record,
    sample_history,
    secret,
)
from tests.ops.test_deploy_rollout_watch import (
    FINISHED,
    HALFWAY,
    STALE_REUSE,
    ReturningBackend,
    RollingApi,
    fast_rollouts,
)
from tests.ops.test_rollout_status import AVAILABLE, PROGRESS_DEADLINE, counted

NOW = datetime(2026, 11, 23, 9, 30, 15, tzinfo=UTC)


def rollback(
    backend: FakeBackend,
    project: Path,
    rec: Any,
    *,
    head: str = HEAD,
    assume_yes: bool = True,
    **kwargs: Any,
) -> int:
    return run_rollback(
        backend,
        project_dir=project,
        assume_yes=assume_yes,
        console=rec.console,
        now=lambda: NOW,
        current_head=lambda _d: head,
        **kwargs,
    )


def fake(project: Path, **kwargs: Any) -> FakeBackend:
    return FakeBackend(backup_dir=project / ".pulumi-backups", **kwargs)


# -- target selection -------------------------------------------------------------------------


def test_steps_counts_successful_updates_back_from_newest() -> None:
    history = sample_history()
    assert select_target(history, to_version=None, steps=1)["version"] == 2
    assert select_target(history, to_version=None, steps=2)["version"] == 1


def test_unknown_version_lists_available_versions() -> None:
    with pytest.raises(UserError) as err:
        select_target(sample_history(), to_version=42, steps=None)
    msg = str(err.value)
    assert "version 42 is not in the stack history" in msg
    assert "v6, v5, v4, v3, v2, v1" in msg
    assert "successful updates: v6, v2, v1" in msg


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        (4, "did not succeed (result 'failed')"),
        (5, "is a 'destroy' operation, not an update"),
        (3, "is a 'refresh' operation, not an update"),
    ],
)
def test_unusable_targets_are_rejected(version: int, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        select_target(sample_history(), to_version=version, steps=None)


def test_preview_record_is_not_a_target() -> None:
    history = [record(2, kind="preview"), record(1)]
    with pytest.raises(UserError, match="'preview' operation"):
        select_target(history, to_version=2, steps=None)


def test_steps_beyond_history() -> None:
    with pytest.raises(UserError, match=r"--steps 3 goes beyond history: only 3 successful"):
        select_target(sample_history(), to_version=None, steps=3)


def test_empty_history() -> None:
    with pytest.raises(UserError, match="no update history"):
        select_target([], to_version=1, steps=None)


# -- config plan ---------------------------------------------------------------------------


def test_plan_restores_target_config_keeping_current_secrets() -> None:
    target = select_target(sample_history(), to_version=2, steps=None)
    plan = plan_config_restore(target, current_config())

    assert plan.desired == {
        "appstack:environment": ConfigValue("dev"),
        "appstack:dbPassword": ConfigValue(DB_PASSWORD, secret=True),  # current value, kept
        "appstack:apps": ConfigValue(json.dumps(apps("1.1.0"))),
        "appstack:featureX": ConfigValue("on"),
    }
    assert plan.desired["appstack:apps"].object_value == apps("1.1.0")  # stays an object
    assert plan.kept_secrets == ["appstack:dbPassword"]
    # Only what changes is written; the kept secret never travels through `config set`.
    assert set(plan.to_set) == {"appstack:apps", "appstack:featureX"}
    # Present now, absent in v2: removed (a secret among them).
    assert plan.to_remove == ["appstack:apiToken", "appstack:newKey"]
    assert all(cv.value != SECRET_SENTINEL for cv in plan.desired.values())


def test_plan_errors_when_a_target_secret_is_not_set_now() -> None:
    target = select_target(sample_history(), to_version=2, steps=None)
    current = current_config()
    del current["appstack:dbPassword"]
    with pytest.raises(UserError, match=r"secret config appstack:dbPassword existed in v2"):
        plan_config_restore(target, current)


def test_plan_errors_when_a_target_secret_is_plaintext_now() -> None:
    target = select_target(sample_history(), to_version=2, steps=None)
    current = current_config()
    current["appstack:dbPassword"] = ConfigValue("plain-now")
    with pytest.raises(UserError, match="pulumi config set --secret"):
        plan_config_restore(target, current)


def test_plan_turns_a_now_secret_key_back_to_plain_when_the_target_had_it_plain() -> None:
    target = record(1, config={"appstack:level": plain("info")})
    plan = plan_config_restore(target, {"appstack:level": ConfigValue("x", secret=True)})
    assert plan.to_set == {"appstack:level": ConfigValue("info", secret=False)}


def test_plan_treats_json_text_as_object_when_the_key_is_structured_now() -> None:
    # History read via the SDK's UpdateSummary has no objectValue: only the JSON text.
    target = record(
        1, config={"appstack:apps": {"value": json.dumps(apps("1.0.0")), "secret": False}}
    )
    now = {"appstack:apps": ConfigValue(json.dumps(apps("1.2.0")), object_value=apps("1.2.0"))}
    plan = plan_config_restore(target, now)
    assert plan.to_set["appstack:apps"].object_value == apps("1.0.0")


def test_plan_is_empty_when_config_already_matches() -> None:
    target = sample_history()[0]  # v6 is the current config
    plan = plan_config_restore(target, current_config())
    assert plan.to_set == {}
    assert plan.to_remove == []


# -- the whole rollback ----------------------------------------------------------------------


def test_rollback_backs_up_state_before_any_change_then_restores_and_deploys(
    project: Path, recorder: Any
) -> None:
    rec = recorder()
    backend = fake(project)
    assert rollback(backend, project, rec, to_version=2) == 0

    assert backend.calls == [
        "history",
        "get_config",
        "export_state",
        "set_config",
        "remove_config",
        "preview",
        "up",
    ]
    backup = project / ".pulumi-backups" / "dev-v6-20261123T093015Z.json"
    # The backup file was already on disk when the first change (set_config) happened.
    assert backend.backups_seen_at_first_change == [backup]
    assert json.loads(backup.read_text()) == backend.state
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert not list(backup.parent.glob("*.tmp"))

    # The config `up` ran with: v2's, secrets at their current value, extra keys removed.
    assert backend.config_at_up == {
        "appstack:environment": ConfigValue("dev"),
        "appstack:dbPassword": ConfigValue(DB_PASSWORD, secret=True),
        "appstack:apps": ConfigValue(json.dumps(apps("1.1.0"))),
        "appstack:featureX": ConfigValue("on"),
    }
    assert backend.remove_config_calls == [["appstack:apiToken", "appstack:newKey"]]
    for call in backend.set_config_calls:
        assert all(cv.value != SECRET_SENTINEL for cv in call.values())
        assert "appstack:dbPassword" not in call

    assert backend.up_messages == [
        "appstack rollback to v2 from v6 4f2a9c1 images: "
        "web=registry.example.com/appstack/web:1.1.0"
    ]
    assert backend.preview_kwargs[0]["policy_pack_configs"] == [
        str(project / "policy" / "config" / "dev.json")
    ]
    # Secret values never reach the output.
    assert DB_PASSWORD not in rec.text and API_TOKEN not in rec.text
    assert "keep   appstack:dbPassword" in rec.text


def test_rollback_by_steps(project: Path, recorder: Any) -> None:
    backend = fake(project)
    assert rollback(backend, project, recorder(), steps=1) == 0
    assert backend.up_messages[0].startswith("appstack rollback to v2 from v6 ")


def test_rollback_returns_only_once_the_rollouts_it_started_finished(
    project: Path, recorder: Any
) -> None:
    # the provider's await may return while the reused ReplicaSet has no pod yet
    api = RollingApi(STALE_REUSE, HALFWAY, FINISHED)
    backend = ReturningBackend(api, backup_dir=project / ".pulumi-backups")
    assert rollback(backend, project, recorder(), steps=1, rollouts=fast_rollouts(api)) == 0
    assert api.served >= 3


def test_a_rollback_whose_rollout_then_exceeds_its_deadline_fails(
    project: Path, recorder: Any
) -> None:
    stuck = counted(AVAILABLE, PROGRESS_DEADLINE, updated=1, replicas=3, available=2)
    api = RollingApi(STALE_REUSE, stuck)
    backend = ReturningBackend(api, backup_dir=project / ".pulumi-backups")
    with pytest.raises(OperationFailed, match=r"rollout of dev failed: app web: "):
        rollback(backend, project, recorder(), steps=1, rollouts=fast_rollouts(api))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"to_version": 42}, "available versions"),
        ({"to_version": 4}, "did not succeed"),
        ({"to_version": 5}, "'destroy' operation"),
        ({"to_version": 3}, "'refresh' operation"),
        ({"steps": 5}, "goes beyond history"),
    ],
)
def test_invalid_target_changes_nothing(
    project: Path, recorder: Any, kwargs: dict[str, int], fragment: str
) -> None:
    backend = fake(project)
    with pytest.raises(UserError, match=fragment):
        rollback(backend, project, recorder(), **kwargs)
    assert backend.calls == ["history"]
    assert not (project / ".pulumi-backups").exists()


def test_commit_mismatch_points_to_git_revert(project: Path, recorder: Any) -> None:
    backend = fake(project)
    with pytest.raises(UserError) as err:
        rollback(backend, project, recorder(), to_version=1)  # v1 ran commit OLD
    msg = str(err.value)
    assert OLD[:12] in msg and HEAD[:12] in msg
    assert "git revert" in msg and "same commit" in msg
    assert "set_config" not in backend.calls and "up" not in backend.calls


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def _commit(root: Path, message: str) -> str:
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", message)
    return _git(root, "rev-parse", "HEAD")


def _committed_change(project: Path, path: str, text: str) -> tuple[str, str]:
    """(the commit v1 ran, HEAD after one more commit that writes `path`)."""
    git_init(project)
    deployed = _git(project, "rev-parse", "HEAD")
    (project / path).parent.mkdir(parents=True, exist_ok=True)
    (project / path).write_text(text, encoding="utf-8")
    return deployed, _commit(project, f"change {path}")


def test_a_commit_that_changed_only_a_stack_file_still_rolls_back(
    project: Path, recorder: Any
) -> None:
    # docs/releases.md: each release step is a reviewed change of the stack file, so a config
    # release is a commit; the program (git diff of the two commits) is the same one.
    deployed, head = _committed_change(
        project, "Pulumi.dev.yaml", PULUMI_DEV.replace("1.3.0", "1.4.0")
    )
    assert _git(project, "diff", "--name-only", deployed, head) == "Pulumi.dev.yaml"
    backend = fake(project, records=[record(2, commit=head), record(1, commit=deployed)])
    assert rollback(backend, project, recorder(), steps=1, head=head) == 0
    assert "up" in backend.calls


@pytest.mark.parametrize(
    "path",
    ["components/app/pod.py", "Pulumi.yaml", "policy/config/dev.json", "sub/Pulumi.dev.yaml"],
)
def test_a_commit_that_changed_the_program_is_refused_naming_what_changed(
    project: Path, recorder: Any, path: str
) -> None:
    deployed, head = _committed_change(project, path, "changed\n")
    backend = fake(project, records=[record(2, commit=head), record(1, commit=deployed)])
    with pytest.raises(UserError) as err:
        rollback(backend, project, recorder(), steps=1, head=head)
    assert f"besides stack files these differ: {path}" in str(err.value)
    assert "git revert" in str(err.value)
    assert "set_config" not in backend.calls and "up" not in backend.calls


def test_a_stack_file_of_a_project_in_a_subdirectory_counts_as_config(
    tmp_path: Path, recorder: Any
) -> None:
    repo = tmp_path / "repo"
    project = make_project(repo / "infra")
    deployed, head = _committed_change(repo, "infra/Pulumi.dev.yaml", PULUMI_DEV + "# x\n")
    backend = fake(project, records=[record(2, commit=head), record(1, commit=deployed)])
    assert rollback(backend, project, recorder(), steps=1, head=head) == 0


def test_unknown_current_commit_is_refused(project: Path, recorder: Any) -> None:
    backend = fake(project)
    with pytest.raises(UserError, match="cannot verify"):
        rollback(backend, project, recorder(), to_version=2, head="unknown")


def test_short_head_matches_full_recorded_commit(project: Path, recorder: Any) -> None:
    backend = fake(project)
    assert rollback(backend, project, recorder(), to_version=2, head=HEAD[:7]) == 0


def test_missing_secret_fails_before_backup_and_changes(project: Path, recorder: Any) -> None:
    config = current_config()
    del config["appstack:dbPassword"]
    backend = fake(project, config=config)
    with pytest.raises(UserError, match="appstack:dbPassword"):
        rollback(backend, project, recorder(), to_version=2)
    assert backend.calls == ["history", "get_config"]


def test_no_yes_without_tty_fails_before_touching_the_stack(project: Path, recorder: Any) -> None:
    backend = fake(project)
    with pytest.raises(UserError, match="pass --yes"):
        rollback(backend, project, recorder(interactive=False), to_version=2, assume_yes=False)
    assert backend.calls == []


def test_interactive_yes_deploys(project: Path, recorder: Any) -> None:
    rec = recorder(answers=["y"])
    backend = fake(project)
    assert rollback(backend, project, rec, to_version=2, assume_yes=False) == 0
    assert rec.questions == ["Roll dev back to v2? [y/N] "]
    assert backend.calls[-1] == "up"


def test_declined_rollback_restores_the_previous_config(project: Path, recorder: Any) -> None:
    backend = fake(project)
    with pytest.raises(OperationFailed, match="cancelled"):
        rollback(backend, project, recorder(answers=["n"]), to_version=2, assume_yes=False)
    assert "up" not in backend.calls
    assert backend.config == current_config()
    assert (project / ".pulumi-backups" / "dev-v6-20261123T093015Z.json").is_file()


def test_failed_up_is_an_operation_failure(project: Path, recorder: Any) -> None:
    backend = fake(project, up_result="failed")
    with pytest.raises(OperationFailed, match="ended with result 'failed'"):
        rollback(backend, project, recorder(), to_version=2)


def test_backup_name_for_org_qualified_stack(project: Path, recorder: Any) -> None:
    backend = fake(project)
    backend._stack_name = "acme/dev"
    assert rollback(backend, project, recorder(), to_version=2) == 0
    assert (project / ".pulumi-backups" / "acme_dev-v6-20261123T093015Z.json").is_file()


def test_exactly_one_of_to_and_steps(project: Path, recorder: Any) -> None:
    with pytest.raises(UserError, match="exactly one"):
        rollback(fake(project), project, recorder(), to_version=2, steps=1)


def test_secret_object_config_is_kept_whole() -> None:
    # `pulumi config set --secret --path secrets.web.KEY` makes the whole key secure.
    target = record(1, config={"appstack:secrets": secret(), "appstack:x": plain("1")})
    now = {"appstack:secrets": ConfigValue('{"web":{"KEY":"v"}}', secret=True)}
    plan = plan_config_restore(target, now)
    assert plan.desired["appstack:secrets"] == now["appstack:secrets"]
    assert "appstack:secrets" not in plan.to_set
