"""Full URNs (parent type chain + name) of what a render registers, and of the aliases it declares.

The mock monitor builds a URN from the parent's last type only; the real engine qualifies a
resource's type with its parent's whole qualified type (pulumi sdk/go/common/resource/urn.go
NewURN: `parentType + "$" + type`, the Stack not being part of it). So the chain is rebuilt here
from the parent links each registration carries, with the program's one URN grammar
(`stackctl.mockruntime.urns`: `qualified_type`, `relative_urn`, `split_urn`). Stack and
project are the same for every resource of a render and are left out: `<type chain>::<name>`.

The configs are those whose URNs `tests/test_urns.py` keeps: every stack file, dev with monitoring
on, and every release strategy of `tests/monitoring/strategies.py` (monitoring on).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from components import config as config_model
from stackctl.mockruntime import STACK_TYPE, qualified_type, relative_urn, split_urn
from stackctl.mockruntime.engine import InlineMonitor
from stackctl.render.stack import REPO_ROOT, load_raw_config, render_config


@dataclass
class Registrations:
    """What the mock monitor was asked to register: (urn, parent urn, type, name, aliases)."""

    seen: list[tuple[str, str, str, str, list[Any]]] = field(default_factory=list)

    def _by_urn(self) -> dict[str, tuple[str, str, str]]:
        return {urn: (parent, typ, name) for urn, parent, typ, name, _ in self.seen}

    def _parent_chain(self, by_urn: Mapping[str, tuple[str, str, str]], parent: str) -> str | None:
        """The qualified type of `parent` (a URN); None for none or the root Stack."""
        if not parent or by_urn.get(parent, ("", STACK_TYPE, ""))[1] == STACK_TYPE:
            return None
        return self._qualified(by_urn, parent)

    def _qualified(self, by_urn: Mapping[str, tuple[str, str, str]], urn: str) -> str:
        parent, typ, _ = by_urn[urn]
        return qualified_type(self._parent_chain(by_urn, parent), typ)

    def urns(self) -> set[str]:
        by_urn = self._by_urn()
        return {
            relative_urn(self._qualified(by_urn, urn), name)
            for urn, (_, typ, name) in by_urn.items()
            if typ != STACK_TYPE
        }

    def aliases(self) -> dict[str, set[str]]:
        """URN -> the URNs it declares as aliases (alias specs or full URNs), as type chains."""
        by_urn = self._by_urn()
        out: dict[str, set[str]] = {}
        for urn, parent, typ, name, aliases in self.seen:
            found = out.setdefault(relative_urn(self._qualified(by_urn, urn), name), set())
            for alias in aliases:
                if alias.urn:
                    found.add(relative_urn(*split_urn(alias.urn)))
                    continue
                spec = alias.spec
                alias_parent = "" if spec.noParent else (spec.parentUrn or parent)
                chain = self._parent_chain(by_urn, alias_parent) if alias_parent in by_urn else None
                found.add(relative_urn(qualified_type(chain, spec.type or typ), spec.name or name))
        return {urn: found for urn, found in out.items() if found}


@contextmanager
def recording() -> Iterator[Registrations]:
    """Record every RegisterResource request the mock monitor answers while the block runs."""
    found = Registrations()
    original = InlineMonitor.RegisterResource

    def record(self: Any, request: Any) -> Any:
        response = original(self, request)
        found.seen.append(
            (response.urn, request.parent, request.type, request.name, list(request.aliases))
        )
        return response

    InlineMonitor.RegisterResource = record  # type: ignore[method-assign]
    try:
        yield found
    finally:
        InlineMonitor.RegisterResource = original  # type: ignore[method-assign]


def _monitoring_on(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(raw))
    out["monitoring"] = {**(out.get("monitoring") or {}), "enabled": True}
    return out


def cases() -> dict[str, tuple[Callable[[], Mapping[str, Any]], str]]:
    """Config name -> (raw config factory, stack name)."""
    from tests.monitoring.strategies import STRATEGIES

    found: dict[str, tuple[Callable[[], Mapping[str, Any]], str]] = {
        "dev": (lambda: load_raw_config(REPO_ROOT, "dev"), "dev"),
        "dev-monitoring": (lambda: _monitoring_on(load_raw_config(REPO_ROOT, "dev")), "dev"),
        "prod": (lambda: load_raw_config(REPO_ROOT, "prod"), "prod"),
        # issue 32: the staging stack (added to the snapshot with it; nothing else changed)
        "staging": (lambda: load_raw_config(REPO_ROOT, "staging"), "staging"),
    }
    for name, raw in STRATEGIES.items():
        found[f"strategy-{name}"] = (lambda raw=raw: raw, name)  # type: ignore[misc]
    return found


def render_urns(raw: Mapping[str, Any], stack: str) -> tuple[set[str], dict[str, set[str]]]:
    """(URNs, URN -> its alias URNs) of a render of `raw`."""
    with recording() as found:
        render_config(config_model.load(raw), stack)
    return found.urns(), found.aliases()


if __name__ == "__main__":  # regenerate the snapshot: python -m tests.urns > tests/golden/urns.json
    import json

    snapshot = {
        name: sorted(render_urns(factory(), stack)[0]) for name, (factory, stack) in cases().items()
    }
    print(json.dumps(snapshot, indent=1, sort_keys=True))
