"""URNs: the one place the program builds them, and the URNs the SDK computes the long way
under the mocks, computed the short way or not at all.

- `qualified_type`, `relative_urn`, `full_urn`, `split_urn`: a URN's grammar,
  `urn:pulumi:<stack>::<project>::<qualified type>::<name>`, where a child's type is qualified
  by its parent's (`parent$child`; pulumi sdk/go/common/resource/urn.go `NewURN`). The SDK's
  `create_urn` below, `stackctl diff`'s URN recorder and the URN snapshot tests build with them.

- `alias_urn_unread`: a resource's alias URNs are not computed when it is constructed; nothing
  reads them while the monitor takes aliases as specs (`tests/test_engine_aliases.py` holds
  the rule to the SDK's source and answers).
- `create_urn`: a URN of plain strings is one resolved Output instead of a chain of them
  (`tests/test_engine_urns.py` holds it to the SDK's function).

`engine.mocked_runtime` swaps both in while a program runs and puts the SDK's back after.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import settings
from pulumi.runtime.proto import resource_pb2

STACK_TYPE = "pulumi:pulumi:Stack"


def qualified_type(parent_qualified: str | None, type_: str) -> str:
    """`type_` qualified by its parent's qualified type (`parent$type`); unqualified without a
    parent. The engine leaves the root Stack out of the chain (`NewURN`: a parent of the
    Stack's type qualifies nothing): a caller passes None for it; the SDK's mock `create_urn`
    keeps it (below)."""
    return type_ if parent_qualified is None else parent_qualified + "$" + type_


def relative_urn(qualified: str, name: str) -> str:
    """The part of a URN that the stack and project do not fix: `<qualified type>::<name>`."""
    return qualified + "::" + name


def full_urn(stack: str, project: str, qualified: str, name: str) -> str:
    return "urn:pulumi:" + stack + "::" + project + "::" + relative_urn(qualified, name)


def split_urn(urn: str) -> tuple[str, str]:
    """(qualified type, name) of a full URN; ValueError if `urn` is not one."""
    parts = urn.split("::", 3)
    if len(parts) != 4 or not parts[0].startswith("urn:pulumi:"):
        raise ValueError(f"not a URN: {urn!r}")
    return parts[2], parts[3]


class AliasURNNotComputed:
    """Stands in a resource's `_aliases` for an alias whose full URN nothing reads (below)."""

    __slots__ = ("alias",)

    def __init__(self, alias: Any) -> None:
        self.alias = alias

    def __repr__(self) -> str:
        return f"AliasURNNotComputed({self.alias!r})"


def alias_urn_unread(alias: Any, name: str, type_: str, parent: Any) -> Any:
    """`collapse_alias_to_urn` as Resource.__init__ calls it, under the mocks.

    For each alias of a resource the SDK computes its full URN as it constructs the resource
    (pulumi/resource.py, `self._aliases`): a chain of Outputs and tasks per alias (from_input,
    apply, Output.all of project and stack, create_urn, and the parent's URN for a child). The
    typed Kubernetes classes declare one to three aliases each (the API groups and versions a
    kind moved from), so that was about a sixth of a render. Those URNs have one reader,
    `all_aliases` (pulumi/runtime/resource.py), which `prepare_aliases` calls only for a monitor
    without alias specs; with them, each alias is sent as a spec built from `opts.aliases`.
    The mock monitor supports alias specs, so the URN is not computed then and a marker that
    fails on use stands in its place; without alias specs the SDK's function answers.
    """
    if settings.monitor_supports_feature(resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS):
        return AliasURNNotComputed(alias)
    return SDK_COLLAPSE_ALIAS_TO_URN(alias, name, type_, parent)


SDK_COLLAPSE_ALIAS_TO_URN = sdk_resource.collapse_alias_to_urn  # what pulumi.resource imports


SDK_CREATE_URN = sdk_resource.create_urn


def create_urn(
    name: Any, type_: Any, parent: Any = None, project: Any = None, stack: Any = None
) -> pulumi.Output[str]:
    """The SDK's `create_urn` (pulumi/runtime/resource.py): one resolved Output when name,
    type and parent are strings (or there is no parent), the SDK's function otherwise.

    The SDK builds the URN as a chain (from_input of the parent, an apply for its prefix,
    Output.all of prefix, type and name, an apply to join them) and awaits it for every
    registration (`do_register`: the URN it would answer itself if no monitor were there) and
    every read: a few tasks and turns of the event loop each. For strings the result is the
    same known, non-secret string with no resources: it is built here with the grammar above
    (`tests/test_engine_urns.py` holds it to the SDK's function).
    """
    if type(name) is str and type(type_) is str and (parent is None or type(parent) is str):
        if parent is not None:  # the parent's URN up to its name, `$`, the type, `::name`
            return pulumi.Output.from_input(
                relative_urn(qualified_type(parent[0 : parent.rfind("::")], type_), name)
            )
        return pulumi.Output.from_input(
            full_urn(
                stack if stack is not None else settings.get_stack(),
                project if project is not None else settings.get_project(),
                type_,
                name,
            )
        )
    return SDK_CREATE_URN(name, type_, parent, project, stack)
