"""`deploy --image <service>=<ref>`: the image CI built reaches the stack through its config.

CI builds and pushes the service image, then deploys `repo@sha256:<digest>` with
`python -m stackctl deploy <stack> --image web=<repo>@sha256:...`. The override is written into
the stack's config (`appstack:apps.<service>.image`, structured config, the same key the stack
file holds) before the preview, so:

- the update runs exactly that image (the Deployment's pod template holds the reference);
- the update's history record carries the config it ran with (`pulumi stack history --json`
  records each update's `config`), and the deploy message lists every image;
- `stackctl rollback` restores an earlier update's config, which brings that update's images
  back (tests/ops/test_deploy_images.py: rollback after two deploys restores the first digest).

Like `pulumi config set`, the change stays in `Pulumi.<stack>.yaml` of the working directory;
in CI that is a throw-away checkout, so the committed file keeps its reviewed default image.

For GitOps (`publish-manifests.sh`), `write_stack_file_images` applies the same override to the
stack file before `stackctl render`, so the published manifests carry the digest too; where the
stack requires signed images, `main` verifies them first (stackctl/ops/signatures.py), as
`stackctl deploy` does.

Besides the apps, one name is the Jenkins agent's tools image (jenkins/agent/Dockerfile, built
and pushed by the same pipeline step): `--image jenkins-agent=<repo>@sha256:...` sets
`appstack:jenkins.pulumiAgentImage`, the `pulumi` container of the agent pod template. In a prod
stack it must be a digest (the chain always has one). A stack that runs no Jenkins
(`appstack:jenkins.enabled` not true, the dev seed) skips it with a note, so the same list of
built images goes to every stack's deploy.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.config.base import IMAGE_PATTERN, MOVING_TAGS
from components.config.stack import AGENT_IMAGE_NAME
from stackctl.errors import OperationFailed, UserError
from stackctl.ops.automation import ConfigValue, StackBackend
from stackctl.ops.operator import Console
from stackctl.ops.signatures import signed_images_only
from stackctl.ops.stacks import stack_environment

APPS_KEY = "appstack:apps"
JENKINS_KEY = "appstack:jenkins"
#: `--image jenkins-agent=...` -> appstack:jenkins.pulumiAgentImage (never an app's name: the
#: config model reserves it).
AGENT_SERVICE = AGENT_IMAGE_NAME
AGENT_FIELD = "pulumiAgentImage"
AGENT_KEY = f"{JENKINS_KEY}.{AGENT_FIELD}"


def parse_image_overrides(
    values: Sequence[str], *, environment: str | None = None
) -> dict[str, str]:
    """`["web=repo@sha256:..."]` -> {"web": "repo@sha256:..."}; each ref is checked by the same
    rule as `appstack:apps.<name>.image` (pinned: an immutable tag or a digest), and in a prod
    `environment` the agent image (`jenkins-agent`) only by digest."""
    images: dict[str, str] = {}
    for raw in values:
        service, sep, ref = raw.partition("=")
        service, ref = service.strip(), ref.strip()
        if not sep or not service or not ref:
            raise UserError(f"--image {raw!r}: expected <service>=<image>, e.g. web=repo@sha256:…")
        match = IMAGE_PATTERN.match(ref)
        if match is None:
            raise UserError(
                f"--image {service}: {ref!r} is not an image reference "
                "'name[:tag][@sha256:digest]' (lowercase path)"
            )
        if match.group("digest") is None and match.group("tag") in (None, *MOVING_TAGS):
            raise UserError(
                f"--image {service}: {ref!r} is not pinned; pass the pushed digest "
                "(<repo>@sha256:<64 hex>) or an immutable tag"
            )
        if service == AGENT_SERVICE and environment == "prod" and match.group("digest") is None:
            raise UserError(
                f"--image {AGENT_SERVICE}: {ref!r} has no digest; prod runs the agent image "
                f"({AGENT_KEY}) by digest: pass the pushed one, <repo>@sha256:<64 hex>"
            )
        if service in images and images[service] != ref:
            raise UserError(f"--image {service} is given twice with different images")
        images[service] = ref
    return images


def apps_with_images(apps: Any, images: Mapping[str, str], where: str) -> dict[str, Any]:
    """A copy of an `appstack:apps` object with each named service's `image` replaced (the agent
    image, `jenkins-agent`, is left to `jenkins_with_agent_image`)."""
    if not isinstance(apps, dict) or not apps:
        raise UserError(f"{where}: {APPS_KEY} is not set (a map of services); nothing to deploy")
    images = {svc: ref for svc, ref in images.items() if svc != AGENT_SERVICE}
    unknown = sorted(set(images) - set(apps))
    if unknown:
        raise UserError(
            f"--image {', '.join(unknown)}: no such app in {APPS_KEY} of {where}; "
            f"apps: {', '.join(sorted(apps))} (or {AGENT_SERVICE}: {AGENT_KEY})"
        )
    updated = copy.deepcopy(apps)
    for service, ref in images.items():
        settings = updated[service]
        if not isinstance(settings, dict):
            raise UserError(f"{where}: {APPS_KEY}.{service} is not a map")
        settings["image"] = ref
    return updated


def jenkins_with_agent_image(jenkins: Any, image: str, where: str) -> dict[str, Any] | None:
    """A copy of an `appstack:jenkins` object with `pulumiAgentImage` set to `image`, or None
    when the stack runs no Jenkins (`enabled` is not true): nothing there runs the agent."""
    if jenkins is None or (isinstance(jenkins, dict) and jenkins.get("enabled") is not True):
        return None
    if not isinstance(jenkins, dict):
        raise UserError(f"{where}: {JENKINS_KEY} is not a map")
    updated = copy.deepcopy(jenkins)
    updated[AGENT_FIELD] = image
    return updated


def _note_skipped(where: str) -> str:
    return (
        f"image {AGENT_SERVICE}: not used by {where} ({JENKINS_KEY}.enabled is not true: "
        "this stack runs no Jenkins agents)"
    )


@dataclass(frozen=True)
class ImageOverride:
    """What `apply_image_overrides` changed."""

    previous: dict[str, str]  # service -> image before, for the services overridden
    images: dict[str, str]  # every service's image after (the deploy message lists them)
    notes: tuple[str, ...] = ()  # overrides this stack does not use (no Jenkins), for the log


def _apps_object(value: ConfigValue) -> Any:
    if value.object_value is not None:
        return value.object_value
    try:
        return json.loads(value.value)
    except ValueError:
        return None


def apply_image_overrides(backend: StackBackend, images: Mapping[str, str]) -> ImageOverride:
    """Set `appstack:apps.<service>.image` (and, for `jenkins-agent`,
    `appstack:jenkins.pulumiAgentImage`) in the stack's config for the coming update."""
    config = backend.get_config()
    current = config.get(APPS_KEY)
    where = f"stack {backend.stack_name}"
    apps = _apps_object(current) if current is not None else None
    updated = apps_with_images(apps, images, where)
    assert isinstance(apps, dict)  # apps_with_images rejects anything else
    app_images = {svc: ref for svc, ref in images.items() if svc != AGENT_SERVICE}
    previous = {svc: str(apps[svc].get("image", "")) for svc in app_images}
    values = {APPS_KEY: ConfigValue(json.dumps(updated), object_value=updated)}
    after = {
        str(svc): str(settings["image"])
        for svc, settings in sorted(updated.items())
        if isinstance(settings, dict) and settings.get("image")
    }
    notes: tuple[str, ...] = ()
    if AGENT_SERVICE in images:
        current_jenkins = config.get(JENKINS_KEY)
        if current_jenkins is not None and current_jenkins.secret:
            raise UserError(f"{where}: {JENKINS_KEY} holds a secret; set {AGENT_KEY} by hand")
        jenkins = _apps_object(current_jenkins) if current_jenkins is not None else None
        agent = jenkins_with_agent_image(jenkins, images[AGENT_SERVICE], where)
        if agent is None:
            notes = (_note_skipped(where),)
        else:
            assert isinstance(jenkins, dict)
            previous[AGENT_SERVICE] = str(jenkins.get(AGENT_FIELD, ""))
            values[JENKINS_KEY] = ConfigValue(json.dumps(agent), object_value=agent)
            after[AGENT_SERVICE] = images[AGENT_SERVICE]
    backend.set_config(values)
    return ImageOverride(previous=previous, images=dict(sorted(after.items())), notes=notes)


def write_stack_file_images(project_dir: Path, stack: str, images: Mapping[str, str]) -> Path:
    """Apply the override to `Pulumi.<stack>.yaml` itself (GitOps render in a CI checkout)."""
    path = project_dir / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read {path.name}: {exc}") from None
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise UserError(f"{path.name}: no `config:` map")
    config[APPS_KEY] = apps_with_images(config.get(APPS_KEY), images, path.name)
    if AGENT_SERVICE in images:
        agent = jenkins_with_agent_image(config.get(JENKINS_KEY), images[AGENT_SERVICE], path.name)
        if agent is None:
            print(_note_skipped(path.name), file=sys.stderr)
        else:
            config[JENKINS_KEY] = agent
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m stackctl.ops.images <stack> <service>=<ref>...`: write the stack file (GitOps)."""
    parser = argparse.ArgumentParser(
        prog="python -m stackctl.ops.images",
        description="Set appstack:apps.<service>.image (jenkins-agent: "
        "appstack:jenkins.pulumiAgentImage) in Pulumi.<stack>.yaml (CI checkout).",
    )
    parser.add_argument("stack")
    parser.add_argument("images", nargs="+", metavar="SERVICE=IMAGE")
    parser.add_argument("--project-dir", default=str(Path(__file__).resolve().parents[2]))
    args = parser.parse_args(argv)
    try:
        images = parse_image_overrides(args.images, environment=stack_environment(args.stack))
        # The GitOps path runs the same signature gate as `stackctl deploy` before it writes.
        signed_images_only(
            Path(args.project_dir), args.stack, images, console=Console(out=sys.stderr)
        )
        path = write_stack_file_images(Path(args.project_dir), args.stack, images)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OperationFailed as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{path.name}: {', '.join(args.images)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
