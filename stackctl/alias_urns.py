"""Under the mocks a resource's alias URNs are not computed when it is constructed: nothing
reads them while the monitor takes aliases as specs (`alias_urn_unread`, swapped in by
`engine.mocked_runtime`; `tests/test_engine_aliases.py` holds the rule to the SDK's source and
answers)."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import settings
from pulumi.runtime.proto import resource_pb2


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
