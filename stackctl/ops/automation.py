"""A thin interface of ours over Pulumi's Automation API, so command logic is testable.

`StackBackend` is everything `stackctl.ops.deploy` needs from one stack; `PulumiAutomationBackend`
implements it with `pulumi.automation` (a `LocalWorkspace` over this repo's `Pulumi.yaml`), and
the tests implement it in memory.

History records are plain dicts in EXACTLY the JSON shape `pulumi stack history --json` emits
(`updateInfoJSON` / `configValueJSON` in pulumi/pkg/cmd/pulumi/stack/stack_history.go; the Python
SDK parses the same JSON into `UpdateSummary` in pulumi/automation/_stack.py):

    {"version": 3, "kind": "update", "startTime": "2026-11-23T09:00:00.000Z",
     "message": "...", "environment": {"git.head": "<sha>", "exec.kind": "auto.local", ...},
     "config": {"appstack:replicas": {"value": "2", "secret": false},
                "appstack:dbPassword": {"value": "[secret]", "secret": true}},
     "result": "succeeded", "endTime": "2026-11-23T09:01:10.000Z",
     "resourceChanges": {"create": 2, "update": 1, "same": 30}}

Backends: `PULUMI_BACKEND_URL` if set (prod must use a team backend: Pulumi Cloud or an
object-store `s3://` / `gs://` / `azblob://` URL), else a local file backend under
`<project_dir>/.pulumi-state`, meant for dev only. Credentials and the secrets passphrase
(`PULUMI_CONFIG_PASSPHRASE` / `PULUMI_CONFIG_PASSPHRASE_FILE`) reach the CLI only through the
inherited process environment: nothing here copies, logs or prints them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from stackctl.errors import OperationFailed, UserError
from stackctl.ops import config_paths
from stackctl.ops.engine import EngineCommand
from stackctl.ops.engine_errors import (
    EngineDiagnostics,
    EngineFailed,
    command_failure,
    stderr_line,
)
from stackctl.ops.history_time import format_history_time, number_updates
from stackctl.ops.stacks import stack_short_name

OnOutput = Callable[[str], None]

SECRET_SENTINEL = "[secret]"  # what history shows for a secret without --show-secrets
STATE_DIR_NAME = ".pulumi-state"
BACKEND_URL_ENV = "PULUMI_BACKEND_URL"


@dataclass(frozen=True, repr=False)
class ConfigValue:
    """One stack config value; `object_value` is the parsed value of structured config."""

    value: str
    secret: bool = False
    object_value: Any = field(default=None, compare=False)
    secret_leaves: tuple[str, ...] = field(default=(), compare=False)
    """Structured config: the property paths (`["web"]["API_TOKEN"]`) of the leaves the stack
    file holds as `secure:` values (`pulumi config set --secret --path`)."""

    def __repr__(self) -> str:
        shown = SECRET_SENTINEL if self.secret else repr(self.value)
        return f"ConfigValue({shown}, secret={self.secret})"


@dataclass(frozen=True)
class PreviewOutcome:
    change_summary: dict[str, int]  # op ("create", "update", "delete", "same", ...) -> count
    stdout: str = ""


@dataclass(frozen=True)
class UpOutcome:
    result: str  # "succeeded" | "failed" | "in-progress"
    summary: dict[str, Any]  # the new history record (same shape as `history()` items)
    outputs: dict[str, Any] = field(default_factory=dict)  # secret outputs redacted
    stdout: str = ""

    @property
    def resource_changes(self) -> dict[str, int]:
        changes = self.summary.get("resourceChanges") or {}
        return {str(k): int(v) for k, v in changes.items()}


@dataclass(frozen=True)
class RefreshOutcome:
    result: str
    summary: dict[str, Any]
    stdout: str = ""


class StackBackend(Protocol):
    """What stackctl's deploy/history/rollback need from one stack."""

    @property
    def stack_name(self) -> str: ...

    def refresh(self, *, on_output: OnOutput) -> RefreshOutcome: ...

    def preview(
        self,
        *,
        policy_packs: list[str],
        policy_pack_configs: list[str],
        on_output: OnOutput,
    ) -> PreviewOutcome: ...

    def up(
        self,
        *,
        message: str,
        policy_packs: list[str],
        policy_pack_configs: list[str],
        on_output: OnOutput,
    ) -> UpOutcome: ...

    def run_refresh(self, args: list[str], *, on_output: OnOutput) -> None:
        """`pulumi refresh` with these arguments (pending operations, recovery.py)."""
        ...

    def history(self) -> list[dict[str, Any]]:
        """Raw update records, newest first, secrets redacted (`pulumi stack history --json`)."""
        ...

    def export_state(self) -> dict[str, Any]:
        """The `pulumi stack export` document: {"version": 3, "deployment": {...}}."""
        ...

    def import_state(self, path: Path) -> None:
        """`pulumi stack import --file <path>`: the state becomes the file's (an export)."""
        ...

    def get_config(self) -> dict[str, ConfigValue]: ...

    def set_config(self, values: dict[str, ConfigValue]) -> None: ...

    def remove_config(self, keys: list[str]) -> None: ...


# --------------------------------------------------------------------------------------------
# Pure helpers (no CLI): workspace settings, record conversion, error lines.


@dataclass(frozen=True)
class WorkspaceSettings:
    """Everything the `LocalWorkspace` is built from, computed without touching the CLI."""

    work_dir: str
    backend_url: str
    backend_source: str  # "argument" | "env" | "default-file"
    env_vars: dict[str, str]

    @property
    def is_local_file_backend(self) -> bool:
        return self.backend_url.startswith("file://")


def default_file_backend_url(project_dir: Path) -> str:
    # `file://` + absolute path: the form `pulumi login file://<path>` documents.
    return "file://" + str((project_dir / STATE_DIR_NAME).resolve())


def workspace_settings(
    project_dir: Path | str,
    backend_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> WorkspaceSettings:
    """Backend: the explicit argument, else `PULUMI_BACKEND_URL`, else a file backend in the repo.

    Only non-secret settings go into `env_vars`; the passphrase and cloud credentials stay in the
    process environment, which the CLI subprocess inherits (`PulumiCommand.run` in _cmd.py).
    """
    env = os.environ if environ is None else environ
    work_dir = Path(project_dir).resolve()
    if backend_url:
        url, source = backend_url, "argument"
    elif env.get(BACKEND_URL_ENV):
        url, source = env[BACKEND_URL_ENV], "env"
    else:
        url, source = default_file_backend_url(work_dir), "default-file"
    env_vars = {BACKEND_URL_ENV: url, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    return WorkspaceSettings(
        work_dir=str(work_dir), backend_url=url, backend_source=source, env_vars=env_vars
    )


def local_workspace_options(settings: WorkspaceSettings) -> Any:
    """The `LocalWorkspaceOptions` for these settings (building it does not run the CLI)."""
    from pulumi import automation as auto

    return auto.LocalWorkspaceOptions(work_dir=settings.work_dir, env_vars=dict(settings.env_vars))


def op_map_to_dict(ops: Mapping[Any, Any] | None) -> dict[str, int]:
    """An SDK `OpMap` (keys are `OpType` str-enums or strings) as a plain op -> count dict."""
    out: dict[str, int] = {}
    for op, count in (ops or {}).items():
        name = str(op.value) if isinstance(op, Enum) else str(op)
        out[name] = int(count)
    return out


def summary_to_record(summary: Any) -> dict[str, Any]:
    """SDK `UpdateSummary` (pulumi/automation/_stack.py) -> the `stack history --json` dict."""
    config: dict[str, dict[str, Any]] = {}
    for key, cv in (summary.config or {}).items():
        if cv.secret:
            # Never carry a secret's clear text into our records, whatever the SDK returned.
            config[key] = {"value": SECRET_SENTINEL, "secret": True}
        else:
            config[key] = {"value": cv.value, "secret": False}
    record: dict[str, Any] = {
        "version": summary.version,
        "kind": summary.kind,
        "startTime": format_history_time(summary.start_time),
        "message": summary.message or "",
        "environment": dict(summary.environment or {}),
        "config": config,
        "result": summary.result,
    }
    if summary.end_time is not None:
        record["endTime"] = format_history_time(summary.end_time)
    if summary.resource_changes is not None:
        record["resourceChanges"] = op_map_to_dict(summary.resource_changes)
    return record


def config_set_all_json(values: Mapping[str, ConfigValue]) -> str:
    """Input for `pulumi config set-all --json` (the `pulumi config --json` shape)."""
    doc: dict[str, dict[str, Any]] = {}
    for key, cv in values.items():
        entry: dict[str, Any] = {"value": cv.value, "secret": cv.secret}
        if cv.object_value is not None:
            entry["objectValue"] = cv.object_value
        doc[key] = entry
    return json.dumps(doc, sort_keys=True)


# --------------------------------------------------------------------------------------------
# The real backend.


class PulumiAutomationBackend:
    """`StackBackend` over `pulumi.automation`, a `LocalWorkspace` on the project dir.

    The stack is selected lazily on first use (that is when the CLI first runs). With
    `create=True` a missing stack is created (deploy); otherwise it must exist.
    """

    def __init__(
        self,
        stack_name: str,
        project_dir: Path | str,
        backend_url: str | None = None,
        *,
        create: bool = False,
    ) -> None:
        self._stack_name = stack_name
        self.settings = workspace_settings(project_dir, backend_url)
        self._create = create
        self._stack: Any = None
        self._command: EngineCommand | None = None

    def interrupt(self) -> bool:
        """Ask the running CLI command to cancel (SIGINT: the engine stops the update cleanly);
        False when none runs."""
        return self._command.interrupt() if self._command is not None else False

    @property
    def stack_name(self) -> str:
        return self._stack_name

    @contextmanager
    def _cli(self, what: str, diagnostics: EngineDiagnostics | None = None) -> Iterator[None]:
        from pulumi.automation import errors as auto_errors

        try:
            yield
        except FileNotFoundError as exc:
            raise UserError(
                "the Pulumi CLI is not installed or not on PATH "
                "(https://www.pulumi.com/docs/install/); deploy, history and rollback need it"
            ) from exc
        except auto_errors.StackNotFoundError as exc:
            raise UserError(
                f"stack {self._stack_name!r} not found in backend {self.settings.backend_url}"
            ) from exc
        except auto_errors.ConcurrentUpdateError as exc:
            raise OperationFailed(
                f"{what}: another update of {self._stack_name} is in progress"
            ) from exc
        except auto_errors.CommandError as exc:
            lines = diagnostics.lines if diagnostics else []
            message = command_failure(what, exc, lines)
            raise EngineFailed(message, engine_said=bool(lines) or bool(stderr_line(exc))) from exc
        except RuntimeError as exc:
            # The built-in RuntimeError, not auto_errors.RuntimeError (a CommandError): raised by
            # Stack.preview/up/refresh when the CLI ends without a summary event
            # ("summary event never found", pulumi/automation/_stack.py, pulumi 3.272.0).
            said = "\n  ".join(
                [str(exc).strip() or "RuntimeError", *(diagnostics or EngineDiagnostics()).lines]
            )
            raise OperationFailed(f"{what} failed: {said}") from exc

    def _get_stack(self) -> Any:
        if self._stack is None:
            from pulumi import automation as auto

            if self.settings.is_local_file_backend:
                state_dir = Path(self.settings.backend_url.removeprefix("file://"))
                state_dir.mkdir(parents=True, exist_ok=True)
            opts = local_workspace_options(self.settings)
            with self._cli("starting the Pulumi CLI"):
                # every command under the engine guard, stoppable (stackctl/ops/engine.py)
                self._command = EngineCommand()
            opts.pulumi_command = self._command
            init = auto.create_or_select_stack if self._create else auto.select_stack
            with self._cli("selecting the stack"):
                self._stack = init(self._stack_name, work_dir=self.settings.work_dir, opts=opts)
        return self._stack

    def _run(self, what: str, args: list[str]) -> str:
        """One CLI command through the workspace's public `PulumiCommand.run`."""
        ws = self._get_stack().workspace
        with self._cli(what):
            result = ws.pulumi_command.run(args, ws.work_dir, dict(ws.env_vars))
        return str(result.stdout)

    def refresh(self, *, on_output: OnOutput) -> RefreshOutcome:
        stack = self._get_stack()
        diagnostics = EngineDiagnostics()
        with self._cli("pulumi refresh", diagnostics):
            res = stack.refresh(
                on_output=on_output, on_event=diagnostics.on_event, show_secrets=False
            )
        record = summary_to_record(res.summary)
        return RefreshOutcome(result=str(record["result"]), summary=record, stdout=res.stdout)

    def preview(
        self,
        *,
        policy_packs: list[str],
        policy_pack_configs: list[str],
        on_output: OnOutput,
    ) -> PreviewOutcome:
        stack = self._get_stack()
        diagnostics = EngineDiagnostics()
        with self._cli("pulumi preview", diagnostics):
            res = stack.preview(
                policy_packs=policy_packs or None,
                policy_pack_configs=policy_pack_configs or None,
                on_output=on_output,
                on_event=diagnostics.on_event,
            )
        return PreviewOutcome(change_summary=op_map_to_dict(res.change_summary), stdout=res.stdout)

    def up(
        self,
        *,
        message: str,
        policy_packs: list[str],
        policy_pack_configs: list[str],
        on_output: OnOutput,
    ) -> UpOutcome:
        stack = self._get_stack()
        diagnostics = EngineDiagnostics()
        with self._cli("pulumi up", diagnostics):
            res = stack.up(
                message=message,
                policy_packs=policy_packs or None,
                policy_pack_configs=policy_pack_configs or None,
                on_output=on_output,
                on_event=diagnostics.on_event,
                show_secrets=False,
            )
        record = summary_to_record(res.summary)
        outputs = {
            name: (SECRET_SENTINEL if out.secret else out.value)
            for name, out in (res.outputs or {}).items()
        }
        return UpOutcome(
            result=str(record["result"]), summary=record, outputs=outputs, stdout=res.stdout
        )

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs (`Stack.outputs()`: `pulumi stack output --json`); secret outputs
        are left out, so their values never reach `stackctl verify`'s output."""
        stack = self._get_stack()
        with self._cli("pulumi stack output"):
            found = stack.outputs()
        return {name: out.value for name, out in found.items() if not out.secret}

    def history(self) -> list[dict[str, Any]]:
        # The raw JSON rather than `Stack.history()`: UpdateSummary drops `objectValue`, which
        # rollback needs to restore structured config as objects. No --show-secrets, so secret
        # config has no value; fill in the sentinel exactly as UpdateSummary does.
        # `--page-size 0`: every record, not the CLI's newest 10 (stack_history.go; a DIY or
        # Cloud backend pages only when pageSize > 0: diy/state.go `getHistory`).
        args = ["stack", "history", "--json", "--page-size", "0", "--stack", self._stack_name]
        out = self._run("pulumi stack history", args)
        records: list[dict[str, Any]] = number_updates(json.loads(out or "[]"))
        for record in records:
            for cv in (record.get("config") or {}).values():
                if cv.get("secret") and "value" not in cv:
                    cv["value"] = SECRET_SENTINEL
        return records

    def export_state(self) -> dict[str, Any]:
        # Not `Stack.export_stack()`: LocalWorkspace adds --show-secrets there, and a backup must
        # keep secrets encrypted. `pulumi stack import --file <backup>` restores this document.
        out = self._run("pulumi stack export", ["stack", "export", "--stack", self._stack_name])
        doc: dict[str, Any] = json.loads(out)
        return doc

    def run_refresh(self, args: list[str], *, on_output: OnOutput) -> None:
        """`pulumi <args>` for a refresh the SDK's `Stack.refresh` cannot express
        (`--import-pending-creates`, stackctl/ops/recovery.py)."""
        ws = self._get_stack().workspace
        with self._cli("pulumi refresh"):
            ws.pulumi_command.run(list(args), ws.work_dir, dict(ws.env_vars), on_output=on_output)

    def import_state(self, path: Path) -> None:
        """`pulumi stack import --file <path>`: the stack's state becomes the file's (a backup
        written by export_state; secrets stay encrypted with the stack's secrets provider)."""
        self._run(
            "pulumi stack import",
            ["stack", "import", "--file", str(path), "--stack", self._stack_name],
        )

    def get_config(self) -> dict[str, ConfigValue]:
        # The command LocalWorkspace.get_all_config runs, keeping `objectValue`. Secret values
        # are held in memory only (needed to keep them on rollback); ConfigValue's repr hides them.
        out = self._run(
            "pulumi config", ["config", "--show-secrets", "--json", "--stack", self._stack_name]
        )
        raw: dict[str, dict[str, Any]] = json.loads(out or "{}")
        # Which leaves of an object are `secure:` in the stack file (set_config writes them
        # back leaf by leaf); the CLI's redacted listing elides secret objects entirely
        # (pkg/cmd/pulumi/config/config.go: `entry.ObjectValue = nil`), so read the file.
        stored = config_paths.stack_file_config(
            Path(self.settings.work_dir) / f"Pulumi.{stack_short_name(self._stack_name)}.yaml"
        )
        return {
            key: ConfigValue(
                value=str(cv.get("value", "")),
                secret=bool(cv.get("secret", False)),
                object_value=cv.get("objectValue"),
                secret_leaves=config_paths.secret_leaf_paths(stored.get(key))
                if cv.get("secret") and cv.get("objectValue") is not None
                else (),
            )
            for key, cv in raw.items()
        }

    def set_config(self, values: dict[str, ConfigValue]) -> None:
        if not values:
            return
        from pulumi import automation as auto

        stack = self._get_stack()
        plain = {k: v for k, v in values.items() if v.object_value is None}
        structured = {k: v for k, v in values.items() if v.object_value is not None}
        # A secret object goes back leaf by leaf (`set-all --path`), each secure leaf its own
        # `secure:` value as `pulumi config set --secret --path` wrote it; `set-all --json`
        # would store the whole object as one encrypted blob (issue 27 item 3).
        per_leaf = {k: v for k, v in structured.items() if v.secret or v.secret_leaves}
        as_json = {k: v for k, v in structured.items() if k not in per_leaf}
        leaves = {
            path: leaf
            for key, v in sorted(per_leaf.items())
            for path, leaf in config_paths.leaves(
                key, v.object_value, v.secret, v.secret_leaves
            ).items()
        }
        with self._cli("pulumi config set-all"):
            if plain:
                stack.set_all_config(
                    {k: auto.ConfigValue(value=v.value, secret=v.secret) for k, v in plain.items()}
                )
            if as_json:
                # Objects must stay objects in Pulumi.<stack>.yaml (render reads that file).
                stack.set_all_config_json(config_set_all_json(as_json))
            if per_leaf:
                stack.remove_all_config(sorted(per_leaf))  # no leaf of the old value stays
                stack.set_all_config(
                    {p: auto.ConfigValue(value=t, secret=sec) for p, (t, sec) in leaves.items()},
                    path=True,
                )

    def remove_config(self, keys: list[str]) -> None:
        if not keys:
            return
        stack = self._get_stack()
        with self._cli("pulumi config rm-all"):
            stack.remove_all_config(list(keys))
