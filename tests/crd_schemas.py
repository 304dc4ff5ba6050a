"""Validate rendered custom resources against their upstream CRD schemas (tests/schemas/crd/,
see SOURCES.md there), strictly.

The files are the `openAPIV3Schema` of the upstream CRDs, unchanged. The API server prunes
unknown fields silently, so a misspelt field would be lost without an error; the tests close
every object schema that lists `properties` and declares neither `additionalProperties` nor
`x-kubernetes-preserve-unknown-fields` (what kubeconform `--strict` does), so an unknown field
is an error here. Not checked (not in the schemas): CEL rules, `format`, the root `metadata`."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "crd"
PRESERVE = "x-kubernetes-preserve-unknown-fields"


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema with every object that lists `properties` closed, unless
    it keeps unknown fields (`x-kubernetes-preserve-unknown-fields`) or says what extra
    properties may be (`additionalProperties`). Walks the schema keywords only, so a field
    that happens to be called `properties` or `items` is not mistaken for one."""
    if not isinstance(schema, Mapping):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get(PRESERVE):
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), Mapping):
        out["additionalProperties"] = strict(out["additionalProperties"])
    if "items" in out:
        out["items"] = strict(out["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [strict(s) for s in out[key]]
    if "not" in out:
        out["not"] = strict(out["not"])
    return out


def schema_path(api_version: str, kind: str) -> Path:
    """`<group>/<kind lower>_<version>.json` (the naming of SOURCES.md)."""
    group, _, version = api_version.partition("/")
    return SCHEMA_DIR / group / f"{kind.lower()}_{version}.json"


def is_custom_resource(obj: Mapping[str, Any]) -> bool:
    group = str(obj.get("apiVersion", "")).partition("/")[0]
    return (SCHEMA_DIR / group).is_dir()


@functools.cache
def validator(api_version: str, kind: str) -> Draft7Validator:
    path = schema_path(api_version, kind)
    assert path.is_file(), f"no upstream schema for {api_version} {kind} ({path})"
    return Draft7Validator(strict(json.loads(path.read_text(encoding="utf-8"))))


def errors(obj: Mapping[str, Any]) -> list[str]:
    """Every schema violation of one rendered custom resource, with its path."""
    found = validator(str(obj["apiVersion"]), str(obj["kind"])).iter_errors(dict(obj))
    where = f"{obj['kind']}/{obj['metadata'].get('name')}"
    return sorted(
        f"{where}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found
    )
