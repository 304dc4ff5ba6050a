"""`history`: a stack's updates as a table (version, time, kind, result, commit, changes,
images), newest first."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from stackctl.ops.automation import (
    StackBackend,
    UpOutcome,
)
from stackctl.ops.history_time import parse_history_time
from stackctl.ops.operator import Console, engine_step
from stackctl.ops.stacks import (
    images_from_message,
)

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


def record_update(
    console: Console,
    backend: StackBackend,
    stack: str,
    message: str,
    policy: tuple[list[str], list[str]],
) -> UpOutcome:
    """`pulumi up` with `message` (the history row's message), timed and summarised in one line."""
    packs, pack_configs = policy
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
    return outcome


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
