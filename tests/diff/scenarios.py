"""The catalogue of everyday changes: each one is a config before and after (in memory, no git),
rendered under Pulumi's mocks and compared by `stackctl.diff.compare`.

Renders are cached per config, so the suite-wide rules re-use the scenario renders.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from components import config as config_model
from stackctl.diff import Change, Snapshot, compare
from tests.conftest import PROD_IMAGE, base_raw
from tests.release.helpers import NEW_IMAGE, argo, blue_green, canary

HPA = {"enabled": True, "minReplicas": 3, "maxReplicas": 6}
JENKINS_PROD = {
    "enabled": True,
    "namespace": "jenkins",
    "kubeApiCidrs": ["192.0.2.0/24"],
    "home": {"size": "50Gi", "protect": True},
}


def bumped_plugins(text: str) -> str:
    """plugins.txt with the first pinned plugin one version newer."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z0-9][a-z0-9_.-]*:[0-9]", line):
            lines[i] = line + ".1"
            return "\n".join(lines) + "\n"
    raise AssertionError("jenkins/plugins.txt pins no plugin")


@contextlib.contextmanager
def plugins_file(text: str | None) -> Iterator[None]:
    """Render with `text` as jenkins/plugins.txt (None: the repository's file)."""
    if text is None:
        yield
        return
    import components.jenkins as jenkins

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plugins.txt"
        path.write_text(text)
        with mock.patch.object(jenkins, "PLUGINS_FILE", path):
            yield


_CACHE: dict[str, Snapshot] = {}


def snapshot(raw: Mapping[str, Any], plugins: str | None = None) -> Snapshot:
    """The render of `raw` (stack name = its environment) as the diff sees it; cached."""
    key = json.dumps([raw, plugins], sort_keys=True)
    if key not in _CACHE:
        cfg = config_model.load(raw)
        with plugins_file(plugins):
            _CACHE[key] = Snapshot.of_config(cfg, cfg.environment)
    return _CACHE[key]


@dataclass(frozen=True)
class Scenario:
    """One everyday change."""

    name: str
    before: dict[str, Any]
    after: dict[str, Any]
    zero_downtime: bool = True
    """The change promises no downtime: it must replace no workload and no Service."""
    owned_fields_defect: str | None = None
    """Today's code sets a field another controller owns here (xfail reason, fixed elsewhere)."""
    after_plugins: str | None = None
    """jenkins/plugins.txt text for the after render (None: unchanged)."""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def changes(self) -> list[Change]:
        return compare(snapshot(self.before), snapshot(self.after, self.after_plugins))

    def after_snapshot(self) -> Snapshot:
        return snapshot(self.after, self.after_plugins)


def _with(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `raw` with `value` at the dotted `path`."""
    out = copy.deepcopy(raw)
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


PROD = base_raw("prod", autoscaling=HPA)
DEV = base_raw("dev")
ISSUE9_ITEM9 = "fixed on branch fix-monitoring-argo: issue 9 item 9 (HPA owns spec.replicas)"
ISSUE9_ITEM8 = "fixed on branch fix-monitoring-argo: issue 9 item 8 (Argo owns Service selectors)"
CANARY_BASE = {"replicas": 4, "autoscaling": {"enabled": False}}
INGRESS = {"ingress": {"enabled": True, "host": "web.example.com"}}
JENKINS_ON = _with(PROD, "jenkins", JENKINS_PROD)


def _plugins_text() -> str:
    import components.jenkins as jenkins

    return jenkins.PLUGINS_FILE.read_text()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("image bump", PROD, _with(PROD, "apps.web.image", NEW_IMAGE)),
    Scenario("env change", PROD, _with(PROD, "apps.web.env", {"LOG_LEVEL": "debug"})),
    Scenario("replica change", DEV, _with(DEV, "apps.web.replicas", 3)),
    Scenario(
        "autoscaling on",
        _with(DEV, "apps.web.replicas", 2),
        _with(DEV, "apps.web.autoscaling", {"enabled": True, "minReplicas": 2, "maxReplicas": 4}),
    ),
    Scenario(
        "autoscaling off",
        _with(DEV, "apps.web.autoscaling", {"enabled": True, "minReplicas": 2, "maxReplicas": 4}),
        _with(DEV, "apps.web.replicas", 2),
        owned_fields_defect=ISSUE9_ITEM9,
    ),
    Scenario("blue-green flip", blue_green("dev", "blue"), blue_green("dev", "green")),
    Scenario(
        "blue-green flip, autoscaled",
        blue_green("prod", "blue", autoscaling=HPA),
        blue_green("prod", "green", autoscaling=HPA),
        owned_fields_defect=ISSUE9_ITEM9,
    ),
    Scenario(
        "canary step",
        canary("prod", 25, **CANARY_BASE),
        canary("prod", 50, **CANARY_BASE),
    ),
    Scenario(
        "canary step, ingress",
        canary("prod", 25, **CANARY_BASE, **INGRESS),
        canary("prod", 50, **CANARY_BASE, **INGRESS),
    ),
    Scenario(
        "strategy rolling -> canary",
        base_raw("prod", **CANARY_BASE),
        canary("prod", 25, **CANARY_BASE),
        zero_downtime=False,
        tags=("switch",),
    ),
    Scenario(
        "strategy canary -> blueGreen",
        canary("prod", 25, **CANARY_BASE),
        blue_green("prod", "blue", **CANARY_BASE),
        zero_downtime=False,
        tags=("switch",),
    ),
    # The safe way from rolling to canary (docs/operations.md): through blueGreen, whose
    # Deployments have new names, so nothing is replaced.
    Scenario(
        "strategy rolling -> blueGreen",
        base_raw("prod", **CANARY_BASE),
        blue_green("prod", "blue", **CANARY_BASE),
        tags=("switch", "safe"),
    ),
    Scenario(
        "strategy blueGreen -> canary",
        blue_green("prod", "blue", **CANARY_BASE),
        canary("prod", 25, **CANARY_BASE),
        tags=("switch", "safe"),
    ),
    Scenario(
        "strategy blueGreen -> Argo Rollouts",
        blue_green("prod", "blue", **CANARY_BASE),
        argo("blueGreen", **CANARY_BASE),
        zero_downtime=False,
        owned_fields_defect=ISSUE9_ITEM8,
        tags=("switch",),
    ),
    Scenario(
        "Argo Rollouts image bump",
        argo("blueGreen", **CANARY_BASE),
        _with(argo("blueGreen", **CANARY_BASE), "apps.web.image", NEW_IMAGE),
        owned_fields_defect=ISSUE9_ITEM8,
    ),
    Scenario("monitoring on", PROD, _with(PROD, "monitoring", {"enabled": True})),
    Scenario("jenkins on", PROD, JENKINS_ON),
    Scenario(
        "jenkins plugin bump",
        JENKINS_ON,
        JENKINS_ON,
        after_plugins=bumped_plugins(_plugins_text()),
    ),
    Scenario("jenkins home grows", JENKINS_ON, _with(JENKINS_ON, "jenkins.home.size", "80Gi")),
    Scenario(
        "secret rotation",
        _with(PROD, "secrets", {"web": {"API_TOKEN": "token-before-0001"}}),
        _with(PROD, "secrets", {"web": {"API_TOKEN": "token-after-0002"}}),
    ),
)

BY_NAME = {s.name: s for s in SCENARIOS}
assert PROD["apps"]["web"]["image"] == PROD_IMAGE
