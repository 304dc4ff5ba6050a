"""Structured logging: one JSON object per line on stdout."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def log_event(event: str, level: str = "info", **fields: object) -> None:
    """Write one structured (JSON) log line to stdout."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record: dict[str, object] = {"ts": now, "level": level, "logger": "app.server"}
    record["event"] = event
    record.update(fields)
    print(json.dumps(record, separators=(",", ":")), flush=True)
