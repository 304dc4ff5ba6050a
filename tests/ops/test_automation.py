"""PulumiAutomationBackend's pure parts: workspace options, record shapes, CLI plumbing.

Nothing here runs the Pulumi CLI (there is none on the build machines): the workspace options are
computed by pure functions, and the CLI-facing methods are driven with a stand-in stack.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation import CommandResult
from pulumi.automation.errors import CommandError

from stackctl.errors import OperationFailed, UserError
from stackctl.ops.automation import (
    ConfigValue,
    PulumiAutomationBackend,
    config_set_all_json,
    local_workspace_options,
    op_map_to_dict,
    summary_to_record,
    workspace_settings,
)
from stackctl.ops.engine_errors import EngineFailed, stderr_line
from stackctl.ops.history_time import HISTORY_TIME_FORMAT
from tests.ops.fake_backend import sample_history


def test_default_backend_is_a_file_backend_in_the_project(tmp_path: Path) -> None:
    s = workspace_settings(tmp_path, environ={})
    assert s.backend_url == f"file://{tmp_path.resolve()}/.pulumi-state"
    assert s.backend_source == "default-file" and s.is_local_file_backend
    assert s.work_dir == str(tmp_path.resolve())
    assert s.env_vars["PULUMI_BACKEND_URL"] == s.backend_url


def test_pulumi_backend_url_env_is_respected(tmp_path: Path) -> None:
    s = workspace_settings(tmp_path, environ={"PULUMI_BACKEND_URL": "s3://team-state/appstack"})
    assert s.backend_url == "s3://team-state/appstack" and s.backend_source == "env"
    assert not s.is_local_file_backend
    explicit = workspace_settings(
        tmp_path, "https://api.pulumi.com", environ={"PULUMI_BACKEND_URL": "s3://x"}
    )
    assert (
        explicit.backend_url == "https://api.pulumi.com" and explicit.backend_source == "argument"
    )


def test_secrets_are_never_copied_into_workspace_env(tmp_path: Path) -> None:
    environ = {
        "PULUMI_CONFIG_PASSPHRASE": "hunter2",
        "PULUMI_ACCESS_TOKEN": "pul-abc",
        "AWS_SECRET_ACCESS_KEY": "aws",
    }
    s = workspace_settings(tmp_path, environ=environ)
    assert set(s.env_vars) == {"PULUMI_BACKEND_URL", "PULUMI_SKIP_UPDATE_CHECK"}
    assert "hunter2" not in repr(s)


def test_local_workspace_options_are_built_from_the_settings(tmp_path: Path) -> None:
    s = workspace_settings(tmp_path, environ={})
    opts = local_workspace_options(s)
    assert isinstance(opts, auto.LocalWorkspaceOptions)
    assert opts.work_dir == s.work_dir
    assert opts.env_vars == {
        "PULUMI_BACKEND_URL": s.backend_url,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    assert opts.program is None  # a local program: the repo's Pulumi.yaml + __main__.py


def test_constructing_the_backend_runs_no_cli(tmp_path: Path, monkeypatch: Any) -> None:
    def boom(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the CLI must not run when the backend is constructed")

    monkeypatch.setattr(subprocess, "Popen", boom)
    monkeypatch.setattr(subprocess, "check_output", boom)
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    backend = PulumiAutomationBackend("dev", tmp_path)
    assert backend.stack_name == "dev"
    assert backend.settings.backend_url.endswith("/.pulumi-state")


def test_missing_cli_is_a_user_error(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    backend = PulumiAutomationBackend("dev", tmp_path)
    with pytest.raises(UserError, match="Pulumi CLI is not installed"):
        backend.history()


class StandInWorkspace:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.work_dir = "/repo"
        self.env_vars = {"PULUMI_BACKEND_URL": "file:///repo/.pulumi-state"}
        self.pulumi_command = self
        self.ran: list[list[str]] = []

    def run(self, args: list[str], cwd: str, env: dict[str, str]) -> CommandResult:
        self.ran.append(args)
        return CommandResult(
            stdout=self.outputs.get(args[0] + " " + args[1], ""), stderr="", code=0
        )


class StandInStack:
    def __init__(self, workspace: StandInWorkspace) -> None:
        self.workspace = workspace
        self.set_all: list[dict[str, Any]] = []
        self.set_all_json: list[str] = []
        self.removed: list[list[str]] = []
        self.calls: list[str] = []

    def set_all_config(self, config: dict[str, Any], path: bool = False) -> None:
        self.set_all.append(config)
        self.calls.append("set-all --path" if path else "set-all")

    def set_all_config_json(self, text: str) -> None:
        self.set_all_json.append(text)
        self.calls.append("set-all --json")

    def remove_all_config(self, keys: list[str]) -> None:
        self.removed.append(keys)
        self.calls.append("rm-all")


def backend_with(outputs: dict[str, str]) -> tuple[PulumiAutomationBackend, StandInStack]:
    backend = PulumiAutomationBackend("dev", "/repo", "file:///repo/.pulumi-state")
    stack = StandInStack(StandInWorkspace(outputs))
    backend._stack = stack
    return backend, stack


def test_history_is_the_raw_cli_json_with_the_secret_sentinel() -> None:
    raw = sample_history()
    for rec in raw:  # what the CLI prints without --show-secrets: no value for secrets
        for cv in rec["config"].values():
            if cv["secret"]:
                del cv["value"]
    backend, stack = backend_with({"stack history": json.dumps(raw)})
    assert backend.history() == sample_history()
    assert stack.workspace.ran == [
        ["stack", "history", "--json", "--page-size", "0", "--stack", "dev"]
    ]


def test_history_asks_for_every_update_not_the_cli_default_page() -> None:
    """`pulumi stack history` prints the newest 10 unless told (pkg/cmd/pulumi/stack/
    stack_history.go: `page-size` default 10); a page size of 0 is the whole history
    (backend/diy/state.go `getHistory`, httpstate client `GetStackUpdates`)."""
    backend, stack = backend_with({"stack history": "[]"})
    backend.history()
    (args,) = stack.workspace.ran
    assert args[args.index("--page-size") + 1] == "0"


def test_export_keeps_secrets_encrypted() -> None:
    doc = {"version": 3, "deployment": {"resources": []}}
    backend, stack = backend_with({"stack export": json.dumps(doc)})
    assert backend.export_state() == doc
    assert stack.workspace.ran == [["stack", "export", "--stack", "dev"]]
    assert "--show-secrets" not in stack.workspace.ran[0]


def test_get_config_keeps_object_values() -> None:
    out = {
        "appstack:apps": {"value": '{"web":{}}', "objectValue": {"web": {}}, "secret": False},
        "appstack:db": {"value": "pw", "secret": True},
    }
    backend, _ = backend_with({"config --show-secrets": json.dumps(out)})
    cfg = backend.get_config()
    assert cfg["appstack:apps"].object_value == {"web": {}}
    assert cfg["appstack:db"] == ConfigValue("pw", secret=True)
    assert "pw" not in repr(cfg)  # ConfigValue's repr redacts secrets


def test_set_config_keeps_objects_as_objects_and_secrets_secret() -> None:
    backend, stack = backend_with({})
    backend.set_config(
        {
            "appstack:level": ConfigValue("info"),
            "appstack:token": ConfigValue("t", secret=True),
            "appstack:apps": ConfigValue('{"web":{}}', object_value={"web": {}}),
        }
    )
    [plain] = stack.set_all
    assert plain["appstack:level"].value == "info" and not plain["appstack:level"].secret
    assert plain["appstack:token"].secret is True
    assert isinstance(plain["appstack:token"], auto.ConfigValue)
    assert [json.loads(t) for t in stack.set_all_json] == [
        {"appstack:apps": {"value": '{"web":{}}', "objectValue": {"web": {}}, "secret": False}}
    ]
    backend.remove_config(["appstack:old"])
    backend.remove_config([])
    assert stack.removed == [["appstack:old"]]


def test_summary_to_record_round_trips_the_sdk_update_summary() -> None:
    # Build UpdateSummary exactly as Stack.history() does (pulumi/automation/_stack.py).
    for raw in sample_history():
        summary = auto.UpdateSummary(
            kind=raw["kind"],
            start_time=datetime.strptime(raw["startTime"], HISTORY_TIME_FORMAT),
            message=raw["message"],
            environment=raw["environment"],
            config=raw["config"],
            result=raw["result"],
            end_time=datetime.strptime(raw["endTime"], HISTORY_TIME_FORMAT),
            version=raw["version"],
            resource_changes=raw["resourceChanges"],
        )
        expected = json.loads(json.dumps(raw))
        for cv in expected["config"].values():
            cv.pop("objectValue", None)  # UpdateSummary keeps only value/secret
        assert summary_to_record(summary) == expected


def test_summary_with_shown_secret_is_redacted() -> None:
    summary = auto.UpdateSummary(
        kind="update",
        start_time=datetime(2026, 1, 1),
        message="m",
        environment={},
        config={"a:pw": {"value": "clear", "secret": True}},
        result="succeeded",
    )
    assert summary_to_record(summary)["config"] == {"a:pw": {"value": "[secret]", "secret": True}}


def test_op_map_accepts_sdk_op_types() -> None:
    assert op_map_to_dict({auto.OpType.CREATE: 2, "same": 3}) == {"create": 2, "same": 3}


def test_config_set_all_json_shape() -> None:
    assert json.loads(config_set_all_json({"k": ConfigValue("v", secret=True)})) == {
        "k": {"value": "v", "secret": True}
    }


def test_the_error_line_comes_from_stderr_only() -> None:
    err = CommandError(
        CommandResult(
            stdout='{"appstack:db": {"value": "clear-secret"}}',
            stderr="warning: x\nerror: no Pulumi.yaml project file found\n",
            code=255,
        )
    )
    line = stderr_line(err)
    assert line == "error: no Pulumi.yaml project file found"
    assert "clear-secret" not in line


def test_cli_failures_become_operation_failed() -> None:
    backend, stack = backend_with({})

    def fail(*_a: Any, **_k: Any) -> Any:
        raise CommandError(CommandResult(stdout="", stderr="error: update failed", code=1))

    stack.workspace.run = fail  # type: ignore[method-assign]
    with pytest.raises(OperationFailed, match="pulumi stack export failed: error: update failed"):
        backend.export_state()


# Engine events as the CLI streams them to `--event-log` (the JSON `EngineEvent.from_json` reads,
# pulumi/automation/events.py; color markup as the engine writes it).
URN = "urn:pulumi:dev::appstack::appstack:app:App$kubernetes:apps/v1:Deployment::web"
FAILED_PREVIEW_EVENTS = [
    {"sequence": 1, "timestamp": 0, "diagnosticEvent": {
        "urn": URN, "severity": "error", "color": "raw",
        "message": "<{%fg 1%}>error: <{%reset%}>Deployment.apps \"web\" is invalid: "
                   "spec.replicas: Invalid value: -1<{%reset%}>\n"}},
    {"sequence": 2, "timestamp": 0, "diagnosticEvent": {
        "severity": "warning", "color": "raw", "message": "a warning, not an error\n"}},
    {"sequence": 3, "timestamp": 0, "policyEvent": {
        "resourceUrn": URN, "message": "containers must not run as root", "color": "raw",
        "policyName": "no-root", "policyPackName": "appstack-policy", "policyPackVersion": "1",
        "policyPackVersionTag": "1", "enforcementLevel": "mandatory"}},
    {"sequence": 4, "timestamp": 0, "policyEvent": {
        "resourceUrn": URN, "message": "advisory only", "color": "raw",
        "policyName": "advice", "policyPackName": "appstack-policy", "policyPackVersion": "1",
        "policyPackVersionTag": "1", "enforcementLevel": "advisory"}},
]  # fmt: skip


def test_a_failed_preview_names_the_engines_error_lines() -> None:
    backend, stack = backend_with({})

    def preview(**kw: Any) -> Any:
        for event in FAILED_PREVIEW_EVENTS:
            kw["on_event"](auto.EngineEvent.from_json(event))
        raise CommandError(CommandResult(stdout="Diagnostics: ...", stderr="", code=255))

    stack.preview = preview  # type: ignore[attr-defined]
    with pytest.raises(EngineFailed) as failed:
        backend.preview(policy_packs=[], policy_pack_configs=[], on_output=print)
    assert str(failed.value).splitlines() == [
        "pulumi preview failed:",
        '  kubernetes:apps/v1:Deployment (web): error: Deployment.apps "web" is invalid: '
        "spec.replicas: Invalid value: -1",
        "  kubernetes:apps/v1:Deployment (web): mandatory policy appstack-policy/no-root: "
        "containers must not run as root",
    ]
    assert failed.value.engine_said


def test_an_engine_that_died_of_a_signal_says_so() -> None:
    """The flake of issue 28: the guard aborted before exec (SIGABRT: the process's exit
    status -6) and only gRPC's line reached stderr."""
    backend, stack = backend_with({})
    epoll = (
        "E1207 11:14:04.265265 19520 ev_epoll1_linux.cc:373] (event_engine) Epoll1Poller:0x5600 "
        "encountered epoll_wait error: Bad file descriptor"
    )

    def preview(**kw: Any) -> Any:
        raise CommandError(CommandResult(stdout="", stderr=epoll + "\n", code=-6))

    stack.preview = preview  # type: ignore[attr-defined]
    with pytest.raises(EngineFailed) as failed:
        backend.preview(policy_packs=[], policy_pack_configs=[], on_output=print)
    assert str(failed.value) == (
        f"pulumi preview failed: {epoll} (the engine's process died of SIGABRT)"
    )


def test_an_engine_that_said_nothing_fails_bare() -> None:
    backend, stack = backend_with({})

    def up(**kw: Any) -> Any:
        raise CommandError(CommandResult(stdout="", stderr="", code=255))

    stack.up = up  # type: ignore[attr-defined]
    with pytest.raises(EngineFailed) as failed:
        backend.up(message="m", policy_packs=[], policy_pack_configs=[], on_output=print)
    assert str(failed.value) == "pulumi up failed: CommandError"
    assert not failed.value.engine_said


def test_a_diy_backends_history_is_numbered_from_the_oldest_update() -> None:
    """A DIY backend writes no update number (pkg/backend/diy/backend.go leaves
    `UpdateInfo.Version` unset: the CLI prints 0) and lists the newest first (state.go
    `getHistory`); the Cloud numbers updates 1..N, and so does stackctl."""
    raw = sample_history()
    for rec in raw:
        rec["version"] = 0
    backend, _ = backend_with({"stack history": json.dumps(raw)})
    numbered = backend.history()
    assert [r["version"] for r in numbered] == list(range(len(raw), 0, -1))
    assert [r["startTime"] for r in numbered] == [r["startTime"] for r in raw]
    # the rows a rollback --to and a backup name use are the ones the Cloud would give
    assert [r["version"] for r in sample_history()] == [r["version"] for r in numbered]
