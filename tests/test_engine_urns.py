"""`stackctl.mockruntime.urns.create_urn` answers as the SDK's `create_urn` (the oracle): the same
value, known, not secret, with the same resources, for any name, type and parent; anything but
strings is the SDK's own answer."""

from __future__ import annotations

from typing import Any

import pulumi
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi.runtime import resource as sdk_resource

from stackctl import mockruntime
from stackctl.mockruntime import urns as sdk_urns

parts = st.text(max_size=12)
parents = st.one_of(
    st.none(),
    st.just(""),
    parts.map(lambda name: f"urn:pulumi:dev::appstack::appstack:app:AppService::{name}"),
    parts,  # a parent URN without "::": the SDK's slicing applies as it is
)


def answer(create: Any, *args: Any) -> dict[str, Any]:
    """What a URN Output resolves to, under the mocks (stack dev, project appstack)."""
    found: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        urn = create(*args)

        async def read() -> None:
            found.update(
                value=await urn.future(),
                known=await urn.is_known(),
                secret=await urn.is_secret(),
                resources=await urn.resources(),
            )

        return pulumi.Output.from_input(read())

    mockruntime.capture(program, project="appstack", stack="dev")
    return found


def test_the_oracle_is_the_sdks_own_function() -> None:
    assert sdk_urns.SDK_CREATE_URN.__module__ == "pulumi.runtime.resource"
    assert sdk_urns.SDK_CREATE_URN is not sdk_urns.create_urn
    with mockruntime.mocked_runtime("appstack", "dev"):
        assert sdk_resource.create_urn is sdk_urns.create_urn
    assert sdk_resource.create_urn is sdk_urns.SDK_CREATE_URN


@given(parts, parts, parents, st.sampled_from([None, "other-project"]))
@settings(max_examples=60, deadline=None)
def test_a_urn_of_strings_is_the_sdks(
    name: str, type_: str, parent: str | None, project: str | None
) -> None:
    args = (name, type_, parent, project)
    expected = answer(sdk_urns.SDK_CREATE_URN, *args)
    assert answer(sdk_urns.create_urn, *args) == expected
    assert expected["known"] and not expected["secret"]


def test_a_urn_of_outputs_is_left_to_the_sdk() -> None:
    calls: list[tuple[Any, ...]] = []
    original = sdk_urns.SDK_CREATE_URN

    def sdk(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    sdk_urns.SDK_CREATE_URN = sdk
    try:
        got = answer(
            lambda: sdk_urns.create_urn(pulumi.Output.from_input("web"), "appstack:app:AppService")
        )
    finally:
        sdk_urns.SDK_CREATE_URN = original
    assert len(calls) == 1
    assert got["value"] == "urn:pulumi:dev::appstack::appstack:app:AppService::web"


segments = st.text(st.characters(blacklist_characters=":"), min_size=1, max_size=12)


@given(segments, segments, segments)
@settings(max_examples=30, deadline=None)
def test_the_urn_grammar_reads_and_builds_the_sdks_urns(name: str, type_: str, child: str) -> None:
    """The one URN grammar (`split_urn`, `qualified_type`, `relative_urn`) that diff's recorder
    and the URN snapshot tests use reads the SDK's URNs back into what built them."""
    parent = answer(sdk_urns.SDK_CREATE_URN, name, type_)["value"]
    assert sdk_urns.split_urn(parent) == (type_, name)
    assert parent == sdk_urns.full_urn("dev", "appstack", type_, name)
    urn = answer(sdk_urns.SDK_CREATE_URN, child, "t:m:Child", parent)["value"]
    qualified = sdk_urns.qualified_type(type_, "t:m:Child")
    assert sdk_urns.split_urn(urn) == (qualified, child)
    assert urn.endswith("::" + sdk_urns.relative_urn(qualified, child))
