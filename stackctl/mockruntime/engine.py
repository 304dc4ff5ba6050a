"""Pulumi's mock runtime with the render's shortcuts, and the mocks that record a program run.

`mocked_runtime(project, stack)` sets the mocks (`RecordingMocks`), registers a stack
transformation that records each resource's options (protect, retain_on_delete, ignore_changes,
depends_on, delete_before_replace, aliases, custom_timeouts) and swaps the shortcuts in; on exit
it restores the runtime settings and the SDK's functions, so repeated runs in one process (tests,
benchmarks) are independent. Each run has an event loop of its own (what a failed program left
pending is cancelled with it), and plain registrations are answered in the program's thread
(`InlineMonitor`, `InlineFirstExecutor`). `stackctl.mockruntime.capture` runs a program in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi.resource as pulumi_resource
import pulumi.runtime
from google.protobuf import struct_pb2  # type: ignore[import-untyped]  # no stubs pinned
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2, source_pb2

from stackctl.mockruntime import components as mock_components
from stackctl.mockruntime import unknowns, urns, wire

#: Documentation-range address (RFC 5737) given to LoadBalancer Services under mocks.
MOCK_LB_HOSTNAME_SUFFIX = ".lb.mock.invalid"

_LOCK = threading.Lock()  # the Pulumi runtime settings are process-global


@dataclass(frozen=True)
class CapturedResource:
    """One registered resource: its type token, logical name, inputs and options."""

    type: str
    name: str
    inputs: dict[str, Any]
    options: dict[str, Any]
    custom: bool
    parent_type: str | None = None


@dataclass
class Capture:
    """Everything a program run registered, in registration order."""

    resources: list[CapturedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[CapturedResource]:
        return [r for r in self.resources if r.type == type_token]


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs as state, give LoadBalancers an address, and record every call."""

    def __init__(self, options: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.registered: list[CapturedResource] = []
        self._options = options
        self._lock = threading.Lock()

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "kubernetes:core/v1:Service":
            spec = rpc.unwrap_rpc_secret(state.get("spec") or {})
            if isinstance(spec, dict) and spec.get("type") == "LoadBalancer":
                name = str((state.get("metadata") or {}).get("name", args.name))
                state["status"] = {
                    "loadBalancer": {"ingress": [{"hostname": name + MOCK_LB_HOSTNAME_SUFFIX}]}
                }
        state.update(_mock_outputs(args.typ, args.name, state))
        with self._lock:
            options = dict(self._options.get((args.typ, args.name), {}))
            parent_type = options.pop("parent_type", None)
            self.registered.append(
                CapturedResource(
                    type=args.typ,
                    name=args.name,
                    inputs=dict(args.inputs),
                    options=options,
                    custom=bool(args.custom),
                    parent_type=parent_type,
                )
            )
        return f"{args.name}-id", state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def _mock_outputs(type_token: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
    """Outputs a real provider computes that the program reads (e.g. a pushed image digest)."""
    if type_token == "docker:index/image:Image":
        image_name = str(rpc.unwrap_rpc_secret(state.get("imageName", name)))
        repo = image_name.rsplit(":", 1)[0] if ":" in image_name.rsplit("/", 1)[-1] else image_name
        digest = "sha256:" + ("0" * 64)
        return {"repoDigest": f"{repo}@{digest}", "imageName": image_name}
    if type_token == "random:index/randomPassword:RandomPassword":
        return {"result": rpc.wrap_rpc_secret("mock-random-password")}
    return {}


#: Signatures (pulumi/runtime/rpc.py `_special_*_sig`) of the values whose deserialization makes
#: objects (resources, assets, archives, outputs), which only the SDK's own path handles.
_OBJECT_SIGNATURES = tuple(
    sig.encode()
    for sig in (
        rpc._special_resource_sig,
        rpc._special_asset_sig,
        rpc._special_archive_sig,
        rpc._special_output_value_sig,
    )
)


class _Inline(threading.local):
    active = False  # this thread is answering an RPC inline (InlineFirstExecutor)


_INLINE = _Inline()


class _NeedsThread(Exception):
    """Raised by InlineMonitor, inline, for a request it leaves to the SDK's path in a thread."""


class InlineMonitor(sdk_mocks.MockMonitor):
    """Pulumi's MockMonitor, answering plain registrations in the program's own thread.

    The SDK sends every monitor request through the event loop's default executor
    (`run_in_executor`, pulumi/runtime/resource.py), a thread hop per registration that the
    mock monitor then pays again: its `RegisterResource` turns the echoed state back into a
    Struct by pumping an event loop of its own (`_sync_await(serialize_properties(...))`).
    Under `InlineFirstExecutor` this monitor answers a registration or a read (a
    StackReference) whose request holds only JSON values and secrets (no resource reference,
    asset, archive or output value) in the calling thread, and builds the Struct directly: the
    same response, as the SDK's function would build it (`tests/test_engine_monitor.py`).
    Everything else, and every request with such a value, raises `_NeedsThread` inline, and
    the executor hands it to a worker thread, where it takes the SDK's own path as before.
    """

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method names: PascalCase
        if not _INLINE.active:
            return self._sdk_answer("RegisterResource", request)
        if request.type == "pulumi:pulumi:Stack" or _holds_objects(request.object):
            raise _NeedsThread
        args = sdk_mocks.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=rpc.deserialize_properties(request.object),
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
            transforms=sdk_mocks._resolve_callbacks(request.transforms),
        )
        urn, id_, state = self._answer(request, args)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_ or "", object=state)

    def register_inline(self, request: Any) -> Any:
        """`RegisterResource` answered in this thread, for a registration of plain properties
        (`stackctl.mockruntime.components`): as the executor runs it."""
        _INLINE.active = True
        try:
            return self.RegisterResource(request)
        finally:
            _INLINE.active = False

    def ReadResource(self, request: Any) -> Any:
        """A read (a StackReference) of plain properties, answered inline as the SDK answers
        it: the mocks' state for the read resource, stored under its URN."""
        if not _INLINE.active:
            return self._sdk_answer("ReadResource", request)
        if _holds_objects(request.properties):
            raise _NeedsThread
        args = sdk_mocks.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=rpc.deserialize_properties(request.properties),
            provider=request.provider,
            resource_id=request.id,
        )
        urn, _, state = self._answer(request, args)
        return resource_pb2.ReadResourceResponse(urn=urn, properties=state)

    def _answer(
        self, request: Any, args: sdk_mocks.MockResourceArgs
    ) -> tuple[str, str | None, struct_pb2.Struct]:
        """The mocks' id and state for a registered or read resource (the state as a Struct),
        and its URN; stored under that URN as the SDK stores it (None included: a
        component's id)."""
        id_, state = self.mocks.new_resource(args)
        answer = plain_struct(state)
        urn = self.make_urn(request.parent, request.type, request.name)
        self.resources[urn] = self.ResourceRegistration(urn, cast(str, id_), state)
        return urn, id_, answer

    def _sdk_answer(self, method: str, request: Any) -> Any:
        """The SDK's own answer (its MockMonitor is untyped)."""
        return getattr(super(), method)(request)

    # the requests whose SDK answers pump an event loop (`_sync_await`): always in a thread
    def Invoke(self, request: Any) -> Any:
        _leave_inline()
        return self._sdk_answer("Invoke", request)

    def RegisterStackTransform(self, request: Any) -> Any:
        _leave_inline()
        return self._sdk_answer("RegisterStackTransform", request)

    def RegisterStackInvokeTransform(self, request: Any) -> Any:
        _leave_inline()
        return self._sdk_answer("RegisterStackInvokeTransform", request)


def _leave_inline() -> None:
    if _INLINE.active:
        raise _NeedsThread


def _holds_objects(struct: struct_pb2.Struct) -> bool:
    blob = struct.SerializeToString()
    return any(sig in blob for sig in _OBJECT_SIGNATURES)


def plain_struct(state: Mapping[str, Any]) -> struct_pb2.Struct:
    """`state` (JSON values: dicts with string keys, lists, strings, numbers, booleans, None;
    a secret is such a dict) as a Struct: what `rpc.serialize_properties(state, {})` returns
    for it, top-level None values left out as it leaves them out."""
    for key, value in state.items():
        odd = _not_json(value)
        if odd is not None:
            raise TypeError(f"mock state {key!r} is not a JSON value: holds a {odd.__name__}")
    struct = struct_pb2.Struct()
    struct.update({k: v for k, v in state.items() if v is not None})
    return struct


def _not_json(value: Any) -> type | None:
    """The type of the first thing in `value` that is not a JSON value (a dict's non-string
    key included); None if there is none."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    return type(key)
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
        elif item is not None and kind not in (str, int, float, bool):
            return kind
    return None


class InlineFirstExecutor(futures.ThreadPoolExecutor):
    """The event loop's default executor while a program runs under the mocks: runs each
    call in the submitting thread, marked inline; a call that raises `_NeedsThread` there
    goes to a worker thread, as every call did before (`InlineMonitor`)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        done: futures.Future[Any] = futures.Future()
        _INLINE.active = True
        try:
            result = fn(*args, **kwargs)
        except _NeedsThread:
            return super().submit(fn, *args, **kwargs)
        except BaseException as exc:  # the SDK reads the exception from the future
            done.set_exception(exc)
        else:
            done.set_result(result)
        finally:
            _INLINE.active = False
        return done


@contextlib.contextmanager
def _own_event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for this thread, with `InlineFirstExecutor` as its default executor;
    the thread's previous loop is put back afterwards and this one closed (its worker threads
    with it)."""
    policy = asyncio.get_event_loop_policy()
    previous = policy.get_event_loop()
    loop = policy.new_event_loop()
    loop.set_default_executor(InlineFirstExecutor(thread_name_prefix="appstack-mock-monitor"))
    policy.set_event_loop(loop)
    try:
        yield loop
    finally:
        try:
            _cancel_pending(loop)
        finally:
            policy.set_event_loop(previous)
            # A task of this run that failed (the program's own task when it raised or
            # exited) reports "exception never retrieved" once it is garbage, at whatever
            # point the collector runs, while the run raised it to the caller already.
            loop.set_exception_handler(_after_close)
            loop.close()


def _after_close(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Exception handler of a closed run's loop: its errors reached the caller already."""


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and wait out what a failed program left pending (registrations it never
    finished), so that none of it is destroyed pending after the loop is closed."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _timeouts(timeouts: pulumi.CustomTimeouts | None) -> dict[str, str] | None:
    if timeouts is None:
        return None
    found = {"create": timeouts.create, "update": timeouts.update, "delete": timeouts.delete}
    return {op: value for op, value in found.items() if value} or None


def record_options(store: dict[tuple[str, str], dict[str, Any]]) -> pulumi.ResourceTransformation:
    """A stack transformation that records each resource's options in `store`, by (type, name)."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> None:
        opts = args.opts
        recorded = {
            "protect": opts.protect,
            "retain_on_delete": opts.retain_on_delete,
            "ignore_changes": list(opts.ignore_changes or []),
            "delete_before_replace": opts.delete_before_replace,
            "depends_on": len(opts.depends_on) if isinstance(opts.depends_on, list) else 0,
            "aliases": [str(a) for a in (opts.aliases or [])],
            "custom_timeouts": _timeouts(opts.custom_timeouts),
            "parent": opts.parent is not None,
            "parent_type": getattr(opts.parent, "_type", None) if opts.parent is not None else None,
        }
        store[(args.type_, args.name)] = {
            k: v for k, v in recorded.items() if v not in (None, [], 0)
        }
        return None

    return transformation


@contextlib.contextmanager
def mocked_runtime(project: str, stack: str) -> Iterator[RecordingMocks]:
    """Pulumi's mock runtime for the duration of the block; settings restored afterwards.

    Without source positions: for every resource the SDK walks the Python stack and turns each
    frame's file into a URI (pulumi/runtime/resource.py `_get_stack_trace`), for the engine to
    show where a resource was declared. The mock monitor reads neither `sourcePosition` nor
    `stackTrace` (pulumi/runtime/mocks.py `MockMonitor.RegisterResource`), and the walk grows
    with the depth of the component calls: about a tenth of a render's time, for nothing.

    Without the full URN of each alias computed at construction, and with a URN of plain
    strings made as one resolved Output (`stackctl.mockruntime.urns`).

    With `stackctl.mockruntime.unknowns.contains_unknowns` in place of the SDK's: same answers, no
    reference cycle per call. With the wire conversions of `stackctl.mockruntime.wire` in place of
    the SDK's: same answers, no coroutine per plain value. With a plain component's registration
    made directly (`stackctl.mockruntime.components`): the same state, no RPC path.

    On an event loop of its own whose executor answers plain registrations in this thread
    (`InlineMonitor`): no thread hop per resource. The root Stack's registration is finished
    before the block starts, so that a component parented to it registers at once.
    """
    with _LOCK, _own_event_loop() as loop:
        options: dict[tuple[str, str], dict[str, Any]] = {}
        mocks = RecordingMocks(options)
        settings.ROOT.set(None)
        pulumi.runtime.set_mocks(
            mocks, project=project, stack=stack, preview=False, monitor=InlineMonitor(mocks)
        )
        pulumi.runtime.register_stack_transformation(record_options(options))
        try:
            loop.run_until_complete(cast(Any, settings.get_root_resource()).urn.future())
            with (
                _swapped(
                    sdk_resource, _get_stack_trace=_no_stack_trace, create_urn=urns.create_urn
                ),
                _swapped(
                    pulumi_resource,
                    collapse_alias_to_urn=urns.alias_urn_unread,
                    register_resource=mock_components.register_resource,
                    register_resource_outputs=mock_components.register_resource_outputs,
                ),
                _swapped(
                    rpc,
                    contains_unknowns=unknowns.contains_unknowns,
                    serialize_property=wire.serialize_property,
                    deserialize_properties=wire.deserialize_properties,
                    deserialize_property=wire.deserialize_property,
                ),
            ):
                yield mocks
        finally:
            settings.reset_options()


@contextlib.contextmanager
def _swapped(module: Any, **replacements: Any) -> Iterator[None]:
    """`module`'s attributes replaced for the duration of the block, then put back."""
    originals = {name: getattr(module, name) for name in replacements}
    for name, replacement in replacements.items():
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(module, name, original)


_NO_STACK_TRACE = source_pb2.StackTrace()


def _no_stack_trace() -> source_pb2.StackTrace:
    return _NO_STACK_TRACE


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a program runs under the mocks.

    A program run allocates a few hundred thousand short-lived objects (Outputs, futures,
    protobuf messages), many in reference cycles; each collection the allocations trigger
    traverses every tracked object of the process (the imported SDKs are most of them), which
    made up about a third of a render's CPU time. Paused, the cycles wait for the first
    collection after the run: one pass instead of hundreds. Reference counting frees
    everything else as usual, so the memory held meanwhile is the run's cyclic garbage only
    (`make bench` reports the peak).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
