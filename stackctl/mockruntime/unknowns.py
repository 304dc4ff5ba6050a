"""The mock runtime's `contains_unknowns`: the SDK's answers without the SDK's garbage."""

from __future__ import annotations

from typing import Any

from pulumi.output import Unknown


def contains_unknowns(val: Any) -> bool:
    """True if `val` is, or holds in its dicts and lists, an unknown: the answer of the SDK's
    `pulumi.runtime.rpc.contains_unknowns` (dict values and list items, each object visited
    once), without its garbage.

    The SDK's version defines a recursive closure on every call, a reference cycle (function,
    cell, annotations) that only the cyclic collector frees, and calls it for every
    `_OutputData` it makes (pulumi/output.py `__post_init__`): about 150,000 such objects in a
    render of 50 services, three quarters of all the garbage a render leaves and about a tenth
    of its time spent collecting them. The SDK looks it up as a module attribute at each call
    (pulumi/output.py `contains_unknowns`, pulumi/runtime/rpc.py `serialize_property`), so
    `engine.mocked_runtime` swaps it in while it runs and puts the SDK's back after.
    """
    if isinstance(val, Unknown):
        return True
    if not isinstance(val, (dict, list)):
        return False
    # Depth-first over dict values and list items, each object once (by id), as the SDK does;
    # the answer, whether an Unknown is reachable, does not depend on the order.
    seen: set[int] = set()
    pending: list[Any] = [val]
    while pending:
        value = pending.pop()
        if isinstance(value, Unknown):
            return True
        if id(value) in seen:
            continue
        seen.add(id(value))
        if type(value) is dict:
            pending.extend(value.values())
        elif isinstance(value, dict):
            pending.extend(value[key] for key in value)
        elif isinstance(value, list):
            pending.extend(value)
    return False
