"""The mock runtime's wire conversions (stackctl/mockruntime/wire.py) answer as the SDK's own
functions, the oracle: `serialize_property`, `input_type_to_dict` and `deserialize_properties` of
pulumi/runtime/rpc.py and pulumi/_types.py, on generated values and on every registration a
render sends."""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi import _types
from pulumi.output import Unknown
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import rpc

from components import config as config_model
from stackctl import mockruntime
from stackctl.bench import synthetic
from stackctl.mockruntime import engine, wire
from stackctl.render.stack import render_config, render_stack
from tests.render_digests import digest
from tests.sdk_oracle import sdk_functions
from tests.tooling import SHIPPED_STACKS

SDK_SERIALIZE_PROPERTY = rpc.serialize_property


def run(coro: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def sdk_serialize(value: Any, typ: Any = None, transformer: Any = None) -> Any:
    return run(SDK_SERIALIZE_PROPERTY(value, [], None, None, transformer, typ))


def test_the_oracles_are_the_sdks_own_functions() -> None:
    assert SDK_SERIALIZE_PROPERTY.__module__ == "pulumi.runtime.rpc"
    assert wire.SDK_SERIALIZE_PROPERTY is SDK_SERIALIZE_PROPERTY
    assert wire.SDK_DESERIALIZE_PROPERTIES is rpc.deserialize_properties
    assert wire.SDK_DESERIALIZE_PROPERTY is rpc.deserialize_property
    assert _types.input_type_to_dict.__module__ == "pulumi._types"


# ---------------------------------------------------------------------------------------------
# Serializing plain values
# ---------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False),
    st.text(max_size=6),
)
# snake_case keys are translated by an input type's names (`min_ready_seconds` ->
# `minReadySeconds`), so they are drawn too
keys = st.one_of(st.text(max_size=6), st.sampled_from(["min_ready_seconds", "name", "replicas"]))
plain_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=25,
)
#: Annotations as the SDK's generated classes carry them (pulumi_kubernetes), and plain ones.
annotations = st.sampled_from(
    [
        None,
        Any,
        dict,
        typing.Mapping[str, pulumi.Input[str]],
        # as the generated classes spell them (`Optional[...]`, not `X | None`)
        typing.Optional[pulumi.Input[typing.Mapping[str, pulumi.Input[str]]]],  # noqa: UP045
        typing.Optional[pulumi.Input[k8s.apps.v1.DeploymentSpecArgs]],  # noqa: UP045
        typing.Optional[  # noqa: UP045
            pulumi.Input[typing.Sequence[pulumi.Input[k8s.core.v1.ContainerArgs]]]
        ],
        pulumi.Input[k8s.meta.v1.ObjectMetaArgs],
    ]
)


def upper(key: str) -> str:
    return key.upper()


@given(plain_values, annotations, st.sampled_from([None, upper]))
@settings(max_examples=400, deadline=None)
def test_a_plain_value_serializes_as_the_sdk_serializes_it(
    value: Any, typ: Any, transformer: Callable[[str], str] | None
) -> None:
    try:
        expected = sdk_serialize(value, typ, transformer)
    except AssertionError:  # the SDK rejects a list for a dict annotation: so must we
        with pytest.raises(AssertionError):
            wire.plain_property(value, typ, transformer)
        return
    assert wire.plain_property(value, typ, transformer) == expected


def test_input_types_serialize_as_the_sdk_serializes_them() -> None:
    spec = k8s.apps.v1.DeploymentSpecArgs(
        replicas=None,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": "web"}),
        min_ready_seconds=5,
        template={"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
    )
    meta = {"name": "web", "creation_timestamp": "t", "labels": {"a_b": "c"}, "annotations": None}
    for value, typ in [(spec, None), (meta, k8s.meta.v1.ObjectMetaArgs), ([spec, meta], list)]:
        assert wire.plain_property(value, typ) == sdk_serialize(value, typ)
    # the snake_case key of a dict annotated with an input type takes the type's Pulumi name
    assert wire.plain_property(meta, k8s.meta.v1.ObjectMetaArgs)["creationTimestamp"] == "t"


def test_what_is_not_plain_is_left_to_the_sdk() -> None:
    class Colour(str):
        pass

    for value in [Colour("red"), {"a": [pulumi.Output.from_input(1)]}, b"bytes", {1, 2}]:
        with pytest.raises(wire._NotPlain):
            wire.plain_property(value, None)


# ---------------------------------------------------------------------------------------------
# Input types read from the instance
# ---------------------------------------------------------------------------------------------


@pulumi.input_type
class OwnGetter:
    def __init__(self, size: int) -> None:
        pulumi.set(self, "size", size)

    @property
    @pulumi.getter
    def size(self) -> int:
        return pulumi.get(self, "size") * 2  # not the stored value: left to the SDK


@pulumi.input_type
class OtherName:
    def __init__(self, size: int) -> None:
        pulumi.set(self, "size", size)
        pulumi.set(self, "other", size + 1)

    @property
    @pulumi.getter
    def size(self) -> int:
        return pulumi.get(self, "other")  # a generated getter's shape, another entry


def test_a_generated_input_type_is_read_from_the_instance() -> None:
    assert wire._stored_names(k8s.meta.v1.ObjectMetaArgs) is not None
    assert ("min_ready_seconds", "minReadySeconds") in (
        wire._stored_names(k8s.apps.v1.DeploymentSpecArgs) or ()
    )


ARGS_CLASSES = (
    k8s.meta.v1.ObjectMetaArgs,
    k8s.core.v1.ContainerArgs,
    k8s.core.v1.PodSpecArgs,
    k8s.apps.v1.DeploymentSpecArgs,
)


@st.composite
def filled_args(draw: st.DrawFn) -> Any:
    """An input type with some properties set, in any order, some set again or to None."""
    cls = draw(st.sampled_from(ARGS_CLASSES))
    python_names = [python_name for python_name, _, _ in _types._py_properties(cls)]
    obj = object.__new__(cls)
    for name in draw(st.lists(st.sampled_from(python_names), max_size=12)):
        pulumi.set(obj, name, draw(st.one_of(st.none(), st.text(max_size=3), st.integers())))
    if draw(st.booleans()):
        obj.__dict__["not_a_property"] = "ignored"
    return obj


@given(filled_args())
@settings(max_examples=200, deadline=None)
def test_an_input_types_dict_is_the_sdks_in_its_order(obj: Any) -> None:
    expected = _types.input_type_to_dict(obj)
    assert list(wire.input_type_to_dict(obj).items()) == list(expected.items())


def test_an_input_type_with_a_getter_of_its_own_is_left_to_the_sdk() -> None:
    assert wire._stored_names(OwnGetter) is None
    assert wire.input_type_to_dict(OwnGetter(3)) == _types.input_type_to_dict(OwnGetter(3))
    assert wire.input_type_to_dict(OwnGetter(3)) == {"size": 6}
    assert wire._stored_names(OtherName) is None
    assert wire.input_type_to_dict(OtherName(3)) == _types.input_type_to_dict(OtherName(3))


@contextmanager
def input_types_compared() -> Iterator[list[type]]:
    """Every `wire.input_type_to_dict` answer of the block checked against the SDK's."""
    seen: list[type] = []
    ours = wire.input_type_to_dict

    def checked(obj: Any) -> dict[str, Any]:
        found = ours(obj)
        expected = _types.input_type_to_dict(obj)
        assert list(found.items()) == list(expected.items()), type(obj).__qualname__  # in order
        seen.append(type(obj))
        return found

    wire.input_type_to_dict = checked  # type: ignore[assignment]
    try:
        yield seen
    finally:
        wire.input_type_to_dict = ours  # type: ignore[assignment]


def test_every_input_type_of_the_renders_reads_as_the_sdk_reads_it() -> None:
    with input_types_compared() as seen:
        for stack in SHIPPED_STACKS:
            render_stack(stack)
    assert len(set(seen)) > 20  # metadata, specs, containers, probes, policies, ...
    assert all(wire._stored_names(cls) is not None for cls in set(seen))


# ---------------------------------------------------------------------------------------------
# Every registration of a render: the same requests as through the SDK's functions
# ---------------------------------------------------------------------------------------------


Sent = tuple[str, str, struct_pb2.Struct, list[str], dict[str, list[str]], list[Any]]


@contextmanager
def requests_recorded() -> Iterator[list[Sent]]:
    """What the monitor is sent: each registration's inputs, dependencies and aliases, and
    each component's outputs."""
    sent: list[Sent] = []
    register, outputs = (
        engine.InlineMonitor.RegisterResource,
        sdk_mocks.MockMonitor.RegisterResourceOutputs,
    )

    def record(self: engine.InlineMonitor, request: Any) -> Any:
        object_ = struct_pb2.Struct()
        object_.CopyFrom(request.object)
        deps = {k: sorted(v.urns) for k, v in request.propertyDependencies.items()}
        aliases = [alias.SerializeToString(deterministic=True) for alias in request.aliases]
        sent.append(
            (request.type, request.name, object_, sorted(request.dependencies), deps, aliases)
        )
        return register(self, request)

    def record_outputs(self: Any, request: Any) -> Any:
        object_ = struct_pb2.Struct()
        object_.CopyFrom(request.outputs)
        sent.append(("outputs", request.urn, object_, [], {}, []))
        return outputs(self, request)

    engine.InlineMonitor.RegisterResource = record  # type: ignore[method-assign]
    engine.InlineMonitor.RegisterResourceOutputs = record_outputs  # type: ignore[attr-defined]
    try:
        yield sent
    finally:
        engine.InlineMonitor.RegisterResource = register  # type: ignore[method-assign]
        del engine.InlineMonitor.RegisterResourceOutputs  # type: ignore[attr-defined]


RENDERS: dict[str, Callable[[], Any]] = {
    **{stack: (lambda stack=stack: render_stack(stack)) for stack in SHIPPED_STACKS},
    "synthetic-3": lambda: render_config(config_model.load(synthetic(3)), "bench"),
}


@pytest.mark.parametrize("case", sorted(RENDERS))
def test_a_render_sends_the_requests_the_sdks_functions_send(case: str) -> None:
    with requests_recorded() as ours:
        got = RENDERS[case]()
    with sdk_functions(), requests_recorded() as sdks:
        expected = RENDERS[case]()
    assert len(ours) > len(got.objects)
    assert by_resource(ours) == by_resource(sdks)
    assert digest(got) == digest(expected)  # files, options, outputs, resources


def by_resource(sent: list[Sent]) -> list[Sent]:
    """Requests by type and name (registration order follows the SDK's async scheduling)."""
    return sorted(sent, key=lambda request: request[:2])


def resolved(value: Any) -> asyncio.Future[Any]:
    future = asyncio.get_event_loop().create_future()
    future.set_result(value)
    return future


def test_outputs_in_inputs_send_what_the_sdk_sends() -> None:
    """Known, secret and unknown Outputs, nested in dicts, lists and input types, with the
    resources they depend on."""

    def program() -> None:
        first = pulumi.CustomResource("test:index:Thing", "first", {"size": 1})
        value, known = resolved("x"), resolved(False)
        unknown: pulumi.Output[str] = pulumi.Output(set(), value, known)  # as in a preview
        k8s.core.v1.ConfigMap(
            "config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=first.urn.apply(lambda _: "config"),
                labels={"a": "b", "from": first.id.apply(str)},
            ),
            data={
                "plain": "v",
                "secret": pulumi.Output.secret("s"),
                "unknown": unknown,
                "nested": pulumi.Output.from_input({"list": [first.urn, 2]}).apply(str),
            },
        )

    with requests_recorded() as ours:
        mockruntime.capture(program, project="appstack", stack="dev")
    with sdk_functions(), requests_recorded() as sdks:
        mockruntime.capture(program, project="appstack", stack="dev")
    assert by_resource(ours) == by_resource(sdks)
    config = next(sent[2] for sent in ours if sent[0].endswith("ConfigMap"))
    assert config["data"]["unknown"] == rpc.UNKNOWN
    assert config["data"]["secret"][rpc._special_sig_key] == rpc._special_secret_sig
    assert any(sent[4] for sent in ours if sent[0].endswith("ConfigMap"))


def test_the_sdks_functions_are_back_after_a_run() -> None:
    with mockruntime.mocked_runtime("appstack", "dev"):
        assert rpc.serialize_property is wire.serialize_property
        assert rpc.deserialize_properties is wire.deserialize_properties
    assert rpc.serialize_property is SDK_SERIALIZE_PROPERTY
    assert rpc.deserialize_properties is wire.SDK_DESERIALIZE_PROPERTIES
    assert rpc.deserialize_property is wire.SDK_DESERIALIZE_PROPERTY


# ---------------------------------------------------------------------------------------------
# Deserializing
# ---------------------------------------------------------------------------------------------

wire_values = st.recursive(
    st.one_of(scalars, st.just(rpc.UNKNOWN)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(keys, st.sampled_from(["__x", "__provider"])), inner, max_size=4),
        inner.map(rpc.wrap_rpc_secret),
    ),
    max_leaves=25,
)


def as_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


@given(
    st.dictionaries(keys, wire_values, max_size=5),
    st.sampled_from([None, False, True]),
    st.sampled_from([True, False]),
)
@settings(max_examples=400, deadline=None)
def test_a_struct_deserializes_as_the_sdk_deserializes_it(
    value: dict[str, Any], keep_unknowns: bool | None, keep_internal: bool
) -> None:
    struct = as_struct(value)
    got = wire.deserialize_properties(struct, keep_unknowns, keep_internal)
    expected = wire.SDK_DESERIALIZE_PROPERTIES(struct, keep_unknowns, keep_internal)
    assert _comparable(got) == _comparable(expected)
    for key in struct:  # one property at a time, as resolve_outputs reads the inputs
        assert _comparable(wire.deserialize_property(struct[key])) == _comparable(
            wire.SDK_DESERIALIZE_PROPERTY(struct[key])
        )


def _comparable(value: Any) -> Any:
    """Unknown() has no equality of its own."""
    if isinstance(value, Unknown):
        return "<unknown>"
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def test_a_struct_with_an_object_is_left_to_the_sdk() -> None:
    asset = as_struct({rpc._special_sig_key: rpc._special_asset_sig, "text": "x"})
    assert isinstance(wire.deserialize_properties(asset), pulumi.StringAsset)
    holder = as_struct({"a": {rpc._special_sig_key: rpc._special_asset_sig, "path": "f"}})
    assert isinstance(wire.deserialize_properties(holder)["a"], pulumi.FileAsset)
