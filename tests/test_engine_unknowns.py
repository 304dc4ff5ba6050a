"""The mock runtime's `contains_unknowns` (stackctl/mockruntime/unknowns.py) answers as the SDK's
own `pulumi.runtime.rpc.contains_unknowns`, the oracle, on any value the SDK hands it: nested dicts
and lists of plain values, unknowns, shared and self-containing objects."""

from __future__ import annotations

import gc
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.known_types import is_unknown

from stackctl.mockruntime import unknowns

SDK = rpc.contains_unknowns  # the SDK's, imported before any render swapped it

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=4),
    st.just(rpc.UNKNOWN),  # the wire sentinel: a plain string once deserialized
    st.builds(Unknown),  # pulumi.output.UNKNOWN's type: what both must find
)


class SubDict(dict[str, Any]):
    """A dict subclass (the SDK walks it by keys)."""


values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
        st.dictionaries(st.text(max_size=3), inner, max_size=4).map(SubDict),
        st.tuples(inner, inner),  # not walked by either
    ),
    max_leaves=25,
)


def test_the_oracle_is_the_sdks_own_function() -> None:
    assert SDK.__module__ == "pulumi.runtime.rpc" and SDK is not unknowns.contains_unknowns
    assert is_unknown(Unknown()) and SDK([{"a": Unknown()}])


@given(values)
@settings(max_examples=300, deadline=None)
def test_it_answers_as_the_sdk_on_any_value(value: Any) -> None:
    assert unknowns.contains_unknowns(value) == SDK(value)


@given(values, values)
@settings(max_examples=100, deadline=None)
def test_it_answers_as_the_sdk_on_shared_and_self_containing_values(a: Any, b: Any) -> None:
    shared: list[Any] = [a, b]
    value: dict[str, Any] = {"x": shared, "y": [shared, {"z": shared}]}
    value["self"] = value
    shared.append(value)
    assert unknowns.contains_unknowns(value) == SDK(value)


def test_it_leaves_no_cyclic_garbage() -> None:
    value = {"spec": [{"a": 1}, [2, "three"]], "status": None}
    gc.collect()
    gc.disable()
    try:
        for _ in range(100):
            unknowns.contains_unknowns(value)
        mine = gc.collect()
        for _ in range(100):
            SDK(value)
        theirs = gc.collect()
    finally:
        gc.enable()
    assert mine == 0
    assert theirs >= 100  # the case is real: the SDK's leaves a cycle per call
