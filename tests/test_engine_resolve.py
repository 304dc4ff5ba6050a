"""What a program returned, resolved by `stackctl.mockruntime.resolve.resolved`, is what the SDK's
own `Output.from_input` resolves it to (pulumi/output.py), the oracle: the value and whether it is
known, on generated values of Outputs (known, unknown, secret, nested), input types, dicts
(with Output keys), lists, tuples and awaitables; and a fault inside is raised as the SDK's
Output raises it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi import _types
from pulumi.output import UNKNOWN, Output, Unknown

from components import config as config_model
from stackctl import mockruntime
from stackctl.bench import synthetic
from stackctl.mockruntime import engine, resolve
from stackctl.render.stack import render_config


@pulumi.input_type
class PairArgs:
    """An input type of two properties, as generated SDKs declare them."""

    def __init__(self, left: Any = None, right: Any = None) -> None:
        if left is not None:
            pulumi.set(self, "left", left)
        if right is not None:
            pulumi.set(self, "right", right)

    @property
    @pulumi.getter
    def left(self) -> Any:
        return pulumi.get(self, "left")

    @property
    @pulumi.getter
    def right(self) -> Any:
        return pulumi.get(self, "right")


# A value is generated as a spec and built afresh for each side: an awaitable is awaited once.
Spec = tuple[Any, ...]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3))
leaves = st.one_of(
    scalars.map(lambda v: ("plain", v)),
    st.just(("plain", UNKNOWN)),
    st.just(("dict", [])),
    st.just(("list", [])),
    st.just(("tuple", [])),
)
words = st.one_of(
    st.text(max_size=2).map(lambda k: ("plain", k)),
    st.tuples(st.just("output"), st.text(max_size=2).map(lambda k: ("plain", k)), st.booleans()),
)
# a key that is no keyword: the SDK's TypeError (`Output.all(**values)`)
keys = st.one_of(words, st.integers(0, 2).map(lambda k: ("plain", k)))


def specs_of(keys: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
    return st.recursive(leaves, lambda inner: _containers(inner, keys), max_leaves=12)


def _containers(
    inner: st.SearchStrategy[Spec], keys: st.SearchStrategy[Spec]
) -> st.SearchStrategy[Spec]:
    return st.one_of(
        st.tuples(st.just("output"), inner, st.booleans()),  # known or not
        st.tuples(st.just("secret"), inner),
        st.tuples(st.just("dict"), st.lists(st.tuples(keys, inner), min_size=1, max_size=3)),
        st.tuples(st.just("list"), st.lists(inner, min_size=1, max_size=3)),
        st.tuples(st.just("tuple"), st.lists(inner, min_size=1, max_size=3)),
        st.tuples(st.just("await"), inner),
        st.tuples(st.just("args"), inner, inner),
        st.tuples(st.just("meta"), inner),
    )


def _output(value: Any, known: bool, secret: bool = False, fault: Exception | None = None) -> Any:
    async def data() -> Any:
        if fault is not None:
            raise fault
        return value

    def flag(answer: bool) -> asyncio.Future[bool]:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(answer)
        return done

    return Output(set(), data(), flag(known), flag(secret))


class Awaitable:
    """An awaitable that is no Output: awaiting it gives `value`."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # a generator: awaited, it returns at once


def build(spec: Spec, fault: Exception | None = None) -> Any:
    """The value `spec` describes; with `fault`, every Output in it raises that."""
    kind = spec[0]
    if kind == "plain":
        return spec[1]
    if kind == "output":
        return _output(build(spec[1], fault), spec[2], fault=fault)
    if kind == "secret":
        return _output(build(spec[1], fault), True, secret=True, fault=fault)
    if kind == "dict":
        return {build(k, fault): build(v, fault) for k, v in spec[1]}
    if kind == "list":
        return [build(item, fault) for item in spec[1]]
    if kind == "tuple":
        return tuple(build(item, fault) for item in spec[1])
    if kind == "await":
        return Awaitable(build(spec[1], fault))
    if kind == "args":
        return PairArgs(build(spec[1], fault), build(spec[2], fault))
    if kind == "meta":
        return k8s.meta.v1.ObjectMetaArgs(labels=build(spec[1], fault))
    raise AssertionError(kind)


def comparable(value: Any) -> Any:
    """A value in a form `==` compares: input types by type and stored properties, tuples
    apart from lists, the unknown sentinel by name."""
    if isinstance(value, Unknown):
        return "<unknown>"
    if _types.is_input_type(type(value)):
        return (type(value).__name__, comparable(value.__dict__))
    if isinstance(value, dict):
        return {"dict": [(comparable(k), comparable(v)) for k, v in value.items()]}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, tuple):
        return ("tuple", [comparable(v) for v in value])
    return value


def outcome(resolve_it: Callable[[], Any]) -> Any:
    """What resolving gives on a fresh event loop: (value, known), or the error raised."""
    loop = asyncio.new_event_loop()
    try:
        value, known = loop.run_until_complete(resolve_it())
        return "ok", comparable(value), known
    except Exception as exc:  # the SDK's own error is the expected answer
        return "error", type(exc), str(exc)
    finally:
        engine._cancel_pending(loop)  # the Outputs a fault left pending
        loop.close()


def sdk(spec: Spec, fault: Exception | None = None) -> Any:
    async def run() -> tuple[Any, bool]:
        data = await Output.from_input(build(spec, fault))._data
        return data.value, data.is_known

    return outcome(run)


def ours(spec: Spec, fault: Exception | None = None) -> Any:
    async def run() -> tuple[Any, bool]:
        return await resolve.resolved(build(spec, fault))

    return outcome(run)


@given(specs_of(keys))
@settings(max_examples=400, deadline=None)
def test_a_value_resolves_as_the_sdks_from_input_resolves_it(spec: Spec) -> None:
    assert ours(spec) == sdk(spec)


@given(specs_of(words))
@settings(max_examples=100, deadline=None)
def test_a_fault_inside_is_raised_as_the_sdk_raises_it(spec: Spec) -> None:
    """Every Output in the value raises the same fault, and every key is a keyword: of two
    different faults the SDK raises whichever of its tasks fails first, not the walk's first."""
    fault = ValueError("the provider failed")
    assert ours(spec, fault) == sdk(spec, fault)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # an unknown Output's value is taken as unknown: the whole value is not known
        (("list", [("plain", 1), ("output", ("plain", 2), False)]), ([1, "<unknown>"], False)),
        # an apply skipped for an unknown input leaves None
        (("tuple", [("output", ("plain", 2), False)]), (None, False)),
        (("dict", [(("output", ("plain", "k"), False), ("plain", 1))]), (None, False)),
        # secrets resolve to their values; Output keys to theirs
        (
            ("dict", [(("output", ("plain", "k"), True), ("secret", ("plain", 1)))]),
            ({"dict": [("k", 1)]}, True),
        ),
    ],
)
def test_the_sdks_rules_hold_in_both(spec: Spec, expected: tuple[Any, bool]) -> None:
    assert sdk(spec) == ("ok", *expected)
    assert ours(spec) == ("ok", *expected)


def test_a_renders_stack_outputs_are_what_the_sdks_from_input_resolves() -> None:
    """The outputs of a render of the 10-service stack, against the same program resolved by
    the SDK's own `Output.from_input` (the capture's former path)."""
    from components.stack import deploy

    cfg = config_model.load(synthetic(10))
    rendered = render_config(cfg, "bench").outputs
    by_sdk: dict[str, Any] = {}

    def program() -> Any:
        returned = deploy(cfg).as_dict()
        return Output.from_input(returned).apply(by_sdk.update)

    mockruntime.capture(program, project=config_model.PROJECT, stack="bench")
    assert rendered == by_sdk
    assert set(rendered["addresses"]) == set(synthetic(10)["apps"])
