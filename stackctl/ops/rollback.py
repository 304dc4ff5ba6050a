"""`rollback`: redeploy the config of an earlier update of the same program (the same commit, or
commits that differ only in stack files); the current state is backed up first and the config
restored if the update fails."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from stackctl.errors import OperationFailed, UserError
from stackctl.ops.automation import (
    ConfigValue,
    StackBackend,
)
from stackctl.ops.history import (
    describe_changes,
    sorted_history,
)
from stackctl.ops.notify import Notice, Notifier
from stackctl.ops.operator import (
    Console,
    Declined,
    confirm,
    engine_step,
    require_confirmation_possible,
)
from stackctl.ops.rollout_watch import Rollouts
from stackctl.ops.stacks import (
    APPS_KEY,
    git_commit,
    images_from_apps,
    policy_arguments,
    rollback_message,
    stack_environment,
    stack_short_name,
)
from stackctl.ops.watched import watched_update

BACKUP_DIR_NAME = ".pulumi-backups"
#: A stack file (Pulumi's `Pulumi.<stack>.yaml` beside `Pulumi.yaml`): config, not program.
STACK_FILE = re.compile(r"Pulumi\.[A-Za-z0-9_.-]+\.yaml")
ROLLBACK_KINDS = ("update",)


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


def stack_file_only_changes(project_dir: Path, old: str, new: str) -> list[str] | None:
    """The paths that differ between commits `old` and `new` of the project's git repo other
    than its stack files (`Pulumi.<stack>.yaml` in the project directory: the config a rollback
    restores), repo-relative; [] when only stack files differ; None when git cannot tell (not a
    repo, a commit it does not have)."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=project_dir, capture_output=True, text=True, check=False
        )

    prefix = git("rev-parse", "--show-prefix")
    diff = git("diff", "--name-only", "--no-renames", old, new, "--")
    if prefix.returncode != 0 or diff.returncode != 0:
        return None
    base = prefix.stdout.strip()
    return [
        path
        for path in diff.stdout.splitlines()
        if path
        and not (
            path.startswith(base) and STACK_FILE.fullmatch(path.removeprefix(base)) is not None
        )
    ]


def check_same_commit(
    target: Mapping[str, Any],
    current_head: str,
    program_changes: Callable[[str, str], list[str] | None] | None = None,
) -> None:
    """Config-only rollback is only sound when the program is the one the target ran: the same
    commit, or commits that differ only in stack files (`program_changes(old, new)` lists what
    else differs; a config change committed as the stack file's diff changes no program)."""
    version = target.get("version")
    target_head = str((target.get("environment") or {}).get("git.head") or "").strip()
    if not target_head or current_head in ("", "unknown"):
        raise UserError(
            f"cannot verify that v{version} ran the current program (recorded commit: "
            f"{target_head or 'none'}, current HEAD: {current_head or 'unknown'}); "
            "rollback restores config only and needs both commits"
        )
    if target_head.startswith(current_head) or current_head.startswith(target_head):
        return
    changed = program_changes(target_head, current_head) if program_changes else None
    if changed == []:
        return  # only stack files differ: the same program, other config
    what = (
        f"; besides stack files these differ: {', '.join(changed[:5])}"
        + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        if changed
        else ""
    )
    raise UserError(
        f"v{version} was deployed from commit {target_head[:12]} but HEAD is "
        f"{current_head[:12]}{what}: code changes roll back through `git revert <commits>` and "
        "a deploy (`python -m stackctl deploy <stack>`); config-only rollback applies only at "
        "the same commit, or at one that changed nothing but stack files"
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


def backup_state(
    backend: StackBackend, project_dir: Path, console: Console
) -> tuple[Path | None, dict[str, Any]]:
    """Back up the stack's state before an operation changes it (deploy, rollback); returns
    the backup's path (None when the state holds nothing to lose) and the state.
    `stackctl restore` imports the newest backup."""
    records = backend.history()
    state = backend.export_state()
    deployment = state.get("deployment") or {}
    if not deployment.get("resources") and not deployment.get("pending_operations"):
        return None, state
    current = max((int(r.get("version") or 0) for r in records), default=0)
    stack = backend.stack_name
    path = write_backup(backup_path(project_dir, stack, current, datetime.now(UTC)), state)
    console.print(f"backup of {stack} v{current} state: {path}")
    return path, state


def newest_backup(project_dir: Path, stack: str) -> Path:
    """The newest backup of `stack` in <project>/.pulumi-backups (by the time in its name)."""
    safe = stack.replace("/", "_")
    found = sorted(
        (project_dir / BACKUP_DIR_NAME).glob(f"{safe}-v*-*.json"),
        key=lambda p: (p.name.rsplit("-", 1)[-1], p.stat().st_mtime),
    )
    if not found:
        raise UserError(
            f"no state backup of {stack} in {project_dir / BACKUP_DIR_NAME} (deploy and "
            "rollback write one before they change anything; CI keeps them as job artifacts)"
        )
    return found[-1]


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


def _target_images(plan: ConfigPlan) -> dict[str, str]:
    """The images the rollback deploys, from the config it restores."""
    apps = plan.desired.get(APPS_KEY)
    return images_from_apps(
        apps.object_value
        if apps and apps.object_value is not None
        else (apps.value if apps else "")
    )


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
    notifier: Notifier | None = None,
    rollouts: Rollouts | None = None,
) -> int:
    """Roll back; once the target is chosen, the outcome (rolled back, or failed) is posted to
    `notifier`; an operator's no is not. The update's rollouts are watched on the API server
    of `rollouts` and awaited to the end, as a deploy's are (stackctl/ops/watched.py)."""
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
    check_same_commit(target, head, lambda old, new: stack_file_only_changes(project_dir, old, new))
    # (3, planned before anything changes) config to restore
    before = backend.get_config()
    plan = plan_config_restore(target, before)

    images = _target_images(plan)

    def notify(event: Literal["rolled-back", "rollback-failed"], reason: str) -> None:
        if notifier is not None:
            notifier.send(
                Notice(
                    event=event,
                    stack=stack,
                    reason=reason,
                    images=images,
                    rolled_back_to=target_version,
                )
            )

    try:
        _restore_and_up(
            backend,
            console,
            project_dir=project_dir,
            plan=plan,
            before=before,
            policy=(packs, pack_configs),
            versions=(target_version, current_version),
            message=rollback_message(target_version, current_version, head[:7], images),
            assume_yes=assume_yes,
            now=now,
            rollouts=rollouts,
        )
    except Declined:
        raise
    except OperationFailed as exc:
        notify("rollback-failed", str(exc))
        raise
    notify(
        "rolled-back",
        f"stackctl rollback from v{current_version} to v{target_version} succeeded",
    )
    console.print(
        f"rolled {stack} back to v{target_version}. Pulumi.{stack_short_name(stack)}.yaml now "
        "holds that config: commit it, or the next deploy re-applies the previous config"
    )
    return 0


def _restore_and_up(
    backend: StackBackend,
    console: Console,
    *,
    project_dir: Path,
    plan: ConfigPlan,
    before: dict[str, ConfigValue],
    policy: tuple[list[str], list[str]],
    versions: tuple[int, int],
    message: str,
    assume_yes: bool,
    now: Callable[[], datetime],
    rollouts: Rollouts | None,
) -> None:
    """Back up the state, restore the target's config, preview, confirm, up."""
    stack = backend.stack_name
    target_version, current_version = versions
    # (2) backup of the current state, before any change
    path = write_backup(
        backup_path(project_dir, stack, current_version, now()), backend.export_state()
    )
    console.print(f"backup of {stack} v{current_version} state: {path}")

    # (3) restore config
    _apply_config_plan(backend, console, plan, target_version)

    # (5) preview, confirm, up
    if not _preview_rollback(backend, console, policy, target_version, assume_yes):
        _restore_previous(backend, plan, before)
        raise Declined(
            f"rollback of {stack} cancelled by the operator; config restored, nothing deployed"
        )

    outcome = watched_update(console, backend, stack, message, policy, rollouts)
    if outcome.result != "succeeded":
        raise OperationFailed(
            f"rollback of {stack} to v{target_version} ended with result {outcome.result!r}; "
            f"the stack config now holds v{target_version}'s values, state backup: {path}"
        )
