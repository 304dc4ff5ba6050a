"""Times in `pulumi stack history --json` (`startTime`, `endTime`), and the update numbers a
DIY backend leaves out (`number_updates`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# Format of `startTime`/`endTime` in `pulumi stack history --json`; the SDK parses it with the
# same pattern (`_DATETIME_FORMAT` in pulumi/automation/_stack.py).
HISTORY_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

__all__ = ["HISTORY_TIME_FORMAT", "format_history_time", "number_updates", "parse_history_time"]


def format_history_time(value: datetime) -> str:
    """A datetime in the history JSON format (Go prints milliseconds, `...T09:00:00.000Z`)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_history_time(value: str) -> datetime:
    """A history timestamp as an aware UTC datetime (tolerates a missing fraction)."""
    text = value.strip()
    for fmt in (HISTORY_TIME_FORMAT, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def number_updates(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of `pulumi stack history --json` (newest first) with their update numbers.

    The Pulumi Cloud backend numbers a stack's updates from 1; a DIY backend (`file://`, `s3://`,
    ...) never sets `UpdateInfo.Version` (pkg/backend/diy/backend.go builds the record without
    it), so every row says version 0, and `rollback --to N` and the backups' `v<N>` could not
    tell updates apart. Its records come newest first (pkg/backend/diy/state.go `getHistory`:
    files named `<stack>-<unix nanoseconds>.history.json`, listed in reverse), so the newest is
    number N and the oldest 1, as the Cloud numbers them. Records that carry numbers are kept."""
    if any(int(r.get("version") or 0) for r in records):
        return records
    total = len(records)
    return [{**r, "version": total - i} for i, r in enumerate(records)]
