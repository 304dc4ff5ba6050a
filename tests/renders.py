"""Every render of a test run, computed once: the `renders` session fixture (tests/conftest.py)
hands out this cache. A render is a pure function of its config and stack name, so a second
test asking for the same one gets a deep copy of the first result: no test sees another's
changes, and none waits for a render it has already paid for."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from components import config as config_model
from stackctl.render.stack import RenderResult, render_config, render_stack


class Renders:
    """Renders by (stack, config), each run once per test session; results are deep copies."""

    def __init__(self) -> None:
        self._results: dict[tuple[str, ...], RenderResult] = {}
        self.runs = 0
        self.hits = 0

    def stack(self, name: str) -> RenderResult:
        """`render_stack(name)` of the shipped stack files."""
        return self._get(("stack", name), lambda: render_stack(name))

    def config(self, raw: Mapping[str, Any], stack: str | None = None) -> RenderResult:
        """Validate `raw` (a bad config raises every time) and render it under mocks (stack
        name = its environment unless given)."""
        cfg = config_model.load(raw)
        name = stack or cfg.environment
        key = ("config", name, json.dumps(raw, sort_keys=True, default=repr))
        return self._get(key, lambda: render_config(cfg, name))

    def _get(self, key: tuple[str, ...], make: Callable[[], RenderResult]) -> RenderResult:
        if key in self._results:
            self.hits += 1
        else:
            self._results[key] = make()
            self.runs += 1
        return copy.deepcopy(self._results[key])
