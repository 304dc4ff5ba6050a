"""Times in `pulumi stack history --json` (`startTime`, `endTime`)."""

from __future__ import annotations

from datetime import UTC, datetime

# Format of `startTime`/`endTime` in `pulumi stack history --json`; the SDK parses it with the
# same pattern (`_DATETIME_FORMAT` in pulumi/automation/_stack.py).
HISTORY_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

__all__ = ["HISTORY_TIME_FORMAT", "format_history_time", "parse_history_time"]


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
