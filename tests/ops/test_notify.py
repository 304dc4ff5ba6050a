"""Deploy notifications (stackctl.ops.notify), against a local webhook sink.

The oracles: Slack's incoming-webhook payload shape (tests/webhook_sink.py
`slack_shape_problems`, from https://api.slack.com/messaging/webhooks) and the command's own
outcome: a failed deploy or a rollback posts one message, a success or an operator's no posts
none, and the exit status is the same whether the webhook answers, fails or is unreachable.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from stackctl import cli
from stackctl.errors import OperationFailed
from stackctl.ops import deploy as ops
from stackctl.ops import notify, rollback
from stackctl.ops.deploy import run_deploy
from stackctl.ops.notify import Notice, Notifier, payload
from stackctl.ops.rollback import run_rollback
from tests.ops.fake_backend import HEAD, FakeBackend
from tests.webhook_sink import payload_text, slack_shape_problems, unreachable_url, webhook_sink

WEB = "registry.example.com/appstack/web:1.3.0"
API = "registry.example.com/appstack/api:2.1.0"


def test_failed_deploy_posts_one_slack_message_naming_what_failed(
    project: Path, recorder: Any
) -> None:
    rec = recorder()
    with (
        webhook_sink() as sink,
        pytest.raises(OperationFailed, match="ended with result 'failed'"),
    ):
        run_deploy(
            FakeBackend("dev", up_result="failed"),
            project_dir=project,
            assume_yes=True,
            console=rec.console,
            notifier=Notifier(url=sink.url, timeout=5),
        )
    assert len(sink.requests) == 1
    request = sink.requests[0]
    assert request.content_type == "application/json"
    body = request.json()
    assert slack_shape_problems(body) == []
    assert body["text"] == (
        "Deploy of dev (dev) FAILED: pulumi up on dev ended with result 'failed'"
    )
    seen = payload_text(body)
    for part in (
        "*Stack*\ndev",
        "*Environment*\ndev",
        "*Apps*\napi, web",
        f"api={API}",
        f"web={WEB}",
    ):
        assert part in seen
    assert sink.url not in rec.text


def test_failed_preview_notifies_with_the_images_passed(project: Path, recorder: Any) -> None:
    image = "registry.example.com/appstack/web@sha256:" + "a" * 64
    with (
        webhook_sink() as sink,
        pytest.raises(OperationFailed, match="pulumi preview of dev failed"),
    ):
        run_deploy(
            FakeBackend("dev", preview_error=RuntimeError("policy violation\nmore")),
            project_dir=project,
            assume_yes=True,
            console=recorder().console,
            images={"web": image},
            notifier=Notifier(url=sink.url, timeout=5),
        )
    (body,) = sink.payloads()
    assert "RuntimeError: policy violation" in body["text"] and "more" not in body["text"]
    assert f"web={image}" in payload_text(body) and f"api={API}" in payload_text(body)


def test_successful_deploy_preview_only_and_declined_deploy_post_nothing(
    project: Path, recorder: Any
) -> None:
    with webhook_sink() as sink:
        notifier = Notifier(url=sink.url, timeout=5)
        assert (
            run_deploy(
                FakeBackend("dev"),
                project_dir=project,
                assume_yes=True,
                console=recorder().console,
                notifier=notifier,
            )
            == 0
        )
        with pytest.raises(OperationFailed):
            run_deploy(
                FakeBackend("dev", preview_error=RuntimeError("boom")),
                project_dir=project,
                preview_only=True,
                console=recorder().console,
                notifier=notifier,
            )
        with pytest.raises(OperationFailed, match="cancelled"):
            run_deploy(
                FakeBackend("dev"),
                project_dir=project,
                console=recorder(answers=["n"]).console,
                notifier=notifier,
            )
    assert sink.requests == []


def _rollback(backend: FakeBackend, project: Path, rec: Any, notifier: Notifier) -> int:
    return run_rollback(
        backend,
        project_dir=project,
        to_version=2,
        assume_yes=True,
        console=rec.console,
        current_head=lambda _d: HEAD,
        notifier=notifier,
    )


def test_rollback_posts_the_version_rolled_back_to(project: Path, recorder: Any) -> None:
    with webhook_sink() as sink:
        backend = FakeBackend(backup_dir=project / ".pulumi-backups")
        assert _rollback(backend, project, recorder(), Notifier(url=sink.url, timeout=5)) == 0
    (body,) = sink.payloads()
    assert slack_shape_problems(body) == []
    assert body["text"].startswith("dev (dev) rolled back to v2: ")
    seen = payload_text(body)
    assert "*Rolled back to*\nv2" in seen
    assert "web=registry.example.com/appstack/web:1.1.0" in seen


def test_failed_rollback_posts_a_failure(project: Path, recorder: Any) -> None:
    with webhook_sink() as sink:
        backend = FakeBackend(backup_dir=project / ".pulumi-backups", up_result="failed")
        with pytest.raises(OperationFailed):
            _rollback(backend, project, recorder(), Notifier(url=sink.url, timeout=5))
    (body,) = sink.payloads()
    assert body["text"].startswith("Rollback of dev (dev) to v2 FAILED: rollback of dev to v2 ")


# -- through the CLI: the URL from the environment ----------------------------------------


@pytest.fixture
def cli_run(monkeypatch: Any, project: Path) -> Any:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("stackctl.ops.deploy",))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(notify.URL_ENV, raising=False)
    monkeypatch.delenv(notify.URL_FILE_ENV, raising=False)
    monkeypatch.setattr(rollback, "git_commit", lambda _dir, short=True: HEAD)

    def invoke(*argv: str, **fake_kwargs: Any) -> int:
        def factory(stack: str, project_dir: Path, create: bool) -> FakeBackend:
            return FakeBackend(stack, backup_dir=project / ".pulumi-backups", **fake_kwargs)

        monkeypatch.setattr(ops, "BACKEND_FACTORY", factory)
        return cli.main([*argv, "--project-dir", str(project)])

    return invoke


def test_cli_failed_deploy_notifies_and_never_prints_the_url(
    cli_run: Any, monkeypatch: Any, capsys: Any
) -> None:
    with webhook_sink() as sink:
        monkeypatch.setenv(notify.URL_ENV, sink.url)
        assert cli_run("deploy", "dev", "--yes", up_result="failed") == 1
        assert cli_run("deploy", "dev", "--yes") == 0
    assert len(sink.requests) == 1
    out = capsys.readouterr()
    assert sink.url not in out.out + out.err
    assert "sentinel-webhook-token" not in out.out + out.err


def test_cli_unset_url_sends_nothing(cli_run: Any, capsys: Any) -> None:
    with webhook_sink() as sink:
        assert cli_run("deploy", "dev", "--yes", up_result="failed") == 1
    assert sink.requests == []
    assert "notification" not in capsys.readouterr().err


def test_cli_url_file(cli_run: Any, monkeypatch: Any, tmp_path: Path) -> None:
    with webhook_sink() as sink:
        secret = tmp_path / "webhook-url"
        secret.write_text(sink.url + "\n")
        monkeypatch.setenv(notify.URL_FILE_ENV, str(secret))
        assert cli_run("rollback", "dev", "--to", "2", "--yes", up_result="failed") == 1
    assert len(sink.requests) == 1


@pytest.mark.parametrize("unreachable", [True, False], ids=["refused", "http-500"])
def test_cli_failing_webhook_keeps_the_exit_status(
    cli_run: Any, monkeypatch: Any, capsys: Any, unreachable: bool
) -> None:
    with webhook_sink(status=500) as sink:
        url = unreachable_url() if unreachable else sink.url
        monkeypatch.setenv(notify.URL_ENV, url)
        assert cli_run("deploy", "dev", "--yes", up_result="failed") == 1
        capsys.readouterr()
        assert cli_run("rollback", "dev", "--to", "2", "--yes") == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "notification not sent" in line]
    assert len(warnings) == 1, err
    assert url not in err and "sentinel-webhook-token" not in err
    assert len(sink.requests) == (0 if unreachable else 2)  # one attempt each, no retry


def test_unreadable_url_file_and_non_http_url_send_nothing(tmp_path: Path) -> None:
    err = io.StringIO()
    environ = {notify.URL_FILE_ENV: str(tmp_path / "missing")}
    assert Notifier.from_environment(environ, err=err) is None
    assert "cannot read APPSTACK_NOTIFY_WEBHOOK_URL_FILE" in err.getvalue()
    assert Notifier.from_environment({}) is None
    bad = Notifier(url="file:///etc/passwd-sentinel", err=err)
    assert bad.send(Notice("deploy-failed", "dev", "x")) is False
    assert "passwd-sentinel" not in err.getvalue()


# -- the sender the CI scripts call ---------------------------------------------------------


def test_module_cli_reads_the_stack_files_images(
    project: Path, monkeypatch: Any, capsys: Any
) -> None:
    with webhook_sink() as sink:
        monkeypatch.setenv(notify.URL_ENV, sink.url)
        argv = [
            "rolled-back",
            "dev",
            "--reason",
            "deploy failed\nsecond line",
            "--rolled-back-to",
            "7",
            "--project-dir",
            str(project),
        ]
        assert notify.main(argv) == 0
    (body,) = sink.payloads()
    assert body["text"] == "dev (dev) rolled back to v7: deploy failed"
    assert f"api={API}" in payload_text(body) and "*Sent by*\nci" in payload_text(body)
    assert sink.url not in capsys.readouterr().err


def test_payload_fits_slack_limits_and_the_checker_can_fail() -> None:
    many = {f"app{i}": "registry.example.com/x/" + "y" * 200 for i in range(40)}
    body = payload(Notice("deploy-failed", "acme/prod-eu", "r" * 1000, many, None, "ci"))
    assert slack_shape_problems(body) == []
    assert body["text"].startswith("Deploy of acme/prod-eu (prod) FAILED: ")
    assert slack_shape_problems({"blocks": [{"type": "section", "fields": [{}] * 11}]})
