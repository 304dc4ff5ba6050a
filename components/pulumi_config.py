"""Read the `appstack:*` keys from the running Pulumi engine into the raw mapping that
`components.config.load` validates. Used by __main__.py only; render reads the stack files.

The CLI's Python language host hands config to the program in the PULUMI_CONFIG environment
variable (a JSON object of `project:key` -> string); the Automation API's inline programs set it
in the runtime instead (`pulumi.runtime.set_all_config`). Both are read, the latter winning, the
same precedence `pulumi.Config` applies.
"""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime.config import CONFIG, get_config_env

from components.config import PROJECT


def engine_config() -> dict[str, Any]:
    """Every config value the engine passed, by full key."""
    return {**get_config_env(), **CONFIG.get()}


def raw_from_engine() -> dict[str, Any]:
    """Every `appstack:<key>`, JSON values decoded (objects, lists, numbers, booleans)."""
    raw: dict[str, Any] = {}
    prefix = f"{PROJECT}:"
    for full_key, value in engine_config().items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[key] = value
    return raw
