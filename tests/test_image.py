"""Image build and push (pulumi-docker): the Deployment runs the build's pushed digest; without
a build block it runs the configured image; the registry password never appears in clear."""

from __future__ import annotations

import subprocess
from typing import Any

from pulumi.runtime import rpc

from components.image import git_commit, registry_server
from stackctl.render import RenderResult
from tests.conftest import Render, base_raw, one, pod_spec
from tests.tooling import REPO

IMAGE = "registry.example.com/appstack/web:1.4.2"
PASSWORD = "registry-pa55word-value"


def with_build(**build: Any) -> dict[str, Any]:
    raw = base_raw("prod", image=IMAGE, build={"target": "runtime", **build})
    raw["registry"] = {"username": "ci-bot", "password": PASSWORD}
    return raw


def docker(result: RenderResult, kind: str) -> list[Any]:
    return [r for r in result.resources if r.type == f"docker:index/{kind}"]


def test_without_a_build_block_no_image_is_built_and_the_config_image_runs(render: Render) -> None:
    result = render(base_raw("prod", image=IMAGE))
    assert [r for r in result.resources if r.type.startswith("docker:")] == []
    assert pod_spec(one(result.objects, "Deployment", "web"))["containers"][0]["image"] == IMAGE


def test_the_deployment_runs_the_digest_the_build_pushed(render: Render) -> None:
    result = render(with_build())
    (image,) = docker(result, "image:Image")
    commit = git_commit(REPO)
    assert image.inputs["imageName"] == f"registry.example.com/appstack/web:{commit}"
    running = pod_spec(one(result.objects, "Deployment", "web"))["containers"][0]["image"]
    # the mock engine answers repoDigest = <repository>@sha256:<zeros> for the built name
    assert running == "registry.example.com/appstack/web@sha256:" + "0" * 64


def test_build_uses_the_configured_context_target_platform_and_registry_cache(
    render: Render,
) -> None:
    (image,) = docker(render(with_build(platform="linux/arm64")), "image:Image")
    build = image.inputs["build"]
    assert build["context"] == str(REPO / "app")
    assert build["dockerfile"] == str(REPO / "app/Dockerfile")
    assert build["target"] == "runtime" and build["platform"] == "linux/arm64"
    assert build["cacheFrom"] == {"images": ["registry.example.com/appstack/web:1.4.2"]}
    assert build["args"] == {"BUILDKIT_INLINE_CACHE": "1"}


def test_the_version_and_extra_tags_are_pushed_besides_the_commit(render: Render) -> None:
    result = render(with_build(extraTags=["stable-2026-11", "rc1"]))
    pushed = sorted(r.inputs["name"] for r in docker(result, "registryImage:RegistryImage"))
    assert pushed == [
        "registry.example.com/appstack/web:1.4.2",
        "registry.example.com/appstack/web:rc1",
        "registry.example.com/appstack/web:stable-2026-11",
    ]
    assert all(r.inputs["keepRemotely"] for r in docker(result, "registryImage:RegistryImage"))


def test_the_registry_password_is_a_secret_and_never_rendered(render: Render) -> None:
    result = render(with_build())
    (image,) = docker(result, "image:Image")
    assert rpc.is_rpc_secret(image.inputs["registry"]) or rpc.is_rpc_secret(
        image.inputs["registry"]["password"]
    )
    assert PASSWORD not in repr(result.objects)
    deployment = one(result.objects, "Deployment", "web")
    assert "annotations" not in deployment["metadata"]  # digest-pinned: no scanner skip


def test_registry_server_is_the_image_host() -> None:
    assert registry_server("registry.example.com:5000/team/web:1") == "registry.example.com:5000"
    assert registry_server("library/web:1") == "docker.io"


def test_git_commit_is_the_checkout_head() -> None:
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(REPO) == head
