"""The `pulumi` agent's tools image (jenkins/agent/Dockerfile) carries what the pipeline runs,
at the versions the repo pins, as the UID the agent pods run with."""

from __future__ import annotations

import re

from components.config import JenkinsSettings
from tests.tooling import REPO, run_tool

DOCKERFILE = REPO / "jenkins/agent/Dockerfile"


def test_agent_dockerfile_is_hadolint_clean() -> None:
    proc = run_tool("hadolint", str(DOCKERFILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hadolint ignore" not in DOCKERFILE.read_text()


def test_agent_image_pulumi_cli_matches_the_sdk_pin() -> None:
    sdk = re.search(r"^pulumi==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert sdk is not None
    assert f"FROM pulumi/pulumi-base:{sdk.group(1)} AS pulumi" in DOCKERFILE.read_text()


def test_agent_image_runs_as_the_agent_pod_uid() -> None:
    user = re.findall(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(), re.M)
    security = JenkinsSettings().security
    assert user == [(str(security.run_as_user), str(security.run_as_group))]


def test_agent_image_has_every_tool_the_pipeline_calls() -> None:
    text = DOCKERFILE.read_text()
    for tool in ("/pulumi/bin/pulumi ", "/usr/local/bin/promtool", "/usr/local/bin/node"):
        assert "COPY --from=" in text and tool in text
    for package in ("git=", "make=", "openjdk-17-jre-headless="):
        assert package in text
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", text, re.M)
    assert ":latest" not in text


#: What `pulumi preview --policy-pack` (Python pack) executes besides Python itself, per pulumi's
#: sdk/go/common/workspace/plugins.go and pkg/resource/plugin/analyzer_plugin.go (shared/
#: E2E-NOTES.md sections 1-2): the CLI, the language host, and its executor in the same directory.
PREVIEW_BINARIES = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec")


def test_agent_image_has_every_binary_a_policy_preview_runs() -> None:
    copies = [
        line.split()
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY --from=pulumi ")
    ]
    installed: dict[str, str] = {}
    for words in copies:
        *sources, dest = words[2:]
        for src in sources:
            base = src.rsplit("/", 1)[-1]
            installed[base] = dest if dest.endswith("/") else dest.rsplit("/", 1)[0] + "/"
    assert set(PREVIEW_BINARIES) <= set(installed), installed
    # one directory, on PATH: the host finds its executor next to itself
    assert {installed[b] for b in PREVIEW_BINARIES} == {"/usr/local/bin/"}
