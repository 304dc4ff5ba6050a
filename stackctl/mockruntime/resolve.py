"""What a program returned, resolved as `Output.from_input(value)` resolves it, without an
Output per value.

`capture.capture` hands the caller the resolved value of whatever the program returned (a
render's stack outputs: every address, health URL and quota share). The SDK's way there is
`Output.from_input(returned).apply(...)` (pulumi/output.py), and `from_input` lifts every node
of the value into Outputs of its own: per Output it meets an apply and a second Output, per
non-empty dict an `Output.all` of its keys, an apply and an `Output.all` of its values, per
plain leaf a resolved Output. For the outputs of a 50-service render that is about a thousand
Outputs, each a task on the event loop: a fifth as many as its 605 objects make.

`resolved(value)` takes `from_input`'s steps node by node in one coroutine: it awaits an
Output's data where `from_input` awaits it, and answers what the SDK's Output would hold,
the value and whether it is known, by the same rules:

- an Output: its value resolved in turn (`apply(from_input, True)`), an unknown Output's
  value taken as the UNKNOWN sentinel unless it already holds one;
- an input type: its stored properties resolved and the type built from them, if all are
  known (`Output.all(**__dict__).apply(type)`);
- a non-empty dict: its keys resolved, then, if all are known, its values, keyed as keyword
  arguments are (`Output.all(*keys).apply(... Output.all(**values))`);
- a non-empty list: its items resolved; a non-empty tuple: its items resolved and made a
  tuple, if all are known;
- an awaitable: awaited, and its result resolved;
- anything else: itself;

and a value holding an unknown is never known (`_OutputData.__post_init__`). Where the SDK's
apply skips its function for an unknown input, the value is None. A fault of any Output
inside is raised, as awaiting the SDK's Output raises it.

`tests/test_engine_resolve.py` holds every answer to the SDK's `from_input`.
"""

from __future__ import annotations

from inspect import isawaitable
from typing import Any

from pulumi import _types
from pulumi.output import UNKNOWN, Output
from pulumi.runtime import rpc


async def resolved(value: Any) -> tuple[Any, bool]:
    """(value, known) of `Output.from_input(value)` once resolved."""
    if isinstance(value, Output):
        data = await value._data
        inner = data.value
        if not data.is_known and not rpc.contains_unknowns(inner):
            inner = UNKNOWN
        return await resolved(inner)
    kind = type(value)
    if _types.is_input_type(kind):
        found, known = await _resolved_keywords(value.__dict__)
        return _known_value(kind(**found) if known else None, known)
    if value and isinstance(value, dict):
        keys, keys_known = await _resolved_items(list(value))
        if not keys_known:
            return None, False
        values, known = await _resolved_keywords(
            _keywords(**dict(zip(keys, value.values(), strict=True)))
        )
        return _known_value(values, known)
    if value and isinstance(value, list):
        return _known_value(*await _resolved_items(value))
    if value and isinstance(value, tuple):
        items, known = await _resolved_items(list(value))
        return _known_value(tuple(items) if known else None, known)
    if isawaitable(value):
        return await resolved(await value)
    return _known_value(value, True)


async def _resolved_items(items: list[Any]) -> tuple[list[Any], bool]:
    """`Output.all(*items)`: each item resolved, known if every one is."""
    found: list[Any] = []
    known = True
    for item in items:
        value, item_known = await resolved(item)
        found.append(value)
        known = known and item_known
    return found, known


async def _resolved_keywords(items: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`Output.all(**items)`: each value resolved under its key, known if every one is."""
    values, known = await _resolved_items(list(items.values()))
    return dict(zip(items, values, strict=True)), known


def _keywords(**items: Any) -> dict[str, Any]:
    """The keyword arguments `Output.all(**values)` is called with: keys that are not strings
    raise its TypeError."""
    return items


def _known_value(value: Any, known: bool) -> tuple[Any, bool]:
    """The SDK's `_OutputData` rule: a value that holds an unknown is not known."""
    return value, known and not rpc.contains_unknowns(value)
