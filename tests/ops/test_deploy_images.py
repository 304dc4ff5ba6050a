"""deploy --image: the digest CI pushed goes into the stack config of that update, is recorded in
history, and rollback brings the previous digest back (fake backend, SDK history JSON shape)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.cli import main
from stackctl.errors import UserError
from stackctl.ops import deploy as ops
from stackctl.ops.automation import ConfigValue
from stackctl.ops.deploy import run_deploy
from stackctl.ops.history import normalize_record
from stackctl.ops.images import (
    APPS_KEY,
    JENKINS_KEY,
    parse_image_overrides,
    write_stack_file_images,
)
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
    assert backend.calls[:5] == ["get_config", "set_config", "history", "export_state", "preview"]
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


# --------------------------------------------------------------------------------------------
# jenkins-agent: the Jenkins agent's tools image (appstack:jenkins.pulumiAgentImage)

AGENT_REPO = "registry.example.com/appstack/ci-agent"
AGENT = f"{AGENT_REPO}@sha256:{'a' * 64}"


def with_jenkins(backend: FakeBackend, **jenkins: Any) -> FakeBackend:
    settings = {"enabled": True, "pulumiAgentImage": f"{AGENT_REPO}:0.1.0", **jenkins}
    backend.config[JENKINS_KEY] = ConfigValue(json.dumps(settings), object_value=settings)
    return backend


def test_the_agent_digest_goes_into_the_jenkins_config_and_the_history(
    project: Path, recorder: Any
) -> None:
    backend = with_jenkins(FakeBackend(), namespace="jenkins")
    rec = recorder()
    assert deploy(backend, project, rec, f"web={FIRST}", f"jenkins-agent={AGENT}") == 0
    jenkins = backend.config[JENKINS_KEY].object_value
    assert jenkins == {"enabled": True, "pulumiAgentImage": AGENT, "namespace": "jenkins"}
    assert config_image(backend) == FIRST
    assert backend.calls[:5] == ["get_config", "set_config", "history", "export_state", "preview"]
    # the update's message lists it, so a rollback by redeploy (rollback_plan.py) passes it back
    assert backend.up_messages[0].endswith(
        f"images: api=registry.example.com/appstack/api:2.0.0,jenkins-agent={AGENT},web={FIRST}"
    )


def test_a_stack_without_jenkins_skips_the_agent_image_with_a_note(
    project: Path, recorder: Any
) -> None:
    """dev runs no Jenkins: the same list of built images goes to every stack's deploy."""
    backend = FakeBackend()
    rec = recorder()
    assert deploy(backend, project, rec, f"web={FIRST}", f"jenkins-agent={AGENT}") == 0
    assert JENKINS_KEY not in backend.config
    assert "jenkins-agent" not in backend.up_messages[0]
    assert "image jenkins-agent: not used by stack dev (appstack:jenkins.enabled" in rec.text


@pytest.mark.parametrize(
    "ref", [f"{AGENT_REPO}:0.2.0", f"{AGENT_REPO}:0.2.0@sha256:{'a' * 64}"], ids=["tag", "both"]
)
def test_prod_takes_the_agent_image_by_digest_only(ref: str) -> None:
    images = [f"jenkins-agent={ref}"]
    if "@" in ref:
        assert parse_image_overrides(images, environment="prod") == {"jenkins-agent": ref}
        return
    with pytest.raises(
        UserError,
        match=r"jenkins-agent: .* has no digest; prod runs the agent image "
        r"\(appstack:jenkins\.pulumiAgentImage\) by digest",
    ):
        parse_image_overrides(images, environment="prod")
    assert parse_image_overrides(images, environment="dev") == {"jenkins-agent": ref}


def test_cli_refuses_a_tag_only_agent_image_for_prod(
    monkeypatch: pytest.MonkeyPatch, project: Path, capsys: Any
) -> None:
    backend = with_jenkins(FakeBackend("prod"))
    monkeypatch.setattr(ops, "BACKEND_FACTORY", lambda *_a: backend)
    # The digest rule alone: this prod stack does not also require signatures (the signature
    # gate's own tests: tests/ops/test_signatures.py).
    (project / "Pulumi.prod.yaml").write_text(
        "config:\n  appstack:environment: prod\n  appstack:imageSigning:\n    required: false\n",
        encoding="utf-8",
    )
    image = f"jenkins-agent={AGENT_REPO}:0.2.0"
    args = ["deploy", "prod", "--project-dir", str(project), "--yes", "--image", image]
    assert main(args) == 2
    assert "has no digest" in capsys.readouterr().err
    assert backend.calls == []
    args[-1] = f"jenkins-agent={AGENT}"
    assert main(args) == 0, capsys.readouterr().err
    assert backend.config[JENKINS_KEY].object_value["pulumiAgentImage"] == AGENT


def test_an_unknown_name_lists_the_apps_and_the_agent_image(project: Path, recorder: Any) -> None:
    backend = with_jenkins(FakeBackend())
    with pytest.raises(
        UserError,
        match=r"--image jenkins: no such app .* apps: api, web "
        r"\(or jenkins-agent: appstack:jenkins\.pulumiAgentImage\)",
    ):
        deploy(backend, project, recorder(), f"jenkins={AGENT}")
    assert "set_config" not in backend.calls


def test_gitops_writes_the_agent_digest_into_the_stack_file(tmp_path: Path) -> None:
    project = make_project(tmp_path / "repo")
    path = project / "Pulumi.dev.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"][JENKINS_KEY] = {"enabled": True, "pulumiAgentImage": f"{AGENT_REPO}:0.1.0"}
    path.write_text(yaml.safe_dump(doc))
    write_stack_file_images(project, "dev", {"web": FIRST, "jenkins-agent": AGENT})
    config = yaml.safe_load(path.read_text())["config"]
    assert config[JENKINS_KEY] == {"enabled": True, "pulumiAgentImage": AGENT}
    assert config[APPS_KEY]["web"]["image"] == FIRST
