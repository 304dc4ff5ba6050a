"""deploy --image: the digest CI pushed goes into the stack config of that update, is recorded in
history, and rollback brings the previous digest back (fake backend, SDK history JSON shape)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.cli import main
from stackctl.errors import UserError
from stackctl.ops import deploy as ops
from stackctl.ops.deploy import run_deploy
from stackctl.ops.history import normalize_record
from stackctl.ops.images import APPS_KEY, parse_image_overrides, write_stack_file_images
from stackctl.ops.rollback import run_rollback
from tests.ops.conftest import make_project
from tests.ops.fake_backend import HEAD, FakeBackend

REPO = "registry.example.com/appstack/web"
FIRST = f"{REPO}@sha256:{'1' * 64}"
SECOND = f"{REPO}@sha256:{'2' * 64}"


def deploy(backend: FakeBackend, project: Path, rec: Any, *images: str) -> int:
    return run_deploy(
        backend,
        project_dir=project,
        assume_yes=True,
        console=rec.console,
        images=parse_image_overrides(images),
    )


def config_image(backend: FakeBackend, service: str = "web") -> str:
    apps = backend.config[APPS_KEY].object_value
    return str(apps[service]["image"])


def test_rollback_after_two_deploys_restores_the_first_digest(project: Path, recorder: Any) -> None:
    backend = FakeBackend(backup_dir=project / ".pulumi-backups")
    assert deploy(backend, project, recorder(), f"web={FIRST}") == 0
    assert deploy(backend, project, recorder(), f"web={SECOND}") == 0
    assert config_image(backend) == SECOND

    rows = [normalize_record(r) for r in backend.history()]
    first_version = next(r["version"] for r in rows if FIRST in r["images"])
    second_version = next(r["version"] for r in rows if SECOND in r["images"])
    assert second_version == first_version + 1
    # each update's history record holds the config it ran with, digest included
    by_version = {r["version"]: r for r in backend.history()}
    assert by_version[first_version]["config"][APPS_KEY]["objectValue"]["web"]["image"] == FIRST

    rec = recorder()
    run_rollback(
        backend,
        project_dir=project,
        steps=1,
        assume_yes=True,
        console=rec.console,
        now=lambda: datetime(2026, 12, 1, tzinfo=UTC),
        current_head=lambda _d: HEAD,
    )
    assert config_image(backend) == FIRST
    assert backend.config_at_up is not None
    assert backend.config_at_up[APPS_KEY].object_value["web"]["image"] == FIRST
    assert backend.up_messages[-1].startswith(f"appstack rollback to v{first_version} from v")
    assert f"web={FIRST}" in backend.up_messages[-1]
    # the other app kept its image throughout
    assert config_image(backend, "api") == "registry.example.com/appstack/api:2.0.0"


def test_the_image_is_in_the_config_before_the_preview(project: Path, recorder: Any) -> None:
    backend = FakeBackend()
    deploy(backend, project, recorder(), f"web={FIRST}")
    assert backend.calls[:3] == ["get_config", "set_config", "preview"]
    assert backend.up_messages[0].endswith(
        f"images: api=registry.example.com/appstack/api:2.0.0,web={FIRST}"
    )


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("web", "expected <service>=<image>"),
        (f"web={REPO}:latest", "is not pinned"),
        ("web=Registry.example.com/Web:1", "is not an image reference"),
        (f"web={REPO}@sha256:abc", "is not an image reference"),
    ],
)
def test_bad_image_arguments_are_refused(value: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        parse_image_overrides([value])


def test_unknown_app_is_refused_before_anything_changes(project: Path, recorder: Any) -> None:
    backend = FakeBackend()
    with pytest.raises(UserError, match=r"--image db: no such app .* apps: api, web"):
        deploy(backend, project, recorder(), f"db={FIRST}")
    assert "set_config" not in backend.calls and "up" not in backend.calls


def test_cli_flag_reaches_the_stack_config(
    monkeypatch: pytest.MonkeyPatch, project: Path, capsys: Any
) -> None:
    backend = FakeBackend()
    monkeypatch.setattr(ops, "BACKEND_FACTORY", lambda *_a: backend)
    code = main(
        ["deploy", "dev", "--project-dir", str(project), "--yes", "--image", f"web={FIRST}"]
    )
    assert code == 0, capsys.readouterr().err
    assert config_image(backend) == FIRST
    assert main(["deploy", "dev", "--project-dir", str(project), "--yes", "--image", "x"]) == 2
    assert "expected <service>=<image>" in capsys.readouterr().err


def test_gitops_writes_the_digest_into_the_stack_file(tmp_path: Path) -> None:
    project = make_project(tmp_path / "repo")
    write_stack_file_images(project, "dev", {"web": FIRST})
    config = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())["config"]
    assert config[APPS_KEY]["web"]["image"] == FIRST
    assert config[APPS_KEY]["api"]["image"] == "registry.example.com/appstack/api:2.1.0"
    assert config["appstack:environment"] == "dev"
