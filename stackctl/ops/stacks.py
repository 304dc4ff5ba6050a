"""Stack names and environments, stack files, the git commit, and the update messages deploy
and rollback write and history parses back (contract: stackctl/ops/deploy.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from components.config import environments, production_rules
from components.image.git import git_head
from stackctl.errors import UserError

PROJECT = "appstack"
APPS_KEY = f"{PROJECT}:apps"
_STACK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_IMAGES_RE = re.compile(r"\bimages: (\S+)")


# --------------------------------------------------------------------------------------------
# Stack names, files, git


def validate_stack_name(stack: str) -> str:
    if not _STACK_NAME_RE.match(stack) or "//" in stack or stack.endswith("/"):
        raise UserError(
            f"invalid stack name {stack!r}: expected {', '.join(environments())} or <org>/<stack>"
        )
    return stack


def stack_short_name(stack: str) -> str:
    """The part Pulumi uses for Pulumi.<stack>.yaml (`get_stack_settings_name` in the SDK)."""
    return stack.rsplit("/", 1)[-1]


def stack_environment(stack: str) -> str:
    """The environment (a key of components.config.ENVIRONMENT_DEFAULTS) from `dev`, `staging`,
    `org/prod`, `dev-alice`; anything else is an error."""
    short = stack_short_name(validate_stack_name(stack))
    env = short.split("-", 1)[0]
    known = environments()
    if env not in known:
        raise UserError(
            f"cannot tell the environment of stack {stack!r}: its name must be "
            f"{', '.join(known[:-1])} or {known[-1]} (optionally <org>/ prefixed, or -suffixed)"
        )
    return env


def keeps_production_rules(stack: str) -> bool:
    """Whether the stack's environment keeps prod's rules (staging, prod)."""
    return production_rules(stack_environment(stack))


def policy_arguments(project_dir: Path, environment: str) -> tuple[list[str], list[str]]:
    """`--policy-pack policy --policy-pack-config policy/config/<env>.json` as absolute paths."""
    pack = project_dir / "policy"
    pack_config = pack / "config" / f"{environment}.json"
    if not pack.is_dir():
        raise UserError(f"policy pack not found at {pack}; every preview/up runs it")
    if not pack_config.is_file():
        raise UserError(f"policy pack config not found at {pack_config}")
    return [str(pack)], [str(pack_config)]


def git_commit(project_dir: Path, *, short: bool = True) -> str:
    """HEAD of the project dir's git repo, or "unknown" when it is not a git checkout."""
    return git_head(project_dir, abbrev=0 if short else None) or "unknown"


def images_from_apps(apps: object) -> dict[str, str]:
    """service -> image from an `appstack:apps` value; anything malformed is skipped."""
    if isinstance(apps, str):
        try:
            apps = json.loads(apps)
        except ValueError:
            return {}
    if not isinstance(apps, dict):
        return {}
    images: dict[str, str] = {}
    for service, settings in apps.items():
        if isinstance(settings, dict):
            image = settings.get("image")
            if isinstance(image, str) and image.strip():
                images[str(service)] = image.strip()
    return dict(sorted(images.items()))


def read_stack_images(project_dir: Path, stack: str) -> dict[str, str]:
    """Images per service from Pulumi.<stack>.yaml, read as plain YAML; {} when absent."""
    path = project_dir / f"Pulumi.{stack_short_name(stack)}.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        return {}
    apps = config.get(APPS_KEY, config.get("apps"))
    return images_from_apps(apps)


def format_images(images: Mapping[str, str]) -> str:
    return ",".join(f"{svc}={img}" for svc, img in sorted(images.items())) or "-"


def deploy_message(commit: str, images: Mapping[str, str]) -> str:
    return f"{PROJECT} deploy {commit} images: {format_images(images)}"


def rollback_message(target: int, current: int, commit: str, images: Mapping[str, str]) -> str:
    return (
        f"{PROJECT} rollback to v{target} from v{current} {commit} images: {format_images(images)}"
    )


def images_from_message(message: str) -> str:
    match = _IMAGES_RE.search(message or "")
    return match.group(1) if match else "-"
