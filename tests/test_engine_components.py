"""A plain component's registration under the mocks (stackctl/mockruntime/components.py) leaves the
state the SDK's own `register_resource` / `register_resource_outputs` leave, the oracle: the
same URNs, the same registrations recorded by the mocks and stored by the monitor, the same
stack outputs, and the same fault when a parent, a registration or an output fails. Components
with any other option take the SDK's path, and are compared all the same."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import settings as sdk_settings

from components import config as config_model
from stackctl import mockruntime
from stackctl.bench import synthetic
from stackctl.mockruntime import components as mock_components
from stackctl.render.stack import render_config
from tests.sdk_oracle import sdk_functions

THING = "test:index:Thing"


class Part(pulumi.ComponentResource):
    """A component as the project writes them: type, name, no props, options, outputs."""

    def __init__(
        self,
        name: str,
        opts: pulumi.ResourceOptions | None,
        outputs: dict[str, Any] | None,
        props: dict[str, Any] | None = None,
    ) -> None:
        super().__init__("test:index:Part", name, props, opts)
        if outputs is not None:
            self.register_outputs(outputs)


def failing(error: Exception) -> pulumi.Output[Any]:
    async def fail() -> Any:
        raise error

    return pulumi.Output.from_input(fail())


@dataclass
class Run:
    """What a program run left: its outcome (the resolved outputs, or the fault), the first
    fault its RPCs reported, and, when it succeeded, the mocks' records, the monitor's store
    and the outputs sent for each component. (A failed run's partial state depends on what the
    scheduler ran before the fault; it is discarded with the run.)"""

    outcome: Any
    reported: Any
    registered: list[tuple[Any, ...]]
    stored: dict[str, tuple[Any, ...]]
    outputs_sent: list[tuple[str, Any]]


def run(program: Callable[[], dict[str, Any]]) -> Run:
    """Run `program` under the mocks; its returned dict (URNs, outputs) resolved."""
    seen: dict[str, Any] = {}
    sent: list[tuple[str, Any]] = []

    def wrapped() -> dict[str, Any]:
        seen["monitor"] = monitor = sdk_settings.get_monitor()
        seen["rpcs"] = sdk_settings._get_rpc_manager()
        answer = monitor.RegisterResourceOutputs

        def record(request: Any) -> Any:
            sent.append((request.urn, json_format.MessageToDict(request.outputs)))
            return answer(request)

        monitor.RegisterResourceOutputs = record
        return program()

    def reported() -> Any:
        fault = seen["rpcs"].unhandled_exception
        return None if fault is None else (type(fault).__name__, _no_address(str(fault)))

    try:
        captured = mockruntime.capture(wrapped, project="appstack", stack="dev")
    except Exception as exn:  # the run's fault is part of what is compared
        return Run((type(exn).__name__, _no_address(str(exn))), reported(), [], {}, [])
    return Run(
        outcome=captured.outputs,
        reported=reported(),
        registered=sorted(
            (r.type, r.name, repr(r.inputs), _no_address(r.options), r.custom, r.parent_type)
            for r in captured.resources
        ),
        stored={
            urn: (reg.urn, reg.id, repr(reg.state))
            for urn, reg in seen["monitor"].resources.items()
        },
        outputs_sent=sorted(sent, key=repr),
    )


def _no_address(value: Any) -> str:
    """`value` as text, objects' addresses left out (an Alias in the options, an Output named
    in a message)."""
    return re.sub(r" at 0x[0-9a-f]+", "", value if isinstance(value, str) else repr(value))


def both(program: Callable[[], dict[str, Any]]) -> tuple[Run, Run]:
    ours = run(program)
    with sdk_functions():
        sdks = run(program)
    return ours, sdks


# ---------------------------------------------------------------------------------------------
# Generated component trees
# ---------------------------------------------------------------------------------------------

OPTIONS = ("none", "protect", "unprotect", "retain", "depends_on", "alias", "props")
OUTPUTS = ("none", "empty", "urn", "secret", "child", "nested")


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, int | None, str, str]]:
    """Nodes (kind, parent index or None, option, outputs), each parented to an earlier one."""
    size = draw(st.integers(min_value=1, max_value=9))
    nodes = []
    for i in range(size):
        kind = draw(st.sampled_from(("component", "component", "custom")))
        parent = (
            draw(st.one_of(st.none(), st.integers(min_value=0, max_value=i - 1))) if i else None
        )
        nodes.append((kind, parent, draw(st.sampled_from(OPTIONS)), draw(st.sampled_from(OUTPUTS))))
    return nodes


def tree_program(nodes: list[tuple[str, int | None, str, str]]) -> Callable[[], dict[str, Any]]:
    def program() -> dict[str, Any]:
        made: list[pulumi.Resource] = []
        for i, (kind, parent_index, option, outputs) in enumerate(nodes):
            name = f"n{i}"
            parent = made[parent_index] if parent_index is not None else None
            opts = pulumi.ResourceOptions(
                parent=parent,
                protect={"protect": True, "unprotect": False}.get(option),
                retain_on_delete=True if option == "retain" else None,
                depends_on=[made[-1]] if option == "depends_on" and made else None,
                aliases=[pulumi.Alias(name=f"old-{name}")] if option == "alias" else None,
            )
            if kind == "custom":
                made.append(pulumi.CustomResource(THING, name, {"size": i}, opts))
                continue
            last = made[-1] if made else None
            registered = {
                "none": None,
                "empty": {},
                "urn": {"parent": parent.urn if parent else "root"},
                "secret": {"s": pulumi.Output.secret(name)},
                "child": {"last": last.urn if last else name},
                "nested": {"list": [{"n": i}, last.urn if last else None]},
            }[outputs]
            props = {"note": name} if option == "props" else None
            made.append(Part(name, opts, registered, props))
        return {f"n{i}": res.urn for i, res in enumerate(made)}

    return program


@given(trees())
@settings(max_examples=60, deadline=None)
def test_a_component_tree_leaves_the_sdks_state(nodes: list[Any]) -> None:
    ours, sdks = both(tree_program(nodes))
    assert ours == sdks
    if all(option != "depends_on" for _, _, option, _ in nodes):  # else it may form a cycle
        assert set(ours.outcome) == {f"n{i}" for i in range(len(nodes))}


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [ValueError("bad size"), AssertionError("no"), KeyError("k")])
def test_a_failed_parent_fails_its_components_as_in_the_sdk(error: Exception) -> None:
    """The parent's registration fails (an input that raises): the child component's URN fails
    with the SDK's message (a ValueError or AssertionError named with the resource)."""

    def program() -> dict[str, Any]:
        parent = pulumi.CustomResource(THING, "parent", {"size": failing(error)})
        child = Part("child", pulumi.ResourceOptions(parent=parent), {"x": 1})
        grandchild = Part("grandchild", pulumi.ResourceOptions(parent=child), None)
        return {"child": child.urn, "grandchild": grandchild.urn}

    ours, sdks = both(program)
    assert ours == sdks
    assert ours.outcome[0] == type(error).__name__


def test_a_failed_output_fails_the_run_as_in_the_sdk() -> None:
    def program() -> dict[str, Any]:
        part = Part("part", None, {"broken": failing(RuntimeError("no value"))})
        return {"part": part.urn}

    ours, sdks = both(program)
    assert ours == sdks
    assert ours.outcome == ("RuntimeError", "no value")


def test_an_output_the_sdk_cannot_serialize_fails_the_run_as_in_the_sdk() -> None:
    """Only serializing the outputs finds the fault: nothing else reads them."""

    def program() -> dict[str, Any]:
        part = Part("part", None, {"odd": {1, 2}})
        return {"part": part.urn}

    ours, sdks = both(program)
    assert ours == sdks
    assert ours.outcome[0] == "ValueError" and "unexpected input of type set" in ours.outcome[1]


@pytest.mark.parametrize("error", [LookupError("no such component"), ValueError("refused")])
def test_a_failed_registration_fails_the_run_as_in_the_sdk(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mocks raise for a component: the run fails with their error, by either path, even
    when nothing reads the component's URN; a component under it fails as in the SDK (a
    ValueError named with the resource)."""
    answer = mockruntime.RecordingMocks.new_resource

    def refuse(self: mockruntime.RecordingMocks, args: Any) -> Any:
        if args.name == "refused":
            raise error
        return answer(self, args)

    monkeypatch.setattr(mockruntime.RecordingMocks, "new_resource", refuse)

    def program() -> dict[str, Any]:
        root = Part("root", None, None)
        refused = Part("refused", pulumi.ResourceOptions(parent=root), None)
        Part("under-refused", pulumi.ResourceOptions(parent=refused), None)
        return {"root": root.urn}  # the fault reaches the run by the registration alone

    ours, sdks = both(program)
    assert ours == sdks
    assert ours.outcome[0] == type(error).__name__
    assert ours.reported == (type(error).__name__, str(error))


# ---------------------------------------------------------------------------------------------
# Where the direct path applies
# ---------------------------------------------------------------------------------------------


def test_every_resource_option_defaults_to_none() -> None:
    """`_is_plain` reads an option left at None as left at its default."""
    assert {key: value for key, value in vars(pulumi.ResourceOptions()).items() if value} == {}


def test_a_renders_components_all_take_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No component of a 3-service render reaches the SDK's `register_resource` (only the
    custom resources do), and the render is the SDK path's (tests/test_engine_wire.py)."""
    through_sdk: list[tuple[str, bool]] = []
    sdk_register = mock_components.SDK_REGISTER_RESOURCE

    def counted(res: Any, ty: str, name: str, custom: bool, *args: Any) -> None:
        through_sdk.append((ty, custom))
        sdk_register(res, ty, name, custom, *args)

    monkeypatch.setattr(mock_components, "SDK_REGISTER_RESOURCE", counted)
    result = render_config(config_model.load(synthetic(3)), "bench")
    components = [r for r in result.resources if not r.custom]
    assert len(components) >= 10
    assert through_sdk and all(custom for _, custom in through_sdk)


def test_the_sdks_functions_are_back_after_a_run() -> None:
    import pulumi.resource as pulumi_resource

    with mockruntime.mocked_runtime("appstack", "dev"):
        assert pulumi_resource.register_resource is mock_components.register_resource
    assert pulumi_resource.register_resource is sdk_resource.register_resource
    assert pulumi_resource.register_resource_outputs is sdk_resource.register_resource_outputs


def test_a_component_under_a_pending_parent_waits_for_it() -> None:
    """A component whose parent is still registering (a custom resource) takes the awaiting
    path: its URN is the one made from the parent's, once the parent's is known."""

    def program() -> dict[str, Any]:
        parent = pulumi.CustomResource(THING, "parent", {"size": 1})
        assert not parent.urn._data.done()  # type: ignore[attr-defined]  # still registering
        child = Part("child", pulumi.ResourceOptions(parent=parent), None)
        return {"child": child.urn}

    ours, sdks = both(program)
    assert ours == sdks
    assert ours.outcome["child"].endswith("test:index:Thing$test:index:Part::child")
