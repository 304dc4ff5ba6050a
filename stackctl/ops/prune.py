"""`stackctl registry prune`: delete old commit tags from the image registry (run by CI on a
schedule). Dry run by default; `--apply` deletes.

The rules are `stackctl.ops.retention` (keep the newest N, every digest any stack's history
references, and everything younger than the configured age; delete the rest with their cosign
`.sig`/`.att`/`.sbom` tags). Settings come from `appstack:registryRetention` of each named stack
file (when stacks disagree the one that keeps more wins: the largest `maxAgeDays` and
`keepLast`), overridden by flags. Histories are read through the Automation API; a stack whose
history cannot be read stops the prune before anything is deleted (fail closed: an unread
history could hold a rollback target).

Deleting a manifest leaves its blobs on the registry's storage until the registry's garbage
collector runs (`registry garbage-collect <config>` for distribution): docs/operations.md.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from components.config.base import Model
from components.config.loading import format_errors
from components.config.reading import stack_file_config
from components.config.retention import RegistryRetention
from stackctl.errors import OperationFailed, UserError
from stackctl.ops.automation import PulumiAutomationBackend, StackBackend
from stackctl.ops.operator import Console
from stackctl.ops.registry_api import RegistryClient, read_auth, split_repository
from stackctl.ops.retention import (
    Plan,
    Policy,
    TagInfo,
    digests_in,
    history_digests,
    is_commit_tag,
    plan,
)
from stackctl.ops.stacks import images_from_apps, stack_short_name, validate_stack_name

REPO_ROOT = Path(__file__).resolve().parents[2]
RETENTION_KEY = "appstack:registryRetention"


@dataclass(frozen=True)
class Settings:
    """The prune's inputs after stack files and flags are combined."""

    policy: Policy
    repositories: tuple[str, ...]
    pinned: frozenset[str]  # digests the stack files themselves name


def stack_retention(project_dir: Path, stack: str) -> tuple[RegistryRetention, dict[str, Any]]:
    """`appstack:registryRetention` of Pulumi.<stack>.yaml, validated, and the file's config."""
    path = project_dir / f"Pulumi.{stack_short_name(validate_stack_name(stack))}.yaml"
    try:
        config = stack_file_config(path.read_text(encoding="utf-8"), path.name)
    except OSError as exc:
        raise UserError(f"stack {stack}: cannot read {path.name}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    raw = config.get(RETENTION_KEY) or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path.name}: {RETENTION_KEY}: expected a map, got {raw!r}")
    try:
        return _RetentionKey.model_validate({"registryRetention": raw}).registry_retention, config
    except ValidationError as exc:
        raise UserError(f"{path.name}: " + "; ".join(format_errors(exc))) from None


class _RetentionKey(Model):
    """`appstack:registryRetention` alone, at its place in the config tree (error paths)."""

    registry_retention: RegistryRetention


def _stack_repositories(retention: RegistryRetention, config: Mapping[str, Any]) -> list[str]:
    if retention.repositories:
        return list(retention.repositories)
    images = list(images_from_apps(config.get("appstack:apps")).values())
    jenkins = config.get("appstack:jenkins")
    if isinstance(jenkins, dict) and isinstance(jenkins.get("pulumiAgentImage"), str):
        images.append(jenkins["pulumiAgentImage"])
    return ["/".join(split_repository(image)) for image in images]


def resolve_settings(
    project_dir: Path,
    stacks: list[str],
    *,
    max_age_days: int | None = None,
    keep_last: int | None = None,
    repositories: list[str] | None = None,
) -> Settings:
    """Combine each stack's `appstack:registryRetention` (the most keeping wins) with flags."""
    retentions = [stack_retention(project_dir, s) for s in stacks]
    ages = [r.max_age_days for r, _ in retentions] or [RegistryRetention().max_age_days]
    lasts = [r.keep_last for r, _ in retentions] or [RegistryRetention().keep_last]
    try:
        flags = RegistryRetention.model_validate(
            {
                "maxAgeDays": max_age_days if max_age_days is not None else max(ages),
                "keepLast": keep_last if keep_last is not None else max(lasts),
                "repositories": repositories or [],
            }
        )
    except ValidationError as exc:
        raise UserError("; ".join(_flag_error(e) for e in exc.errors())) from None
    repos: list[str] = list(flags.repositories)
    if not repos:
        for retention, config in retentions:
            repos += _stack_repositories(retention, config)
    if not repos:
        raise UserError(
            f"nothing to prune: no --repository and no {RETENTION_KEY}.repositories or app "
            "images in the stack files"
        )
    pinned: set[str] = set()
    for _, config in retentions:
        pinned |= digests_in(str(config.get("appstack:apps") or ""))
        pinned |= digests_in(str(config.get("appstack:jenkins") or ""))
    return Settings(
        Policy(timedelta(days=flags.max_age_days), flags.keep_last),
        tuple(dict.fromkeys(repos)),
        frozenset(pinned),
    )


def _flag_error(err: Any) -> str:
    key = str(err["loc"][0])
    if key == "repositories":
        return (
            f"--repository: {err['input']!r} is not a repository 'host[:port]/path' "
            "(lowercase, no tag or digest)"
        )
    flag = {"maxAgeDays": "--max-age-days", "keepLast": "--keep-last"}[key]
    return f"{flag}: {err['input']!r}: {err['msg']}"


def protected_digests(backends: list[StackBackend], pinned: frozenset[str]) -> set[str]:
    """Every digest any of the stacks' histories references, plus the stack files' own."""
    found = set(pinned)
    for backend in backends:
        try:
            found |= history_digests(backend.history())
        except (UserError, OperationFailed) as exc:
            raise OperationFailed(
                f"stack {backend.stack_name}: cannot read its update history ({exc}); "
                "nothing was deleted (an unread history could hold a rollback target)"
            ) from None
    return found


def repository_tags(client: RegistryClient, repo: str) -> list[TagInfo]:
    """Every tag of `repo` with its digest and, for commit tags, the image's creation time."""
    infos: list[TagInfo] = []
    for tag in client.tags(repo):
        digest, manifest = client.manifest(repo, tag)
        created = client.created(repo, manifest) if is_commit_tag(tag) else None
        infos.append(TagInfo(tag, digest, created))
    return infos


def describe(result: Plan, now: datetime) -> list[str]:
    lines: list[str] = []
    for t in result.delete_tags:
        age = (now - t.created).days if t.created else "?"
        lines.append(f"delete {result.repository}:{t.tag} {t.digest} ({age} days old)")
    for t in result.companions:
        lines.append(f"delete {result.repository}:{t.tag} {t.digest} (with its image)")
    for tag, reason in sorted(result.kept.items()):
        lines.append(f"keep   {result.repository}:{tag} ({reason})")
    return lines


ClientFactory = Callable[[str], RegistryClient]


def run_prune(
    settings: Settings,
    backends: list[StackBackend],
    client_for: ClientFactory,
    *,
    apply: bool,
    console: Console,
    now: datetime | None = None,
) -> list[Plan]:
    """Plan every repository (all before any delete), print the plan, delete with `apply`."""
    now = now or datetime.now(UTC)
    protected = protected_digests(backends, settings.pinned)
    plans: list[tuple[RegistryClient, str, Plan]] = []
    for repository in settings.repositories:
        host, repo = split_repository(repository)
        client = client_for(host)
        plans.append(
            (
                client,
                repo,
                plan(repository, repository_tags(client, repo), protected, settings.policy, now),
            )
        )
    mode = "deleting" if apply else "dry run (--apply deletes)"
    console.print(
        f"registry prune: {mode}; keep the {settings.policy.keep_last} newest commit tags, "
        f"those younger than {settings.policy.max_age.days} days and {len(protected)} "
        "digests referenced by stack histories"
    )
    for _, _, result in plans:
        for line in describe(result, now):
            console.print(line)
    if apply:
        for client, repo, result in plans:
            for digest in [*result.delete_digests, *(t.digest for t in result.companions)]:
                client.delete_manifest(repo, digest)
    total = sum(len(p.delete_digests) + len(p.companions) for _, _, p in plans)
    console.print(f"{'deleted' if apply else 'would delete'} {total} manifests")
    return [p for _, _, p in plans]


# --------------------------------------------------------------------------------------------
# CLI wiring


def default_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def _auth_file(value: str | None) -> Path | None:
    if value:
        return Path(value)
    env = os.environ.get("REGISTRY_AUTH_FILE")
    if env:
        return Path(env)
    docker = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    return docker


def _handle(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir)
    stacks = args.stack or default_stacks(project_dir)
    settings = resolve_settings(
        project_dir,
        stacks,
        max_age_days=args.max_age_days,
        keep_last=args.keep_last,
        repositories=args.repository,
    )
    auth_file = _auth_file(args.authfile)
    ca_file = Path(args.ca_file) if args.ca_file else None
    if ca_file is not None and not ca_file.is_file():
        raise UserError(f"--ca-file {ca_file}: no such file")

    def client_for(host: str) -> RegistryClient:
        return RegistryClient(host, read_auth(auth_file, host), ca_file)

    backends: list[StackBackend] = [PulumiAutomationBackend(s, project_dir) for s in stacks]
    run_prune(settings, backends, client_for, apply=args.apply, console=Console())
    return 0


def _int_flag(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: {text!r} is not an integer") from None

    return parse


def register(subparsers: Any) -> None:
    registry = subparsers.add_parser(
        "registry", help="image registry maintenance (prune old commit tags)"
    )
    sub = registry.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")
    parser = sub.add_parser(
        "prune",
        help="delete commit tags older than appstack:registryRetention.maxAgeDays",
        description="Delete commit tags (7-40 hex) older than maxAgeDays, keeping the keepLast "
        "newest and every digest a stack's update history references, with their cosign "
        ".sig/.att/.sbom tags. Dry run unless --apply. Exit 0 done, 1 failed, 2 bad input.",
    )
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        help="stack whose history protects digests and whose file gives the settings "
        "(repeatable; default: every Pulumi.<stack>.yaml)",
    )
    parser.add_argument("--project-dir", default=str(REPO_ROOT), help="directory with Pulumi.yaml")
    parser.add_argument("--max-age-days", type=_int_flag("--max-age-days"))
    parser.add_argument("--keep-last", type=_int_flag("--keep-last"))
    parser.add_argument(
        "--repository", action="append", default=[], help="host/path to prune (repeatable)"
    )
    parser.add_argument(
        "--authfile",
        help="registry login (containers auth.json / Docker config.json; default "
        "$REGISTRY_AUTH_FILE, else ~/.docker/config.json)",
    )
    parser.add_argument("--ca-file", help="extra CA to trust for the registry's TLS")
    parser.add_argument("--apply", action="store_true", help="delete (default: dry run)")
    parser.set_defaults(handler=_handle)
