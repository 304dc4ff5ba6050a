"""The catalogue of everyday changes: each one is a config before and after (in memory, no git),
rendered under Pulumi's mocks and compared by `stackctl.diff.compare`.

Renders are cached per config, so the suite-wide rules re-use the scenario renders.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from components import config as config_model
from stackctl.diff.compare import Change, Snapshot, compare
from stackctl.render.stack import REPO_ROOT, load_raw_config
from tests.conftest import PROD_IMAGE, base_raw
from tests.release.helpers import NEW_IMAGE, argo, blue_green, canary

HPA = {"enabled": True, "minReplicas": 3, "maxReplicas": 6}
#: Jenkins as the shipped prod stack configures it (Pulumi.prod.yaml), home 50Gi and protected.
JENKINS_PROD = config_model.deep_merge(
    load_raw_config(REPO_ROOT, "prod")["jenkins"],
    {"enabled": True, "home": {"size": "50Gi", "protect": True}},
)


Files = tuple[tuple[str, str], ...]
"""Replacement repository files for a render: (module attribute holding the path, new text)."""


def _jenkins_modules(attribute: str) -> list[Any]:
    """Every loaded module of the program that holds `attribute` (a file path of jenkins/): the
    Jenkins component's modules, or the config's plugin pins, whatever the revision's layout."""
    import components.stack  # noqa: F401  (loads the Jenkins component and its config)

    return [
        module
        for name, module in sorted(sys.modules.items())
        if (name == "components" or name.startswith("components."))
        and isinstance(getattr(module, attribute, None), Path)
    ]


def _bump(version: str) -> str:
    return version + ".1"  # later than `version` in Jenkins' (Maven) version order


def bumped_plugin_files() -> Files:
    """jenkins/plugins.txt with one plugin a version newer and, where the component checks its
    pins against jenkins/plugins-metadata.yaml, that file's row bumped with it. The plugin is
    one no other plugin depends on, so every dependency minimum still holds."""
    (plugins_module,) = _jenkins_modules("PLUGINS_FILE")[:1]
    plugins_text = plugins_module.PLUGINS_FILE.read_text()
    pins = re.findall(r"^([a-z0-9][a-z0-9_.-]*):(\S+)$", plugins_text, flags=re.M)
    assert pins, "jenkins/plugins.txt pins no plugin"
    meta_modules = _jenkins_modules("PLUGINS_METADATA_FILE")
    if not meta_modules:
        name, version = pins[0]
        text = plugins_text.replace(f"{name}:{version}\n", f"{name}:{_bump(version)}\n", 1)
        return (("PLUGINS_FILE", text),)
    meta_text = meta_modules[0].PLUGINS_METADATA_FILE.read_text()
    meta = yaml.safe_load(meta_text)
    needed = {dep for row in meta["plugins"].values() for dep in (row.get("dependencies") or {})}
    name, version = next((n, v) for n, v in pins if n not in needed)
    meta["plugins"][name]["version"] = _bump(version)
    text = plugins_text.replace(f"{name}:{version}\n", f"{name}:{_bump(version)}\n", 1)
    return (("PLUGINS_FILE", text), ("PLUGINS_METADATA_FILE", yaml.safe_dump(meta)))


@contextlib.contextmanager
def repository_files(files: Files) -> Iterator[None]:
    """Render with the given texts in place of the repository files (paths patched in every
    module of the Jenkins component that holds them)."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        for attribute, text in files:
            path = Path(tmp) / attribute
            path.write_text(text)
            for module in _jenkins_modules(attribute):
                stack.enter_context(mock.patch.object(module, attribute, path))
        yield


_CACHE: dict[str, Snapshot] = {}


def snapshot(raw: Mapping[str, Any], files: Files = ()) -> Snapshot:
    """The render of `raw` (stack name = its environment) as the diff sees it; cached."""
    key = json.dumps([raw, files], sort_keys=True)
    if key not in _CACHE:
        cfg = config_model.load(raw)
        with repository_files(files):
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
    after_files: Files = ()
    """Repository files changed for the after render (e.g. jenkins/plugins.txt)."""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def changes(self) -> list[Change]:
        return compare(snapshot(self.before), snapshot(self.after, self.after_files))

    def after_snapshot(self) -> Snapshot:
        return snapshot(self.after, self.after_files)


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
CANARY_BASE = {"replicas": 4, "autoscaling": {"enabled": False}}
INGRESS = {"ingress": {"enabled": True, "host": "web.example.com"}}
JENKINS_ON = _with(PROD, "jenkins", JENKINS_PROD)


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
    ),
    Scenario("blue-green flip", blue_green("dev", "blue"), blue_green("dev", "green")),
    Scenario(
        "blue-green flip, autoscaled",
        blue_green("prod", "blue", autoscaling=HPA),
        blue_green("prod", "green", autoscaling=HPA),
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
        tags=("switch",),
    ),
    Scenario(
        "Argo Rollouts image bump",
        argo("blueGreen", **CANARY_BASE),
        _with(argo("blueGreen", **CANARY_BASE), "apps.web.image", NEW_IMAGE),
    ),
    Scenario("monitoring on", PROD, _with(PROD, "monitoring", {"enabled": True})),
    Scenario("jenkins on", PROD, JENKINS_ON),
    Scenario(
        "jenkins plugin bump",
        JENKINS_ON,
        JENKINS_ON,
        after_files=bumped_plugin_files(),
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
