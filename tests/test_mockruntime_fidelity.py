"""Issue 25, item 3: the render's shortcuts change nothing. Each shipped stack (every
`Pulumi.<stack>.yaml`) and each release-strategy variant (the `release-*` cases of
`tests/render_digests.py`) is rendered once under Pulumi's mock runtime untouched
(`stackctl.mockruntime.untouched_runtime`: `pulumi.runtime.set_mocks` with the SDK's own
MockMonitor, no function replaced, the same mocks) and once with the shortcuts
(`mocked_runtime`): the written files byte for byte, the resource options, the stack outputs and
every registered resource must be the same. The SDK is the oracle, not a stored digest: when the
SDK pin moves, this test decides whether the shortcuts still hold.

The one normalization is the digests' own: a recorded alias is written as its repr, which holds
its memory address (` at 0x...`); the alias URNs themselves are held by `tests/test_urns.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pulumi.resource as pulumi_resource
import pytest
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc, settings

from components import config as config_model
from stackctl import mockruntime
from stackctl.render.stack import (
    REPO_ROOT,
    RenderResult,
    available_stacks,
    file_name,
    load_raw_config,
    render_config,
)
from stackctl.render.yaml_out import dump
from tests.conftest import Render
from tests.release.helpers import RELEASE_VARIANTS

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _cases() -> dict[str, tuple[Callable[[], dict[str, Any]], str]]:
    """Case name -> (raw config factory, stack name), as tests/render_digests.py names them."""
    found: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
        stack: (lambda stack=stack: load_raw_config(REPO_ROOT, stack), stack)  # type: ignore[misc]
        for stack in available_stacks(REPO_ROOT)
    }
    for name, raw in RELEASE_VARIANTS.items():
        found[f"release-{name}"] = (lambda raw=raw: raw, name)  # type: ignore[misc]
    return found


CASES = _cases()


def _json(value: Any) -> str:
    return _ADDRESS.sub("", json.dumps(value, sort_keys=True, default=repr))


def _as_written(result: RenderResult) -> dict[str, Any]:
    """Everything a render hands on: the files as `render.write` writes them, the options and
    outputs, and the registered resources (in a stable order: the SDK's scheduling orders
    registrations differently from run to run)."""
    resources = sorted(
        _json([r.type, r.name, r.custom, r.parent_type, r.options, r.inputs])
        for r in result.resources
    )
    return {
        "files": {file_name(o): dump(o) for o in result.objects},
        "options": _json(result.options),
        "outputs": _json(result.outputs),
        "resources": resources,
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_shortcuts_render_what_the_untouched_runtime_renders(case: str, render: Render) -> None:
    factory, stack = CASES[case]
    raw = factory()
    untouched = render_config(config_model.load(raw), stack, shortcuts=False)
    with_shortcuts = render(raw, stack)  # the render cache's copy, or a fresh shortcut render
    assert untouched.objects, "nothing rendered"
    expected, got = _as_written(untouched), _as_written(with_shortcuts)
    assert sorted(got["files"]) == sorted(expected["files"])
    for name, text in expected["files"].items():
        assert got["files"][name] == text, name
    assert got == expected


# --- the reference really is untouched --------------------------------------------------------

#: The SDK modules whose functions the shortcuts replace (`stackctl.mockruntime.engine`).
_SDK_MODULES = (sdk_resource, pulumi_resource, rpc, settings)


def _functions() -> dict[str, Any]:
    return {
        f"{module.__name__}.{name}": value
        for module in _SDK_MODULES
        for name, value in vars(module).items()
        if callable(value)
    }


def _seen_during(shortcuts: bool) -> tuple[dict[str, Any], type]:
    """The SDK's functions and the monitor's class while a program runs."""
    seen: list[tuple[dict[str, Any], type]] = []

    def program() -> dict[str, Any]:
        seen.append((_functions(), type(settings.get_monitor())))
        return {}

    mockruntime.capture(program, project="appstack", stack="dev", shortcuts=shortcuts)
    return seen[0]


@pytest.fixture
def sdk_functions() -> Iterator[dict[str, Any]]:
    yield _functions()


def test_the_untouched_runtime_replaces_nothing(sdk_functions: dict[str, Any]) -> None:
    functions, monitor = _seen_during(shortcuts=False)
    assert monitor is sdk_mocks.MockMonitor
    changed = sorted(k for k in sdk_functions if functions.get(k) is not sdk_functions[k])
    assert changed == []


def test_the_shortcuts_do_replace_sdk_functions(sdk_functions: dict[str, Any]) -> None:
    """The probe above would see a replacement: with the shortcuts it does."""
    functions, monitor = _seen_during(shortcuts=True)
    assert monitor is not sdk_mocks.MockMonitor
    changed = {k for k in sdk_functions if functions.get(k) is not sdk_functions[k]}
    assert {"pulumi.runtime.resource.create_urn", "pulumi.runtime.rpc.serialize_property"} <= (
        changed
    )
