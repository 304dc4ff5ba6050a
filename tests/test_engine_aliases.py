"""Under the mocks a resource's alias URNs are not computed at construction
(stackctl/mockruntime/engine.py `alias_urn_unread`): the SDK's source shows nothing reads them when
the monitor takes alias specs, the mock monitor takes them, and the aliases sent are the SDK's."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime import settings
from pulumi.runtime.proto import resource_pb2

from stackctl import mockruntime
from stackctl.mockruntime import engine
from stackctl.mockruntime import urns as sdk_urns
from tests.sdk_oracle import sdk_functions

SDK_ROOT = Path(pulumi.__file__).parent
ALIAS_SPECS = resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS


def _functions_reading_aliases() -> set[tuple[str, str]]:
    """(module, function) of every read of a `_aliases` attribute in the SDK's source, except
    the constructor's own `self._aliases = []` / `self._aliases.append(...)`."""
    found: set[tuple[str, str]] = set()
    for path in SDK_ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not (isinstance(node, ast.Attribute) and node.attr == "_aliases"):
                    continue
                owner = node.value
                if (
                    isinstance(owner, ast.Name)
                    and owner.id == "self"
                    and function.name == "__init__"
                ):
                    continue  # Resource.__init__ filling its own list
                found.add((str(path.relative_to(SDK_ROOT)), function.name))
    return found


def test_the_sdk_reads_sdk_urns_only_in_all_aliases() -> None:
    assert _functions_reading_aliases() == {("runtime/resource.py", "all_aliases")}


def test_the_sdk_calls_all_aliases_only_without_alias_specs() -> None:
    tree = ast.parse((SDK_ROOT / "runtime" / "resource.py").read_text())
    callers = [
        function
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        and any(
            isinstance(node, ast.Call) and getattr(node.func, "id", None) == "all_aliases"
            for node in ast.walk(function)
        )
    ]
    assert [function.name for function in callers] == ["prepare_aliases"]
    (branch,) = [
        node
        for node in ast.walk(callers[0])
        if isinstance(node, ast.If) and ast.unparse(node.test) == "supports_alias_specs"
    ]
    in_specs_branch = [n for stmt in branch.body for n in ast.walk(stmt)]
    assert not any(
        getattr(getattr(n, "func", None), "id", None) == "all_aliases" for n in in_specs_branch
    )


def test_the_mock_monitor_takes_alias_specs() -> None:
    with mockruntime.mocked_runtime("appstack", "dev"):
        assert settings.monitor_supports_feature(ALIAS_SPECS)


class Holder(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("appstack:test:Holder", name, None, opts)


def program(drop_alias_specs: bool) -> Any:
    def run() -> None:
        if drop_alias_specs:  # a monitor without alias specs: the SDK computes URNs itself
            settings.SETTINGS.monitor_features.discard(ALIAS_SPECS)
        holder = Holder("holder", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")]))
        # a typed class adds aliases of its own (the API versions the kind moved from)
        k8s.apps.v1.Deployment(
            "web",
            metadata={"name": "web"},
            spec={"selector": {"matchLabels": {"a": "b"}}, "template": {}},
            opts=pulumi.ResourceOptions(parent=holder, aliases=[pulumi.Alias(name="web-old")]),
        )

    return run


Sent = dict[str, tuple[list[bytes], list[str]]]


@contextmanager
def aliases_sent() -> Iterator[Sent]:
    """Per resource name: the alias specs and the alias URNs its registration sends."""
    sent: Sent = {}
    register = engine.InlineMonitor.RegisterResource

    def record(self: engine.InlineMonitor, request: Any) -> Any:
        specs = [a.SerializeToString(deterministic=True) for a in request.aliases]
        sent[request.name] = (specs, sorted(request.aliasURNs))
        return register(self, request)

    engine.InlineMonitor.RegisterResource = record  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        engine.InlineMonitor.RegisterResource = register  # type: ignore[method-assign]


def sent_by_ours_and_the_sdks(drop_alias_specs: bool) -> tuple[Sent, Sent]:
    """The aliases the program's registrations send under the mock runtime, and under it with
    the SDK's own functions."""
    with aliases_sent() as ours:
        mockruntime.capture(program(drop_alias_specs), project="appstack", stack="dev")
    with sdk_functions(), aliases_sent() as sdks:
        mockruntime.capture(program(drop_alias_specs), project="appstack", stack="dev")
    return ours, sdks


def test_with_alias_specs_the_aliases_sent_are_the_sdks() -> None:
    ours, sdks = sent_by_ours_and_the_sdks(drop_alias_specs=False)
    assert ours == sdks
    specs, urns = ours["web"]
    assert len(specs) == 4 and not urns  # its own alias and the Deployment's three API versions


def test_with_alias_specs_no_alias_urn_is_computed() -> None:
    made: list[pulumi.Resource] = []

    def run() -> None:
        holder = Holder("holder", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")]))
        made.append(holder)

    mockruntime.capture(run, project="appstack", stack="dev")
    assert [type(alias) for alias in made[0]._aliases] == [sdk_urns.AliasURNNotComputed]


def test_without_alias_specs_the_sdk_computes_the_urns_sent() -> None:
    ours, sdks = sent_by_ours_and_the_sdks(drop_alias_specs=True)
    assert ours == sdks
    specs, urns = ours["web"]
    assert not specs and urns  # full URNs, computed by the SDK
    # all_aliases' rule: N of its own + M of the parent's * (1 + N): 4 + 1 * 5
    assert len(urns) == 9
