"""Enforcement levels per environment, read from the pack config files.

`policy/config/<environment>.json` is exactly what `pulumi preview --policy-pack policy
--policy-pack-config policy/config/<environment>.json` takes, so `stackctl check` and the
CrossGuard pack judge a stack with the same levels:

    {"all": "mandatory"}                                   every policy
    {"<policy>": "advisory"}                               one policy
    {"<policy>": {"enforcementLevel": "disabled", ...}}    one policy, with config properties

"all" applies first, then per-policy entries override it. A policy the file does not mention
keeps the pack default (advisory, as in `PolicyPack(enforcement_level=ADVISORY)`). "remediate"
reads as mandatory: stack policies cannot remediate, and pulumi_policy treats it so too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from .rules import PRODUCTION_RULES, RULE_NAMES, environments

Level = Literal["advisory", "mandatory", "disabled"]

CONFIG_DIR = Path(__file__).resolve().parent / "config"
PACK_DEFAULT_LEVEL: Level = "advisory"
_LEVELS: Mapping[str, Level] = {
    "advisory": "advisory",
    "mandatory": "mandatory",
    "remediate": "mandatory",
    "disabled": "disabled",
}


def config_path(environment: str, config_dir: Path = CONFIG_DIR) -> Path:
    """The pack config file of an environment; ValueError for an unknown environment."""
    if environment not in PRODUCTION_RULES:
        allowed = ", ".join(environments())
        raise ValueError(f"unknown environment {environment!r}; allowed: {allowed}")
    return config_dir / f"{environment}.json"


def _level(value: Any, where: str) -> Level | None:
    if isinstance(value, Mapping):
        if "enforcementLevel" not in value:
            return None  # config properties only; the level is unchanged
        value = value["enforcementLevel"]
    if isinstance(value, str) and value in _LEVELS:
        return _LEVELS[value]
    allowed = ", ".join(sorted(_LEVELS))
    raise ValueError(f"{where}: enforcement level {value!r} is not one of {allowed}")


def parse_levels(
    config: Mapping[str, Any],
    policy_names: Sequence[str] = RULE_NAMES,
    *,
    source: str = "policy pack config",
) -> dict[str, Level]:
    """Levels for every policy from a `--policy-pack-config` mapping."""
    unknown = sorted(set(config) - {"all", *policy_names})
    if unknown:
        known = ", ".join(["all", *policy_names])
        raise ValueError(f"{source}: unknown policy name(s) {', '.join(unknown)}; known: {known}")
    levels: dict[str, Level] = dict.fromkeys(policy_names, PACK_DEFAULT_LEVEL)
    if "all" in config:
        all_level = _level(config["all"], f"{source}: all")
        if all_level is not None:
            levels = dict.fromkeys(policy_names, all_level)
    for name in policy_names:
        if name in config:
            level = _level(config[name], f"{source}: {name}")
            if level is not None:
                levels[name] = level
    return levels


def load_levels(environment: str, config_dir: Path = CONFIG_DIR) -> dict[str, Level]:
    """Rule name -> "advisory" | "mandatory" | "disabled" for an environment (dev, staging,
    prod)."""
    path = config_path(environment, config_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ValueError(f"policy pack config {path} is missing") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"policy pack config {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"policy pack config {path} must be a JSON object")
    return parse_levels(cast(dict[str, Any], raw), source=str(path))
