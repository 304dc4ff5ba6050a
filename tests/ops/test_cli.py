"""The commands through the real dispatcher (stackctl.cli.main): flags and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackctl import cli
from stackctl.ops import deploy as ops
from stackctl.ops import rollback
from tests.ops.fake_backend import HEAD, FakeBackend


@pytest.fixture
def run(monkeypatch: Any, project: Path) -> Any:
    backends: list[FakeBackend] = []
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("stackctl.ops.deploy",))
    monkeypatch.delenv("CI", raising=False)

    def invoke(*argv: str, **fake_kwargs: Any) -> tuple[int, FakeBackend | None]:
        def factory(stack: str, project_dir: Path, create: bool) -> FakeBackend:
            backend = FakeBackend(stack, **fake_kwargs)
            backend.created = create  # type: ignore[attr-defined]
            backends.append(backend)
            return backend

        monkeypatch.setattr(ops, "BACKEND_FACTORY", factory)
        code = cli.main([*argv, "--project-dir", str(project)])
        return code, (backends[-1] if backends else None)

    return invoke


def test_deploy_yes_exit_0(run: Any) -> None:
    code, backend = run("deploy", "dev", "--yes", "--refresh")
    assert code == 0
    assert backend.calls == ["history", "export_state", "refresh", "preview", "up"]
    assert backend.created is True


def test_deploy_without_yes_and_without_tty_exits_2(run: Any, capsys: Any) -> None:
    code, backend = run("deploy", "dev")
    assert code == 2
    assert backend.calls == []
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--yes" in err and len(err.strip().splitlines()) == 1


def test_deploy_preview_only_exit_0(run: Any) -> None:
    code, backend = run("deploy", "dev", "--preview-only")
    # the state is read for the check before the preview (stackctl/ops/transition.py)
    assert code == 0 and backend.calls == ["export_state", "preview"]


def test_failed_up_exits_1(run: Any, capsys: Any) -> None:
    code, _ = run("deploy", "dev", "--yes", up_result="failed")
    assert code == 1
    assert capsys.readouterr().err.startswith("failed: ")


def test_unknown_environment_exits_2(run: Any) -> None:
    code, backend = run("deploy", "qa", "--yes")
    assert code == 2 and backend is None


def test_history_json_limit(run: Any, capsys: Any) -> None:
    code, _ = run("history", "dev", "--json", "--limit", "2")
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in rows] == [6, 5]


def test_rollback_unknown_version_exits_2(run: Any, capsys: Any) -> None:
    code, backend = run("rollback", "dev", "--to", "42", "--yes")
    assert code == 2
    assert "available versions" in capsys.readouterr().err
    assert backend.created is False


def test_rollback_needs_to_or_steps(run: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        run("rollback", "dev", "--yes")
    assert exc.value.code == 2


def test_rollback_to_and_steps_are_exclusive(run: Any) -> None:
    with pytest.raises(SystemExit):
        run("rollback", "dev", "--to", "2", "--steps", "1", "--yes")


def test_missing_pulumi_yaml_exits_2(monkeypatch: Any, tmp_path: Path, capsys: Any) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("stackctl.ops.deploy",))
    assert cli.main(["history", "dev", "--project-dir", str(tmp_path)]) == 2
    assert "no Pulumi.yaml" in capsys.readouterr().err


# The SDK's own failure types: `Stack.preview` raises the built-in RuntimeError when the CLI ends
# without a summary event (pulumi/automation/_stack.py, pulumi 3.272.0); other engine-layer code
# raises what it likes. Each must reach the operator as one line, never as a traceback.
@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("summary event never found"),
        RuntimeError("engine\nexploded\n  with a multi-line message"),
        TypeError("unexpected keyword"),
    ],
    ids=["sdk-runtime-error", "multi-line", "type-error"],
)
def test_a_failing_preview_is_one_line_exit_1(run: Any, capsys: Any, error: Exception) -> None:
    code, backend = run("deploy", "dev", "--yes", preview_error=error)
    assert code == 1
    # the state backed up first, then the preview failed: never reached `up`
    assert backend is not None and backend.calls == ["history", "export_state", "preview"]
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("failed: pulumi preview of dev failed: ")
    assert type(error).__name__ in err and str(error).splitlines()[0] in err


def test_a_failing_rollback_preview_is_one_line_exit_1(
    run: Any, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(rollback, "git_commit", lambda _dir, short=True: HEAD)
    error = RuntimeError("summary event never found")
    code, _ = run("rollback", "dev", "--steps", "1", "--yes", preview_error=error)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "summary event never found" in err


def test_the_real_backend_turns_the_sdk_runtime_error_into_one_line() -> None:
    """PulumiAutomationBackend._cli: the built-in RuntimeError of the SDK is not a CommandError."""
    from stackctl.errors import OperationFailed
    from stackctl.ops.automation import PulumiAutomationBackend

    backend = PulumiAutomationBackend("dev", Path("."))
    expected = "pulumi preview failed: summary event never found"
    with pytest.raises(OperationFailed, match=expected), backend._cli("pulumi preview"):
        raise RuntimeError("summary event never found")
