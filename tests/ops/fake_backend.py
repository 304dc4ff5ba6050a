"""An in-memory `StackBackend` and history records in the exact shape Pulumi produces.

Record shape: `updateInfoJSON` / `configValueJSON` in pulumi/pkg/cmd/pulumi/stack/stack_history.go
(what `pulumi stack history --json` prints), which the Python SDK parses into `UpdateSummary` in
.venv/lib/python3.11/site-packages/pulumi/automation/_stack.py (`Stack.history`: keys `version`,
`kind`, `startTime`, `message`, `environment`, `config`, `result`, `endTime`, `resourceChanges`;
times in `_DATETIME_FORMAT` "%Y-%m-%dT%H:%M:%S.%fZ"; a secret config value without
--show-secrets is `{"value": "[secret]", "secret": true}`, the sentinel `UpdateSummary` uses).
Environment metadata keys (`git.head`, `exec.kind`, ...) are the ones the CLI records.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from stackctl.ops.automation import (
    SECRET_SENTINEL,
    ConfigValue,
    OnOutput,
    PreviewOutcome,
    RefreshOutcome,
    UpOutcome,
)

HEAD = "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
OLD = "0123456789abcdef0123456789abcdef01234567"


def environment(commit: str | None = HEAD) -> dict[str, str]:
    env = {
        "exec.kind": "auto.local",
        "git.headName": "refs/heads/main",
        "git.dirty": "false",
        "git.author": "Ops Person",
        "git.author.email": "ops@example.com",
        "pulumi.version": "v3.200.0",
        "pulumi.os": "linux",
        "pulumi.arch": "amd64",
    }
    if commit is not None:
        env["git.head"] = commit
    return env


def plain(value: str) -> dict[str, Any]:
    return {"value": value, "secret": False}


def obj(value: Any) -> dict[str, Any]:
    # Structured config: the JSON text plus the parsed `objectValue` (configValueJSON).
    return {"value": json.dumps(value), "objectValue": value, "secret": False}


def secret() -> dict[str, Any]:
    return {"value": SECRET_SENTINEL, "secret": True}


def apps(web: str, api: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"web": {"image": f"registry.example.com/appstack/web:{web}"}}
    if api:
        out["api"] = {"image": f"registry.example.com/appstack/api:{api}"}
    return out


def record(
    version: int,
    *,
    kind: str = "update",
    result: str = "succeeded",
    message: str = "",
    commit: str | None = HEAD,
    config: dict[str, dict[str, Any]] | None = None,
    changes: dict[str, int] | None = None,
    minute: int = 0,
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "version": version,
        "kind": kind,
        "startTime": f"2026-11-20T10:{minute:02d}:05.000Z",
        "message": message,
        "environment": environment(commit),
        "config": config or {},
        "result": result,
        "endTime": f"2026-11-20T10:{minute:02d}:47.000Z",
        "resourceChanges": changes if changes is not None else {"same": 12},
    }
    return rec


def sample_history() -> list[dict[str, Any]]:
    """Newest first, like `pulumi stack history`.

    v1 update ok (other commit) | v2 update ok (HEAD) | v3 refresh | v4 failed update |
    v5 destroy | v6 update ok (HEAD, current).
    """

    def base() -> dict[str, dict[str, Any]]:
        return {"appstack:environment": plain("dev"), "appstack:dbPassword": secret()}

    return [
        record(
            6,
            message="appstack deploy 4f2a9c1 images: api=registry.example.com/appstack/api:2.0.0,"
            "web=registry.example.com/appstack/web:1.2.0",
            config={
                **base(),
                "appstack:apps": obj(apps("1.2.0", api="2.0.0")),
                "appstack:newKey": plain("x"),
                "appstack:apiToken": secret(),
            },
            changes={"create": 14, "update": 0, "same": 0},
            minute=50,
        ),
        record(5, kind="destroy", message="", changes={"delete": 12}, minute=40),
        record(
            4,
            result="failed",
            message="appstack deploy 4f2a9c1 images: web=registry.example.com/appstack/web:9.9.9",
            config={**base(), "appstack:apps": obj(apps("9.9.9"))},
            changes={"update": 1, "same": 11},
            minute=30,
        ),
        record(3, kind="refresh", message="", changes={"same": 12}, minute=20),
        record(
            2,
            message="appstack deploy 4f2a9c1 images: web=registry.example.com/appstack/web:1.1.0",
            config={
                **base(),
                "appstack:apps": obj(apps("1.1.0")),
                "appstack:featureX": plain("on"),
            },
            changes={"create": 2, "update": 1, "same": 9},
            minute=10,
        ),
        record(
            1,
            commit=OLD,
            message="appstack deploy 0123456 images: web=registry.example.com/appstack/web:1.0.0",
            config={**base(), "appstack:apps": obj(apps("1.0.0"))},
            changes={"create": 12},
            minute=0,
        ),
    ]


DB_PASSWORD = "s3cr3t-current-db-password"
API_TOKEN = "tok-current-api-token"


def current_config() -> dict[str, ConfigValue]:
    """The stack's config now (v6's), secrets in clear as `pulumi config --show-secrets` gives."""
    current_apps = apps("1.2.0", api="2.0.0")
    return {
        "appstack:environment": ConfigValue("dev"),
        "appstack:dbPassword": ConfigValue(DB_PASSWORD, secret=True),
        "appstack:apiToken": ConfigValue(API_TOKEN, secret=True),
        "appstack:apps": ConfigValue(json.dumps(current_apps), object_value=current_apps),
        "appstack:newKey": ConfigValue("x"),
    }


class FakeBackend:
    """`StackBackend` in memory; `calls` records the order of every operation."""

    def __init__(
        self,
        stack_name: str = "dev",
        *,
        records: list[dict[str, Any]] | None = None,
        config: dict[str, ConfigValue] | None = None,
        preview_changes: dict[str, int] | None = None,
        up_result: str = "succeeded",
        up_error: Exception | None = None,
        preview_error: Exception | None = None,
        backup_dir: Path | None = None,
    ) -> None:
        self._stack_name = stack_name
        self.records = copy.deepcopy(records if records is not None else sample_history())
        self.config = dict(config if config is not None else current_config())
        self.preview_changes = preview_changes or {"update": 1, "same": 11}
        self.up_result = up_result
        self.up_error = up_error
        self.preview_error = preview_error
        self.backup_dir = backup_dir
        self.calls: list[str] = []
        self.up_messages: list[str] = []
        self.preview_kwargs: list[dict[str, Any]] = []
        self.set_config_calls: list[dict[str, ConfigValue]] = []
        self.remove_config_calls: list[list[str]] = []
        self.config_at_up: dict[str, ConfigValue] | None = None
        self.backups_seen_at_first_change: list[Path] | None = None
        self.state: dict[str, Any] = {
            "version": 3,
            "deployment": {"manifest": {"time": "x"}, "resources": []},
        }
        self.refresh_args: list[list[str]] = []
        self.imported: list[dict[str, Any]] = []

    @property
    def stack_name(self) -> str:
        return self._stack_name

    def _changing(self) -> None:
        if self.backups_seen_at_first_change is None and self.backup_dir is not None:
            self.backups_seen_at_first_change = sorted(self.backup_dir.glob("*.json"))

    def _next_version(self) -> int:
        return max((int(r["version"]) for r in self.records), default=0) + 1

    def _config_record(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, cv in self.config.items():
            if cv.secret:
                out[key] = secret()
            elif cv.object_value is not None:
                out[key] = obj(cv.object_value)
            else:
                out[key] = plain(cv.value)
        return out

    def refresh(self, *, on_output: OnOutput) -> RefreshOutcome:
        self.calls.append("refresh")
        self._changing()
        on_output("Refreshing (dev):")
        rec = record(self._next_version(), kind="refresh", config=self._config_record())
        self.records.insert(0, rec)
        return RefreshOutcome(result="succeeded", summary=rec)

    def preview(
        self, *, policy_packs: list[str], policy_pack_configs: list[str], on_output: OnOutput
    ) -> PreviewOutcome:
        self.calls.append("preview")
        self.preview_kwargs.append(
            {"policy_packs": policy_packs, "policy_pack_configs": policy_pack_configs}
        )
        on_output("Previewing update (dev):")
        if self.preview_error is not None:
            raise self.preview_error
        return PreviewOutcome(change_summary=dict(self.preview_changes))

    def up(
        self,
        *,
        message: str,
        policy_packs: list[str],
        policy_pack_configs: list[str],
        on_output: OnOutput,
    ) -> UpOutcome:
        self.calls.append("up")
        self._changing()
        self.up_messages.append(message)
        self.config_at_up = dict(self.config)
        on_output("Updating (dev):")
        if self.up_error is not None:
            raise self.up_error
        rec = record(
            self._next_version(),
            result=self.up_result,
            message=message,
            config=self._config_record(),
            changes={"update": 1, "same": 11},
        )
        self.records.insert(0, rec)
        return UpOutcome(result=self.up_result, summary=rec)

    def history(self) -> list[dict[str, Any]]:
        self.calls.append("history")
        return copy.deepcopy(self.records)

    def export_state(self) -> dict[str, Any]:
        self.calls.append("export_state")
        return copy.deepcopy(self.state)

    def run_refresh(self, args: list[str], *, on_output: OnOutput) -> None:
        self.calls.append("run_refresh")
        self.refresh_args.append(list(args))
        state = dict(self.state)
        state["deployment"] = {**(state.get("deployment") or {}), "pending_operations": []}
        self.state = state

    def import_state(self, path: Path) -> None:
        """As `pulumi stack import` does: the file's state, its pending operations dropped
        (pkg/cmd/pulumi/stack/io.go "removing pending operation ... from snapshot")."""
        self.calls.append("import_state")
        doc = json.loads(path.read_text(encoding="utf-8"))
        self.imported.append(copy.deepcopy(doc))
        doc.setdefault("deployment", {})["pending_operations"] = []
        self.state = doc

    def get_config(self) -> dict[str, ConfigValue]:
        self.calls.append("get_config")
        return dict(self.config)

    def set_config(self, values: dict[str, ConfigValue]) -> None:
        self.calls.append("set_config")
        self._changing()
        self.set_config_calls.append(dict(values))
        self.config.update(values)

    def remove_config(self, keys: list[str]) -> None:
        self.calls.append("remove_config")
        self._changing()
        self.remove_config_calls.append(list(keys))
        for key in keys:
            self.config.pop(key, None)
