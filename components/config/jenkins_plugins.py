"""The pinned plugin set (jenkins/plugins.txt) and its upstream metadata
(jenkins/plugins-metadata.yaml): parsing, Jenkins version order, and the closure/compatibility
rule the component enforces before it renders anything."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cmp_to_key
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

#: The repository's jenkins/ folder: the pins and their upstream metadata.
REPO_JENKINS_DIR = Path(__file__).resolve().parent.parent.parent / "jenkins"
PLUGINS_FILE = REPO_JENKINS_DIR / "plugins.txt"
PLUGINS_METADATA_FILE = REPO_JENKINS_DIR / "plugins-metadata.yaml"

_PLUGIN_LINE = re.compile(r"^[a-z0-9][a-z0-9_.-]*:[0-9][A-Za-z0-9_.-]*$")


def plugin_lines(text: str | None = None) -> list[str]:
    """The `name:version` lines of jenkins/plugins.txt (comments and blanks dropped).

    Every line must pin an exact version: `name:latest`, `name` alone or an URL are rejected.
    """
    source = PLUGINS_FILE.read_text(encoding="utf-8") if text is None else text
    lines = [
        line.strip()
        for line in source.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    bad = [line for line in lines if not _PLUGIN_LINE.match(line)]
    if bad:
        raise ValueError(f"jenkins/plugins.txt: not an exact 'name:version' pin: {bad}")
    return lines


def plugin_pins(text: str | None = None) -> dict[str, str]:
    """plugins.txt as {plugin: version}."""
    return dict(line.split(":", 1) for line in plugin_lines(text))


# --- Jenkins version order ----------------------------------------------------------------------
# hudson.util.VersionNumber is Maven's ComparableVersion: '.' separates items, '-' opens a nested
# list, digit/letter changes split items; an int beats a list, a list beats a string, and a
# missing item compares as 0 / "" / an empty list.

_Item = int | str | list[Any]


def _parse(version: str) -> list[_Item]:
    root: list[_Item] = []
    current = root
    for part in re.split(r"(\.|-)", version):
        if part == ".":
            continue
        if part == "-":
            sub: list[_Item] = []
            current.append(sub)
            current = sub
            continue
        for token in re.findall(r"\d+|[^\d]+", part):
            current.append(int(token) if token.isdigit() else token.lower())
    return root


def _cmp_items(a: _Item | None, b: _Item | None) -> int:
    if a is None and b is None:
        return 0
    if a is None:
        return -_cmp_items(b, None)
    if isinstance(a, int):
        if b is None:
            return 0 if a == 0 else 1
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1
    if isinstance(a, list):
        if b is None:
            return _cmp_items(a[0], None) if a else 0
        if isinstance(b, int):
            return -1
        if isinstance(b, str):
            return 1
        for x, y in itertools.zip_longest(a, b):
            c = _cmp_items(x, y)
            if c:
                return c
        return 0
    # a is a string
    if b is None:
        return (a > "") - (a < "")
    if isinstance(b, (int, list)):
        return -1
    return (a > b) - (a < b)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Jenkins orders plugin and core versions."""
    return _cmp_items(_parse(a), _parse(b))


version_key = cmp_to_key(compare_versions)


# --- metadata and the compatibility rule --------------------------------------------------------


@dataclass(frozen=True)
class PluginMeta:
    """One row of jenkins/plugins-metadata.yaml."""

    name: str
    version: str
    required_core: str
    source: str
    dependencies: Mapping[str, str]
    optional_dependencies: Mapping[str, str]


#: LibYAML's parser when PyYAML has it: the same data as the pure-Python parser
#: (tests/jenkins/test_plugins.py), parsed some ten times faster
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_metadata(text: str | None = None) -> tuple[str, dict[str, PluginMeta]]:
    """(core version the table was taken for, rows by plugin name)."""
    core, rows = _parsed_metadata(
        PLUGINS_METADATA_FILE.read_text(encoding="utf-8") if text is None else text
    )
    return core, dict(rows)


@functools.lru_cache(maxsize=4)
def _parsed_metadata(text: str) -> tuple[str, dict[str, PluginMeta]]:
    """The table parsed once per text: every Jenkins config validated checks the pins against
    it (components/config/jenkins.py). Rows are read-only; callers get their own dict of them."""
    raw = yaml.load(text, Loader=_YAML_LOADER)
    rows = {
        name: PluginMeta(
            name=name,
            version=str(row["version"]),
            required_core=str(row["requiredCore"]),
            source=str(row["source"]),
            dependencies=_versions(row.get("dependencies")),
            optional_dependencies=_versions(row.get("optionalDependencies")),
        )
        for name, row in raw["plugins"].items()
    }
    return str(raw["core"]["version"]), rows


def _versions(column: dict[str, Any] | None) -> Mapping[str, str]:
    """{plugin: minimum version}, read-only (the parsed table is shared)."""
    return MappingProxyType({k: str(v) for k, v in (column or {}).items()})


def compatibility_problems(
    pins: dict[str, str], metadata: dict[str, PluginMeta], core: str
) -> list[str]:
    """Why `pins` would not start on Jenkins `core`: a pin without metadata (or metadata of a
    different version), a core too old, a dependency missing or pinned below its minimum."""
    problems: list[str] = []
    for name, version in sorted(pins.items()):
        meta = metadata.get(name)
        if meta is None:
            problems.append(f"{name}:{version} has no row in jenkins/plugins-metadata.yaml")
            continue
        if meta.version != version:
            problems.append(
                f"{name}: pinned {version} but plugins-metadata.yaml describes {meta.version}"
            )
            continue
        if compare_versions(core, meta.required_core) < 0:
            problems.append(
                f"{name}:{version} requires Jenkins >= {meta.required_core}, core is {core}"
            )
        for dep, minimum in sorted(meta.dependencies.items()):
            if dep not in pins:
                problems.append(f"{name}:{version} needs {dep} >= {minimum}, which is not pinned")
            elif compare_versions(pins[dep], minimum) < 0:
                problems.append(f"{name}:{version} needs {dep} >= {minimum}, pinned {pins[dep]}")
        for dep, minimum in sorted(meta.optional_dependencies.items()):
            if dep in pins and compare_versions(pins[dep], minimum) < 0:
                problems.append(
                    f"{name}:{version} (optional) needs {dep} >= {minimum}, pinned {pins[dep]}"
                )
    return problems


def pinned_set_problems(core: str) -> list[str]:
    """`compatibility_problems` of jenkins/plugins.txt and jenkins/plugins-metadata.yaml on
    Jenkins `core`, worked out once per content of the two files."""
    return list(
        _pinned_set_problems(
            core,
            PLUGINS_FILE.read_text(encoding="utf-8"),
            PLUGINS_METADATA_FILE.read_text(encoding="utf-8"),
        )
    )


@functools.lru_cache(maxsize=8)
def _pinned_set_problems(core: str, pins: str, metadata: str) -> tuple[str, ...]:
    return tuple(compatibility_problems(plugin_pins(pins), _parsed_metadata(metadata)[1], core))
