"""`deploy`, `history` and `rollback`: stack operations on Pulumi's Automation API.

The command logic (`run_deploy`, `run_history`, `run_rollback`) takes a `StackBackend`, so it is
tested with an in-memory fake; the handlers wire it to `PulumiAutomationBackend`.

Update message contract (written by deploy and rollback, parsed back by history):

    appstack deploy <commit> images: web=repo/web:1.2.3,api=repo/api:4.5.6
    appstack rollback to v<N> from v<M> <commit> images: web=repo/web:1.2.2

`<commit>` is `git rev-parse --short HEAD` of the project dir (`unknown` outside git); images are
`appstack:apps.<service>.image` from Pulumi.<stack>.yaml, sorted by service, or `-` when none.

The commands live by concern: `stackctl.ops.operator` (console, confirmation, one-line engine
errors), `stackctl.ops.stacks` (stack names, files, messages), `stackctl.ops.history`,
`stackctl.ops.rollback`, `stackctl.ops.watched` (the update both deploy and rollback run, its
rollouts watched); deploy and the CLI wiring of all three are here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stackctl.errors import OperationFailed, UserError
from stackctl.ops import transition
from stackctl.ops.automation import (
    PulumiAutomationBackend,
    StackBackend,
)
from stackctl.ops.history import (
    describe_changes,
    run_history,
)
from stackctl.ops.images import apply_image_overrides, parse_image_overrides
from stackctl.ops.locks import clear_locks
from stackctl.ops.notify import Notice, Notifier
from stackctl.ops.operator import (
    Console,
    Declined,
    confirm,
    engine_step,
    require_confirmation_possible,
)
from stackctl.ops.recovery import (
    adopt_pending_creates,
    pending_operations,
    plan_resolution,
    refresh_arguments,
)
from stackctl.ops.rollback import (
    backup_state,
    newest_backup,
    run_rollback,
    write_backup,
)
from stackctl.ops.rollout_watch import Rollouts
from stackctl.ops.signatures import SignatureVerifier, signed_images_only
from stackctl.ops.stacks import (
    deploy_message,
    git_commit,
    keeps_production_rules,
    policy_arguments,
    read_stack_images,
    stack_environment,
    validate_stack_name,
)
from stackctl.ops.watched import watched_update

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# deploy


def run_deploy(
    backend: StackBackend,
    *,
    project_dir: Path,
    preview_only: bool = False,
    assume_yes: bool = False,
    refresh: bool = False,
    console: Console,
    images: Mapping[str, str] | None = None,
    notifier: Notifier | None = None,
    rollouts: Rollouts | None = None,
    backend_url: str | None = None,
    force_unlock: bool = False,
    verifier: SignatureVerifier | None = None,
    check: transition.Check | None = None,
) -> int:
    """Preview and up; a failed update (not a preview-only run, not an operator's no) is posted
    to `notifier`, and the failure is raised as it would be without it. `verifier` checks the
    `images`' signatures where the stack requires them (default: cosign). `check` (the
    handler's: `transition.refusals`) judges the change against the stack's state before the
    preview; a refusal changes nothing."""
    try:
        return _deploy(
            backend,
            project_dir=project_dir,
            preview_only=preview_only,
            assume_yes=assume_yes,
            refresh=refresh,
            console=console,
            images=images,
            rollouts=rollouts,
            locks=(backend_url, force_unlock),
            verifier=verifier,
            check=check,
        )
    except Declined:
        raise
    except OperationFailed as exc:
        if notifier is not None and not preview_only:
            deployed = {**read_stack_images(project_dir, backend.stack_name), **(images or {})}
            notifier.send(
                Notice(
                    event="deploy-failed",
                    stack=backend.stack_name,
                    reason=str(exc),
                    images=deployed,
                )
            )
        raise


def _deploy(
    backend: StackBackend,
    *,
    project_dir: Path,
    preview_only: bool,
    assume_yes: bool,
    refresh: bool,
    console: Console,
    images: Mapping[str, str] | None,
    rollouts: Rollouts | None = None,
    locks: tuple[str | None, bool] = (None, False),
    verifier: SignatureVerifier | None = None,
    check: transition.Check | None = None,
) -> int:
    stack = backend.stack_name
    environment = stack_environment(stack)
    if not preview_only:
        require_confirmation_possible(console, assume_yes, f"deploying {stack}")
    packs, pack_configs = policy_arguments(project_dir, environment)
    # Signed images only (stackctl/ops/signatures.py): before the config is written or the
    # engine runs, so a refused image changes nothing.
    signed_images_only(project_dir, stack, images or {}, console=console, verifier=verifier)
    # A running update's lock refuses this deploy at once; a dead one's is removed (locks.py).
    unlocked = clear_locks(
        locks[0],
        project_dir,
        stack,
        force_unlock=locks[1],
        say=console.print,
        confirm_unlock=lambda question: confirm(console, assume_yes, question),
    )
    # --image: the images CI built, set in the stack config for this update (stackctl/ops/images.py)
    override = apply_image_overrides(backend, images) if images else None
    for service, image in sorted((images or {}).items()):
        console.print(f"image {service}: {image}")
    for note in override.notes if override else ():
        console.print(note)

    state: Mapping[str, Any] | None = None
    if not preview_only:
        _, state = backup_state(backend, project_dir, console)
        resolve_pending(backend, state, rollouts, console)
    if check is not None:
        # The change against what the stack runs (stackctl/ops/transition.py): a rollout the
        # new namespace quota cannot hold is refused here, before the engine changes anything.
        deployed = state if state is not None else backend.export_state()
        transition.refuse(stack, check(project_dir, stack, deployed))

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
        raise Declined(f"deploy of {stack} cancelled by the operator; nothing changed")

    deployed = override.images if override else read_stack_images(project_dir, stack)
    message = deploy_message(git_commit(project_dir), deployed) + unlocked
    outcome = watched_update(console, backend, stack, message, (packs, pack_configs), rollouts)
    if outcome.result != "succeeded":
        raise OperationFailed(f"pulumi up on {stack} ended with result {outcome.result!r}")
    return 0


def resolve_pending(
    backend: StackBackend, state: Mapping[str, Any], rollouts: Rollouts | None, console: Console
) -> None:
    """Settle the pending operations an interrupted update left (stackctl/ops/recovery.py):
    say what was found; the pending creates whose object is in the cluster become resources of
    the state (`pulumi stack import` of the edited export), the others are cleared; then one
    `pulumi refresh` reads everything back."""
    pending = pending_operations(state)
    if not pending:
        return
    stack = backend.stack_name
    console.print(f"found {len(pending)} pending operation(s) of an interrupted update of {stack}:")
    for op in pending:
        console.print(f"  {op.describe()}")
    if rollouts is None:
        raise OperationFailed(
            f"{stack} has pending operations and there is no kubeconfig to check them against "
            "the cluster; set KUBECONFIG, or run `pulumi refresh` and answer for each pending "
            "create (docs/operations.md, When a deploy goes wrong)"
        )
    reader = rollouts.reader
    plan = plan_resolution(
        pending, lambda op: reader.exists(op.api_version, op.kind, op.namespace, op.name)
    )
    for urn, provider_id in plan.imports:
        console.print(f"  import {provider_id}: it reached the cluster ({urn})")
    for urn in plan.cleared:
        console.print(f"  clear  {urn}: it never reached the cluster")
    for urn in plan.refreshed:
        console.print(f"  refresh {urn}")
    if plan.imports:
        import_adopted(backend, adopt_pending_creates(state, plan))
    with engine_step(f"pulumi refresh of {stack}"):
        backend.run_refresh(refresh_arguments(stack, plan), on_output=console.print)
    console.print(f"pending operations of {stack} resolved")


def import_adopted(backend: StackBackend, state: Mapping[str, Any]) -> None:
    """`pulumi stack import` of `state` (secrets as exported: encrypted), from a file readable
    by the owner only, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="stackctl-adopt-") as tmp:
        path = write_backup(Path(tmp) / "state.json", state)
        with engine_step(f"pulumi stack import of {backend.stack_name}"):
            backend.import_state(path)


# --------------------------------------------------------------------------------------------
# CLI wiring

BackendFactory = Callable[[str, Path, bool], StackBackend]


def default_backend_factory(stack: str, project_dir: Path, create: bool) -> StackBackend:
    backend = PulumiAutomationBackend(stack, project_dir, create=create)
    if backend.settings.is_local_file_backend and keeps_production_rules(stack):
        print(
            f"warning: {stack_environment(stack)} stack on a local file backend "
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
        images=parse_image_overrides(args.image, environment=stack_environment(stack)),
        notifier=Notifier.from_environment(),
        rollouts=None if args.preview_only else Rollouts.for_stack(project_dir, stack),
        backend_url=getattr(getattr(backend, "settings", None), "backend_url", None),
        force_unlock=args.force_unlock,
        check=transition.refusals,
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
        notifier=Notifier.from_environment(),
        rollouts=Rollouts.for_stack(project_dir, stack),
    )


def run_restore(
    backend: Any, *, project_dir: Path, path: Path | None, assume_yes: bool, console: Console
) -> int:
    """Import a state backup (the newest of the stack unless `path`) after a confirmation."""
    stack = backend.stack_name
    require_confirmation_possible(console, assume_yes, f"restoring the state of {stack}")
    chosen = path or newest_backup(project_dir, stack)
    if not chosen.is_file():
        raise UserError(f"no such backup file: {chosen}")
    console.print(f"== restore {stack} state from {chosen}")
    if not confirm(console, assume_yes, f"Replace the state of {stack} with {chosen.name}?"):
        raise Declined(f"restore of {stack} cancelled by the operator; nothing changed")
    with engine_step(f"pulumi stack import of {stack}"):
        backend.import_state(chosen)
    console.print(
        f"state of {stack} restored from {chosen}; run `python -m stackctl deploy {stack} "
        "--preview-only` to compare it with the cluster"
    )
    return 0


def _handle_restore(args: argparse.Namespace) -> int:
    stack = validate_stack_name(args.stack)
    project_dir = _project_dir(args)
    # created if the backend lost it too: the import gives it its state back
    backend = BACKEND_FACTORY(stack, project_dir, True)
    return run_restore(
        backend,
        project_dir=project_dir,
        path=Path(args.file) if args.file else None,
        assume_yes=args.yes,
        console=Console.from_environment(),
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help="stack name: dev, staging, prod (or <org>/<stack>)")
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
    deploy.add_argument(
        "--force-unlock",
        action="store_true",
        help="break the lock of a running update of this stack (asks first; recorded in the "
        "update message); a lock whose process is gone is removed without it",
    )
    deploy.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="SERVICE=IMAGE",
        help="deploy this image (e.g. web=<repo>@sha256:<digest>; jenkins-agent=<repo>@sha256:... "
        "sets appstack:jenkins.pulumiAgentImage, by digest in prod): set in the stack config, "
        "recorded in history, restored by rollback; repeatable",
    )
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

    restore = subparsers.add_parser(
        "restore",
        help="restore a stack's state from its newest backup (or --file)",
        description="Import the newest state backup deploy or rollback wrote under "
        "<project>/.pulumi-backups (pulumi stack import), after a confirmation.",
    )
    _add_common(restore)
    restore.add_argument("--file", default=None, help="this backup instead of the newest")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    restore.set_defaults(handler=_handle_restore)
