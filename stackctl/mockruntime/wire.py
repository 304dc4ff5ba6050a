"""The mock runtime's wire conversions: the SDK's own answers for plain values, without a
coroutine per value.

The SDK turns every input of every resource into its wire form with `serialize_property`
(pulumi/runtime/rpc.py), a coroutine that calls itself for each dict value and list item and
runs some ten type tests on each, and turns every answer back with `deserialize_properties`,
which goes through protobuf's pure-Python `Struct` accessors value by value. Under the mocks
that is about a quarter of a render, and nearly all of it is spent on values that need no
awaiting at all: strings, numbers, booleans, None, and the dicts, lists and input types made of
them.

- `serialize_property` answers such a value in one synchronous walk that takes the SDK's own
  steps for it (the same type unwrapping, list element types, input-type names and key
  translation, through the SDK's own helpers). Each other part is left as a hole and answered
  afterwards, in the walk's order: an Output by the SDK's steps for an Output (await it,
  record its resources, mark a secret or an unknown), anything else (a resource, an asset, an
  awaitable, an enum, a value the SDK rejects) by the SDK's own function, whose recursion
  comes back here for that part's plain values. Awaiting happens only at those parts, as in
  the SDK.
- Generated input types (`*Args`) are read straight from the instance where every getter is
  the generated `pulumi.get(self, "<name>")` (`input_type_to_dict`).
- `deserialize_properties` / `deserialize_property` read the `Struct` and `ListValue`
  messages' fields directly and give a struct with a signature key (a secret, asset, archive,
  resource or output value) to the SDK's function.

`engine.mocked_runtime` puts these in place of the SDK's functions (module attributes of
pulumi.runtime.rpc, which the SDK reads at each call) while a program runs and puts the SDK's
back after. `tests/test_engine_wire.py` holds every answer to the SDK's.
"""

from __future__ import annotations

import typing
from collections import abc
from collections.abc import Callable
from typing import Any

import pulumi
from google.protobuf import struct_pb2  # type: ignore[import-untyped]  # no stubs pinned
from pulumi import _types
from pulumi.output import Output, Unknown
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2

#: The SDK's own functions, as imported (before any swap).
SDK_SERIALIZE_PROPERTY = rpc.serialize_property
SDK_DESERIALIZE_PROPERTIES = rpc.deserialize_properties
SDK_DESERIALIZE_PROPERTY = rpc.deserialize_property

_SCALARS = (str, int, float, bool, type(None))
_DICT_TYPES = (dict, typing.Dict, abc.Mapping, typing.Mapping)  # noqa: UP006  # as the SDK lists them
_MISSING = object()


class _NotPlain(Exception):
    """The value holds something only the SDK's own coroutine serializes."""


# ---------------------------------------------------------------------------------------------
# What the SDK derives from a type annotation, once per annotation
# ---------------------------------------------------------------------------------------------

_UNWRAPPED: dict[Any, Any] = {}
_ELEMENT_TYPES: dict[Any, Any] = {}
_UNIONS: dict[Any, bool] = {}
_MAPPINGS: dict[Any, tuple[bool, Callable[[str], str] | None, Callable[[str], Any]]] = {}
_INPUT_TYPES: dict[type, bool] = {}


def _cached(cache: dict[Any, Any], key: Any, derive: Callable[[Any], Any]) -> Any:
    try:
        found = cache.get(key, _MISSING)
    except TypeError:  # an unhashable annotation: derived every time, as the SDK does
        return derive(key)
    if found is _MISSING:
        found = cache[key] = derive(key)
    return found


def _no_type(key: str) -> None:
    return None


def _mapping_rules(typ: Any) -> tuple[bool, Callable[[str], str] | None, Callable[[str], Any]]:
    """For a dict value annotated `typ` (not a union): whether keys go through the caller's
    `input_transformer`, else the key translation (None: keys kept) and each value's type;
    the branches of the SDK's `serialize_property` for a Mapping."""
    if _types.is_input_type(typ):
        names = _types.input_type_py_to_pulumi_names(typ)
        types = _types.input_type_types(typ)
        return False, lambda key: names.get(key) or key, types.get
    origin = typing.get_origin(typ)
    if typ is dict or origin in _DICT_TYPES:
        args = typing.get_args(typ)
        if len(args) == 2 and args[0] is str:
            value_type = args[1]
            return False, None, lambda key: value_type
        return True, None, _no_type  # a dict annotation without (str, T): the caller's names
    return False, None, _no_type


def _unwrapped(typ: Any) -> Any:
    """An annotation as the SDK's `serialize_property` reads it: `Input[T]`, `Output[T]`,
    `Optional[T]` unwrapped to T, and `Any` taken as no annotation."""
    if typ is None:
        return None
    typ = _cached(_UNWRAPPED, typ, _types.unwrap_type)
    return None if typ is Any else typ


def _is_input_type(cls: type) -> bool:
    found: bool = _cached(_INPUT_TYPES, cls, _types.is_input_type)
    return found


def _stored_property(cls: type) -> None:
    """The shape of a generated input type's getter: `return pulumi.get(self, "<name>")`."""
    return pulumi.get(cls, "name")  # type: ignore[no-any-return]


_GETTER_CODE = _stored_property.__code__


def _stored_names(cls: type) -> tuple[tuple[str, str], ...] | None:
    """The (Python name, Pulumi name) of each property of input type `cls`, if every getter
    returns what `pulumi.set` stored under its Python name; else None.

    For such a class (not an output type, not a dict) `pulumi.get(self, name)` is
    `self.__dict__.get(name)` (pulumi/_types.py `get`), so the SDK's `input_type_to_dict`
    reads exactly those entries. A getter is taken for one of these only if its bytecode,
    names and constant are those of `_stored_property` for its own Python name, and its
    module's `pulumi` is this SDK; anything else (a deprecated property, a getter of its own)
    leaves the class to the SDK's function."""
    if _types.is_output_type(cls) or issubclass(cls, dict):
        return None
    names: list[tuple[str, str]] = []
    properties: tuple[tuple[str, str, property], ...] = _types._py_properties(cls)  # type: ignore[arg-type]  # an untyped functools.cache
    for python_name, pulumi_name, prop in properties:
        fget: Any = prop.fget
        code = getattr(fget, "__code__", None)
        if (
            code is None
            or _types._PULUMI_DEPRECATED_CALLABLE in fget.__dict__
            or code.co_code != _GETTER_CODE.co_code
            or code.co_names != _GETTER_CODE.co_names
            or code.co_consts[1:] != (python_name,)
            or fget.__globals__.get("pulumi") is not pulumi
        ):
            return None
        names.append((python_name, pulumi_name))
    return tuple(names)


_STORED_NAMES: dict[type, tuple[tuple[str, str], ...] | None] = {}


def input_type_to_dict(obj: Any) -> dict[str, Any]:
    """The SDK's `input_type_to_dict(obj)`: the properties set, by Pulumi name, None left out;
    read straight from the instance for a class of generated getters (`_stored_names`)."""
    cls = type(obj)
    names = _cached(_STORED_NAMES, cls, _stored_names)
    if names is None:
        return _types.input_type_to_dict(obj)
    stored = obj.__dict__
    found: dict[str, Any] = {}
    for python_name, pulumi_name in names:
        value = stored.get(python_name)
        if value is not None:
            found[pulumi_name] = value
    return found


# ---------------------------------------------------------------------------------------------
# Serializing
# ---------------------------------------------------------------------------------------------


class _Hole:
    """Where the walk left a value for the SDK's coroutine: `container[key]` is `value`'s
    answer, serialized with annotation `typ` under `property_key`."""

    __slots__ = ("container", "key", "property_key", "typ", "value")

    def __init__(
        self, container: Any, key: Any, value: Any, typ: Any, property_key: str | None
    ) -> None:
        self.container, self.key, self.value = container, key, value
        self.typ, self.property_key = typ, property_key


class _Walk:
    """One synchronous pass over a value: its plain parts answered as the SDK's
    `serialize_property` answers them, everything else left as a hole, in the SDK's order."""

    __slots__ = ("holes", "input_transformer")

    def __init__(self, input_transformer: Callable[[str], str] | None) -> None:
        self.input_transformer = input_transformer
        self.holes: list[_Hole] = []

    def value(self, value: Any, typ: Any, property_key: str | None) -> Any:
        typ = _unwrapped(typ)
        kind = type(value)
        if kind is list or kind is tuple:
            element_type = _cached(_ELEMENT_TYPES, typ, rpc._get_list_element_type)
            items: list[Any] = []
            for item in value:
                items.append(self.item(items, len(items), item, element_type, property_key))
            return items
        if kind in _SCALARS:
            return value
        if kind is dict:
            return self.mapping(value, typ, property_key)
        if _is_input_type(kind):
            types = _types.input_type_types(kind)
            found: dict[str, Any] = {}
            for key, item in input_type_to_dict(value).items():
                found[key] = self.item(found, key, item, types.get(key), property_key)
            return found
        raise _NotPlain

    def item(self, container: Any, key: Any, value: Any, typ: Any, property_key: str | None) -> Any:
        """`value`'s answer, or a placeholder recorded as a hole at `container[key]`."""
        try:
            return self.value(value, typ, property_key)
        except _NotPlain:
            self.holes.append(_Hole(container, key, value, typ, property_key))
            return None

    def mapping(self, value: dict[Any, Any], typ: Any, property_key: str | None) -> Any:
        translate: Callable[[str], str] | None = self.input_transformer
        get_type: Callable[[str], Any] = _no_type
        if typ is not None:
            if _cached(_UNIONS, typ, _types.is_discriminated_union):
                case = _types.reduce_discriminated_union(typ, value, _types._py_name_for)
                if case is not None:
                    typ = case
            callers_names, translate, get_type = _cached(_MAPPINGS, typ, _mapping_rules)
            if callers_names:
                translate = self.input_transformer
        result: dict[Any, Any] = {}
        for key in value:
            out_key = translate(key) if translate is not None else key
            result[out_key] = self.item(result, out_key, value[key], get_type(out_key), key)
        return result


def plain_property(
    value: Any, typ: Any, input_transformer: Callable[[str], str] | None = None
) -> Any:
    """What the SDK's `serialize_property(value, ..., input_transformer, typ)` returns for a
    value of plain parts; raises `_NotPlain` if any part needs the SDK's coroutine."""
    walk = _Walk(input_transformer)
    found = walk.value(value, typ, None)
    if walk.holes:
        raise _NotPlain
    return found


async def serialize_property(
    value: Any,
    deps: list[Any] | None,
    property_key: str | None,
    resource_obj: Any = None,
    input_transformer: Callable[[str], str] | None = None,
    typ: Any = None,
    keep_output_values: bool = False,
    exclude_resource_refs_from_deps: bool = False,
    return_protobuf_value: bool = False,
) -> Any:
    """The SDK's `serialize_property`: the plain parts of `value` in one synchronous walk, then
    each other part (an Output, a resource, ...) by the SDK's coroutine, in the SDK's order,
    with the same dependencies recorded."""
    if return_protobuf_value or settings.excessive_debug_output:
        return await SDK_SERIALIZE_PROPERTY(
            value,
            deps,
            property_key,
            resource_obj,
            input_transformer,
            typ,
            keep_output_values,
            exclude_resource_refs_from_deps,
            return_protobuf_value,
        )
    keep = keep_output_values and settings.monitor_supports_feature(
        resource_pb2.RESOURCE_MONITOR_FEATURE_OUTPUT_VALUES
    )
    walk = _Walk(input_transformer)
    answer: list[Any] = [None]
    answer[0] = walk.item(answer, 0, value, typ, property_key)
    for hole in walk.holes:
        if type(hole.value) is Output and not keep:
            found = await _output_value(
                hole.value, deps, hole.property_key, resource_obj, input_transformer, hole.typ
            )
        else:
            found = await SDK_SERIALIZE_PROPERTY(
                hole.value,
                deps,
                hole.property_key,
                resource_obj,
                input_transformer,
                hole.typ,
                keep_output_values,
                exclude_resource_refs_from_deps,
            )
        hole.container[hole.key] = found
    return answer[0]


async def _output_value(
    output: Output[Any],
    deps: list[Any] | None,
    property_key: str | None,
    resource_obj: Any,
    input_transformer: Callable[[str], str] | None,
    typ: Any,
) -> Any:
    """The SDK's `serialize_property` of an Output when output values are not kept (the mock
    monitor never keeps them): its value once resolved, its resources as dependencies, a
    secret marked as one, an unknown as the UNKNOWN sentinel."""
    typ = _unwrapped(typ)  # the SDK unwraps the annotation before it takes the Output's branch
    data = await output._data
    value_resources = data.resources
    if deps is not None:
        deps.extend(value_resources)
    promise_deps: list[Any] = []
    value = await serialize_property(
        None if rpc.contains_unknowns(data.value) else data.value,
        promise_deps,
        property_key,
        resource_obj,
        input_transformer,
        typ,
        keep_output_values=False,
    )
    if deps is not None:
        deps.extend(promise_deps)
    value_resources.update(promise_deps)
    secrets = data.is_secret and settings.monitor_supports_feature(
        resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS
    )
    if not data.is_known:
        return (
            {rpc._special_sig_key: rpc._special_secret_sig, "value": rpc.UNKNOWN}
            if secrets
            else rpc.UNKNOWN
        )
    if secrets:
        return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}
    return value


# ---------------------------------------------------------------------------------------------
# Deserializing
# ---------------------------------------------------------------------------------------------


def deserialize_properties(
    props_struct: struct_pb2.Struct,
    keep_unknowns: bool | None = None,
    keep_internal: bool | None = True,
) -> Any:
    """The SDK's `deserialize_properties`: a Struct as a dict, None values left out."""
    fields = props_struct.fields
    if rpc._special_sig_key in fields:
        return SDK_DESERIALIZE_PROPERTIES(props_struct, keep_unknowns, keep_internal)
    output: dict[str, Any] = {}
    for key in fields:
        if keep_internal is False and key.startswith("__") and key != "__provider":
            continue
        value = _from_value(fields[key], keep_unknowns, keep_internal)
        if value is not None:
            output[key] = value
    return output


def deserialize_property(
    value: Any, keep_unknowns: bool | None = None, keep_internal: bool | None = True
) -> Any:
    """The SDK's `deserialize_property` of a value as protobuf's Struct accessors give it."""
    if isinstance(value, struct_pb2.Struct):
        return _from_struct(value, keep_unknowns, keep_internal)
    if isinstance(value, struct_pb2.ListValue):
        return _from_list(value, keep_unknowns, keep_internal)
    return SDK_DESERIALIZE_PROPERTY(value, keep_unknowns, keep_internal)


def _from_value(
    value: struct_pb2.Value, keep_unknowns: bool | None, keep_internal: bool | None
) -> Any:
    which = value.WhichOneof("kind")
    if which == "string_value":
        text = value.string_value
        if text == rpc.UNKNOWN:
            return _unknown() if settings.is_dry_run() or keep_unknowns else None
        return text
    if which == "number_value":
        return value.number_value
    if which == "bool_value":
        return value.bool_value
    if which == "struct_value":
        return _from_struct(value.struct_value, keep_unknowns, keep_internal)
    if which == "list_value":
        return _from_list(value.list_value, keep_unknowns, keep_internal)
    if which == "null_value":
        return None
    raise ValueError("Value not set")  # protobuf's own error for a Value with no kind


def _unknown() -> Any:
    return Unknown()  # type: ignore[no-untyped-call]  # the SDK's class has no typed __init__


def _from_struct(
    struct: struct_pb2.Struct, keep_unknowns: bool | None, keep_internal: bool | None
) -> Any:
    props = deserialize_properties(struct, keep_unknowns, keep_internal)
    # a secret inside makes the whole dict secret, as the SDK pushes secretness up
    if isinstance(props, dict) and any(rpc.is_rpc_secret(v) for v in props.values()):
        return rpc.wrap_rpc_secret({k: rpc.unwrap_rpc_secret(v) for k, v in props.items()})
    return props


def _from_list(
    values: struct_pb2.ListValue, keep_unknowns: bool | None, keep_internal: bool | None
) -> Any:
    items = [_from_value(item, keep_unknowns, keep_internal) for item in values.values]
    if any(rpc.is_rpc_secret(item) for item in items):
        return rpc.wrap_rpc_secret([rpc.unwrap_rpc_secret(item) for item in items])
    return items
