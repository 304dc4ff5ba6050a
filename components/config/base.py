"""Field types with Kubernetes' own validation rules, the `Model` base, `Problems`."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components import labels
from components.quantity import parse_quantity

PROJECT = "appstack"
Environment = Literal["dev", "prod"]
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)

# --------------------------------------------------------------------------------------------
# Field types with Kubernetes' own validation rules
# --------------------------------------------------------------------------------------------

MAX_APP_NAME = 40  # derived names add suffixes such as "-metrics" and "-config-<hash>"


def _dns1123(value: str) -> str:
    if len(value) > labels.MAX_NAME or not labels.DNS1123_LABEL.match(value):
        raise PydanticCustomError(
            "dns1123",
            "'{value}' is not a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters",
            {"value": value},
        )
    return value


def _app_name(value: str) -> str:
    if len(value) > MAX_APP_NAME or not labels.DNS1035_LABEL.match(value):
        raise PydanticCustomError(
            "app_name",
            "'{value}' is not a valid service name: a DNS-1035 label (lowercase letters, "
            "digits and '-', starting with a letter) of at most {max} characters",
            {"value": value, "max": MAX_APP_NAME},
        )
    return value


def _quantity(value: Any) -> str:
    text = str(value)
    try:
        parse_quantity(text)
    except ValueError:
        raise PydanticCustomError(
            "quantity",
            "'{value}' is not a Kubernetes quantity; use e.g. '250m', '0.5', '128Mi', '1Gi'",
            {"value": text},
        ) from None
    return text


def _abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise PydanticCustomError(
            "abs_path", "probe path '{value}' must be absolute (start with '/')", {"value": value}
        )
    return value


_CIDR = re.compile(r"^[0-9a-fA-F:.]+/[0-9]{1,3}$")


def _cidr(value: str) -> str:
    import ipaddress

    try:
        if not _CIDR.match(value):
            raise ValueError
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise PydanticCustomError(
            "cidr", "'{value}' is not a CIDR block like '203.0.113.0/24'", {"value": value}
        ) from None
    return value


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _percent_or_int(value: int | str) -> int | str:
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,3}%", value):
        raise PydanticCustomError(
            "int_or_percent",
            "'{value}' must be an integer or a percentage like '25%'",
            {"value": value},
        )
    return value


DNS1123 = Annotated[str, AfterValidator(_dns1123)]
AppName = Annotated[str, AfterValidator(_app_name)]
Quantity = Annotated[str, BeforeValidator(_quantity)]
ProbePath = Annotated[str, AfterValidator(_abs_path)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]
IntOrPercent = Annotated[int | str, AfterValidator(_percent_or_int)]

# image reference: [registry[:port]/]path[:tag][@sha256:digest], lowercase path
IMAGE_PATTERN = re.compile(
    r"^(?P<repo>(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
MOVING_TAGS = frozenset({"latest", "stable", "main", "master", "edge", "nightly"})


def _image(value: str) -> str:
    match = IMAGE_PATTERN.match(value)
    if match is None:
        raise PydanticCustomError(
            "image",
            "'{value}' is not an image reference 'name[:tag][@sha256:digest]' "
            "(lowercase path, tag [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})",
            {"value": value},
        )
    tag, digest = match.group("tag"), match.group("digest")
    if digest is None and (tag is None or tag in MOVING_TAGS):
        raise PydanticCustomError(
            "image_unpinned",
            "'{value}' is not pinned: give an immutable tag (not {moving}) or a digest "
            "'@sha256:...'",
            {"value": value, "moving": "/".join(sorted(MOVING_TAGS))},
        )
    return value


ImageRef = Annotated[str, AfterValidator(_image)]


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of a validated image reference."""
    match = IMAGE_PATTERN.match(image)
    if match is None:  # pragma: no cover - validated before use
        raise ValueError(image)
    return match.group("repo"), match.group("tag"), match.group("digest")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class Model(BaseModel):
    """Base: camelCase keys in YAML, unknown keys rejected, immutable, field docstrings."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class Problems:
    """Collects cross-field problems of one object; raised together as one validation error."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, key: str, message: str) -> None:
        self.items.append((key, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise PydanticCustomError("appstack_rules", "{problems}", {"problems": self.items})


def _environment(info: ValidationInfo) -> str:
    context = info.context or {}
    return str(context.get("environment", "dev"))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`, recursively for mappings; lists and scalars replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
