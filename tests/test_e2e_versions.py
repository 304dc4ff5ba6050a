"""The engine `make e2e` builds matches the SDKs the program runs with (e2e/tools/versions.env
against requirements.txt). The Python SDK asks the engine for a provider plugin of its own
version, and pulumi takes one from the plugin cache only at that version or above
(sdk/go/common/workspace/plugins.go `GetPluginPath`): a provider older than the SDK pin is either
refused or, found on PATH, run with a version warning."""

from __future__ import annotations

from importlib import metadata

from e2e.engine import PROVIDER_PLUGINS, tool_versions
from tests.tooling import REPO


def pins() -> dict[str, str]:
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pairs = (ln.split("==", 1) for ln in lines if "==" in ln and not ln.startswith("#"))
    return {name.strip().lower(): version.strip() for name, version in pairs}


def release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_every_built_provider_is_the_release_of_its_sdk_pin() -> None:
    versions = tool_versions()
    for name, key in PROVIDER_PLUGINS.items():
        assert versions[key] == pins()[f"pulumi-{name}"], name


def test_the_venv_runs_the_pinned_kubernetes_sdk() -> None:
    assert metadata.version("pulumi-kubernetes") == pins()["pulumi-kubernetes"]


def test_the_cli_is_not_older_than_the_python_sdk() -> None:
    assert release(tool_versions()["PULUMI_VERSION"]) >= release(pins()["pulumi"])
