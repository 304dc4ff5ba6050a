"""The three renderings of a diff: an aligned terminal table, JSON and Markdown (PR comments).

Every rendering is built from `Change` fields only (paths, reasons, risk texts), none of which
holds a Secret value.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from stackctl.diff.compare import ACTIONS, Change

MAX_FIELDS = 4
TABLE_FIELDS_WIDTH = 60


def _object(change: Change) -> str:
    return "/".join(p for p in (change.kind, change.namespace, change.name) if p)


def _fields(change: Change, width: int | None = None) -> str:
    """Changed fields, forcing ones first; cut to `width` characters with a "+N more"."""
    shown = change.fields[:MAX_FIELDS]
    while width is not None and len(shown) > 1 and len(", ".join(shown)) > width:
        shown = shown[:-1]
    more = len(change.fields) - len(shown)
    return ", ".join(shown) + (f", +{more} more" if more > 0 else "")


def _flags(change: Change) -> list[str]:
    flags = []
    if change.restarts_pods:
        flags.append("pods restart")
    if change.changes_traffic:
        flags.append("traffic moves")
    return flags


def summary_line(changes: Sequence[Change]) -> str:
    if not changes:
        return "no changes"
    counts = Counter(c.action for c in changes)
    parts = [f"{counts[a]} to {a}" for a in ACTIONS if counts[a]]
    rolls = [c.name for c in changes if c.restarts_pods]
    traffic = [c.name for c in changes if c.changes_traffic]
    if rolls:
        parts.append("pods restart: " + ", ".join(rolls))
    if traffic:
        parts.append("traffic moves: " + ", ".join(traffic))
    parts.append(f"{sum(len(c.risks) for c in changes)} risk(s)")
    return "; ".join(parts)


def as_json(changes: Sequence[Change]) -> str:
    return json.dumps([c.as_json() for c in changes], indent=2)


def as_table(changes: Sequence[Change], title: str) -> str:
    lines = [title, ""]
    if not changes:
        return "\n".join([*lines, "no changes"])
    rows = [("ACTION", "OBJECT", "FIELDS", "NOTES")]
    for c in changes:
        rows.append(
            (
                c.action,
                _object(c),
                _fields(c, TABLE_FIELDS_WIDTH) or "-",
                "; ".join(_flags(c)) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        lines.append(
            "  ".join(col.ljust(widths[i]) for i, col in enumerate(row[:3])) + "  " + row[3]
        )
    explained = [c for c in changes if c.reasons]
    if explained:
        lines += ["", "why:"]
        for c in explained:
            lines += [f"  {c.action} {_object(c)}"] + [f"    - {r}" for r in c.reasons]
    risky = [c for c in changes if c.risks]
    if risky:
        lines += ["", "RISKS (exit 3):"]
        for c in risky:
            lines += [f"  {_object(c)}"] + [f"    ! {r}" for r in c.risks]
    lines += ["", summary_line(changes)]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def as_markdown(changes: Sequence[Change], title: str) -> str:
    risky = [c for c in changes if c.risks]
    verdict = ":warning: risky change (exit 3)" if risky else ":white_check_mark: no risk flags"
    lines = [f"### {_md(title)}", "", f"{verdict}: {_md(summary_line(changes))}", ""]
    if not changes:
        return "\n".join(lines).rstrip() + "\n"
    lines += ["| Action | Object | Fields | Notes |", "|---|---|---|---|"]
    for c in changes:
        notes = _flags(c) + [f"**{r.split(':', 1)[0]}**" for r in c.risks]
        lines.append(
            f"| {c.action} | `{_md(_object(c))}` | {_md(_fields(c)) or '-'} | "
            f"{_md(', '.join(notes)) or '-'} |"
        )
    if risky:
        lines += ["", "**Risks**", ""]
        for c in risky:
            lines += [f"- `{_md(_object(c))}`: {_md(r)}" for r in c.risks]
    explained = [c for c in changes if c.reasons]
    if explained:
        lines += ["", "<details><summary>Why</summary>", ""]
        for c in explained:
            lines += [f"- {c.action} `{_md(_object(c))}`: " + _md("; ".join(c.reasons))]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
