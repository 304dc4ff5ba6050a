"""The engine `make e2e` builds matches the SDKs the program runs with (e2e/tools/versions.env
against requirements.txt). The Python SDK asks the engine for a provider plugin of its own
version, and pulumi takes one from the plugin cache only at that version or above
(sdk/go/common/workspace/plugins.go `GetPluginPath`): a provider older than the SDK pin is either
refused or, found on PATH, run with a version warning."""

from __future__ import annotations

import re
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


# The real-node family (e2e/tools/node/, make e2e-node-tools): the pins Go builds from agree with
# versions.env (build.sh refuses otherwise; this says so without Go), and the kubelet is the
# control plane's release, built against the same staging modules.
TOOLS = REPO / "e2e" / "tools"


def gomod_requires(path: str) -> dict[str, str]:
    text = (TOOLS / path / "go.mod").read_text(encoding="utf-8")
    found = re.findall(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//.*)?$", text, re.M)
    return dict(found)


def gomod_replaces(path: str) -> list[str]:
    text = (TOOLS / path / "go.mod").read_text(encoding="utf-8")
    block = re.search(r"^replace \((.*?)^\)", text, re.M | re.S)
    assert block, f"{path}/go.mod has no replace block"
    return sorted(ln.strip() for ln in block.group(1).splitlines() if "=>" in ln)


def test_the_kubelet_is_the_control_planes_release() -> None:
    versions = tool_versions()
    want = f"v{versions['KUBERNETES_VERSION']}"
    assert gomod_requires("node/kubelet")["k8s.io/kubernetes"] == want
    assert gomod_requires("k8s")["k8s.io/kubernetes"] == want
    assert gomod_replaces("node/kubelet") == gomod_replaces("k8s")
    staging = f"v0.{want.removeprefix('v1.')}"
    assert all(line.endswith(staging) for line in gomod_replaces("node/kubelet"))


def test_the_node_runtime_pins_match_versions_env() -> None:
    versions = tool_versions()
    containerd = gomod_requires("node/containerd")["github.com/containerd/containerd/v2"]
    assert containerd == f"v{versions['CONTAINERD_VERSION']}"
    runc = gomod_requires("node/runc")["github.com/opencontainers/runc"]
    assert runc == f"v{versions['RUNC_VERSION']}"


def test_the_node_images_carry_their_versions() -> None:
    versions = tool_versions()
    assert versions["PAUSE_IMAGE"].endswith(f"/pause:{versions['PAUSE_VERSION']}")
    for key in ("PAUSE_IMAGE", "BUSYBOX_IMAGE"):
        # Imported into containerd, never pulled: a name no registry answers for.
        assert versions[key].startswith("localhost/appstack-e2e/"), versions[key]


def test_the_signing_tools_are_built_at_the_pinned_versions() -> None:
    # cosign and syft (e2e/tools/cosign, e2e/tools/syft; make e2e-sign-tools, the CI jobs that
    # sign and write SBOMs, the Jenkins agent image's `go install ...@<version>`).
    versions = tool_versions()
    cosign = gomod_requires("cosign")["github.com/sigstore/cosign/v2"]
    syft = gomod_requires("syft")["github.com/anchore/syft"]
    assert cosign == f"v{versions['COSIGN_VERSION']}"
    assert syft == f"v{versions['SYFT_VERSION']}"
    agent = (REPO / "jenkins" / "agent" / "Dockerfile").read_text(encoding="utf-8")
    assert f"github.com/sigstore/cosign/v2/cmd/cosign@{cosign}" in agent
    assert f"github.com/anchore/syft/cmd/syft@{syft}" in agent
    workflow = (REPO / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    assert f"cosign-release: {cosign}" in workflow and f"syft-version: {syft}" in workflow


def test_argo_cd_is_one_release_everywhere() -> None:
    # e2e/tools/argocd (make e2e-gitops-tools): argo-cd/v3 and the gitops-engine module it
    # replaces by its nested directory, at one tag; the recipe's version and -X flags say the
    # same; the Application schema the unit tests validate against is that release's CRD.
    requires = gomod_requires("argocd")
    argo = requires["github.com/argoproj/argo-cd/v3"]
    assert requires["github.com/argoproj/argo-cd/gitops-engine/v3"] == argo
    recipe = (TOOLS / "build.sh").read_text(encoding="utf-8")
    assert f"local v={argo.removeprefix('v')} " in recipe
    sources = (REPO / "tests" / "schemas" / "crd" / "SOURCES.md").read_text(encoding="utf-8")
    assert f"github.com/argoproj/argo-cd/v3@{argo}" in sources
    # argo-cd's staging replaces, all at the client-go release it requires
    client = requires["k8s.io/client-go"]
    staging = [r for r in gomod_replaces("argocd") if r.startswith("k8s.io/")]
    assert staging and all(r.endswith(f" {client}") for r in staging), staging
