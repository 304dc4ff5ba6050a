"""Read the `appstack:*` keys from the running Pulumi engine into the raw mapping that
`components.config.load` validates. Used by __main__.py only; render reads the stack files."""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime.config import CONFIG

from components.config import PROJECT


def raw_from_engine() -> dict[str, Any]:
    """Every `appstack:<key>` the engine passed, JSON values decoded (objects, lists, numbers)."""
    raw: dict[str, Any] = {}
    prefix = f"{PROJECT}:"
    for full_key, value in CONFIG.get().items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[key] = value
    return raw
