"""Structured stack config as one `pulumi config set --path` entry per leaf (issue 27 item 3).

`pulumi config set --secret --path 'appstack:secrets.web.API_TOKEN' ...` stores each secret leaf
of an object as its own `secure:` value; `pulumi config set-all --json` of a secret object
stores the whole object as one encrypted blob instead, and the stack file changes shape. So a
secret object is written back leaf by leaf (`set-all --path`), each leaf secret where the stack
file held it as `secure:`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def stack_file_config(path: Path) -> dict[str, Any]:
    """The `config:` of a stack file as stored (secure leaves as `{"secure": ciphertext}`);
    {} when the file is missing or unreadable."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    found = doc.get("config") if isinstance(doc, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _secure(value: Any) -> bool:
    """A stack file's encrypted leaf (config/value.go `isSecureValue`)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str)


def _key(segment: str | int) -> str:
    """One property-path segment, bracketed: `["web"]`, `[0]` (resource.ParsePropertyPath)."""
    return f"[{segment}]" if isinstance(segment, int) else f"[{json.dumps(segment)}]"


def secret_leaf_paths(stored: Any, prefix: str = "") -> tuple[str, ...]:
    """Property paths of the `secure:` leaves of a value as the stack file stores it."""
    if _secure(stored):
        return (prefix,) if prefix else ()
    if isinstance(stored, dict):
        return tuple(
            p for k, v in sorted(stored.items()) for p in secret_leaf_paths(v, prefix + _key(k))
        )
    if isinstance(stored, list):
        return tuple(
            p for i, v in enumerate(stored) for p in secret_leaf_paths(v, prefix + _key(i))
        )
    return ()


def leaves(
    key: str, value: Any, secret: bool, secret_leaves: tuple[str, ...]
) -> dict[str, tuple[str, bool]]:
    """`{"<key>[\"web\"][\"K\"]": (text, secret)}` for every leaf of a structured value: secret
    where `secret_leaves` lists it, or, when the secret leaves are unknown, wherever the value
    is secret (never a secret written in clear)."""
    found: dict[str, tuple[str, bool]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, path + _key(str(k)))
        elif isinstance(node, list) and node:
            for i, v in enumerate(node):
                walk(v, path + _key(i))
        else:
            text = node if isinstance(node, str) else json.dumps(node)
            found[key + path] = (text, path in secret_leaves if secret_leaves else secret)

    walk(value, "")
    return found
