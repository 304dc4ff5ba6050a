"""The mock runtime's monitor (stackctl/mockruntime/engine.py `InlineMonitor`) answers as Pulumi's
own `MockMonitor`, the oracle: the same response for any registration of JSON values and secrets,
built in the program's thread; anything else still takes the SDK's path in a worker thread."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2

from stackctl import mockruntime
from stackctl.mockruntime import engine
from stackctl.render.stack import render_stack
from tests.sdk_oracle import sdk_functions

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
        inner.map(rpc.wrap_rpc_secret),  # a secret: {sig: secret, value: ...}
    ),
    max_leaves=30,
)
states = st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=6)


def sdk_serialized(state: dict[str, Any]) -> struct_pb2.Struct:
    """What the SDK's MockMonitor sends back for `state` (pulumi/runtime/mocks.py)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(state, {}))
    finally:
        loop.close()


@given(states)
@settings(max_examples=300, deadline=None)
def test_plain_struct_is_what_the_sdk_serializes(state: dict[str, Any]) -> None:
    assert engine.plain_struct(state) == sdk_serialized(state)


def test_plain_struct_refuses_what_is_not_a_json_value() -> None:
    with pytest.raises(TypeError, match=r"mock state .spec. is not a JSON value: holds a tuple"):
        engine.plain_struct({"spec": {"ports": (80, 443)}})
    with pytest.raises(TypeError, match=r"mock state 'data' is not a JSON value: holds a int"):
        engine.plain_struct({"data": [{1: "a"}]})


class Echo(sdk_mocks.Mocks):
    """Echoes inputs as state, as RecordingMocks does, and notes the answering thread."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def new_resource(self, args: sdk_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.threads.append(threading.current_thread().name)
        return f"{args.name}-id", {**args.inputs, "echoed": True}

    def call(self, args: sdk_mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def request(name: str, inputs: dict[str, Any]) -> resource_pb2.RegisterResourceRequest:
    obj = struct_pb2.Struct()
    obj.update(inputs)
    return resource_pb2.RegisterResourceRequest(
        type="kubernetes:core/v1:ConfigMap",
        name=name,
        parent="urn:pulumi:dev::appstack::appstack:app:AppService::web",
        custom=True,
        object=obj,
    )


def read_request(name: str, inputs: dict[str, Any]) -> resource_pb2.ReadResourceRequest:
    properties = struct_pb2.Struct()
    properties.update(inputs)
    return resource_pb2.ReadResourceRequest(
        id="dev",
        type="pulumi:pulumi:StackReference",
        name=name,
        parent="urn:pulumi:dev::appstack::pulumi:pulumi:Stack::appstack-dev",
        properties=properties,
    )


#: The requests answered inline, each with a request of a plain state `inputs`.
ANSWERED_INLINE = {"RegisterResource": request, "ReadResource": read_request}


@pytest.mark.parametrize("method", sorted(ANSWERED_INLINE))
@given(inputs=st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=6))
@settings(max_examples=100, deadline=None)
def test_a_plain_request_gets_the_sdk_monitors_response_inline(
    method: str, inputs: dict[str, Any]
) -> None:
    make_request = ANSWERED_INLINE[method]
    sdk_monitor, mocks = sdk_mocks.MockMonitor(Echo()), Echo()
    ours = engine.InlineMonitor(mocks)
    # make_urn reads the stack and project; the SDK's monitor runs with the SDK's functions
    with sdk_functions(), mockruntime.mocked_runtime("appstack", "dev"):
        expected = getattr(sdk_monitor, method)(make_request("cm", inputs))
    with mockruntime.mocked_runtime("appstack", "dev"), engine.InlineFirstExecutor() as executor:
        got = executor.submit(getattr(ours, method), make_request("cm", inputs)).result()
    assert got == expected
    assert ours.resources.keys() == sdk_monitor.resources.keys()
    assert mocks.threads == [threading.current_thread().name]


def test_a_read_holding_objects_takes_the_sdks_path_in_a_worker() -> None:
    mocks = Echo()
    monitor = engine.InlineMonitor(mocks)
    asset = {rpc._special_sig_key: rpc._special_asset_sig, "text": "x"}
    with mockruntime.mocked_runtime("appstack", "dev"), engine.InlineFirstExecutor() as executor:
        response = executor.submit(monitor.ReadResource, read_request("a", {"v": asset})).result()
    assert response.urn.endswith("::a")
    assert len(mocks.threads) == 1 and mocks.threads != [threading.current_thread().name]


def test_plain_registrations_are_answered_in_the_calling_thread() -> None:
    mocks = Echo()
    monitor = engine.InlineMonitor(mocks)
    with mockruntime.mocked_runtime("appstack", "dev"), engine.InlineFirstExecutor() as executor:
        executor.submit(monitor.RegisterResource, request("a", {"data": {"k": "v"}})).result()
    assert mocks.threads == [threading.current_thread().name]


@pytest.mark.parametrize(
    "value",
    [
        {rpc._special_sig_key: rpc._special_asset_sig, "text": "x"},
        {rpc._special_sig_key: rpc._special_resource_sig, "urn": "urn:pulumi:dev::p::t::n"},
    ],
    ids=["asset", "resource-reference"],
)
def test_a_request_holding_objects_takes_the_sdks_path_in_a_worker(value: Any) -> None:
    mocks = Echo()
    monitor = engine.InlineMonitor(mocks)
    with mockruntime.mocked_runtime("appstack", "dev"), engine.InlineFirstExecutor() as executor:
        response = executor.submit(monitor.RegisterResource, request("a", {"v": value})).result()
    assert response.id == "a-id"
    assert len(mocks.threads) == 1 and mocks.threads != [threading.current_thread().name]


def test_every_registration_and_read_of_a_prod_render_is_answered_inline() -> None:
    answered: list[tuple[str, str]] = []
    original = mockruntime.RecordingMocks.new_resource

    def spy(self: mockruntime.RecordingMocks, args: sdk_mocks.MockResourceArgs) -> Any:
        answered.append((args.typ, threading.current_thread().name))
        return original(self, args)

    mockruntime.RecordingMocks.new_resource = spy  # type: ignore[method-assign]
    try:
        result = render_stack("prod")
    finally:
        mockruntime.RecordingMocks.new_resource = original  # type: ignore[method-assign]
    assert len(answered) > len(result.objects)  # components too
    inline = threading.current_thread().name
    # every registration; the program reads no earlier state (no StackReference: issue 27)
    assert "pulumi:pulumi:StackReference" not in {typ for typ, _ in answered}
    assert {thread for _, thread in answered} == {inline}


def test_the_threads_event_loop_is_put_back_and_the_runs_loop_closed() -> None:
    policy = asyncio.get_event_loop_policy()
    before = policy.get_event_loop()
    with mockruntime.mocked_runtime("appstack", "dev"):
        during = policy.get_event_loop()
        assert during is not before
        assert not during.is_closed()
    assert policy.get_event_loop() is before
    assert during.is_closed()


def test_a_program_that_exits_leaves_no_report_for_later(caplog: pytest.LogCaptureFixture) -> None:
    # sys.exit in a program (pulumi's __main__.py on a bad config) fails the run's own task;
    # its "exception was never retrieved" must not surface later, inside unrelated code
    def program() -> None:
        raise SystemExit(2)

    with pytest.raises(SystemExit):
        mockruntime.capture(program, project="appstack", stack="dev")
    gc.collect()
    assert [r.message for r in caplog.records if r.name == "asyncio"] == []
