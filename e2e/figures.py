"""One home for `out/e2e-figures.json`: every tier and benchmark merges its figures into it.

Figures are benchmark readings (name -> number, stable dotted names), never test oracles. Each
writer (the pytest tiers' session end, `make bench-e2e`, `make e2e-node-bench`) merges what it
measured over what earlier tiers wrote, rounded to milliseconds, so one file holds the latest
reading of every figure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

FIGURES_FILE = Path("out/e2e-figures.json")

#: Engine command timings (e2e/engine.py `timings`) are named after the command, in seconds.
_COMMAND_PREFIXES = ("pulumi ", "rollback ")


def unit(name: str) -> str:
    """The unit a figure's name states, for the printout: `_s` seconds (and the engine's
    command timings), `_ms` milliseconds, `_percent`; counts, load averages and shares none."""
    if name.endswith("_ms"):
        return " ms"
    if name.endswith("_s") or name.startswith(_COMMAND_PREFIXES):
        return " s"
    if name.endswith("_percent"):
        return " %"
    return ""


def merge(found: Mapping[str, float], path: Path = FIGURES_FILE) -> Path:
    """Merge `found` into the figures file at `path` (created if missing or unreadable)."""
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    if not isinstance(current, dict):
        current = {}
    current.update({name: round(float(value), 3) for name, value in found.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
