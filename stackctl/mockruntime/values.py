"""Captured values in the mock runtime's wire form: a secret is a marked dict
(pulumi/runtime/rpc.py), which only this package reads or builds."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import rpc


def is_secret(value: Any) -> bool:
    """Whether a captured value is a secret (the SDK's `rpc.is_rpc_secret`)."""
    return bool(rpc.is_rpc_secret(value))


def unwrap_secret(value: Any) -> Any:
    """The value a captured secret holds; any other value as it is (`rpc.unwrap_rpc_secret`)."""
    return rpc.unwrap_rpc_secret(value)
