"""The Jenkins agent's tools image (jenkins/agent/Dockerfile, the `pulumi` container of the agent
pod template) goes the way of the service image: the pipeline builds it into its own repository
(`appstack:jenkins.pipeline.agentImageRepository`, AGENT_IMAGE_REPOSITORY from JCasC) and the
deploy runs it by digest (`--image jenkins-agent=<repo>@sha256:...` ->
`appstack:jenkins.pulumiAgentImage`). Oracle: the render (the JCasC pod template's image is the
digest the deploy passed) and the config rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from components import config as config_model
from stackctl.ops import images as ops_images
from stackctl.render import render_stack
from tests.conftest import load_error
from tests.jenkins.helpers import AGENT_IMAGE_REPOSITORY, IMAGE_REPOSITORY, agent_pods, jenkins_raw
from tests.jenkins.test_pipeline_environment import _jcasc_env
from tests.renders import Renders

ROOT = Path(__file__).resolve().parents[2]
AGENT_DIGEST = f"{AGENT_IMAGE_REPOSITORY}@sha256:{'e' * 64}"
WEB_DIGEST = f"{IMAGE_REPOSITORY}@sha256:{'f' * 64}"


def _tools_image(pods: dict[str, dict[str, object]]) -> str:
    spec = pods["pulumi"]["spec"]
    assert isinstance(spec, dict)
    (tools,) = [c for c in spec["containers"] if c["name"] == "pulumi"]
    return str(tools["image"])


def test_the_deployed_agent_digest_is_the_pod_templates_image(tmp_path: Path) -> None:
    """What `publish-manifests.sh` (GitOps) and `stackctl deploy --image` do to the stack's
    config, then the render: the `pulumi` template runs exactly the digest passed, and the app
    the digest passed for `web`."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    # The render of the digests alone: prod's signature gate (which `main` runs first, with
    # cosign against the registry) has its own tests, tests/ops/test_signatures.py.
    doc = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())
    doc["config"]["appstack:imageSigning"]["required"] = False
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    code = ops_images.main(
        [
            "prod",
            f"web={WEB_DIGEST}",
            f"jenkins-agent={AGENT_DIGEST}",
            "--project-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    result = render_stack("prod", tmp_path)
    assert _tools_image(agent_pods(result)) == AGENT_DIGEST
    images = {
        c["image"]
        for o in result.objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {WEB_DIGEST}


def test_the_shipped_prod_stack_builds_the_agent_into_its_own_repository(
    renders: Renders,
) -> None:
    """Pulumi.prod.yaml: JCasC hands `Build image` both repositories; the reviewed default the
    stack file holds (pinned by tag, like apps.web.image) comes from the agent's repository."""
    result = renders.stack("prod")
    env = _jcasc_env(result)
    assert env["AGENT_IMAGE_REPOSITORY"] == "registry.example.com/appstack/ci-agent"
    assert env["AGENT_IMAGE_REPOSITORY"] != env["IMAGE_REPOSITORY"]
    assert _tools_image(agent_pods(result)).startswith(env["AGENT_IMAGE_REPOSITORY"] + ":")
    jenkinsfile = (ROOT / "Jenkinsfile").read_text()
    assert "IMAGE_REVISION=context scripts/ci/build-image.sh jenkins-agent jenkins/agent" in (
        jenkinsfile
    )
    assert '"$AGENT_IMAGE_REPOSITORY"' in jenkinsfile


@pytest.mark.parametrize(
    ("pipeline", "fragment"),
    [
        (
            {"imageRepository": IMAGE_REPOSITORY, "agentImageRepository": ""},
            "appstack:jenkins.pipeline.agentImageRepository: imageBuilder is on: set the "
            "repository the Build image stage pushes the agent image",
        ),
        (
            {"imageRepository": IMAGE_REPOSITORY, "agentImageRepository": IMAGE_REPOSITORY},
            "appstack:jenkins.pipeline.agentImageRepository: "
            f"'{IMAGE_REPOSITORY}' is imageRepository too",
        ),
        (
            {"imageRepository": IMAGE_REPOSITORY, "agentImageRepository": "Registry/CI-Agent"},
            "appstack:jenkins.pipeline.agentImageRepository:",
        ),
    ],
    ids=["missing", "same-as-the-service", "not-a-repository"],
)
def test_the_agent_repository_is_required_and_its_own(
    pipeline: dict[str, str], fragment: str
) -> None:
    raw = jenkins_raw("prod", imageBuilder=True, pipeline=pipeline)
    assert fragment in load_error(raw)


@pytest.mark.parametrize(
    "image", ["registry.example.com/appstack/ci-agent:latest", "registry.example.com/ci-agent"]
)
def test_prod_refuses_an_unpinned_agent_image(image: str) -> None:
    message = load_error(jenkins_raw("prod", pulumiAgentImage=image))
    assert "appstack:jenkins.pulumiAgentImage:" in message and "is not pinned" in message


def test_prod_takes_the_agent_image_by_digest() -> None:
    cfg = config_model.load(jenkins_raw("prod", pulumiAgentImage=AGENT_DIGEST))
    assert cfg.jenkins.pulumi_agent_image == AGENT_DIGEST


def test_no_app_may_take_the_agent_images_name() -> None:
    """`--image jenkins-agent=...` always means the agent image, never an app."""
    raw = jenkins_raw("dev")
    raw["apps"]["jenkins-agent"] = dict(raw["apps"]["web"])
    message = load_error(raw)
    assert "appstack:apps.jenkins-agent: the name 'jenkins-agent' is reserved for the Jenkins" in (
        message
    )
