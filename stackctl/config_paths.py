"""Structured stack config as one `pulumi config set --path` entry per leaf (issue 27 item 3).

`pulumi config set --secret --path 'appstack:secrets.web.API_TOKEN' ...` stores each secret leaf
of an object as its own `secure:` value; `pulumi config set-all --json` of a secret object
stores the whole object as one encrypted blob instead, and the stack file changes shape. So a
secret object is written back leaf by leaf (`set-all --path`), each leaf secret where the stack
file held it as `secure:`.
"""

from __future__ import annotations

import json
from typing import Any

REDACTED_LEAF = "[secret]"
"""What `pulumi config --json` (without --show-secrets) shows for a secure leaf of an object
(pkg/cmd/pulumi/config: values read through the blinding decrypter)."""


def _key(segment: str | int) -> str:
    """One property-path segment, bracketed: `["web"]`, `[0]` (resource.ParsePropertyPath)."""
    return f"[{segment}]" if isinstance(segment, int) else f"[{json.dumps(segment)}]"


def secret_leaf_paths(redacted: Any, prefix: str = "") -> tuple[str, ...]:
    """Property paths of the REDACTED_LEAF leaves of a redacted `objectValue`."""
    if isinstance(redacted, dict):
        return tuple(
            p for k, v in sorted(redacted.items()) for p in secret_leaf_paths(v, prefix + _key(k))
        )
    if isinstance(redacted, list):
        return tuple(
            p for i, v in enumerate(redacted) for p in secret_leaf_paths(v, prefix + _key(i))
        )
    return (prefix,) if redacted == REDACTED_LEAF and prefix else ()


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
