"""One reading of `appstack:*` values, the same under the engine and in the render.

The Pulumi engine holds every top-level config value as a string (pulumi sdk/v3
go/common/resource/config/value.go `unmarshalValue`: a stack-file value is first read as a
string, which succeeds for every YAML scalar and gives its text, e.g. `123`, `true`, `dev`; only
a mapping or a list falls through to `json.Marshal` of what gopkg.in/yaml.v3 decoded) and hands
the program those strings (PULUMI_CONFIG, or `pulumi.runtime.set_all_config`). So:

- `engine_value` is the one decoder: a JSON object or array (and JSON null) is decoded, every
  other value stays the string it is. `appstack:namespace: "123"` and `appstack:namespace: 123`
  are both the string "123", whichever path reads them.
- `stack_file_config` reads a stack file's `config:` (or Pulumi.yaml's defaults) into the
  strings the engine would hold, YAML resolved as yaml.v3 resolves it (resolve.go: booleans are
  only true/True/TRUE/false/False/FALSE, `yes`/`on` stay strings; null is ``, `~`, null; ints
  may carry `_`, `0x`, `0o`, `0b` or a leading 0 for octal; an unquoted timestamp is a
  time.Time, which json.Marshal writes in RFC 3339), then decodes them with `engine_value`.

`stackctl render` reads the stack files through `stack_file_config`; `__main__.py` reads the
engine's strings through `engine_value` (components/pulumi_config.py).
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import yaml


def engine_value(value: object) -> object:
    """One top-level value as the engine hands it to the program, decoded (module docstring)."""
    if not isinstance(value, str):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if decoded is None or isinstance(decoded, dict | list) else value


class _GoYamlLoader(yaml.SafeLoader):
    """PyYAML with the scalar resolution of gopkg.in/yaml.v3 (YAML 1.2 core, plus the 1.1
    octal `0777` and `_` in numbers that yaml.v3 still accepts)."""


_GoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:merge"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_IMPLICIT = (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("int", r"^[-+]?(?:[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    (
        "timestamp",
        r"^(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
        r"(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
        r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?)$",
        "0123456789",
    ),
)
for _kind, _pattern, _first in _IMPLICIT:
    _GoYamlLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_kind}", re.compile(_pattern), _first)
# `<<` is a merge key in both; the empty plain scalar is null in both.
_GoYamlLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """Go's strconv.ParseInt(plain, 0, 64) with `_` removed (yaml.v3 resolve.go)."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("-+")
    if digits[:2] in ("0x", "0o", "0b"):
        return sign * int(digits[2:], {"0x": 16, "0o": 8, "0b": 2}[digits[:2]])
    if len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8)
    return sign * int(digits)


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """The time.Time yaml.v3 decodes, as Go's json.Marshal writes it (RFC 3339, UTC as Z)."""
    value = loader.construct_yaml_timestamp(node)
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    text = value.isoformat()
    if "." in text:  # RFC3339Nano: no trailing zeros in the fraction
        head, _, rest = text.partition(".")
        fraction, offset = rest[:6].rstrip("0"), rest[6:]
        text = f"{head}.{fraction}{offset}" if fraction else f"{head}{offset}"
    return text.replace("+00:00", "Z")


_GoYamlLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_GoYamlLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_GoYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def engine_string(node: yaml.Node) -> str:
    """What the engine holds for one top-level stack-file value: a scalar's text, else the
    JSON of the decoded mapping or list (config/value.go `unmarshalValue`)."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null" or (
            node.style is None and node.value in ("", "~", "null", "Null", "NULL")
        ):
            return "null"  # yaml.v3 cannot put null into a string: the object path, JSON null
        return str(node.value)
    loader = _GoYamlLoader("")
    try:
        return json.dumps(loader.construct_document(node), separators=(",", ":"))
    finally:
        loader.dispose()


def stack_file_config(text: str, source: str) -> dict[str, Any]:
    """`config:` of a Pulumi stack file (or project file) as `{key: engine_value(...)}`, each
    value read as the engine reads it. Raises ValueError naming `source` for bad YAML."""
    try:
        root = yaml.compose(text, Loader=_GoYamlLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ValueError(f"{source}: expected a mapping at the top level")
    config = next((v for k, v in root.value if getattr(k, "value", None) == "config"), None)
    if config is None or (isinstance(config, yaml.ScalarNode) and config.value in ("", "~")):
        return {}
    if not isinstance(config, yaml.MappingNode):
        raise ValueError(f"{source}: `config` must be a mapping")
    return {str(key.value): value_of(node) for key, node in config.value}


def value_of(node: yaml.Node) -> Any:
    """One config entry of a YAML file, read as the engine reads it."""
    return engine_value(engine_string(node))


def project_defaults(text: str, source: str) -> dict[str, Any]:
    """The `default` of each key of a project file's `config:` schema, read as the engine
    reads it (a default becomes the key's value when the stack file does not set it)."""
    try:
        root = yaml.compose(text, Loader=_GoYamlLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from None
    found: dict[str, Any] = {}
    if not isinstance(root, yaml.MappingNode):
        return found
    for key, spec in root.value:
        if getattr(key, "value", None) != "config" or not isinstance(spec, yaml.MappingNode):
            continue
        for name, entry in spec.value:
            if not isinstance(entry, yaml.MappingNode):
                continue
            for field, default in entry.value:
                if getattr(field, "value", None) == "default":
                    found[str(name.value)] = value_of(default)
    return found
