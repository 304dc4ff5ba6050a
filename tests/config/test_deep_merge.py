"""`deep_merge` (components/config/base.py), the layering of defaults, stack config and app
config, by its rule: `override` on top of `base`, recursively for mappings; lists and scalars
replace; `base`'s key order, then `override`'s new keys; nothing mutable shared with either."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from components.config import deep_merge

keys = st.sampled_from(["a", "b", "c", "d"])
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=2)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)
mappings = st.dictionaries(keys, values, max_size=4)


def _containers(value: Any) -> list[Any]:
    """Every dict and list inside `value`, itself included."""
    if isinstance(value, dict):
        return [value, *(c for v in value.values() for c in _containers(v))]
    if isinstance(value, list):
        return [value, *(c for v in value for c in _containers(v))]
    return []


@given(mappings, mappings)
@settings(max_examples=300, deadline=None)
def test_override_lands_on_base_recursively_for_mappings_only(
    base: dict[str, Any], override: dict[str, Any]
) -> None:
    merged = deep_merge(base, override)
    assert list(merged) == [*base, *(k for k in override if k not in base)]
    for key, value in merged.items():
        if key not in override:
            assert value == base[key]
        elif isinstance(base.get(key), dict) and isinstance(override[key], dict):
            assert value == deep_merge(base[key], override[key])
        else:
            assert value == override[key]  # a list or scalar replaces


@given(mappings, mappings)
@settings(max_examples=200, deadline=None)
def test_the_merge_shares_nothing_mutable_with_its_inputs(
    base: dict[str, Any], override: dict[str, Any]
) -> None:
    before = copy.deepcopy((base, override))
    merged = deep_merge(base, override)
    inputs = {id(c) for c in _containers(base) + _containers(override)}
    assert not any(id(c) in inputs for c in _containers(merged))
    for container in _containers(merged):
        if isinstance(container, dict):
            container["mutated"] = True
        else:
            container.append("mutated")
    assert (base, override) == before


def test_a_nested_default_survives_an_override_beside_it() -> None:
    merged = deep_merge(
        {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}, "ports": [80]},
        {"resources": {"requests": {"cpu": "250m"}}, "ports": [8080]},
    )
    assert merged == {
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}},
        "ports": [8080],
    }
