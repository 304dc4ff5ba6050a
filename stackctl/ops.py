"""`deploy`, `history` and `rollback`: stack operations on Pulumi's Automation API.

The command logic (`run_deploy`, `run_history`, `run_rollback`) takes a `StackBackend`, so it is
tested with an in-memory fake; the handlers wire it to `PulumiAutomationBackend`.

Update message contract (written by deploy and rollback, parsed back by history):

    appstack deploy <commit> images: web=repo/web:1.2.3,api=repo/api:4.5.6
    appstack rollback to v<N> from v<M> <commit> images: web=repo/web:1.2.2

`<commit>` is `git rev-parse --short HEAD` of the project dir (`unknown` outside git); images are
`appstack:apps.<service>.image` from Pulumi.<stack>.yaml, sorted by service, or `-` when none.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from components.git import git_head
from stackctl.automation import (
    ConfigValue,
    PulumiAutomationBackend,
    StackBackend,
    parse_history_time,
)
from stackctl.errors import OperationFailed, UserError

PROJECT = "appstack"
APPS_KEY = f"{PROJECT}:apps"
ENVIRONMENTS = ("dev", "prod")
BACKUP_DIR_NAME = ".pulumi-backups"
REPO_ROOT = Path(__file__).resolve().parent.parent
_STACK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_IMAGES_RE = re.compile(r"\bimages: (\S+)")
ROLLBACK_KINDS = ("update",)


# --------------------------------------------------------------------------------------------
# Operator interaction


@dataclass
class Console:
    """Where output goes and how confirmation is asked; injectable for tests."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    interactive: bool = False
    ask: Callable[[str], str] = input

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Console:
        env = os.environ if environ is None else environ
        ci = env.get("CI", "").strip().lower() in ("1", "true", "yes")
        return cls(
            out=sys.stdout,
            interactive=sys.stdin is not None and sys.stdin.isatty() and not ci,
            ask=input,
        )

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)


def require_confirmation_possible(console: Console, assume_yes: bool, action: str) -> None:
    """Fail before touching anything when we would have to ask but cannot."""
    if not assume_yes and not console.interactive:
        raise UserError(
            f"{action} needs confirmation, but there is no interactive terminal (or CI=true); "
            "pass --yes to proceed without a prompt"
        )


def confirm(console: Console, assume_yes: bool, question: str) -> bool:
    if assume_yes:
        return True
    answer = console.ask(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


# --------------------------------------------------------------------------------------------
# Stack names, files, git


def validate_stack_name(stack: str) -> str:
    if not _STACK_NAME_RE.match(stack) or "//" in stack or stack.endswith("/"):
        raise UserError(f"invalid stack name {stack!r}: expected dev, prod or <org>/<stack>")
    return stack


def stack_short_name(stack: str) -> str:
    """The part Pulumi uses for Pulumi.<stack>.yaml (`get_stack_settings_name` in the SDK)."""
    return stack.rsplit("/", 1)[-1]


def stack_environment(stack: str) -> str:
    """dev or prod from `dev`, `prod`, `org/prod`, `dev-alice`; anything else is an error."""
    short = stack_short_name(validate_stack_name(stack))
    env = short.split("-", 1)[0]
    if env not in ENVIRONMENTS:
        raise UserError(
            f"cannot tell the environment of stack {stack!r}: its name must be "
            f"{' or '.join(ENVIRONMENTS)} (optionally <org>/ prefixed, or -suffixed)"
        )
    return env


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


# --------------------------------------------------------------------------------------------
# Change summaries and history rows


def format_changes(changes: Mapping[str, int] | None) -> str:
    """`+create ~update -delete`; replacements count as updates (`~`)."""
    c = changes or {}
    updated = c.get("update", 0) + c.get("replace", 0)
    return f"+{c.get('create', 0)} ~{updated} -{c.get('delete', 0)}"


def describe_changes(changes: Mapping[str, int]) -> str:
    detail = ", ".join(f"{op} {n}" for op, n in sorted(changes.items()) if n)
    return f"{format_changes(changes)} ({detail or 'no resources'})"


def _utc_iso(value: str | None) -> str:
    if not value:
        return "-"
    try:
        return parse_history_time(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return value


def normalize_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """One history row: what `history` prints as a table line and as a JSON object."""
    env = record.get("environment") or {}
    head = str(env.get("git.head") or "").strip()
    return {
        "version": record.get("version"),
        "start_time": _utc_iso(record.get("startTime")),
        "kind": record.get("kind", "-"),
        "result": record.get("result") or "-",
        "commit": head[:7] if head else "-",
        "images": images_from_message(str(record.get("message") or "")),
        "changes": format_changes(record.get("resourceChanges"))
        if record.get("resourceChanges") is not None
        else "-",
    }


HISTORY_COLUMNS = ("version", "start_time", "kind", "result", "commit", "changes", "images")


def render_table(rows: list[dict[str, Any]]) -> str:
    header = [c.upper().replace("_", " ") for c in HISTORY_COLUMNS]
    cells = [[str(row[c]) for c in HISTORY_COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *cells]
    )


def sorted_history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: int(r.get("version") or 0), reverse=True)


# --------------------------------------------------------------------------------------------
# deploy


@contextmanager
def engine_step(what: str) -> Iterator[None]:
    """Turn anything the engine layer raises into one readable line (OperationFailed).

    The Automation API raises more than its `CommandError`s: `Stack.preview`/`up`/`refresh`
    raise the built-in `RuntimeError("summary event never found")` when the CLI exits without a
    summary event (pulumi/automation/_stack.py, pulumi 3.272.0), and gRPC or version checks raise
    their own types. Our own UserError / OperationFailed pass through unchanged.
    """
    try:
        yield
    except (UserError, OperationFailed, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise OperationFailed(f"{what} failed: {one_line(exc)}") from exc


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, at most 300 characters."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"[:300]


def run_deploy(
    backend: StackBackend,
    *,
    project_dir: Path,
    preview_only: bool = False,
    assume_yes: bool = False,
    refresh: bool = False,
    console: Console,
) -> int:
    stack = backend.stack_name
    environment = stack_environment(stack)
    if not preview_only:
        require_confirmation_possible(console, assume_yes, f"deploying {stack}")
    packs, pack_configs = policy_arguments(project_dir, environment)

    if refresh:
        console.print(f"== refresh {stack}")
        with engine_step(f"pulumi refresh of {stack}"):
            refreshed = backend.refresh(on_output=console.print)
        if refreshed.result != "succeeded":
            raise OperationFailed(f"refresh of {stack} ended with result {refreshed.result!r}")

    console.print(f"== preview {stack} (policy pack: {environment})")
    with engine_step(f"pulumi preview of {stack}"):
        preview = backend.preview(
            policy_packs=packs, policy_pack_configs=pack_configs, on_output=console.print
        )
    console.print(f"preview {stack}: {describe_changes(preview.change_summary)}")
    if preview_only:
        return 0

    if not confirm(console, assume_yes, f"Deploy these changes to {stack}?"):
        raise OperationFailed(f"deploy of {stack} cancelled by the operator; nothing changed")

    message = deploy_message(git_commit(project_dir), read_stack_images(project_dir, stack))
    console.print(f"== up {stack}: {message}")
    started = time.monotonic()
    with engine_step(f"pulumi up of {stack}"):
        outcome = backend.up(
            message=message,
            policy_packs=packs,
            policy_pack_configs=pack_configs,
            on_output=console.print,
        )
    duration = time.monotonic() - started
    version = outcome.summary.get("version")
    console.print(
        f"result: {outcome.result}  version: v{version}  "
        f"changes: {describe_changes(outcome.resource_changes)}  duration: {duration:.1f}s"
    )
    if outcome.result != "succeeded":
        raise OperationFailed(f"pulumi up on {stack} ended with result {outcome.result!r}")
    return 0


# --------------------------------------------------------------------------------------------
# history


def run_history(
    backend: StackBackend, *, as_json: bool = False, limit: int | None = None, console: Console
) -> int:
    rows = [normalize_record(r) for r in sorted_history(backend.history())]
    if limit is not None:
        rows = rows[:limit]
    if as_json:
        console.print(json.dumps(rows, indent=2))
    elif not rows:
        console.print(f"stack {backend.stack_name} has no updates")
    else:
        console.print(render_table(rows))
    return 0


# --------------------------------------------------------------------------------------------
# rollback


def select_target(
    records: list[dict[str, Any]], *, to_version: int | None, steps: int | None
) -> dict[str, Any]:
    """The update to roll back to, validated (exists, kind update, succeeded)."""
    history = sorted_history(records)
    if not history:
        raise UserError("the stack has no update history; nothing to roll back to")
    successful = [
        r for r in history if r.get("kind") in ROLLBACK_KINDS and r.get("result") == "succeeded"
    ]
    if steps is not None:
        if steps < 1:
            raise UserError("--steps must be >= 1")
        if steps >= len(successful):
            raise UserError(
                f"--steps {steps} goes beyond history: only {len(successful)} successful "
                f"update(s) ({_versions(successful)}); the newest is the current one"
            )
        return successful[steps]
    by_version = {int(r.get("version") or 0): r for r in history}
    if to_version not in by_version:
        raise UserError(
            f"version {to_version} is not in the stack history; available versions: "
            f"{_versions(history)}; successful updates: {_versions(successful) or 'none'}"
        )
    target = by_version[to_version]
    if target.get("kind") not in ROLLBACK_KINDS:
        raise UserError(
            f"v{to_version} is a {target.get('kind')!r} operation, not an update; roll back to "
            f"a successful update: {_versions(successful) or 'none'}"
        )
    if target.get("result") != "succeeded":
        raise UserError(
            f"v{to_version} did not succeed (result {target.get('result')!r}); roll back to a "
            f"successful update: {_versions(successful) or 'none'}"
        )
    return target


def _versions(records: list[dict[str, Any]]) -> str:
    return ", ".join(f"v{r.get('version')}" for r in records)


def check_same_commit(target: Mapping[str, Any], current_head: str) -> None:
    """Config-only rollback is only sound when the program is the one the target ran."""
    version = target.get("version")
    target_head = str((target.get("environment") or {}).get("git.head") or "").strip()
    if not target_head or current_head in ("", "unknown"):
        raise UserError(
            f"cannot verify that v{version} ran the current program (recorded commit: "
            f"{target_head or 'none'}, current HEAD: {current_head or 'unknown'}); "
            "rollback restores config only and needs both commits"
        )
    if not (target_head.startswith(current_head) or current_head.startswith(target_head)):
        raise UserError(
            f"v{version} was deployed from commit {target_head[:12]} but HEAD is "
            f"{current_head[:12]}: code changes roll back through `git revert <commits>` and a "
            "deploy (`python -m stackctl deploy <stack>`); config-only rollback applies only at "
            "the same commit"
        )


@dataclass(frozen=True)
class ConfigPlan:
    """What restoring a history record's config means for the current stack config."""

    desired: dict[str, ConfigValue]  # the full config after the rollback
    to_set: dict[str, ConfigValue]  # keys whose value or secretness changes
    to_remove: list[str]  # keys present now, absent in the target
    kept_secrets: list[str]  # secret keys kept at their current value


def _record_value(key: str, raw: Mapping[str, Any], current: ConfigValue | None) -> ConfigValue:
    obj = raw.get("objectValue")
    value = raw.get("value")
    if value is None and obj is not None:
        value = json.dumps(obj)
    text = "" if value is None else str(value)
    if obj is None and current is not None and current.object_value is not None:
        # History read through the SDK loses objectValue; structured now -> structured then.
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict | list):
            obj = parsed
    return ConfigValue(value=text, secret=False, object_value=obj)


def _same(a: ConfigValue, b: ConfigValue) -> bool:
    if a.secret != b.secret:
        return False
    if a.object_value is not None or b.object_value is not None:
        try:
            left = a.object_value if a.object_value is not None else json.loads(a.value)
            right = b.object_value if b.object_value is not None else json.loads(b.value)
        except ValueError:
            return False
        return bool(left == right)
    return a.value == b.value


def plan_config_restore(
    target: Mapping[str, Any], current: Mapping[str, ConfigValue]
) -> ConfigPlan:
    """The target's config, with secrets kept at their CURRENT value (history redacts them)."""
    version = target.get("version")
    target_config: Mapping[str, Mapping[str, Any]] = target.get("config") or {}
    desired: dict[str, ConfigValue] = {}
    kept: list[str] = []
    missing: list[str] = []
    for key, raw in sorted(target_config.items()):
        now = current.get(key)
        if raw.get("secret"):
            if now is None or not now.secret:
                missing.append(key)
                continue
            desired[key] = now  # never the redacted placeholder
            kept.append(key)
        else:
            desired[key] = _record_value(key, raw, now)
    if missing:
        keys = ", ".join(missing)
        raise UserError(
            f"secret config {keys} existed in v{version} but is not a secret in the current "
            "config; history keeps only redacted secrets, so set it first with "
            "`pulumi config set --secret <key> -s <stack>` and rerun the rollback"
        )
    to_set = {k: v for k, v in desired.items() if k not in current or not _same(v, current[k])}
    to_remove = sorted(k for k in current if k not in desired)
    return ConfigPlan(desired=desired, to_set=to_set, to_remove=to_remove, kept_secrets=kept)


def backup_path(project_dir: Path, stack: str, current_version: int, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = stack.replace("/", "_")
    return project_dir / BACKUP_DIR_NAME / f"{safe}-v{current_version}-{stamp}.json"


def write_backup(path: Path, state: Mapping[str, Any]) -> Path:
    """Write atomically (temp file in the same dir + rename), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _restore_previous(
    backend: StackBackend, plan: ConfigPlan, before: dict[str, ConfigValue]
) -> None:
    """Undo a config restore that will not be deployed (operator said no)."""
    back = {k: before[k] for k in [*plan.to_set, *plan.to_remove] if k in before}
    added = [k for k in plan.to_set if k not in before]
    backend.set_config(back)
    backend.remove_config(added)


def _apply_config_plan(
    backend: StackBackend, console: Console, plan: ConfigPlan, target_version: int
) -> None:
    """Set and remove the config keys that bring the stack back to the target's config."""
    console.print(f"== restore config of v{target_version} on {backend.stack_name}")
    for key in sorted(plan.to_set):
        console.print(f"  set    {key}")
    for key in plan.to_remove:
        console.print(f"  remove {key}")
    for key in plan.kept_secrets:
        console.print(f"  keep   {key} (secret: current value kept)")
    if not plan.to_set and not plan.to_remove:
        console.print("  config already matches")
    backend.set_config(dict(plan.to_set))
    backend.remove_config(list(plan.to_remove))


def _preview_rollback(
    backend: StackBackend,
    console: Console,
    policy: tuple[list[str], list[str]],
    target_version: int,
    assume_yes: bool,
) -> bool:
    """Preview the rollback with the policy pack; True when the operator confirms it."""
    stack = backend.stack_name
    console.print(f"== preview rollback of {stack} to v{target_version}")
    with engine_step(f"pulumi preview of {stack}"):
        preview = backend.preview(
            policy_packs=policy[0], policy_pack_configs=policy[1], on_output=console.print
        )
    console.print(f"preview {stack}: {describe_changes(preview.change_summary)}")
    return confirm(console, assume_yes, f"Roll {stack} back to v{target_version}?")


def run_rollback(
    backend: StackBackend,
    *,
    project_dir: Path,
    to_version: int | None = None,
    steps: int | None = None,
    assume_yes: bool = False,
    console: Console,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    current_head: Callable[[Path], str] | None = None,
) -> int:
    stack = backend.stack_name
    environment = stack_environment(stack)
    if (to_version is None) == (steps is None):
        raise UserError("pass exactly one of --to VERSION or --steps N")
    require_confirmation_possible(console, assume_yes, f"rolling back {stack}")
    packs, pack_configs = policy_arguments(project_dir, environment)

    # (1) target
    records = backend.history()
    target = select_target(records, to_version=to_version, steps=steps)
    target_version = int(target["version"])
    current_version = max(int(r.get("version") or 0) for r in records)
    # (4, checked before anything changes) same program commit
    head = (current_head or (lambda d: git_commit(d, short=False)))(project_dir)
    check_same_commit(target, head)
    # (3, planned before anything changes) config to restore
    before = backend.get_config()
    plan = plan_config_restore(target, before)

    # (2) backup of the current state, before any change
    path = write_backup(
        backup_path(project_dir, stack, current_version, now()), backend.export_state()
    )
    console.print(f"backup of {stack} v{current_version} state: {path}")

    # (3) restore config
    _apply_config_plan(backend, console, plan, target_version)

    # (5) preview, confirm, up
    if not _preview_rollback(backend, console, (packs, pack_configs), target_version, assume_yes):
        _restore_previous(backend, plan, before)
        raise OperationFailed(
            f"rollback of {stack} cancelled by the operator; config restored, nothing deployed"
        )

    apps = plan.desired.get(APPS_KEY)
    images = images_from_apps(
        apps.object_value
        if apps and apps.object_value is not None
        else (apps.value if apps else "")
    )
    message = rollback_message(target_version, current_version, head[:7], images)
    console.print(f"== up {stack}: {message}")
    started = time.monotonic()
    with engine_step(f"pulumi up of {stack}"):
        outcome = backend.up(
            message=message,
            policy_packs=packs,
            policy_pack_configs=pack_configs,
            on_output=console.print,
        )
    duration = time.monotonic() - started
    console.print(
        f"result: {outcome.result}  version: v{outcome.summary.get('version')}  "
        f"changes: {describe_changes(outcome.resource_changes)}  duration: {duration:.1f}s"
    )
    if outcome.result != "succeeded":
        raise OperationFailed(
            f"rollback of {stack} to v{target_version} ended with result {outcome.result!r}; "
            f"the stack config now holds v{target_version}'s values, state backup: {path}"
        )
    console.print(
        f"rolled {stack} back to v{target_version}. Pulumi.{stack_short_name(stack)}.yaml now "
        "holds that config: commit it, or the next deploy re-applies the previous config"
    )
    return 0


# --------------------------------------------------------------------------------------------
# CLI wiring

BackendFactory = Callable[[str, Path, bool], StackBackend]


def default_backend_factory(stack: str, project_dir: Path, create: bool) -> StackBackend:
    backend = PulumiAutomationBackend(stack, project_dir, create=create)
    if backend.settings.is_local_file_backend and stack_environment(stack) == "prod":
        print(
            "warning: prod stack on a local file backend "
            f"({backend.settings.backend_url}); set PULUMI_BACKEND_URL to the team backend",
            file=sys.stderr,
        )
    return backend


# Tests replace this to run the handlers against a fake backend.
BACKEND_FACTORY: BackendFactory = default_backend_factory


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _project_dir(args: argparse.Namespace) -> Path:
    path = Path(args.project_dir).resolve()
    if not (path / "Pulumi.yaml").is_file():
        raise UserError(f"no Pulumi.yaml in {path}; pass --project-dir <repo root>")
    return path


def _handle_deploy(args: argparse.Namespace) -> int:
    stack = validate_stack_name(args.stack)
    stack_environment(stack)
    project_dir = _project_dir(args)
    backend = BACKEND_FACTORY(stack, project_dir, True)
    return run_deploy(
        backend,
        project_dir=project_dir,
        preview_only=args.preview_only,
        assume_yes=args.yes,
        refresh=args.refresh,
        console=Console.from_environment(),
    )


def _handle_history(args: argparse.Namespace) -> int:
    stack = validate_stack_name(args.stack)
    project_dir = _project_dir(args)
    backend = BACKEND_FACTORY(stack, project_dir, False)
    return run_history(
        backend, as_json=args.json, limit=args.limit, console=Console.from_environment()
    )


def _handle_rollback(args: argparse.Namespace) -> int:
    stack = validate_stack_name(args.stack)
    stack_environment(stack)
    project_dir = _project_dir(args)
    backend = BACKEND_FACTORY(stack, project_dir, False)
    return run_rollback(
        backend,
        project_dir=project_dir,
        to_version=args.to,
        steps=args.steps,
        assume_yes=args.yes,
        console=Console.from_environment(),
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help="stack name: dev, prod (or <org>/<stack>)")
    parser.add_argument(
        "--project-dir",
        default=str(REPO_ROOT),
        help="directory with Pulumi.yaml (default: the repo this stackctl lives in)",
    )


def register(subparsers: Any) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="preview (with the policy pack) and update a stack",
        description="Refresh (optional), preview with the policy pack, confirm, then up. "
        "Exit 0 on success, 1 if the update fails or is declined, 2 on usage errors.",
    )
    _add_common(deploy)
    deploy.add_argument("--preview-only", action="store_true", help="stop after the preview")
    deploy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    deploy.add_argument("--refresh", action="store_true", help="refresh state before preview")
    deploy.set_defaults(handler=_handle_deploy)

    history = subparsers.add_parser(
        "history",
        help="list a stack's updates (version, time, result, commit, images, changes)",
    )
    _add_common(history)
    history.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    history.add_argument("--limit", type=_positive_int, default=None, help="newest N rows")
    history.set_defaults(handler=_handle_history)

    rollback = subparsers.add_parser(
        "rollback",
        help="restore the config of an earlier successful update and deploy it",
        description="Config-only rollback at the same program commit: backs up the state, "
        "restores the target update's config (secrets keep their current value), previews, "
        "confirms, then up. Code changes roll back via git revert + deploy.",
    )
    _add_common(rollback)
    target = rollback.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", type=_positive_int, metavar="VERSION", help="history version")
    target.add_argument(
        "--steps", type=_positive_int, metavar="N", help="N successful updates back"
    )
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollback.set_defaults(handler=_handle_rollback)
