"""Component registrations under the mock runtime, without the RPC machinery they do not use.

A local component (`pulumi.ComponentResource`) registers as every resource does
(pulumi/runtime/resource.py `register_resource`): its options are prepared (dependencies,
providers, aliases, hooks, transforms), its empty properties serialized, a request of some
forty fields built and sent through the event loop's executor, and the empty answer resolved
back onto it. Its `register_outputs` serializes the outputs and sends them the same way, to a
mock monitor that answers Empty. That was about a fifth of what a 50-service render spends
beyond the Kubernetes objects themselves (its 152 components; by instruction counts, 0.11 G of
0.57 G), for components whose options hold nothing but their parent.

For such a component (no properties, no package reference, every option at its default but the
parent, an inherited `protect` and an empty provider map), under a monitor that answers plain
registrations in the program's thread (`engine.InlineMonitor.register_inline`):

- `register_resource` makes the URN Output as the SDK does (`resource_output`). When the
  parent's registration is done (the root Stack's is finished before the program starts, see
  `engine.mocked_runtime`, and a component registered this way is done at once), it asks the
  monitor right away; otherwise it does so in an RPC of the SDK's RPC manager once the parent's
  URN is known, a ValueError or AssertionError of the parent named with the resource as the
  SDK names it. The request carries the fields the mock monitor reads (type, name, parent,
  custom, object), so the mocks record it and store it under the same URN; the URN and the
  answered state are resolved as the SDK resolves them (`rpc.resolve_outputs`). A fault fails
  the URN and reaches the RPC manager as a failed registration's does.
- `register_resource_outputs` waits for the URN, serializes the outputs (the same faults) and
  hands the same request to the monitor, in the program's thread.

Everything else takes the SDK's own function. Left out on this path: the SDK's debug log lines
(which the mock engine passes to Python's root logger at DEBUG) and the event-loop turns of the
RPC path. `tests/test_engine_components.py` holds its state to the SDK's: the URNs, what the
mocks recorded and the monitor stored, the stack outputs, and the faults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import pulumi
from google.protobuf import struct_pb2  # type: ignore[import-untyped]  # no stubs pinned
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime._state_migration_context import _ensure_not_in_state_migration
from pulumi.runtime.proto import resource_pb2

#: The SDK's own functions, as imported (before any swap).
SDK_REGISTER_RESOURCE = sdk_resource.register_resource
SDK_REGISTER_RESOURCE_OUTPUTS = sdk_resource.register_resource_outputs

_STACK = "pulumi:pulumi:Stack"


class PlainMonitor(Protocol):
    """A monitor that answers a registration of plain properties in the calling thread."""

    def register_inline(self, request: Any) -> Any: ...

    def RegisterResourceOutputs(self, request: Any) -> Any: ...  # gRPC's method name


def _plain_monitor() -> PlainMonitor | None:
    monitor = settings.get_monitor()
    return cast(PlainMonitor, monitor) if hasattr(monitor, "register_inline") else None


def _is_plain(opts: pulumi.ResourceOptions | None) -> bool:
    """True if `opts` holds nothing the SDK's path would act on but the parent: every option
    None (the defaults) but the parent, `protect` as a bool (inherited from the parent) and an
    empty provider map (what `Resource.__init__` gives a component whose parents have none)."""
    if opts is None:
        return True
    for key, value in vars(opts).items():
        if value is None or key == "parent":
            continue
        if key == "protect" and type(value) is bool:
            continue
        if key == "providers" and not value:
            continue
        return False
    return True


def register_resource(
    res: pulumi.Resource,
    ty: str,
    name: str,
    custom: bool,
    remote: bool,
    new_dependency: Callable[[str], pulumi.Resource],
    props: Any,
    opts: pulumi.ResourceOptions | None,
    typ: type | None = None,
    package_ref: Awaitable[str | None] | None = None,
) -> None:
    """The SDK's `register_resource`; a plain component's registration made directly."""
    plain = not (custom or remote or props or package_ref is not None or ty == _STACK)
    monitor = _plain_monitor() if plain and _is_plain(opts) else None
    if monitor is None:
        SDK_REGISTER_RESOURCE(
            res, ty, name, custom, remote, new_dependency, props, opts, typ, package_ref
        )
        return
    resolve_urn, res.__dict__["urn"] = sdk_resource.resource_output(res)
    parent = opts.parent if opts is not None and opts.parent is not None else None
    if parent is None:
        parent = settings.get_root_resource()  # as prepare_resource parents it
    answer = _Answer(res, ty, name, typ is not None, resolve_urn, monitor)
    known = _registered_urn(parent)
    if isinstance(known, _Pending):

        async def do_register() -> None:
            try:
                parent_urn = await _parent_urn(ty, name, parent)
            except Exception as exn:
                resolve_urn(None, True, False, exn)
                raise
            answer(parent_urn)

        _start_rpc("register resource", do_register)
        return
    try:
        answer(known)
    except Exception as exn:  # reported as the SDK reports a failed registration: by its RPC
        fault = exn

        async def failed() -> None:
            raise fault

        _start_rpc("register resource", failed)


def _start_rpc(name: str, rpc_function: Callable[[], Awaitable[None]]) -> None:
    """Run `rpc_function` as an RPC of the SDK's RPC manager, started as the SDK starts one:
    the manager holds the RPC's task, and that task the wrapper's."""
    asyncio.ensure_future(settings._get_rpc_manager().do_rpc(name, rpc_function)())  # noqa: RUF006


class _Pending:
    """The parent's registration is not done (or failed): its URN is to be awaited."""


_PENDING = _Pending()


def _registered_urn(parent: pulumi.Resource | None) -> str | _Pending | None:
    """The parent's URN as `prepare_resource` reads it (`await parent.urn.future()`), if its
    registration is done and succeeded; `_PENDING` otherwise."""
    if parent is None:
        return ""
    data = getattr(parent.urn, "_data", None)
    if not isinstance(data, asyncio.Future) or not data.done() or data.cancelled():
        return _PENDING
    if data.exception() is not None:
        return _PENDING  # raised, and named, where it is awaited
    value = data.result().value
    return None if rpc.contains_unknowns(value) else cast(str, value)


class _Answer:
    """The monitor's answer to a plain component's registration, resolved onto it as
    `register_resource` resolves it; a fault fails its URN and is raised."""

    def __init__(
        self,
        res: pulumi.Resource,
        ty: str,
        name: str,
        typed: bool,
        resolve_urn: Callable[[Any, bool, bool, Exception | None], None],
        monitor: PlainMonitor,
    ) -> None:
        self.res, self.ty, self.name, self.typed = res, ty, name, typed
        self.resolve_urn, self.monitor = resolve_urn, monitor

    def __call__(self, parent_urn: str | None) -> None:
        urn_resolved = False
        try:
            request = resource_pb2.RegisterResourceRequest(
                type=self.ty,
                name=self.name,
                parent=parent_urn or "",
                custom=False,
                object=struct_pb2.Struct(),
            )
            response = self.monitor.register_inline(request)
            failed = response.result != resource_pb2.Result.SUCCESS
            self.resolve_urn(response.urn, True, False, None)
            urn_resolved = True
            empty = struct_pb2.Struct()
            rpc.resolve_outputs(
                self.res,
                empty,
                empty if failed else response.object,
                {},
                {},
                False,
                self.typed,
                not failed,
                resolve_missing_as_unknown=failed,
            )
        except Exception as exn:
            if not urn_resolved:
                self.resolve_urn(None, True, False, exn)
            raise


async def _parent_urn(ty: str, name: str, parent: pulumi.Resource | None) -> str | None:
    """The parent's URN as `prepare_resource` waits for it, its faults named as
    `register_resource` names them."""
    if parent is None:
        return ""
    try:
        return await parent.urn.future()
    except ValueError as e:
        raise ValueError(
            f"While processing resource: {name!r}, type: {ty!r}\nValueError has risen: {e}"
        ) from e
    except AssertionError as e:
        raise AssertionError(
            f"While processing resource: {name!r}, type {ty!r}\nAssertionError has risen: {e}"
        ) from e


def register_resource_outputs(res: pulumi.Resource, outputs: Any) -> None:
    """The SDK's `register_resource_outputs`, its request handed to the monitor directly."""
    _ensure_not_in_state_migration("register resource outputs")
    monitor = _plain_monitor()
    if monitor is None:
        SDK_REGISTER_RESOURCE_OUTPUTS(res, outputs)
        return

    async def do_register_resource_outputs() -> None:
        urn = await res.urn.future()
        serialized = await rpc.serialize_properties(outputs or {}, {})
        monitor.RegisterResourceOutputs(
            resource_pb2.RegisterResourceOutputsRequest(urn=cast(str, urn), outputs=serialized)
        )

    _start_rpc("register resource outputs", do_register_resource_outputs)
